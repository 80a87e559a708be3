//! Token files: a corpus tokenized once onto disk and read in place, so that training on it
//! takes the same memory whatever its number of rows (what Hugging Face `datasets` does with
//! its memory-mapped Arrow cache files).
//!
//! A store is a folder of three files:
//! - `tokens.bin`: every row's ids one after the other, little-endian, 2 bytes an id when the
//!   vocabulary fits in 65,536 ids (BERT's 30,522 does), else 4;
//! - `offsets.bin`: `rows + 1` little-endian u64, row `i` being `tokens[offsets[i]..offsets[i+1]]`;
//! - `words.bin`: one bit a token (least significant first), set where a token starts a word
//!   (whole-word masking's boundaries, which the ids alone do not tell);
//! - `meta.json`: the [`Fingerprint`] it was built from and the counts, written last, so a
//!   folder without it is an unfinished build and is never read.
//!
//! The folder's name is a hash of the fingerprint (the tokenizer, the settings, the source
//! files' sizes and times), so a run with the same tokenizer and settings on the same files
//! reuses it, and anything else builds another. A build writes into a temporary folder renamed
//! into place at the end: an interrupted or failed build leaves the cache as it was.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped when the files' layout changes, so older stores are rebuilt rather than misread.
const LAYOUT_VERSION: u32 = 1;

/// Everything a store's contents follow from. Two equal fingerprints build the same files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub layout: u32,
    /// SHA-256 of the tokenizer's serialised form (`tokenizer.json`).
    pub tokenizer: String,
    /// What the rows are: `lines` (one example a line) or `blocks` (texts concatenated and cut
    /// into rows of `max_len`), and any other setting that changes them.
    pub settings: String,
    pub max_len: usize,
    /// The source files in reading order, each with its size and modification time.
    pub sources: Vec<SourceFile>,
}

/// One source file as it was when tokenized: a change of size or time means new contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub modified_ns: u128,
}

impl SourceFile {
    /// The file as it is now on disk.
    pub fn stat(path: &Path) -> Result<SourceFile> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(SourceFile {
            path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            bytes: meta.len(),
            modified_ns,
        })
    }
}

impl Fingerprint {
    pub fn new(
        tokenizer: &str,
        settings: impl Into<String>,
        max_len: usize,
        sources: Vec<SourceFile>,
    ) -> Self {
        Fingerprint {
            layout: LAYOUT_VERSION,
            tokenizer: tokenizer.to_string(),
            settings: settings.into(),
            max_len,
            sources,
        }
    }

    /// The store's folder name: 16 hex digits of the fingerprint's hash.
    pub fn key(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let hash = Sha256::digest(&json);
        hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// What `meta.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreInfo {
    pub fingerprint: Fingerprint,
    pub rows: usize,
    pub tokens: u64,
    /// Bytes per id in `tokens.bin`: 2 or 4.
    pub id_bytes: usize,
    /// How long tokenizing took, in seconds.
    pub seconds: f64,
}

/// Whether [`TokenStore::open_or_build`] found the store or built it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    Reused,
    Built,
    /// A folder under the same name did not match its fingerprint or its files were the wrong
    /// size; it was removed and built again.
    Rebuilt,
}

/// A tokenized corpus on disk, read in place.
#[derive(Debug)]
pub struct TokenStore {
    dir: PathBuf,
    info: StoreInfo,
    tokens: Option<Mmap>,
    offsets: Option<Mmap>,
    words: Option<Mmap>,
}

impl TokenStore {
    /// The store of `fingerprint` under `cache_dir`: opened when a complete one matches,
    /// otherwise built by `build` (which pushes the rows into the writer) and then opened.
    pub fn open_or_build(
        cache_dir: &Path,
        fingerprint: &Fingerprint,
        id_bytes: usize,
        build: impl FnOnce(&mut StoreWriter) -> Result<()>,
    ) -> Result<(TokenStore, Provenance)> {
        let dir = cache_dir.join(fingerprint.key());
        let mut provenance = Provenance::Built;
        if dir.join("meta.json").exists() {
            match Self::open(&dir) {
                Ok(store) if store.info.fingerprint == *fingerprint => {
                    return Ok((store, Provenance::Reused))
                }
                _ => {
                    std::fs::remove_dir_all(&dir).with_context(|| {
                        format!("cannot remove the stale token cache {}", dir.display())
                    })?;
                    provenance = Provenance::Rebuilt;
                }
            }
        } else if dir.exists() {
            // A folder without meta.json is nobody's finished work.
            let _ = std::fs::remove_dir_all(&dir);
        }
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("cannot create the token cache {}", cache_dir.display()))?;
        let partial = cache_dir.join(format!(
            ".{}.partial-{}",
            fingerprint.key(),
            std::process::id()
        ));
        let result = (|| -> Result<()> {
            let started = std::time::Instant::now();
            let mut writer = StoreWriter::create(&partial, id_bytes)?;
            build(&mut writer)?;
            let (rows, tokens) = writer.finish()?;
            let info = StoreInfo {
                fingerprint: fingerprint.clone(),
                rows,
                tokens,
                id_bytes,
                seconds: started.elapsed().as_secs_f64(),
            };
            crate::runtime::atomic::write(
                &partial.join("meta.json"),
                serde_json::to_string_pretty(&info)?.as_bytes(),
            )?;
            std::fs::rename(&partial, &dir).with_context(|| {
                format!(
                    "cannot move the token cache into place at {}",
                    dir.display()
                )
            })
        })();
        if let Err(err) = result {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(err);
        }
        Ok((Self::open(&dir)?, provenance))
    }

    /// A complete store folder: its `meta.json`, and files of the sizes it states.
    pub fn open(dir: &Path) -> Result<TokenStore> {
        let meta = dir.join("meta.json");
        let text = std::fs::read_to_string(&meta)
            .with_context(|| format!("cannot read {}", meta.display()))?;
        let info: StoreInfo = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a token cache's meta.json", meta.display()))?;
        if info.id_bytes != 2 && info.id_bytes != 4 {
            bail!("{}: ids of {} bytes", meta.display(), info.id_bytes);
        }
        let map = |name: &str, want: u64| -> Result<Option<Mmap>> {
            let path = dir.join(name);
            let file =
                File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
            let have = file.metadata()?.len();
            if have != want {
                bail!(
                    "{} holds {have} bytes; its meta.json says {want}",
                    path.display()
                );
            }
            if want == 0 {
                return Ok(None);
            }
            // SAFETY: the cache's files are written once, renamed into place and never
            // modified afterwards; a store is rebuilt under a new folder, never in place.
            Ok(Some(unsafe { Mmap::map(&file) }.with_context(|| {
                format!("cannot map {}", path.display())
            })?))
        };
        let tokens = map("tokens.bin", info.tokens * info.id_bytes as u64)?;
        let offsets = map("offsets.bin", (info.rows as u64 + 1) * 8)?;
        let words = map("words.bin", info.tokens.div_ceil(8))?;
        Ok(TokenStore {
            dir: dir.to_path_buf(),
            info,
            tokens,
            offsets,
            words,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn info(&self) -> &StoreInfo {
        &self.info
    }

    /// Rows in the store.
    pub fn len(&self) -> usize {
        self.info.rows
    }

    pub fn is_empty(&self) -> bool {
        self.info.rows == 0
    }

    /// Ids in the store, over all rows.
    pub fn tokens(&self) -> u64 {
        self.info.tokens
    }

    /// Bytes of `tokens.bin`.
    pub fn token_bytes(&self) -> u64 {
        self.info.tokens * self.info.id_bytes as u64
    }

    fn offset(&self, i: usize) -> usize {
        let bytes = self.offsets.as_deref().unwrap_or(&[]);
        let b: [u8; 8] = bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes");
        u64::from_le_bytes(b) as usize
    }

    /// The span of row `i` in `tokens.bin`, in ids.
    fn span(&self, i: usize) -> (usize, usize) {
        (self.offset(i), self.offset(i + 1))
    }

    /// Row `i`'s length in ids.
    pub fn row_len(&self, i: usize) -> usize {
        let (a, b) = self.span(i);
        b - a
    }

    /// For each id of row `i`, whether it starts a word (see the module documentation).
    pub fn word_starts(&self, i: usize) -> Vec<bool> {
        let (a, b) = self.span(i);
        let bits = self.words.as_deref().unwrap_or(&[]);
        (a..b).map(|t| bits[t / 8] >> (t % 8) & 1 == 1).collect()
    }

    /// Row `i`'s ids.
    pub fn row(&self, i: usize) -> Vec<i64> {
        let (a, b) = self.span(i);
        let bytes = self.tokens.as_deref().unwrap_or(&[]);
        match self.info.id_bytes {
            2 => bytes[a * 2..b * 2]
                .chunks_exact(2)
                .map(|c| i64::from(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            _ => bytes[a * 4..b * 4]
                .chunks_exact(4)
                .map(|c| i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        }
    }
}

/// The writer a build pushes rows into.
pub struct StoreWriter {
    dir: PathBuf,
    tokens: BufWriter<File>,
    offsets: BufWriter<File>,
    words: BufWriter<File>,
    /// Word-start bits not yet written (fewer than 8) and how many.
    bits: u8,
    nbits: u8,
    id_bytes: usize,
    rows: usize,
    written: u64,
}

impl StoreWriter {
    fn create(dir: &Path, id_bytes: usize) -> Result<StoreWriter> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let open = |name: &str| -> Result<BufWriter<File>> {
            let path = dir.join(name);
            Ok(BufWriter::with_capacity(
                1 << 20,
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?,
            ))
        };
        let mut offsets = open("offsets.bin")?;
        offsets.write_all(&0u64.to_le_bytes())?;
        Ok(StoreWriter {
            dir: dir.to_path_buf(),
            tokens: open("tokens.bin")?,
            offsets,
            words: open("words.bin")?,
            bits: 0,
            nbits: 0,
            id_bytes,
            rows: 0,
            written: 0,
        })
    }

    /// Appends one row: its ids, and for each whether it starts a word.
    pub fn push(&mut self, ids: &[u32], word_starts: &[bool]) -> Result<()> {
        debug_assert_eq!(ids.len(), word_starts.len());
        for &start in word_starts {
            self.bits |= u8::from(start) << self.nbits;
            self.nbits += 1;
            if self.nbits == 8 {
                self.words.write_all(&[self.bits])?;
                (self.bits, self.nbits) = (0, 0);
            }
        }
        for &id in ids {
            if self.id_bytes == 2 {
                let Ok(id) = u16::try_from(id) else {
                    bail!("the id {id} does not fit the token file's 2-byte ids");
                };
                self.tokens.write_all(&id.to_le_bytes())?;
            } else {
                self.tokens.write_all(&id.to_le_bytes())?;
            }
        }
        self.written += ids.len() as u64;
        self.rows += 1;
        self.offsets.write_all(&self.written.to_le_bytes())?;
        Ok(())
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn finish(mut self) -> Result<(usize, u64)> {
        let what = || format!("cannot write the token cache in {}", self.dir.display());
        if self.nbits > 0 {
            self.words.write_all(&[self.bits]).with_context(what)?;
        }
        for file in [&mut self.tokens, &mut self.offsets, &mut self.words] {
            file.flush().with_context(what)?;
            file.get_ref().sync_all().with_context(what)?;
        }
        Ok((self.rows, self.written))
    }
}

/// Where token caches go when no folder is given: `$BERT_FINETUNE_CACHE/tokens`, else
/// `$XDG_CACHE_HOME/bert-finetune/tokens`, else `~/.cache/bert-finetune/tokens` (as `datasets`
/// keeps its cache under `~/.cache/huggingface/datasets`).
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERT_FINETUNE_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("tokens");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("bert-finetune").join("tokens")
}
