//! The two-step training parity the head and family tests share with their Python sides
//! (`train_steps` in `tests/python/heads.py`): AdamW at lr 1e-3, eps 1e-6, weight decay 1.0
//! (off biases and LayerNorm weights), gradients clipped at 1.0, a linear schedule over 4 steps.

use std::collections::HashMap;

use bert_finetune::optim::{AdamWConfig, FusedAdamW, LinearSchedule};
use tch::Tensor;

use super::max_abs_diff;

/// The optimizer and schedule of the parity steps, over `vs`'s parameters.
pub fn adamw(vs: &tch::nn::VarStore) -> (FusedAdamW, LinearSchedule) {
    let config = AdamWConfig {
        lr: 1e-3,
        eps: 1e-6,
        weight_decay: 1.0,
        ..AdamWConfig::default()
    };
    let mut opt = FusedAdamW::new(vs, config).unwrap();
    let schedule = LinearSchedule::new(&mut opt, 0, 4);
    (opt, schedule)
}

/// One parity step from `loss`: zero, backward, clip, step, schedule.
pub fn step(opt: &mut FusedAdamW, schedule: &mut LinearSchedule, loss: &Tensor) {
    opt.zero_grad().unwrap();
    loss.backward();
    let _norm = opt.clip_grad_norm().unwrap();
    opt.step().unwrap();
    schedule.step(opt);
}

/// Every parameter of `named` against the reference's `{prefix}.{name}` after the steps:
/// within 1e-4. A tied word-embedding table is looked up under its decoder's name too, as
/// PyTorch lists a tied parameter under the name it meets first (XLMRobertaForMaskedLM
/// registers `lm_head` before `roberta`).
pub fn weights_match(
    named: Vec<(String, Tensor)>,
    reference: &HashMap<String, Tensor>,
    prefix: &str,
) {
    let mut worst = (0.0, String::new());
    for (name, t) in named {
        let want = reference
            .get(&format!("{prefix}.{name}"))
            .or_else(|| {
                name.ends_with("embeddings.word_embeddings.weight")
                    .then(|| reference.get(&format!("{prefix}.lm_head.decoder.weight")))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("the reference has no parameter {prefix}.{name}"));
        let d = max_abs_diff(&t, want);
        if d > worst.0 {
            worst = (d, name);
        }
    }
    println!(
        "{prefix}: largest weight difference {:.2e} ({})",
        worst.0, worst.1
    );
    assert!(
        worst.0 <= 1e-4,
        "{prefix}: {} differs by {}",
        worst.1,
        worst.0
    );
}
