//! Fine-tune BERT-family encoders from Rust on `tch`, with Hugging Face's names and checkpoint
//! format. It began as the classic CoLA tutorial and is laid out by concern. Each folder
//! depends only on those above it in this list (`tests/layout.rs` checks it, and that no two
//! files import each other):
//!
//! - [`runtime`]: device, precision, environment settings, atomic writes, how values display
//!   in a notebook (HTML tables, number formats), the process group, the C++ shim.
//! - [`data`]: CoLA and a user's tables, the task and problem type, the tokenizer, encoded
//!   sets, the split, samplers and batches.
//! - [`model`]: BERT and its task heads with Hugging Face names, its config, checkpoints, the
//!   default model, the hub, predictions.
//! - [`optim`]: fused AdamW, gradient clipping, the linear schedule.
//! - [`eval`]: running a model over a set and scoring it (accuracy, MCC, F1, correlations,
//!   entities, SQuAD).
//! - [`train`]: the [`train::Trainer`] that defines a run (step, epoch, validation,
//!   checkpoints, events), its history, and the background [`train::Run`] of a notebook.
//! - [`viz`]: figures that render inline in Jupyter.
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
