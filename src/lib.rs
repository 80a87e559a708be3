//! Fine-tune BERT on CoLA from Rust: the classic Hugging Face tutorial, rebuilt on `tch`.
//!
//! The crate is organised the way the tutorial is read: [`settings`] (what the environment
//! chooses: model, data folder, quick mode), [`device`] (which accelerator), [`cola`] (the
//! dataset), [`tokenize`] (WordPiece ids and masks), [`dataset`] (a CoLA file as encoded
//! training, validation and test sets), [`pretrained`] (a checkpoint's tokenizer and model,
//! ready for CoLA), [`model`] (BERT with Hugging Face parameter names), [`train`] and [`eval`]
//! (the loop and its metrics), [`plot`] (figures that render inline in Jupyter), [`files`]
//! (what a saved model holds), [`predict`] (new sentences through the trained model) and
//! [`display`] (how values show up in evcxr).
//!
//! `tch` and `polars` are re-exported so a notebook depends on this crate alone and never pulls
//! a second, clashing version of either.

pub use polars;
pub use tch;

pub mod archive;
pub mod bench;
pub mod cola;
pub mod data;
pub mod dataset;
pub mod device;
pub mod display;
pub mod eval;
pub mod ffi;
pub mod files;
pub mod model;
pub mod optim;
pub mod plot;
pub mod precision;
pub mod predict;
pub mod pretrained;
pub mod settings;
pub mod tokenize;
pub mod train;

mod atomic;

pub use atomic::write as atomic_write;
