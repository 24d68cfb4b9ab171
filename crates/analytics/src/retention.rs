//! Retention by cohort (REQUIREMENTS §10, [SUGGESTED DEFAULT]): the users who started
//! (signed up, or bought for the first time) in period 0 and were active in period N,
//! divided by the cohort's size. Periods are shop-local calendar days, ISO weeks (Monday
//! to Sunday) or calendar months ([`CohortPeriod`]). "Active in period N" means any event
//! in that exact period; a period not yet begun is "n/a", not 0. The average row weighs
//! every cohort by its size: for each N, the users retained summed over the cohorts that
//! reached N, divided by the sum of those cohorts' sizes ([`average`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::ratio::Ratio;

/// Each user's signup day.
pub type Signups = HashMap<String, NaiveDate>;

/// The days each user had any event.
pub type ActiveDays = HashMap<String, BTreeSet<NaiveDate>>;

/// One cohort's retention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRow {
    /// The first day of the cohort's period (the signup day for daily cohorts, the
    /// Monday of an ISO week, the 1st of a month).
    pub day: NaiveDate,
    /// Users whose cohort it is.
    pub size: i64,
    /// For each N asked: (N, users active in period N, their share); serialized as
    /// `{"day_n", "users", "rate"}` objects (`day_n`: N periods after the cohort's).
    #[serde(serialize_with = "retained_objects")]
    pub retained: Vec<(u32, i64, Ratio)>,
}

fn retained_objects<S: serde::Serializer>(v: &[(u32, i64, Ratio)], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Retained {
        day_n: u32,
        users: i64,
        rate: Ratio,
    }
    s.collect_seq(
        v.iter()
            .map(|&(day_n, users, rate)| Retained { day_n, users, rate }),
    )
}

/// The calendar period a cohort and its retention columns are counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CohortPeriod {
    /// Shop-local days (D-N retention).
    #[default]
    Day,
    /// ISO weeks, Monday to Sunday, shop-local (W-N).
    Week,
    /// Calendar months, shop-local (M-N).
    Month,
}

/// 1970-01-01, the day numbers' epoch (a Thursday: its ISO week began on 1969-12-29).
const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

impl CohortPeriod {
    /// `day`, `week` or `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            CohortPeriod::Day => "day",
            CohortPeriod::Week => "week",
            CohortPeriod::Month => "month",
        }
    }

    /// The number of the period containing day number `day` (days since 1970-01-01):
    /// consecutive periods have consecutive numbers.
    pub fn of_day(self, day: i32) -> i64 {
        let d = i64::from(day);
        match self {
            CohortPeriod::Day => d,
            // 1970-01-01 is a Thursday: day + 3 counts from Monday 1969-12-29.
            CohortPeriod::Week => (d + 3).div_euclid(7),
            CohortPeriod::Month => EPOCH
                .checked_add_signed(chrono::Duration::days(d))
                .map_or(0, |t| i64::from(t.year()) * 12 + i64::from(t.month0())),
        }
    }

    /// The number of the period containing `date`.
    pub fn of_date(self, date: NaiveDate) -> i64 {
        let day = (date - EPOCH).num_days();
        self.of_day(i32::try_from(day).unwrap_or(if day < 0 { i32::MIN } else { i32::MAX }))
    }

    /// The first day of period number `n` (`None` out of the calendar's range).
    pub fn first_day(self, n: i64) -> Option<NaiveDate> {
        match self {
            CohortPeriod::Day => EPOCH.checked_add_signed(chrono::Duration::try_days(n)?),
            CohortPeriod::Week => {
                EPOCH.checked_add_signed(chrono::Duration::try_days(n.checked_mul(7)? - 3)?)
            }
            CohortPeriod::Month => NaiveDate::from_ymd_opt(
                i32::try_from(n.div_euclid(12)).ok()?,
                n.rem_euclid(12) as u32 + 1,
                1,
            ),
        }
    }
}

impl std::str::FromStr for CohortPeriod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "day" => Ok(CohortPeriod::Day),
            "week" => Ok(CohortPeriod::Week),
            "month" => Ok(CohortPeriod::Month),
            other => Err(format!("cohort period {other:?}: use day, week or month")),
        }
    }
}

/// What starts a user's cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CohortBasis {
    /// Their first sign-up event.
    #[default]
    Signup,
    /// Their first non-cancelled order.
    FirstPurchase,
}

impl CohortBasis {
    /// `signup` or `first-purchase`.
    pub fn as_str(self) -> &'static str {
        match self {
            CohortBasis::Signup => "signup",
            CohortBasis::FirstPurchase => "first-purchase",
        }
    }
}

impl std::str::FromStr for CohortBasis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "signup" => Ok(CohortBasis::Signup),
            "first-purchase" => Ok(CohortBasis::FirstPurchase),
            other => Err(format!("cohort {other:?}: use signup or first-purchase")),
        }
    }
}

/// The cohorts' average: each N's retention weighted by cohort size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AverageRow {
    /// Users in all cohorts.
    pub size: i64,
    /// For each N asked: (N, users retained summed over the cohorts that reached N,
    /// their share of those cohorts' summed sizes); serialized like [`CohortRow::retained`].
    #[serde(serialize_with = "retained_objects")]
    pub retained: Vec<(u32, i64, Ratio)>,
}

/// The size-weighted average of `rows`: for each N, Σ retained ÷ Σ size over the cohorts
/// whose period N has begun (a cohort that has not reached N yet is left out of that
/// column, not counted as 0); n/a when no cohort reached N.
pub fn average(rows: &[CohortRow], days: &[u32]) -> AverageRow {
    let retained = days
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let (kept, size) = rows
                .iter()
                .filter_map(|r| r.retained.get(i).map(|c| (c, r.size)))
                .filter(|((_, _, ratio), _)| *ratio != Ratio::NotApplicable)
                .fold((0i64, 0i64), |(k, s), ((_, kept, _), size)| (k + kept, s + size));
            (n, kept, Ratio::of(kept, size))
        })
        .collect();
    AverageRow {
        size: rows.iter().map(|r| r.size).sum(),
        retained,
    }
}

/// Retention for each signup day in `signups` (user → signup day) at each of `days`
/// (e.g. 1, 7, 30), from `active` (user → days with any event), as of `today`.
pub fn retention(signups: &Signups, active: &ActiveDays, days: &[u32], today: NaiveDate) -> Vec<CohortRow> {
    retention_by(signups, active, days, today, CohortPeriod::Day)
}

/// Retention by `by` periods: each cohort is the period of its users' start day in
/// `signups`; period N is retained when the user has any day of `active` in period
/// cohort + N; a period N that begins after `today` is n/a. The reference the columnar
/// engine is tested against.
pub fn retention_by(
    signups: &Signups,
    active: &ActiveDays,
    days: &[u32],
    today: NaiveDate,
    by: CohortPeriod,
) -> Vec<CohortRow> {
    let mut cohorts: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for (user, day) in signups {
        cohorts.entry(by.of_date(*day)).or_default().push(user);
    }
    let now = by.of_date(today);
    cohorts
        .into_iter()
        .filter_map(|(cohort, users)| {
            let size = users.len() as i64;
            let retained = days
                .iter()
                .map(|&n| {
                    let target = cohort + i64::from(n);
                    if target > now {
                        return (n, 0, Ratio::NotApplicable);
                    }
                    let kept = users
                        .iter()
                        .filter(|u| {
                            active
                                .get(**u)
                                .is_some_and(|d| d.iter().any(|day| by.of_date(*day) == target))
                        })
                        .count() as i64;
                    (n, kept, Ratio::of(kept, size))
                })
                .collect();
            Some(CohortRow {
                day: by.first_day(cohort)?,
                size,
                retained,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn row(size: i64, retained: Vec<(u32, i64, Ratio)>) -> CohortRow {
        CohortRow {
            day: d("2026-01-01"),
            size,
            retained,
        }
    }

    #[test]
    fn the_average_weighs_cohorts_by_size_and_skips_those_not_reached() {
        let rows = vec![
            row(10, vec![(1, 5, Ratio::of(5, 10)), (7, 2, Ratio::of(2, 10))]),
            row(30, vec![(1, 3, Ratio::of(3, 30)), (7, 0, Ratio::NotApplicable)]),
        ];
        let avg = average(&rows, &[1, 7]);
        assert_eq!(avg.size, 40);
        // (5 + 3) ÷ (10 + 30) = 20 %, not the mean of 50 % and 10 % (30 %).
        assert_eq!(avg.retained[0], (1, 8, Ratio::Value(0.2)));
        // Day 7: only the first cohort has reached it.
        assert_eq!(avg.retained[1], (7, 2, Ratio::Value(0.2)));
        let none = average(&[row(5, vec![(1, 0, Ratio::NotApplicable)])], &[1]);
        assert_eq!(none.retained[0], (1, 0, Ratio::NotApplicable));
        assert_eq!(average(&[], &[1]).retained[0], (1, 0, Ratio::NotApplicable));
    }

    #[test]
    fn periods_number_days_weeks_from_monday_and_months() {
        // 2026-03-02 is a Monday, 2026-03-01 a Sunday.
        let w = CohortPeriod::Week;
        assert_eq!(w.of_date(d("2026-03-01")) + 1, w.of_date(d("2026-03-02")));
        assert_eq!(w.of_date(d("2026-03-02")), w.of_date(d("2026-03-08")));
        assert_eq!(w.first_day(w.of_date(d("2026-03-05"))), Some(d("2026-03-02")));
        assert_eq!(w.first_day(w.of_date(d("1969-12-31"))), Some(d("1969-12-29")));
        let m = CohortPeriod::Month;
        assert_eq!(m.of_date(d("2025-12-31")) + 1, m.of_date(d("2026-01-01")));
        assert_eq!(m.first_day(m.of_date(d("2026-02-28"))), Some(d("2026-02-01")));
        assert_eq!(m.first_day(m.of_date(d("1969-07-04"))), Some(d("1969-07-01")));
        let day = CohortPeriod::Day;
        assert_eq!(day.first_day(day.of_date(d("2026-02-28"))), Some(d("2026-02-28")));
        assert_eq!("week".parse(), Ok(CohortPeriod::Week));
        assert!("fortnight".parse::<CohortPeriod>().is_err());
        assert_eq!("first-purchase".parse(), Ok(CohortBasis::FirstPurchase));
    }

    #[test]
    fn f29_next_day_forty_percent_seven_day_twenty_percent() {
        let day0 = d("2026-11-01");
        let mut signups = HashMap::new();
        let mut active: HashMap<String, BTreeSet<NaiveDate>> = HashMap::new();
        for i in 0..100 {
            let u = format!("u{i}");
            signups.insert(u.clone(), day0);
            let days = active.entry(u).or_default();
            days.insert(day0);
            if i < 40 {
                days.insert(d("2026-11-02"));
            }
            if i < 20 {
                days.insert(d("2026-11-08"));
            }
            if i >= 90 {
                // Active on day 6 and 8, not on day 7: not retained at D7.
                days.insert(d("2026-11-07"));
                days.insert(d("2026-11-09"));
            }
        }
        let rows = retention(&signups, &active, &[1, 7, 30], d("2026-11-20"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].size, 100);
        assert_eq!(rows[0].retained[0], (1, 40, Ratio::Value(0.4)));
        assert_eq!(rows[0].retained[1], (7, 20, Ratio::Value(0.2)));
        assert_eq!(
            rows[0].retained[2],
            (30, 0, Ratio::NotApplicable),
            "day 30 not reached yet"
        );
    }
}
