//! How long the training sentences are in tokens, and where `max_len` cuts them: the figure
//! behind the tutorial's choice of 64.

use anyhow::{bail, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{failed, frame, legend, render, Drawing, Figure, BLUE, ORANGE};

struct Lengths {
    title: String,
    /// `counts[n]`: sentences of exactly `n` tokens.
    counts: Vec<usize>,
    cut: usize,
    over: usize,
}

/// Histogram of token lengths (special tokens included) with a vertical line at `cut`, the
/// `max_len` sentences are truncated to; the title says how many sentences exceed it.
///
/// `lengths` is one entry per sentence, e.g. `tokenizer.encode(s)?.len()` over the training set.
pub fn token_lengths(lengths: &[usize], cut: usize) -> Result<Figure> {
    let Some(&longest) = lengths.iter().max() else {
        bail!("token_lengths: no lengths given (one entry per sentence is needed)");
    };
    let mut counts = vec![0; longest + 1];
    for &n in lengths {
        counts[n] += 1;
    }
    let over = lengths.iter().filter(|&&n| n > cut).count();
    let title = format!(
        "Token lengths of {} sentences: {} longer than {cut} ({:.1}%)",
        crate::runtime::display::thousands(lengths.len()),
        crate::runtime::display::thousands(over),
        100.0 * over as f64 / lengths.len() as f64
    );
    render(Lengths {
        title,
        counts,
        cut,
        over,
    })
}

impl Drawing for Lengths {
    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(failed)?;
        let first = self.counts.iter().position(|&c| c > 0).unwrap_or(0);
        let last = (self.counts.len() - 1).max(self.cut);
        let highest = self.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let x = (first as f64 - 1.0)..(last as f64 + 2.0);
        let y = 0.0..highest * 1.15;
        let labels = ("Length in tokens ([CLS] and [SEP] included)", "Sentences");
        let mut plot = frame(root, &self.title, labels, (x, y), true, &[])?;
        let bars = self.counts.iter().enumerate().filter(|(_, &c)| c > 0);
        plot.draw_series(bars.map(|(n, &c)| {
            let x = n as f64;
            Rectangle::new([(x - 0.45, 0.0), (x + 0.45, c as f64)], BLUE.filled())
        }))
        .map_err(failed)?
        .label("sentences")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], BLUE.filled()));
        let style = ORANGE.stroke_width(3);
        let cut = self.cut as f64 + 0.5;
        plot.draw_series(LineSeries::new(
            vec![(cut, 0.0), (cut, highest * 1.15)],
            style,
        ))
        .map_err(failed)?
        .label(format!(
            "max_len = {} ({} sentences cut)",
            self.cut,
            crate::runtime::display::thousands(self.over)
        ))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        legend(&mut plot)?;
        root.present().map_err(failed)?;
        Ok(())
    }
}
