//! DeBERTa-v2/v3's disentangled attention, as transformers' `DisentangledSelfAttention` computes
//! it (the options come from `config.json`: [`BertConfig::deberta`](super::BertConfig::deberta)).
//!
//! A DeBERTa layer is BERT's but for its attention scores. Besides content·content (q·k), each
//! query also scores the key's *relative position* (content→position, `c2p`: q_i · Kᵣ[δ]) and
//! each key scores the query's relative position (position→content, `p2c`: k_j · Qᵣ[δ]), with
//! δ the bucketed distance i − j and Kᵣ, Qᵣ the layer's own `key_proj` and `query_proj` applied
//! to the encoder's shared, layer-normed `rel_embeddings` table (`share_att_key`, as every
//! DeBERTa-v3 has it). The sum is scaled by 1/√(d·3) rather than 1/√d. Distances are
//! log-bucketed beyond `position_buckets / 2` (`make_log_bucket_position`), so 256 buckets
//! cover any length up to `max_relative_positions`.
//!
//! Here the two position terms are one additive bias on the attention scores, so the fused
//! attention kernel still runs (with that bias as its float mask and DeBERTa's scale).

use tch::{Device, Kind, Tensor};

/// The relative-position terms of a DeBERTa model's attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disentangled {
    /// Half the rows of `rel_embeddings`: `position_buckets` when positive, else
    /// `max_relative_positions`.
    pub span: i64,
    /// `position_buckets` (≤ 0: distances are not bucketed).
    pub buckets: i64,
    /// `max_relative_positions` (`max_position_embeddings` when unset).
    pub max_relative: i64,
    /// `pos_att_type` has `c2p` / `p2c`.
    pub c2p: bool,
    pub p2c: bool,
    /// `norm_rel_ebd` has `layer_norm`: the table goes through `encoder.LayerNorm` first.
    pub norm: bool,
}

impl Disentangled {
    /// Rows of `encoder.rel_embeddings`.
    pub fn table_rows(&self) -> i64 {
        2 * self.span
    }

    /// The scores' scale is 1/√(head_dim · this): one for each kind of term.
    pub fn scale_factor(&self) -> f64 {
        1.0 + f64::from(u8::from(self.c2p)) + f64::from(u8::from(self.p2c))
    }

    /// The row of the position table each (query, key) pair of a row of `width` tokens reads,
    /// `[width, width]`: clamp(bucket(i − j) + span, 0, 2·span − 1). The float32 arithmetic of
    /// `make_log_bucket_position` is repeated op for op, so bucket edges fall where PyTorch
    /// puts them.
    pub fn positions(&self, width: i64, device: Device) -> Tensor {
        let ids = Tensor::arange(width, (Kind::Int64, device));
        let relative = ids.unsqueeze(1) - ids.unsqueeze(0);
        let bucketed = if self.buckets > 0 && self.max_relative > 0 {
            let mid = self.buckets / 2;
            let sign = relative.sign();
            let inside = relative.lt(mid).logical_and(&relative.gt(-mid));
            let abs = relative.abs().where_self(
                &inside.logical_not(),
                &Tensor::from(mid - 1).to_device(device),
            );
            let ratio = Tensor::from(((self.max_relative - 1) as f64 / mid as f64) as f32)
                .to_device(device)
                .log();
            let log_pos =
                ((abs.to_kind(Kind::Float) / mid as f64).log() / ratio * (mid - 1) as f64).ceil()
                    + mid as f64;
            relative
                .to_kind(Kind::Float)
                .where_self(&abs.le(mid), &(log_pos * sign))
                .to_kind(Kind::Int64)
        } else {
            relative
        };
        (bucketed + self.span).clamp(0, 2 * self.span - 1)
    }

    /// The position terms of the scores, `[batch, heads, queries, keys]`, before scaling:
    /// c2p[i, j] = q_i · Kᵣ[idx(i, j)] and p2c[i, j] = k_j · Qᵣ[idx(i, j)] (bucket(j − i) is
    /// −bucket(i − j), which is how transformers' transposed gather reads). `q` is
    /// `[batch, heads, queries, d]`, `k` `[batch, heads, keys, d]`; `pos_q` and `pos_k` are
    /// the projected table, `[1, heads, rows, d]`; `index` is [`positions`](Self::positions)'
    /// rows for the queries, `[queries, keys]`.
    pub fn bias(
        &self,
        q: &Tensor,
        k: &Tensor,
        pos_q: &Tensor,
        pos_k: &Tensor,
        index: &Tensor,
    ) -> Tensor {
        let (b, h, lq, lk) = (q.size()[0], q.size()[1], q.size()[2], k.size()[2]);
        let mut bias: Option<Tensor> = None;
        if self.c2p {
            let all = q.matmul(&pos_k.transpose(-1, -2));
            let c2p = all.gather(-1, &index.expand([b, h, lq, lk], false), false);
            bias = Some(c2p);
        }
        if self.p2c {
            let all = k.matmul(&pos_q.transpose(-1, -2));
            let p2c = all
                .gather(
                    -1,
                    &index.transpose(0, 1).expand([b, h, lk, lq], false),
                    false,
                )
                .transpose(-1, -2);
            bias = Some(match bias {
                Some(c2p) => c2p + p2c,
                None => p2c,
            });
        }
        bias.unwrap_or_else(|| q.zeros_like().narrow(3, 0, 1).expand([b, h, lq, lk], false))
    }
}
