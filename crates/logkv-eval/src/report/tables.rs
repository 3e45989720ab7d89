//! The README's sections as Markdown: every table is drawn from the record
//! shown, with its chart below it when there is one.

use std::fmt::Write as _;

use super::charts::{self, Chart};
use super::fmt;
use super::targets::{Outcome, TargetRow};
use super::view;
use super::{RunFile, RunRole};
use crate::engine::EngineKind;
use crate::record::RunRecord;

/// A Markdown table; numeric columns are right-aligned.
struct Table {
    head: Vec<(String, bool)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns as (name, right-aligned).
    fn new(head: &[(&str, bool)]) -> Table {
        Table { head: head.iter().map(|(h, right)| (h.to_string(), *right)).collect(), rows: Vec::new() }
    }

    fn with_columns(head: Vec<(String, bool)>) -> Table {
        Table { head, rows: Vec::new() }
    }

    fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn render(&self) -> String {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut out = String::new();
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        out += &line(self.head.iter().map(|(h, _)| cell(h)).collect());
        out += &line(
            self.head.iter().map(|(_, right)| if *right { "---:".into() } else { "---".into() }).collect(),
        );
        for row in &self.rows {
            let mut cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
            cells.resize(self.head.len(), String::new());
            out += &line(cells);
        }
        out
    }
}

const DASH: &str = "–";

/// The chart's image line, or nothing when it was not drawn.
fn image(charts: &[Chart], file: &str) -> String {
    charts
        .iter()
        .find(|c| c.file == file)
        .map(|c| format!("\n![{}](charts/{})\n", c.title, c.file))
        .unwrap_or_default()
}

/// "not measured in this run" for an empty section.
fn nothing(what: &str) -> String {
    format!("_{what}: not measured in this run._\n")
}

/// The records read and which one is shown.
pub fn runs(runs: &[RunFile], skipped: &[(String, String)]) -> String {
    let mut t = Table::new(&[
        ("file", false),
        ("config", false),
        ("started", false),
        ("wall time", true),
        ("used", false),
    ]);
    for run in runs {
        let used = match &run.role {
            RunRole::Shown => "**shown on this page**".to_string(),
            RunRole::NewestOfConfig => format!("newest `{}` run, not shown", run.config),
            RunRole::Superseded { by } => format!("superseded by `{by}`"),
        };
        t.push(vec![
            format!("`runs/{}`", run.file),
            format!("`{}`", run.config),
            fmt::utc(run.started_unix),
            fmt::wall(run.elapsed_secs),
            used,
        ]);
    }
    let mut out = t.render();
    for (file, why) in skipped {
        let _ = writeln!(out, "\nSkipped `runs/{file}`: {why}");
    }
    out
}

/// The machine, the versions and the parameters of the run.
pub fn machine(r: &RunRecord) -> String {
    let mut out = String::new();
    let mut t = Table::new(&[("machine", false), ("", false)]);
    for (k, v) in &r.machine {
        t.push(vec![k.clone(), v.clone()]);
    }
    if r.machine.is_empty() {
        out += &nothing("machine");
    } else {
        out += &t.render();
    }
    out += "\n";
    let mut t = Table::new(&[("component", false), ("version", false)]);
    for (k, v) in &r.versions {
        t.push(vec![k.clone(), v.clone()]);
    }
    if r.versions.is_empty() {
        out += &nothing("versions");
    } else {
        out += &t.render();
    }
    if !r.params.is_null() {
        let params = serde_json::to_string_pretty(&r.params).unwrap_or_default();
        let _ = write!(
            out,
            "\n<details><summary>Parameters as run</summary>\n\n```json\n{params}\n```\n\n</details>\n"
        );
    }
    out
}

/// Engines with their promise and settings.
pub fn engines(r: &RunRecord) -> String {
    let mut t =
        Table::new(&[("engine", false), ("promise: an acknowledged write is", false), ("settings", false)]);
    for kind in view::engines(r) {
        t.push(vec![
            format!("`{kind}`"),
            view::promise(r, kind).label().to_string(),
            view::settings(r, kind),
        ]);
    }
    t.render()
}

/// Ops/s tables per data set: workload and threads down, engines across.
pub fn throughput(r: &RunRecord, charts: &[Chart]) -> String {
    let sets = view::throughput_datasets(r);
    if sets.is_empty() {
        return nothing("throughput");
    }
    let mut out = String::from(
        "Operations per second by data set, each workload timed on the preloaded data set \
         (the loads insert new keys). `–`: not run.\n",
    );
    let mut bounds: Vec<_> = r.throughput.iter().filter(|t| view::is_bound(t)).collect();
    bounds.sort_by_key(|t| (t.data.value_bytes, t.threads));
    if !bounds.is_empty() {
        let figures: Vec<String> = bounds
            .iter()
            .map(|t| {
                let writers = if t.threads == 1 { "writer" } else { "writers" };
                format!("{} {writers} {}", t.threads, fmt::rate(t.ops_per_sec))
            })
            .collect();
        let median = bounds[0].latency.p50;
        let median = if median > 0.0 {
            format!(", median `fdatasync` {}", fmt::micros(median))
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "\nThe **fsync bound** is not an engine's run: N writers sharing every sync can at best be \
             acknowledged N per `fdatasync` of a small append{median}. It bounds `logkv-always` and is \
             shown beside load-random: {}.\n",
            figures.join(", ")
        );
    }
    for data in sets {
        let rows: Vec<_> = r.throughput.iter().filter(|t| t.data == data && !view::is_bound(t)).collect();
        let mut kinds: Vec<EngineKind> = rows.iter().map(|t| t.engine).collect();
        kinds.sort();
        kinds.dedup();
        let bound = view::bound_rows(r, data.value_bytes);
        let mut head = vec![
            ("workload".to_string(), false),
            ("key choice".to_string(), false),
            ("threads".to_string(), true),
        ];
        head.extend(kinds.iter().map(|k| (format!("`{k}`"), true)));
        if !bound.is_empty() {
            head.push(("fsync bound".into(), true));
        }
        let mut t = Table::with_columns(head);
        let mut keys: Vec<(String, String, u32)> =
            rows.iter().map(|t| (t.workload.clone(), t.distribution.clone(), t.threads)).collect();
        keys.sort_by_key(|(w, d, n)| (view::workload_rank(w), d.clone(), *n));
        keys.dedup();
        for (workload, distribution, threads) in keys {
            let mut cells = vec![workload.clone(), distribution.clone(), threads.to_string()];
            for &kind in &kinds {
                let row = rows.iter().find(|t| {
                    t.engine == kind
                        && t.workload == workload
                        && t.distribution == distribution
                        && t.threads == threads
                });
                cells.push(row.map_or(DASH.into(), |t| fmt::rate(t.ops_per_sec)));
            }
            if !bound.is_empty() {
                let at = bound.iter().find(|t| workload == "load-random" && t.threads == threads);
                cells.push(at.map_or(String::new(), |t| fmt::rate(t.ops_per_sec)));
            }
            t.push(cells);
        }
        let _ = write!(out, "\n### {}\n\n{}", data.label(), t.render());
        out += &image(charts, &charts::throughput_file(data));
    }
    out
}

/// Latency per workload at the thread count the chart shows.
pub fn latency(r: &RunRecord, charts: &[Chart]) -> String {
    let picks = view::latency_picks(r);
    let Some(data) = picks.first().map(|p| p.data) else { return nothing("latency") };
    let mut t = Table::new(&[
        ("workload", false),
        ("key choice", false),
        ("threads", true),
        ("engine", false),
        ("p50", true),
        ("p99", true),
        ("p99.9", true),
        ("max", true),
        ("ops/s", true),
    ]);
    for pick in &picks {
        for row in &pick.rows {
            let l = &row.latency;
            t.push(vec![
                pick.workload.clone(),
                pick.distribution.clone(),
                pick.threads.to_string(),
                format!("`{}`", row.engine),
                fmt::micros(l.p50),
                fmt::micros(l.p99),
                fmt::micros(l.p999),
                fmt::micros(l.max),
                fmt::rate(row.ops_per_sec),
            ]);
        }
    }
    format!(
        "Latency of one operation on {}, at the highest thread count every engine ran for that workload.\n\n{}{}",
        data.label(),
        t.render(),
        image(charts, "latency.svg")
    )
}

/// Memory, disk space and amplification after loading.
pub fn memory(r: &RunRecord, charts: &[Chart]) -> String {
    if r.footprint.is_empty() {
        return nothing("memory and space");
    }
    let mut rows: Vec<_> = r.footprint.iter().collect();
    rows.sort_by_key(|f| (f.data.value_bytes, f.data.keys, f.engine));
    let mut t = Table::new(&[
        ("data set", false),
        ("engine", false),
        ("RSS", true),
        ("peak RSS", true),
        ("RSS per key", true),
        ("disk", true),
        ("space amplification", true),
        ("write amplification", true),
    ]);
    for f in rows {
        let per_key =
            if f.data.keys > 0 { fmt::size(f.rss_bytes as f64 / f.data.keys as f64) } else { DASH.into() };
        let amp = |b: u64, of: u64| if of > 0 { fmt::ratio(b as f64 / of as f64) } else { DASH.into() };
        t.push(vec![
            f.data.label(),
            format!("`{}`", f.engine),
            fmt::size(f.rss_bytes as f64),
            fmt::size(f.peak_rss_bytes as f64),
            per_key,
            fmt::size(f.disk_bytes as f64),
            amp(f.disk_bytes, f.live_bytes),
            amp(f.written_bytes, f.user_bytes_written),
        ]);
    }
    format!(
        "Measured in the process that loaded the data set, after the preload and the timed phases \
         that followed it. RSS per key is RSS / keys of the data set (it includes the process's fixed \
         cost). Space amplification is disk bytes / bytes of the live keys and values at the end; \
         write amplification is bytes the process wrote to storage / bytes of keys and values the \
         clients wrote (keys are {} B).\n\n{}{}",
        crate::workload::KEY_BYTES,
        t.render(),
        image(charts, "memory.svg")
    )
}

/// Reopen times after `kill -9`.
pub fn recovery(r: &RunRecord, charts: &[Chart]) -> String {
    if r.recovery.is_empty() {
        return nothing("recovery");
    }
    let mut rows: Vec<_> = r.recovery.iter().collect();
    rows.sort_by_key(|f| (f.data.value_bytes, f.data.keys, f.engine));
    let mut t = Table::new(&[
        ("data set", false),
        ("engine", false),
        ("user data", true),
        ("disk", true),
        ("open to first read", true),
        ("keys found", true),
    ]);
    for f in rows {
        t.push(vec![
            f.data.label(),
            format!("`{}`", f.engine),
            fmt::size(f.data.user_bytes() as f64),
            fmt::size(f.disk_bytes as f64),
            fmt::secs(f.open_secs),
            format!("{} of {}", fmt::grouped(f.keys_found), fmt::grouped(f.data.keys)),
        ]);
    }
    format!(
        "The data set loaded, the process killed with `kill -9`, and the directory opened again: time \
         from starting the open to the first answered read.\n\n{}{}",
        t.render(),
        image(charts, "recovery.svg")
    )
}

/// Acknowledged writes lost per failure kind, with each engine's promise.
pub fn loss(r: &RunRecord, charts: &[Chart]) -> String {
    if r.loss.is_empty() {
        return nothing("data lost");
    }
    let failures = charts::failures(r);
    let mut rows: Vec<_> = r.loss.iter().collect();
    rows.sort_by_key(|l| (l.engine, failures.iter().position(|f| *f == l.failure)));
    let mut t = Table::new(&[
        ("engine", false),
        ("promise", false),
        ("failure", false),
        ("trials", true),
        ("acknowledged", true),
        ("lost", true),
        ("wrong", true),
        ("most lost in one trial", true),
        ("trials with loss", true),
    ]);
    for l in rows {
        t.push(vec![
            format!("`{}`", l.engine),
            view::promise(r, l.engine).label().to_string(),
            l.failure.clone(),
            l.trials.to_string(),
            fmt::grouped(l.acked),
            fmt::grouped(l.lost),
            fmt::grouped(l.wrong),
            fmt::grouped(l.max_lost),
            l.trials_with_loss.to_string(),
        ]);
    }
    format!(
        "Writes acknowledged before a failure and missing after reopening, summed over the trials. \
         `kill-9` kills the process (the OS keeps what it was given); `power-loss` drops everything \
         not synced to stable storage. \"Wrong\" counts keys whose value after reopening is neither \
         the acknowledged one nor a later unacknowledged one. Compare each engine with its promise: \
         only a synced-before-ack engine promises zero after a power loss.\n\n{}{}",
        t.render(),
        image(charts, "loss.svg")
    )
}

/// Time from acknowledgement to stable storage, and who cannot tell.
pub fn persist(r: &RunRecord, charts: &[Chart]) -> String {
    if r.persist.is_empty() {
        return nothing("time to persist");
    }
    let mut rows: Vec<_> = r.persist.iter().collect();
    rows.sort_by_key(|p| p.engine);
    let mut t = Table::new(&[
        ("engine", false),
        ("promise", false),
        ("samples", true),
        ("p50", true),
        ("p99", true),
        ("max", true),
        ("note", false),
    ]);
    let mut cannot = String::new();
    for p in rows {
        let promise = view::promise(r, p.engine).label();
        if p.samples == 0 {
            let note = if p.note.is_empty() {
                "it does not report when data reaches stable storage"
            } else {
                &p.note
            };
            let _ = writeln!(cannot, "- `{}` ({promise}): {note}", p.engine);
            continue;
        }
        t.push(vec![
            format!("`{}`", p.engine),
            promise.to_string(),
            fmt::grouped(p.samples),
            fmt::millis(p.p50_ms),
            fmt::millis(p.p99_ms),
            fmt::millis(p.max_ms),
            p.note.clone(),
        ]);
    }
    let mut out = String::from(
        "How long a write waits, after its acknowledgement, until the engine reports it on stable \
         storage (zero for engines that sync before acknowledging).\n\n",
    );
    if t.rows.is_empty() {
        out += &nothing("time to persist of any engine that can tell");
    } else {
        out += &t.render();
    }
    if !cannot.is_empty() {
        let _ = write!(
            out,
            "\nEngines that cannot tell when a write is on stable storage (not charted):\n\n{cannot}"
        );
    }
    out += &image(charts, "persist.svg");
    out
}

/// The targets table.
pub fn targets(rows: &[TargetRow]) -> String {
    let mut t = Table::new(&[
        ("", false),
        ("target", false),
        ("goal", false),
        ("measured", false),
        ("result", false),
        ("by how much", false),
    ]);
    for row in rows {
        let result = match row.outcome {
            Outcome::Pass => "**pass**".to_string(),
            Outcome::Miss => "**MISS**".to_string(),
            Outcome::NotMeasured => "not measured".to_string(),
        };
        t.push(vec![
            row.id.clone(),
            row.target.clone(),
            row.goal.clone(),
            row.measured.clone(),
            result,
            row.margin.clone(),
        ]);
    }
    let (pass, miss, open) = rows.iter().fold((0, 0, 0), |(p, m, n), row| match row.outcome {
        Outcome::Pass => (p + 1, m, n),
        Outcome::Miss => (p, m + 1, n),
        Outcome::NotMeasured => (p, m, n + 1),
    });
    format!(
        "Computed from the figures above. {pass} met, {miss} missed, {open} not measured.\n\n{}",
        t.render()
    )
}

/// The hand-written conclusions, without a heading of their own that
/// repeats "Conclusions".
pub fn conclusions(text: Option<&str>) -> String {
    match text {
        Some(text) if !text.trim().is_empty() => {
            let mut lines = text.trim_start().lines().peekable();
            if let Some(first) = lines.peek() {
                if first.starts_with('#')
                    && first.trim_start_matches('#').trim().eq_ignore_ascii_case("conclusions")
                {
                    lines.next();
                }
            }
            let body: Vec<&str> = lines.collect();
            format!("{}\n", body.join("\n").trim())
        }
        _ => "_Conclusions are missing: they are written by hand in `conclusions.md` beside this page._\n"
            .into(),
    }
}
