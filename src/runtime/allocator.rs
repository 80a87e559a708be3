//! How freed memory goes back to the C allocator: kept for the next step, not returned to the
//! kernel.
//!
//! Why: every training step frees and allocates the same large blocks again. The word
//! embeddings' gradient alone is `vocab × hidden` floats (47 MB for MiniLM's 30,522 × 384),
//! made afresh by libtorch's embedding backward each step. glibc serves blocks that large with
//! `mmap` (its threshold tops out at 32 MB) and unmaps them on `free`, so each step the kernel
//! maps, zeroes and faults in 11,000 fresh pages: measured here, about a seventh of a NER
//! step on MiniLM (2 cores), where the batches are short and that fixed cost shows. With
//! `mmap` off and no trimming, freed blocks stay in the heap and the next step reuses them
//! (the same as starting a Python process with
//! `GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647`). The
//! cost is that memory once used stays with the process until it exits, as PyTorch's CUDA
//! caching allocator keeps GPU memory.

/// Keeps freed memory in the process for reuse (glibc's `M_MMAP_MAX` 0, `M_TRIM_THRESHOLD` at
/// its maximum). Call it once, early: the CLI does at start-up; a notebook or program that
/// trains may call it before its first step. A no-op outside glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes the allocator's parameters; glibc applies them under its
    // own lock, and both values are in range.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
