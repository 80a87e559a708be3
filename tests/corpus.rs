//! Corpora tokenized into the token cache, as a user of run_mlm.py would check them: the rows
//! of grouped blocks and of line-by-line equal transformers' tokenizer + run_mlm's grouping on
//! the same lines; shards give the rows of the one file; the cache is reused on the next run
//! and rebuilt (never silently reused) for another tokenizer, another setting, a changed file
//! or a damaged cache; an empty or all-blank corpus, and one that ends mid-write, are errors
//! naming the file that leave the cache as it was.

mod common;

use std::path::{Path, PathBuf};

use bert_finetune::data::cola::{Cola, Split};
use bert_finetune::data::corpus::{Corpus, Grouping, Tokenized};
use bert_finetune::data::store::Provenance;
use bert_finetune::data::tokenizer::BertTokenizer;
use common::*;

fn tokenizer() -> BertTokenizer {
    bert_finetune::model::pretrained::load_tokenizer(minilm()).unwrap()
}

/// 2,500 CoLA sentences with a blank line every 100 (so grouping spans three groups of 1,000
/// texts and line-by-line has blanks to drop).
fn lines() -> Vec<String> {
    let cola = Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train)
        .unwrap()
        .sentences();
    let mut out = Vec::new();
    for (i, s) in cola.iter().take(2500).enumerate() {
        if i % 100 == 99 {
            out.push(String::new());
        }
        out.push(s.clone());
    }
    out
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn tokenize(corpus: &Corpus, max_len: usize, cache: &Path) -> anyhow::Result<Tokenized> {
    corpus.tokenize(&tokenizer(), max_len, cache, &mut |_| {})
}

fn rows(t: &Tokenized) -> Vec<Vec<i64>> {
    (0..t.store.len()).map(|i| t.store.row(i)).collect()
}

/// What the cache folder holds (names), hidden ones included.
fn cache_entries(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn rows_equal_transformers_tokenizer_and_run_mlm_grouping() {
    rows_equal_run_mlm(&minilm());
}

/// The same with RoBERTa's and XLM-R's kinds of tokenizer (`<s> … </s>` around each text),
/// trained on CoLA by `tests/python/families.py`.
#[test]
fn roberta_and_xlm_r_rows_equal_run_mlm_grouping() {
    for family in FAMILIES {
        rows_equal_run_mlm(family_tokenizer(family).path());
    }
}

fn rows_equal_run_mlm(tokenizer_dir: &Path) {
    let tokenizer = BertTokenizer::from_dir(tokenizer_dir).unwrap();
    let dir = tmp();
    let file = dir.path().join("corpus.txt");
    write_lines(&file, &lines());
    let cache = dir.path().join("cache");
    for (grouping, flag) in [(Grouping::Blocks, "blocks"), (Grouping::Lines, "lines")] {
        let corpus = Corpus::new(&file, None, grouping).unwrap();
        let ours = rows(
            &corpus
                .tokenize(&tokenizer, 64, &cache, &mut |_| {})
                .unwrap(),
        );
        let want: Vec<Vec<i64>> = serde_json::from_str(&python(
            "corpus.py",
            &[
                path_str(tokenizer_dir),
                path_str(&file),
                flag.to_string(),
                "64".to_string(),
            ],
        ))
        .unwrap();
        println!("{flag}: {} rows", ours.len());
        assert_eq!(ours.len(), want.len(), "{flag}: rows");
        assert_eq!(ours, want, "{flag}: the rows differ from run_mlm's");
    }
}

#[test]
fn shards_give_the_rows_of_the_one_file() {
    let dir = tmp();
    let all = lines();
    let file = dir.path().join("corpus.txt");
    write_lines(&file, &all);
    let shards = dir.path().join("shards");
    std::fs::create_dir(&shards).unwrap();
    for (i, part) in all.chunks(700).enumerate() {
        write_lines(&shards.join(format!("part-{i:02}.txt")), part);
    }
    let cache = dir.path().join("cache");
    for grouping in [Grouping::Blocks, Grouping::Lines] {
        let one =
            rows(&tokenize(&Corpus::new(&file, None, grouping).unwrap(), 64, &cache).unwrap());
        let folder = Corpus::new(&shards, None, grouping).unwrap();
        assert_eq!(folder.files.len(), 4);
        assert_eq!(rows(&tokenize(&folder, 64, &cache).unwrap()), one);
        let pattern = PathBuf::from(format!("{}/part-*.txt", shards.display()));
        let glob = Corpus::new(&pattern, None, grouping).unwrap();
        assert_eq!(glob.files, folder.files);
        assert_eq!(rows(&tokenize(&glob, 64, &cache).unwrap()), one);
    }
    // A table's text column gives the rows of the same lines as text.
    let table = dir.path().join("corpus.jsonl");
    let json: String = all
        .iter()
        .map(|l| serde_json::json!({"id": 1, "text": l}).to_string() + "\n")
        .collect();
    std::fs::write(&table, json).unwrap();
    let from_table = tokenize(
        &Corpus::new(&table, None, Grouping::Lines).unwrap(),
        64,
        &cache,
    );
    let from_text = tokenize(
        &Corpus::new(&file, None, Grouping::Lines).unwrap(),
        64,
        &cache,
    );
    assert_eq!(rows(&from_table.unwrap()), rows(&from_text.unwrap()));
}

#[test]
fn the_cache_is_reused_and_rebuilt_when_anything_changed() {
    let dir = tmp();
    let file = dir.path().join("corpus.txt");
    write_lines(&file, &lines()[..300]);
    let cache = dir.path().join("cache");
    let corpus = Corpus::new(&file, None, Grouping::Lines).unwrap();
    let first = tokenize(&corpus, 64, &cache).unwrap();
    assert_eq!(first.provenance, Provenance::Built);
    let again = tokenize(&corpus, 64, &cache).unwrap();
    assert_eq!(again.provenance, Provenance::Reused);
    assert_eq!(again.store.dir(), first.store.dir());
    assert_eq!(rows(&again), rows(&first));

    // Another setting, another store.
    let shorter = tokenize(&corpus, 16, &cache).unwrap();
    assert_eq!(shorter.provenance, Provenance::Built);
    assert_ne!(shorter.store.dir(), first.store.dir());

    // Another tokenizer (the same vocabulary, one token added) never reads this cache.
    let other = copy_minilm();
    let mut json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(other.path().join("tokenizer.json")).unwrap(),
    )
    .unwrap();
    json["normalizer"]["lowercase"] = serde_json::Value::Bool(false);
    std::fs::write(other.path().join("tokenizer.json"), json.to_string()).unwrap();
    let cased = bert_finetune::model::pretrained::load_tokenizer(other.path()).unwrap();
    let by_other = corpus.tokenize(&cased, 64, &cache, &mut |_| {}).unwrap();
    assert_eq!(by_other.provenance, Provenance::Built);
    assert_ne!(by_other.store.dir(), first.store.dir());
    assert_ne!(
        rows(&by_other),
        rows(&first),
        "a cased tokenizer gives other ids"
    );

    // A damaged store under the right name is rebuilt, not read.
    drop((first, again));
    let dir_of = tokenize(&corpus, 64, &cache)
        .unwrap()
        .store
        .dir()
        .to_path_buf();
    let tokens = dir_of.join("tokens.bin");
    let len = std::fs::metadata(&tokens).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tokens)
        .unwrap()
        .set_len(len - 2)
        .unwrap();
    let repaired = tokenize(&corpus, 64, &cache).unwrap();
    assert_eq!(repaired.provenance, Provenance::Rebuilt);
    assert_eq!(std::fs::metadata(&tokens).unwrap().len(), len);

    // The corpus file changed: a new store.
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_lines(&file, &lines()[..310]);
    let changed = tokenize(&corpus, 64, &cache).unwrap();
    assert_eq!(changed.provenance, Provenance::Built);
    assert!(changed.store.len() > repaired.store.len());
}

#[test]
fn empty_blank_and_cut_corpora_are_errors_that_leave_the_cache_as_it_was() {
    let dir = tmp();
    let cache = dir.path().join("cache");
    let good = dir.path().join("good.txt");
    write_lines(&good, &lines()[..50]);
    tokenize(
        &Corpus::new(&good, None, Grouping::Lines).unwrap(),
        64,
        &cache,
    )
    .unwrap();
    let before = cache_entries(&cache);
    assert_eq!(before.len(), 1);

    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let blank = dir.path().join("blank.txt");
    std::fs::write(&blank, "\n  \n\t\n\n").unwrap();
    for (file, grouping) in [
        (&empty, Grouping::Lines),
        (&blank, Grouping::Lines),
        (&blank, Grouping::Blocks),
    ] {
        let err = tokenize(&Corpus::new(file, None, grouping).unwrap(), 64, &cache)
            .map(|_| ())
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(&path_str(file)), "{msg}");
        assert!(msg.contains("no text"), "{msg}");
        assert_eq!(cache_entries(&cache), before, "{msg}");
    }

    // A file cut inside a character (as a copy stopped mid-write leaves it).
    let cut = dir.path().join("cut.txt");
    let mut bytes = (lines()[..20].join("\n") + "\nnaïve café").into_bytes();
    bytes.pop(); // the last byte of é
    std::fs::write(&cut, bytes).unwrap();
    let err = tokenize(
        &Corpus::new(&cut, None, Grouping::Lines).unwrap(),
        64,
        &cache,
    )
    .map(|_| ())
    .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!("{}, line 21", path_str(&cut))),
        "{msg}"
    );
    assert!(msg.contains("mid-write"), "{msg}");
    assert_eq!(cache_entries(&cache), before, "{msg}");

    // No such file, an empty folder.
    let missing = dir.path().join("missing.txt");
    let msg = format!(
        "{:#}",
        Corpus::new(&missing, None, Grouping::Lines).unwrap_err()
    );
    assert!(msg.contains(&path_str(&missing)), "{msg}");
    let nothing = dir.path().join("nothing");
    std::fs::create_dir(&nothing).unwrap();
    let msg = format!(
        "{:#}",
        Corpus::new(&nothing, None, Grouping::Lines).unwrap_err()
    );
    assert!(msg.contains("no corpus files"), "{msg}");
}
