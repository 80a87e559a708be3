//! Finding a checkpoint: a folder, or a model id on the Hugging Face hub, fetched into the same
//! cache Python's `huggingface_hub` uses so that each side reuses the other's downloads.
//!
//! `from_pretrained("bert-base-uncased")` looks in the cache first and downloads only what is
//! missing, as Python does. The environment is read as Python reads it: `HF_ENDPOINT`,
//! `HF_HUB_CACHE` (then `HF_HOME/hub`, then `~/.cache/huggingface/hub`), `HF_TOKEN` (then the
//! token file), and `HF_HUB_OFFLINE=1`, which forbids any request. This module and its
//! `download` part are the only code in the crate that touches the network.

pub mod answer;
mod cache;
mod download;
mod progress;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

pub use cache::RepoCache;
pub use progress::{DownloadProgress, LineProgress};

/// Files a BERT checkpoint needs: config and weights, plus one of the tokenizer files.
pub const REQUIRED_FILES: [&str; 2] = ["config.json", "model.safetensors"];
/// Either is enough for our tokenizer: `tokenizer.json` is preferred, `vocab.txt` builds one.
pub const TOKENIZER_FILES: [&str; 2] = ["tokenizer.json", "vocab.txt"];
/// Fetched when the hub has them; they refine the tokenizer but are not needed.
pub const OPTIONAL_FILES: [&str; 2] = ["tokenizer_config.json", "special_tokens_map.json"];

/// `huggingface_hub`'s default for `HF_HUB_DOWNLOAD_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to reach the hub; `from_env` reads what Python's `huggingface_hub` reads.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// `https://huggingface.co` unless `HF_ENDPOINT` says otherwise.
    pub endpoint: String,
    /// The hub cache folder (`…/hub`), holding `models--org--name/` folders.
    pub cache_dir: PathBuf,
    /// Sent as `Authorization: Bearer …` to the endpoint only (never to the CDN it redirects to).
    pub token: Option<String>,
    /// No request at all: only what the cache holds.
    pub offline: bool,
    /// How long to wait to connect and for each read before giving up on a server:
    /// `HF_HUB_DOWNLOAD_TIMEOUT` seconds, 10 by default as in Python.
    pub timeout: Duration,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `huggingface_hub`'s reading of a boolean variable.
fn env_true(name: &str) -> bool {
    env(name).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_uppercase().as_str(),
            "1" | "ON" | "YES" | "TRUE"
        )
    })
}

impl HubSettings {
    pub fn from_env() -> Self {
        let home = env("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = env("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"));
            cache.join("huggingface")
        });
        let cache_dir = env("HF_HUB_CACHE")
            .or_else(|| env("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join("hub"));
        let token = env("HF_TOKEN").or_else(|| {
            let file = env("HF_TOKEN_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join("token"));
            std::fs::read_to_string(file)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        HubSettings {
            endpoint: env("HF_ENDPOINT")
                .unwrap_or_else(|| "https://huggingface.co".into())
                .trim_end_matches('/')
                .to_string(),
            cache_dir,
            token,
            offline: env_true("HF_HUB_OFFLINE"),
            timeout: env("HF_HUB_DOWNLOAD_TIMEOUT")
                .and_then(|t| t.trim().parse::<f64>().ok())
                .filter(|t| t.is_finite() && *t > 0.0 && *t <= 86_400.0)
                .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64),
        }
    }
}

/// The hub cache folder Python would use.
pub fn cache_dir() -> PathBuf {
    HubSettings::from_env().cache_dir
}

/// Ids to look for in the cache: legacy names such as `bert-base-uncased` now live under
/// `google-bert/`, which is also the id we download (so Python finds it under its new name).
fn aliases(id: &str) -> Vec<String> {
    let mut ids = vec![id.to_string()];
    if !id.contains('/') && id.starts_with("bert-") {
        ids.push(format!("google-bert/{id}"));
    }
    ids
}

/// A hub id is `name` or `org/name` of letters, digits, `-`, `_` and `.`.
fn check_id(id: &str) -> Result<()> {
    let parts: Vec<&str> = id.split('/').collect();
    let ok = parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if !ok {
        bail!(
            "{id:?} is neither an existing folder nor a Hugging Face model id \
             (`name` or `org/name`)"
        );
    }
    Ok(())
}

/// The folder holding a checkpoint, for a folder path or a hub id at its `main` revision,
/// downloading what the cache lacks.
pub fn resolve(name_or_dir: &str) -> Result<PathBuf> {
    resolve_revision(name_or_dir, None)
}

/// As [`resolve`], at a branch, tag or commit of the hub repository.
pub fn resolve_revision(name_or_dir: &str, revision: Option<&str>) -> Result<PathBuf> {
    Hub::new(HubSettings::from_env()).resolve(name_or_dir, revision)
}

/// The folder of a checkpoint if it is a folder or complete in the cache: never a request.
/// Choosing a default model uses this, so it cannot start a download or wait on a network.
pub fn cached(name_or_dir: &str) -> Option<PathBuf> {
    Hub::new(HubSettings::from_env()).cached(name_or_dir, None)
}

/// Resolution with explicit settings (tests use a temporary cache and a local server).
pub struct Hub {
    pub settings: HubSettings,
}

impl Hub {
    pub fn new(settings: HubSettings) -> Self {
        Hub { settings }
    }

    fn repo(&self, id: &str) -> RepoCache {
        RepoCache::new(&self.settings.cache_dir, id)
    }

    /// A folder, or a complete snapshot of `revision` (default `main`) in the cache.
    pub fn cached(&self, name_or_dir: &str, revision: Option<&str>) -> Option<PathBuf> {
        let path = Path::new(name_or_dir);
        if path.is_dir() {
            return Some(path.to_path_buf());
        }
        check_id(name_or_dir).ok()?;
        let revision = revision.unwrap_or("main");
        answer::check_revision(revision).ok()?;
        aliases(name_or_dir)
            .iter()
            .find_map(|id| self.repo(id).complete_snapshot(revision))
    }

    /// [`cached`](Self::cached), else a download of the missing files (unless offline).
    pub fn resolve(&self, name_or_dir: &str, revision: Option<&str>) -> Result<PathBuf> {
        if let Some(dir) = self.cached(name_or_dir, revision) {
            return Ok(dir);
        }
        let looks_like_path = name_or_dir.starts_with(['.', '/', '~'])
            || name_or_dir.matches('/').count() > 1
            || Path::new(name_or_dir).exists();
        if looks_like_path {
            bail!("model folder {name_or_dir} does not exist");
        }
        check_id(name_or_dir)?;
        let revision = revision.unwrap_or("main");
        answer::check_revision(revision)?;
        let ids = aliases(name_or_dir);
        let id = ids.last().map(String::as_str).unwrap_or(name_or_dir);
        if self.settings.offline {
            let missing = self.repo(id).missing_files(revision);
            bail!(
                "{name_or_dir} is not a folder here, nor complete in the local Hugging Face \
                 cache ({}), and HF_HUB_OFFLINE is set, so nothing is downloaded: missing {}. \
                 Unset HF_HUB_OFFLINE where a network exists, or pass a checkpoint folder",
                self.settings.cache_dir.display(),
                missing.join(", ")
            );
        }
        let mut progress = progress::for_this_process();
        download::snapshot(
            &self.settings,
            id,
            &self.repo(id),
            revision,
            progress.as_mut(),
        )
    }
}
