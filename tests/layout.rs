//! The house rules of `src/`, read from the source itself:
//!
//! - the library's folders depend only on those above them in `src/lib.rs`'s map (its
//!   `//! - [`name`]` lines), so the display helpers and the settings sit at the foundation;
//! - no two files import each other, directly or around a longer loop. A folder's `mod.rs`
//!   and the files below it count as one unit among themselves: `mod.rs` declares and
//!   re-exports its children, and they may name what it holds.
//!
//! The reading is lexical (comments and strings dropped, `use` trees expanded, paths walked
//! through the module tree to the file that defines the item they name); it needs no compiler
//! and runs in milliseconds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// A crate (`lib` or `bin`) and a module path within it.
type ModPath = (&'static str, Vec<String>);

struct Source {
    module: ModPath,
    tokens: Vec<String>,
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/data/task.rs` is `lib::data::task`, `src/cli/mod.rs` is `bin::cli`.
fn module_of(file: &Path) -> ModPath {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [one] if one == "lib" => return ("lib", vec![]),
        [one] if one == "main" => return ("bin", vec![]),
        _ => {}
    }
    let krate = if parts[0] == "cli" { "bin" } else { "lib" };
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    (krate, parts)
}

/// Identifiers and the punctuation a path is made of; comments, strings and characters dropped.
fn tokens(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b'r' && matches!(b.get(i + 1), Some(b'#') | Some(b'"')) && {
            let mut j = i + 1;
            while b.get(j) == Some(&b'#') {
                j += 1;
            }
            b.get(j) == Some(&b'"')
        } {
            // A raw string: r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            j += 1;
            loop {
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    i = j + 1 + hashes;
                    break;
                }
                j += 1;
            }
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'\'' {
            // A character literal ('a', '\n', '\u{..}') or a lifetime ('a): skip either.
            if b.get(i + 2) == Some(&b'\'') {
                i += 3;
            } else if b.get(i + 1) == Some(&b'\\') {
                i += 2;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            } else {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(text[start..i].to_string());
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push("::".into());
            i += 2;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            out.push((c as char).to_string());
            i += 1;
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
}

/// The names a file defines (items at any depth, which is what a path may reach).
fn definitions(tokens: &[String]) -> BTreeSet<String> {
    const ITEMS: [&str; 8] = [
        "struct", "enum", "fn", "trait", "type", "const", "static", "mod",
    ];
    let mut defs = BTreeSet::new();
    for w in tokens.windows(3) {
        if ITEMS.contains(&w[0].as_str()) && is_ident(&w[1]) {
            defs.insert(w[1].clone());
        }
        if w[0] == "macro_rules" && w[1] == "!" {
            defs.insert(w[2].clone());
        }
    }
    defs
}

/// Expands the use tree starting at `tokens[*i]` into full paths.
fn use_tree(tokens: &[String], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(*i).map(String::as_str) {
            Some("{") => {
                *i += 1;
                while tokens.get(*i).is_some_and(|t| t != "}") {
                    use_tree(tokens, i, &path, out);
                    if tokens.get(*i).is_some_and(|t| t == ",") {
                        *i += 1;
                    }
                }
                *i += 1;
                return;
            }
            Some("::") => *i += 1,
            Some("as") => {
                *i += 2;
                out.push(path);
                return;
            }
            Some(t) if is_ident(t) || t == "*" => {
                path.push(t.to_string());
                *i += 1;
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

/// Every path a file names: `use` trees expanded, and `a::b::c` written inline.
fn paths(tokens: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] == "use" {
            i += 1;
            use_tree(tokens, &mut i, &[], &mut out);
            continue;
        }
        let starts = is_ident(&tokens[i])
            && tokens.get(i + 1).is_some_and(|t| t == "::")
            && (i == 0 || tokens[i - 1] != "::");
        if starts {
            let mut path = vec![tokens[i].clone()];
            let mut j = i + 1;
            while tokens.get(j).is_some_and(|t| t == "::")
                && tokens.get(j + 1).is_some_and(|t| is_ident(t))
            {
                path.push(tokens[j + 1].clone());
                j += 2;
            }
            out.push(path);
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

struct Tree {
    files: BTreeMap<PathBuf, Source>,
    by_module: BTreeMap<ModPath, PathBuf>,
    defs: BTreeMap<PathBuf, BTreeSet<String>>,
}

impl Tree {
    fn read() -> Tree {
        let mut list = Vec::new();
        rs_files(&src(), &mut list);
        let mut files = BTreeMap::new();
        let mut by_module = BTreeMap::new();
        let mut defs = BTreeMap::new();
        for file in list {
            let tokens = tokens(&std::fs::read_to_string(&file).unwrap());
            let module = module_of(&file);
            by_module.insert(module.clone(), file.clone());
            defs.insert(file.clone(), definitions(&tokens));
            files.insert(file, Source { module, tokens });
        }
        Tree {
            files,
            by_module,
            defs,
        }
    }

    fn is_module(&self, krate: &'static str, path: &[String]) -> bool {
        self.by_module.contains_key(&(krate, path.to_vec()))
    }

    /// The file defining what `path`, written in `from`, names (None: outside the crate).
    fn resolve(&self, from: &ModPath, path: &[String]) -> Option<PathBuf> {
        let (krate, here) = from;
        let (mut module, rest): (ModPath, &[String]) = match path[0].as_str() {
            "crate" => ((krate, vec![]), &path[1..]),
            "bert_finetune" => (("lib", vec![]), &path[1..]),
            "self" => ((krate, here.clone()), &path[1..]),
            "super" => {
                let mut m = here.clone();
                let mut k = 0;
                while path.get(k).is_some_and(|s| s == "super") {
                    m.pop();
                    k += 1;
                }
                ((krate, m), &path[k..])
            }
            first => {
                let mut child = here.clone();
                child.push(first.to_string());
                if !self.is_module(krate, &child) {
                    return None;
                }
                ((krate, here.clone()), path)
            }
        };
        let mut rest = rest;
        while let Some(next) = rest.first() {
            let mut child = module.1.clone();
            child.push(next.clone());
            if !self.is_module(module.0, &child) {
                break;
            }
            module.1 = child;
            rest = &rest[1..];
        }
        let file = self.by_module.get(&module)?.clone();
        let Some(name) = rest.first().filter(|n| *n != "*" && *n != "self") else {
            return Some(file);
        };
        if self.defs[&file].contains(name) {
            return Some(file);
        }
        // A re-export: the file below this module that defines the name, nearest first.
        self.by_module
            .iter()
            .filter(|((k, m), f)| {
                *k == module.0 && m.starts_with(&module.1) && self.defs[*f].contains(name)
            })
            .min_by_key(|((_, m), _)| m.len())
            .map(|(_, f)| f.clone())
            .or(Some(file))
    }

    /// File → the files it imports from.
    fn edges(&self) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
        self.files
            .iter()
            .map(|(file, source)| {
                let targets = paths(&source.tokens)
                    .iter()
                    .filter_map(|p| self.resolve(&source.module, p))
                    .filter(|t| t != file)
                    .collect();
                (file.clone(), targets)
            })
            .collect()
    }
}

fn rel(p: &Path) -> String {
    p.strip_prefix(src().parent().unwrap())
        .unwrap()
        .display()
        .to_string()
}

/// The folders in `lib.rs`'s map, top to bottom.
fn lib_order() -> Vec<String> {
    std::fs::read_to_string(src().join("lib.rs"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn no_folder_imports_one_below_it_in_the_lib_map() {
    let order = lib_order();
    assert_eq!(
        order,
        ["runtime", "data", "model", "optim", "eval", "train", "viz"],
        "lib.rs's map changed: update this test with it"
    );
    let tree = Tree::read();
    let level = |file: &Path| -> Option<usize> {
        let m = &tree.files[file].module;
        (m.0 == "lib")
            .then(|| m.1.first())
            .flatten()
            .and_then(|top| order.iter().position(|o| o == top))
    };
    let mut upward = Vec::new();
    for (from, targets) in tree.edges() {
        let Some(a) = level(&from) else { continue };
        for to in targets {
            if let Some(b) = level(&to) {
                if b > a {
                    upward.push(format!(
                        "{} imports {} ({} is below {})",
                        rel(&from),
                        rel(&to),
                        order[b],
                        order[a]
                    ));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against lib.rs's order:\n{}",
        upward.join("\n")
    );
}

/// True when `a` is a folder's `mod.rs` (or a crate root) and `b` lies below it.
fn facade_of(tree: &Tree, a: &Path, b: &Path) -> bool {
    let (ma, mb) = (&tree.files[a].module, &tree.files[b].module);
    let is_facade = a.ends_with("mod.rs") || a.ends_with("lib.rs") || a.ends_with("main.rs");
    is_facade && ma.0 == mb.0 && mb.1.starts_with(&ma.1)
}

#[test]
fn no_import_cycles_between_files() {
    let tree = Tree::read();
    let edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = tree
        .edges()
        .into_iter()
        .map(|(a, targets)| {
            let kept = targets
                .into_iter()
                .filter(|b| !facade_of(&tree, &a, b) && !facade_of(&tree, b, &a))
                .collect();
            (a, kept)
        })
        .collect();
    // Strongly connected components (Tarjan); any of more than one file is a cycle.
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a Path, usize>,
        low: BTreeMap<&'a Path, usize>,
        stack: Vec<&'a Path>,
        cycles: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Path) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in &s.edges[v] {
            let w = w.as_path();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(rel(w));
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.cycles.push(component);
            }
        }
    }
    let mut state = State {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        cycles: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v.as_path()) {
            visit(&mut state, v);
        }
    }
    let found: Vec<String> = state.cycles.iter().map(|c| c.join(" <-> ")).collect();
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

/// The reader itself: it must see the imports a file makes, or the two rules above pass
/// vacuously.
#[test]
fn the_reader_sees_known_imports() {
    let tree = Tree::read();
    let edges = tree.edges();
    let has = |from: &str, to: &str| {
        edges[&src().join(from)]
            .iter()
            .any(|t| t == &src().join(to))
    };
    // A `use super::…` of a re-exported name, a braced `use crate::{…}` tree, an inline path.
    assert!(has("data/task.rs", "data/labels.rs"));
    assert!(has("model/predict.rs", "runtime/display.rs"));
    assert!(has("cli/train.rs", "cli/fit.rs"));
    assert!(has("model/choice.rs", "model/hub/mod.rs"));
    assert!(has("eval/evaluation.rs", "data/problem_type.rs"));
    // And it would flag a cycle: data/task.rs → labels.rs, and labels.rs back, would be one.
    assert!(!has("data/labels.rs", "data/task.rs"));
}
