//! Finding a checkpoint: a folder, or a model id in the local Hugging Face cache.
//!
//! The cache layout (`models--org--name/snapshots/<rev>/…`) is read with the `hf-hub` crate.
//! `HF_HUB_CACHE` wins over `HF_HOME/hub`, which wins over `~/.cache/huggingface/hub`, as in
//! Python. Nothing is downloaded unless the crate is built with the `hub-download` feature
//! and a network exists; otherwise a model missing from the cache is a clear error.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use hf_hub::Cache;

/// The Hugging Face hub cache folder Python would use.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => Cache::from_env().path().clone(),
    }
}

/// Ids to try for a model: legacy names such as `bert-base-uncased` now live under `google-bert/`.
fn aliases(id: &str) -> Vec<String> {
    let mut ids = vec![id.to_string()];
    if !id.contains('/') && id.starts_with("bert-") {
        ids.push(format!("google-bert/{id}"));
    }
    ids
}

/// The folder holding a checkpoint's `config.json`, for a folder path or a hub id.
pub fn resolve(name_or_dir: &str) -> Result<PathBuf> {
    let path = Path::new(name_or_dir);
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let looks_like_path =
        name_or_dir.starts_with(['.', '/', '~']) || name_or_dir.matches('/').count() > 1;
    if looks_like_path {
        bail!("model folder {name_or_dir} does not exist");
    }
    let cache = Cache::new(cache_dir());
    for id in aliases(name_or_dir) {
        if let Some(config) = cache.model(id).get("config.json") {
            if let Some(dir) = config.parent() {
                return Ok(dir.to_path_buf());
            }
        }
    }
    download(name_or_dir)
}

#[cfg(feature = "hub-download")]
fn download(id: &str) -> Result<PathBuf> {
    use anyhow::Context;
    let api = hf_hub::api::sync::Api::new()?;
    let repo = api.model(id.to_string());
    let config = repo.get("config.json").with_context(|| {
        format!("{id} is not in the local Hugging Face cache and could not be downloaded")
    })?;
    for file in [
        "model.safetensors",
        "tokenizer.json",
        "vocab.txt",
        "tokenizer_config.json",
    ] {
        let _ = repo.get(file);
    }
    Ok(config
        .parent()
        .expect("a file in a snapshot folder")
        .to_path_buf())
}

#[cfg(not(feature = "hub-download"))]
fn download(id: &str) -> Result<PathBuf> {
    bail!(
        "{id} is neither a folder nor in the local Hugging Face cache ({}). This build does not \
         download: where a network exists, run `huggingface-cli download {id}` (or build with \
         --features hub-download), or pass the path of a checkpoint folder",
        cache_dir().display()
    )
}
