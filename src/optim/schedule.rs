//! `get_linear_schedule_with_warmup`: the learning rate rises linearly over the warm-up steps,
//! then falls linearly to zero at the last step.

use super::FusedAdamW;

/// Learning-rate factor of `get_linear_schedule_with_warmup` after `step` optimizer steps.
pub fn linear_schedule(step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    let remaining = total.saturating_sub(step) as f64;
    (remaining / total.saturating_sub(warmup).max(1) as f64).max(0.0)
}

/// The scheduler of the Python loop: created with the optimizer, stepped after each
/// `optimizer.step()`, it sets the learning rate the next step uses.
#[derive(Debug, Clone)]
pub struct LinearSchedule {
    base_lr: f64,
    warmup: usize,
    total: usize,
    steps_done: usize,
}

impl LinearSchedule {
    /// Sets `optimizer`'s learning rate for its first step (0 when there is a warm-up).
    pub fn new(optimizer: &mut FusedAdamW, warmup: usize, total: usize) -> Self {
        let schedule = LinearSchedule {
            base_lr: optimizer.config().lr,
            warmup,
            total,
            steps_done: 0,
        };
        optimizer.set_lr(schedule.lr());
        schedule
    }

    /// `scheduler.step()`: one more optimizer step is done.
    pub fn step(&mut self, optimizer: &mut FusedAdamW) {
        self.steps_done += 1;
        optimizer.set_lr(self.lr());
    }

    /// The learning rate of the next step.
    pub fn lr(&self) -> f64 {
        self.base_lr * linear_schedule(self.steps_done, self.warmup, self.total)
    }

    pub fn steps_done(&self) -> usize {
        self.steps_done
    }

    /// Continues after `steps_done` steps (a resumed run).
    pub fn resume_at(&mut self, steps_done: usize, optimizer: &mut FusedAdamW) {
        self.steps_done = steps_done;
        optimizer.set_lr(self.lr());
    }
}
