//! What every other module runs on: how freed memory is kept ([`allocator`]), the device ([`device`]) and libtorch's CUDA backend
//! ([`cuda`]), what `nvidia-smi` tells of the
//! GPUs ([`nvidia_smi`]), numeric precision ([`precision`]), the environment's settings
//! ([`settings`]), atomic file writes ([`atomic`]), how a value shows in a notebook and the
//! number formats every table uses ([`display`]), operator counting ([`count_ops`]), the process group of a data-parallel run
//! ([`distributed`]) and, crate-private, the C++ shim for the ATen calls `tch` lacks.

pub mod allocator;
pub mod atomic;
pub mod cuda;
pub mod device;
pub mod display;
pub mod distributed;
pub(crate) mod ffi;
pub mod nvidia_smi;
pub mod precision;
pub mod settings;

pub use ffi::{count_ops, OpCount};
