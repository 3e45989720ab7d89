//! The report's charts, each drawn from one record: throughput against
//! client threads (one figure per data set), latency percentiles, memory
//! against keys, reopen time against data size, writes lost per failure, and
//! time to persist. A chart with nothing to draw is left out.

use plotters::style::RGBColor;

use super::fmt;
use super::plot::{bar_figure, line_figure, Axis, Bars, Panel, Series, Units};
use super::view;
use crate::engine::EngineKind;
use crate::record::{self, DataSet, RunRecord, ThroughputRow};

/// A drawn chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name under `charts/`.
    pub file: String,
    /// What it shows, for the link text.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// Each engine keeps its color in every chart.
pub fn color(kind: EngineKind) -> RGBColor {
    match kind {
        EngineKind::LogkvAlways => RGBColor(31, 119, 180),
        EngineKind::LogkvPeriodic => RGBColor(44, 160, 44),
        EngineKind::LogkvNone => RGBColor(23, 190, 207),
        EngineKind::Naive => RGBColor(110, 110, 110),
        EngineKind::RocksdbSync => RGBColor(214, 39, 40),
        EngineKind::RocksdbWal => RGBColor(255, 127, 14),
        EngineKind::FjallSync => RGBColor(148, 103, 189),
        EngineKind::FjallBuffered => RGBColor(227, 119, 194),
        EngineKind::RedbImmediate => RGBColor(140, 86, 75),
        EngineKind::Sled => RGBColor(188, 189, 34),
    }
}

/// The dashed reference line of the fsync bound.
const BOUND_COLOR: RGBColor = RGBColor(20, 20, 20);

/// "1M-100B" for file names.
pub fn slug(data: DataSet) -> String {
    format!("{}-{}", record::count(data.keys), record::bytes(data.value_bytes).replace(' ', ""))
}

/// File name of the throughput chart of one data set.
pub fn throughput_file(data: DataSet) -> String {
    format!("throughput-{}.svg", slug(data))
}

fn threads_tick(v: f64) -> String {
    format!("{}", v.round())
}

fn lost_tick(v: f64) -> String {
    fmt::short(v.round())
}

fn count_tick(v: f64) -> String {
    record::count(v.round() as u64)
}

/// One line per engine through `rows`, as (x, y) by `point`, in x order.
fn engine_series<'a, T: 'a>(
    r: &RunRecord,
    rows: impl IntoIterator<Item = &'a T>,
    engine_of: impl Fn(&T) -> EngineKind,
    point: impl Fn(&T) -> (f64, f64),
) -> Vec<Series> {
    let rows: Vec<&T> = rows.into_iter().collect();
    let mut kinds: Vec<EngineKind> = rows.iter().map(|t| engine_of(t)).collect();
    kinds.sort();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| {
            let mut points: Vec<(f64, f64)> =
                rows.iter().filter(|t| engine_of(t) == kind).map(|t| point(t)).collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series { label: view::legend(r, kind), color: color(kind), dashed: false, points }
        })
        .collect()
}

/// Throughput against client threads on one data set: a panel per workload,
/// a line per engine; the fsync bound for values of this size is drawn
/// dashed in the load-random panel.
pub fn throughput(r: &RunRecord, data: DataSet) -> Result<Option<Chart>, String> {
    let bound = view::bound_rows(r, data.value_bytes);
    let mut panels = Vec::new();
    for (workload, distribution) in view::workloads(r, data) {
        let rows: Vec<&ThroughputRow> = r
            .throughput
            .iter()
            .filter(|t| t.data == data && t.workload == workload && t.distribution == distribution)
            .collect();
        let mut series =
            engine_series(r, rows.iter().copied(), |t| t.engine, |t| (f64::from(t.threads), t.ops_per_sec));
        if workload == "load-random" && !bound.is_empty() {
            series.push(Series {
                label: "fsync bound (writers / median fdatasync)".into(),
                color: BOUND_COLOR,
                dashed: true,
                points: bound.iter().map(|t| (f64::from(t.threads), t.ops_per_sec)).collect(),
            });
        }
        let xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
        let ys: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).collect();
        let title = match view::distribution(&distribution) {
            Some(d) => format!("{workload} ({d} keys)"),
            None => workload.clone(),
        };
        panels.push(Panel {
            title,
            x: Axis::at_values(&xs, "client threads", threads_tick),
            y: Axis::fit(ys, 20.0, Units::Decimal, "operations per second", fmt::rate),
            series,
        });
    }
    if panels.is_empty() {
        return Ok(None);
    }
    let title = format!("Throughput against client threads: {}", data.label());
    let svg = line_figure(&title, &panels, 3)?;
    Ok(Some(Chart { file: throughput_file(data), title, svg }))
}

/// Latency percentiles of each workload on the primary data set, at the
/// thread count the latency table shows, a line per engine.
pub fn latency(r: &RunRecord) -> Result<Option<Chart>, String> {
    let picks = view::latency_picks(r);
    let Some(data) = picks.first().map(|p| p.data) else { return Ok(None) };
    let mut panels = Vec::new();
    for pick in &picks {
        let points: Vec<(EngineKind, (f64, f64))> =
            pick.rows.iter().flat_map(|t| curve(t).into_iter().map(move |p| (t.engine, p))).collect();
        let series = engine_series(r, &points, |(kind, _)| *kind, |(_, p)| *p);
        let finite = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|&p| p < 100.0)
            .fold(99.0, f64::max);
        let ys: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).collect();
        panels.push(Panel {
            title: match view::distribution(&pick.distribution) {
                Some(d) => format!("{} ({d} keys), {} threads", pick.workload, pick.threads),
                None => format!("{}, {} threads", pick.workload, pick.threads),
            },
            x: Axis::nines(finite, true, "percentile of operations"),
            y: Axis::fit(ys, 10.0, Units::Decimal, "latency of one operation", fmt::micros),
            series,
        });
    }
    let title = format!("Latency percentiles: {}", data.label());
    let svg = line_figure(&title, &panels, 3)?;
    Ok(Some(Chart { file: "latency.svg".into(), title, svg }))
}

/// A row's latency as (percentile, µs) points, the maximum at 100: its
/// recorded curve, or its summary figures when it has none.
fn curve(t: &ThroughputRow) -> Vec<(f64, f64)> {
    let l = &t.latency;
    let mut points: Vec<(f64, f64)> = if l.curve.is_empty() {
        vec![(50.0, l.p50), (99.0, l.p99), (99.9, l.p999)]
    } else {
        l.curve.iter().copied().filter(|&(p, _)| (0.0..100.0).contains(&p)).collect()
    };
    if l.max > 0.0 {
        points.push((100.0, l.max));
    }
    points
}

/// Resident memory after loading against keys: a panel per value size.
pub fn memory(r: &RunRecord) -> Result<Option<Chart>, String> {
    let mut sizes: Vec<u64> = r.footprint.iter().map(|f| f.data.value_bytes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let panels: Vec<Panel> = sizes
        .iter()
        .map(|&value_bytes| {
            let rows = r.footprint.iter().filter(|f| f.data.value_bytes == value_bytes);
            let series = engine_series(r, rows, |f| f.engine, |f| (f.data.keys as f64, f.rss_bytes as f64));
            let xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
            let ys: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).collect();
            Panel {
                title: format!("{} values", record::bytes(value_bytes)),
                x: Axis::at_values(&xs, "keys loaded", count_tick),
                y: Axis::fit(ys, 20.0, Units::Binary, "resident memory (RSS)", fmt::size),
                series,
            }
        })
        .collect();
    if panels.is_empty() {
        return Ok(None);
    }
    let title = "Resident memory after loading, against keys".to_string();
    let svg = line_figure(&title, &panels, 2)?;
    Ok(Some(Chart { file: "memory.svg".into(), title, svg }))
}

/// Time to reopen after `kill -9` against the data size: a panel per value size.
pub fn recovery(r: &RunRecord) -> Result<Option<Chart>, String> {
    let mut sizes: Vec<u64> = r.recovery.iter().map(|f| f.data.value_bytes).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let panels: Vec<Panel> = sizes
        .iter()
        .map(|&value_bytes| {
            let rows = r.recovery.iter().filter(|f| f.data.value_bytes == value_bytes);
            let series = engine_series(r, rows, |f| f.engine, |f| (f.data.user_bytes() as f64, f.open_secs));
            let xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
            let ys: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).collect();
            Panel {
                title: format!("{} values", record::bytes(value_bytes)),
                x: Axis::at_values(&xs, "data loaded (keys + values)", fmt::size),
                y: Axis::fit(ys, 20.0, Units::Decimal, "open to first read", fmt::secs),
                series,
            }
        })
        .collect();
    if panels.is_empty() {
        return Ok(None);
    }
    let title = "Time to reopen after kill -9, against data size".to_string();
    let svg = line_figure(&title, &panels, 2)?;
    Ok(Some(Chart { file: "recovery.svg".into(), title, svg }))
}

/// Failure kinds in the order tables show them.
pub fn failures(r: &RunRecord) -> Vec<String> {
    let mut kinds: Vec<String> = r.loss.iter().map(|l| l.failure.clone()).collect();
    kinds.sort_by_key(|f| (["kill-9", "power-loss"].iter().position(|k| k == f).unwrap_or(2), f.clone()));
    kinds.dedup();
    kinds
}

fn failure_color(i: usize) -> RGBColor {
    [RGBColor(230, 126, 34), RGBColor(176, 42, 42), RGBColor(90, 90, 160)][i % 3]
}

/// Acknowledged writes lost: a band per engine, a bar per failure kind.
pub fn loss(r: &RunRecord) -> Result<Option<Chart>, String> {
    let kinds: Vec<EngineKind> =
        view::engines(r).into_iter().filter(|k| r.loss.iter().any(|l| l.engine == *k)).collect();
    if kinds.is_empty() {
        return Ok(None);
    }
    let failures = failures(r);
    let mut values = Vec::new();
    let mut notes = Vec::new();
    for &kind in &kinds {
        let rows: Vec<_> =
            failures.iter().map(|f| r.loss.iter().find(|l| l.engine == kind && &l.failure == f)).collect();
        values.push(rows.iter().map(|l| l.map(|l| l.lost as f64)).collect());
        notes.push(
            rows.iter()
                .map(|l| match l {
                    Some(l) if l.wrong > 0 => format!(
                        "{} of {} acked, {} wrong ({} trials)",
                        fmt::grouped(l.lost),
                        fmt::grouped(l.acked),
                        fmt::grouped(l.wrong),
                        l.trials
                    ),
                    Some(l) => format!(
                        "{} of {} acked ({} trials)",
                        fmt::grouped(l.lost),
                        fmt::grouped(l.acked),
                        l.trials
                    ),
                    None => String::new(),
                })
                .collect(),
        );
    }
    let max = r.loss.iter().map(|l| l.lost).max().unwrap_or(0) as f64;
    let bars = Bars {
        title: "Acknowledged writes lost after failures".into(),
        categories: kinds.iter().map(|&k| view::legend(r, k)).collect(),
        groups: failures.iter().enumerate().map(|(i, f)| (f.clone(), failure_color(i))).collect(),
        values,
        notes,
        x: {
            let desc = "acknowledged writes lost, summed over the trials";
            let min = r.loss.iter().map(|l| l.lost).filter(|&n| n > 0).min().unwrap_or(0) as f64;
            if min > 0.0 && max / min > 30.0 {
                Axis::log(min, max * 4.0, Units::Decimal, desc, lost_tick)
            } else {
                Axis::linear((max * 1.45).max(5.0), Units::Decimal, desc, lost_tick)
            }
        },
    };
    let svg = bar_figure(&bars)?;
    Ok(Some(Chart { file: "loss.svg".into(), title: bars.title, svg }))
}

/// Time to persist: a band per engine that can tell, bars for p50, p99 and max.
pub fn persist(r: &RunRecord) -> Result<Option<Chart>, String> {
    let mut rows: Vec<_> = r.persist.iter().filter(|p| p.samples > 0).collect();
    rows.sort_by_key(|p| p.engine);
    if rows.is_empty() {
        return Ok(None);
    }
    let figures = |p: &record::PersistRow| [p.p50_ms, p.p99_ms, p.max_ms];
    let all: Vec<f64> = rows.iter().flat_map(|p| figures(p)).collect();
    let bars = Bars {
        title: "Time from acknowledgement to stable storage".into(),
        categories: rows.iter().map(|p| view::legend(r, p.engine)).collect(),
        groups: vec![
            ("p50".into(), RGBColor(133, 193, 233)),
            ("p99".into(), RGBColor(41, 128, 185)),
            ("max".into(), RGBColor(21, 57, 86)),
        ],
        values: rows.iter().map(|p| figures(p).map(Some).to_vec()).collect(),
        notes: rows.iter().map(|p| figures(p).map(fmt::millis).to_vec()).collect(),
        x: {
            let max = all.iter().copied().fold(0.0, f64::max);
            let min = all.iter().copied().filter(|&v| v > 0.0).fold(f64::INFINITY, f64::min);
            if max > 0.0 && max / min > 50.0 {
                Axis::log(min, max * 3.0, Units::Decimal, "time to persist", fmt::millis)
            } else {
                Axis::linear(max * 1.3, Units::Decimal, "time to persist", fmt::millis)
            }
        },
    };
    let svg = bar_figure(&bars)?;
    Ok(Some(Chart { file: "persist.svg".into(), title: bars.title, svg }))
}
