//! A token bucket in bytes per second, for background readers that must
//! leave the disk to foreground writes (the scrubber). The clock is passed
//! in, so its arithmetic is tested without sleeping.

use std::time::{Duration, Instant};

/// Share of a second of the rate that may be spent at once after an idle
/// spell: enough to cover a read, small enough that the disk never sees a
/// long burst.
const BURST_SECONDS: f64 = 0.25;

/// Allows `bytes_per_sec` on average, with bursts of a quarter second's worth.
#[derive(Debug, Clone)]
pub struct Throttle {
    bytes_per_sec: u64,
    /// Bytes that may go now; negative: owed, to be waited for.
    tokens: f64,
    last: Option<Instant>,
}

impl Throttle {
    /// A bucket allowing `bytes_per_sec` (0: no limit), starting full.
    pub fn new(bytes_per_sec: u64) -> Self {
        let mut t = Self { bytes_per_sec, tokens: 0.0, last: None };
        t.tokens = t.burst();
        t
    }

    fn burst(&self) -> f64 {
        self.bytes_per_sec as f64 * BURST_SECONDS
    }

    /// Takes `bytes` at `now` and says how long to wait before using them:
    /// zero while the bucket holds enough, else the time the rate needs to
    /// pay the debt. A caller that waits that long and asks again finds
    /// the bucket empty, not in debt.
    pub fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        let rate = self.bytes_per_sec as f64;
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * rate;
            self.tokens = (self.tokens + refill).min(self.burst());
        }
        self.last = Some(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_charges_the_rate() {
        let t0 = Instant::now();
        let mut t = Throttle::new(8 * MIB);
        assert_eq!(t.take(2 * MIB, t0), Duration::ZERO, "a quarter second's worth goes at once");
        assert_eq!(t.take(MIB, t0), Duration::from_millis(125), "one MiB at 8 MiB/s");
        // Having waited, the next MiB waits its own share, no more.
        assert_eq!(t.take(MIB, t0 + Duration::from_millis(125)), Duration::from_millis(125));
    }

    #[test]
    fn steady_use_at_the_rate_never_waits_and_idling_saves_only_a_burst() {
        let t0 = Instant::now();
        let mut t = Throttle::new(4 * MIB);
        t.take(MIB, t0);
        for i in 1..=100 {
            assert_eq!(t.take(MIB / 4, t0 + Duration::from_millis(63 * i)), Duration::ZERO, "{i}");
        }
        // An hour idle refills the bucket to its burst only.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(t.take(MIB, later), Duration::ZERO);
        assert_eq!(t.take(MIB, later), Duration::from_millis(250));
    }

    #[test]
    fn a_clock_that_goes_back_adds_nothing_and_zero_means_no_limit() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut t = Throttle::new(MIB);
        t.take(MIB / 4, t0);
        assert_eq!(t.take(MIB, t0 - Duration::from_secs(5)), Duration::from_secs(1));
        assert_eq!(Throttle::new(0).take(u64::MAX, t0), Duration::ZERO);
    }
}
