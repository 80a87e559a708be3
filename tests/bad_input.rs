//! The bad-input matrix: each row is a test that gives the program something a user could
//! give it and expects either the right result or a clear error naming the file, line,
//! tensor or field (never a panic or a silently wrong answer). docs/reliability.md lists the rows.

mod common;

use std::path::{Path, PathBuf};

use bert_finetune::data::cola::{Cola, MAX_FILE_BYTES};
use bert_finetune::model::pretrained;
use bert_finetune::model::BertForSequenceClassification;
use common::*;
use tch::Device;

// ---------------------------------------------------------------- data files

const ROW_A: &str = "gj04\t1\t\tOur friends won't buy this analysis.";
const ROW_B: &str = "gj04\t0\t*\tThey drank the pub.";

fn tsv(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("in_domain_train.tsv");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn load_text(text: &str) -> Result<Cola, String> {
    let dir = tmp();
    Cola::load(tsv(dir.path(), text.as_bytes())).map_err(|e| format!("{e:#}"))
}

fn data_err(text: &str) -> String {
    match load_text(text) {
        Ok(c) => panic!("accepted: {:?}", c.sentences()),
        Err(e) => e,
    }
}

#[test]
fn data_crlf_line_endings_load_without_carriage_returns() {
    let cola = load_text(&format!("{ROW_A}\r\n{ROW_B}\r\n")).unwrap();
    assert_eq!(cola.sentences()[1], "They drank the pub.");
    assert_eq!(cola.labels(), [1, 0]);
}

#[test]
fn data_a_utf8_byte_order_mark_is_not_part_of_the_first_row() {
    let cola = load_text(&format!("\u{feff}{ROW_A}\n{ROW_B}\n")).unwrap();
    let source = cola
        .frame
        .column("sentence_source")
        .unwrap()
        .str()
        .unwrap()
        .get(0);
    assert_eq!(source, Some("gj04"));
    assert_eq!(cola.len(), 2);
}

#[test]
fn data_blank_lines_are_skipped() {
    let cola = load_text(&format!("\n{ROW_A}\n\n   \n{ROW_B}\n\n\n")).unwrap();
    assert_eq!(cola.len(), 2);
}

#[test]
fn data_a_tab_inside_a_sentence_names_the_line() {
    let err = data_err(&format!("{ROW_A}\ngj04\t1\t\tA tab\there.\n"));
    assert!(
        err.contains("line 2") && err.contains("found 5") && err.contains("tab inside"),
        "{err}"
    );
}

#[test]
fn data_a_label_other_than_0_or_1_names_the_line() {
    for label in ["2", "-1", "1.0", "yes", ""] {
        let err = data_err(&format!(
            "{ROW_A}\n{ROW_B}\ngj04\t{label}\t\tSome sentence.\n"
        ));
        assert!(
            err.contains("line 3") && err.contains("label must be 0 or 1"),
            "{label:?}: {err}"
        );
    }
}

#[test]
fn data_a_header_row_is_skipped_and_a_header_only_file_is_an_error() {
    let header = "sentence_source\tlabel\tlabel_notes\tsentence";
    let cola = load_text(&format!("{header}\n{ROW_A}\n")).unwrap();
    assert_eq!(cola.len(), 1);
    let err = data_err(&format!("{header}\n"));
    assert!(err.contains("no data rows"), "{err}");
}

#[test]
fn data_a_huge_file_is_refused_before_it_is_read() {
    let dir = tmp();
    let path = dir.path().join("in_domain_train.tsv");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MAX_FILE_BYTES * 16).unwrap(); // sparse: 1 GB on paper, nothing on disk
    let start = std::time::Instant::now();
    let err = format!("{:#}", Cola::load(&path).unwrap_err());
    assert!(start.elapsed().as_secs_f64() < 1.0);
    assert!(
        err.contains("in_domain_train.tsv") && err.contains("1024 MB"),
        "{err}"
    );
}

#[test]
fn data_bytes_that_are_not_utf8_name_the_file() {
    let dir = tmp();
    let path = tsv(dir.path(), b"gj04\t1\t\tCaf\xe9 au lait.\n");
    let err = format!("{:#}", Cola::load(&path).unwrap_err());
    assert!(
        err.contains("in_domain_train.tsv") && err.contains("UTF-8"),
        "{err}"
    );
}

#[test]
fn data_too_few_columns_name_the_line() {
    let err = data_err(&format!("{ROW_A}\ngj04\t1\tNo notes column.\n"));
    assert!(err.contains("line 2") && err.contains("found 3"), "{err}");
}

// ---------------------------------------------------------------- checkpoints

fn edit_config(dir: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
}

#[test]
fn checkpoint_broken_or_truncated_config_json_names_the_file_and_position() {
    let dir = copy_minilm();
    let path = dir.path().join("config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("config.json") && err.contains("line"), "{err}");
    std::fs::write(&path, "{\"hidden_size\": 384,, }").unwrap();
    let err = load_err(dir.path());
    assert!(
        err.contains("config.json") && err.contains("column"),
        "{err}"
    );
}

#[test]
fn checkpoint_a_missing_config_field_is_named() {
    let dir = copy_minilm();
    edit_config(dir.path(), |c| {
        c.as_object_mut().unwrap().remove("hidden_size");
    });
    let err = load_err(dir.path());
    assert!(err.contains("missing field `hidden_size`"), "{err}");
}

#[test]
fn checkpoint_a_config_field_of_the_wrong_type_is_named() {
    let dir = copy_minilm();
    edit_config(dir.path(), |c| c["num_hidden_layers"] = "6".into());
    let err = load_err(dir.path());
    assert!(
        err.contains("invalid type") && err.contains("config.json"),
        "{err}"
    );
}

#[test]
fn checkpoint_impossible_sizes_are_refused_by_field_not_a_panic() {
    for (field, value) in [
        ("num_attention_heads", serde_json::json!(0)),
        ("hidden_size", serde_json::json!(-384)),
        ("hidden_dropout_prob", serde_json::json!(1.5)),
        ("layer_norm_eps", serde_json::json!(0.0)),
        ("pad_token_id", serde_json::json!(40000)),
    ] {
        let dir = copy_minilm();
        edit_config(dir.path(), |c| c[field] = value.clone());
        let err = load_err(dir.path());
        assert!(
            err.contains(field) && err.contains("config.json"),
            "{field}: {err}"
        );
    }
    // A null pad_token_id, as some hub configs have, means 0.
    let dir = copy_minilm();
    edit_config(dir.path(), |c| c["pad_token_id"] = serde_json::Value::Null);
    BertForSequenceClassification::from_pretrained(&path_str(dir.path()), 2, Device::Cpu).unwrap();
}

#[test]
fn checkpoint_a_non_float_tensor_is_named() {
    let dir = copy_minilm();
    let values: Vec<u8> = (0..384i64).flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![384], &values).unwrap();
    let bytes = safetensors::serialize([("pooler.dense.bias", view)], None).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
    let err = load_err(dir.path());
    assert!(
        err.contains("pooler.dense.bias") && err.contains("I64") && err.contains("floating-point"),
        "{err}"
    );
}

fn tokenizer_err(dir: &Path) -> String {
    match pretrained::load_tokenizer(dir) {
        Ok(_) => panic!("{} has a tokenizer although it is broken", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn checkpoint_missing_or_broken_tokenizer_files_are_named() {
    let dir = copy_minilm();
    std::fs::remove_file(dir.path().join("vocab.txt")).unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), "{\"model\": 3}").unwrap();
    let err = tokenizer_err(dir.path());
    assert!(err.contains("tokenizer.json"), "{err}");
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = tokenizer_err(dir.path());
    assert!(
        err.contains("neither tokenizer.json nor vocab.txt"),
        "{err}"
    );
}

#[test]
fn checkpoint_only_a_pickle_is_refused_with_a_conversion_hint() {
    let dir = copy_minilm();
    std::fs::rename(
        dir.path().join("model.safetensors"),
        dir.path().join("pytorch_model.bin"),
    )
    .unwrap();
    let err = load_err(dir.path());
    assert!(
        err.contains("pytorch_model.bin") && err.contains("save_pretrained"),
        "{err}"
    );
}

/// `predict` on a checkpoint folder: exit code, stderr, wall time and peak memory (kB).
fn predict_with(dir: &Path) -> (i32, String, std::time::Duration, i64) {
    let dir = dir.as_os_str();
    measured(&[
        "predict".as_ref(),
        "--model".as_ref(),
        dir,
        "They investigated.".as_ref(),
    ])
}

/// Runs the binary: exit code, stderr, wall time and peak resident memory (kB).
///
/// The peak is measured by a small Python parent: a child's `ru_maxrss` includes what its
/// parent held when it was spawned, and this test process holds models of its own.
fn measured(args: &[&std::ffi::OsStr]) -> (i32, String, std::time::Duration, i64) {
    let python = std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"))
        .join("bin/python");
    let wrapper = "import resource, subprocess, sys\n\
        r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n\
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
        sys.exit(r.returncode if r.returncode >= 0 else 100 - r.returncode)";
    let start = std::time::Instant::now();
    let out = std::process::Command::new(python)
        .args(["-c", wrapper, env!("CARGO_BIN_EXE_bert-finetune")])
        .args(args)
        .env("BERT_FINETUNE_DEVICE", "cpu")
        .output()
        .unwrap();
    let wall = start.elapsed();
    let code = out.status.code().expect("the wrapper exits");
    assert!(code < 100, "the binary died of signal {}", code - 100);
    let peak_kb = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (
        code,
        String::from_utf8_lossy(&out.stderr).into_owned(),
        wall,
        peak_kb,
    )
}

/// An absurd size (10^11, a few keystrokes from a real value) fails as one line naming the
/// field and a tensor of the file, from the header alone: within a second in the library,
/// exit code 1 from the CLI, no panic, and no allocation attempted.
#[test]
fn checkpoint_an_absurd_size_is_one_line_naming_the_field_and_tensor_before_allocating() {
    let (_, _, _, baseline_kb) = measured(&["--help".as_ref()]);
    for (field, tensor) in [
        ("vocab_size", "embeddings.word_embeddings.weight"),
        ("hidden_size", "embeddings.word_embeddings.weight"),
        (
            "intermediate_size",
            "encoder.layer.0.intermediate.dense.weight",
        ),
        (
            "max_position_embeddings",
            "embeddings.position_embeddings.weight",
        ),
    ] {
        let dir = copy_minilm();
        edit_config(dir.path(), |c| c[field] = 100_000_000_000i64.into());
        let start = std::time::Instant::now();
        let err = load_err(dir.path());
        let took = start.elapsed();
        assert!(
            err.contains(&format!("{field} is 100000000000 in config.json"))
                && err.contains(tensor)
                && !err.contains('\n'),
            "{field}: {err}"
        );
        assert!(took.as_secs_f64() < 1.0, "{field}: {took:?}");
        let (code, stderr, wall, peak_kb) = predict_with(dir.path());
        println!("{field}: library {took:?}, CLI {wall:?}, peak {peak_kb} kB: {stderr}");
        assert_eq!(code, 1, "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ")
                && stderr.contains(field)
                && stderr.contains(tensor)
                && !stderr.contains("panicked")
                && !stderr.contains("allocate"),
            "{stderr}"
        );
        // Starting the binary maps libtorch (~470 MB here); MiniLM's weights add 90 MB read
        // and 90 MB allocated. Refusing from the header adds almost nothing to the start.
        assert!(
            peak_kb - baseline_kb < 50_000,
            "{field}: peak {peak_kb} kB, {baseline_kb} kB for --help"
        );
    }
}

#[test]
fn checkpoint_more_layers_than_the_file_holds_names_the_first_missing_tensor() {
    let (_, _, _, baseline_kb) = measured(&["--help".as_ref()]);
    for layers in [7i64, 100_000_000_000] {
        let dir = copy_minilm();
        edit_config(dir.path(), |c| c["num_hidden_layers"] = layers.into());
        let start = std::time::Instant::now();
        let err = load_err(dir.path());
        assert!(start.elapsed().as_secs_f64() < 1.0);
        assert!(
            err.contains(&format!("num_hidden_layers is {layers}"))
                && err.contains("holds 6 encoder layers")
                && err.contains("bert.encoder.layer.6.attention.self.query.weight")
                && !err.contains('\n'),
            "{err}"
        );
        let (code, stderr, _, peak_kb) = predict_with(dir.path());
        assert_eq!(code, 1, "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("num_hidden_layers")
                && stderr.contains("bert.encoder.layer.6.attention.self.query.weight")
                && !stderr.contains("panicked"),
            "{stderr}"
        );
        assert!(peak_kb - baseline_kb < 50_000, "peak {peak_kb} kB");
    }
}

/// A model built from a config alone (no weights to compare with) refuses a size the
/// machine cannot hold, naming the part and its fields, instead of panicking inside tch.
#[test]
fn checkpoint_a_config_too_large_for_memory_is_refused_before_allocating() {
    let dir = copy_minilm();
    let path = dir.path().join("config.json");
    let base = bert_finetune::model::BertConfig::from_file(&path).unwrap();
    for (field, part) in [
        ("vocab_size", "word_embeddings"),
        ("num_hidden_layers", "the encoder"),
        ("intermediate_size", "the encoder"),
    ] {
        let mut config = base.clone();
        match field {
            "vocab_size" => config.vocab_size = 100_000_000_000,
            "num_hidden_layers" => config.num_hidden_layers = 100_000_000_000,
            _ => config.intermediate_size = 100_000_000_000,
        }
        let err = match BertForSequenceClassification::new(&config, Device::Cpu) {
            Ok(_) => panic!("a model of {field} 10^11 was built"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains(&format!("{field} = 100000000000"))
                && err.contains(part)
                && err.contains("memory available"),
            "{field}: {err}"
        );
    }
}

/// A tokenizer from another checkpoint (ids beyond the model's vocabulary) is refused as one
/// line before anything runs; the embedding lookup would otherwise fail inside libtorch.
#[test]
fn checkpoint_a_tokenizer_larger_than_the_vocabulary_is_refused() {
    let dir = tmp();
    let config = bert_finetune::model::BertConfig::new(100, 8, 1, 2, 16);
    BertForSequenceClassification::new(&config, Device::Cpu)
        .unwrap()
        .save_pretrained(dir.path(), None)
        .unwrap();
    for f in ["tokenizer.json", "vocab.txt"] {
        std::fs::copy(minilm().join(f), dir.path().join(f)).unwrap();
    }
    let (code, stderr, _, _) = predict_with(dir.path());
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("ids up to 30521") && stderr.contains("vocab_size is 100"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------- the CLI's sentences

fn predict(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_bert-finetune"))
        .arg("predict")
        .arg("--model")
        .arg(minilm())
        .args(args)
        .env("BERT_FINETUNE_DEVICE", "cpu")
        .output()
        .unwrap()
}

#[test]
fn cli_an_empty_sentence_and_one_of_10000_words_are_classified() {
    let long = vec!["word"; 10_000].join(" ");
    let out = predict(&["".as_ref(), long.as_ref(), "They investigated.".as_ref()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One row each, labelled with CoLA's classes (the checkpoint names none of its own).
    let rows = stdout.lines().filter(|l| l.contains("acceptable")).count();
    assert!(rows >= 3, "{stdout}");
}

#[test]
fn cli_a_sentence_that_is_not_utf8_is_refused_by_the_argument_parser() {
    use std::os::unix::ffi::OsStrExt;
    let out = predict(&[std::ffi::OsStr::from_bytes(b"Caf\xe9 au lait.")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("UTF-8") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
