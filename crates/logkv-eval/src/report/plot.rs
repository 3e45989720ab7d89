//! Drawing: axes with ticks chosen here (linear, logarithmic, or on a
//! "nines" scale for percentiles), figures of line panels and figures of
//! horizontal grouped bars, each rendered with plotters' SVG backend into a
//! string. Text stays SVG `<text>`, so no font files are read.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The family every text is set in; the viewer picks the font.
const FONT: &str = "sans-serif";
/// Width of one panel of a line figure, in pixels.
const PANEL_W: u32 = 440;
/// Height of one panel of a line figure.
const PANEL_H: u32 = 330;
/// Height of a figure's title band.
const TITLE_H: u32 = 48;
/// Height of one legend line.
const LEGEND_LINE_H: u32 = 22;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn err(e: impl std::fmt::Display) -> String {
    format!("drawing a chart: {e}")
}

/// Rough width of `text` at `size` px: plotters' own estimate without font
/// files is about 0.46 em per character.
fn text_width(text: &str, size: f64) -> u32 {
    (text.chars().count() as f64 * size * 0.5).ceil() as u32
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
    /// Percentiles placed by their nines: 90% at 1, 99% at 2, 99.9% at 3;
    /// 100% (the maximum) at `top`.
    Nines {
        top: f64,
    },
}

/// One axis: its scale, its range and ticks (both already mapped onto the
/// drawing scale), its description and how tick values are written.
#[derive(Debug, Clone)]
pub struct Axis {
    scale: Scale,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    desc: String,
    fmt: fn(f64) -> String,
}

/// What round numbers are on an axis: powers of ten, or of 1024 for sizes
/// (so ticks read "256 MiB", not "238 MiB").
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Units {
    /// 1, 2, 5 times powers of ten.
    Decimal,
    /// 1, 2, 5 times powers of ten times powers of 1024.
    Binary,
}

impl Units {
    /// The unit `v` is written in: the largest power of 1000 (or 1024) at
    /// most `v`.
    fn unit(self, v: f64) -> f64 {
        let base = if self == Units::Binary { 1024.0 } else { 1000.0 };
        let mut unit = 1.0;
        while v >= unit * base {
            unit *= base;
        }
        unit
    }

    /// Every round number from 1/1000 to 10^15: 1, 2 and 5 times powers of
    /// ten within each unit.
    fn ladder(self) -> Vec<f64> {
        let base: f64 = if self == Units::Binary { 1024.0 } else { 1000.0 };
        let mut out: Vec<f64> = (-1..=5)
            .flat_map(|k| {
                [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0].map(move |m| m * base.powi(k))
            })
            .collect();
        out.sort_by(f64::total_cmp);
        out.dedup();
        out
    }
}

impl Axis {
    /// Linear from zero to a round number at or above `max`.
    pub fn linear(max: f64, units: Units, desc: &str, fmt: fn(f64) -> String) -> Axis {
        let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
        let unit = units.unit(max);
        let step = nice_step(max / unit / 5.0) * unit;
        let steps = (max / step - 1e-9).ceil().max(1.0) as usize;
        let ticks: Vec<f64> = (0..=steps).map(|i| i as f64 * step).collect();
        let hi = ticks[ticks.len() - 1];
        Axis { scale: Scale::Linear, lo: 0.0, hi, ticks, desc: desc.into(), fmt }
    }

    /// Logarithmic from the round number at or below `min` to the one at or
    /// above `max` (both > 0), with ticks at round numbers between.
    pub fn log(min: f64, max: f64, units: Units, desc: &str, fmt: fn(f64) -> String) -> Axis {
        let min = if min.is_finite() && min > 0.0 { min } else { 1.0 };
        let max = if max.is_finite() && max >= min { max } else { min };
        let span = |ladder: &[f64]| {
            let lo = ladder.iter().copied().rev().find(|&v| v <= min * 1.0001).unwrap_or(min);
            let hi = ladder.iter().copied().find(|&v| v >= max * 0.9999).unwrap_or(max);
            let hi = if hi <= lo { lo * 10.0 } else { hi };
            (lo, hi, ladder.iter().copied().filter(|&v| v >= lo && v <= hi).collect::<Vec<f64>>())
        };
        let (mut lo, mut hi, mut ticks) = span(&units.ladder());
        if ticks.len() > 9 {
            // Only 1, 10 and 100 of each unit.
            let coarse: Vec<f64> = units
                .ladder()
                .into_iter()
                .filter(|&v| [1.0, 10.0, 100.0].iter().any(|r| (v / units.unit(v) - r).abs() < 1e-9))
                .collect();
            (lo, hi, ticks) = span(&coarse);
        }
        if ticks.len() > 9 {
            let last = ticks.len() - 1;
            ticks = ticks
                .iter()
                .copied()
                .enumerate()
                .filter(|&(i, _)| i.is_multiple_of(2) || i == last)
                .map(|(_, v)| v)
                .collect();
        }
        Axis {
            scale: Scale::Log,
            lo: lo.log10(),
            hi: hi.log10(),
            ticks: ticks.into_iter().map(f64::log10).collect(),
            desc: format!("{desc} (log scale)"),
            fmt,
        }
    }

    /// Logarithmic when the positive values span more than `spread` times,
    /// linear from zero otherwise.
    pub fn fit(
        values: impl IntoIterator<Item = f64>,
        spread: f64,
        units: Units,
        desc: &str,
        fmt: fn(f64) -> String,
    ) -> Axis {
        let values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        let max = values.iter().copied().fold(0.0, f64::max);
        let min_positive = values.iter().copied().filter(|&v| v > 0.0).fold(f64::INFINITY, f64::min);
        if max > 0.0 && max / min_positive > spread {
            Axis::log(min_positive, max, units, desc, fmt)
        } else {
            Axis::linear(max * 1.08, units, desc, fmt)
        }
    }

    /// Logarithmic with a tick at each of `values` (thread counts, key
    /// counts, sizes) and a margin either side.
    pub fn at_values(values: &[f64], desc: &str, fmt: fn(f64) -> String) -> Axis {
        let mut ticks: Vec<f64> = values.iter().copied().filter(|v| v.is_finite() && *v > 0.0).collect();
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        if ticks.is_empty() {
            ticks.push(1.0);
        }
        let lo = ticks[0].log10();
        let hi = ticks[ticks.len() - 1].log10();
        let margin = ((hi - lo) * 0.08).max(0.15);
        Axis {
            scale: Scale::Log,
            lo: lo - margin,
            hi: hi + margin,
            ticks: ticks.into_iter().map(f64::log10).collect(),
            desc: desc.into(),
            fmt,
        }
    }

    /// Percentiles from 0 to `max_finite` (below 100) on the nines scale,
    /// and the maximum one step beyond when `with_max`.
    pub fn nines(max_finite: f64, with_max: bool, desc: &str) -> Axis {
        let nines_of = |p: f64| -(1.0 - p / 100.0).log10();
        let mut ticks = vec![50.0];
        let mut p = 90.0;
        let mut gap = 10.0;
        while p < 100.0 {
            ticks.push(p);
            if p >= max_finite - 1e-9 {
                break;
            }
            gap /= 10.0;
            p = 100.0 - gap;
        }
        let top = nines_of(*ticks.last().unwrap_or(&90.0)) + 1.0;
        let mut axis = Axis {
            scale: Scale::Nines { top },
            lo: 0.0,
            hi: 0.0,
            ticks: Vec::new(),
            desc: desc.into(),
            fmt: pct_tick,
        };
        if with_max {
            ticks.push(100.0);
        }
        axis.ticks = ticks.iter().map(|&p| axis.pos(p)).collect();
        axis.hi = axis.ticks.last().copied().unwrap_or(1.0) + 0.25;
        axis
    }

    /// Where a value lies on the drawing scale.
    pub fn pos(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => v,
            Scale::Log => v.log10().max(self.lo),
            Scale::Nines { top } if v >= 100.0 => top,
            Scale::Nines { .. } => -(1.0 - v.max(0.0) / 100.0).log10(),
        }
    }

    /// The value at a place on the drawing scale.
    fn value(&self, pos: f64) -> f64 {
        match self.scale {
            Scale::Linear => pos,
            Scale::Log => 10f64.powf(pos),
            Scale::Nines { top } if pos >= top - 1e-9 => 100.0,
            Scale::Nines { .. } => 100.0 * (1.0 - 10f64.powf(-pos)),
        }
    }

    /// The tick label at a place on the drawing scale.
    fn label(&self, pos: f64) -> String {
        tidy((self.fmt)(self.value(pos)))
    }

    /// The lowest place on the drawing scale (where bars start).
    fn base(&self) -> f64 {
        self.lo
    }

    fn range(&self) -> Ticked {
        Ticked { lo: self.lo, hi: self.hi, ticks: self.ticks.clone() }
    }
}

/// A linear coordinate over the drawing scale whose grid lines and labels
/// sit exactly at the ticks given (plotters would choose its own).
#[derive(Debug, Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let share = if span > 0.0 { (v - self.lo) / span } else { 0.5 };
        (f64::from(limit.0) + share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// A tick label without trailing zeros: "2.00 k" reads "2 k", "1.50 s" "1.5 s".
fn tidy(label: String) -> String {
    let end = label.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(label.len());
    let (number, rest) = label.split_at(end);
    if !number.contains('.') {
        return label;
    }
    format!("{}{rest}", number.trim_end_matches('0').trim_end_matches('.'))
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|s| *s >= raw * 0.9999).unwrap_or(raw)
}

/// A percentile tick: "50%", "99.9%", or "max" for the maximum.
fn pct_tick(p: f64) -> String {
    if p >= 100.0 {
        "max".into()
    } else {
        super::fmt::percent((p * 1000.0).round() / 1000.0)
    }
}

/// How a legend entry is marked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// A line with a dot; dashed for references such as a bound.
    Line { dashed: bool },
    /// A filled box, for bars.
    Box,
}

/// One legend entry.
#[derive(Debug, Clone)]
pub struct LegendItem {
    /// What it names.
    pub label: String,
    /// Its color.
    pub color: RGBColor,
    /// How it is drawn.
    pub mark: Mark,
}

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Color.
    pub color: RGBColor,
    /// Dashed (a reference, not a measurement).
    pub dashed: bool,
    /// Points as (x, y) values, in x order.
    pub points: Vec<(f64, f64)>,
}

/// One panel of a line figure.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Caption above the panel.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Its lines.
    pub series: Vec<Series>,
}

/// A figure of line panels, `columns` wide, with one legend for all of them
/// below.
pub fn line_figure(title: &str, panels: &[Panel], columns: usize) -> Result<String, String> {
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let width = (columns as u32 * PANEL_W).max(720);
    let mut legend: Vec<LegendItem> = Vec::new();
    for s in panels.iter().flat_map(|p| &p.series) {
        if !legend.iter().any(|l| l.label == s.label) {
            legend.push(LegendItem {
                label: s.label.clone(),
                color: s.color,
                mark: Mark::Line { dashed: s.dashed },
            });
        }
    }
    let legend_h = legend_height(&legend, width);
    let height = TITLE_H + rows as u32 * PANEL_H + legend_h;
    render((width, height), |root| {
        let body = draw_title(root, title)?;
        let (body, legend_area) = body.split_vertically(rows as u32 * PANEL_H);
        let cells = body.split_evenly((rows, columns));
        for (panel, cell) in panels.iter().zip(&cells) {
            draw_panel(cell, panel)?;
        }
        draw_legend(&legend_area, &legend)
    })
}

/// Horizontal grouped bars: one band per category (named on the vertical
/// axis), one bar per group in it, each with a note at its end.
#[derive(Debug, Clone)]
pub struct Bars {
    /// Figure title.
    pub title: String,
    /// Band names, top to bottom.
    pub categories: Vec<String>,
    /// Bar names and colors within a band (the legend).
    pub groups: Vec<(String, RGBColor)>,
    /// `values[category][group]`; `None` draws no bar.
    pub values: Vec<Vec<Option<f64>>>,
    /// Text at the end of each bar, same shape as `values`.
    pub notes: Vec<Vec<String>>,
    /// The value axis.
    pub x: Axis,
}

/// Draws `bars` as one figure.
pub fn bar_figure(bars: &Bars) -> Result<String, String> {
    let n = bars.categories.len().max(1);
    let k = bars.groups.len().max(1);
    let label_w = bars.categories.iter().map(|c| text_width(c, 12.0)).max().unwrap_or(60) + 24;
    let width = 980u32.max(label_w + 600);
    let legend: Vec<LegendItem> = bars
        .groups
        .iter()
        .map(|(label, color)| LegendItem { label: label.clone(), color: *color, mark: Mark::Box })
        .collect();
    let legend_h = legend_height(&legend, width);
    let plot_h = (n * k) as u32 * 16 + n as u32 * 14 + 90;
    let height = TITLE_H + plot_h + legend_h;
    render((width, height), |root| {
        let body = draw_title(root, &bars.title)?;
        let (body, legend_area) = body.split_vertically(plot_h);
        let centers: Vec<f64> = (0..n).map(|i| n as f64 - i as f64 - 0.5).collect();
        let y_axis = Ticked { lo: 0.0, hi: n as f64, ticks: centers };
        let mut chart = ChartBuilder::on(&body)
            .margin(14)
            .margin_right(40)
            .x_label_area_size(46)
            .y_label_area_size(label_w)
            .build_cartesian_2d(bars.x.range(), y_axis)
            .map_err(err)?;
        let fx = |v: &f64| bars.x.label(*v);
        let fy = |v: &f64| {
            let i = (n as f64 - v - 0.5).round();
            if i >= 0.0 {
                bars.categories.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_desc(bars.x.desc.as_str())
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .disable_y_mesh()
            .bold_line_style(RGBColor(228, 228, 228))
            .light_line_style(TRANSPARENT)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(err)?;
        let band = 0.8;
        let bar_h = band / k as f64;
        let base = bars.x.base();
        for (i, (values, notes)) in bars.values.iter().zip(&bars.notes).enumerate() {
            let center = n as f64 - i as f64 - 0.5;
            for (j, value) in values.iter().enumerate() {
                let Some(value) = value else { continue };
                let color = bars.groups.get(j).map_or(BLACK, |g| g.1);
                let top = center + band / 2.0 - j as f64 * bar_h;
                let bottom = top - bar_h * 0.85;
                let end = bars.x.pos(*value).max(base);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(base, bottom), (end, top)],
                        color.filled(),
                    )))
                    .map_err(err)?;
                let note = notes.get(j).cloned().unwrap_or_default();
                let style = TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
                chart
                    .draw_series(std::iter::once(
                        EmptyElement::at((end, (top + bottom) / 2.0)) + Text::new(note, (4, 0), style),
                    ))
                    .map_err(err)?;
            }
        }
        draw_legend(&legend_area, &legend)
    })
}

/// Renders into an SVG string.
fn render(size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Result<(), String>) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Writes the title across the top and returns the area below it.
fn draw_title<'a>(root: &Area<'a>, title: &str) -> Result<Area<'a>, String> {
    let (top, rest) = root.split_vertically(TITLE_H);
    let (w, h) = top.dim_in_pixel();
    let style = TextStyle::from((FONT, 20).into_font().style(FontStyle::Bold))
        .pos(Pos::new(HPos::Center, VPos::Center));
    top.draw(&Text::new(title.to_string(), (w as i32 / 2, h as i32 / 2), style)).map_err(err)?;
    Ok(rest)
}

fn draw_panel(cell: &Area<'_>, panel: &Panel) -> Result<(), String> {
    let y_label_w =
        panel.y.ticks.iter().map(|&t| text_width(&panel.y.label(t), 12.0)).max().unwrap_or(40) + 34;
    let mut chart = ChartBuilder::on(cell)
        .caption(panel.title.as_str(), (FONT, 15))
        .margin(10)
        .margin_right(18)
        .x_label_area_size(42)
        .y_label_area_size(y_label_w)
        .build_cartesian_2d(panel.x.range(), panel.y.range())
        .map_err(err)?;
    let fx = |v: &f64| panel.x.label(*v);
    let fy = |v: &f64| panel.y.label(*v);
    chart
        .configure_mesh()
        .x_desc(panel.x.desc.as_str())
        .y_desc(panel.y.desc.as_str())
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .bold_line_style(RGBColor(228, 228, 228))
        .light_line_style(TRANSPARENT)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()
        .map_err(err)?;
    for s in &panel.series {
        let points: Vec<(f64, f64)> =
            s.points.iter().map(|&(x, y)| (panel.x.pos(x), panel.y.pos(y))).collect();
        let style = ShapeStyle::from(&s.color).stroke_width(2);
        if s.dashed {
            chart.draw_series(DashedLineSeries::new(points.clone(), 7, 5, style)).map_err(err)?;
        } else {
            chart.draw_series(LineSeries::new(points.clone(), style)).map_err(err)?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, s.color.filled()))).map_err(err)?;
        }
    }
    Ok(())
}

/// Legend entries laid out left to right, wrapping: (x, line) per entry.
fn legend_layout(items: &[LegendItem], width: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::with_capacity(items.len());
    let (mut x, mut line) = (20u32, 0u32);
    for item in items {
        let w = 34 + text_width(&item.label, 13.0) + 22;
        if x > 20 && x + w > width.saturating_sub(20) {
            x = 20;
            line += 1;
        }
        out.push((x, line));
        x += w;
    }
    out
}

fn legend_height(items: &[LegendItem], width: u32) -> u32 {
    let lines = legend_layout(items, width).last().map_or(0, |&(_, line)| line + 1);
    lines * LEGEND_LINE_H + 16
}

fn draw_legend(area: &Area<'_>, items: &[LegendItem]) -> Result<(), String> {
    let (width, _) = area.dim_in_pixel();
    let text = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (item, (x, line)) in items.iter().zip(legend_layout(items, width)) {
        let (x, y) = (x as i32, (line * LEGEND_LINE_H + LEGEND_LINE_H / 2 + 4) as i32);
        let stroke = ShapeStyle::from(&item.color).stroke_width(2);
        match item.mark {
            Mark::Line { dashed: false } => {
                area.draw(&PathElement::new(vec![(x, y), (x + 26, y)], stroke)).map_err(err)?;
                area.draw(&Circle::new((x + 13, y), 3, item.color.filled())).map_err(err)?;
            }
            Mark::Line { dashed: true } => {
                for dash in [0, 10, 20] {
                    area.draw(&PathElement::new(vec![(x + dash, y), (x + dash + 6, y)], stroke))
                        .map_err(err)?;
                }
            }
            Mark::Box => {
                area.draw(&Rectangle::new([(x + 5, y - 6), (x + 21, y + 6)], item.color.filled()))
                    .map_err(err)?;
            }
        }
        area.draw(&Text::new(item.label.clone(), (x + 34, y), text.clone())).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_axis_ends_on_a_round_number() {
        let a = Axis::linear(873.0, Units::Decimal, "", |v| v.to_string());
        assert_eq!(a.lo, 0.0);
        assert_eq!(a.hi, 1000.0);
        assert_eq!(a.ticks, vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
    }

    #[test]
    fn log_axis_covers_whole_decades() {
        let a = Axis::log(3_000.0, 2_500_000.0, Units::Decimal, "", crate::report::fmt::short);
        assert_eq!((a.lo, a.hi), (3.0, 7.0), "2k to 5M in 1-2-5 steps is too many ticks: whole decades");
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(labels, ["1 k", "10 k", "100 k", "1 M", "10 M"]);
        let a = Axis::log(300.0, 4_000.0, Units::Decimal, "", crate::report::fmt::short);
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(labels, ["200", "500", "1 k", "2 k", "5 k"]);
        assert!(a.pos(0.0) >= a.lo, "zero sits on the axis, not below it");
    }

    #[test]
    fn nines_axis_places_percentiles_by_their_nines() {
        let a = Axis::nines(99.99, true, "");
        assert!((a.pos(99.0) - 2.0).abs() < 1e-9);
        assert!((a.pos(99.9) - 3.0).abs() < 1e-9);
        assert!((a.pos(100.0) - 5.0).abs() < 1e-9, "the maximum is one step past 99.99%");
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(labels, ["50%", "90%", "99%", "99.9%", "99.99%", "max"]);
    }

    #[test]
    fn fit_goes_logarithmic_only_for_wide_ranges() {
        assert_eq!(Axis::fit([10.0, 50.0], 20.0, Units::Decimal, "", |v| v.to_string()).scale, Scale::Linear);
        assert_eq!(Axis::fit([10.0, 5000.0], 20.0, Units::Decimal, "", |v| v.to_string()).scale, Scale::Log);
    }

    #[test]
    fn size_axes_step_in_binary_units() {
        let a = Axis::linear(50.0 * 1048576.0, Units::Binary, "", crate::report::fmt::size);
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(labels, ["0 B", "10 MiB", "20 MiB", "30 MiB", "40 MiB", "50 MiB"]);
        let a = Axis::log(3.0 * 1048576.0, 900.0 * 1048576.0, Units::Binary, "", crate::report::fmt::size);
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(
            labels,
            ["2 MiB", "5 MiB", "10 MiB", "20 MiB", "50 MiB", "100 MiB", "200 MiB", "500 MiB", "1 GiB"]
        );
    }

    #[test]
    fn tick_labels_lose_trailing_zeros() {
        assert_eq!(tidy("2.00 k/s".into()), "2 k/s");
        assert_eq!(tidy("1.50 s".into()), "1.5 s");
        assert_eq!(tidy("100 µs".into()), "100 µs");
        assert_eq!(tidy("99.9%".into()), "99.9%");
    }
}
