//! A user's file as a polars [`DataFrame`], through polars' own readers: CSV and TSV (a header
//! row, quoted fields, newlines inside quotes), JSON lines, Parquet. The format comes from the
//! extension unless given. Errors name the file.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::*;

use crate::runtime::display::{escape, Html, Rich};

/// A file's extension, lower-cased (empty when it has none): what the readers of tables,
/// tagged words and questions tell formats by.
pub fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}

/// The file formats a table is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Tsv,
    JsonLines,
    Parquet,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Csv, Format::Tsv, Format::JsonLines, Format::Parquet];

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::JsonLines => "jsonl",
            Format::Parquet => "parquet",
        }
    }

    /// From the file's extension: `.csv`, `.tsv`, `.jsonl`/`.ndjson`/`.json` (one object per
    /// line), `.parquet`/`.pq`.
    pub fn of_path(path: &Path) -> Result<Format> {
        let ext = extension(path);
        ext.parse().map_err(|_| {
            anyhow!(
                "{}: cannot tell the format from the extension {:?}; name it with --format \
                 (csv, tsv, jsonl, parquet; conll for words and their tags)",
                path.display(),
                ext
            )
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Format> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "csv" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "jsonl" | "ndjson" | "json" | "json-lines" => Format::JsonLines,
            "parquet" | "pq" => Format::Parquet,
            other => bail!("unknown format {other:?}: use csv, tsv, jsonl or parquet"),
        })
    }
}

/// A column's values as text (numbers written out), `None` where null. A column that cannot
/// be read as text is an error naming the file and the column.
pub fn text_values(column: &Column, file: &Path) -> Result<Vec<Option<String>>> {
    let name = column.name();
    let cast = column.cast(&DataType::String).map_err(|e| {
        anyhow!(
            "{}: column {name:?} cannot be read as text: {e}",
            file.display()
        )
    })?;
    let values = cast
        .str()
        .map_err(|e| anyhow!("{}: column {name:?}: {e}", file.display()))?;
    Ok(values.iter().map(|v| v.map(str::to_string)).collect())
}

/// Reads `path` into a frame (`format`, or the one its extension names). An empty file, or
/// one without a row, is an error: there is nothing to train or score on.
pub fn read_table(path: impl AsRef<Path>, format: Option<Format>) -> Result<DataFrame> {
    read_table_with(path, format, Quoting::Double)
}

/// How a CSV or TSV file quotes fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// `"…"` around a field that holds the separator, a quote (doubled) or a newline: what
    /// spreadsheets and pandas write.
    Double,
    /// No quoting: every `"` is text (GLUE's and CoLA's TSV files).
    Off,
}

/// [`read_table`] with the quoting of a CSV or TSV file given (the GLUE presets read their
/// files with quoting off).
pub fn read_table_with(
    path: impl AsRef<Path>,
    format: Option<Format>,
    quoting: Quoting,
) -> Result<DataFrame> {
    let path = path.as_ref();
    let format = match format {
        Some(f) => f,
        None => Format::of_path(path)?,
    };
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    if meta.len() == 0 {
        bail!("{} is empty", path.display());
    }
    let read = || -> PolarsResult<DataFrame> {
        match format {
            Format::Csv | Format::Tsv => {
                let separator = if format == Format::Tsv { b'\t' } else { b',' };
                let quote = (quoting == Quoting::Double).then_some(b'"');
                CsvReadOptions::default()
                    .with_has_header(true)
                    .with_infer_schema_length(None) // every row decides a column's type
                    .with_parse_options(
                        CsvParseOptions::default()
                            .with_separator(separator)
                            .with_quote_char(quote),
                    )
                    .try_into_reader_with_file_path(Some(path.to_path_buf()))?
                    .finish()
            }
            Format::JsonLines => {
                let file = std::fs::File::open(path)?;
                JsonReader::new(file)
                    .with_json_format(JsonFormat::JsonLines)
                    .infer_schema_len(None)
                    .finish()
            }
            Format::Parquet => ParquetReader::new(std::fs::File::open(path)?).finish(),
        }
    };
    let frame =
        read().map_err(|e| anyhow!("{} is not readable as {format}: {e}", path.display()))?;
    if frame.height() == 0 {
        bail!("{} holds no rows", path.display());
    }
    Ok(frame)
}

/// Writes `frame` to `path` as `format` (or the one its extension names), through a
/// temporary name, so a failed write leaves no half file and an existing one untouched.
pub fn write_table(
    frame: &mut DataFrame,
    path: impl AsRef<Path>,
    format: Option<Format>,
) -> Result<()> {
    let path = path.as_ref();
    let format = match format {
        Some(f) => f,
        None => Format::of_path(path)?,
    };
    let mut bytes = Vec::new();
    let written = match format {
        Format::Csv | Format::Tsv => CsvWriter::new(&mut bytes)
            .include_header(true)
            .with_separator(if format == Format::Tsv { b'\t' } else { b',' })
            .finish(frame),
        Format::JsonLines => JsonWriter::new(&mut bytes)
            .with_json_format(JsonFormat::JsonLines)
            .finish(frame),
        Format::Parquet => ParquetWriter::new(&mut bytes).finish(frame).map(|_| ()),
    };
    written.map_err(|e| anyhow!("cannot write {} as {format}: {e}", path.display()))?;
    crate::runtime::atomic::write(path, &bytes)?;
    Ok(())
}

/// A polars frame that renders as an HTML table in evcxr and as polars' own table in text.
#[derive(Debug, Clone)]
pub struct Frame(pub DataFrame);

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Rich for Frame {
    fn html(&self) -> Option<Html> {
        let df = &self.0;
        let mut html = String::from("<table class=\"bert-finetune\"><thead><tr>");
        for name in df.get_column_names() {
            html.push_str(&format!("<th>{}</th>", escape(name)));
        }
        html.push_str("</tr></thead><tbody>");
        for row in 0..df.height() {
            html.push_str("<tr>");
            for column in df.columns() {
                let value = column.get(row).ok();
                let text = match &value {
                    Some(AnyValue::Null) | None => "null".to_string(),
                    Some(v) => v
                        .get_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                };
                html.push_str(&format!(
                    "<td style=\"text-align:left\">{}</td>",
                    escape(&text)
                ));
            }
            html.push_str("</tr>");
        }
        html.push_str(&format!(
            "</tbody></table><p>{} rows × {} columns</p>",
            df.height(),
            df.width()
        ));
        Some(Html(html))
    }
}

crate::impl_evcxr_display!(Frame);
