//! From a file to batches: the CoLA files and their archive ([`cola`], [`archive`]), the
//! checkpoint's tokenizer ([`tokenizer`]), sentences encoded once ([`EncodedSet`]), the
//! tutorial's train/validation split ([`split`]), the orders a set is walked in ([`Sampler`])
//! and the batches a step takes ([`Batch`]). A user's own file is read by [`table`] (CSV, TSV,
//! JSON lines, Parquet through polars) and understood by [`task`] (text columns, labels,
//! [`ProblemType`]). Token-classification files (words and their tags) are read and aligned to
//! word pieces by [`tagging`]; question-answering files (SQuAD) are read and cut into windows by
//! [`squad`]. Corpora for masked language modelling are read by [`corpus`] and tokenized once
//! onto disk by [`store`], whose rows a set reads in place ([`Rows`]).

pub mod archive;
mod batch;
pub mod cola;
pub mod corpus;
mod encoded;
pub mod glue;
mod labels;
pub mod masking;
mod problem_type;
mod rows;
mod sampler;
pub mod split;
pub mod squad;
pub mod store;
pub mod table;
pub mod tagging;
pub mod task;
pub mod tokenizer;

pub use batch::{padded_share, Batch};
pub use encoded::EncodedSet;
pub use labels::Labels;
pub use problem_type::{ProblemType, MULTI_LABEL_THRESHOLD};
pub use rows::Rows;
pub use sampler::{length_grouped_order, shard, Sampler};
