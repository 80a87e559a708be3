//! Fetching a repository's files into the cache, as `huggingface_hub.hf_hub_download` does.
//!
//! Per file: a `HEAD` on `<endpoint>/<id>/resolve/<revision>/<file>` gives the commit
//! (`X-Repo-Commit`), the content's id (`X-Linked-Etag` for LFS files, else `ETag`) and size;
//! the hub answers LFS files with a redirect to its CDN, where the `GET` goes. The bytes land in
//! `blobs/<etag>.incomplete`, resumed with `Range: bytes=<have>-` after an interruption, are
//! checked against the etag (sha256 for LFS files, git's blob sha1 for the others), and only
//! then renamed to `blobs/<etag>` and linked into `snapshots/<commit>/`.
//!
//! The server may be a broken or hostile mirror: its answers are checked in
//! [`answer`](super::answer) before any of them names a file, no more bytes than announced are
//! written, and each blob is fetched under Python's lock (`.locks/models--…/<etag>.lock`), so a
//! notebook, a CLI and Python fetching together share one transfer.
//!
//! We use `ureq` directly rather than the `hf-hub` crate: that crate ignores `HF_HUB_CACHE`,
//! `HF_HUB_OFFLINE` and the token file, verifies no checksum and hides per-file errors.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use sha2::Digest;

use super::answer::{self, FileMeta, HeadAnswer};
use super::cache::RepoCache;
use super::progress::DownloadProgress;
use super::{HubSettings, OPTIONAL_FILES, REQUIRED_FILES, TOKENIZER_FILES};
use crate::runtime::display::size;

/// Attempts per file when the connection breaks mid-transfer; each resumes where it stopped.
const ATTEMPTS: usize = 3;
/// Redirects followed per request; a loop ends here with an error naming it.
const MAX_REDIRECTS: usize = 5;

/// A transfer that broke off and may be resumed, or an error that retrying cannot fix.
enum Failure {
    Interrupted(anyhow::Error),
    Fatal(anyhow::Error),
}

struct Client<'a> {
    agent: ureq::Agent,
    settings: &'a HubSettings,
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

/// Every header of an answer, as received.
fn headers_of(response: &ureq::Response) -> Vec<(String, String)> {
    response
        .headers_names()
        .into_iter()
        .filter_map(|name| {
            let value = response.header(&name)?.to_string();
            Some((name, value))
        })
        .collect()
}

impl<'a> Client<'a> {
    fn new(settings: &'a HubSettings) -> Self {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(settings.timeout)
            .timeout_read(settings.timeout)
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
            if answer::same_origin(url, &self.settings.endpoint) {
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
        // The server's words, cut short and without control characters (a terminal escape
        // in a header must not reach the user's terminal).
        let reason: String = reason
            .chars()
            .take(300)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        anyhow!("{url}: HTTP {status} ({reason}){hint}")
    }

    fn transport_error(&self, url: &str, error: ureq::Transport) -> anyhow::Error {
        anyhow!(
            "cannot reach {url}: {error} (time-out {} s, HF_HUB_DOWNLOAD_TIMEOUT). Without a \
             network, set HF_HUB_OFFLINE=1 to use only the local cache ({}), or pass the path \
             of a checkpoint folder",
            self.settings.timeout.as_secs_f64(),
            self.settings.cache_dir.display()
        )
    }

    /// `HEAD` of a file; `None` when the hub says the repository has no such file.
    fn metadata(&self, id: &str, revision: &str, file: &str) -> Result<Option<FileMeta>> {
        let first = format!(
            "{}/{id}/resolve/{}/{file}",
            self.settings.endpoint,
            encode_segment(revision)
        );
        let mut url = first.clone();
        for _ in 0..MAX_REDIRECTS {
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
            // A redirect on the same host is a renamed repository: follow it, as Python does.
            // One to another host is the CDN: this answer already describes the file.
            match answer::read_head(&url, file, &headers_of(&response))? {
                HeadAnswer::Follow(target) => url = target,
                HeadAnswer::File(meta) => return Ok(Some(meta)),
            }
        }
        bail!("{first}: more than {MAX_REDIRECTS} redirects (a redirect loop?), the last to {url}")
    }

    /// `GET` that follows redirects itself, so the token never leaves the hub's origin.
    fn get(&self, start: &str, from: u64) -> Result<ureq::Response, Failure> {
        let mut url = start.to_string();
        for _ in 0..MAX_REDIRECTS {
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
                Some(l) if (300..400).contains(&response.status()) => {
                    url = answer::resolve_location(&url, l).map_err(Failure::Fatal)?
                }
                _ => return Ok(response),
            }
        }
        Err(Failure::Fatal(anyhow!(
            "{start}: more than {MAX_REDIRECTS} redirects (a redirect loop?), the last to {url}"
        )))
    }

    /// Appends the missing bytes of a file to `part`; `Interrupted` if the transfer breaks.
    /// Never writes more than the announced size, whatever the server sends.
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
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(part)
            .map_err(|e| fatal(e, "open"))?;
        if have == meta.size {
            return Ok(());
        }
        let response = self.get(&meta.url, have)?;
        if have > 0 && response.status() == 206 {
            // The part must continue exactly where ours stops.
            let range = response.header("content-range").unwrap_or("");
            let start = range
                .strip_prefix("bytes ")
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.trim().parse::<u64>().ok());
            if start != Some(have) {
                return Err(Failure::Fatal(anyhow!(
                    "{}: asked for bytes {have}- of {file}, the server answered Content-Range \
                     {range:?}",
                    meta.url
                )));
            }
        } else if have > 0 {
            // The server ignored the range: start over.
            out.set_len(0).map_err(|e| fatal(e, "truncate"))?;
            have = 0;
        }
        if let Some(length) = response.header("content-length") {
            let length = answer::check_size(&meta.url, "Content-Length", length, u64::MAX)
                .map_err(Failure::Fatal)?;
            if length != meta.size - have {
                return Err(Failure::Fatal(anyhow!(
                    "{}: the answer's Content-Length is {length} bytes, but {file} has {} \
                     bytes left of the {} the hub announced",
                    meta.url,
                    meta.size - have,
                    meta.size
                )));
            }
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
            if done + n as u64 > meta.size {
                drop(out);
                let _ = std::fs::remove_file(part);
                return Err(Failure::Fatal(anyhow!(
                    "{}: the server sent more than the {} bytes announced for {file}; what \
                     arrived was deleted",
                    meta.url,
                    meta.size
                )));
            }
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

    /// Makes `blobs/<etag>` hold the file, downloading and checking it when needed, under
    /// the lock Python's `huggingface_hub` takes (`.locks/models--…/<etag>.lock`, flock), so
    /// two processes never append to the same `.incomplete` file.
    fn ensure_blob(
        &self,
        repo: &RepoCache,
        meta: &FileMeta,
        file: &str,
        progress: &mut dyn DownloadProgress,
    ) -> Result<File> {
        let lock = lock(&repo.lock(&meta.etag), file, progress)?;
        let blob = repo.blob(&meta.etag);
        if std::fs::metadata(&blob).is_ok_and(|m| m.len() == meta.size) {
            return Ok(lock);
        }
        let blobs = repo.root.join("blobs");
        std::fs::create_dir_all(&blobs)
            .with_context(|| format!("cannot create {}", blobs.display()))?;
        let part = repo.incomplete(&meta.etag);
        let mut attempt = 1;
        loop {
            match self.fetch_into(meta, &part, file, progress) {
                Ok(()) => break,
                Err(Failure::Fatal(e)) => {
                    // Refused before a byte arrived: leave no empty `.incomplete` behind.
                    if std::fs::metadata(&part).is_ok_and(|m| m.len() == 0) {
                        let _ = std::fs::remove_file(&part);
                    }
                    return Err(e);
                }
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
            .with_context(|| format!("cannot move {} into place", blob.display()))?;
        Ok(lock)
    }
}

/// Takes the exclusive lock at `path` (held until the returned file is dropped), waiting for
/// another holder with a line saying so. The file stays, as Python's `filelock` leaves it.
fn lock(path: &Path, file: &str, progress: &mut dyn DownloadProgress) -> Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o664)
        .open(path)
        .with_context(|| format!("cannot open the download lock {}", path.display()))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            progress.waiting(file, path);
            lock.lock()
                .with_context(|| format!("cannot take the download lock {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(anyhow!(e))
                .with_context(|| format!("cannot take the download lock {}", path.display()))
        }
    }
    Ok(lock)
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
    answer::check_revision(revision)?;
    let client = Client::new(settings);
    // config.json first: a wrong id or revision shows up here, before anything large moves.
    // No folder of this name exists (resolve checked), so say both halves of what was tried.
    let config = client
        .metadata(id, revision, "config.json")
        .with_context(|| {
            format!(
                "{id} is not a folder here, and asking the Hugging Face hub ({}) for it failed",
                settings.endpoint
            )
        })?
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
        if let Some(meta) = meta.as_ref().filter(|m| m.commit != commit) {
            bail!(
                "{}: the hub answered with commit {} for a request at commit {commit}",
                meta.url,
                meta.commit
            );
        }
        let Some(meta) = meta else {
            if *file == "model.safetensors" {
                let pickle = client.metadata(id, &commit, "pytorch_model.bin")?.is_some();
                bail!(
                    "{id} has no model.safetensors on {}{}",
                    settings.endpoint,
                    if pickle {
                        ", only pytorch_model.bin (a Python pickle this crate does not \
                         read); convert it once with transformers: \
                         AutoModel.from_pretrained(id).save_pretrained(dir) and \
                         AutoTokenizer.from_pretrained(id).save_pretrained(dir), then \
                         --model dir"
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
        let _lock = client.ensure_blob(repo, &meta, file, progress)?;
        repo.link(&commit, file, &meta.etag)?;
        found_tokenizer |= TOKENIZER_FILES.contains(file);
    }
    if !found_tokenizer {
        bail!(
            "{id} has neither {} on {}: it carries no tokenizer this crate reads (a \
             SentencePiece spm.model is not read: AutoTokenizer.from_pretrained(id)\
             .save_pretrained(dir) writes its tokenizer.json once)",
            TOKENIZER_FILES.join(" nor "),
            settings.endpoint
        );
    }
    repo.set_ref(revision, &commit)?;
    Ok(snapshot)
}
