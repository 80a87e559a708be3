//! Property tests: whatever bytes or JSON a user's file or a server's answer holds, the
//! readers return `Ok` or an error naming the file, header or field: never a panic.
//!
//! Covered: the CoLA TSV reader and zip archive, `config.json` parsing and validation (also
//! compared with a real weights header), the safetensors header reader and shape check,
//! `tokenizer.json` (any bytes, and a real one with any part replaced), `vocab.txt`, and the
//! hub's `HEAD` answers and revision names.
//!
//! Each property runs proptest's default 256 cases in `make test` (3,072 in all, 3 s here);
//! `PROPTEST_CASES=20000 cargo test --release --test properties` ran 240,000 once by hand
//! (206 s, all passed).

mod common;

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use bert_finetune::data::cola::Cola;
use bert_finetune::data::tokenizer::BertTokenizer;
use bert_finetune::model::hub::answer::{self, HeadAnswer, MAX_TEXT_BYTES, MAX_WEIGHTS_BYTES};
use bert_finetune::model::hub::RepoCache;
use bert_finetune::model::{shapes, weights, BertConfig};
use common::*;
use proptest::prelude::*;
use serde_json::Value;

fn config() -> ProptestConfig {
    ProptestConfig {
        // Failures are reported with their minimal input; nothing is written into tests/.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// MiniLM's real `config.json`, the starting point of every mutation.
fn minilm_config() -> &'static serde_json::Map<String, Value> {
    static CONFIG: OnceLock<serde_json::Map<String, Value>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let text = std::fs::read_to_string(minilm().join("config.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

/// MiniLM's real weights header (read once: 90 MB file, a few kB of header).
fn minilm_header() -> &'static weights::Header {
    static HEADER: OnceLock<weights::Header> = OnceLock::new();
    HEADER.get_or_init(|| weights::read_header(&minilm().join("model.safetensors")).unwrap())
}

/// The raw header JSON of MiniLM's weights.
fn minilm_header_json() -> &'static serde_json::Map<String, Value> {
    static JSON: OnceLock<serde_json::Map<String, Value>> = OnceLock::new();
    JSON.get_or_init(|| {
        let bytes = std::fs::read(minilm().join("model.safetensors")).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        serde_json::from_slice(&bytes[8..8 + n]).unwrap()
    })
}

/// Any JSON value, a few levels deep; numbers include the absurd and the negative.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-4i64..4).prop_map(|e| Value::from(10f64.powi(e as i32 * 4))),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0i64..600).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z0-9_]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field of the config (a known one, mostly) and a new value for it, or its removal.
fn config_edit() -> impl Strategy<Value = (String, Option<Value>)> {
    let field = prop_oneof![
        prop::sample::select(vec![
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "hidden_act",
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "max_position_embeddings",
            "type_vocab_size",
            "layer_norm_eps",
            "initializer_range",
            "pad_token_id",
            "position_embedding_type",
            "classifier_dropout",
            "id2label",
            "label2id",
            "num_labels",
            "model_type",
            "architectures",
            "is_decoder",
        ])
        .prop_map(String::from),
        "[a-z_]{1,10}",
    ];
    (field, prop::option::weighted(0.9, json_value()))
}

/// Writes `bytes` as `name` into a new folder; the folder lives as long as the guard.
fn file_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tmp();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn names(err: &anyhow::Error, path: &Path) -> bool {
    format!("{err:#}").contains(&path.display().to_string())
}

/// A path made of these parts stays inside `root` whatever they are.
fn inside(root: &Path, path: &Path) -> bool {
    path.starts_with(root)
        && path
            .strip_prefix(root)
            .unwrap()
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cola_reader_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let (_dir, path) = file_with("in_domain_train.tsv", &bytes);
        if let Err(e) = Cola::load(&path) {
            prop_assert!(names(&e, &path), "{e:#}");
        }
    }

    #[test]
    fn cola_reader_takes_any_rows(rows in prop::collection::vec(
        ("[a-z0-9]{0,5}", prop_oneof![Just("0".to_string()), Just("1".to_string()),
         ".{0,3}".prop_map(String::from)], prop_oneof![Just(""), Just("*")],
         "[ -~\t\r\u{e9}\u{feff}]{0,40}"), 0..12)) {
        let text: String = rows
            .iter()
            .map(|(source, label, mark, sentence)| format!("{source}\t{label}\t{mark}\t{sentence}\n"))
            .collect();
        let (_dir, path) = file_with("in_domain_train.tsv", text.as_bytes());
        match Cola::load(&path) {
            Ok(cola) => prop_assert!(cola.labels().iter().all(|l| *l == 0 || *l == 1)),
            Err(e) => prop_assert!(names(&e, &path), "{e:#}"),
        }
    }

    #[test]
    fn cola_archive_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let (dir, path) = file_with("cola_public_1.1.zip", &bytes);
        let dest = dir.path().join("data");
        prop_assert!(bert_finetune::data::archive::extract(&path, &dest).is_err());
        // Nothing half-unpacked is left where the data would go.
        prop_assert!(!dest.join("cola_public").exists());
    }

    #[test]
    fn config_json_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let (_dir, path) = file_with("config.json", &bytes);
        if let Err(e) = BertConfig::from_file(&path) {
            prop_assert!(names(&e, &path), "{e:#}");
        }
    }

    /// Mutations of a real config: parsing, validation, the comparison with the real weights
    /// header and the memory footprint all answer without panicking; anything accepted is a
    /// config whose shapes equal the weights'.
    #[test]
    fn config_json_takes_any_field_value(edits in prop::collection::vec(config_edit(), 1..4)) {
        let mut json = minilm_config().clone();
        for (field, value) in &edits {
            match value {
                Some(v) => json.insert(field.clone(), v.clone()),
                None => json.remove(field),
            };
        }
        let text = Value::Object(json).to_string();
        let (_dir, path) = file_with("config.json", text.as_bytes());
        let config = match BertConfig::read(&path) {
            Ok(c) => c,
            Err(e) => {
                prop_assert!(names(&e, &path), "{e:#}");
                return Ok(());
            }
        };
        let _ = shapes::footprint(&config);
        if weights::check_header(&config, minilm_header()).is_ok() && config.validate().is_ok() {
            let layers = config.num_hidden_layers;
            prop_assert!(layers <= 6);
            for p in shapes::parameters(&config, layers) {
                if let Some((_, shape)) = minilm_header()
                    .tensors
                    .get(p.name.strip_prefix("bert.").unwrap_or(&p.name))
                {
                    let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                    prop_assert!(shape == p.shape() || p.name.starts_with("classifier."),
                        "{} {:?} {:?}", p.name, shape, p.shape());
                }
            }
        }
    }

    #[test]
    fn safetensors_header_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let (_dir, path) = file_with("model.safetensors", &bytes);
        if let Err(e) = weights::read_header(&path) {
            prop_assert!(names(&e, &path), "{e:#}");
        }
    }

    /// A real header with one tensor's entry replaced, a wrong length prefix or data of the
    /// wrong size: refused naming the file, or read and then compared with the config.
    #[test]
    fn safetensors_header_takes_any_entry(
        tensor in prop::sample::select(minilm_header_json().keys().cloned().collect::<Vec<_>>()),
        entry in json_value(),
        shift in prop_oneof![Just(0i64), -9i64..9, Just(i64::MAX / 2)],
        extra in 0usize..64,
    ) {
        let mut json = minilm_header_json().clone();
        json.insert(tensor, entry);
        let header = Value::Object(json).to_string().into_bytes();
        let n = (header.len() as i64).saturating_add(shift) as u64;
        let mut bytes = n.to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        bytes.extend(std::iter::repeat_n(0u8, extra));
        let (_dir, path) = file_with("model.safetensors", &bytes);
        let config = BertConfig::from_file(&minilm().join("config.json")).unwrap();
        match weights::read_header(&path) {
            Ok(header) => { let _ = weights::check_header(&config, &header); }
            Err(e) => prop_assert!(names(&e, &path), "{e:#}"),
        }
    }

    #[test]
    fn tokenizer_json_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let (dir, path) = file_with("tokenizer.json", &bytes);
        if let Err(e) = BertTokenizer::from_dir(dir.path()) {
            prop_assert!(names(&e, &path), "{e:#}");
        }
    }

    /// Any headers a server may send about a file: refused naming the URL, or accepted only
    /// with a commit and etag that name nothing but themselves and a size within limits.
    #[test]
    fn hub_head_answers_are_checked(headers in prop::collection::vec((
        prop::sample::select(vec!["X-Repo-Commit", "x-repo-commit", "ETag", "X-Linked-Etag",
            "X-Linked-Size", "Content-Length", "Location", "location", "X-Other"]),
        prop_oneof![
            "[0-9a-f]{40}",
            "\"?(W/)?[0-9a-f]{40}\"?",
            "[0-9]{1,25}",
            "(\\.\\./|/|[a-z]){0,12}",
            "(https?://|/|file:)[a-z0-9.:@/]{0,20}",
            ".{0,50}",
        ]), 0..7),
        file in prop::sample::select(vec!["config.json", "model.safetensors", "vocab.txt"]),
    ) {
        let url = format!("http://127.0.0.1:8/org/m/resolve/main/{file}");
        let headers: Vec<(String, String)> =
            headers.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        match answer::read_head(&url, file, &headers) {
            Err(e) => prop_assert!(format!("{e:#}").contains(&url), "{e:#}"),
            Ok(HeadAnswer::Follow(target)) => prop_assert!(answer::same_origin(&target, &url)),
            Ok(HeadAnswer::File(meta)) => {
                prop_assert!(meta.commit.len() == 40
                    && meta.commit.bytes().all(|b| b.is_ascii_hexdigit()));
                let limit = if file.ends_with(".safetensors") {
                    MAX_WEIGHTS_BYTES
                } else {
                    MAX_TEXT_BYTES
                };
                prop_assert!(meta.size <= limit);
                let root = Path::new("/cache/models--org--m");
                let repo = RepoCache { root: root.to_path_buf() };
                prop_assert!(inside(root, &repo.snapshot(&meta.commit).join(file)));
                prop_assert!(inside(root, &repo.blob(&meta.etag)));
                prop_assert!(inside(root, &repo.incomplete(&meta.etag)));
                prop_assert!(inside(Path::new("/cache"), &repo.lock(&meta.etag)));
                prop_assert!(meta.url.starts_with("http"));
            }
        }
    }

    #[test]
    fn revision_names_never_leave_refs(revision in prop_oneof![
        "[a-z0-9./_+-]{0,20}", ".{0,20}", "(\\.\\.|[a-z]{1,3})(/(\\.\\.|[a-z]{1,3})){0,4}"]) {
        if answer::check_revision(&revision).is_ok() {
            let refs = Path::new("/cache/models--org--m/refs");
            prop_assert!(inside(refs, &refs.join(&revision)), "{revision:?}");
        }
    }
}

/// MiniLM's real `tokenizer.json` (466 kB), the starting point of its mutations.
fn minilm_tokenizer() -> &'static serde_json::Map<String, Value> {
    static JSON: OnceLock<serde_json::Map<String, Value>> = OnceLock::new();
    JSON.get_or_init(|| {
        let text = std::fs::read_to_string(minilm().join("tokenizer.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

proptest! {
    #![proptest_config(config())]

    /// A hub's `tokenizer.json` with one part replaced (its model, normalizer, added tokens…),
    /// or one vocabulary entry given any id: loaded and usable, or refused naming the file.
    #[test]
    fn tokenizer_json_takes_any_part(
        part in prop::sample::select(vec!["truncation", "padding", "added_tokens",
            "normalizer", "pre_tokenizer", "post_processor", "decoder", "model", "version"]),
        value in json_value(),
        token in "\\[(CLS|SEP|PAD|UNK)\\]|[a-z]{1,4}",
        id in prop_oneof![any::<i64>(), 0i64..40000],
        replace_part in any::<bool>(),
    ) {
        let mut json = minilm_tokenizer().clone();
        if replace_part {
            json.insert(part.to_string(), value);
        } else if let Some(vocab) = json
            .get_mut("model")
            .and_then(|m| m.get_mut("vocab"))
            .and_then(Value::as_object_mut)
        {
            vocab.insert(token, Value::from(id));
        }
        let (dir, path) = file_with("tokenizer.json", Value::Object(json).to_string().as_bytes());
        match BertTokenizer::from_dir(dir.path()) {
            Ok(tokenizer) => {
                let _ = tokenizer.encode("They investigated the café.");
                let _ = tokenizer.max_id();
            }
            Err(e) => prop_assert!(names(&e, &path) || names(&e, dir.path()), "{e:#}"),
        }
    }

    /// A `vocab.txt` of any lines (the tokenizer built from it when `tokenizer.json` is absent).
    #[test]
    fn vocab_txt_takes_any_lines(lines in prop::collection::vec(".{0,8}", 0..40)) {
        let (dir, path) = file_with("vocab.txt", lines.join("\n").as_bytes());
        match BertTokenizer::from_dir(dir.path()) {
            Ok(tokenizer) => { let _ = tokenizer.encode("They investigated."); }
            Err(e) => prop_assert!(names(&e, &path) || names(&e, dir.path()), "{e:#}"),
        }
    }
}
