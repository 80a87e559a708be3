//! A labelled grid of coloured cells with a colour bar: the drawing shared by the confusion
//! matrix and the attention map.
//!
//! Rows and columns are categories (classes, tokens), so their labels are drawn one per cell
//! at the cell's centre rather than left to plotters' numeric ticks, which may skip some.

use std::ops::Range;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{failed, Drawing, FONT};

/// matplotlib's "Blues" (light to dark), for counts.
pub(super) const BLUES: &[RGBColor] = &[
    RGBColor(247, 251, 255),
    RGBColor(222, 235, 247),
    RGBColor(198, 219, 239),
    RGBColor(158, 202, 225),
    RGBColor(107, 174, 214),
    RGBColor(66, 146, 198),
    RGBColor(33, 113, 181),
    RGBColor(8, 81, 156),
    RGBColor(8, 48, 107),
];

/// matplotlib's "viridis" (dark to light), for probabilities.
pub(super) const VIRIDIS: &[RGBColor] = &[
    RGBColor(68, 1, 84),
    RGBColor(72, 40, 120),
    RGBColor(62, 73, 137),
    RGBColor(49, 104, 142),
    RGBColor(38, 130, 142),
    RGBColor(31, 158, 137),
    RGBColor(53, 183, 121),
    RGBColor(110, 206, 88),
    RGBColor(181, 222, 43),
    RGBColor(253, 231, 37),
];

pub(super) struct Heatmap {
    pub title: String,
    /// Axis descriptions: below the columns and left of the rows.
    pub x_label: String,
    pub y_label: String,
    pub columns: Vec<String>,
    /// Top to bottom.
    pub rows: Vec<String>,
    /// `values[row][column]`.
    pub values: Vec<Vec<f64>>,
    /// Values mapped to the palette's ends (clamped outside).
    pub scale: Range<f64>,
    pub palette: &'static [RGBColor],
    /// Lines written in each cell (`cells[row][column]`), first one larger; empty for none.
    pub cells: Vec<Vec<Vec<String>>>,
    pub bar_label: String,
    /// Formats the colour bar's tick values.
    pub bar_format: fn(f64) -> String,
    pub size: (u32, u32),
}

impl Heatmap {
    /// Where `value` falls on the scale, 0 to 1.
    fn position(&self, value: f64) -> f64 {
        let span = self.scale.end - self.scale.start;
        if span <= 0.0 || !value.is_finite() {
            return 0.0;
        }
        ((value - self.scale.start) / span).clamp(0.0, 1.0)
    }

    fn color(&self, value: f64) -> RGBColor {
        color_at(self.palette, self.position(value))
    }
}

/// Linear interpolation between a palette's anchors, `t` in [0, 1].
fn color_at(palette: &[RGBColor], t: f64) -> RGBColor {
    let last = palette.len() - 1;
    let x = t * last as f64;
    let i = (x.floor() as usize).min(last.saturating_sub(1));
    let f = x - i as f64;
    let (a, b) = (palette[i], palette[(i + 1).min(last)]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Black text on light cells, white on dark ones (by perceived luminance).
fn ink(background: RGBColor) -> RGBColor {
    let RGBColor(r, g, b) = background;
    let luminance = 0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64;
    if luminance > 140.0 {
        BLACK
    } else {
        WHITE
    }
}

const LABEL_SIZE: u32 = 15;
const DESC_SIZE: u32 = 18;
const GAP: i32 = 8;
const BAR_AREA: u32 = 140;

impl Drawing for Heatmap {
    fn title(&self) -> &str {
        &self.title
    }

    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(failed)?;
        let body = root.titled(&self.title, (FONT, 26)).map_err(failed)?;
        let (width, _) = body.dim_in_pixel();
        let (main, bar) = body.split_horizontally(width.saturating_sub(BAR_AREA));
        let label_style = TextStyle::from((FONT, LABEL_SIZE)).color(&BLACK);
        let widest = |labels: &[String]| -> Result<u32> {
            let mut most = 0;
            for label in labels {
                most = most.max(
                    root.estimate_text_size(label, &label_style)
                        .map_err(failed)?
                        .0,
                );
            }
            Ok(most)
        };
        let (row_width, column_width) = (widest(&self.rows)?, widest(&self.columns)?);
        let (n_rows, n_columns) = (self.rows.len().max(1), self.columns.len().max(1));
        // Column labels turn upright when they would not fit side by side.
        let y_area = row_width + GAP as u32 + 2 * DESC_SIZE;
        let per_column = (main.dim_in_pixel().0.saturating_sub(y_area + 36)) / n_columns as u32;
        let upright = column_width + 6 > per_column;
        let column_height = if upright {
            column_width
        } else {
            LABEL_SIZE + 4
        };
        let x_area = column_height + GAP as u32 + 2 * DESC_SIZE;

        let mut chart = ChartBuilder::on(&main)
            .margin(18)
            .x_label_area_size(x_area)
            .y_label_area_size(y_area)
            .build_cartesian_2d(0.0..n_columns as f64, 0.0..n_rows as f64)
            .map_err(failed)?;
        let top = |row: usize| (n_rows - row) as f64;
        let grid = self
            .values
            .iter()
            .enumerate()
            .flat_map(|(r, row)| row.iter().enumerate().map(move |(c, &v)| (r, c, v)));
        chart
            .draw_series(grid.clone().map(|(r, c, v)| {
                let corners = [(c as f64, top(r) - 1.0), (c as f64 + 1.0, top(r))];
                Rectangle::new(corners, self.color(v).filled())
            }))
            .map_err(failed)?;

        // Text in the cells, centred, the first line larger.
        for (r, c, v) in grid {
            let lines = match self.cells.get(r).and_then(|row| row.get(c)) {
                Some(lines) if !lines.is_empty() => lines,
                _ => continue,
            };
            let (x, y) = chart.backend_coord(&(c as f64 + 0.5, top(r) - 0.5));
            let sizes: Vec<u32> = (0..lines.len())
                .map(|i| if i == 0 { 24 } else { 15 })
                .collect();
            let total: i32 = sizes.iter().map(|&s| s as i32 + 4).sum();
            let mut y = y - total / 2;
            for (line, size) in lines.iter().zip(sizes) {
                let color = ink(self.color(v));
                let style = TextStyle::from((FONT, size))
                    .color(&color)
                    .pos(Pos::new(HPos::Center, VPos::Top));
                root.draw_text(line, &style, (x, y)).map_err(failed)?;
                y += size as i32 + 4;
            }
        }

        // Row labels right-aligned left of the grid, column labels under it.
        let (left, bottom) = chart.backend_coord(&(0.0, 0.0));
        let (right, upper) = chart.backend_coord(&(n_columns as f64, n_rows as f64));
        for (r, label) in self.rows.iter().enumerate() {
            let (_, y) = chart.backend_coord(&(0.0, top(r) - 0.5));
            let style = label_style.pos(Pos::new(HPos::Right, VPos::Center));
            root.draw_text(label, &style, (left - GAP, y))
                .map_err(failed)?;
        }
        for (c, label) in self.columns.iter().enumerate() {
            let (x, _) = chart.backend_coord(&(c as f64 + 0.5, 0.0));
            let style = if upright {
                label_style
                    .transform(FontTransform::Rotate270)
                    .pos(Pos::new(HPos::Right, VPos::Center))
            } else {
                label_style.pos(Pos::new(HPos::Center, VPos::Top))
            };
            root.draw_text(label, &style, (x, bottom + GAP))
                .map_err(failed)?;
        }
        let desc = TextStyle::from((FONT, DESC_SIZE)).color(&BLACK);
        let below = bottom + GAP + column_height as i32 + GAP;
        let style = desc.pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(&self.x_label, &style, ((left + right) / 2, below))
            .map_err(failed)?;
        let style = desc
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        let beside = left - GAP - row_width as i32 - GAP;
        root.draw_text(&self.y_label, &style, (beside, (upper + bottom) / 2))
            .map_err(failed)?;

        self.colour_bar(&bar, x_area)?;
        root.present().map_err(failed)?;
        Ok(())
    }
}

impl Heatmap {
    /// A vertical gradient over the scale with ticks, aligned with the grid's height.
    fn colour_bar<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        below: u32,
    ) -> Result<()> {
        let (lo, hi) = (
            self.scale.start,
            self.scale.end.max(self.scale.start + 1e-9),
        );
        let mut bar = ChartBuilder::on(area)
            .margin_top(18)
            .margin_bottom(18 + below)
            .margin_left(6)
            .margin_right(12)
            .right_y_label_area_size(76)
            .build_cartesian_2d(0.0..1.0, lo..hi)
            .map_err(failed)?;
        let steps = 120;
        bar.draw_series((0..steps).map(|i| {
            let (a, b) = (i as f64 / steps as f64, (i + 1) as f64 / steps as f64);
            let color = color_at(self.palette, (a + b) / 2.0);
            Rectangle::new(
                [(0.0, lo + a * (hi - lo)), (1.0, lo + b * (hi - lo))],
                color.filled(),
            )
        }))
        .map_err(failed)?;
        let format = self.bar_format;
        bar.configure_mesh()
            .set_tick_mark_size(LabelAreaPosition::Right, 5)
            .disable_mesh()
            .disable_x_axis()
            .y_labels(6)
            .y_label_formatter(&|v| format(*v))
            .y_desc(self.bar_label.as_str())
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 13))
            .draw()
            .map_err(failed)?;
        Ok(())
    }
}
