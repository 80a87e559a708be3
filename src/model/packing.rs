//! Padding-free encoder layout: the real tokens of a padded batch, packed into one `[tokens, …]`
//! tensor.
//!
//! Everything in BERT except attention works token by token (embeddings, linear layers,
//! LayerNorm, GELU, dropout), so a padding position only costs time: in the tutorial's
//! fixed-64 batches 82% of the positions are padding, and even batches padded to their longest
//! sentence are about half padding. The encoder therefore runs those blocks on the real tokens
//! only and re-pads just around attention, where sentences of different lengths need a common
//! `[batch, heads, seq, seq]` shape. Real tokens see exactly what they would see padded (keys
//! at padding are masked either way), so the outputs at real tokens are those of transformers;
//! positions that are padding come out as zeros instead of transformers' meaningless values.
//!
//! A batch without padding skips the gather and scatter altogether: packing is then a view.

use tch::{Kind, Tensor};

/// Where the real tokens of a `[batch, seq]` batch sit.
#[derive(Debug)]
pub(crate) struct Packing {
    batch: i64,
    seq: i64,
    /// Flat positions (`row * seq + column`) of the real tokens, in order; `None` when every
    /// position is real.
    index: Option<Tensor>,
}

impl Packing {
    /// From the attention mask (1 for real tokens, 0 for padding), on the mask's device.
    /// On a GPU, counting the real tokens waits for the mask to arrive (one small sync).
    pub fn new(attention_mask: &Tensor) -> Self {
        let (batch, seq) = attention_mask
            .size2()
            .expect("attention_mask is [batch, seq]");
        let index = attention_mask.reshape([-1]).gt(0).nonzero().reshape([-1]);
        let tokens = index.size()[0];
        Packing {
            batch,
            seq,
            index: (tokens < batch * seq).then_some(index),
        }
    }

    /// `[batch, seq, …]` → `[tokens, …]`.
    pub fn pack(&self, xs: &Tensor) -> Tensor {
        let flat = xs.flatten(0, 1);
        match &self.index {
            Some(index) => flat.index_select(0, index),
            None => flat,
        }
    }

    /// `[tokens, width]` → `[batch, seq, width]`, zeros at padding.
    pub fn unpack(&self, xs: &Tensor) -> Tensor {
        let width = xs.size()[1];
        match &self.index {
            Some(index) => xs
                .new_zeros([self.batch * self.seq, width], (xs.kind(), xs.device()))
                .index_copy(0, index, xs)
                .view([self.batch, self.seq, width]),
            None => xs.view([self.batch, self.seq, width]),
        }
    }

    /// `[tokens, width]` → `[batch, width]`: each row's first token (`[CLS]`), zeros for a
    /// row whose first position is padding.
    pub fn first_tokens(&self, xs: &Tensor) -> Tensor {
        self.unpack(xs).select(1, 0)
    }

    /// Position id of every real token (its column), as transformers numbers them: 0, 1, …
    /// from the start of each row.
    pub fn positions(&self, device: tch::Device) -> Tensor {
        let columns = Tensor::arange(self.seq, (Kind::Int64, device));
        match &self.index {
            Some(index) => index.remainder(self.seq),
            None => columns.repeat([self.batch]),
        }
    }

    /// `(batch, seq)` of the padded layout.
    pub fn padded_shape(&self) -> (i64, i64) {
        (self.batch, self.seq)
    }
}
