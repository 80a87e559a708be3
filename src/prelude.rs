//! What the notebook's first cell imports, in one line: `use bert_finetune::prelude::*;`.
//!
//! The modules a tutorial cell calls into by name (`viz::loss_curve`, `device::detect`) and the
//! types it builds or names: the notebooks write the type of every `let` (the kernel then reads
//! it from the cell instead of asking rust-analyzer; README, "How fast a cell answers"), so each
//! type a cell's function returns is here or under a module here. Nothing here is new, each
//! item lives in its folder.

pub use crate::data::cola::{Cola, Split};
pub use crate::data::table::{read_table, Format, Frame};
pub use crate::data::task::{Examples, Task, TaskSpec};
pub use crate::data::tokenizer::{row_preview, BertTokenizer, Encoded, Padding};
pub use crate::data::{split, squad, tagging, EncodedSet, Labels, ProblemType, Sampler};
pub use crate::eval;
pub use crate::model::{
    choose_model, entities, predict, pretrained, BertForQuestionAnswering,
    BertForSequenceClassification, BertForTokenClassification, ModelChoice,
};
pub use crate::optim::AdamWConfig;
pub use crate::runtime::display::{thousands, Table};
pub use crate::runtime::precision::Precision;
pub use crate::runtime::{device, settings};
pub use crate::tch;
pub use crate::train::{self, Checkpoints, TrainConfig, Trainer};
pub use crate::viz::{self, files};
pub use polars::prelude::DataFrame;
