//! Unlabelled corpora for masked language modelling, read as `run_mlm.py` reads them and
//! tokenized once into a [`TokenStore`] on disk.
//!
//! A corpus is one file, a folder of files or a glob of shards (read in sorted order, so the
//! shards of a file give the same rows as the file). Plain text gives one text a line; a
//! table (CSV, TSV, JSON lines, Parquet) gives one text a row of its text column. The texts
//! become rows in one of two ways ([`Grouping`]):
//! - [`Grouping::Lines`] (`--line-by-line`): one row a non-blank text, `[CLS] … [SEP]` cut to
//!   `max_len`;
//! - [`Grouping::Blocks`] (run_mlm's default): every text tokenized whole with its `[CLS]` and
//!   `[SEP]`, the ids concatenated and cut into rows of exactly `max_len`. As run_mlm's
//!   `group_texts` (a `map` over batches of 1,000 texts), the ids of each 1,000 texts are
//!   grouped on their own and their remainder shorter than `max_len` dropped.
//!
//! Tokenizing runs in parallel a thousand texts at a time and reports its progress in bytes
//! read; memory stays that of a thousand texts whatever the corpus size.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::DataType;

use super::store::{Fingerprint, Provenance, SourceFile, StoreWriter, TokenStore};
use super::table::{extension, read_table, text_values, Format};
use super::tokenizer::BertTokenizer;

/// Texts tokenized together: run_mlm's `map(batched=True)` batch size, which also bounds what
/// `group_texts` drops per group.
pub const TEXTS_PER_GROUP: usize = 1000;

/// How texts become rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One row a non-blank text, cut to `max_len` (run_mlm's `--line_by_line`).
    Lines,
    /// Texts concatenated and cut into rows of `max_len` (run_mlm's default).
    Blocks,
}

impl Grouping {
    pub fn name(self) -> &'static str {
        match self {
            Grouping::Lines => "lines",
            Grouping::Blocks => "blocks",
        }
    }
}

/// A corpus: its files in reading order, and how their texts are read.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub files: Vec<PathBuf>,
    /// The text column of table files (default: `text`, else the only text column).
    pub column: Option<String>,
    pub grouping: Grouping,
}

/// How far tokenizing has got.
#[derive(Debug, Clone, Copy)]
pub struct CorpusProgress {
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub texts: usize,
    pub rows: usize,
}

/// What tokenizing a corpus produced.
#[derive(Debug)]
pub struct Tokenized {
    pub store: Arc<TokenStore>,
    pub provenance: Provenance,
}

/// Files read as tables: those whose extension names a [`Format`]; anything else is plain
/// text.
fn is_table(path: &Path) -> bool {
    extension(path).parse::<Format>().is_ok()
}

impl Corpus {
    /// The files `arg` names: a file, a folder (its files, sorted, hidden ones skipped) or a
    /// glob pattern (`shards/part-*.txt`, sorted). None found is an error naming `arg`.
    pub fn files_of(arg: &Path) -> Result<Vec<PathBuf>> {
        let text = arg.to_string_lossy();
        let mut files: Vec<PathBuf> = if arg.is_dir() {
            std::fs::read_dir(arg)
                .with_context(|| format!("cannot list the corpus folder {}", arg.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        } else if arg.is_file() {
            vec![arg.to_path_buf()]
        } else if text.contains(['*', '?', '[']) {
            glob::glob(&text)
                .map_err(|e| anyhow!("{text}: not a valid file pattern: {e}"))?
                .filter_map(|p| p.ok())
                .filter(|p| p.is_file())
                .collect()
        } else {
            bail!("{}: no such file or folder", arg.display());
        };
        files.sort();
        if files.is_empty() {
            bail!("{text}: no corpus files there");
        }
        Ok(files)
    }

    /// The corpus of one argument (a file, a folder or a glob).
    pub fn new(arg: &Path, column: Option<String>, grouping: Grouping) -> Result<Corpus> {
        Ok(Corpus {
            files: Self::files_of(arg)?,
            column,
            grouping,
        })
    }

    /// The files, for messages: the one file, or how many and the first and last.
    pub fn describe(&self) -> String {
        match self.files.as_slice() {
            [one] => one.display().to_string(),
            many => format!(
                "{} files ({} … {})",
                many.len(),
                many[0].display(),
                many[many.len() - 1].display()
            ),
        }
    }

    /// The fingerprint of this corpus tokenized by `tokenizer` into rows of `max_len`.
    pub fn fingerprint(&self, tokenizer: &BertTokenizer, max_len: usize) -> Result<Fingerprint> {
        let sources = self
            .files
            .iter()
            .map(|f| SourceFile::stat(f))
            .collect::<Result<Vec<_>>>()?;
        Ok(Fingerprint::new(
            &tokenizer.fingerprint()?,
            format!("{}; column {:?}", self.grouping.name(), self.column),
            max_len,
            sources,
        ))
    }

    /// The corpus tokenized into a store under `cache_dir`: reused when a store of the same
    /// fingerprint is complete there, built otherwise (reporting to `progress`).
    pub fn tokenize(
        &self,
        tokenizer: &BertTokenizer,
        max_len: usize,
        cache_dir: &Path,
        progress: &mut dyn FnMut(CorpusProgress),
    ) -> Result<Tokenized> {
        if max_len < 2 {
            bail!("--max-len {max_len}: a row needs room for [CLS] and [SEP]");
        }
        let fingerprint = self.fingerprint(tokenizer, max_len)?;
        let id_bytes = if tokenizer.max_id() < 65_536 { 2 } else { 4 };
        let (store, provenance) =
            TokenStore::open_or_build(cache_dir, &fingerprint, id_bytes, |writer| {
                self.write_rows(tokenizer, max_len, &fingerprint, writer, progress)
            })?;
        Ok(Tokenized {
            store: Arc::new(store),
            provenance,
        })
    }

    fn write_rows(
        &self,
        tokenizer: &BertTokenizer,
        max_len: usize,
        fingerprint: &Fingerprint,
        writer: &mut StoreWriter,
        progress: &mut dyn FnMut(CorpusProgress),
    ) -> Result<()> {
        let bytes_total: u64 = fingerprint.sources.iter().map(|s| s.bytes).sum();
        let mut state = Progress {
            seen: CorpusProgress {
                bytes_read: 0,
                bytes_total,
                texts: 0,
                rows: 0,
            },
            non_blank: 0,
        };
        let mut group: Vec<String> = Vec::with_capacity(TEXTS_PER_GROUP);
        let sep = tokenizer.sep_id as u32;
        let flush = |group: &mut Vec<String>, writer: &mut StoreWriter| -> Result<()> {
            if group.is_empty() {
                return Ok(());
            }
            let texts: Vec<&str> = group.iter().map(String::as_str).collect();
            match self.grouping {
                Grouping::Lines => {
                    for (mut ids, mut starts) in tokenizer.encode_many(&texts)? {
                        if ids.len() > max_len {
                            ids.truncate(max_len - 1);
                            starts.truncate(max_len - 1);
                            ids.push(sep);
                            starts.push(false);
                        }
                        writer.push(&ids, &starts)?;
                    }
                }
                Grouping::Blocks => {
                    let (ids, starts): (Vec<Vec<u32>>, Vec<Vec<bool>>) =
                        tokenizer.encode_many(&texts)?.into_iter().unzip();
                    let (ids, starts) = (ids.concat(), starts.concat());
                    for (block, block_starts) in
                        ids.chunks_exact(max_len).zip(starts.chunks_exact(max_len))
                    {
                        writer.push(block, block_starts)?;
                    }
                }
            }
            group.clear();
            Ok(())
        };
        for (file, source) in self.files.iter().zip(&fingerprint.sources) {
            let mut push = |text: String, writer: &mut StoreWriter, state: &mut Progress| {
                let blank = text.trim().is_empty();
                state.non_blank += usize::from(!blank);
                // run_mlm's line_by_line drops blank lines; its grouping keeps them ([CLS] [SEP]).
                if blank && self.grouping == Grouping::Lines {
                    return Ok(());
                }
                group.push(text);
                state.seen.texts += 1;
                if group.len() == TEXTS_PER_GROUP {
                    flush(&mut group, writer)?;
                    state.seen.rows = writer.rows();
                    progress(state.seen);
                }
                Ok::<(), anyhow::Error>(())
            };
            if is_table(file) {
                for text in self.table_texts(file)? {
                    push(text, writer, &mut state)?;
                }
                state.seen.bytes_read += source.bytes;
            } else {
                read_lines(file, |line, bytes| {
                    state.seen.bytes_read += bytes;
                    push(line, writer, &mut state)
                })?;
            }
            // A file that changed while it was read is still being written: its rows would
            // be neither the old file's nor the new one's.
            let now = SourceFile::stat(file)?;
            if now != *source {
                bail!(
                    "{}: the file changed while it was being tokenized ({} bytes, now {}): it is \
                     still being written. Run again once it is complete; the token cache was \
                     left as it was",
                    file.display(),
                    source.bytes,
                    now.bytes
                );
            }
        }
        if state.non_blank == 0 {
            bail!(
                "{}: the corpus holds no text (every line is blank)",
                self.describe()
            );
        }
        flush(&mut group, writer)?;
        state.seen.rows = writer.rows();
        progress(state.seen);
        if writer.rows() == 0 {
            bail!(
                "{}: {} texts, too few ids for one block of --max-len {max_len}; use \
                 --line-by-line or a smaller --max-len",
                self.describe(),
                state.seen.texts
            );
        }
        Ok(())
    }

    /// The texts of a table's text column (nulls skipped).
    fn table_texts(&self, file: &Path) -> Result<Vec<String>> {
        let format = Format::of_path(file)?;
        let frame = read_table(file, Some(format))?;
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        let name = match &self.column {
            Some(c) => c.clone(),
            None if names.iter().any(|n| n == "text") => "text".to_string(),
            None => {
                let texts: Vec<&String> = names
                    .iter()
                    .filter(|n| {
                        frame
                            .column(n)
                            .is_ok_and(|c| matches!(c.dtype(), DataType::String))
                    })
                    .collect();
                match texts.as_slice() {
                    [one] => (*one).clone(),
                    _ => bail!(
                        "{}: which column holds the text? It has {}; name it with --text-column",
                        file.display(),
                        names.join(", ")
                    ),
                }
            }
        };
        let column = frame.column(&name).map_err(|_| {
            anyhow!(
                "{}: no column {name:?} (it has {})",
                file.display(),
                names.join(", ")
            )
        })?;
        Ok(text_values(column, file)?.into_iter().flatten().collect())
    }
}

struct Progress {
    seen: CorpusProgress,
    non_blank: usize,
}

/// Calls `each` with every line of a text file (without its line break) and the bytes it took.
/// Bytes that are not UTF-8 are an error naming the file and the line.
fn read_lines(file: &Path, mut each: impl FnMut(String, u64) -> Result<()>) -> Result<()> {
    let handle =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, handle);
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("cannot read {}", file.display()))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
            buf.pop();
        }
        let line = String::from_utf8(std::mem::take(&mut buf)).map_err(|e| {
            anyhow!(
                "{}, line {line_no}: not UTF-8 text (byte {} of the line){}",
                file.display(),
                e.utf8_error().valid_up_to() + 1,
                if e.utf8_error().error_len().is_none() {
                    ": the line ends inside a character, as a file cut mid-write does"
                } else {
                    ""
                }
            )
        })?;
        each(line, n as u64)?;
    }
}
