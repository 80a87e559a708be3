//! Padding-free encoder layout: the real tokens of a padded batch, packed into one `[tokens, …]`
//! tensor.
//!
//! Everything in BERT except attention works token by token (embeddings, linear layers,
//! LayerNorm, GELU, dropout), so a padding position only costs time: in the tutorial's
//! fixed-64 batches 82% of the positions are padding, and even batches padded to their longest
//! sentence are about half padding. The encoder therefore runs those blocks on the real tokens
//! only and re-pads just around attention, where sentences of different lengths need a common
//! `[batch, heads, width, width]` shape. That width is the longest sentence of the batch:
//! columns that are padding in every row are cut off first, so a batch padded to 64 attends
//! exactly as one padded to its longest sentence.
//!
//! Real tokens see exactly what they would see padded (keys at padding are masked either way),
//! so the outputs at real tokens are those of transformers; positions that are padding come out
//! as zeros instead of transformers' meaningless values.
//!
//! A batch without padding skips the gather and scatter altogether: packing is then a view.

use tch::{Kind, Tensor};

/// Where the real tokens of a `[batch, seq]` batch sit.
#[derive(Debug)]
pub(crate) struct Packing {
    batch: i64,
    /// Columns of the caller's batch.
    seq: i64,
    /// Columns up to the last real token of any row: the width attention works at.
    width: i64,
    /// Flat positions (`row * width + column`) of the real tokens, in order; `None` when every
    /// position up to `width` is real.
    index: Option<Tensor>,
    /// `[batch, 1, 1, width]`, true where a key is a real token.
    key_mask: Tensor,
}

impl Packing {
    /// From the attention mask (1 for real tokens, 0 for padding), on the mask's device. With
    /// `row_lengths` (each row's real tokens, all before its padding, known on the host) the
    /// layout is planned on the host and only uploaded: no value is read back from the
    /// device. Without, the mask is read (on a GPU a host sync: the used columns, the width
    /// and the token count).
    pub fn new(attention_mask: &Tensor, row_lengths: Option<&[i64]>) -> Self {
        let (batch, seq) = attention_mask
            .size2()
            .expect("attention_mask is [batch, seq]");
        match row_lengths {
            Some(lengths) if lengths.len() as i64 == batch => {
                Packing::from_lengths(attention_mask, lengths, seq)
            }
            _ => Packing::from_mask(attention_mask, batch, seq),
        }
    }

    fn from_mask(attention_mask: &Tensor, batch: i64, seq: i64) -> Self {
        let real = attention_mask.gt(0);
        let used_columns = real.any_dim(0, false).nonzero();
        let width = match used_columns.size()[0] {
            0 => seq, // no real token at all: nothing to cut, nothing to pack
            _ => used_columns.max().int64_value(&[]) + 1,
        };
        let real = real.narrow(1, 0, width);
        let index = real.reshape([-1]).nonzero().reshape([-1]);
        let tokens = index.size()[0];
        Packing {
            batch,
            seq,
            width,
            index: (tokens < batch * width).then_some(index),
            key_mask: real.unsqueeze(1).unsqueeze(1),
        }
    }

    /// The same layout as [`Packing::from_mask`] for a mask whose rows are `lengths[r]` ones
    /// followed by zeros, computed on the host.
    fn from_lengths(attention_mask: &Tensor, lengths: &[i64], seq: i64) -> Self {
        let batch = lengths.len() as i64;
        let longest = lengths.iter().copied().max().unwrap_or(0).min(seq);
        let width = if longest == 0 { seq } else { longest };
        let index: Vec<i64> = lengths
            .iter()
            .enumerate()
            .flat_map(|(r, &n)| (0..n.clamp(0, width)).map(move |c| r as i64 * width + c))
            .collect();
        let tokens = index.len() as i64;
        let device = attention_mask.device();
        let real = attention_mask.narrow(1, 0, width).gt(0);
        Packing {
            batch,
            seq,
            width,
            index: (tokens < batch * width)
                .then(|| crate::data::tokenizer::upload(&Tensor::from_slice(&index), device)),
            key_mask: real.unsqueeze(1).unsqueeze(1),
        }
    }

    /// `[batch, seq or width, …]` → `[tokens, …]`.
    pub fn pack(&self, xs: &Tensor) -> Tensor {
        let flat = xs.narrow(1, 0, self.width).flatten(0, 1);
        match &self.index {
            Some(index) => flat.index_select(0, index),
            None => flat,
        }
    }

    /// `[tokens, features]` → `[batch, width, features]`, zeros at padding.
    pub fn unpack(&self, xs: &Tensor) -> Tensor {
        let features = xs.size()[1];
        match &self.index {
            Some(index) => xs
                .new_zeros(
                    [self.batch * self.width, features],
                    (xs.kind(), xs.device()),
                )
                .index_copy(0, index, xs)
                .view([self.batch, self.width, features]),
            None => xs.view([self.batch, self.width, features]),
        }
    }

    /// `[tokens, features]` → `[batch, seq, features]`: the caller's own layout, zeros at
    /// padding.
    pub fn unpack_to_input_width(&self, xs: &Tensor) -> Tensor {
        self.unpack(xs)
            .constant_pad_nd([0, 0, 0, self.seq - self.width])
    }

    /// Attention probabilities `[batch, heads, width, width]` → `[batch, heads, seq, seq]`,
    /// zeros for the rows and columns cut off. Rows of padding queries are not transformers':
    /// those cut off are zeros, the others spread evenly over the real keys; rows of real
    /// queries and every column are exact (padding keys get 0 either way).
    pub fn pad_attention(&self, probs: &Tensor) -> Tensor {
        let cut = self.seq - self.width;
        probs.constant_pad_nd([0, cut, 0, cut])
    }

    /// `[tokens, features]` → `[batch, features]`: each row's first token (`[CLS]`), zeros for
    /// a row whose first position is padding.
    pub fn first_tokens(&self, xs: &Tensor) -> Tensor {
        self.unpack(xs).select(1, 0)
    }

    /// Position id of every real token (its column), as transformers numbers them: 0, 1, …
    /// from the start of each row.
    pub fn positions(&self) -> Tensor {
        match &self.index {
            Some(index) => index.remainder(self.width),
            None => Tensor::arange(self.width, (Kind::Int64, self.key_mask.device()))
                .repeat([self.batch]),
        }
    }

    /// `(batch, width)` of the layout attention works in.
    pub fn padded_shape(&self) -> (i64, i64) {
        (self.batch, self.width)
    }

    /// Boolean `[batch, 1, 1, width]`, true where a key is a real token.
    pub fn key_mask(&self) -> &Tensor {
        &self.key_mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host plan and the device read give the same layout, cut and index alike.
    #[test]
    fn lengths_plan_the_layout_the_mask_reads() {
        for lengths in [
            vec![3i64, 1, 5],
            vec![4, 4],
            vec![0, 2],
            vec![0, 0],
            vec![6, 6, 6],
        ] {
            let seq = 6;
            let mask: Vec<i64> = lengths
                .iter()
                .flat_map(|&n| (0..seq).map(move |c| i64::from(c < n)))
                .collect();
            let mask = Tensor::from_slice(&mask).view([lengths.len() as i64, seq]);
            let read = Packing::new(&mask, None);
            let planned = Packing::new(&mask, Some(&lengths));
            assert_eq!(read.padded_shape(), planned.padded_shape(), "{lengths:?}");
            assert!(read.key_mask.equal(&planned.key_mask), "{lengths:?}");
            match (&read.index, &planned.index) {
                (Some(a), Some(b)) => assert!(a.equal(b), "{lengths:?}: {a} vs {b}"),
                (None, None) => {}
                (a, b) => panic!("{lengths:?}: {a:?} vs {b:?}"),
            }
        }
    }
}
