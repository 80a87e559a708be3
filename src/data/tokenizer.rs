//! WordPiece tokenization the way BERT expects it, on Hugging Face's `tokenizers` crate.
//!
//! The tokenizer settings stored in a checkpoint's `tokenizer.json` may include padding and
//! truncation (all-MiniLM-L6-v2 pads everything to 128). Those are switched off on load so the
//! caller's `max_len` and padding choice are the only ones that apply, exactly as with
//! `tokenizer(..., padding=..., truncation=True, max_length=...)` in Python.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use tch::{Kind, Tensor};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::normalizers::{Lowercase, Replace, Sequence as NormalizerSequence, Strip, NFC};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::punctuation::Punctuation;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::SplitDelimiterBehavior;
use tokenizers::Tokenizer;

use crate::runtime::display::Table;

/// How a batch is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Every row has exactly `max_len` positions (the tutorial pads to 64).
    Fixed,
    /// Rows are padded to the longest sentence of the batch (faster, same result).
    Longest,
    /// As [`Padding::Longest`], and training draws its batches with the length-grouped sampler
    /// (Hugging Face's `group_by_length`), so each batch holds sentences of similar length.
    Bucket,
}

/// A checkpoint's tokenizer plus the special-token ids the model's inputs need. The special
/// tokens and the pair layout come from the checkpoint (`tokenizer_config.json`'s `cls_token`
/// and the others, and what `tokenizer.json`'s post-processor does to a pair), never assumed
/// to be BERT's: `[CLS] a [SEP] b [SEP]` with types 0 then 1 for BERT, `<s> a </s></s> b </s>`
/// with type 0 throughout for RoBERTa and XLM-R.
pub struct BertTokenizer {
    inner: Tokenizer,
    /// For words already split (token classification): a byte-level BPE that adds no space
    /// before a text (RoBERTa's) would read each word after the first as glued to the one
    /// before; transformers refuses that and run_ner loads such tokenizers with
    /// `add_prefix_space=True`, so every word is read as following a space. This is that
    /// copy; `None` where the tokenizer itself reads words right (BERT's, Metaspace).
    words: Option<Tokenizer>,
    /// Folder it was loaded from, so a saved checkpoint can carry the same files.
    pub source: PathBuf,
    /// The token a text starts with (`[CLS]`, `<s>`).
    pub cls_id: i64,
    /// The token a text ends with (`[SEP]`, `</s>`).
    pub sep_id: i64,
    pub pad_id: i64,
    /// The names of the special tokens, as the checkpoint spells them.
    pub specials: SpecialTokens,
    /// What goes between the two texts of a pair (`[SEP]`; `</s></s>` for RoBERTa); `None`
    /// for a tokenizer whose post-processor has no pair template (pairs are then refused).
    pub pair_middle: Option<Vec<i64>>,
    /// The token type of a pair's second text and its closing token (1 for BERT, 0 for
    /// RoBERTa, which has one token type).
    pub second_type: i64,
}

/// The special tokens' names (`tokenizer_config.json`'s `cls_token`, `sep_token`,
/// `pad_token`, `unk_token`, `mask_token`; BERT's when it does not say).
#[derive(Debug, Clone, PartialEq)]
pub struct SpecialTokens {
    pub cls: String,
    pub sep: String,
    pub pad: String,
    pub unk: String,
    pub mask: String,
}

impl Default for SpecialTokens {
    fn default() -> Self {
        SpecialTokens {
            cls: "[CLS]".into(),
            sep: "[SEP]".into(),
            pad: "[PAD]".into(),
            unk: "[UNK]".into(),
            mask: "[MASK]".into(),
        }
    }
}

impl SpecialTokens {
    /// From `tokenizer_config.json` in `dir` (each name a string, or an object with
    /// `content`, as older files write it); BERT's names for what it does not give.
    pub fn read(dir: &Path) -> Result<Self> {
        let mut specials = SpecialTokens::default();
        let path = dir.join("tokenizer_config.json");
        if !path.exists() {
            return Ok(specials);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?;
        for (key, slot) in [
            ("cls_token", &mut specials.cls),
            ("sep_token", &mut specials.sep),
            ("pad_token", &mut specials.pad),
            ("unk_token", &mut specials.unk),
            ("mask_token", &mut specials.mask),
        ] {
            let name = match value.get(key) {
                Some(serde_json::Value::String(name)) => Some(name.clone()),
                Some(serde_json::Value::Object(o)) => o
                    .get("content")
                    .and_then(|c| c.as_str())
                    .map(str::to_string),
                _ => None,
            };
            if let Some(name) = name {
                *slot = name;
            }
        }
        Ok(specials)
    }
}

/// A token's first character and the character after its last, in its own text.
pub type CharSpan = (usize, usize);

/// One window of a question and its context (see [`BertTokenizer::encode_windows`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub ids: Vec<i64>,
    pub type_ids: Vec<i64>,
    /// Character offsets of each token in its own text; `(0, 0)` for the specials.
    pub offsets: Vec<(usize, usize)>,
    /// 0 for the question's tokens, 1 for the context's, `None` for the specials.
    pub sequence_ids: Vec<Option<usize>>,
}

/// The three tensors BERT takes, each `[batch, seq_len]`, and, when the batch was padded
/// here, how many real tokens each row holds.
#[derive(Debug)]
pub struct Encoded {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub token_type_ids: Tensor,
    /// Real tokens per row, all before the row's padding, as [`pad_rows`] lays them out: the
    /// encoder plans its padding-free layout from these on the host instead of reading the
    /// mask back from the device (a host sync per step on a GPU). `None` for tensors from
    /// elsewhere, whose mask is then read.
    row_lengths: Option<Vec<i64>>,
}

impl Encoded {
    /// A batch from tensors made elsewhere (any mask: the encoder reads it to find the real
    /// tokens).
    pub fn new(input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Self {
        Encoded {
            input_ids,
            attention_mask,
            token_type_ids,
            row_lengths: None,
        }
    }

    /// The same tensors on `device`, copied without blocking the host (a no-op on the CPU).
    pub fn to_device(&self, device: tch::Device) -> Encoded {
        Encoded {
            input_ids: upload(&self.input_ids, device),
            attention_mask: upload(&self.attention_mask, device),
            token_type_ids: upload(&self.token_type_ids, device),
            row_lengths: self.row_lengths.clone(),
        }
    }

    /// Real tokens per row when they are known on the host (batches padded by [`pad_rows`]).
    pub fn row_lengths(&self) -> Option<&[i64]> {
        self.row_lengths.as_deref()
    }

    pub fn seq_len(&self) -> i64 {
        self.input_ids.size()[1]
    }
}

/// `t.to(device, non_blocking=True)`: the same tensor when it is already there.
pub fn upload(t: &Tensor, device: tch::Device) -> Tensor {
    if t.device() == device {
        return t.shallow_clone();
    }
    t.to_device_(device, t.kind(), true, false)
}

impl BertTokenizer {
    /// Loads `tokenizer.json`, or builds a BERT WordPiece tokenizer from `vocab.txt`
    /// (lower-casing per `tokenizer_config.json`, default on as for the uncased models).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let json = dir.join("tokenizer.json");
        let vocab = dir.join("vocab.txt");
        let mut inner = if json.exists() {
            Tokenizer::from_file(&json)
                .map_err(|e| anyhow!("cannot load tokenizer {}: {e}", json.display()))?
        } else if vocab.exists() {
            from_vocab(&vocab, lowercase_setting(dir)?)?
        } else {
            bail!(
                "{} has neither tokenizer.json nor vocab.txt; is it a checkpoint folder? (A \
                 SentencePiece spm.model alone is not read: AutoTokenizer.from_pretrained(dir)\
                 .save_pretrained(dir) writes its tokenizer.json once.)",
                dir.display()
            );
        };
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| anyhow!("cannot reset truncation of {}: {e}", dir.display()))?;
        as_transformers_runs_it(&mut inner, dir)?;
        let specials = SpecialTokens::read(dir)?;
        let id = |token: &str| {
            inner.token_to_id(token).map(i64::from).ok_or_else(|| {
                anyhow!(
                    "the tokenizer in {} has no {token} token (named by tokenizer_config.json, \
                     or BERT's name where it names none)",
                    dir.display()
                )
            })
        };
        let (cls_id, sep_id, pad_id) = (id(&specials.cls)?, id(&specials.sep)?, id(&specials.pad)?);
        let (pair_middle, second_type) = pair_layout(&inner, cls_id, sep_id, dir)?;
        let words = match inner.get_pre_tokenizer() {
            Some(PreTokenizerWrapper::ByteLevel(level)) if !level.add_prefix_space => {
                let mut words = inner.clone();
                let mut spaced = *level;
                spaced.add_prefix_space = true;
                words.with_pre_tokenizer(Some(spaced));
                Some(words)
            }
            _ => None,
        };
        Ok(BertTokenizer {
            words,
            cls_id,
            sep_id,
            pad_id,
            specials,
            pair_middle,
            second_type,
            source: dir.to_path_buf(),
            inner,
        })
    }

    /// The id of the mask token (`[MASK]`, `<mask>`), if the vocabulary has it.
    pub fn mask_id(&self) -> Option<i64> {
        self.token_id(&self.specials.mask)
    }

    /// The largest id this tokenizer can produce (added tokens included); a model needs more
    /// rows than that in its word embeddings.
    pub fn max_id(&self) -> i64 {
        self.inner
            .get_vocab(true)
            .values()
            .copied()
            .max()
            .map_or(0, i64::from)
    }

    /// The id of one token of the vocabulary, if it has it (`[MASK]`, a word piece).
    pub fn token_id(&self, token: &str) -> Option<i64> {
        self.inner.token_to_id(token).map(i64::from)
    }

    /// Ids of the special tokens (transformers' `all_special_ids`: `[CLS]`, `[SEP]`, `[PAD]`,
    /// `[UNK]`, `[MASK]` and any added token marked special), sorted: what masking never
    /// touches.
    pub fn special_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, token)| token.special)
            .map(|(&id, _)| i64::from(id))
            .chain(
                [
                    &self.specials.cls,
                    &self.specials.sep,
                    &self.specials.pad,
                    &self.specials.unk,
                    &self.specials.mask,
                ]
                .iter()
                .filter_map(|t| self.token_id(t)),
            )
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// SHA-256 of the tokenizer's serialised form: what a token cache was built with, so a
    /// cache is never read by another tokenizer (see [`crate::data::store`]).
    pub fn fingerprint(&self) -> Result<String> {
        use sha2::Digest;
        let text = self.inner.to_string(false).map_err(|e| {
            anyhow!(
                "cannot serialise the tokenizer of {}: {e}",
                self.source.display()
            )
        })?;
        Ok(sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// Ids of many texts at once, tokenized in parallel (the `tokenizers` crate's thread
    /// pool), with `[CLS]`/`[SEP]` and nothing cut; with each id, whether it starts a word as
    /// transformers' whole-word masking tells from the offsets: a token that is not special
    /// and follows a gap in the text or a special token.
    pub fn encode_many(&self, texts: &[&str]) -> Result<Vec<(Vec<u32>, Vec<bool>)>> {
        let encodings = self
            .inner
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow!("cannot tokenize: {e}"))?;
        Ok(encodings
            .into_iter()
            .map(|e| {
                let special = e.get_special_tokens_mask();
                let offsets = e.get_offsets();
                let starts = (0..offsets.len())
                    .map(|j| {
                        special[j] == 0
                            && (j == 0 || special[j - 1] == 1 || offsets[j].0 != offsets[j - 1].1)
                    })
                    .collect();
                (e.get_ids().to_vec(), starts)
            })
            .collect())
    }

    /// Text of ids (Python's `decode`), special tokens left out when `skip_special`.
    pub fn decode(&self, ids: &[i64], skip_special: bool) -> Result<String> {
        let ids: Vec<u32> = ids.iter().filter_map(|&i| u32::try_from(i).ok()).collect();
        self.inner
            .decode(&ids, skip_special)
            .map_err(|e| anyhow!("cannot decode {ids:?}: {e}"))
    }

    /// Where the tokenizer was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// WordPiece tokens of a sentence, without special tokens (Python's `tokenize`).
    pub fn tokenize(&self, sentence: impl AsRef<str>) -> Result<Vec<String>> {
        Ok(self
            .encode_raw(sentence.as_ref(), false)?
            .get_tokens()
            .to_vec())
    }

    /// Vocabulary ids of tokens (Python's `convert_tokens_to_ids`); unknown tokens map to `[UNK]`.
    pub fn convert_tokens_to_ids(&self, tokens: &[impl AsRef<str>]) -> Vec<i64> {
        let unk = self.inner.token_to_id(&self.specials.unk).unwrap_or(100);
        tokens
            .iter()
            .map(|t| i64::from(self.inner.token_to_id(t.as_ref()).unwrap_or(unk)))
            .collect()
    }

    /// Ids with `[CLS]` … `[SEP]` and no truncation (Python's `encode`).
    pub fn encode(&self, sentence: impl AsRef<str>) -> Result<Vec<i64>> {
        Ok(self
            .encode_raw(sentence.as_ref(), true)?
            .get_ids()
            .iter()
            .map(|&i| i64::from(i))
            .collect())
    }

    /// `convert_ids_to_tokens`: the vocabulary entry of each id (`<id>` for one outside it).
    pub fn convert_ids_to_tokens(&self, ids: &[i64]) -> Vec<String> {
        ids.iter()
            .map(|&id| {
                u32::try_from(id)
                    .ok()
                    .and_then(|id| self.inner.id_to_token(id))
                    .unwrap_or_else(|| format!("<{id}>"))
            })
            .collect()
    }

    /// A sentence already split into words (transformers' `is_split_into_words=True`), with
    /// `[CLS]`/`[SEP]`: its ids and, per id, the word it comes from (`None` for the specials),
    /// as `word_ids()` gives them.
    pub fn encode_words(&self, words: &[impl AsRef<str>]) -> Result<(Vec<i64>, Vec<Option<u32>>)> {
        let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
        let encoding = self
            .words
            .as_ref()
            .unwrap_or(&self.inner)
            .encode(&words[..], true)
            .map_err(|e| anyhow!("cannot tokenize the words {words:?}: {e}"))?;
        Ok((
            encoding.get_ids().iter().map(|&i| i64::from(i)).collect(),
            encoding.get_word_ids().to_vec(),
        ))
    }

    /// A question and a long context as extractive question answering reads them
    /// (transformers' `tokenizer(question, context, truncation="only_second", max_length,
    /// stride, return_overflowing_tokens=True, return_offsets_mapping=True)`): the context is
    /// cut into windows of at most `max_len` tokens, each overlapping the previous one by
    /// `stride` tokens, every window `[CLS] question [SEP] part of the context [SEP]`. Offsets
    /// are in characters of their own text (the question's or the context's), as Python's.
    ///
    /// The windows are cut here rather than by the `tokenizers` crate's own truncation: with
    /// the same tokenizer.json and settings, its Rust release 0.23.2 returned one overflowing
    /// part for a 400-token context where Python's `tokenizers` 0.23.3 returned all nine. The
    /// windows equal Python's (`tests/question_answering.rs`).
    pub fn encode_windows(
        &self,
        question: &str,
        context: &str,
        max_len: usize,
        stride: usize,
    ) -> Result<Vec<Window>> {
        let encode = |text: &str| {
            self.inner
                .encode_char_offsets(text, false)
                .map_err(|e| anyhow!("cannot tokenize {text:?}: {e}"))
        };
        let Some(middle) = &self.pair_middle else {
            bail!(
                "the tokenizer in {} has no pair template (tokenizer.json's post_processor \
                 frames single texts only), so it cannot read a question with its context",
                self.source.display()
            );
        };
        let (q, c) = (encode(question)?, encode(context)?);
        let specials = 2 + middle.len();
        let room = max_len.saturating_sub(q.len() + specials);
        if room <= stride {
            bail!(
                "the question is {} tokens long: with the pair's {specials} special tokens, \
                 {max_len} tokens leave {room} for the context, not more than the stride of \
                 {stride}",
                q.len()
            );
        }
        let n = c.len();
        let mut parts = Vec::new();
        let mut start = 0;
        loop {
            let stop = (start + room).min(n);
            parts.push(start..stop);
            if stop == n {
                break;
            }
            start += room - stride;
        }
        let ids = |e: &tokenizers::Encoding| -> Vec<i64> {
            e.get_ids().iter().map(|&i| i64::from(i)).collect()
        };
        let (q_ids, c_ids) = (ids(&q), ids(&c));
        Ok(parts
            .into_iter()
            .map(|part| {
                let len = part.len();
                let mut w = Window {
                    ids: Vec::with_capacity(q.len() + len + 3),
                    type_ids: Vec::with_capacity(q.len() + len + 3),
                    offsets: Vec::with_capacity(q.len() + len + 3),
                    sequence_ids: Vec::with_capacity(q.len() + len + 3),
                };
                let mut push = |id: i64, kind: i64, offset: (usize, usize), seq: Option<usize>| {
                    w.ids.push(id);
                    w.type_ids.push(kind);
                    w.offsets.push(offset);
                    w.sequence_ids.push(seq);
                };
                push(self.cls_id, 0, (0, 0), None);
                for (&id, &o) in q_ids.iter().zip(q.get_offsets()) {
                    push(id, 0, o, Some(0));
                }
                for &id in middle {
                    push(id, 0, (0, 0), None);
                }
                for (&id, &o) in c_ids[part.clone()].iter().zip(&c.get_offsets()[part]) {
                    push(id, self.second_type, o, Some(1));
                }
                push(self.sep_id, self.second_type, (0, 0), None);
                w
            })
            .collect())
    }

    /// A text's word pieces without `[CLS]`/`[SEP]`, each with its character span in the text.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<i64>, Vec<CharSpan>)> {
        let e = self
            .inner
            .encode_char_offsets(text, false)
            .map_err(|e| anyhow!("cannot tokenize {text:?}: {e}"))?;
        Ok((
            e.get_ids().iter().map(|&i| i64::from(i)).collect(),
            e.get_offsets().to_vec(),
        ))
    }

    fn encode_raw(&self, sentence: &str, special: bool) -> Result<tokenizers::Encoding> {
        self.inner
            .encode(sentence, special)
            .map_err(|e| anyhow!("cannot tokenize {sentence:?}: {e}"))
    }

    /// A sentence's tokens next to their ids, `[CLS]` and `[SEP]` included.
    pub fn inspect(&self, sentence: impl AsRef<str>) -> Result<Table> {
        let sentence = sentence.as_ref();
        let encoding = self.encode_raw(sentence, true)?;
        let mut table = Table::new(
            format!("Original: {sentence}"),
            &["position", "token", "id"],
        );
        for (i, (token, id)) in encoding
            .get_tokens()
            .iter()
            .zip(encoding.get_ids())
            .enumerate()
        {
            table.push_row([i.to_string(), token.clone(), id.to_string()]);
        }
        Ok(table)
    }

    /// The special tokens BERT's input format relies on, with their ids.
    pub fn special_tokens(&self) -> Table {
        let mut table = Table::new("Special tokens", &["token", "id", "role"]);
        let s = &self.specials;
        let rows = [
            (&s.cls, "first token; its final state feeds the classifier"),
            (&s.sep, "ends each sentence"),
            (&s.pad, "fills short rows; masked out of attention"),
            (&s.unk, "stands for anything outside the vocabulary"),
            (&s.mask, "used in pre-training only"),
        ];
        for (token, role) in rows {
            if let Some(id) = self.inner.token_to_id(token) {
                table.push_row([token.to_string(), id.to_string(), role.to_string()]);
            }
        }
        table
    }

    /// Each sentence's length in tokens, `[CLS]` and `[SEP]` included, before any cut.
    pub fn lengths(&self, sentences: &[impl AsRef<str>]) -> Result<Vec<usize>> {
        sentences
            .iter()
            .map(|s| Ok(self.encode_raw(s.as_ref(), true)?.len()))
            .collect()
    }

    /// Length in tokens (special tokens included) of the longest sentence, and its index
    /// (the first one, if several tie).
    pub fn longest(&self, sentences: &[impl AsRef<str>]) -> Result<(usize, usize)> {
        let mut best = (0, 0);
        for (i, n) in self.lengths(sentences)?.into_iter().enumerate() {
            if n > best.0 {
                best = (n, i);
            }
        }
        Ok(best)
    }

    /// Ids of each sentence with `[CLS]`/`[SEP]`, cut to `max_len` with `[SEP]` kept last.
    pub fn encode_truncated(
        &self,
        sentences: &[impl AsRef<str>],
        max_len: usize,
    ) -> Result<Vec<Vec<i64>>> {
        Ok(self.encode_truncated_marking_cuts(sentences, max_len)?.0)
    }

    /// [`BertTokenizer::encode_truncated`], with whether each sentence was longer than
    /// `max_len` and was cut (from the same tokenization).
    pub fn encode_truncated_marking_cuts(
        &self,
        sentences: &[impl AsRef<str>],
        max_len: usize,
    ) -> Result<(Vec<Vec<i64>>, Vec<bool>)> {
        if max_len < 2 {
            bail!("max_len must leave room for [CLS] and [SEP] (got {max_len})");
        }
        sentences
            .iter()
            .map(|s| {
                let mut ids = self.encode(s)?;
                let cut = ids.len() > max_len;
                if cut {
                    ids.truncate(max_len - 1);
                    ids.push(self.sep_id);
                }
                Ok((ids, cut))
            })
            .collect::<Result<Vec<_>>>()
            .map(|rows| rows.into_iter().unzip())
    }

    /// Pairs as BERT reads them: `[CLS] first [SEP] second [SEP]`, cut to `max_len` tokens the
    /// way transformers' tokenizer does with `truncation=True` (`longest_first`, as its Rust
    /// `tokenizers` computes it; checked pair by pair in `tests/own_data.rs`), with their token
    /// type ids (0 for `[CLS] first [SEP]`, 1 after). Returns (ids, type ids) per pair.
    pub fn encode_pairs(
        &self,
        first: &[impl AsRef<str>],
        second: &[impl AsRef<str>],
        max_len: usize,
    ) -> Result<Vec<(Vec<i64>, Vec<i64>)>> {
        Ok(self.encode_pairs_marking_cuts(first, second, max_len)?.0)
    }

    /// [`BertTokenizer::encode_pairs`], with whether each pair was longer than `max_len` and
    /// was cut (from the same tokenization).
    #[allow(clippy::type_complexity)]
    pub fn encode_pairs_marking_cuts(
        &self,
        first: &[impl AsRef<str>],
        second: &[impl AsRef<str>],
        max_len: usize,
    ) -> Result<(Vec<(Vec<i64>, Vec<i64>)>, Vec<bool>)> {
        if first.len() != second.len() {
            bail!(
                "{} first texts but {} second texts",
                first.len(),
                second.len()
            );
        }
        let Some(middle) = &self.pair_middle else {
            bail!(
                "the tokenizer in {} has no pair template (tokenizer.json's post_processor \
                 frames single texts only), so it cannot encode text pairs",
                self.source.display()
            );
        };
        let specials = 2 + middle.len(); // [CLS], [SEP] (or </s></s>), [SEP]
        if max_len < specials {
            bail!(
                "max_len must leave room for the pair's {specials} special tokens (got {max_len})"
            );
        }
        let budget = max_len - specials;
        first
            .iter()
            .zip(second)
            .map(|(a, b)| {
                let words = |s: &str| -> Result<Vec<i64>> {
                    Ok(self
                        .encode_raw(s, false)?
                        .get_ids()
                        .iter()
                        .map(|&i| i64::from(i))
                        .collect())
                };
                let (mut a, mut b) = (words(a.as_ref())?, words(b.as_ref())?);
                let cut = a.len() + b.len() > budget;
                // longest_first as transformers' (Rust) tokenizer applies it: the shorter text
                // keeps up to what the longer one leaves; two long texts get half the budget
                // each, the odd token going to the one that was longer (the second on a tie).
                if a.len() + b.len() > budget {
                    let first_longer = a.len() > b.len();
                    let short = a.len().min(b.len());
                    let keep_long = short.max(budget.saturating_sub(short));
                    let (keep_short, keep_long) = if short + keep_long > budget {
                        (budget / 2, budget / 2 + budget % 2)
                    } else {
                        (short, keep_long)
                    };
                    let (keep_a, keep_b) = if first_longer {
                        (keep_long, keep_short)
                    } else {
                        (keep_short, keep_long)
                    };
                    a.truncate(keep_a);
                    b.truncate(keep_b);
                }
                let mut ids = Vec::with_capacity(a.len() + b.len() + specials);
                ids.push(self.cls_id);
                ids.extend(&a);
                ids.extend(middle);
                let first_len = ids.len();
                ids.extend(&b);
                ids.push(self.sep_id);
                let types = (0..ids.len())
                    .map(|i| if i >= first_len { self.second_type } else { 0 })
                    .collect();
                Ok(((ids, types), cut))
            })
            .collect::<Result<Vec<_>>>()
            .map(|rows| rows.into_iter().unzip())
    }

    /// Tokenizes, truncates and pads a list of sentences into BERT's input tensors (on the CPU).
    pub fn encode_batch(
        &self,
        sentences: &[impl AsRef<str>],
        max_len: usize,
        padding: Padding,
    ) -> Result<Encoded> {
        let ids = self.encode_truncated(sentences, max_len)?;
        let rows: Vec<&[i64]> = ids.iter().map(Vec::as_slice).collect();
        Ok(pad_rows(&rows, self.pad_id, max_len, padding))
    }

    /// Writes `tokenizer.json` (and copies `vocab.txt` and the configs when the source has
    /// them) into `dir`, each through a temporary name.
    pub fn save(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let json = dir.join("tokenizer.json");
        let text = self
            .inner
            .to_string(false)
            .map_err(|e| anyhow!("cannot serialise the tokenizer for {}: {e}", json.display()))?;
        let mut written = vec![crate::runtime::atomic::write(&json, text.as_bytes())?];
        for name in [
            "vocab.txt",
            "tokenizer_config.json",
            "special_tokens_map.json",
        ] {
            let from = self.source.join(name);
            if from.exists() && from.canonicalize().ok() != dir.join(name).canonicalize().ok() {
                let bytes = std::fs::read(&from)
                    .with_context(|| format!("cannot read {}", from.display()))?;
                written.push(crate::runtime::atomic::write(&dir.join(name), &bytes)?);
            }
        }
        Ok(written)
    }
}

/// What the tokenizer's post-processor puts between the texts of a pair, and the token type
/// of the second text: read from the encoding of a pair of one-word texts, so any
/// post-processor (BERT's, RoBERTa's, a template) is followed as transformers follows it.
/// `None` for the middle when it has no pair template; a tokenizer that does not frame a
/// text as `cls … sep` is refused.
fn pair_layout(
    inner: &Tokenizer,
    cls: i64,
    sep: i64,
    dir: &Path,
) -> Result<(Option<Vec<i64>>, i64)> {
    let framed = |ids: &[u32]| {
        ids.first().map(|&i| i64::from(i)) == Some(cls)
            && ids.last().map(|&i| i64::from(i)) == Some(sep)
    };
    let encode = |input: tokenizers::EncodeInput<'_>| {
        inner.encode(input, true).map_err(|e| {
            anyhow!(
                "cannot encode a test text with the tokenizer in {}: {e}",
                dir.display()
            )
        })
    };
    if !framed(encode("a".into())?.get_ids()) {
        bail!(
            "the tokenizer in {} does not frame a text with its cls and sep tokens (as BERT's \
             [CLS] … [SEP] or RoBERTa's <s> … </s>); tokenizer.json's post_processor sets that",
            dir.display()
        );
    }
    let pair = encode(("a", "b").into())?;
    let seqs = pair.get_sequence_ids();
    let first_end = seqs.iter().rposition(|s| *s == Some(0));
    let second_start = seqs.iter().position(|s| *s == Some(1));
    let (Some(first_end), Some(second_start)) = (first_end, second_start) else {
        return Ok((None, 0));
    };
    if !framed(pair.get_ids()) {
        return Ok((None, 0));
    }
    let ids: Vec<i64> = pair.get_ids().iter().map(|&i| i64::from(i)).collect();
    let second_type = i64::from(pair.get_type_ids()[second_start]);
    Ok((Some(ids[first_end + 1..second_start].to_vec()), second_type))
}

/// transformers 5 does not run an XLM-R checkpoint's `tokenizer.json` pipeline as written: its
/// `XLMRobertaTokenizer` keeps the vocabulary and SentencePiece's precompiled normalizer from
/// the file and splits on whitespace before Metaspace, so that a piece's offsets never cover
/// the space before it (`add_prefix_space`, default on, chooses whether `▁` is prepended).
/// The same here, so that ids and offsets (QA windows, whole words) equal what Python gives.
fn as_transformers_runs_it(inner: &mut Tokenizer, dir: &Path) -> Result<()> {
    let path = dir.join("tokenizer_config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let config: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let class = config.get("tokenizer_class").and_then(|c| c.as_str());
    if matches!(class, Some("DebertaV2Tokenizer" | "DebertaV2TokenizerFast")) {
        return as_deberta_v2_runs_it(inner, dir, &config);
    }
    if !matches!(
        class,
        Some("XLMRobertaTokenizer" | "XLMRobertaTokenizerFast")
    ) {
        return Ok(());
    }
    let scheme = match config.get("add_prefix_space").and_then(|v| v.as_bool()) {
        Some(false) => PrependScheme::Never,
        _ => PrependScheme::Always,
    };
    let precompiled = match inner.get_normalizer() {
        Some(n @ NormalizerWrapper::Precompiled(_)) => Some(n.clone()),
        Some(NormalizerWrapper::Sequence(seq)) => seq
            .as_ref()
            .iter()
            .find(|n| matches!(n, NormalizerWrapper::Precompiled(_)))
            .cloned(),
        _ => None,
    };
    inner.with_normalizer(precompiled).map_err(|e| {
        anyhow!(
            "cannot set the normalizer of the tokenizer in {}: {e}",
            dir.display()
        )
    })?;
    inner.with_pre_tokenizer(Some(PreTokenizerSequence::new(vec![
        WhitespaceSplit.into(),
        Metaspace::new('▁', scheme, true).into(),
    ])));
    Ok(())
}

/// transformers 5's `DebertaV2Tokenizer` keeps only the Unigram vocabulary of a checkpoint's
/// `tokenizer.json` and builds the rest itself from `tokenizer_config.json`: normalizer
/// [lower-case (`do_lower_case`)], runs of whitespace and tabs or line breaks to one space,
/// NFC, trailing spaces stripped; pre-tokenizer [punctuation isolated (`split_by_punct`)],
/// Metaspace (`▁` before every word with `add_prefix_space`, the default, else before the
/// first); post-processor `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]` (B's type 1). The same
/// here, so ids equal what Python gives for any text (a `tokenizer.json` from the hub has
/// SentencePiece's precompiled normalizer, which transformers 5 drops).
fn as_deberta_v2_runs_it(
    inner: &mut Tokenizer,
    dir: &Path,
    config: &serde_json::Value,
) -> Result<()> {
    let flag =
        |key: &str, default: bool| config.get(key).and_then(|v| v.as_bool()).unwrap_or(default);
    let fail = |e: tokenizers::Error| {
        anyhow!(
            "cannot build the DeBERTa-v2 tokenizer pipeline for {}: {e}",
            dir.display()
        )
    };
    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    if flag("do_lower_case", false) {
        normalizers.push(Lowercase.into());
    }
    normalizers.push(
        Replace::new(ReplacePattern::Regex(r"\s{2,}|[\n\r\t]".into()), " ")
            .map_err(fail)?
            .into(),
    );
    normalizers.push(NFC.into());
    normalizers.push(Strip::new(false, true).into());
    inner
        .with_normalizer(Some(NormalizerSequence::new(normalizers)))
        .map_err(|e| anyhow!("cannot set the normalizer of {}: {e}", dir.display()))?;
    let mut pre: Vec<PreTokenizerWrapper> = Vec::new();
    if flag("split_by_punct", false) {
        pre.push(Punctuation::new(SplitDelimiterBehavior::Isolated).into());
    }
    let scheme = if flag("add_prefix_space", true) {
        PrependScheme::Always
    } else {
        PrependScheme::First
    };
    pre.push(Metaspace::new('▁', scheme, true).into());
    inner.with_pre_tokenizer(Some(PreTokenizerSequence::new(pre)));
    let specials = SpecialTokens::read(dir)?;
    let id = |token: &str| {
        inner.token_to_id(token).ok_or_else(|| {
            anyhow!(
                "the tokenizer in {} has no {token} token (named by tokenizer_config.json)",
                dir.display()
            )
        })
    };
    let (cls, sep) = (specials.cls.as_str(), specials.sep.as_str());
    let template = TemplateProcessing::builder()
        .try_single(format!("{cls}:0 $A:0 {sep}:0"))
        .and_then(|b| b.try_pair(format!("{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1")))
        .map_err(|e| anyhow!("cannot build the pair template for {}: {e}", dir.display()))?
        .special_tokens(vec![(cls, id(cls)?), (sep, id(sep)?)])
        .build()
        .map_err(|e| anyhow!("cannot build the pair template for {}: {e}", dir.display()))?;
    inner.with_post_processor(Some(template));
    Ok(())
}

fn lowercase_setting(dir: &Path) -> Result<bool> {
    let path = dir.join("tokenizer_config.json");
    if !path.exists() {
        return Ok(true);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    Ok(value
        .get("do_lower_case")
        .and_then(|v| v.as_bool())
        .unwrap_or(true))
}

fn from_vocab(vocab: &Path, lowercase: bool) -> Result<Tokenizer> {
    let path = vocab
        .to_str()
        .ok_or_else(|| anyhow!("{} is not a UTF-8 path", vocab.display()))?;
    let model = WordPiece::from_file(path)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| anyhow!("cannot read vocabulary {}: {e}", vocab.display()))?;
    let mut tokenizer = Tokenizer::new(model);
    let id = |t: &str| {
        tokenizer
            .token_to_id(t)
            .ok_or_else(|| anyhow!("{} has no {t} token", vocab.display()))
    };
    let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
    let err = |e| anyhow!("cannot build a tokenizer from {}: {e}", vocab.display());
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)))
        .map_err(err)?;
    tokenizer
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )));
    Ok(tokenizer)
}

/// Pads id rows at the end with `pad_id` into `[rows, width]` tensors on the CPU, where the
/// width is `max_len` ([`Padding::Fixed`]) or the longest row ([`Padding::Longest`]).
pub fn pad_rows(rows: &[&[i64]], pad_id: i64, max_len: usize, padding: Padding) -> Encoded {
    pad_rows_with_types(rows, None, pad_id, max_len, padding)
}

/// How wide a batch of rows of `lengths` tokens is padded: `max_len` for [`Padding::Fixed`],
/// else its longest row (at least 2, room for `[CLS]` and `[SEP]`).
pub fn padded_width(lengths: &[usize], max_len: usize, padding: Padding) -> usize {
    match padding {
        Padding::Fixed => max_len,
        Padding::Longest | Padding::Bucket => lengths.iter().copied().max().unwrap_or(0).max(2),
    }
}

/// [`pad_rows`] with each row's token type ids (pairs); padding positions get type 0, as
/// transformers pads them.
pub fn pad_rows_with_types(
    rows: &[&[i64]],
    types: Option<&[&[i64]]>,
    pad_id: i64,
    max_len: usize,
    padding: Padding,
) -> Encoded {
    let lengths: Vec<usize> = rows.iter().map(|r| r.len()).collect();
    let width = padded_width(&lengths, max_len, padding);
    let mut ids = vec![pad_id; rows.len() * width];
    let mut mask = vec![0i64; rows.len() * width];
    let mut type_ids = vec![0i64; rows.len() * width];
    for (r, row) in rows.iter().enumerate() {
        for (c, &id) in row.iter().take(width).enumerate() {
            ids[r * width + c] = id;
            mask[r * width + c] = 1;
        }
        if let Some(types) = types {
            for (c, &t) in types[r].iter().take(width).enumerate() {
                type_ids[r * width + c] = t;
            }
        }
    }
    let shape = [rows.len() as i64, width as i64];
    Encoded {
        input_ids: Tensor::from_slice(&ids).view(shape),
        attention_mask: Tensor::from_slice(&mask).view(shape),
        token_type_ids: match types {
            Some(_) => Tensor::from_slice(&type_ids).view(shape),
            None => Tensor::zeros(shape, (Kind::Int64, tch::Device::Cpu)),
        },
        row_lengths: Some(rows.iter().map(|r| r.len().min(width) as i64).collect()),
    }
}

/// One row of a `[batch, seq_len]` tensor as a list, for showing ids and masks in a notebook;
/// empty when the row does not exist.
pub fn row_preview(t: &Tensor, row: i64) -> Vec<i64> {
    if row < 0 || t.dim() == 0 || row >= t.size()[0] {
        return Vec::new();
    }
    Vec::try_from(t.get(row).to_device(tch::Device::Cpu)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_preview_shows_a_row_and_nothing_for_a_missing_one() {
        let t = Tensor::from_slice(&[1i64, 2, 3, 4]).view([2, 2]);
        assert_eq!(row_preview(&t, 1), vec![3, 4]);
        assert!(row_preview(&t, 2).is_empty());
        assert!(row_preview(&t, -1).is_empty());
    }
}
