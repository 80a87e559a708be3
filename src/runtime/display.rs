//! How values show up in a notebook, and the number formats every table uses (`thousands`,
//! `size`). It sits at the foundation because the data, the model, the hub and the Trainer all
//! show values; the figures in `viz` build on it.
//!
//! evcxr renders a value whose type has an inherent `evcxr_display` method: the method prints
//! `EVCXR_BEGIN_CONTENT <mime>` … `EVCXR_END_CONTENT` blocks, and the kernel gathers them into
//! one Jupyter display bundle. We always send `text/plain` next to the rich form, so the value
//! still reads well in a terminal, in `jupyter nbconvert --to markdown`, and in untrusted
//! notebooks where JupyterLab refuses HTML it cannot sanitise.

use std::fmt;
use std::io::Write;

use base64::Engine;

/// A fragment of HTML produced by this crate (always escaped where it holds user text).
#[derive(Debug, Clone)]
pub struct Html(pub String);

/// A value with a plain-text form and, optionally, richer forms for Jupyter.
pub trait Rich: fmt::Display {
    /// An HTML rendering (tables).
    fn html(&self) -> Option<Html> {
        None
    }
    /// A PNG rendering (plots); shown even in untrusted notebooks.
    fn png(&self) -> Option<Vec<u8>> {
        None
    }
    /// An SVG rendering (plots), for crisp zooming where the notebook is trusted.
    fn svg(&self) -> Option<String> {
        None
    }

    /// Every available form, keyed by MIME type, `text/plain` first.
    fn mime_bundle(&self) -> Vec<(&'static str, String)> {
        let mut bundle = vec![("text/plain", self.to_string())];
        if let Some(Html(html)) = self.html() {
            bundle.push(("text/html", html));
        }
        if let Some(png) = self.png() {
            bundle.push((
                "image/png",
                base64::engine::general_purpose::STANDARD.encode(png),
            ));
        }
        if let Some(svg) = self.svg() {
            bundle.push(("image/svg+xml", svg));
        }
        bundle
    }
}

/// Prints a bundle in evcxr's content protocol on stdout.
pub fn emit(bundle: &[(&str, String)]) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (mime, data) in bundle {
        // A closed stdout (a broken pipe) is not worth a panic in a display helper.
        let _ = writeln!(out, "EVCXR_BEGIN_CONTENT {mime}\n{data}\nEVCXR_END_CONTENT");
    }
    let _ = out.flush();
}

/// Gives a type the inherent `evcxr_display` method that evcxr looks for.
#[macro_export]
macro_rules! impl_evcxr_display {
    ($t:ty) => {
        impl $t {
            /// Shows this value in an evcxr notebook (plain text plus rich forms).
            pub fn evcxr_display(&self) {
                $crate::runtime::display::emit(&$crate::runtime::display::Rich::mime_bundle(self));
            }
        }
    };
}

/// Escapes text for inclusion in HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A small table with a caption: the common shape of what the tutorial prints.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub caption: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(caption: impl Into<String>, headers: &[&str]) -> Self {
        Table {
            caption: caption.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push_row<I, S>(&mut self, row: I)
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        self.rows
            .push(row.into_iter().map(|c| c.to_string()).collect());
    }

    /// Cell text by row and column name; `None` when either is absent.
    pub fn cell(&self, row: usize, column: &str) -> Option<&str> {
        let col = self.headers.iter().position(|h| h == column)?;
        self.rows.get(row)?.get(col).map(String::as_str)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = |i: usize| {
            self.rows
                .iter()
                .filter_map(|r| r.get(i))
                .chain(std::iter::once(&self.headers[i]))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.headers.len()).map(width).collect();
        if !self.caption.is_empty() {
            writeln!(f, "{}", self.caption)?;
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        writeln!(f, "{}", line(&self.headers))?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        write!(f, "{}", line(&rule))?;
        for row in &self.rows {
            write!(f, "\n{}", line(row))?;
        }
        Ok(())
    }
}

impl Rich for Table {
    fn html(&self) -> Option<Html> {
        let mut html = String::from("<div>");
        if !self.caption.is_empty() {
            html.push_str(&format!("<p><b>{}</b></p>", escape(&self.caption)));
        }
        html.push_str("<table class=\"bert-finetune\"><thead><tr>");
        for h in &self.headers {
            html.push_str(&format!("<th>{}</th>", escape(h)));
        }
        html.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            html.push_str("<tr>");
            for c in row {
                html.push_str(&format!("<td style=\"text-align:left\">{}</td>", escape(c)));
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table></div>");
        Some(Html(html))
    }
}

crate::impl_evcxr_display!(Table);

/// A file size the way people read it: MB, kB or bytes.
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e12 {
        format!("{:.1} TB", b / 1e12)
    } else if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// Seconds as `h:mm:ss`, the way the tutorial prints elapsed time.
pub fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `8551` → `8,551`, as the tutorial prints counts.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(8551), "8,551");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
