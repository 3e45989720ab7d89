//! Numbers as the report prints them: three significant digits and a unit
//! chosen so the number stays between 1 and 1000.

/// `v` with three significant digits ("1.23", "45.6", "789"); larger
/// numbers keep all their integer digits.
pub fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 99.95 {
        format!("{v:.0}")
    } else if a >= 9.995 {
        format!("{v:.1}")
    } else if a >= 0.9995 {
        format!("{v:.2}")
    } else {
        let decimals = (-a.log10().floor()) as usize + 2;
        format!("{v:.decimals$}")
    }
}

/// `v` in the largest of `units` (factor, suffix; largest first) that it
/// reaches after rounding, else in the last one.
fn scaled(v: f64, units: &[(f64, &str)]) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let (factor, suffix) =
        units.iter().copied().find(|&(f, _)| v.abs() >= f * 0.9995).unwrap_or(units[units.len() - 1]);
    format!("{}{suffix}", sig3(v / factor))
}

/// Operations per second: "1.23 M/s", "456 k/s", "812/s".
pub fn rate(ops_per_sec: f64) -> String {
    scaled(ops_per_sec, &[(1e9, " G/s"), (1e6, " M/s"), (1e3, " k/s"), (1.0, "/s")])
}

/// A duration given in microseconds: "850 ns", "12.3 µs", "4.56 ms", "1.20 s".
pub fn micros(us: f64) -> String {
    if us == 0.0 {
        return "0".into();
    }
    scaled(us, &[(1e6, " s"), (1e3, " ms"), (1.0, " µs"), (1e-3, " ns")])
}

/// A duration given in milliseconds.
pub fn millis(ms: f64) -> String {
    micros(ms * 1e3)
}

/// A duration given in seconds.
pub fn secs(s: f64) -> String {
    micros(s * 1e6)
}

/// A size in bytes: "1.23 GiB", "456 MiB", "100 B".
pub fn size(bytes: f64) -> String {
    if bytes.abs() < 1024.0 * 0.9995 {
        return if bytes.fract() == 0.0 { format!("{bytes:.0} B") } else { format!("{} B", sig3(bytes)) };
    }
    let units = [(1u64 << 40, " TiB"), (1 << 30, " GiB"), (1 << 20, " MiB"), (1 << 10, " KiB")];
    scaled(bytes, &units.map(|(f, s)| (f as f64, s)))
}

/// A count with thousands separators: "12,345,678".
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count, short: "12.3 M", "45.6 k", "789".
pub fn short(n: f64) -> String {
    scaled(n, &[(1e9, " G"), (1e6, " M"), (1e3, " k"), (1.0, "")])
}

/// A factor: "2.35x".
pub fn ratio(x: f64) -> String {
    format!("{}x", sig3(x))
}

/// A share of something, as a percentage with up to two decimals:
/// "50%", "99.9%", "99.99%".
pub fn percent(p: f64) -> String {
    let text = format!("{p:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// Seconds since the Unix epoch as "2026-11-21 13:05 UTC".
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let rem = unix % 86_400;
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// Year, month and day of a day count since 1970-01-01 (proleptic
/// Gregorian calendar), counting in 400-year eras of 146,097 days.
fn civil(days: i64) -> (i64, u32, u32) {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A wall time in seconds, coarse: "42 s", "5 min 12 s", "1 h 02 min".
pub fn wall(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_keep_three_significant_digits() {
        assert_eq!(rate(1_234_567.0), "1.23 M/s");
        assert_eq!(rate(456_000.0), "456 k/s");
        assert_eq!(rate(999_700.0), "1.00 M/s", "rounding up moves to the next unit");
        assert_eq!(rate(812.0), "812/s");
        assert_eq!(micros(12.34), "12.3 µs");
        assert_eq!(micros(4_560.0), "4.56 ms");
        assert_eq!(micros(0.85), "850 ns");
        assert_eq!(secs(1.2), "1.20 s");
        assert_eq!(millis(480.0), "480 ms");
        assert_eq!(size(100.0), "100 B");
        assert_eq!(size(37.44), "37.4 B");
        assert_eq!(size(1.5 * 1024.0 * 1024.0 * 1024.0), "1.50 GiB");
        assert_eq!(sig3(0.01234), "0.0123");
        assert_eq!(grouped(12_345_678), "12,345,678");
        assert_eq!(grouped(999), "999");
        assert_eq!(ratio(2.345), "2.35x");
        assert_eq!(percent(99.9), "99.9%");
        assert_eq!(percent(50.0), "50%");
    }

    #[test]
    fn times_read_as_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_827_696), "2000-02-29 12:34 UTC");
        assert_eq!(utc(1_800_000_000), "2027-01-15 08:00 UTC");
        assert_eq!(wall(42.0), "42 s");
        assert_eq!(wall(312.0), "5 min 12 s");
        assert_eq!(wall(3_725.0), "1 h 02 min");
    }
}
