//! Time: UTC timestamps with millisecond precision, an injectable clock and the shop timezone.
//!
//! All timestamps are stored in UTC (DESIGN, rules of the house); the shop timezone
//! (default `Asia/Shanghai`) drives calendar logic in the crates that need it.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

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
    let s = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    // RFC 3339 with a space instead of `T`.
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    Err(Error::InvalidTimestamp(text.to_string()))
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
