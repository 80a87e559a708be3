//! Fetching a repository's files into the cache, as `huggingface_hub.hf_hub_download` does.
//!
//! Per file: a `HEAD` on `<endpoint>/<id>/resolve/<revision>/<file>` gives the commit
//! (`X-Repo-Commit`), the content's id (`X-Linked-Etag` for LFS files, else `ETag`) and size;
//! the hub answers LFS files with a redirect to its CDN, where the `GET` goes. The bytes land in
//! `blobs/<etag>.incomplete`, resumed with `Range: bytes=<have>-` after an interruption, are
//! checked against the etag (sha256 for LFS files, git's blob sha1 for the others), and only
//! then renamed to `blobs/<etag>` and linked into `snapshots/<commit>/`.
//!
//! We use `ureq` directly rather than the `hf-hub` crate: that crate ignores `HF_HUB_CACHE`,
//! `HF_HUB_OFFLINE` and the token file, verifies no checksum and hides per-file errors.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use sha2::Digest;

use super::cache::RepoCache;
use super::progress::DownloadProgress;
use super::{HubSettings, OPTIONAL_FILES, REQUIRED_FILES, TOKENIZER_FILES};
use crate::display::size;

/// Attempts per file when the connection breaks mid-transfer; each resumes where it stopped.
const ATTEMPTS: usize = 3;

/// What the hub says about one file.
#[derive(Clone)]
struct FileMeta {
    commit: String,
    etag: String,
    size: u64,
    /// Where the bytes are (the CDN for LFS files).
    url: String,
}

/// A transfer that broke off and may be resumed, or an error that retrying cannot fix.
enum Failure {
    Interrupted(anyhow::Error),
    Fatal(anyhow::Error),
}

struct Client<'a> {
    agent: ureq::Agent,
    settings: &'a HubSettings,
}

/// `scheme://host[:port]` of a URL, to keep the token on the hub's own origin.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// A `Location` header made absolute.
fn join(base: &str, location: &str) -> String {
    if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        location.to_string()
    }
}

/// Etags arrive quoted and sometimes weak (`W/"…"`); the cache names blobs by the bare value.
fn normalize_etag(raw: &str) -> String {
    raw.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

/// A revision inside a URL path: `refs/pr/1` must stay one segment.
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl<'a> Client<'a> {
    fn new(settings: &'a HubSettings) -> Self {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(Duration::from_secs(20))
            .timeout_read(Duration::from_secs(60))
            .user_agent(concat!("bert-finetune/", env!("CARGO_PKG_VERSION")))
            .try_proxy_from_env(true)
            .build();
        Client { agent, settings }
    }

    fn request(&self, method: &str, url: &str) -> ureq::Request {
        let mut request = self
            .agent
            .request(method, url)
            .set("Accept-Encoding", "identity");
        if let Some(token) = &self.settings.token {
            if origin(url) == origin(&self.settings.endpoint) {
                request = request.set("Authorization", &format!("Bearer {token}"));
            }
        }
        request
    }

    /// A clear error for a non-success answer: URL, status and the hub's own reason.
    fn status_error(&self, url: &str, status: u16, response: &ureq::Response) -> anyhow::Error {
        let code = response.header("x-error-code").unwrap_or("");
        let message = response.header("x-error-message").unwrap_or("");
        let hint = match (status, code) {
            (401 | 403, _) | (_, "GatedRepo") => {
                "; the repository may be private or gated: set HF_TOKEN (or log in with \
                 `hf auth login`) with a token that has access"
            }
            (_, "RepositoryNotFound") => {
                "; check the model id (for example google-bert/bert-base-uncased), and set \
                 HF_TOKEN if the repository is private"
            }
            (_, "RevisionNotFound") => "; check --revision",
            _ => "",
        };
        let reason = [code, message]
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(": ");
        let reason = if reason.is_empty() {
            response.status_text().to_string()
        } else {
            reason
        };
        anyhow!("{url}: HTTP {status} ({reason}){hint}")
    }

    fn transport_error(&self, url: &str, error: ureq::Transport) -> anyhow::Error {
        anyhow!(
            "cannot reach {url}: {error}. Without a network, set HF_HUB_OFFLINE=1 to use only \
             the local cache ({}), or pass the path of a checkpoint folder",
            self.settings.cache_dir.display()
        )
    }

    /// `HEAD` of a file; `None` when the hub says the repository has no such file.
    fn metadata(&self, id: &str, revision: &str, file: &str) -> Result<Option<FileMeta>> {
        let mut url = format!(
            "{}/{id}/resolve/{}/{file}",
            self.settings.endpoint,
            encode_segment(revision)
        );
        for _ in 0..5 {
            let response = match self.request("HEAD", &url).call() {
                Ok(response) => response,
                Err(ureq::Error::Status(404, r))
                    if r.header("x-error-code") == Some("EntryNotFound") =>
                {
                    return Ok(None)
                }
                Err(ureq::Error::Status(status, r)) => {
                    return Err(self.status_error(&url, status, &r))
                }
                Err(ureq::Error::Transport(t)) => return Err(self.transport_error(&url, t)),
            };
            let location = response.header("location").map(|l| join(&url, l));
            // A redirect on the same host is a renamed repository: follow it, as Python does.
            // One to another host is the CDN: this answer already describes the file.
            if let Some(target) = location.as_deref().filter(|l| origin(l) == origin(&url)) {
                url = target.to_string();
                continue;
            }
            let header = |name: &str| response.header(name).map(str::to_string);
            let commit = header("x-repo-commit").ok_or_else(|| {
                anyhow!("{url}: the answer has no X-Repo-Commit header; is HF_ENDPOINT a Hugging Face hub?")
            })?;
            let etag = header("x-linked-etag")
                .or_else(|| header("etag"))
                .map(|e| normalize_etag(&e))
                .filter(|e| !e.is_empty() && !e.contains(['/', '.']))
                .ok_or_else(|| anyhow!("{url}: the answer has no usable ETag header"))?;
            let size = header("x-linked-size")
                .or_else(|| header("content-length"))
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| anyhow!("{url}: the answer gives no file size"))?;
            return Ok(Some(FileMeta {
                commit,
                etag,
                size,
                url: location.unwrap_or(url),
            }));
        }
        bail!("{url}: too many redirects")
    }

    /// `GET` that follows redirects itself, so the token never leaves the hub's origin.
    fn get(&self, url: &str, from: u64) -> Result<ureq::Response, Failure> {
        let mut url = url.to_string();
        for _ in 0..5 {
            let mut request = self.request("GET", &url);
            if from > 0 {
                request = request.set("Range", &format!("bytes={from}-"));
            }
            let response = match request.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(status, r)) => {
                    return Err(Failure::Fatal(self.status_error(&url, status, &r)))
                }
                Err(ureq::Error::Transport(t)) => {
                    return Err(Failure::Interrupted(self.transport_error(&url, t)))
                }
            };
            match response.header("location") {
                Some(l) if (300..400).contains(&response.status()) => url = join(&url, l),
                _ => return Ok(response),
            }
        }
        Err(Failure::Fatal(anyhow!("{url}: too many redirects")))
    }

    /// Appends the missing bytes of a file to `part`; `Interrupted` if the transfer breaks.
    fn fetch_into(
        &self,
        meta: &FileMeta,
        part: &Path,
        file: &str,
        progress: &mut dyn DownloadProgress,
    ) -> Result<(), Failure> {
        let fatal = |e: std::io::Error, what: &str| {
            Failure::Fatal(anyhow!("cannot {what} {}: {e}", part.display()))
        };
        let mut have = std::fs::metadata(part).map_or(0, |m| m.len());
        if have > meta.size {
            std::fs::remove_file(part).map_err(|e| fatal(e, "remove"))?;
            have = 0;
        }
        if have == meta.size {
            return Ok(());
        }
        let response = self.get(&meta.url, have)?;
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(part)
            .map_err(|e| fatal(e, "open"))?;
        if have > 0 && response.status() != 206 {
            // The server ignored the range: start over.
            out.set_len(0).map_err(|e| fatal(e, "truncate"))?;
            have = 0;
        }
        progress.start(file, &meta.url, meta.size, have);
        let mut reader = response.into_reader();
        let mut buffer = vec![0u8; 1 << 20];
        let mut done = have;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    out.sync_all().ok();
                    return Err(Failure::Interrupted(anyhow!(
                        "{}: the transfer broke off after {} of {}: {e}",
                        meta.url,
                        size(done),
                        size(meta.size)
                    )));
                }
            };
            out.write_all(&buffer[..n]).map_err(|e| fatal(e, "write"))?;
            done += n as u64;
            progress.advance(done);
        }
        out.sync_all().map_err(|e| fatal(e, "flush"))?;
        if done < meta.size {
            return Err(Failure::Interrupted(anyhow!(
                "{}: the connection closed after {} of {} bytes",
                meta.url,
                done,
                meta.size
            )));
        }
        progress.finish();
        Ok(())
    }

    /// Makes `blobs/<etag>` hold the file, downloading and checking it when needed.
    fn ensure_blob(
        &self,
        repo: &RepoCache,
        meta: &FileMeta,
        file: &str,
        progress: &mut dyn DownloadProgress,
    ) -> Result<()> {
        let blob = repo.blob(&meta.etag);
        if std::fs::metadata(&blob).is_ok_and(|m| m.len() == meta.size) {
            return Ok(());
        }
        let blobs = repo.root.join("blobs");
        std::fs::create_dir_all(&blobs)
            .with_context(|| format!("cannot create {}", blobs.display()))?;
        let part = repo.incomplete(&meta.etag);
        let mut attempt = 1;
        loop {
            match self.fetch_into(meta, &part, file, progress) {
                Ok(()) => break,
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Interrupted(e)) if attempt >= ATTEMPTS => {
                    return Err(e.context(format!(
                        "downloading {file} failed {ATTEMPTS} times; what arrived is kept in \
                         {} and the next call resumes from there",
                        part.display()
                    )))
                }
                Err(Failure::Interrupted(e)) => {
                    println!("{e:#}; resuming (attempt {} of {ATTEMPTS})", attempt + 1);
                    attempt += 1;
                }
            }
        }
        if let Err(e) = verify(&part, &meta.etag, meta.size) {
            let _ = std::fs::remove_file(&part);
            return Err(e.context(format!(
                "{file} from {} is corrupt; the download was deleted, try again",
                meta.url
            )));
        }
        std::fs::rename(&part, &blob)
            .with_context(|| format!("cannot move {} into place", blob.display()))
    }
}

/// Hex digest of `prefix` followed by the file's bytes.
fn hash_file<D: Digest>(path: &Path, prefix: &[u8]) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = D::new();
    hasher.update(prefix);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks a downloaded file against the hub's etag: sha256 for LFS files (64 hex digits),
/// git's blob sha1 for the others (40); other etags only by size.
fn verify(path: &Path, etag: &str, size: u64) -> Result<()> {
    let len = std::fs::metadata(path)?.len();
    if len != size {
        bail!(
            "{} has {len} bytes, the hub announced {size}",
            path.display()
        );
    }
    let is_hex = etag.bytes().all(|b| b.is_ascii_hexdigit());
    let (kind, actual) = match etag.len() {
        64 if is_hex => ("sha256", hash_file::<sha2::Sha256>(path, b"")?),
        40 if is_hex => (
            "git sha1",
            hash_file::<sha1::Sha1>(path, format!("blob {size}\0").as_bytes())?,
        ),
        _ => return Ok(()),
    };
    if actual != etag.to_ascii_lowercase() {
        bail!("its {kind} is {actual}, but the hub's etag says {etag}");
    }
    Ok(())
}

/// Downloads what `repo` lacks for a BERT checkpoint at `revision`; returns the snapshot folder.
pub(super) fn snapshot(
    settings: &HubSettings,
    id: &str,
    repo: &RepoCache,
    revision: &str,
    progress: &mut dyn DownloadProgress,
) -> Result<std::path::PathBuf> {
    let client = Client::new(settings);
    // config.json first: a wrong id or revision shows up here, before anything large moves.
    let config = client
        .metadata(id, revision, "config.json")?
        .ok_or_else(|| {
            anyhow!(
                "{id} at {revision} has no config.json on {}: is it a transformers model?",
                settings.endpoint
            )
        })?;
    let commit = config.commit.clone();
    let snapshot = repo.snapshot(&commit);
    let mut found_tokenizer = false;
    for file in REQUIRED_FILES
        .iter()
        .chain(&TOKENIZER_FILES)
        .chain(&OPTIONAL_FILES)
    {
        if snapshot.join(file).is_file() {
            found_tokenizer |= TOKENIZER_FILES.contains(file);
            continue;
        }
        if repo.known_absent(&commit, file) {
            continue;
        }
        let meta = if *file == "config.json" {
            Some(config.clone())
        } else {
            client.metadata(id, &commit, file)?
        };
        let Some(meta) = meta else {
            if *file == "model.safetensors" {
                let pickle = client.metadata(id, &commit, "pytorch_model.bin")?.is_some();
                bail!(
                    "{id} has no model.safetensors on {}{}",
                    settings.endpoint,
                    if pickle {
                        ", only pytorch_model.bin (a Python pickle this crate does not \
                         read); convert it once with transformers: \
                         BertForSequenceClassification.from_pretrained(id).save_pretrained(dir)"
                    } else {
                        ""
                    }
                );
            }
            if REQUIRED_FILES.contains(file) {
                bail!("{id} has no {file} on {}", settings.endpoint);
            }
            repo.mark_absent(&commit, file)?;
            continue;
        };
        client.ensure_blob(repo, &meta, file, progress)?;
        repo.link(&commit, file, &meta.etag)?;
        found_tokenizer |= TOKENIZER_FILES.contains(file);
    }
    if !found_tokenizer {
        bail!(
            "{id} has neither {} on {}: it carries no BERT tokenizer",
            TOKENIZER_FILES.join(" nor "),
            settings.endpoint
        );
    }
    repo.set_ref(revision, &commit)?;
    Ok(snapshot)
}
