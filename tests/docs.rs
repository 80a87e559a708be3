//! The README and `docs/` as a newcomer meets them: short enough to read, every page reachable,
//! no dead link, and every command they quote one that exists (a Makefile target, or a
//! `bert-finetune` subcommand with flags its `--help` lists), every repository path they name
//! a file or folder that is there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every page of docs/, with their text.
fn pages() -> Vec<(PathBuf, String)> {
    let mut pages = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("a docs/ folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The text outside fenced code blocks, and the lines inside them.
fn split_fences(text: &str) -> (String, Vec<String>) {
    let (mut prose, mut code) = (String::new(), Vec::new());
    let mut inside = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
            continue;
        }
        if inside {
            code.push(line.to_string());
        } else {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    (prose, code)
}

fn anchors(text: &str) -> BTreeSet<String> {
    split_fences(text)
        .0
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// `[text](target)` links in prose.
fn links(text: &str) -> Vec<String> {
    let prose = split_fences(text).0;
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        if let Some(end) = after.find(')') {
            out.push(after[..end].to_string());
        }
        rest = &rest[i + 2..];
    }
    out
}

/// Inline code spans of the prose, a span broken over lines joined with a space.
fn code_spans(text: &str) -> Vec<String> {
    let prose = split_fences(text).0;
    prose
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|s| s.replace('\n', " "))
        .collect()
}

/// Shell commands of the code blocks (continued lines joined) and the inline spans.
fn commands(text: &str) -> Vec<String> {
    let (_, code) = split_fences(text);
    let mut out = Vec::new();
    let mut current = String::new();
    for line in code {
        let line = line.split(" #").next().unwrap_or("").trim_end();
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(line);
            out.push(std::mem::take(&mut current));
        }
    }
    out.extend(code_spans(text));
    out
}

#[test]
fn the_readme_is_short_with_the_two_commands_first() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    assert!(
        lines.len() <= 250,
        "README.md has {} lines; reference material belongs in docs/",
        lines.len()
    );
    let first_screen = lines[..lines.len().min(40)].join("\n");
    for command in ["make run", "make test"] {
        assert!(
            first_screen.contains(command),
            "`{command}` is not in the README's first 40 lines"
        );
    }
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let linked: BTreeSet<String> = links(&readme)
        .into_iter()
        .map(|l| l.split('#').next().unwrap().to_string())
        .collect();
    for (page, _) in pages().into_iter().skip(1) {
        let name = rel(&page);
        assert!(
            linked.contains(&name),
            "{name} is not linked from README.md"
        );
    }
}

#[test]
fn no_dead_links() {
    let pages = pages();
    let anchors: BTreeMap<PathBuf, BTreeSet<String>> =
        pages.iter().map(|(p, t)| (p.clone(), anchors(t))).collect();
    let mut dead = Vec::new();
    let mut checked = 0;
    for (page, text) in &pages {
        for link in links(text) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue; // no network in tests; the crates.io links are stable addresses
            }
            checked += 1;
            let (file, anchor) = match link.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let Ok(target) = target.canonicalize() else {
                dead.push(format!("{}: {link} (no such file)", rel(page)));
                continue;
            };
            if let Some(anchor) = anchor {
                let known = anchors
                    .iter()
                    .find(|(p, _)| p.canonicalize().ok().as_ref() == Some(&target))
                    .map(|(_, a)| a);
                if !known.is_some_and(|a| a.contains(anchor)) {
                    dead.push(format!("{}: {link} (no such heading)", rel(page)));
                }
            }
        }
    }
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
    assert!(checked >= 10, "only {checked} relative links found");
}

fn makefile_targets() -> BTreeSet<String> {
    std::fs::read_to_string(root().join("Makefile"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(['\t', '#', '.', ' ']))
        .filter_map(|l| l.split_once(':').map(|(t, _)| t))
        .filter(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
        .collect()
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bert-finetune"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "bert-finetune {args:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// A flag is listed when its name is followed by something that cannot continue it.
fn lists_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        !help[i + flag.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

#[test]
fn every_quoted_command_exists() {
    let targets = makefile_targets();
    assert!(
        targets.contains("test") && targets.contains("run"),
        "{targets:?}"
    );
    let top = help(&[]);
    let mut helps: BTreeMap<String, String> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut seen = 0;
    for (page, text) in pages() {
        for command in commands(&text) {
            // Several commands on one line: `a && b`, `a; b`, `a | b`.
            for part in command.split(['|', ';', '&']) {
                let words: Vec<&str> = part.split_whitespace().collect();
                if let Some(i) = words.iter().position(|w| *w == "make") {
                    if let Some(target) = words.get(i + 1).filter(|w| !w.contains('=')) {
                        seen += 1;
                        if !targets.contains(*target) {
                            wrong.push(format!("{}: `make {target}`: no such target", rel(&page)));
                        }
                    }
                }
                let Some(i) = words
                    .iter()
                    .position(|w| *w == "bert-finetune" || w.ends_with("/bert-finetune"))
                else {
                    continue;
                };
                let Some(sub) = words.get(i + 1).filter(|w| !w.starts_with('-')) else {
                    continue;
                };
                seen += 1;
                if !lists_flag(&top, &format!("  {sub}")) {
                    wrong.push(format!(
                        "{}: `bert-finetune {sub}`: no such subcommand",
                        rel(&page)
                    ));
                    continue;
                }
                let sub_help = helps.entry(sub.to_string()).or_insert_with(|| help(&[sub]));
                for word in &words[i + 2..] {
                    let Some(flag) = word
                        .strip_prefix("--")
                        .map(|f| f.split('=').next().unwrap())
                    else {
                        continue;
                    };
                    let flag = format!("--{}", flag.trim_end_matches([',', '.', ')']));
                    if flag != "--help" && !lists_flag(sub_help, &flag) {
                        wrong.push(format!(
                            "{}: `bert-finetune {sub} {flag}`: not in `bert-finetune {sub} --help`",
                            rel(&page)
                        ));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        seen >= 20,
        "only {seen} commands found: is the reader broken?"
    );
}

#[test]
fn every_repository_path_named_exists() {
    const ROOTS: [&str; 8] = [
        "src/",
        "tests/",
        "scripts/",
        "notebooks/",
        "docs/",
        "csrc/",
        "assets/",
        ".ci/",
    ];
    let mut missing = Vec::new();
    for (page, text) in pages() {
        for span in code_spans(&text) {
            let path = span.split_whitespace().next().unwrap_or("");
            let path = path.trim_end_matches([',', '.', ':', ')']);
            // Placeholders (`<k>`, `…`) and globs name families of files, not one.
            if !ROOTS.iter().any(|r| path.starts_with(r)) || path.contains(['<', '*', '…', '{']) {
                continue;
            }
            if !root().join(path).exists() {
                missing.push(format!("{}: `{path}`", rel(&page)));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths that do not exist:\n{}",
        missing.join("\n")
    );
}
