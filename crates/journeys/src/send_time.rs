//! Send at the user's most active hour (issue 6 §2, optional per send step; REQUIREMENTS
//! R5.8 dayparting): the local hour in which most of the user's past activity fell, and
//! the next time that hour comes round.

use chrono::{Duration, NaiveTime, Timelike};
use chrono_tz::Tz;
use flywheel_core::Timestamp;

/// The local hour (0–23, in `tz`) holding most of `activity`, the earliest hour on a tie;
/// `None` with fewer than `min_events` events (too little history to say — send at once).
pub fn most_active_hour(activity: &[Timestamp], tz: Tz, min_events: usize) -> Option<u32> {
    if activity.is_empty() || activity.len() < min_events {
        return None;
    }
    let mut per_hour = [0usize; 24];
    for t in activity {
        per_hour[t.with_timezone(&tz).hour() as usize] += 1;
    }
    let best = per_hour.iter().copied().max().unwrap_or(0);
    per_hour.iter().position(|&n| n == best).map(|h| h as u32)
}

/// The first instant at or after `at` in local hour `hour`: `at` itself when it is in
/// that hour already, else the start of that hour today or tomorrow (local time; an hour
/// skipped by a DST change is taken the day after).
pub fn next_at_hour(at: Timestamp, hour: u32, tz: Tz) -> Timestamp {
    let local = at.with_timezone(&tz);
    if local.hour() == hour {
        return at;
    }
    let Some(start) = NaiveTime::from_hms_opt(hour.min(23), 0, 0) else {
        return at;
    };
    let mut day = local.date_naive();
    for _ in 0..3 {
        let candidate = day.and_time(start);
        if let Some(t) = candidate.and_local_timezone(tz).earliest() {
            let t = t.with_timezone(&chrono::Utc);
            if t >= at {
                return t;
            }
        }
        day += Duration::days(1);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::time::parse_timestamp;

    fn t(s: &str) -> Timestamp {
        parse_timestamp(s).unwrap()
    }

    const SH: Tz = chrono_tz::Asia::Shanghai;

    #[test]
    fn most_active_hour_is_counted_in_local_time_with_ties_to_the_earliest() {
        let activity = [
            t("2026-11-01T12:05:00Z"), // 20:05 Shanghai
            t("2026-11-02T12:55:00Z"), // 20:55
            t("2026-11-03T01:00:00Z"), // 09:00
        ];
        assert_eq!(most_active_hour(&activity, SH, 3), Some(20));
        assert_eq!(most_active_hour(&activity, chrono_tz::UTC, 3), Some(12));
        assert_eq!(most_active_hour(&activity, SH, 4), None);
        assert_eq!(most_active_hour(&activity[1..], SH, 1), Some(9));
        assert_eq!(most_active_hour(&[], SH, 0), None);
    }

    #[test]
    fn next_at_hour_waits_for_the_hour_today_or_tomorrow() {
        let at = t("2026-11-30T15:30:00+08:00");
        assert_eq!(next_at_hour(at, 20, SH), t("2026-11-30T20:00:00+08:00"));
        assert_eq!(next_at_hour(at, 9, SH), t("2026-12-01T09:00:00+08:00"));
        assert_eq!(next_at_hour(at, 15, SH), at);
    }

    #[test]
    fn an_hour_skipped_by_dst_moves_to_the_next_day() {
        let ny = chrono_tz::America::New_York;
        // 02:xx does not exist on 2026-03-08 in New York.
        let at = t("2026-03-08T01:30:00-05:00");
        assert_eq!(next_at_hour(at, 2, ny), t("2026-03-09T02:00:00-04:00"));
    }
}
