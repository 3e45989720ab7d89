//! Output: aligned tables per section, number formatting, and the verdict
//! of each figure against its target, collected for a final summary.

use std::time::Duration;

/// A target a figure is held to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The figure must be at least this.
    AtLeast(f64),
    /// The figure must be at most this.
    AtMost(f64),
}

impl Target {
    /// "met (+12%)" or "MISSED by 30%".
    pub fn verdict(self, value: f64) -> String {
        match self {
            Target::AtLeast(t) if value >= t => format!("met (+{:.0}%)", (value / t - 1.0) * 100.0),
            Target::AtLeast(t) => format!("MISSED by {:.0}%", (1.0 - value / t) * 100.0),
            Target::AtMost(t) if value <= t => format!("met ({:.0}% under)", (1.0 - value / t) * 100.0),
            Target::AtMost(t) => format!("MISSED by {:.0}%", (value / t - 1.0) * 100.0),
        }
    }
}

/// One line of a section table.
#[derive(Debug, Clone, Default)]
pub struct Row {
    figure: String,
    value: String,
    baseline: String,
    ratio: String,
    target: String,
    verdict: String,
}

impl Row {
    /// A figure and its value; the other columns start empty.
    pub fn new(figure: impl Into<String>, value: impl Into<String>) -> Self {
        Self { figure: figure.into(), value: value.into(), ..Self::default() }
    }
    /// Sets the baseline column.
    pub fn baseline(mut self, s: impl Into<String>) -> Self {
        self.baseline = s.into();
        self
    }
    /// Sets the ratio column.
    pub fn ratio(mut self, s: impl Into<String>) -> Self {
        self.ratio = s.into();
        self
    }
    /// Sets the target column and the verdict of `value` against `target`.
    pub fn target(mut self, label: impl Into<String>, target: Target, value: f64) -> Self {
        self.target = label.into();
        self.verdict = target.verdict(value);
        self
    }
    /// Sets the target column to a note without a verdict.
    pub fn note(mut self, s: impl Into<String>) -> Self {
        self.target = s.into();
        self
    }
}

/// The rows of one section, printed as an aligned table.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    /// Adds a row.
    pub fn row(&mut self, row: Row) {
        self.rows.push(row);
    }
    /// Adds a line printed under the table.
    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// Prints the table to stdout, with `title` above it, and records
    /// every row that has a verdict into `summary`.
    pub fn print(self, title: &str, summary: &mut Vec<(String, Row)>) {
        let header = Row {
            figure: "figure".into(),
            value: "logkv".into(),
            baseline: "baseline".into(),
            ratio: "ratio".into(),
            target: "target".into(),
            verdict: "verdict".into(),
        };
        println!("\n## {title}\n");
        print_rows(&header, &self.rows);
        for n in &self.notes {
            println!("  - {n}");
        }
        for r in self.rows {
            if !r.verdict.is_empty() {
                summary.push((title.to_string(), r));
            }
        }
    }
}

/// Prints the final summary: every figure that has a target.
pub fn print_summary(summary: &[(String, Row)]) {
    if summary.is_empty() {
        return;
    }
    println!("\n## Targets\n");
    let header = Row {
        figure: "section / figure".into(),
        value: "logkv".into(),
        target: "target".into(),
        verdict: "verdict".into(),
        ..Row::default()
    };
    let rows: Vec<Row> = summary
        .iter()
        .map(|(title, r)| {
            let number = title.split('.').next().unwrap_or(title);
            Row {
                figure: format!("{number}. {}", r.figure.trim()),
                baseline: String::new(),
                ratio: String::new(),
                ..r.clone()
            }
        })
        .collect();
    print_rows(&header, &rows);
}

fn print_rows(header: &Row, rows: &[Row]) {
    let cols = |r: &Row| -> [String; 6] {
        [
            r.figure.clone(),
            r.value.clone(),
            r.baseline.clone(),
            r.ratio.clone(),
            r.target.clone(),
            r.verdict.clone(),
        ]
    };
    let all: Vec<[String; 6]> = std::iter::once(header).chain(rows).map(cols).collect();
    let mut width = [0usize; 6];
    for r in &all {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Drop columns that are empty in every row.
    let used: Vec<usize> = (0..6).filter(|&i| all[1..].iter().any(|r| !r[i].is_empty())).collect();
    let line = |r: &[String; 6]| {
        let cells: Vec<String> = used
            .iter()
            .map(|&i| {
                let pad = width[i] - r[i].chars().count();
                // Numbers (every column but the first) are right-aligned.
                if i == 0 || i >= 4 {
                    format!("{}{}", r[i], " ".repeat(pad))
                } else {
                    format!("{}{}", " ".repeat(pad), r[i])
                }
            })
            .collect();
        println!("  {}", cells.join("  ").trim_end());
    };
    line(&all[0]);
    let rule: [String; 6] = std::array::from_fn(|i| "-".repeat(width[i]));
    line(&rule);
    for r in &all[1..] {
        line(r);
    }
}

/// `1234567.8` as "1,234,568".
pub fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Operations per second, e.g. "1,234,567/s".
pub fn per_sec(count: f64, took: Duration) -> f64 {
    count / took.as_secs_f64()
}

/// A rate as "1,234,567/s".
pub fn rate(x: f64) -> String {
    format!("{}/s", thousands(x))
}

/// Decimal megabytes per second, e.g. "1,234 MB/s".
pub fn mb_per_sec(bytes: f64, took: Duration) -> f64 {
    bytes / 1e6 / took.as_secs_f64()
}

/// A duration with a unit suited to its size.
pub fn dur(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A ratio as a percentage, e.g. "83%".
pub fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// A ratio as a factor, e.g. "0.42x".
pub fn times(x: f64) -> String {
    format!("{x:.2}x")
}

/// Progress on stderr.
pub fn progress(msg: impl AsRef<str>) {
    eprintln!("[logkv-bench] {}", msg.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.4), "1,234,567");
    }

    #[test]
    fn runs_report_the_median_and_the_range() {
        let mut r = Runs::default();
        for ms in [30, 10, 20] {
            r.push(Duration::from_millis(ms));
        }
        assert_eq!(r.median(), Duration::from_millis(20));
        assert_eq!(r.rate_range(60.0), "2,000 - 6,000/s");
    }

    #[test]
    fn verdicts_say_by_how_much() {
        assert_eq!(Target::AtLeast(100.0).verdict(120.0), "met (+20%)");
        assert_eq!(Target::AtLeast(100.0).verdict(70.0), "MISSED by 30%");
        assert_eq!(Target::AtMost(48.0).verdict(24.0), "met (50% under)");
        assert_eq!(Target::AtMost(50.0).verdict(60.0), "MISSED by 20%");
    }
}

/// The row of a read rate with value checksums on (`on`) against the same
/// reads with them off (`off`), `count` reads per run, held to the 0.9x
/// target.
pub fn checksum_cost_row(figure: &str, count: f64, on: &Runs, off: &Runs) -> Row {
    let (r_on, r_off) = (per_sec(count, on.median()), per_sec(count, off.median()));
    Row::new(figure, rate(r_on)).baseline(format!("{} (off)", rate(r_off))).ratio(times(r_on / r_off)).target(
        ">= 0.9x of off",
        Target::AtLeast(0.9),
        r_on / r_off,
    )
}

/// Durations of repeated runs of the same measurement.
#[derive(Debug, Clone, Default)]
pub struct Runs(Vec<Duration>);

impl Runs {
    /// Adds one run.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }
    /// The median run (the upper one of an even count).
    pub fn median(&self) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
    /// The rates of the slowest and the fastest run for `count` items, as
    /// "min - max", or "" for a single run.
    pub fn rate_range(&self, count: f64) -> String {
        if self.0.len() < 2 {
            return String::new();
        }
        let (fast, slow) = (self.0.iter().min().expect("not empty"), self.0.iter().max().expect("not empty"));
        format!("{} - {}", thousands(count / slow.as_secs_f64()), rate(count / fast.as_secs_f64()))
    }
    /// Number of runs.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}
