//! Masked-LM training from the command line, as a user of run_mlm.py would try it: a text
//! corpus made of CoLA sentences, `train --mlm` with `--max-steps`, the token cache reused by
//! the next run, a folder `predict` fills masks with and `train --model` fine-tunes, a run
//! killed with SIGKILL mid-epoch resumed to the uninterrupted result; bad
//! input (a masking probability outside (0, 1), an empty corpus, a tokenizer with ids the
//! model lacks) stops with an error naming it before any training.

mod common;

use std::path::Path;

use bert_finetune::data::cola::{Cola, Split};
use common::*;

fn corpus(dir: &Path, n: usize) -> String {
    let cola = Cola::load_split(bert_finetune::runtime::settings::cola_dir(), Split::Train)
        .unwrap()
        .sentences();
    let file = dir.join("corpus.txt");
    std::fs::write(&file, cola[..n].join("\n") + "\n").unwrap();
    path_str(&file)
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    cli(args).output().unwrap()
}

fn train_args(corpus: &str, cache: &str, out: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "train",
        "--mlm",
        "--train-file",
        corpus,
        "--cache-dir",
        cache,
        "--out",
        out,
        "--max-len",
        "32",
        "--batch-size",
        "16",
        "--lr",
        "1e-4",
        "--cpu",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn train_mlm_then_fill_masks_and_fine_tune_the_adapted_encoder() {
    let dir = tmp();
    let corpus = corpus(dir.path(), 600);
    let cache = path_str(&dir.path().join("cache"));
    let out = dir.path().join("mlm_out");
    let stdout = succeeded(&run(&train_args(
        &corpus,
        &cache,
        &path_str(&out),
        &["--line-by-line", "--max-steps", "6"],
    )));
    println!("{stdout}");
    assert!(
        stdout.contains("Task: masked language modelling, 15% of tokens masked"),
        "{stdout}"
    );
    assert!(stdout.contains("600 rows"), "{stdout}");
    assert!(stdout.contains("tokenized in"), "{stdout}");
    assert!(
        stdout.contains("570 training rows, 30 validation rows"),
        "{stdout}"
    );

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "BertForMaskedLM");
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("history.json")).unwrap()).unwrap();
    assert_eq!(
        history["batch_losses"].as_array().unwrap().len(),
        6,
        "--max-steps 6 trains 6 steps"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["task"], "masked_lm");
    let perplexity = summary["validation_metrics"][0]["perplexity"]
        .as_f64()
        .unwrap();
    assert!(perplexity.is_finite() && perplexity > 1.0, "{perplexity}");

    // The next run on the same corpus reads the cache.
    let again = succeeded(&run(&train_args(
        &corpus,
        &cache,
        &path_str(&dir.path().join("again")),
        &["--line-by-line", "--max-steps", "1"],
    )));
    assert!(again.contains("reused the token cache"), "{again}");

    // Fill-mask, as the pipeline lists it: 5 candidates, best first.
    let filled = succeeded(&run(&[
        "predict",
        "--model",
        &path_str(&out),
        "The cat [MASK] on the mat.",
    ]));
    println!("{filled}");
    assert!(
        filled.contains("Fill-mask: The cat [MASK] on the mat."),
        "{filled}"
    );
    let scores: Vec<f64> = filled
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            match fields.as_slice() {
                ["1", _token, score, ..] => score.parse().ok(),
                _ => None,
            }
        })
        .collect();
    assert_eq!(scores.len(), 5, "{filled}");
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // The adapted encoder fine-tunes as a classifier (its head is new, as transformers says).
    let tuned = dir.path().join("tuned");
    succeeded(&run(&[
        "train",
        "--model",
        &path_str(&out),
        "--limit",
        "64",
        "--epochs",
        "1",
        "--cpu",
        "--out",
        &path_str(&tuned),
    ]));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tuned.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "BertForSequenceClassification");
}

#[test]
fn bad_masked_lm_input_is_named_before_training() {
    let dir = tmp();
    let corpus = corpus(dir.path(), 50);
    let cache = path_str(&dir.path().join("cache"));
    let out = path_str(&dir.path().join("out"));
    let failed = |args: Vec<String>| {
        let result = cli(&args).output().unwrap();
        assert!(!result.status.success());
        String::from_utf8_lossy(&result.stderr).into_owned()
    };

    let err = failed(train_args(
        &corpus,
        &cache,
        &out,
        &["--mlm-probability", "1.5"],
    ));
    assert!(err.contains("--mlm-probability 1.5"), "{err}");

    let blank = dir.path().join("blank.txt");
    std::fs::write(&blank, "\n\n   \n").unwrap();
    let err = failed(train_args(&path_str(&blank), &cache, &out, &[]));
    assert!(
        err.contains(&path_str(&blank)) && err.contains("no text"),
        "{err}"
    );

    // A tokenizer with an added token the model has no embedding for.
    let model = copy_minilm();
    let file = model.path().join("tokenizer.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    json["added_tokens"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": 30522, "content": "[NEW]", "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true
        }));
    std::fs::write(&file, json.to_string()).unwrap();
    let mut args = train_args(&corpus, &cache, &out, &[]);
    args.extend(["--model".to_string(), path_str(model.path())]);
    let err = failed(args);
    assert!(err.contains("30522") && err.contains("vocab_size"), "{err}");

    // Nothing was trained or saved.
    assert!(!Path::new(&out).join("config.json").exists());
}

#[test]
fn a_masked_lm_run_killed_mid_epoch_resumes_to_the_uninterrupted_result() {
    use std::io::{BufRead, BufReader};
    let dir = tmp();
    let corpus = corpus(dir.path(), 120);
    let cache = path_str(&dir.path().join("cache"));
    let extra = ["--line-by-line", "--epochs", "3", "--seed", "7"];
    let reference = dir.path().join("uninterrupted");
    succeeded(&run(&train_args(
        &corpus,
        &cache,
        &path_str(&reference),
        &extra,
    )));

    let killed = dir.path().join("killed");
    let mut child = cli(&train_args(&corpus, &cache, &path_str(&killed), &extra))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("Epoch 2 / 3") {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the run ended early"
        );
    }
    child.kill().unwrap(); // SIGKILL, in the middle of epoch 2
    child.wait().unwrap();
    let mut resume = train_args(&corpus, &cache, &path_str(&killed), &extra);
    resume.extend(["--resume".to_string(), path_str(&killed)]);
    let stdout = succeeded(&run(&resume));
    assert!(stdout.contains("Resuming after epoch 1 of 3"), "{stdout}");
    assert!(stdout.contains("reused the token cache"), "{stdout}");
    assert_eq!(
        history_without_times(&killed),
        history_without_times(&reference),
        "the resumed run's batch losses and validation figures are the uninterrupted run's"
    );
    let (a, b) = (
        read_tensors(&killed.join("model.safetensors")),
        read_tensors(&reference.join("model.safetensors")),
    );
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs after resuming");
    }
}
