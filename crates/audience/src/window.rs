//! Time windows: what "in the last 30 days" means at a given `now`.
//!
//! Rolling windows (the default, REQUIREMENTS F2's reading of "近30天") cover the
//! `30 × 24 h` before `now`: an instant `t` is inside when `now − 30 d < t`. Calendar
//! windows cover the last `N` shop-local calendar days including today. Either way
//! a window is one exclusive start instant, so "inside" is always `t > start`, and the
//! moment `t` leaves the window is known in advance ([`Windowing::leaves_at`]), which
//! is how the index rolls windows over without rescanning.

use chrono::{Duration as ChronoDuration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::dsl::ast::{Duration, DurationUnit};

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_DAY: i64 = 86_400_000;

/// How day-based windows are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowMode {
    /// `N d` = the `N × 24 h` before now (default).
    #[default]
    Rolling,
    /// `N d` = the last `N` shop-local calendar days, today included.
    Calendar,
}

/// Window arithmetic in the shop timezone.
#[derive(Debug, Clone, Copy)]
pub struct Windowing {
    /// Rolling or calendar days.
    pub mode: WindowMode,
    /// The shop timezone.
    pub tz: Tz,
}

impl Default for Windowing {
    fn default() -> Self {
        Windowing {
            mode: WindowMode::Rolling,
            tz: chrono_tz::Asia::Shanghai,
        }
    }
}

/// The length of a duration in milliseconds.
pub fn duration_ms(d: Duration) -> i64 {
    let minutes = match d.unit {
        DurationUnit::Minutes => 1,
        DurationUnit::Hours => 60,
        DurationUnit::Days => 1440,
        DurationUnit::Weeks => 10_080,
    };
    i64::from(d.amount) * minutes * MS_PER_MINUTE
}

fn calendar_days(d: Duration) -> Option<i64> {
    match d.unit {
        DurationUnit::Days => Some(i64::from(d.amount)),
        DurationUnit::Weeks => Some(i64::from(d.amount) * 7),
        DurationUnit::Minutes | DurationUnit::Hours => None,
    }
}

impl Windowing {
    /// The exclusive start of the window `d` ending at `now`: `t` is inside when `t > start`.
    pub fn start(&self, now: i64, d: Duration) -> i64 {
        match (self.mode, calendar_days(d)) {
            (WindowMode::Calendar, Some(days)) => {
                let today = self.local_day(now);
                self.day_start(today - days as i32 + 1) - 1
            }
            _ => now.saturating_sub(duration_ms(d)),
        }
    }

    /// Whether `t` lies inside the window `d` ending at `now`.
    pub fn contains(&self, now: i64, d: Duration, t: i64) -> bool {
        t > self.start(now, d)
    }

    /// The first `now` at which `t` is no longer inside window `d`.
    pub fn leaves_at(&self, t: i64, d: Duration) -> i64 {
        match (self.mode, calendar_days(d)) {
            (WindowMode::Calendar, Some(days)) => self.day_start(self.local_day(t) + days as i32),
            _ => t.saturating_add(duration_ms(d)),
        }
    }

    /// The shop-local calendar day of `t` (days since 1970-01-01).
    pub fn local_day(&self, t: i64) -> i32 {
        let local = self.tz.timestamp_millis_opt(t).single().map(|d| d.date_naive());
        local
            .map(|d| (d - NaiveDate::default()).num_days() as i32)
            .unwrap_or_else(|| t.div_euclid(MS_PER_DAY) as i32)
    }

    /// The first instant (ms) of shop-local day `day`.
    pub fn day_start(&self, day: i32) -> i64 {
        let date = NaiveDate::default() + ChronoDuration::days(i64::from(day));
        date.and_hms_opt(0, 0, 0)
            .and_then(|n| self.tz.from_local_datetime(&n).earliest())
            .map(|d| d.timestamp_millis())
            .unwrap_or(i64::from(day) * MS_PER_DAY)
    }

    /// The first instant of the shop-local day after the one containing `now`.
    pub fn next_midnight(&self, now: i64) -> i64 {
        self.day_start(self.local_day(now) + 1)
    }
}

/// Days written as a [`Duration`].
pub fn days(n: u32) -> Duration {
    Duration {
        amount: n,
        unit: DurationUnit::Days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_735_660_800_000; // 2025-01-01T00:00:00+08:00

    #[test]
    fn rolling_window_excludes_its_start_instant() {
        let w = Windowing::default();
        let d30 = days(30);
        assert!(w.contains(NOW, d30, NOW - 30 * MS_PER_DAY + 1));
        assert!(!w.contains(NOW, d30, NOW - 30 * MS_PER_DAY));
        assert_eq!(w.leaves_at(NOW - 5 * MS_PER_DAY, d30), NOW + 25 * MS_PER_DAY);
    }

    #[test]
    fn calendar_window_counts_local_days_including_today() {
        let w = Windowing {
            mode: WindowMode::Calendar,
            ..Windowing::default()
        };
        let now = NOW + 10 * 3_600_000; // 10:00 local on 2025-01-01
                                        // Day 1 = today; day 2 = 2024-12-31 starts at 2024-12-31T00:00+08:00.
        let start = w.start(now, days(2));
        assert_eq!(start, NOW - MS_PER_DAY - 1);
        assert!(w.contains(now, days(2), NOW - MS_PER_DAY));
        assert!(!w.contains(now, days(2), NOW - MS_PER_DAY - 1));
        assert_eq!(w.leaves_at(NOW - MS_PER_DAY, days(2)), NOW + MS_PER_DAY);
    }

    #[test]
    fn local_day_follows_the_shop_timezone() {
        let w = Windowing::default();
        // 2024-12-31T16:00Z is already 2025-01-01 in Shanghai.
        assert_eq!(w.local_day(NOW), w.local_day(NOW + 3_600_000));
        assert_eq!(w.local_day(NOW - 1) + 1, w.local_day(NOW));
        assert_eq!(w.day_start(w.local_day(NOW)), NOW);
        assert_eq!(w.next_midnight(NOW + 5), NOW + MS_PER_DAY);
    }
}
