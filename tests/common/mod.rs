//! Shared helpers for the integration tests: paths, the Python reference, tensor checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tch::Tensor;

pub mod questions;
pub mod steps;
pub mod tags;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn minilm() -> PathBuf {
    bert_finetune::model::default_checkpoint()
}

pub fn cola_file(split: bert_finetune::data::cola::Split) -> PathBuf {
    bert_finetune::runtime::settings::cola_dir().join(split.relative_path())
}

/// The encoder families other than BERT that the parity tests build with transformers.
pub const FAMILIES: [&str; 2] = ["roberta", "xlm-roberta"];

/// A tokenizer of `family`'s kind (byte-level BPE for RoBERTa, SentencePiece Unigram for
/// XLM-R) trained on CoLA's training sentences by `tests/python/families.py`, in a new folder.
pub fn family_tokenizer(family: &str) -> tempfile::TempDir {
    let dir = tmp();
    python(
        "families.py",
        &[
            "tokenizer".to_string(),
            "--family".into(),
            family.into(),
            "--cola".into(),
            path_str(&cola_file(bert_finetune::data::cola::Split::Train)),
            "--out".into(),
            path_str(dir.path()),
        ],
    );
    dir
}

/// Runs `tests/python/<script>` with the project venv's Python and returns its stdout.
pub fn python<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(script: &str, args: &[S]) -> String {
    let venv = std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"));
    let out = Command::new(venv.join("bin/python"))
        .arg(root().join("tests/python").join(script))
        .args(args)
        .env("PYTHONHASHSEED", "0")
        .output()
        .expect("the venv's python runs (make test sets it up)");
    assert!(
        out.status.success(),
        "python {script} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a safetensors file written by Python into a name → tensor map.
pub fn read_tensors(path: &Path) -> std::collections::HashMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// Largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    let d = (a.to_kind(tch::Kind::Double) - b.to_kind(tch::Kind::Double)).abs();
    d.max().double_value(&[])
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Command-line arguments: fixed options followed by free-standing values (sentences).
pub fn argv(options: &[&str], values: &[String]) -> Vec<String> {
    options
        .iter()
        .map(|s| s.to_string())
        .chain(values.iter().cloned())
        .collect()
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// A copy of all-MiniLM-L6-v2 that a test may damage.
pub fn copy_minilm() -> tempfile::TempDir {
    let dir = tmp();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
    ] {
        std::fs::copy(minilm().join(f), dir.path().join(f)).unwrap();
    }
    dir
}

/// The error of loading a checkpoint folder that must not load.
pub fn load_err(dir: &Path) -> String {
    match bert_finetune::model::BertForSequenceClassification::from_pretrained(
        &path_str(dir),
        2,
        tch::Device::Cpu,
    ) {
        Ok(_) => panic!("{} loaded although it is broken", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

/// The `bert-finetune` binary with `args`, offline (tests never reach the network).
pub fn cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bert-finetune"));
    command.args(args).env("HF_HUB_OFFLINE", "1");
    command
}

/// A finished command's standard output; a failure panics with its output and errors.
pub fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A run folder's history.json without its wall-clock figures, which differ between any two
/// runs (what a resumed run is compared by).
pub fn history_without_times(out: &Path) -> serde_json::Value {
    let mut h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    for e in h["epochs"].as_array_mut().unwrap() {
        for k in ["train_seconds", "val_seconds", "sentences_per_second"] {
            e[k] = 0.into();
        }
    }
    h["total_seconds"] = 0.into();
    h
}
