//! The Corpus of Linguistic Acceptability (CoLA 1.1), loaded into polars.
//!
//! The raw files are tab-separated with no header and no quoting (sentences hold `"`), so we
//! parse lines ourselves: that way a bad row is reported by file and line number, which a CSV
//! reader's error would not give, and the frame gets a strict schema from the start.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use polars::prelude::*;
use rand::rngs::StdRng;
use rand::seq::index::sample as sample_indices;
use rand::SeedableRng;

use super::problem_type::ProblemType;
/// Kept at its old path for `model::params` and `model::classifier`, which still import it
/// from here; the helper itself lives with the other formatters in [`crate::runtime::display`].
pub use super::table::Frame;
use super::task::{Examples, Task};
use crate::runtime::display::thousands;

/// Largest file `Cola::load` reads (the biggest CoLA file has 0.5 MB).
pub const MAX_FILE_BYTES: u64 = 64_000_000;

/// Column names of the raw TSV files, in file order.
pub const COLUMNS: [&str; 4] = ["sentence_source", "label", "label_notes", "sentence"];

/// The three raw files of CoLA 1.1 and the number of sentences each must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `raw/in_domain_train.tsv`: the training set (8,551 sentences).
    Train,
    /// `raw/in_domain_dev.tsv`: in-domain development set (527).
    InDomainDev,
    /// `raw/out_of_domain_dev.tsv`: the tutorial's test set (516).
    OutOfDomainDev,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::InDomainDev, Split::OutOfDomainDev];

    /// Path of this split's file relative to the `cola_public` folder.
    pub fn relative_path(self) -> &'static str {
        match self {
            Split::Train => "raw/in_domain_train.tsv",
            Split::InDomainDev => "raw/in_domain_dev.tsv",
            Split::OutOfDomainDev => "raw/out_of_domain_dev.tsv",
        }
    }

    /// Row count of the published release, used to recognise a damaged or foreign download.
    pub fn expected_rows(self) -> usize {
        match self {
            Split::Train => 8551,
            Split::InDomainDev => 527,
            Split::OutOfDomainDev => 516,
        }
    }
}

/// CoLA's classes by label value, saved into `config.json` so a reloaded model names its
/// predictions.
pub const LABELS: [&str; 2] = ["unacceptable", "acceptable"];

/// One CoLA file as a polars frame with columns [`COLUMNS`] (`label` is `i64`, an empty
/// `label_notes` is null).
#[derive(Debug, Clone)]
pub struct Cola {
    pub path: PathBuf,
    pub frame: DataFrame,
}

impl Cola {
    /// Loads one split from a `cola_public` folder.
    pub fn load_split(dir: impl AsRef<Path>, split: Split) -> Result<Cola> {
        Cola::load(dir.as_ref().join(split.relative_path()))
    }

    /// Loads a raw CoLA TSV file, rejecting anything that does not fit the schema.
    pub fn load(path: impl AsRef<Path>) -> Result<Cola> {
        let path = path.as_ref();
        // CoLA's files are under 1 MB: refuse a wrong file before reading gigabytes of it.
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.len() > MAX_FILE_BYTES {
                bail!(
                    "{} is {:.0} MB; a CoLA file is under 1 MB (limit {} MB): is it the right file?",
                    path.display(),
                    meta.len() as f64 / 1e6,
                    MAX_FILE_BYTES / 1_000_000
                );
            }
        }
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read CoLA file {}", path.display()))?;
        let text = String::from_utf8(bytes)
            .with_context(|| format!("{}: not valid UTF-8", path.display()))?;
        let frame = parse_tsv(&text).with_context(|| format!("in {}", path.display()))?;
        Ok(Cola {
            path: path.to_path_buf(),
            frame,
        })
    }

    pub fn len(&self) -> usize {
        self.frame.height()
    }

    /// CoLA as a task of the general own-data path: its `sentence` column, its 0/1 `label`
    /// (classes named by value here; the model names them [`LABELS`]).
    pub fn task() -> Task {
        Task {
            text_columns: vec!["sentence".into()],
            label_column: "label".into(),
            label_columns: Vec::new(),
            problem_type: ProblemType::SingleLabelClassification,
            label_names: vec!["0".into(), "1".into()],
        }
    }

    /// The file's sentences and labels, read by [`Cola::task`] as any user's table is.
    pub fn examples(&self) -> Result<Examples> {
        Self::task().examples(&self.frame, &self.path)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn sentences(&self) -> Vec<String> {
        self.string_column("sentence")
    }

    pub fn labels(&self) -> Vec<i64> {
        self.frame
            .column("label")
            .and_then(|c| c.i64().cloned())
            .map(|ca| ca.into_no_null_iter().collect())
            .unwrap_or_default()
    }

    fn string_column(&self, name: &str) -> Vec<String> {
        self.frame
            .column(name)
            .and_then(|c| c.str().cloned())
            .map(|ca| {
                ca.iter()
                    .map(|s| s.unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `n` rows drawn without replacement, reproducibly for a given seed, in drawn order.
    pub fn sample(&self, n: usize, seed: u64) -> Frame {
        let mut rng = StdRng::seed_from_u64(seed);
        let picked = sample_indices(&mut rng, self.len(), n.min(self.len())).into_vec();
        self.rows(&picked)
    }

    /// The first `n` rows whose label is `label` (the tutorial shows five unacceptable ones).
    pub fn with_label(&self, label: i64, n: usize) -> Frame {
        let picked: Vec<usize> = self
            .labels()
            .iter()
            .enumerate()
            .filter(|(_, l)| **l == label)
            .map(|(i, _)| i)
            .take(n)
            .collect();
        self.rows(&picked)
    }

    /// The given rows, with their position in the file as a leading `index` column.
    pub fn rows(&self, indices: &[usize]) -> Frame {
        let idx: Vec<IdxSize> = indices.iter().map(|&i| i as IdxSize).collect();
        let taken = self
            .frame
            .take(&IdxCa::from_vec("index".into(), idx.clone()))
            .expect("indices come from this frame");
        let mut columns = vec![Column::new("index".into(), idx)];
        columns.extend(taken.columns().iter().cloned());
        Frame(DataFrame::new(indices.len(), columns).expect("columns share the taken height"))
    }

    pub fn label_counts(&self) -> LabelCounts {
        let labels = self.labels();
        let ones = labels.iter().filter(|&&l| l == 1).count();
        LabelCounts {
            ones,
            zeros: labels.len() - ones,
        }
    }
}

fn parse_tsv(text: &str) -> Result<DataFrame> {
    if text.trim().is_empty() {
        bail!(
            "the file is empty (expected tab-separated rows: {})",
            COLUMNS.join(", ")
        );
    }
    let mut sources = Vec::new();
    let mut labels = Vec::new();
    let mut notes: Vec<Option<String>> = Vec::new();
    let mut sentences = Vec::new();
    // A byte-order mark (editors on Windows add one) is not part of the first source name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue; // blank lines (a trailing one, say) hold no row
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if line_no == 1 && fields == COLUMNS {
            continue; // a header row naming the columns, as a spreadsheet export writes
        }
        if fields.len() != COLUMNS.len() {
            let hint = if fields.len() > COLUMNS.len() {
                " (a tab inside the sentence? CoLA's format has no quoting, so it cannot hold one)"
            } else {
                ""
            };
            bail!(
                "line {line_no}: expected {} tab-separated columns ({}), found {}{hint}",
                COLUMNS.len(),
                COLUMNS.join(", "),
                fields.len()
            );
        }
        let label = match fields[1] {
            "0" => 0i64,
            "1" => 1i64,
            other => bail!("line {line_no}: label must be 0 or 1, found {other:?}"),
        };
        sources.push(fields[0].to_string());
        labels.push(label);
        notes.push((!fields[2].is_empty()).then(|| fields[2].to_string()));
        sentences.push(fields[3].to_string());
    }
    let height = labels.len();
    if height == 0 {
        bail!("the file has no data rows, only blank lines or a header");
    }
    let frame = DataFrame::new(
        height,
        vec![
            Column::new(COLUMNS[0].into(), sources),
            Column::new(COLUMNS[1].into(), labels),
            Column::new(COLUMNS[2].into(), notes),
            Column::new(COLUMNS[3].into(), sentences),
        ],
    )?;
    Ok(frame)
}

/// Counts of acceptable (1) and unacceptable (0) sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelCounts {
    pub ones: usize,
    pub zeros: usize,
}

impl LabelCounts {
    pub fn total(&self) -> usize {
        self.ones + self.zeros
    }
}

impl fmt::Display for LabelCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = 100.0 * self.ones as f64 / self.total().max(1) as f64;
        write!(
            f,
            "Positive samples: {} of {} ({pct:.2}%); negative: {}",
            thousands(self.ones),
            thousands(self.total()),
            thousands(self.zeros)
        )
    }
}
