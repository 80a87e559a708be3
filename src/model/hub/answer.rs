//! What a hub server says about a file, checked where it arrives, before any of it reaches the
//! file system or an allocation.
//!
//! A mirror named by `HF_ENDPOINT` may be broken or hostile, and three of its headers become
//! parts of cache paths (`X-Repo-Commit` → `snapshots/<commit>/`, the etag →
//! `blobs/<etag>`) or the number of bytes written (the size). Each is refused unless it has
//! the form the real hub gives it, with a message naming the URL, the header and the value.
//! `huggingface_hub` checks only that the final pointer path stays inside its snapshot folder;
//! checking the values themselves also keeps `.no_exist/`, `refs/` and `.locks/` safe.

use anyhow::{anyhow, bail, Result};
use url::Url;

use super::cache::plain_parts;

/// Largest weights file accepted: bert-large's is 1.3 GB; a size beyond this is an error
/// (or an attack filling the disk), not a BERT.
pub const MAX_WEIGHTS_BYTES: u64 = 64 << 30;
/// Largest other file accepted (`config.json`, tokenizer files are kilobytes to megabytes).
pub const MAX_TEXT_BYTES: u64 = 1 << 30;

/// What the hub says about one file, every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The commit the revision resolved to: 40 hex digits.
    pub commit: String,
    /// The content's id, the blob's file name: letters, digits, `-` and `_` only.
    pub etag: String,
    /// Bytes the file has; at most [`MAX_WEIGHTS_BYTES`] or [`MAX_TEXT_BYTES`].
    pub size: u64,
    /// Where the bytes are (the CDN for LFS files).
    pub url: String,
}

/// The answer to a `HEAD` on `…/resolve/<revision>/<file>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadAnswer {
    /// A redirect on the hub's own host (a renamed repository): ask there.
    Follow(String),
    /// The file's metadata (a redirect to another host is the CDN; this answer describes it).
    File(FileMeta),
}

/// Reads a `HEAD` answer for `file` at `url`: `headers` as received (names in any case).
pub fn read_head(url: &str, file: &str, headers: &[(String, String)]) -> Result<HeadAnswer> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let location = header("location")
        .map(|l| resolve_location(url, l))
        .transpose()?;
    if let Some(target) = &location {
        if same_origin(target, url) {
            return Ok(HeadAnswer::Follow(target.clone()));
        }
    }
    let commit = header("x-repo-commit").ok_or_else(|| {
        anyhow!("{url}: the answer has no X-Repo-Commit header; is HF_ENDPOINT a Hugging Face hub?")
    })?;
    let commit = check_commit(url, "X-Repo-Commit", commit)?;
    let (etag_header, etag) = match header("x-linked-etag") {
        Some(e) => ("X-Linked-Etag", e),
        None => (
            "ETag",
            header("etag").ok_or_else(|| anyhow!("{url}: the answer has no ETag header"))?,
        ),
    };
    let etag = check_etag(url, etag_header, etag)?;
    let limit = if file.ends_with(".safetensors") {
        MAX_WEIGHTS_BYTES
    } else {
        MAX_TEXT_BYTES
    };
    let size = match (header("x-linked-size"), &location) {
        (Some(s), _) => check_size(url, "X-Linked-Size", s, limit)?,
        // A redirect's Content-Length is the length of the redirect's own body.
        (None, Some(target)) => bail!(
            "{url}: the hub redirected to {target} without an X-Linked-Size header, so the \
             size of {file} is unknown; is HF_ENDPOINT a Hugging Face hub?"
        ),
        (None, None) => match header("content-length") {
            Some(s) => check_size(url, "Content-Length", s, limit)?,
            None => {
                bail!("{url}: the answer gives no file size (no X-Linked-Size or Content-Length)")
            }
        },
    };
    Ok(HeadAnswer::File(FileMeta {
        commit,
        etag,
        size,
        url: location.unwrap_or_else(|| url.to_string()),
    }))
}

/// A commit is what the hub's `X-Repo-Commit` always is: 40 hex digits (a git sha1).
pub fn check_commit(url: &str, header: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(value.to_string());
    }
    bail!(
        "{url}: header {header} is {}, not a commit hash (40 hex digits); refusing to use it \
         as a cache folder name",
        shown(value)
    )
}

/// An etag, unquoted and without `W/`: the hub's are sha256 or git sha1 hex digests; other
/// mirrors may add `-` or `_`. Nothing that could name another folder.
pub fn check_etag(url: &str, header: &str, raw: &str) -> Result<String> {
    let etag = raw.trim().trim_start_matches("W/").trim_matches('"');
    if !etag.is_empty()
        && etag.len() <= 128
        && etag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Ok(etag.to_string());
    }
    bail!(
        "{url}: header {header} is {}, not a usable content id (letters, digits, '-' or '_', \
         at most 128); refusing to use it as a file name",
        shown(raw)
    )
}

/// A size: decimal digits, at most `limit`.
pub fn check_size(url: &str, header: &str, value: &str, limit: u64) -> Result<u64> {
    let digits = value.trim();
    let size = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse::<u64>().ok())
        .flatten();
    match size {
        Some(size) if size <= limit => Ok(size),
        Some(size) => bail!(
            "{url}: header {header} announces {size} bytes, more than the {} this crate \
             accepts for such a file; refusing to download it",
            crate::runtime::display::size(limit)
        ),
        None => bail!(
            "{url}: header {header} is {}, not a size in bytes",
            shown(value)
        ),
    }
}

/// A revision the user names (`--revision`): a branch, tag, commit or `refs/pr/N`. It becomes
/// `refs/<revision>` in the cache, so every `/`-separated part must be a plain name.
pub fn check_revision(revision: &str) -> Result<()> {
    if revision.len() > 256 || !plain_parts(revision) {
        bail!(
            "revision {} is not a branch, tag or commit name (letters, digits, '-', '_', '.', \
             '+', parts separated by '/', no '..')",
            shown(revision)
        );
    }
    Ok(())
}

/// A `Location` header made absolute against the URL it answered; only http(s) is followed.
pub fn resolve_location(base: &str, location: &str) -> Result<String> {
    let target = Url::parse(base)
        .and_then(|b| b.join(location.trim()))
        .map_err(|e| anyhow!("{base}: header Location is {}: {e}", shown(location)))?;
    if !matches!(target.scheme(), "http" | "https") {
        bail!(
            "{base}: header Location is {}: only http and https redirects are followed",
            shown(location)
        );
    }
    Ok(target.to_string())
}

/// Whether two URLs share scheme, host and port: the token goes to the hub's origin only.
pub fn same_origin(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin() && a.origin().is_tuple(),
        _ => false,
    }
}

/// A server's value for an error message: quoted, control characters escaped, cut at 100.
fn shown(value: &str) -> String {
    let mut text: String = value.chars().take(100).collect();
    if value.chars().count() > 100 {
        text.push('…');
    }
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const URL: &str = "http://127.0.0.1:1/org/m/resolve/main/config.json";
    const COMMIT: &str = "1f0d5c2b9e3a4d6c8b7a0e1f2d3c4b5a69788796";

    #[test]
    fn a_hub_answer_is_read() {
        let meta = read_head(
            URL,
            "config.json",
            &headers(&[
                ("X-Repo-Commit", COMMIT),
                ("etag", "\"abc123\""),
                ("content-length", "42"),
            ]),
        )
        .unwrap();
        assert_eq!(
            meta,
            HeadAnswer::File(FileMeta {
                commit: COMMIT.into(),
                etag: "abc123".into(),
                size: 42,
                url: URL.into()
            })
        );
    }

    #[test]
    fn traversal_and_absurd_values_are_refused_naming_the_header() {
        let cases = [
            ("X-Repo-Commit", "../../../../somewhere", "X-Repo-Commit"),
            ("etag", "\"../../x\"", "ETag"),
            ("content-length", "-1", "Content-Length"),
            (
                "content-length",
                "99999999999999999999999",
                "Content-Length",
            ),
            ("content-length", "1099511627776", "Content-Length"),
        ];
        for (name, value, named) in cases {
            let mut h = vec![
                ("X-Repo-Commit", COMMIT),
                ("etag", "\"abc\""),
                ("content-length", "1"),
            ];
            h.retain(|(k, _)| *k != name);
            h.push((name, value));
            let err = read_head(URL, "config.json", &headers(&h))
                .unwrap_err()
                .to_string();
            assert!(err.contains(URL) && err.contains(named), "{err}");
        }
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin("http://a:1/x", "http://a:1/y?z"));
        assert!(!same_origin("http://a:1/x", "https://a:1/x"));
        assert!(!same_origin("http://a:1/x", "http://a:1@b/x"));
        assert!(!same_origin("http://a:1/x", "http://a:2/x"));
        assert_eq!(
            resolve_location("http://a:1/x/y", "/cdn/z").unwrap(),
            "http://a:1/cdn/z"
        );
        assert!(resolve_location("http://a/x", "file:///etc/passwd").is_err());
    }

    #[test]
    fn revisions_are_plain_names() {
        for ok in ["main", "v1.0", "refs/pr/1", COMMIT] {
            check_revision(ok).unwrap();
        }
        for bad in ["", "..", "../x", "a//b", "/abs", "a/./b", "a b", "x\0"] {
            assert!(check_revision(bad).is_err(), "{bad:?}");
        }
    }
}
