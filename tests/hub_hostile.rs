//! A broken or hostile mirror (`HF_ENDPOINT`): every fault `tests/hub/server.py` can play is
//! refused or survived, nothing is written outside the cache folder (each test keeps the
//! cache inside a fence folder and checks the fence), and the token never leaves the hub's
//! origin. Also: two downloads of one file at once share one transfer, with each other and
//! with Python's `huggingface_hub`, through Python's lock file.

mod common;
#[path = "common/local_hub.rs"]
mod local_hub;

use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bert_finetune::model::hub::{Hub, HubSettings};
use common::*;
use local_hub::*;
use serde_json::{json, Value};

/// A temporary folder holding only `cache/`: what a test checks nothing escaped from.
struct Fence {
    dir: tempfile::TempDir,
}

impl Fence {
    fn new() -> Self {
        Fence { dir: tmp() }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn settings(&self, server: &LocalHub) -> HubSettings {
        let mut settings = server.settings(&self.cache());
        settings.token = Some("hf_fencetest".into());
        settings
    }

    /// Nothing beside `cache/`, and every link inside it points inside it.
    fn check(&self) {
        let entries: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            entries.is_empty() || entries == ["cache"],
            "written outside the cache: {entries:?}"
        );
        let cache = self.cache();
        let mut stack = vec![cache.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(read) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in read {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.file_type().is_symlink() {
                    let target = normalize(&dir.join(std::fs::read_link(&path).unwrap()));
                    assert!(
                        target.starts_with(&cache),
                        "{} points outside the cache, at {}",
                        path.display(),
                        target.display()
                    );
                } else if meta.is_dir() {
                    stack.push(path);
                }
            }
        }
    }
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// The token went to the hub's own requests only, never to the CDN (another host).
fn token_stayed_home(server: &LocalHub) {
    server.token_stayed_home("hf_fencetest", false)
}

fn cdn_gets(server: &LocalHub) -> Vec<Value> {
    server
        .requests_for("/cdn-lfs/")
        .into_iter()
        .filter(|r| r["method"] == "GET")
        .collect()
}

fn reset(server: &LocalHub) {
    ureq::post(&format!("{}/_test/reset", server.endpoint()))
        .send_string("{}")
        .unwrap();
}

/// Resolving through a mirror that plays `faults` fails; the error, with the fence checked.
fn refused(server: &LocalHub, faults: Value) -> String {
    reset(server);
    server.faults(faults.clone());
    let fence = Fence::new();
    let err = match Hub::new(fence.settings(server)).resolve(ID, None) {
        Ok(dir) => panic!("{faults} was accepted: {}", dir.display()),
        Err(e) => format!("{e:#}"),
    };
    fence.check();
    token_stayed_home(server);
    err
}

#[test]
fn a_commit_that_is_not_a_hash_never_becomes_a_path() {
    let server = LocalHub::start();
    let fence = Fence::new();
    let absolute = fence.dir.path().join("escape").display().to_string();
    for (file, commit) in [
        ("config.json", "../../../escape"),
        ("config.json", absolute.as_str()),
        ("config.json", "main"),
        ("config.json", "1f0d5c2b9e3a4d6c8b7a0e1f2d3c4b5a6978879/"),
        // A good commit for config.json, a hostile one for the weights.
        ("model.safetensors", "../../../../escape"),
    ] {
        let err = refused(
            &server,
            json!({"headers": {file: {"X-Repo-Commit": commit}}}),
        );
        assert!(
            err.contains("X-Repo-Commit")
                && err.contains(&format!("{commit:?}"))
                && err.contains("/resolve/"),
            "{err}"
        );
    }
    // Answering another commit than the one asked for is refused too.
    let other = "0".repeat(40);
    let err = refused(
        &server,
        json!({"headers": {"tokenizer.json": {"X-Repo-Commit": other}}}),
    );
    assert!(err.contains(&other) && err.contains(COMMIT), "{err}");
}

/// The issue's own case: `predict --model bert-base-uncased` through a mirror whose commit
/// is a path. Before, it wrote `escape/config.json` beside the cache; now one line, exit 1.
#[test]
fn the_cli_refuses_a_traversal_commit_in_one_line_and_writes_nothing() {
    let server = LocalHub::start();
    server.faults(json!({"headers": {"config.json": {"X-Repo-Commit": "../../../escape"}}}));
    let fence = Fence::new();
    let out = Command::new(env!("CARGO_BIN_EXE_bert-finetune"))
        .args([
            "predict",
            "--model",
            "bert-base-uncased",
            "They investigated.",
        ])
        .env("HF_ENDPOINT", server.endpoint())
        .env("HF_HUB_CACHE", fence.cache())
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("X-Repo-Commit is \"../../../escape\", not a commit hash"),
        "{stderr}"
    );
    fence.check();
    assert!(!fence.cache().exists(), "the refusal created the cache");
}

#[test]
fn an_etag_or_size_that_could_escape_or_fill_the_disk_is_refused() {
    let server = LocalHub::start();
    for (file, header, value, says) in [
        (
            "model.safetensors",
            "X-Linked-Etag",
            "\"../../../../escape\"",
            "X-Linked-Etag",
        ),
        ("config.json", "ETag", "\"../x\"", "ETag"),
        ("config.json", "ETag", "\"a/b\"", "ETag"),
        ("config.json", "ETag", "\"\"", "ETag"),
        (
            "model.safetensors",
            "X-Linked-Size",
            "99999999999999999999999",
            "not a size",
        ),
        ("model.safetensors", "X-Linked-Size", "-5", "not a size"),
        ("model.safetensors", "X-Linked-Size", "4e6", "not a size"),
        (
            "model.safetensors",
            "X-Linked-Size",
            "1000000000000000",
            "more than",
        ),
        (
            "config.json",
            "Content-Length",
            "1099511627776",
            "more than",
        ),
    ] {
        let err = refused(&server, json!({"headers": {file: {header: value}}}));
        assert!(
            err.contains(says) && err.contains(header) && err.contains(file),
            "{header}: {value}: {err}"
        );
        // Nothing was fetched for the refused file.
        assert!(
            cdn_gets(&server).is_empty() || file != "model.safetensors",
            "{:?}",
            cdn_gets(&server)
        );
    }
}

#[test]
fn a_size_that_is_missing_or_wrong_is_named_and_nothing_half_written_stays() {
    let server = LocalHub::start();
    // A redirect to the CDN without X-Linked-Size: the size is unknown, said as such.
    let err = refused(
        &server,
        json!({"headers": {"model.safetensors": {"X-Linked-Size": null}}}),
    );
    assert!(
        err.contains("X-Linked-Size")
            && err.contains("size of model.safetensors is unknown")
            && !err.contains("No such file"),
        "{err}"
    );
    // The body is longer than announced: refused before a byte is written.
    let real = std::fs::metadata(repo_dir().join("model.safetensors"))
        .unwrap()
        .len();
    let err = refused(&server, json!({"extra": {"model.safetensors": 10}}));
    assert!(
        err.contains("Content-Length")
            && err.contains(&format!("{}", real + 10))
            && err.contains(&format!("{real}")),
        "{err}"
    );
    // The hub announces less than the CDN has.
    let err = refused(
        &server,
        json!({"headers": {"model.safetensors": {"X-Linked-Size": (real - 100).to_string()}}}),
    );
    assert!(err.contains("Content-Length"), "{err}");
    // No blob and no `.incomplete` file is left for these refusals.
    reset(&server);
    server.faults(json!({"extra": {"model.safetensors": 10}}));
    let fence = Fence::new();
    assert!(Hub::new(fence.settings(&server)).resolve(ID, None).is_err());
    let blobs = fence.cache().join(REPO).join("blobs");
    let sha = sha256_hex(&repo_dir().join("model.safetensors"));
    assert!(!blobs.join(&sha).exists());
    assert!(!blobs.join(format!("{sha}.incomplete")).exists());
}

#[test]
fn a_redirect_loop_ends_with_an_error_naming_it() {
    let server = LocalHub::start();
    let err = refused(&server, json!({"loop": "config.json"}));
    assert!(
        err.contains("redirect loop") && err.contains("/resolve/main/config.json"),
        "{err}"
    );
}

#[test]
fn a_stalled_server_times_out_and_a_stall_mid_file_is_resumed() {
    let server = LocalHub::start();
    let fence = Fence::new();
    let mut settings = fence.settings(&server);
    settings.timeout = Duration::from_secs(1);
    // No answer at all to the first request: the time-out ends the wait with the URL.
    server.faults(json!({"stall": {"file": "config.json", "seconds": 4, "times": 1}}));
    let start = Instant::now();
    let err = format!(
        "{:#}",
        Hub::new(settings.clone()).resolve(ID, None).unwrap_err()
    );
    let waited = start.elapsed();
    assert!(
        err.contains("/resolve/main/config.json") && err.contains("HF_HUB_DOWNLOAD_TIMEOUT"),
        "{err}"
    );
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    // Half a file, then silence: the read times out and the download resumes from there.
    reset(&server);
    server.faults(json!({"stall": {
        "file": "model.safetensors", "seconds": 4, "after": 1_000_000, "times": 1}}));
    let snapshot = Hub::new(settings).resolve(ID, None).unwrap();
    assert_eq!(
        sha256_hex(&snapshot.join("model.safetensors")),
        sha256_hex(&repo_dir().join("model.safetensors"))
    );
    let gets = cdn_gets(&server);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(
        gets[1]["range"]
            .as_str()
            .is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-"),
        "{gets:?}"
    );
    fence.check();
    token_stayed_home(&server);
}

#[test]
fn two_downloads_of_one_file_in_one_process_share_one_transfer() {
    let server = LocalHub::start();
    server.faults(json!({"slow": {"file": "model.safetensors", "bytes_per_s": 3_000_000}}));
    let fence = Fence::new();
    let settings = fence.settings(&server);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let settings = settings.clone();
            std::thread::spawn(move || Hub::new(settings).resolve(ID, None))
        })
        .collect();
    let dirs: Vec<PathBuf> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(dirs[0], dirs[1]);
    assert_eq!(
        sha256_hex(&dirs[0].join("model.safetensors")),
        sha256_hex(&repo_dir().join("model.safetensors"))
    );
    assert_eq!(cdn_gets(&server).len(), 1, "{:?}", cdn_gets(&server));
    // The lock is where Python's huggingface_hub keeps it.
    let sha = sha256_hex(&repo_dir().join("model.safetensors"));
    assert!(fence
        .cache()
        .join(".locks")
        .join(REPO)
        .join(format!("{sha}.lock"))
        .exists());
    fence.check();
    token_stayed_home(&server);
}

#[test]
fn the_cli_waits_for_pythons_download_of_the_same_file_and_reuses_it() {
    let server = LocalHub::start();
    server.faults(json!({"slow": {"file": "model.safetensors", "bytes_per_s": 600_000}}));
    let fence = Fence::new();
    let python_home = tmp();
    // Python starts first and holds its lock while the transfer runs, slowed to about 7 s so
    // that the CLI (ready within a second) reaches the lock before it is released.
    let script = format!(
        "from huggingface_hub import hf_hub_download\n\
         print(hf_hub_download('{ID}', 'model.safetensors'), flush=True)"
    );
    let python = Command::new(python_bin())
        .args(["-c", &script])
        .env("HF_ENDPOINT", server.endpoint())
        .env("HF_HUB_CACHE", fence.cache())
        .env("HF_HUB_OFFLINE", "0")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_XET", "1")
        .env("HF_HOME", python_home.path())
        .env_remove("HF_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while cdn_gets(&server).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Python never started its download"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ours = Command::new(env!("CARGO_BIN_EXE_bert-finetune"))
        .args(["fetch", ID])
        .env("HF_ENDPOINT", server.endpoint())
        .env("HF_HUB_CACHE", fence.cache())
        .env("HF_TOKEN", "hf_fencetest")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .unwrap();
    let python = python.wait_with_output().unwrap();
    assert!(
        python.status.success(),
        "{}",
        String::from_utf8_lossy(&python.stderr)
    );
    let stdout = String::from_utf8_lossy(&ours.stdout);
    assert!(
        ours.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    assert!(
        stdout.contains("Waiting for another process downloading model.safetensors"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Downloading model.safetensors"),
        "{stdout}"
    );
    // One transfer of the weights for both programs, and both point at the same blob.
    assert_eq!(cdn_gets(&server).len(), 1, "{:?}", cdn_gets(&server));
    let python_path = PathBuf::from(String::from_utf8_lossy(&python.stdout).trim());
    let snapshot = fence.cache().join(REPO).join("snapshots").join(COMMIT);
    assert_eq!(python_path, snapshot.join("model.safetensors"));
    assert_eq!(
        sha256_hex(&snapshot.join("model.safetensors")),
        sha256_hex(&repo_dir().join("model.safetensors"))
    );
    fence.check();
    server.token_stayed_home("hf_fencetest", true);
}

/// The fence itself catches an escape (so its passing means something).
#[test]
fn the_fence_notices_a_file_or_link_outside_the_cache() {
    let fence = Fence::new();
    std::fs::create_dir_all(fence.cache().join("a")).unwrap();
    std::os::unix::fs::symlink("../../elsewhere", fence.cache().join("a/link")).unwrap();
    let caught = std::panic::catch_unwind(|| fence.check());
    assert!(caught.is_err(), "a link out of the cache went unnoticed");
    std::fs::remove_file(fence.cache().join("a/link")).unwrap();
    fence.check();
    std::fs::write(fence.dir.path().join("escape"), b"").unwrap();
    assert!(std::panic::catch_unwind(|| fence.check()).is_err());
}
