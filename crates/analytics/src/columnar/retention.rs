//! D-N retention by signup cohort on [`EventColumns`], with the rules of
//! [`crate::retention`](mod@crate::retention) and of the store loader ([`crate::load::cohorts`]):
//!
//! - A user's **signup** is their earliest event whose name is one of the signup names.
//!   The user is in a cohort only when that earliest signup lies in the period
//!   `[from, to)` (a user who first signed up before `from` is in no cohort, even if
//!   they signed up again inside it).
//! - The **cohort** is the shop-local day of that signup (the `day` column).
//! - The user is **retained on day N** when they have any event (of any name) on exactly
//!   shop-local day `cohort + N`.
//! - For each N asked: users retained ÷ cohort size; a day `cohort + N` after `today` is
//!   not reached yet: count 0 and [`Ratio::NotApplicable`].
//!
//! Rows come out by cohort day, only for days with at least one signup.

use chrono::NaiveDate;

use super::{date_to_day, ColumnarError, EventColumns};
use crate::kpi::Period;
use crate::ratio::Ratio;
use crate::retention::{CohortPeriod, CohortRow};

/// The most retention days one query may ask for.
pub const MAX_RETENTION_DAYS: usize = 64;

/// Retention at each of `days` (e.g. 1, 7, 30) for every signup cohort whose signup
/// (first event named in `signup`) lies in `period`, as of `today` (shop-local); the
/// rules are in the module documentation ([`retention`](self)). A signup id that was
/// never interned, or more than [`MAX_RETENTION_DAYS`] days, is an error.
pub fn retention(
    cols: &EventColumns,
    signup: &[u16],
    days: &[u32],
    period: Period,
    today: NaiveDate,
) -> Result<Vec<CohortRow>, ColumnarError> {
    retention_by(cols, signup, days, period, today, CohortPeriod::Day)
}

/// [`retention()`] counted in `by` periods: a user's cohort is the period (day, ISO week,
/// month) of their signup's shop-local day, and they are retained in period N when they
/// have any event in period cohort + N; a period N that begins after `today` is n/a.
pub fn retention_by(
    cols: &EventColumns,
    signup: &[u16],
    days: &[u32],
    period: Period,
    today: NaiveDate,
    by: CohortPeriod,
) -> Result<Vec<CohortRow>, ColumnarError> {
    if days.len() > MAX_RETENTION_DAYS {
        return Err(ColumnarError::TooManyDays(days.len()));
    }
    let mut is_signup = vec![false; cols.names().len()];
    for &s in signup {
        *is_signup
            .get_mut(usize::from(s))
            .ok_or(ColumnarError::UnknownName(s))? = true;
    }
    if cols.is_empty() {
        return Ok(Vec::new());
    }
    // want[d]: bit i set when days[i] == d.
    let max_n = days.iter().copied().max().unwrap_or(0) as usize;
    let mut want = vec![0u64; max_n + 1];
    for (i, &n) in days.iter().enumerate() {
        want[n as usize] |= 1 << i;
    }
    // The user's signup row, if it lies in the period.
    let signup_row = |u: u32| -> Option<usize> {
        let r = cols.user_rows(u);
        let f = cols.name[r.clone()]
            .iter()
            .position(|&n| is_signup[usize::from(n)])?;
        period.contains(cols.ts[r.start + f]).then_some(r.start + f)
    };
    // Cohort days lie within the data's day range; for data spread over more than
    // ~270 years, within the range of the cohorts actually present.
    let (mut min_day, mut max_day) = cols
        .day
        .iter()
        .fold((i32::MAX, i32::MIN), |(lo, hi), &d| (lo.min(d), hi.max(d)));
    if i64::from(max_day) - i64::from(min_day) > 100_000 {
        (min_day, max_day) = (0..cols.users() as u32)
            .filter_map(signup_row)
            .map(|f| cols.day[f])
            .fold((i32::MAX, i32::MIN), |(lo, hi), d| (lo.min(d), hi.max(d)));
        if min_day > max_day {
            return Ok(Vec::new());
        }
    }
    let first = by.of_day(min_day);
    let span = (by.of_day(max_day) - first + 1) as usize;
    let k = days.len();

    // Per cohort: [size, retained at days[0], …].
    let run = |users: std::ops::Range<u32>| -> Vec<i64> {
        let mut acc = vec![0i64; span * (k + 1)];
        for u in users {
            let Some(f) = signup_row(u) else {
                continue;
            };
            let end = cols.user_rows(u).end;
            let c = by.of_day(cols.day[f]);
            let mut hit = 0u64;
            for &d in &cols.day[f..end] {
                // Along a user's rows the local day only steps back by at most one
                // day (a clock set back across midnight), and so its period by at most
                // one period: past `max_n + 1` it is over.
                let off = by.of_day(d) - c;
                if off > max_n as i64 + 1 {
                    break;
                }
                if let Some(&bits) = usize::try_from(off).ok().and_then(|o| want.get(o)) {
                    hit |= bits;
                }
            }
            let row = &mut acc[(c - first) as usize * (k + 1)..][..k + 1];
            row[0] += 1;
            for (i, slot) in row[1..].iter_mut().enumerate() {
                *slot += i64::from((hit >> i) & 1 == 1);
            }
        }
        acc
    };

    let parts: Vec<Vec<i64>> = cols.per_chunk(run);
    let mut acc = vec![0i64; span * (k + 1)];
    for p in parts {
        for (a, b) in acc.iter_mut().zip(p) {
            *a += b;
        }
    }

    let today = by.of_day(date_to_day(today));
    Ok(acc
        .chunks_exact(k + 1)
        .enumerate()
        .filter(|(_, row)| row[0] > 0)
        .filter_map(|(i, row)| {
            let cohort = first + i as i64;
            let size = row[0];
            let retained = days
                .iter()
                .zip(&row[1..])
                .map(|(&n, &kept)| {
                    if cohort + i64::from(n) > today {
                        (n, 0, Ratio::NotApplicable)
                    } else {
                        (n, kept, Ratio::of(kept, size))
                    }
                })
                .collect();
            Some(CohortRow {
                day: by.first_day(cohort)?,
                size,
                retained,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columnar::EventColumnsBuilder;
    use chrono::DateTime;
    use chrono_tz::Tz;

    const ALL: Period = Period {
        from: i64::MIN,
        to: i64::MAX,
    };

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn f29_next_day_forty_percent_seven_day_twenty_percent() {
        // The fixture of crate::retention's test, as events (UTC shop).
        let mut b = EventColumnsBuilder::new();
        for i in 0..100 {
            let u = format!("u{i}");
            b.push(&u, ms("2026-11-01T09:00:00Z"), "Signed Up").unwrap();
            if i < 40 {
                b.push(&u, ms("2026-11-02T23:59:59Z"), "Page Viewed").unwrap();
            }
            if i < 20 {
                b.push(&u, ms("2026-11-08T00:00:00Z"), "Page Viewed").unwrap();
            }
            if i >= 90 {
                b.push(&u, ms("2026-11-07T12:00:00Z"), "Page Viewed").unwrap();
                b.push(&u, ms("2026-11-09T12:00:00Z"), "Page Viewed").unwrap();
            }
        }
        let c = b.build(Tz::UTC);
        let signup = [c.name_id("Signed Up").unwrap()];
        let rows = retention(&c, &signup, &[1, 7, 30], ALL, d("2026-11-20")).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].day, d("2026-11-01"));
        assert_eq!(rows[0].size, 100);
        assert_eq!(rows[0].retained[0], (1, 40, Ratio::Value(0.4)));
        assert_eq!(rows[0].retained[1], (7, 20, Ratio::Value(0.2)));
        assert_eq!(
            rows[0].retained[2],
            (30, 0, Ratio::NotApplicable),
            "day 30 not reached yet"
        );
    }

    #[test]
    fn cohorts_and_active_days_are_shop_local_days() {
        // Shanghai is UTC+8: 2026-03-01T16:30Z is 2026-03-02 00:30 local.
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let mut b = EventColumnsBuilder::new();
        b.push("a", ms("2026-03-01T15:59:00Z"), "Signed Up").unwrap(); // 03-01 23:59 local
        b.push("a", ms("2026-03-01T16:30:00Z"), "Page Viewed").unwrap(); // 03-02 local: D1
        b.push("b", ms("2026-03-01T16:00:00Z"), "Signed Up").unwrap(); // 03-02 00:00 local
        b.push("b", ms("2026-03-03T15:59:59Z"), "Page Viewed").unwrap(); // 03-03 local: D1
        let c = b.build(tz);
        let signup = [c.name_id("Signed Up").unwrap()];
        let rows = retention(&c, &signup, &[1], ALL, d("2026-04-01")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].day, rows[0].size), (d("2026-03-01"), 1));
        assert_eq!(rows[0].retained[0], (1, 1, Ratio::Value(1.0)));
        assert_eq!((rows[1].day, rows[1].size), (d("2026-03-02"), 1));
        assert_eq!(rows[1].retained[0], (1, 1, Ratio::Value(1.0)));
    }

    #[test]
    fn dst_day_boundary_in_new_york() {
        // DST starts 2026-03-08: that local day is 23 hours long.
        let tz: Tz = "America/New_York".parse().unwrap();
        let mut b = EventColumnsBuilder::new();
        b.push("a", ms("2026-03-07T12:00:00Z"), "Signed Up").unwrap(); // 03-07 local
        b.push("a", ms("2026-03-09T03:30:00Z"), "Page Viewed").unwrap(); // 03-08 23:30 EDT: D1
        b.push("b", ms("2026-03-07T12:00:00Z"), "Signed Up").unwrap();
        b.push("b", ms("2026-03-09T04:00:00Z"), "Page Viewed").unwrap(); // 03-09 00:00 EDT: D2
        let c = b.build(tz);
        let signup = [c.name_id("Signed Up").unwrap()];
        let rows = retention(&c, &signup, &[1, 2], ALL, d("2026-04-01")).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].retained,
            vec![(1, 1, Ratio::Value(0.5)), (2, 1, Ratio::Value(0.5))]
        );
    }

    #[test]
    fn first_signup_must_lie_in_the_period_and_later_signups_do_not_move_it() {
        let mut b = EventColumnsBuilder::new();
        b.push("early", ms("2026-01-01T00:00:00Z"), "Signed Up").unwrap();
        b.push("early", ms("2026-02-01T00:00:00Z"), "Signed Up").unwrap();
        b.push("twice", ms("2026-02-01T00:00:00Z"), "Signed Up").unwrap();
        b.push("twice", ms("2026-02-03T00:00:00Z"), "Signed Up").unwrap(); // active on D2
        b.push("never", ms("2026-02-02T00:00:00Z"), "Page Viewed")
            .unwrap();
        let c = b.build(Tz::UTC);
        let signup = [c.name_id("Signed Up").unwrap()];
        let p = Period {
            from: ms("2026-01-15T00:00:00Z"),
            to: ms("2026-03-01T00:00:00Z"),
        };
        let rows = retention(&c, &signup, &[1, 2], p, d("2026-02-02")).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].day, rows[0].size), (d("2026-02-01"), 1));
        assert_eq!(
            rows[0].retained,
            vec![(1, 0, Ratio::Value(0.0)), (2, 0, Ratio::NotApplicable)]
        );
    }

    #[test]
    fn weekly_cohorts_are_shop_local_iso_weeks_from_monday() {
        // Shanghai (+08:00). 2026-03-01 is a Sunday, 03-02 a Monday.
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let mut b = EventColumnsBuilder::new();
        b.push("sun", ms("2026-03-01T15:30:00Z"), "Signed Up").unwrap(); // Sun 23:30 local: week of 02-23
        b.push("sun", ms("2026-03-01T16:30:00Z"), "Page Viewed").unwrap(); // Mon 00:30: W1
        b.push("mon", ms("2026-03-01T16:10:00Z"), "Signed Up").unwrap(); // Mon 00:10: week of 03-02
        b.push("mon", ms("2026-03-08T15:59:00Z"), "Page Viewed").unwrap(); // Sun 03-08 23:59: W0 only
        b.push("tue", ms("2026-03-03T04:00:00Z"), "Signed Up").unwrap(); // week of 03-02
        b.push("tue", ms("2026-03-10T04:00:00Z"), "Page Viewed").unwrap(); // Tue 03-10: W1
        b.push("tue", ms("2026-03-24T04:00:00Z"), "Page Viewed").unwrap(); // W3
        let c = b.build(tz);
        let signup = [c.name_id("Signed Up").unwrap()];
        let rows = retention_by(&c, &signup, &[1, 3], ALL, d("2026-03-18"), CohortPeriod::Week).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].day, rows[0].size), (d("2026-02-23"), 1));
        assert_eq!(
            rows[0].retained,
            vec![(1, 1, Ratio::Value(1.0)), (3, 0, Ratio::Value(0.0))],
            "W3 of the week of 02-23 began on 03-16, before today"
        );
        assert_eq!((rows[1].day, rows[1].size), (d("2026-03-02"), 2));
        assert_eq!(
            rows[1].retained,
            vec![(1, 1, Ratio::Value(0.5)), (3, 0, Ratio::NotApplicable)],
            "W3 of the week of 03-02 begins on 03-23, after today"
        );
    }

    #[test]
    fn monthly_cohorts_are_calendar_months() {
        let mut b = EventColumnsBuilder::new();
        b.push("a", ms("2026-01-31T23:00:00Z"), "Signed Up").unwrap();
        b.push("a", ms("2026-02-01T00:00:00Z"), "Page Viewed").unwrap(); // M1, the next day
        b.push("b", ms("2026-01-01T00:00:00Z"), "Signed Up").unwrap();
        b.push("b", ms("2026-01-31T00:00:00Z"), "Page Viewed").unwrap(); // 30 days on: still M0
        b.push("b", ms("2026-03-31T00:00:00Z"), "Page Viewed").unwrap(); // M2
        b.push("c", ms("2026-02-10T00:00:00Z"), "Signed Up").unwrap();
        let c = b.build(Tz::UTC);
        let signup = [c.name_id("Signed Up").unwrap()];
        let rows = retention_by(&c, &signup, &[1, 2], ALL, d("2026-03-05"), CohortPeriod::Month).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].day, rows[0].size), (d("2026-01-01"), 2));
        assert_eq!(
            rows[0].retained,
            vec![(1, 1, Ratio::Value(0.5)), (2, 1, Ratio::Value(0.5))]
        );
        assert_eq!((rows[1].day, rows[1].size), (d("2026-02-01"), 1));
        assert_eq!(
            rows[1].retained,
            vec![(1, 0, Ratio::Value(0.0)), (2, 0, Ratio::NotApplicable)]
        );
    }

    #[test]
    fn every_period_agrees_with_the_row_by_row_reference() {
        use crate::retention::{retention_by as reference, ActiveDays, Signups};
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let start = ms("2026-01-20T00:00:00Z");
        let mut events = Vec::new();
        for _ in 0..4000 {
            let user = format!("u{}", rnd(300));
            let at = start + (rnd(120 * 24) as i64) * 3_600_000;
            let name = if rnd(6) == 0 { "Signed Up" } else { "Page Viewed" };
            events.push((user, at, name));
        }
        let p = Period {
            from: ms("2026-02-01T00:00:00Z"),
            to: ms("2026-04-01T00:00:00Z"),
        };
        let today = d("2026-05-02");
        let local = |t: i64| {
            chrono::DateTime::from_timestamp_millis(t)
                .unwrap()
                .with_timezone(&tz)
                .date_naive()
        };
        let mut first: std::collections::HashMap<String, i64> = Default::default();
        let mut active: ActiveDays = Default::default();
        let mut b = EventColumnsBuilder::new();
        for (u, t, n) in &events {
            b.push(u, *t, n).unwrap();
            active.entry(u.clone()).or_default().insert(local(*t));
            if *n == "Signed Up" {
                let f = first.entry(u.clone()).or_insert(*t);
                *f = (*f).min(*t);
            }
        }
        let signups: Signups = first
            .into_iter()
            .filter(|(_, t)| p.contains(*t))
            .map(|(u, t)| (u, local(t)))
            .collect();
        // The reference counts any active day in the period; the engine only days from
        // the signup on, the same thing for N ≥ 1.
        let c = b.build(tz);
        let signup = [c.name_id("Signed Up").unwrap()];
        for by in [CohortPeriod::Day, CohortPeriod::Week, CohortPeriod::Month] {
            let days = [1, 2, 3];
            let got = retention_by(&c, &signup, &days, p, today, by).unwrap();
            assert_eq!(got, reference(&signups, &active, &days, today, by), "{by:?}");
            assert!(got.iter().any(|r| r.retained[0].1 > 0), "{by:?}: a real test");
        }
    }

    #[test]
    fn empty_inputs_give_no_rows() {
        let mut b = EventColumnsBuilder::new();
        b.name("Signed Up").unwrap();
        let c = b.build(Tz::UTC);
        assert_eq!(retention(&c, &[0], &[1], ALL, d("2026-01-01")).unwrap(), vec![]);
        assert_eq!(
            retention(&c, &[3], &[1], ALL, d("2026-01-01")),
            Err(ColumnarError::UnknownName(3))
        );
        let too_many: Vec<u32> = (0..65).collect();
        assert_eq!(
            retention(&c, &[0], &too_many, ALL, d("2026-01-01")),
            Err(ColumnarError::TooManyDays(65))
        );
    }
}
