//! Training: the [`Trainer`] that defines a run, its settings ([`TrainConfig`]), what it tells
//! the world ([`Event`] to an [`EventSink`]), what it records ([`History`]), its per-epoch
//! [`checkpoint`]s, and the background [`Run`] a notebook trains in.
//!
//! | file | holds |
//! |---|---|
//! | `trainer.rs` | [`Trainer`]: step, epoch, validation, checkpoints, `fit` |
//! | `config.rs` | [`TrainConfig`] and its checks, errors naming fields |
//! | `events.rs` | [`Event`], [`EventSink`], the notebook's [`PrintLines`] |
//! | `history.rs` | [`History`], [`EpochStats`]: data, shown as a table |
//! | `epoch.rs` | [`EpochBatches`]: an epoch's batches, built as the loop reaches them |
//! | `losses.rs` | [`EpochLosses`]: an epoch's losses, kept on the device |
//! | `checkpoint.rs` | writing and reading `epoch-<k>/` atomically |
//! | `run.rs` | [`Run`]: a trainer on a thread, with `progress`, `stop`, `wait` |

pub mod checkpoint;
mod config;
mod epoch;
mod events;
mod history;
mod losses;
mod run;
mod trainer;

pub use checkpoint::epoch_seed;
pub use config::{
    check_sequence_length, greater_is_better, ConfigError, TrainConfig, METRIC_NAMES,
};
pub use epoch::EpochBatches;
pub use events::{Event, EventSink, PrintLines};
pub use history::{BestEval, EpochStats, EvalRecord, History};
pub use losses::EpochLosses;
pub use run::{Run, RunProgress};
pub use trainer::{Checkpoints, Trainer};
