//! Time: UTC timestamps with millisecond precision, an injectable clock and the shop timezone.
//!
//! All timestamps are stored in UTC (DESIGN, rules of the house); the shop timezone
//! (default `Asia/Shanghai`) drives calendar logic in the crates that need it.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::{Error, Result};

/// A point in time, UTC. Stored as milliseconds since the Unix epoch.
pub type Timestamp = DateTime<Utc>;

/// The default shop timezone.
pub const DEFAULT_SHOP_TIMEZONE: &str = "Asia/Shanghai";

/// Parses an ISO-8601 timestamp as SDKs send it.
///
/// Accepts RFC 3339 (`2024-11-11T12:00:00+08:00`, `...Z`, fractional seconds), and for
/// import convenience a date-time without offset (`2024-11-11T04:00:00` or with a space),
/// read as UTC, and a bare date (`2024-11-11`, midnight UTC).
pub fn parse_timestamp(text: &str) -> Result<Timestamp> {
    parse_timestamp_in(text, &Utc)
}

/// Parses a timestamp as [`parse_timestamp`] does, except that a date-time without an
/// offset and a bare date are wall-clock readings in `tz` (a shop export's local times;
/// bulk import reads them in the shop timezone). A local time skipped by a daylight-saving
/// change is read one hour later; an ambiguous one as its earlier instant.
pub fn parse_timestamp_in<Z: TimeZone>(text: &str, tz: &Z) -> Result<Timestamp> {
    let s = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    // RFC 3339 with a space instead of `T`.
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .map(|d| d.and_time(NaiveTime::MIN))
        });
    naive
        .and_then(|t| local_instant(t, tz))
        .ok_or_else(|| Error::InvalidTimestamp(text.to_string()))
}

/// The instant of wall-clock time `t` in `tz`: the earlier one when a daylight-saving
/// change repeats it, one hour later when the change skips it.
fn local_instant<Z: TimeZone>(t: NaiveDateTime, tz: &Z) -> Option<Timestamp> {
    tz.from_local_datetime(&t)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(t + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// The first instant of shop-local day `d` in `tz` (its local midnight).
pub fn local_midnight(d: NaiveDate, tz: Tz) -> Option<Timestamp> {
    local_instant(d.and_time(NaiveTime::MIN), &tz)
}

/// Reads an observation end (`rfm --as-of`, `GET /api/v1/rfm?as_of=`): the last instant
/// whose data counts. A bare date `YYYY-MM-DD` means the end of that shop-local day, so
/// everything before the next local midnight counts (the result is one millisecond before
/// it, the stored precision); any other timestamp is that instant (without an offset, a
/// wall-clock reading in `tz`).
pub fn parse_observation_end(text: &str, tz: Tz) -> Result<Timestamp> {
    let s = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .succ_opt()
            .and_then(|next| local_midnight(next, tz))
            .map(|midnight| midnight - chrono::Duration::milliseconds(1))
            .ok_or_else(|| Error::InvalidTimestamp(text.to_string()));
    }
    parse_timestamp_in(s, &tz)
}

/// Milliseconds since the Unix epoch, the stored form of a [`Timestamp`].
pub fn to_millis(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

/// The [`Timestamp`] of stored milliseconds (clamped into chrono's range).
pub fn from_millis(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Formats a timestamp as RFC 3339 with milliseconds and `Z`, the API's output form.
pub fn format_timestamp(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses an IANA timezone name (e.g. `Asia/Shanghai`).
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| Error::UnknownTimezone(name.to_string()))
}

/// A source of "now", injectable so windows and timers are testable at their boundaries.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// A clock that stays where it is set; for tests.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock standing at `t`.
    pub fn new(t: Timestamp) -> Self {
        FixedClock(AtomicI64::new(to_millis(t)))
    }

    /// Moves the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(to_millis(t), Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        from_millis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sdk_formats() {
        let want = Utc.with_ymd_and_hms(2024, 11, 11, 4, 0, 0).unwrap();
        assert_eq!(parse_timestamp("2024-11-11T12:00:00+08:00").unwrap(), want);
        assert_eq!(parse_timestamp("2024-11-11T04:00:00Z").unwrap(), want);
        assert_eq!(parse_timestamp("2024-11-11T04:00:00.000Z").unwrap(), want);
        assert_eq!(parse_timestamp("2024-11-11T04:00:00").unwrap(), want);
        assert_eq!(parse_timestamp("2024-11-11 12:00:00+08:00").unwrap(), want);
        assert_eq!(
            parse_timestamp("2024-11-11").unwrap(),
            Utc.with_ymd_and_hms(2024, 11, 11, 0, 0, 0).unwrap()
        );
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("2024-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn naive_times_are_read_in_the_given_zone() {
        let sh = chrono_tz::Asia::Shanghai;
        let want = Utc.with_ymd_and_hms(1997, 1, 1, 15, 0, 0).unwrap();
        assert_eq!(parse_timestamp_in("1997-01-01 23:00:00", &sh).unwrap(), want);
        assert_eq!(parse_timestamp_in("1997-01-01T23:00:00", &sh).unwrap(), want);
        // An offset wins over the zone.
        assert_eq!(parse_timestamp_in("1997-01-01T15:00:00Z", &sh).unwrap(), want);
        assert_eq!(
            parse_timestamp_in("1997-01-02", &sh).unwrap(),
            Utc.with_ymd_and_hms(1997, 1, 1, 16, 0, 0).unwrap()
        );
        // 02:30 on 2024-03-10 does not exist in New York: read an hour later.
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            parse_timestamp_in("2024-03-10 02:30:00", &ny).unwrap(),
            Utc.with_ymd_and_hms(2024, 3, 10, 7, 30, 0).unwrap()
        );
        assert!(parse_timestamp_in("1997/01/01", &sh).is_err());
    }

    #[test]
    fn a_bare_observation_end_is_the_end_of_the_local_day() {
        let sh = chrono_tz::Asia::Shanghai;
        // 1998-06-30 in Shanghai ends at 1998-06-30T16:00:00Z (exclusive).
        let end = parse_observation_end("1998-06-30", sh).unwrap();
        assert_eq!(
            end,
            Utc.with_ymd_and_hms(1998, 6, 30, 15, 59, 59).unwrap() + chrono::Duration::milliseconds(999)
        );
        // 23:00 local on that day is inside; the next local midnight is not.
        let late = parse_timestamp_in("1998-06-30 23:00:00", &sh).unwrap();
        assert!(late <= end);
        assert!(local_midnight(NaiveDate::from_ymd_opt(1998, 7, 1).unwrap(), sh).unwrap() > end);
        // A full timestamp is that instant.
        assert_eq!(
            parse_observation_end("1998-06-30T00:00:00Z", sh).unwrap(),
            Utc.with_ymd_and_hms(1998, 6, 30, 0, 0, 0).unwrap()
        );
        assert!(parse_observation_end("June 30", sh).is_err());
    }

    #[test]
    fn millis_round_trip() {
        let t = parse_timestamp("2024-11-11T04:00:00.123Z").unwrap();
        assert_eq!(from_millis(to_millis(t)), t);
        assert_eq!(format_timestamp(t), "2024-11-11T04:00:00.123Z");
    }

    #[test]
    fn fixed_clock_moves() {
        let t = parse_timestamp("2024-11-11T04:00:00Z").unwrap();
        let c = FixedClock::new(t);
        assert_eq!(c.now(), t);
        let t2 = t + chrono::Duration::days(1);
        c.set(t2);
        assert_eq!(c.now(), t2);
        assert_eq!(
            parse_timezone("Asia/Shanghai").unwrap(),
            chrono_tz::Asia::Shanghai
        );
        assert!(parse_timezone("Mars/Olympus").is_err());
    }
}
