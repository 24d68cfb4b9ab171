//! D-N retention by signup cohort (REQUIREMENTS §10, [SUGGESTED DEFAULT]): the users who
//! signed up on day 0 (shop-local calendar day) and were active on day N, divided by the
//! cohort's size. "Active on day N" means any event on that exact day; a day not yet
//! reached is "n/a", not 0.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::Serialize;

use crate::ratio::Ratio;

/// Each user's signup day.
pub type Signups = HashMap<String, NaiveDate>;

/// The days each user had any event.
pub type ActiveDays = HashMap<String, BTreeSet<NaiveDate>>;

/// One signup day's retention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRow {
    /// Signup day.
    pub day: NaiveDate,
    /// Users who signed up that day.
    pub size: i64,
    /// For each N asked: (N, users active on day N, their share); serialized as
    /// `{"day_n", "users", "rate"}` objects.
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

/// Retention for each signup day in `signups` (user → signup day) at each of `days`
/// (e.g. 1, 7, 30), from `active` (user → days with any event), as of `today`.
pub fn retention(signups: &Signups, active: &ActiveDays, days: &[u32], today: NaiveDate) -> Vec<CohortRow> {
    let mut cohorts: BTreeMap<NaiveDate, Vec<&str>> = BTreeMap::new();
    for (user, day) in signups {
        cohorts.entry(*day).or_default().push(user);
    }
    cohorts
        .into_iter()
        .map(|(day, users)| {
            let size = users.len() as i64;
            let retained = days
                .iter()
                .map(|&n| {
                    let target = day + chrono::Duration::days(i64::from(n));
                    if target > today {
                        return (n, 0, Ratio::NotApplicable);
                    }
                    let kept = users
                        .iter()
                        .filter(|u| active.get(**u).is_some_and(|d| d.contains(&target)))
                        .count() as i64;
                    (n, kept, Ratio::of(kept, size))
                })
                .collect();
            CohortRow { day, size, retained }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
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
