//! What `nvidia-smi` says about the GPUs (tch can count them but not name them or tell their
//! compute capability). A missing tool only loses the answers: every query comes back empty.
//! Its own file because the device report (names) and the default precision (capability) both
//! ask, and neither owns the other.

use std::process::Command;
use std::sync::OnceLock;

/// One `nvidia-smi --query-gpu=FIELD` answer, a trimmed line per GPU; empty when `nvidia-smi`
/// is missing or fails.
fn query(field: &str) -> Vec<String> {
    let output = Command::new("nvidia-smi")
        .args([&format!("--query-gpu={field}"), "--format=csv,noheader"])
        .output();
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// GPU `index`'s compute capability (major, minor) from `nvidia-smi --query-gpu=compute_cap`
/// (read once per process), or `None` when it cannot be read.
pub fn compute_capability(index: usize) -> Option<(u32, u32)> {
    static CAPABILITIES: OnceLock<Vec<Option<(u32, u32)>>> = OnceLock::new();
    CAPABILITIES
        .get_or_init(|| {
            query("compute_cap")
                .iter()
                .map(|l| {
                    let (major, minor) = l.split_once('.')?;
                    Some((major.parse().ok()?, minor.parse().ok()?))
                })
                .collect()
        })
        .get(index)
        .copied()
        .flatten()
}

/// The GPUs' marketing names, one per GPU (empty without `nvidia-smi`).
pub fn gpu_names() -> Vec<String> {
    query("name")
        .into_iter()
        .filter(|l| !l.is_empty())
        .collect()
}
