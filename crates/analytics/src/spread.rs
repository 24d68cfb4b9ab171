//! Spend over a period (issue 16): an entry covering shop-local days `first..=last` is
//! spread evenly over them, so any window's cost — and its ROI — takes the share of the
//! days it covers, not a lump sum on one day. Each day gets `amount ÷ days` fen
//! (integer), and the remainder goes one fen a day to the first `amount mod days` days,
//! so the days add up to the amount exactly and the split never depends on the window.
//! A day belongs to a window when the day's first instant lies in it.

use chrono::NaiveDate;
use chrono_tz::Tz;
use flywheel_core::time::from_millis;

use crate::kpi::Period;
use crate::reports::start_of;

/// Day `i`'s part (0-based) of `amount` spread over `days` days: `amount ÷ days`, plus one
/// fen on each of the first `amount mod days` days. `days` below 1 counts as 1.
pub fn day_part(amount: i64, days: i64, i: i64) -> i64 {
    let days = days.max(1);
    amount.div_euclid(days) + i64::from(i < amount.rem_euclid(days))
}

/// The shop-local days an entry at `at` until `until` (exclusive) covers: the day of `at`
/// to the day of the last instant before `until`.
pub fn days_of(at: i64, until: i64, tz: Tz) -> (NaiveDate, NaiveDate) {
    let day = |ms: i64| from_millis(ms).with_timezone(&tz).date_naive();
    let first = day(at);
    (first, day(until.saturating_sub(1)).max(first))
}

/// The part of a spend of `amount` fen falling in `period`: a one-off spend (`until`
/// `None`) counts whole when `at` lies in the period; a spend over days is spread over
/// them ([`day_part`]) and the period takes the parts of the days whose first instant
/// lies in it.
pub fn share_in(amount: i64, at: i64, until: Option<i64>, period: Period, tz: Tz) -> i64 {
    let Some(until) = until else {
        return if period.contains(at) { amount } else { 0 };
    };
    let (first, last) = days_of(at, until, tz);
    let days = (last - first).num_days() + 1;
    let mut share = 0i64;
    for (i, day) in first.iter_days().take(days as usize).enumerate() {
        let start = start_of(day, tz);
        if start >= period.to {
            break;
        }
        if start >= period.from {
            share = share.saturating_add(day_part(amount, days, i as i64));
        }
    }
    share
}

#[cfg(test)]
mod tests {
    use super::*;

    const SH: Tz = chrono_tz::Asia::Shanghai;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn days(from: &str, to: &str) -> Period {
        Period {
            from: start_of(d(from), SH),
            to: start_of(d(to) + chrono::Duration::days(1), SH),
        }
    }

    #[test]
    fn a_month_of_spend_is_spread_over_its_days_exactly() {
        // 1000.00 元 over November (30 days): 3333.33 fen a day; the first 10 days get
        // 3334, the other 20 get 3333: 10 × 3334 + 20 × 3333 = 100000.
        let nov = days("2026-11-01", "2026-11-30");
        let (at, until) = (nov.from, Some(nov.to));
        assert_eq!(share_in(100_000, at, until, nov, SH), 100_000);
        assert_eq!(
            share_in(100_000, at, until, days("2026-11-01", "2026-11-01"), SH),
            3_334
        );
        assert_eq!(
            share_in(100_000, at, until, days("2026-11-11", "2026-11-11"), SH),
            3_333
        );
        assert_eq!(
            share_in(100_000, at, until, days("2026-11-01", "2026-11-10"), SH),
            33_340
        );
        assert_eq!(
            share_in(100_000, at, until, days("2026-11-11", "2026-11-30"), SH),
            66_660
        );
        // A 30-day window straddling two months takes each month's days.
        assert_eq!(
            share_in(100_000, at, until, days("2026-11-16", "2026-12-15"), SH),
            15 * 3_333
        );
        assert_eq!(
            share_in(100_000, at, until, days("2026-12-01", "2026-12-31"), SH),
            0
        );
        assert_eq!(
            share_in(100_000, at, until, days("2026-10-01", "2026-10-31"), SH),
            0
        );
    }

    #[test]
    fn every_split_of_the_days_adds_up_to_the_amount() {
        let week = days("2026-11-02", "2026-11-08");
        for amount in [0, 1, 6, 7, 8, 1_000_001] {
            let parts: i64 = (0..7)
                .map(|i| {
                    let day = d("2026-11-02") + chrono::Duration::days(i);
                    let p = days(&day.to_string(), &day.to_string());
                    share_in(amount, week.from, Some(week.to), p, SH)
                })
                .sum();
            assert_eq!(parts, amount, "{amount}");
        }
        assert_eq!(day_part(8, 7, 0), 2);
        assert_eq!(day_part(8, 7, 1), 1);
        assert_eq!(day_part(5, 0, 0), 5, "no days counts as one");
    }

    #[test]
    fn a_one_off_spend_counts_where_it_was_spent() {
        let nov = days("2026-11-01", "2026-11-30");
        let at = start_of(d("2026-11-02"), SH);
        assert_eq!(share_in(500, at, None, nov, SH), 500);
        assert_eq!(share_in(500, at, None, days("2026-11-03", "2026-11-30"), SH), 0);
    }

    #[test]
    fn the_days_are_the_shops_days() {
        // 2026-11-01 00:00 in Shanghai is 2026-10-31 16:00 UTC: the entry covers
        // November's 30 local days, not 31 UTC days.
        let nov = days("2026-11-01", "2026-11-30");
        assert_eq!(days_of(nov.from, nov.to, SH), (d("2026-11-01"), d("2026-11-30")));
        assert_eq!(
            days_of(nov.from, nov.from, SH),
            (d("2026-11-01"), d("2026-11-01"))
        );
    }
}
