//! A folder's files with their sizes, like the tutorial's `ls -l` after saving a model.

use std::path::Path;

use anyhow::{Context, Result};

use crate::runtime::display::{size, thousands, Table};

/// The plain files of `dir` (hidden ones left out, such as a `.partial` being written), by
/// name, with their size in bytes and in readable units.
pub fn list_files(dir: impl AsRef<Path>) -> Result<Table> {
    let dir = dir.as_ref();
    let mut entries: Vec<(String, u64)> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| {
            let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    entries.sort();
    let mut table = Table::new(format!("{}", dir.display()), &["file", "bytes", "size"]);
    for (name, bytes) in entries {
        table.push_row([name, thousands(bytes as usize), size(bytes)]);
    }
    Ok(table)
}
