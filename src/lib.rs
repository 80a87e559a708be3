//! Fine-tune BERT from Rust on `tch`: the classic Hugging Face CoLA tutorial, rebuilt as a
//! library laid out by concern. Each folder depends only on those above it in this list:
//!
//! - [`runtime`]: device, precision, environment settings, atomic writes, the C++ shim.
//! - [`data`]: CoLA files, the tokenizer, encoded sets, the split, samplers and batches.
//! - [`model`]: BERT with Hugging Face names, its config, checkpoints, the hub, predictions.
//! - [`optim`]: fused AdamW, gradient clipping, the linear schedule.
//! - [`eval`]: running a model over a set and scoring it (accuracy, MCC, confusion).
//! - [`train`]: the [`train::Trainer`] that defines a run (step, epoch, validation,
//!   checkpoints, events), its history, and the background [`train::Run`] of a notebook.
//! - [`viz`]: figures and tables that render inline in Jupyter.
//!
//! A notebook imports [`prelude`] in one line. `tch` and `polars` are re-exported so a
//! notebook depends on this crate alone and never pulls a second, clashing version of either.

pub use polars;
pub use serde_json;
pub use tch;

pub mod data;
pub mod eval;
pub mod model;
pub mod optim;
pub mod prelude;
pub mod runtime;
pub mod train;
pub mod viz;
