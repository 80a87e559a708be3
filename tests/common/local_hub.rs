//! A running `tests/hub/server.py` (the hub's stand-in on 127.0.0.1, its CDN on 127.0.0.2)
//! for the hub tests, and what they ask it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use bert_finetune::model::hub::HubSettings;
use serde_json::Value;
use sha2::Digest;

use super::common::*;

pub const ID: &str = "google-bert/bert-base-uncased";
/// The commit the server reports (fixed in server.py).
pub const COMMIT: &str = "1f0d5c2b9e3a4d6c8b7a0e1f2d3c4b5a69788796";
pub const REPO: &str = "models--google-bert--bert-base-uncased";

pub fn python_bin() -> PathBuf {
    std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"))
        .join("bin/python")
}

/// The repository the server serves, built once by transformers for all tests.
pub fn repo_dir() -> &'static Path {
    static REPO_DIR: OnceLock<PathBuf> = OnceLock::new();
    REPO_DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bert-finetune-hub-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Starting a server with --build fills the folder; it is stopped at once.
        drop(LocalHub::start_with(&dir, true));
        dir
    })
}

/// A running `tests/hub/server.py`, stopped when dropped.
pub struct LocalHub {
    child: Child,
    pub port: u16,
}

impl LocalHub {
    pub fn start() -> Self {
        Self::start_with(repo_dir(), false)
    }

    pub fn start_with(repo: &Path, build: bool) -> Self {
        let mut command = Command::new(python_bin());
        command
            .arg(root().join("tests/hub/server.py"))
            .arg("--repo")
            .arg(repo)
            .arg("--tokenizer")
            .arg(minilm())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if build {
            command.arg("--build");
        }
        let mut child = command.spawn().expect("the venv's python starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"));
        LocalHub { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn settings(&self, cache: &Path) -> HubSettings {
        HubSettings {
            endpoint: self.endpoint(),
            cache_dir: cache.to_path_buf(),
            token: None,
            offline: false,
            timeout: bert_finetune::model::hub::DEFAULT_TIMEOUT,
        }
    }

    /// Every request the server has seen: method, path, Range and Authorization headers.
    pub fn log(&self) -> Vec<Value> {
        let text = ureq::get(&format!("{}/_test/log", self.endpoint()))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub fn requests_for(&self, path_part: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|r| r["path"].as_str().unwrap_or("").contains(path_part))
            .collect()
    }

    /// Every hub request carried `Bearer <token>` (or none, with `anonymous_too`, when
    /// another client such as Python sent none), and the CDN, another host, never saw it.
    pub fn token_stayed_home(&self, token: &str, anonymous_too: bool) {
        let expected = format!("Bearer {token}");
        for r in self.log() {
            let path = r["path"].as_str().unwrap_or("");
            if path.starts_with("/_test") {
                continue;
            }
            let auth = r["authorization"].as_str();
            if path.starts_with("/cdn-lfs/") {
                assert_eq!(auth, None, "the token reached the CDN: {r}");
            } else if !(anonymous_too && auth.is_none()) {
                assert_eq!(auth, Some(expected.as_str()), "{r}");
            }
        }
    }

    pub fn faults(&self, faults: Value) {
        ureq::post(&format!("{}/_test/faults", self.endpoint()))
            .send_string(&faults.to_string())
            .unwrap();
    }
}

impl Drop for LocalHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
