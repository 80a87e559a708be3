//! The two-step training parity the head and family tests share with their Python sides
//! (`train_steps` in `tests/python/heads.py`): AdamW at lr 1e-3, eps 1e-6, weight decay 1.0
//! (off biases and LayerNorm weights), gradients clipped at 1.0, a linear schedule over 4 steps.

use bert_finetune::optim::{AdamWConfig, FusedAdamW, LinearSchedule};
use tch::Tensor;

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
