//! Rate buckets in this process: one number per caller under one mutex. Bounded: past
//! [`MAX_CALLERS`] callers, the buckets that have filled up again (worth nothing) are
//! dropped, and if that is not enough all are — a moment of leniency rather than memory
//! that grows with every address that ever called.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::{Rate, Verdict};

/// The most callers whose buckets are kept.
pub const MAX_CALLERS: usize = 100_000;

/// In-process buckets, on this process's monotonic clock.
#[derive(Debug)]
pub struct MemoryRates {
    start: Instant,
    arrivals: Mutex<HashMap<String, i64>>,
}

impl Default for MemoryRates {
    fn default() -> Self {
        MemoryRates {
            start: Instant::now(),
            arrivals: Mutex::new(HashMap::new()),
        }
    }
}

/// The GCRA step: with the caller's next theoretical arrival `tat` (µs), a request at
/// `now` is let through when `tat` is at most the tolerance ahead; the new `tat` is one
/// interval later.
pub(crate) fn gcra(tat: Option<i64>, now: i64, rate: Rate) -> (Verdict, Option<i64>) {
    let tat = tat.unwrap_or(now).max(now);
    let ahead = tat - now;
    if ahead > rate.tolerance_us {
        let wait_us = ahead - rate.tolerance_us;
        return (Verdict::Limited { wait_us }, None);
    }
    (Verdict::Allowed, Some(tat + rate.interval_us))
}

impl MemoryRates {
    /// Counts one request of `key` at `rate`.
    pub fn take(&self, key: &str, rate: Rate) -> Verdict {
        let now = i64::try_from(self.start.elapsed().as_micros()).unwrap_or(i64::MAX);
        self.take_at(key, rate, now)
    }

    fn take_at(&self, key: &str, rate: Rate, now: i64) -> Verdict {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        if arrivals.len() >= MAX_CALLERS && !arrivals.contains_key(key) {
            arrivals.retain(|_, tat| *tat > now);
            if arrivals.len() >= MAX_CALLERS {
                arrivals.clear();
            }
        }
        let (verdict, next) = gcra(arrivals.get(key).copied(), now, rate);
        if let Some(next) = next {
            arrivals.insert(key.to_owned(), next);
        }
        verdict
    }

    /// How many callers' buckets are kept.
    pub fn len(&self) -> usize {
        self.arrivals.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Whether no bucket is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate_on_an_explicit_clock() {
        let m = MemoryRates::default();
        // 2 a second, 3 at once.
        let rate = Rate::per(2, 1_000_000, 3).unwrap();
        for _ in 0..3 {
            assert_eq!(m.take_at("k", rate, 0), Verdict::Allowed);
        }
        assert_eq!(m.take_at("k", rate, 0), Verdict::Limited { wait_us: 500_000 });
        assert_eq!(m.take_at("k", rate, 499_999), Verdict::Limited { wait_us: 1 });
        assert_eq!(m.take_at("k", rate, 500_000), Verdict::Allowed);
        assert!(matches!(m.take_at("k", rate, 500_000), Verdict::Limited { .. }));
        // After a quiet spell the full burst is back.
        for _ in 0..3 {
            assert_eq!(m.take_at("k", rate, 10_000_000), Verdict::Allowed);
        }
        assert_eq!(m.take_at("other", rate, 10_000_000), Verdict::Allowed);
    }

    #[test]
    fn stays_bounded() {
        let m = MemoryRates::default();
        let rate = Rate::per(1, 1_000_000, 1).unwrap();
        for i in 0..MAX_CALLERS {
            m.take_at(&format!("ip{i}"), rate, 0);
        }
        assert_eq!(m.len(), MAX_CALLERS);
        // At 2 s every bucket has filled up again: they all go, the new one stays.
        m.take_at("late", rate, 2_000_000);
        assert_eq!(m.len(), 1);
        for i in 0..MAX_CALLERS {
            m.take_at(&format!("ip{i}"), rate, 3_000_000);
        }
        m.take_at("later", rate, 3_000_001);
        assert!(m.len() <= 1, "{}", m.len());
    }
}
