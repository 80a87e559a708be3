//! The tutorial's figures, drawn with plotters.
//!
//! Each figure is rendered twice, to SVG and to PNG, and shown in evcxr as an `image/png` +
//! `image/svg+xml` bundle. plotters' own evcxr helper sends `text/html`, which JupyterLab
//! strips in untrusted notebooks; images are always displayed. Text in the PNG uses a bundled
//! DejaVu Sans, so plots look the same on machines without fonts.
//!
//! The training curves live here; each other figure has its own file: `lengths.rs` (token
//! lengths and the cut), `confusion.rs` (the confusion matrix), `attention.rs` (one head's
//! attention), the last two drawn by the shared grid of `heatmap.rs`. Two files show task data
//! as HTML rather than pictures: `tags.rs` (tagged sentences, word pieces and their labels) and
//! `windows.rs` (a question's context cut into windows, an answer in its context).

mod attention;
mod confusion;
pub mod files;
mod heatmap;
mod lengths;
mod progress;
mod tags;
mod windows;

pub use attention::{attention, attention_map};
pub use confusion::{confusion_matrix, confusion_matrix_with_labels};
pub use lengths::token_lengths;
pub use tags::{aligned_pieces, tagged_sentences, TaggedSentences};
pub use windows::{answer_in_context, qa_windows, AnswerInContext, QaWindows, WindowSpan};

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::data::Labels;
use crate::eval::Evaluation;
use crate::runtime::display::Rich;
use crate::train::History;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 480;
const FONT: &str = "sans-serif";
/// seaborn's "darkgrid" background.
const PANEL: RGBColor = RGBColor(234, 234, 242);
const BLUE: RGBColor = RGBColor(76, 114, 176);
const ORANGE: RGBColor = RGBColor(221, 132, 82);
const GREEN: RGBColor = RGBColor(85, 168, 104);

/// A rendered figure.
#[derive(Debug, Clone)]
pub struct Figure {
    pub title: String,
    pub svg: String,
    pub png: Vec<u8>,
    /// Size in pixels (width, height), the same for both renderings.
    pub size: (u32, u32),
}

impl Figure {
    /// Writes `<stem>.png` and `<stem>.svg` into `dir`.
    pub fn save(&self, dir: impl AsRef<Path>, stem: &str) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        Ok(vec![
            crate::runtime::atomic::write(&dir.join(format!("{stem}.png")), &self.png)?,
            crate::runtime::atomic::write(&dir.join(format!("{stem}.svg")), self.svg.as_bytes())?,
        ])
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (width, height) = self.size;
        write!(f, "[figure: {} ({width}×{height})]", self.title)
    }
}

impl Rich for Figure {
    fn png(&self) -> Option<Vec<u8>> {
        Some(self.png.clone())
    }
    fn svg(&self) -> Option<String> {
        Some(self.svg.clone())
    }
}

crate::impl_evcxr_display!(Figure);

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    width: u32,
    markers: bool,
}

enum Chart {
    Lines {
        title: String,
        x_label: String,
        y_label: String,
        series: Vec<Series>,
        /// Whole-number x ticks (epochs).
        integer_x: bool,
    },
    Bars {
        title: String,
        x_label: String,
        y_label: String,
        values: Vec<f64>,
        reference: Option<(String, f64)>,
    },
    /// Bars in groups: `series[k].1[g]` is the bar of series `k` in group `g`.
    Grouped {
        title: String,
        x_label: String,
        y_label: String,
        groups: Vec<String>,
        series: Vec<(String, Vec<f64>)>,
    },
}

/// A figure that can be drawn on any plotters backend (SVG and bitmap both).
trait Drawing {
    fn title(&self) -> &str;

    /// Width and height in pixels.
    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

impl Drawing for Chart {
    fn title(&self) -> &str {
        match self {
            Chart::Lines { title, .. }
            | Chart::Bars { title, .. }
            | Chart::Grouped { title, .. } => title,
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        draw(root, self)
    }
}

fn register_font() {
    static FONTS: Once = Once::new();
    FONTS.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The bundled font is valid; if registration ever failed, text would be missing
            // from PNGs only, which is no reason to stop training.
            let _ = plotters::style::register_font(FONT, style, bytes);
        }
    });
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(1e-3);
    (lo - 0.08 * span, hi + 0.08 * span)
}

type Plot<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Axes, title and seaborn-style grid, shared by every chart.
fn frame<'a, DB: DrawingBackend + 'a>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    (x_label, y_label): (&str, &str),
    (x, y): (Range<f64>, Range<f64>),
    integer_x: bool,
    names: &[String],
) -> Result<Plot<'a, DB>> {
    let mut plot = ChartBuilder::on(root)
        .caption(title, (FONT, 26))
        .margin(18)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(failed)?;
    plot.plotting_area().fill(&PANEL).map_err(failed)?;
    let whole = |v: &f64| {
        let i = v.round() as i64;
        match names.get(i.max(0) as usize) {
            Some(name) if i >= 0 => name.clone(),
            _ if !names.is_empty() => String::new(),
            _ => i.to_string(),
        }
    };
    // Few whole numbers (epochs, batches): one tick each; many (steps): plotters' own spacing.
    let span = (plot.x_range().end - plot.x_range().start).round() as usize + 1;
    let tall = plot.y_range().end - plot.y_range().start >= 10.0;
    let mut mesh = plot.configure_mesh();
    mesh.bold_line_style(WHITE.stroke_width(2))
        .light_line_style(WHITE.mix(0.5))
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 15));
    // Counts (histograms, bar heights) read as whole numbers: 1200, not 1200.0.
    let whole_y = |v: &f64| format!("{v:.0}");
    if tall {
        mesh.y_label_formatter(&whole_y);
    }
    if integer_x {
        mesh.x_label_formatter(&whole);
        if span <= 20 {
            mesh.x_labels(span.max(2));
        }
    }
    mesh.draw().map_err(failed)?;
    Ok(plot)
}

fn legend<'a, DB: DrawingBackend + 'a>(plot: &mut Plot<'a, DB>) -> Result<()> {
    plot.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 15))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(failed)
}

fn failed<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// Smallest and largest x and y over all points (a unit box when there are none).
fn bounds(series: &[Series]) -> (Range<f64>, Range<f64>) {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return (0.0..1.0, 0.0..1.0);
    }
    let (x0, x1) = if x1 - x0 < 1e-9 {
        (x0 - 0.5, x1 + 0.5)
    } else {
        (x0, x1)
    };
    let (y0, y1) = padded(y0, y1);
    (x0..x1, y0..y1)
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<()> {
    root.fill(&WHITE).map_err(failed)?;
    match chart {
        Chart::Lines {
            title,
            x_label,
            y_label,
            series,
            integer_x,
        } => {
            let (mut x, y) = bounds(series);
            if *integer_x {
                // A little room so the first and last markers are not cut by the axes.
                x = x.start - 0.1..x.end + 0.1;
            }
            let mut plot = frame(root, title, (x_label, y_label), (x, y), *integer_x, &[])?;
            for s in series {
                let style = s.color.stroke_width(s.width);
                plot.draw_series(LineSeries::new(s.points.clone(), style))
                    .map_err(failed)?
                    .label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
                if s.markers {
                    let dots = s
                        .points
                        .iter()
                        .map(|&p| Circle::new(p, 5, s.color.filled()));
                    plot.draw_series(dots).map_err(failed)?;
                }
            }
            legend(&mut plot)?;
        }
        Chart::Bars {
            title,
            x_label,
            y_label,
            values,
            reference,
        } => {
            let lo = values.iter().copied().fold(0.0f64, f64::min);
            let hi = values.iter().copied().fold(0.0f64, f64::max).max(0.1);
            let (y0, y1) = padded(lo, hi);
            let n = values.len().max(1) as f64;
            let ranges = (-0.6..n - 0.4, y0..y1);
            let mut plot = frame(root, title, (x_label, y_label), ranges, true, &[])?;
            plot.draw_series(values.iter().enumerate().map(|(i, &v)| {
                let x = i as f64;
                Rectangle::new([(x - 0.38, 0.0), (x + 0.38, v)], BLUE.filled())
            }))
            .map_err(failed)?
            .label("per batch")
            .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], BLUE.filled()));
            if let Some((name, value)) = reference {
                let style = ORANGE.stroke_width(3);
                plot.draw_series(LineSeries::new(
                    vec![(-0.6, *value), (n - 0.4, *value)],
                    style,
                ))
                .map_err(failed)?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
            }
            legend(&mut plot)?;
        }
        Chart::Grouped {
            title,
            x_label,
            y_label,
            groups,
            series,
        } => {
            let hi = series
                .iter()
                .flat_map(|(_, v)| v.iter().copied())
                .fold(0.0f64, f64::max)
                .max(1e-3);
            let n = groups.len().max(1) as f64;
            let ranges = (-0.6..n - 0.4, 0.0..hi * 1.15);
            let mut plot = frame(root, title, (x_label, y_label), ranges, true, groups)?;
            let colors = [BLUE, ORANGE, GREEN];
            let k = series.len().max(1) as f64;
            let width = 0.8 / k;
            for (s, (name, values)) in series.iter().enumerate() {
                let color = colors[s % colors.len()];
                let left = -0.4 + s as f64 * width;
                plot.draw_series(values.iter().enumerate().map(|(g, &v)| {
                    let x = g as f64 + left;
                    Rectangle::new([(x + 0.02, 0.0), (x + width - 0.02, v)], color.filled())
                }))
                .map_err(failed)?
                .label(name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled())
                });
            }
            legend(&mut plot)?;
        }
    }
    root.present().map_err(failed)?;
    Ok(())
}

/// Grouped bar chart: one group per entry of `groups`, one coloured bar per series.
pub fn grouped_bars(
    title: &str,
    x_label: &str,
    y_label: &str,
    groups: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<Figure> {
    render(Chart::Grouped {
        title: title.into(),
        x_label: x_label.into(),
        y_label: y_label.into(),
        groups: groups.to_vec(),
        series: series.to_vec(),
    })
}

/// How many rows of each set hold each class (or label): the balance a user checks before
/// training, and the reason to reach for class weights.
pub fn label_counts(names: &[String], sets: &[(&str, &Labels)]) -> Result<Figure> {
    let series: Vec<(String, Vec<f64>)> = sets
        .iter()
        .map(|(name, labels)| {
            let counts = labels.counts(names.len());
            if counts.is_empty() {
                anyhow::bail!("label_counts: {name} holds values (a regression), not classes");
            }
            Ok((name.to_string(), counts.iter().map(|&c| c as f64).collect()))
        })
        .collect::<Result<_>>()?;
    grouped_bars("Rows per label", "label", "rows", names, &series)
}

fn render(chart: impl Drawing) -> Result<Figure> {
    register_font();
    let (width, height) = chart.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        chart.draw(&root)?;
    }
    let mut rgb = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        chart.draw(&root)?;
    }
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&rgb)?;
    }
    Ok(Figure {
        title: chart.title().to_string(),
        svg,
        png,
        size: (width, height),
    })
}

/// Training (and validation) loss per epoch: the tutorial's loss plot.
pub fn loss_curve(history: &History) -> Result<Figure> {
    let train = history
        .epochs
        .iter()
        .map(|e| (e.epoch as f64, e.train_loss))
        .collect();
    let val = history
        .epochs
        .iter()
        .map(|e| (e.epoch as f64, e.val_loss))
        .collect();
    render(Chart::Lines {
        title: "Training & Validation Loss".into(),
        integer_x: true,
        x_label: "Epoch".into(),
        y_label: "Loss".into(),
        series: vec![
            Series {
                name: "Training".into(),
                points: train,
                color: BLUE,
                width: 3,
                markers: true,
            },
            Series {
                name: "Validation".into(),
                points: val,
                color: GREEN,
                width: 3,
                markers: true,
            },
        ],
    })
}

/// Loss of every batch, with a moving average over `window` batches on top.
pub fn batch_loss_curve(history: &History, window: usize) -> Result<Figure> {
    batch_losses(&history.batch_losses, window, "Training loss per batch")
}

/// The per-batch loss chart under any title (the run's progress uses its status line).
fn batch_losses(losses: &[f64], window: usize, title: &str) -> Result<Figure> {
    let raw: Vec<(f64, f64)> = losses
        .iter()
        .enumerate()
        .map(|(i, &l)| ((i + 1) as f64, l))
        .collect();
    let w = window.max(1);
    let smooth = raw
        .iter()
        .enumerate()
        .map(|(i, &(x, _))| {
            let from = (i + 1).saturating_sub(w);
            let slice = &raw[from..=i];
            (
                x,
                slice.iter().map(|p| p.1).sum::<f64>() / slice.len() as f64,
            )
        })
        .collect();
    render(Chart::Lines {
        title: title.into(),
        integer_x: true,
        x_label: "Optimizer step".into(),
        y_label: "Loss".into(),
        series: vec![
            Series {
                name: "batch".into(),
                points: raw,
                color: RGBColor(160, 177, 212),
                width: 1,
                markers: false,
            },
            Series {
                name: format!("mean of {w} batches"),
                points: smooth,
                color: BLUE,
                width: 3,
                markers: false,
            },
        ],
    })
}

/// Validation accuracy per epoch.
pub fn accuracy_curve(history: &History) -> Result<Figure> {
    let acc = history
        .epochs
        .iter()
        .map(|e| (e.epoch as f64, e.val_accuracy))
        .collect();
    render(Chart::Lines {
        title: "Validation accuracy".into(),
        integer_x: true,
        x_label: "Epoch".into(),
        y_label: "Accuracy".into(),
        series: vec![Series {
            name: "validation".into(),
            points: acc,
            color: BLUE,
            width: 3,
            markers: true,
        }],
    })
}

/// MCC of each test batch as bars, the whole-set MCC as a line.
pub fn mcc_bars(predictions: &Evaluation) -> Result<Figure> {
    render(Chart::Bars {
        title: "MCC score per batch".into(),
        x_label: "Batch #".into(),
        y_label: "MCC (-1 to +1)".into(),
        values: predictions.per_batch_mcc(),
        reference: Some((
            format!("whole set: {:.3}", predictions.mcc()),
            predictions.mcc(),
        )),
    })
}

/// Saves the training figures of a run (loss per epoch, loss per batch, validation accuracy)
/// into `dir` as PNG and SVG.
pub fn save_history_plots(history: &History, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    let mut written = loss_curve(history)?.save(dir, "loss")?;
    written.extend(batch_loss_curve(history, 20)?.save(dir, "batch_loss")?);
    written.extend(accuracy_curve(history)?.save(dir, "accuracy")?);
    Ok(written)
}
