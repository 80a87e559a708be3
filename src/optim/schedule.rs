//! `get_linear_schedule_with_warmup`: the learning-rate factor after a number of steps.

/// Learning-rate factor of `get_linear_schedule_with_warmup` after `step` optimizer steps.
pub fn linear_schedule(step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    let remaining = total.saturating_sub(step) as f64;
    (remaining / total.saturating_sub(warmup).max(1) as f64).max(0.0)
}
