//! The notebooks' view of `bert_finetune`: everything it exports, from one shared library.
//!
//! The notebooks name this crate `bert_finetune` in their `:dep` cell, so a cell writes
//! `use bert_finetune::prelude::*;` and the same paths as a program using the library.
pub use bert_finetune::*;
