//! Downloading from the Hugging Face hub, against a local stand-in (`tests/hub/server.py`)
//! that serves a random BERT saved by transformers under `google-bert/bert-base-uncased`
//! with the hub's URL layout and headers. No test here touches the real network.

mod common;
#[path = "common/local_hub.rs"]
mod local_hub;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use bert_finetune::model::hub::Hub;
use bert_finetune::model::BertForSequenceClassification;
use common::*;
use local_hub::*;
use serde_json::{json, Value};
use tch::{Device, Kind};

/// refs, snapshot links (with their targets) and blobs of one repository in a cache.
fn layout(cache: &Path) -> BTreeMap<String, String> {
    let repo = cache.join(REPO);
    let mut entries = BTreeMap::new();
    let mut stack = vec![repo.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(&repo).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                entries.insert(rel, format!("-> {}", target.display()));
            } else if rel.starts_with("refs") {
                entries.insert(rel, std::fs::read_to_string(&path).unwrap());
            } else {
                entries.insert(rel, format!("{} bytes", meta.len()));
            }
        }
    }
    entries
}

const FILES: [&str; 4] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "vocab.txt",
];

#[test]
fn a_cold_download_lays_out_the_cache_as_python_does_and_python_loads_it() {
    let server = LocalHub::start();
    let cache = tmp();
    let hub = Hub::new(server.settings(cache.path()));

    // The legacy id, as the tutorial types it, resolves to google-bert/.
    let snapshot = hub.resolve("bert-base-uncased", None).unwrap();
    assert_eq!(
        snapshot,
        cache.path().join(REPO).join("snapshots").join(COMMIT)
    );
    let repo = cache.path().join(REPO);
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        COMMIT
    );
    for file in FILES {
        let link = snapshot.join(file);
        let target = std::fs::read_link(&link).unwrap();
        assert!(
            target.starts_with("../../blobs/"),
            "{file} -> {}",
            target.display()
        );
        assert_eq!(
            std::fs::read(&link).unwrap(),
            std::fs::read(repo_dir().join(file)).unwrap(),
            "{file} differs from the served file"
        );
    }
    // An LFS file's blob is named by its sha256.
    let weights = std::fs::read_link(snapshot.join("model.safetensors")).unwrap();
    assert_eq!(
        weights.file_name().unwrap().to_string_lossy(),
        sha256_hex(&repo_dir().join("model.safetensors"))
    );

    // huggingface_hub, pointed at the same server, writes exactly the same layout.
    let python_cache = tmp();
    let script = format!(
        "from huggingface_hub import hf_hub_download\n\
         for f in {FILES:?} + ['tokenizer_config.json']:\n    hf_hub_download('{ID}', f)"
    );
    let out = Command::new(python_bin())
        .args(["-c", &script])
        .env("HF_ENDPOINT", server.endpoint())
        .env("HF_HUB_CACHE", python_cache.path())
        .env("HF_HUB_OFFLINE", "0")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: BTreeMap<String, String> = layout(cache.path())
        .into_iter()
        .filter(|(k, _)| !k.starts_with(".no_exist"))
        .collect();
    assert_eq!(ours, layout(python_cache.path()));

    // A second call finds everything in the cache: not one request.
    let before = server.log().len();
    assert_eq!(hub.resolve(ID, None).unwrap(), snapshot);
    assert_eq!(server.log().len(), before);

    // transformers loads our cache offline and computes what our model computes.
    let model =
        BertForSequenceClassification::from_pretrained(snapshot.to_str().unwrap(), 2, Device::Cpu)
            .unwrap();
    let report = model.load_report.clone().unwrap();
    assert_eq!(report.missing, ["classifier.bias", "classifier.weight"]);
    assert!(
        report.unexpected.iter().all(|n| n.starts_with("cls.")) && !report.unexpected.is_empty(),
        "{report}"
    );
    let out_dir = tmp();
    let output = Command::new(python_bin())
        .arg(root().join("tests/python/reference.py"))
        .args(["hub-outputs", "--model", ID, "--out"])
        .arg(out_dir.path())
        .args([
            "The more we study verbs, the crazier they get.",
            "They investigated.",
        ])
        .env("HF_HUB_CACHE", cache.path())
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_ENDPOINT")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reference = read_tensors(&out_dir.path().join("reference.safetensors"));
    let ids = &reference["input_ids"];
    let mask = &reference["attention_mask"];
    let out = tch::no_grad(|| model.bert.forward(ids, mask, &ids.zeros_like(), false));
    let keep = mask.unsqueeze(-1).to_kind(Kind::Float);
    let hidden = max_abs_diff(
        &(&out.last_hidden_state * &keep),
        &(&reference["last_hidden_state"] * &keep),
    );
    let pooled = max_abs_diff(
        out.pooler_output.as_ref().unwrap(),
        &reference["pooler_output"],
    );
    println!("max |Δ| against transformers: hidden {hidden:.2e}, pooled {pooled:.2e}");
    assert!(hidden <= 1e-4 && pooled <= 1e-4);
}

#[test]
fn a_cut_connection_is_resumed_with_a_range_request_and_the_token_stays_on_the_hub() {
    let server = LocalHub::start();
    let cache = tmp();
    let mut settings = server.settings(cache.path());
    settings.token = Some("hf_localtest".into());
    server.faults(json!({"cut": {"file": "model.safetensors", "after": 1_000_000, "times": 1}}));
    let snapshot = Hub::new(settings).resolve(ID, None).unwrap();
    assert_eq!(
        sha256_hex(&snapshot.join("model.safetensors")),
        sha256_hex(&repo_dir().join("model.safetensors"))
    );
    let gets: Vec<Value> = server
        .requests_for("/cdn-lfs/")
        .into_iter()
        .filter(|r| r["method"] == "GET")
        .collect();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0]["range"], Value::Null);
    let resumed_at: u64 = gets[1]["range"]
        .as_str()
        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .unwrap_or_else(|| panic!("second GET is not a `bytes=k-` range: {gets:?}"));
    assert!(resumed_at > 0 && resumed_at <= 1_000_000, "{resumed_at}");
    // Hub requests carry the token; the CDN (another host) never sees it.
    server.token_stayed_home("hf_localtest", false);
}

#[test]
fn an_interrupted_download_is_kept_and_the_next_call_resumes_it() {
    let server = LocalHub::start();
    let cache = tmp();
    let hub = Hub::new(server.settings(cache.path()));
    server.faults(json!({"cut": {"file": "model.safetensors", "after": 700_000, "times": 3}}));
    let err = format!("{:#}", hub.resolve(ID, None).unwrap_err());
    assert!(
        err.contains("model.safetensors") && err.contains("next call resumes"),
        "{err}"
    );
    // Nothing half-made counts as present.
    assert!(hub.cached(ID, None).is_none());
    let sha = sha256_hex(&repo_dir().join("model.safetensors"));
    let part = cache
        .path()
        .join(REPO)
        .join("blobs")
        .join(format!("{sha}.incomplete"));
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0, "the partial download was not kept");

    let snapshot = hub.resolve(ID, None).unwrap();
    assert_eq!(sha256_hex(&snapshot.join("model.safetensors")), sha);
    let last = server.requests_for("/cdn-lfs/").pop().unwrap();
    assert_eq!(last["range"], format!("bytes={kept}-"));
    assert!(!part.exists());
}

#[test]
fn a_corrupted_blob_is_refused_and_deleted() {
    let server = LocalHub::start();
    let cache = tmp();
    let hub = Hub::new(server.settings(cache.path()));
    server.faults(json!({"corrupt": ["model.safetensors"]}));
    let err = format!("{:#}", hub.resolve(ID, None).unwrap_err());
    assert!(
        err.contains("model.safetensors") && err.contains("sha256") && err.contains("deleted"),
        "{err}"
    );
    let blobs = cache.path().join(REPO).join("blobs");
    let sha = sha256_hex(&repo_dir().join("model.safetensors"));
    assert!(!blobs.join(&sha).exists());
    assert!(!blobs.join(format!("{sha}.incomplete")).exists());
    assert!(!cache
        .path()
        .join(REPO)
        .join("snapshots")
        .join(COMMIT)
        .join("model.safetensors")
        .exists());
    assert!(hub.cached(ID, None).is_none());
}

#[test]
fn offline_mode_makes_no_request_and_names_the_missing_files() {
    let server = LocalHub::start();
    let cache = tmp();
    let mut settings = server.settings(cache.path());
    settings.offline = true;
    let err = format!(
        "{:#}",
        Hub::new(settings)
            .resolve("bert-base-uncased", None)
            .unwrap_err()
    );
    assert!(
        err.contains("HF_HUB_OFFLINE")
            && err.contains("config.json")
            && err.contains("model.safetensors"),
        "{err}"
    );
    assert!(server.log().is_empty(), "{:?}", server.log());
}

#[test]
fn a_wrong_id_or_revision_is_the_hubs_404_with_its_url() {
    let server = LocalHub::start();
    let cache = tmp();
    let hub = Hub::new(server.settings(cache.path()));
    let err = format!(
        "{:#}",
        hub.resolve("google-bert/bert-base-unkased", None)
            .unwrap_err()
    );
    assert!(
        err.contains("HTTP 404")
            && err.contains("RepositoryNotFound")
            && err.contains("/google-bert/bert-base-unkased/resolve/main/config.json"),
        "{err}"
    );
    let err = format!("{:#}", hub.resolve(ID, Some("v9.9")).unwrap_err());
    assert!(
        err.contains("HTTP 404") && err.contains("RevisionNotFound") && err.contains("v9.9"),
        "{err}"
    );
    // A pinned commit works and records no ref.
    let snapshot = hub.resolve(ID, Some(COMMIT)).unwrap();
    assert!(snapshot.ends_with(COMMIT));
    assert!(!cache.path().join(REPO).join("refs").exists());
}

#[test]
fn the_cli_downloads_by_id_with_progress_reading_the_environment_like_python() {
    let server = LocalHub::start();
    let home = tmp();
    std::fs::write(home.path().join("token"), "hf_fromfile\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bert-finetune"))
        .args(["fetch", "bert-base-uncased"])
        .env("HF_ENDPOINT", server.endpoint())
        .env("HF_HOME", home.path())
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // HF_HOME/hub is the cache, HF_HOME/token the token; progress in MB, line by line.
    let snapshot = home
        .path()
        .join("hub")
        .join(REPO)
        .join("snapshots")
        .join(COMMIT);
    assert!(stdout.contains(&snapshot.display().to_string()), "{stdout}");
    assert!(
        stdout.contains("Downloading model.safetensors (4.2 MB)"),
        "{stdout}"
    );
    let hub_requests = server.requests_for("/resolve/");
    assert!(!hub_requests.is_empty());
    assert!(hub_requests
        .iter()
        .all(|r| r["authorization"] == "Bearer hf_fromfile"));

    // predict by id, offline now: the cached snapshot is enough.
    let out = Command::new(env!("CARGO_BIN_EXE_bert-finetune"))
        .args([
            "predict",
            "--model",
            "bert-base-uncased",
            "They investigated.",
        ])
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_HUB_CACHE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("They investigated."), "{stdout}");
}

/// A first run in a fresh checkout: `predict` with no `model_save/` yet. The default is a
/// folder, never a hub id, so the answer says what is missing and how to make it, at once,
/// without a single request to the (here local, recording) hub.
#[test]
fn predict_without_the_default_folder_says_how_to_make_one_and_asks_no_hub() {
    let server = LocalHub::start();
    let fresh = tmp();
    let cache = tmp();
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_bert-finetune"))
        .args(["predict", "The cat sat."])
        .current_dir(fresh.path())
        .env("HF_ENDPOINT", server.endpoint())
        .env("HF_HUB_CACHE", cache.path())
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("BERT_FINETUNE_MODEL")
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("model_save/")
            && stderr.contains("does not exist")
            && stderr.contains("bert-finetune train --out model_save")
            && stderr.contains("--model DIR_OR_ID"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    // "At once": no request and no retry. Most of a second is the binary loading libtorch, and
    // more under a loaded CI machine (1.03 s seen); a hub wait or retry would take far longer.
    assert!(seconds < 5.0, "took {seconds:.2} s");
    let requests: Vec<Value> = server
        .log()
        .into_iter()
        .filter(|r| !r["path"].as_str().unwrap_or("").starts_with("/_test"))
        .collect();
    assert!(requests.is_empty(), "requests sent: {requests:?}");
    assert_eq!(
        std::fs::read_dir(fresh.path()).unwrap().count(),
        0,
        "nothing written"
    );

    // A name given explicitly that is neither a folder here nor on the hub: one error that
    // says both, with the hub's own answer.
    let out = Command::new(env!("CARGO_BIN_EXE_bert-finetune"))
        .args(["predict", "--model", "my_model", "The cat sat."])
        .current_dir(fresh.path())
        .env("HF_ENDPOINT", server.endpoint())
        .env("HF_HUB_CACHE", cache.path())
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("my_model is not a folder here")
            && stderr.contains(&server.endpoint())
            && stderr.contains("HTTP 404")
            && stderr.contains("/my_model/resolve/main/config.json"),
        "{stderr}"
    );
}
