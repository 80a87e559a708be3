//! `bert-finetune train --mlm --train-file CORPUS`: masked-language-model training on a user's
//! unlabelled text (continued pre-training, "domain adaptation"), as Hugging Face's
//! `run_mlm.py` runs it, on the same [`fit`] as every other run. The corpus (a text file, a
//! table's text column, a folder or glob of shards) is tokenized once into a token cache on
//! disk and trained on in place, so a corpus of any size trains in the same memory. The saved
//! folder is a `BertForMaskedLM` checkpoint: `predict --model DIR "… [MASK] …"` fills masks
//! with it, and `train --model DIR --train-file labelled.csv` fine-tunes the adapted encoder.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use bert_finetune::data::corpus::{Corpus, CorpusProgress, Grouping};
use bert_finetune::data::masking::Masking;
use bert_finetune::data::store::{default_cache_dir, Provenance, TokenStore};
use bert_finetune::data::tokenizer::{BertTokenizer, Padding, SpecialTokens};
use bert_finetune::data::EncodedSet;
use bert_finetune::model::{pretrained, BertForMaskedLM};
use bert_finetune::runtime::display::{size, thousands};
use bert_finetune::train::TrainConfig;

use super::fit::{check_run_folder, fit, flag_error, hold_out, save_run};
use super::own_data::OwnData;
use super::Common;

/// The flags of masked-language-model training (run_mlm's names).
#[derive(clap::Args, Default)]
pub struct MlmArgs {
    /// Masked-language-model training on the unlabelled text of --train-file (a text file,
    /// a CSV/TSV/JSON lines/Parquet table's text column, a folder or a glob of shards): the
    /// encoder adapts to your domain before you fine-tune it on a labelled task.
    #[arg(long)]
    pub mlm: bool,
    /// Share of tokens masked (run_mlm's --mlm_probability).
    #[arg(long, default_value_t = 0.15, value_name = "P")]
    pub mlm_probability: f64,
    /// One example a line (cut to --max-len), instead of texts concatenated and cut into
    /// blocks of --max-len tokens (run_mlm's default).
    #[arg(long)]
    pub line_by_line: bool,
    /// Percent of the corpus held out for validation (seeded) when no --validation-file is
    /// given.
    #[arg(long, default_value_t = 5.0, value_name = "PERCENT")]
    pub validation_split_percentage: f64,
    /// Mask whole words: a word is chosen with --mlm-probability and all its pieces are
    /// masked (transformers' whole_word_mask).
    #[arg(long)]
    pub whole_word_mask: bool,
    /// Folder of the token caches (default: $BERT_FINETUNE_CACHE/tokens, else
    /// ~/.cache/bert-finetune/tokens).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Tokenizes a corpus into the cache with a progress bar (on a terminal), and says what it did.
fn tokenized(
    corpus: &Corpus,
    tokenizer: &BertTokenizer,
    max_len: usize,
    cache: &Path,
) -> Result<Arc<TokenStore>> {
    let bar = std::io::stdout().is_terminal().then(|| {
        let bar = ProgressBar::new(1);
        if let Ok(style) = ProgressStyle::with_template(
            "  tokenizing {bar:40.cyan/blue} {bytes}/{total_bytes}  {msg}  ETA {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let mut report = |p: CorpusProgress| {
        if let Some(bar) = &bar {
            bar.set_length(p.bytes_total.max(1));
            bar.set_position(p.bytes_read);
            bar.set_message(format!("{} rows", thousands(p.rows)));
        }
    };
    let done = corpus.tokenize(tokenizer, max_len, cache, &mut report);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let done = done?;
    let info = done.store.info();
    let how = match done.provenance {
        Provenance::Reused => "reused the token cache".to_string(),
        Provenance::Built => format!("tokenized in {:.1} s into", info.seconds),
        Provenance::Rebuilt => format!(
            "tokenized again in {:.1} s (the cache under that name did not match) into",
            info.seconds
        ),
    };
    say!(
        "{}: {} rows, {} tokens; {how} {} ({})",
        corpus.describe(),
        thousands(info.rows),
        thousands(info.tokens as usize),
        done.store.dir().display(),
        size(done.store.token_bytes())
    );
    Ok(done.store)
}

pub fn run(
    common: &Common,
    own: &OwnData,
    mlm: &MlmArgs,
    config: TrainConfig,
    limit: Option<usize>,
    out: &Path,
    resume: bool,
) -> Result<()> {
    config.validate().map_err(|e| flag_error(e.into()))?;
    if !(mlm.validation_split_percentage > 0.0 && mlm.validation_split_percentage < 100.0) {
        bail!(
            "--validation-split-percentage {}: give a percentage between 0 and 100",
            mlm.validation_split_percentage
        );
    }
    if !(mlm.mlm_probability > 0.0 && mlm.mlm_probability < 1.0) {
        bail!(
            "--mlm-probability {}: give a probability between 0 and 1 (run_mlm's default is 0.15)",
            mlm.mlm_probability
        );
    }
    if common.max_len < 3 {
        bail!(
            "--max-len {}: a row needs room for [CLS], a token and [SEP]",
            common.max_len
        );
    }
    check_run_folder(out, resume)?;
    let train_arg = own
        .train_file
        .as_deref()
        .context("--mlm needs --train-file: the corpus to train on")?;
    let grouping = if mlm.line_by_line {
        Grouping::Lines
    } else {
        Grouping::Blocks
    };
    let column = own.text_columns.first().cloned();
    // Every file is found before the long work starts.
    let train_corpus = Corpus::new(train_arg, column.clone(), grouping)?;
    let val_corpus = own
        .validation_file
        .as_deref()
        .map(|f| Corpus::new(f, column.clone(), grouping))
        .transpose()?;

    let (device, model_name) = common.announce()?;
    say!(
        "Task: masked language modelling, {:.0}% of {} masked (80% [MASK], 10% random, 10% kept), {}",
        mlm.mlm_probability * 100.0,
        if mlm.whole_word_mask { "words" } else { "tokens" },
        match grouping {
            Grouping::Lines => format!("one line a row, cut to {} tokens", common.max_len),
            Grouping::Blocks => format!("texts in blocks of {} tokens", common.max_len),
        }
    );
    bert_finetune::runtime::device::manual_seed(common.seed);
    let tokenizer = pretrained::load_tokenizer(&model_name)?;
    let model = BertForMaskedLM::from_pretrained(&model_name, device)?;
    pretrained::check_vocabulary(&tokenizer, &model)?;
    let masking = Masking::for_tokenizer(mlm.mlm_probability, &tokenizer, model.config.vocab_size)?
        .with_whole_words(mlm.whole_word_mask);

    let cache = mlm.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let padding = Padding::from(common.padding);
    let set = |store: Arc<TokenStore>| {
        EncodedSet::from_store(
            store,
            tokenizer.pad_id,
            common.max_len,
            padding,
            masking.clone(),
        )
    };
    let all = set(tokenized(
        &train_corpus,
        &tokenizer,
        common.max_len,
        &cache,
    )?);
    let validation = val_corpus
        .as_ref()
        .map(|corpus| tokenized(corpus, &tokenizer, common.max_len, &cache).map(set))
        .transpose()?;
    let (train_set, val_set) = hold_out(
        all,
        validation,
        mlm.validation_split_percentage / 100.0,
        common.seed,
        limit,
        "rows",
    )?;
    let (trainer, history) = fit(model, config, train_set, val_set, out, resume)?;

    let summary = serde_json::json!({
        "model": model_name,
        "task": "masked_lm",
        "mlm_probability": mlm.mlm_probability,
        "grouping": grouping.name(),
        "max_len": common.max_len,
        "train_size": trainer.train_set().len(),
        "validation_metrics": history.epochs.iter().map(|e| &e.val_metrics).collect::<Vec<_>>(),
        "best": history.best,
        "stopped_early": history.stopped_early,
        "training_seconds": history.total_seconds,
    });
    save_run(&trainer, &tokenizer, &history, &summary, out)?;
    say!("\n{history}\n\nSaved to {}", out.display());
    Ok(())
}

/// Whether `predict` fills masks with the model in `dir`: a masked-LM checkpoint given texts
/// with `[MASK]`, or any text when `train --mlm` wrote the folder. (A base checkpoint such as
/// bert-base-uncased is a `BertForMaskedLM` too; given texts without a mask, it is read as a
/// classifier whose head starts untrained, as before.)
pub fn fills_masks(dir: &str, texts: &[String]) -> Result<bool> {
    if pretrained::head(dir)?.as_deref() != Some("ForMaskedLM") {
        return Ok(false);
    }
    let mask = SpecialTokens::read(Path::new(dir))?.mask;
    let summary = Path::new(dir).join("summary.json");
    let from_mlm = std::fs::read_to_string(&summary)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["task"] == "masked_lm");
    Ok(from_mlm || texts.iter().any(|t| t.contains(&mask)))
}

/// `predict --model DIR "… [MASK] …"` with a masked-LM checkpoint: the best tokens at each
/// mask, as the fill-mask pipeline lists them.
pub fn fill_mask(model_dir: &str, texts: &[String], top_k: usize) -> Result<()> {
    let device = bert_finetune::runtime::device::choose();
    let tokenizer = pretrained::load_tokenizer(model_dir)?;
    let model = BertForMaskedLM::from_pretrained(model_dir, device)?;
    pretrained::check_vocabulary(&tokenizer, &model)?;
    for filled in bert_finetune::model::fill_mask::fill_mask(&model, &tokenizer, texts, top_k)? {
        println!("{filled}\n");
    }
    Ok(())
}
