//! The columnar event engine (issue 7): events held as parallel columns sorted by
//! (user, time), so that a funnel or a retention table is one pass over each user's
//! contiguous slice, with no hashing in the loop and users split across cores.
//!
//! - [`EventColumns`]: the columns — `user` (dense index), `ts` (ms UTC), `name`
//!   (interned), `day` (shop-local day number, computed once at build time) — plus each
//!   user's events as a range, and optional per-user properties for breakdowns.
//! - [`EventColumnsBuilder`]: takes rows in any order (user key or index, ts, name),
//!   interns users and names, and sorts them (a counting sort by user, then each user's
//!   events by time). This is how events are loaded from the store.
//! - [`funnel()`]: ordered-step funnel with a conversion window ([`funnel`](mod@funnel)
//!   states the exact rules).
//! - [`retention()`]: D-N retention by signup cohort, with the rules of
//!   [`crate::retention`](mod@crate::retention), returning the same [`CohortRow`](crate::retention::CohortRow).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use chrono::{DateTime, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

pub mod funnel;
pub mod retention;

pub use funnel::{funnel, FunnelGroup, FunnelReport, FunnelStep, MAX_STEPS};
pub use retention::{retention, retention_by, MAX_RETENTION_DAYS};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// Milliseconds in an hour (the bucket of the timezone offset cache).
const HOUR_MS: i64 = 3_600_000;
/// `NaiveDate::num_days_from_ce()` of 1970-01-01: day numbers count from the Unix epoch.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;
/// Below this many events a query runs on the calling thread only.
const PARALLEL_MIN_EVENTS: usize = 100_000;

/// Why rows or a query were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnarError {
    /// More than 65,536 distinct event names (names are `u16`).
    TooManyNames,
    /// An event name id that was never interned.
    UnknownName(u16),
    /// A funnel needs at least one step.
    NoSteps,
    /// A funnel of more than [`MAX_STEPS`] steps.
    TooManySteps(usize),
    /// A negative conversion window.
    NegativeWindow(i64),
    /// More than [`MAX_RETENTION_DAYS`] retention days in one query.
    TooManyDays(usize),
    /// A breakdown property whose per-user table does not cover every user.
    PropertyLength {
        /// Users in the columns.
        users: usize,
        /// Entries in the property's table.
        len: usize,
    },
    /// A breakdown property that maps a user to a value it does not have.
    UnknownPropertyValue(u32),
}

impl fmt::Display for ColumnarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnarError::TooManyNames => f.write_str("more than 65536 distinct event names"),
            ColumnarError::UnknownName(id) => write!(f, "event name id {id} was never interned"),
            ColumnarError::NoSteps => f.write_str("a funnel needs at least one step"),
            ColumnarError::TooManySteps(n) => write!(f, "a funnel has at most {MAX_STEPS} steps, not {n}"),
            ColumnarError::NegativeWindow(w) => write!(f, "the conversion window is negative ({w} ms)"),
            ColumnarError::TooManyDays(n) => {
                write!(
                    f,
                    "at most {MAX_RETENTION_DAYS} retention days per query, not {n}"
                )
            }
            ColumnarError::PropertyLength { users, len } => {
                write!(f, "the property covers {len} users, the events have {users}")
            }
            ColumnarError::UnknownPropertyValue(v) => write!(f, "property value id {v} does not exist"),
        }
    }
}

impl std::error::Error for ColumnarError {}

/// A per-user property to break a report down by (country, channel, first source…):
/// each user's value id, and the values' names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProperty {
    /// The property's name (e.g. `country`).
    pub name: String,
    /// The distinct values; a value id indexes this.
    pub values: Vec<String>,
    /// Each user's value id, indexed by user; [`UserProperty::NONE`] for a user without
    /// a value.
    pub of_user: Vec<u32>,
}

impl UserProperty {
    /// The value id of a user who has no value for the property.
    pub const NONE: u32 = u32::MAX;
}

/// Events as parallel columns sorted by (user, ts, name), each user's events contiguous.
///
/// Row `i` is one event: `user()[i]` did `names()[name()[i]]` at `ts()[i]` (ms UTC), on
/// shop-local day `day()[i]` (days since 1970-01-01 in the shop timezone given to
/// [`EventColumnsBuilder::build`]). Users are dense indices `0..users()`.
#[derive(Debug, Clone)]
pub struct EventColumns {
    user: Vec<u32>,
    ts: Vec<i64>,
    name: Vec<u16>,
    day: Vec<i32>,
    /// `offsets[u]..offsets[u + 1]` are user `u`'s rows.
    offsets: Vec<usize>,
    names: Vec<String>,
    user_keys: Vec<String>,
    properties: Vec<UserProperty>,
    tz: Tz,
    threads: usize,
}

impl EventColumns {
    /// Number of events.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether there is no event.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Number of users (dense indices `0..users()`, some possibly without events).
    pub fn users(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The user column.
    pub fn user(&self) -> &[u32] {
        &self.user
    }

    /// The timestamp column (ms UTC).
    pub fn ts(&self) -> &[i64] {
        &self.ts
    }

    /// The event name column (ids into [`EventColumns::names`]).
    pub fn name(&self) -> &[u16] {
        &self.name
    }

    /// The shop-local day column (days since 1970-01-01 in the shop timezone).
    pub fn day(&self) -> &[i32] {
        &self.day
    }

    /// The rows of user `u` (empty for an unknown user).
    pub fn user_rows(&self, u: u32) -> Range<usize> {
        let u = u as usize;
        match (self.offsets.get(u), self.offsets.get(u + 1)) {
            (Some(&a), Some(&b)) => a..b,
            _ => 0..0,
        }
    }

    /// The interned event names, indexed by name id.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The id of event name `name`, if any event (or the builder) has it.
    pub fn name_id(&self, name: &str) -> Option<u16> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| u16::try_from(i).ok())
    }

    /// The key a user was interned under ([`EventColumnsBuilder::user`]), if any.
    pub fn user_key(&self, u: u32) -> Option<&str> {
        self.user_keys.get(u as usize).map(String::as_str)
    }

    /// The per-user properties set through the builder.
    pub fn properties(&self) -> &[UserProperty] {
        &self.properties
    }

    /// The property named `name`, for a breakdown.
    pub fn property(&self, name: &str) -> Option<&UserProperty> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// The shop timezone the `day` column was computed in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The shop-local day number of `ts` (ms UTC) in this shop's timezone.
    pub fn day_of(&self, ts: i64) -> i32 {
        local_day(ts, offset_ms(self.tz, ts))
    }

    /// Worker threads a query uses (default: the available parallelism).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Use `n` worker threads per query (at least 1).
    pub fn set_threads(&mut self, n: usize) {
        self.threads = n.max(1);
    }

    /// Splits the users into at most `threads` contiguous ranges of about equal event
    /// counts (one range for small inputs).
    fn user_chunks(&self) -> Vec<Range<u32>> {
        let users = self.users() as u32;
        let parts = if self.len() < PARALLEL_MIN_EVENTS {
            1
        } else {
            self.threads.max(1)
        };
        let mut out = Vec::with_capacity(parts);
        let mut start = 0u32;
        for p in 1..=parts {
            let end = if p == parts {
                users
            } else {
                let target = self.len() * p / parts;
                // First user whose rows start at or after `target`.
                (self.offsets.partition_point(|&o| o < target) as u32).clamp(start, users)
            };
            if end > start {
                out.push(start..end);
            }
            start = end;
        }
        out
    }

    /// Runs `run` over each chunk of users ([`Self::user_chunks`]), on its own thread when
    /// there are several; the results in chunk order.
    fn per_chunk<T: Send>(&self, run: impl Fn(Range<u32>) -> T + Sync) -> Vec<T> {
        let chunks = self.user_chunks();
        if chunks.len() <= 1 {
            return chunks.into_iter().map(run).collect();
        }
        std::thread::scope(|s| {
            let run = &run;
            let handles: Vec<_> = chunks.into_iter().map(|c| s.spawn(move || run(c))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }
}

/// A shop-local day number as a calendar date (`None` out of chrono's range).
pub fn day_to_date(day: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(day.checked_add(EPOCH_DAYS_FROM_CE)?)
}

/// A calendar date as a shop-local day number (days since 1970-01-01).
pub fn date_to_day(date: NaiveDate) -> i32 {
    chrono::Datelike::num_days_from_ce(&date) - EPOCH_DAYS_FROM_CE
}

/// The UTC offset of `tz` at `ts` (ms), in ms; 0 outside chrono's range.
fn offset_ms(tz: Tz, ts: i64) -> i64 {
    match DateTime::from_timestamp_millis(ts) {
        Some(t) => {
            i64::from(
                tz.offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc(),
            ) * 1000
        }
        None => 0,
    }
}

/// The day number of `ts` shifted by `offset` ms, clamped to `i32`.
fn local_day(ts: i64, offset: i64) -> i32 {
    let d = ts.saturating_add(offset).div_euclid(DAY_MS);
    d.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The shop-local day of every timestamp. Offsets are cached per UTC hour; an hour in
/// which the offset changes (a DST transition) is computed event by event.
fn local_days(ts: &[i64], tz: Tz) -> Vec<i32> {
    let (Some(&min), Some(&max)) = (ts.iter().min(), ts.iter().max()) else {
        return Vec::new();
    };
    let first_hour = min.div_euclid(HOUR_MS);
    let hours = max.div_euclid(HOUR_MS) - first_hour + 1;
    // Sentinel: the offset changes inside the hour.
    const MIXED: i64 = i64::MIN;
    let hour_offset = |h: i64| {
        let start = h.saturating_mul(HOUR_MS);
        let a = offset_ms(tz, start);
        if a == offset_ms(tz, start.saturating_add(HOUR_MS - 1)) {
            a
        } else {
            MIXED
        }
    };
    let day_at = |t: i64, off: i64| local_day(t, if off == MIXED { offset_ms(tz, t) } else { off });
    if hours <= 2_000_000 {
        let table: Vec<i64> = (0..hours).map(|i| hour_offset(first_hour + i)).collect();
        ts.iter()
            .map(|&t| day_at(t, table[(t.div_euclid(HOUR_MS) - first_hour) as usize]))
            .collect()
    } else {
        let mut cache: HashMap<i64, i64> = HashMap::new();
        ts.iter()
            .map(|&t| {
                let off = *cache
                    .entry(t.div_euclid(HOUR_MS))
                    .or_insert_with_key(|&h| hour_offset(h));
                day_at(t, off)
            })
            .collect()
    }
}

/// Collects events in any order and builds [`EventColumns`].
///
/// Users are either interned from keys ([`EventColumnsBuilder::user`], ids from 0 in
/// first-seen order) or given as dense indices by the caller
/// ([`EventColumnsBuilder::push_ids`]); a builder should use one or the other. The
/// number of users is the larger of the keys interned and the highest index pushed + 1.
#[derive(Debug, Default)]
pub struct EventColumnsBuilder {
    user_ids: HashMap<String, u32>,
    user_keys: Vec<String>,
    name_ids: HashMap<String, u16>,
    names: Vec<String>,
    user: Vec<u32>,
    ts: Vec<i64>,
    name: Vec<u16>,
    max_user: Option<u32>,
    properties: Vec<PropertyRows>,
}

/// A property as the builder collects it.
#[derive(Debug, Default)]
struct PropertyRows {
    name: String,
    ids: HashMap<String, u32>,
    values: Vec<String>,
    /// (user, value id), in the order set.
    sets: Vec<(u32, u32)>,
}

impl EventColumnsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `events` rows.
    pub fn with_capacity(events: usize) -> Self {
        Self {
            user: Vec::with_capacity(events),
            ts: Vec::with_capacity(events),
            name: Vec::with_capacity(events),
            ..Self::default()
        }
    }

    /// The dense index of user `key`, interning it if new.
    pub fn user(&mut self, key: &str) -> u32 {
        if let Some(&u) = self.user_ids.get(key) {
            return u;
        }
        let u = self.user_keys.len() as u32;
        self.user_ids.insert(key.to_string(), u);
        self.user_keys.push(key.to_string());
        u
    }

    /// The id of event name `name`, interning it if new.
    pub fn name(&mut self, name: &str) -> Result<u16, ColumnarError> {
        if let Some(&n) = self.name_ids.get(name) {
            return Ok(n);
        }
        let n = u16::try_from(self.names.len()).map_err(|_| ColumnarError::TooManyNames)?;
        self.name_ids.insert(name.to_string(), n);
        self.names.push(name.to_string());
        Ok(n)
    }

    /// Adds one event: `user` (a key) did `name` at `ts` (ms UTC).
    pub fn push(&mut self, user: &str, ts: i64, name: &str) -> Result<(), ColumnarError> {
        let n = self.name(name)?;
        let u = self.user(user);
        self.push_ids(u, ts, n)
    }

    /// Adds one event by ids: user index `user`, interned name id `name`, at `ts` (ms UTC).
    pub fn push_ids(&mut self, user: u32, ts: i64, name: u16) -> Result<(), ColumnarError> {
        if usize::from(name) >= self.names.len() {
            return Err(ColumnarError::UnknownName(name));
        }
        self.max_user = Some(self.max_user.map_or(user, |m| m.max(user)));
        self.user.push(user);
        self.ts.push(ts);
        self.name.push(name);
        Ok(())
    }

    /// Sets user `user`'s value of property `property` (the last value set wins).
    pub fn set_property(&mut self, property: &str, user: u32, value: &str) {
        let i = match self.properties.iter().position(|p| p.name == property) {
            Some(i) => i,
            None => {
                self.properties.push(PropertyRows {
                    name: property.to_string(),
                    ..PropertyRows::default()
                });
                self.properties.len() - 1
            }
        };
        let p = &mut self.properties[i];
        let v = match p.ids.get(value) {
            Some(&v) => v,
            None => {
                let v = p.values.len() as u32;
                p.ids.insert(value.to_string(), v);
                p.values.push(value.to_string());
                v
            }
        };
        p.sets.push((user, v));
    }

    /// Sorts the rows by (user, ts, name) and computes each event's shop-local day in `tz`.
    pub fn build(self, tz: Tz) -> EventColumns {
        let users = self
            .user_keys
            .len()
            .max(self.max_user.map_or(0, |m| m as usize + 1));
        // Counting sort by user.
        let mut offsets = vec![0usize; users + 1];
        for &u in &self.user {
            offsets[u as usize + 1] += 1;
        }
        for i in 0..users {
            offsets[i + 1] += offsets[i];
        }
        let n = self.ts.len();
        let mut rows: Vec<(i64, u16)> = vec![(0, 0); n];
        let mut next = offsets.clone();
        for ((&u, &t), &nm) in self.user.iter().zip(&self.ts).zip(&self.name) {
            let slot = &mut next[u as usize];
            rows[*slot] = (t, nm);
            *slot += 1;
        }
        drop(next);
        drop(self.user);
        drop(self.ts);
        drop(self.name);
        // Then each user's events by time (and name, for a stable order of ties).
        for w in offsets.windows(2) {
            let slice = &mut rows[w[0]..w[1]];
            if !slice.is_sorted() {
                slice.sort_unstable();
            }
        }
        let mut user = Vec::with_capacity(n);
        for (u, w) in offsets.windows(2).enumerate() {
            user.resize(user.len() + (w[1] - w[0]), u as u32);
        }
        let ts: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let name: Vec<u16> = rows.iter().map(|r| r.1).collect();
        drop(rows);
        let day = local_days(&ts, tz);
        let properties = self
            .properties
            .into_iter()
            .map(
                |PropertyRows {
                     name, values, sets, ..
                 }| {
                    let mut of_user = vec![UserProperty::NONE; users];
                    for (u, v) in sets {
                        if let Some(slot) = of_user.get_mut(u as usize) {
                            *slot = v;
                        }
                    }
                    UserProperty {
                        name,
                        values,
                        of_user,
                    }
                },
            )
            .collect();
        EventColumns {
            user,
            ts,
            name,
            day,
            offsets,
            names: self.names,
            user_keys: self.user_keys,
            properties,
            tz,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_sorts_by_user_then_time_and_interns() {
        let mut b = EventColumnsBuilder::new();
        b.push("bob", 30, "B").unwrap();
        b.push("amy", 20, "A").unwrap();
        b.push("bob", 10, "A").unwrap();
        b.push("amy", 5, "B").unwrap();
        b.set_property("country", 1, "CN");
        let c = b.build(Tz::UTC);
        assert_eq!(c.len(), 4);
        assert_eq!(c.users(), 2);
        assert_eq!(c.user(), &[0, 0, 1, 1]);
        assert_eq!(c.user_key(0), Some("bob"));
        assert_eq!(c.ts(), &[10, 30, 5, 20]);
        assert_eq!(c.name(), &[1, 0, 0, 1]);
        assert_eq!(c.names(), &["B".to_string(), "A".to_string()]);
        assert_eq!(c.user_rows(1), 2..4);
        assert_eq!(c.user_rows(7), 0..0);
        let p = c.property("country").unwrap();
        assert_eq!(p.of_user, vec![UserProperty::NONE, 0]);
    }

    #[test]
    fn unknown_name_id_is_refused() {
        let mut b = EventColumnsBuilder::new();
        assert_eq!(b.push_ids(0, 1, 0), Err(ColumnarError::UnknownName(0)));
    }

    #[test]
    fn shop_local_days_follow_the_timezone_across_dst() {
        // America/New_York: DST starts 2026-03-08 at 02:00 local (07:00 UTC).
        let tz: Tz = "America/New_York".parse().unwrap();
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        let ts = [
            utc("2026-03-08T04:59:59.999Z"), // 23:59:59.999 EST on 03-07
            utc("2026-03-08T05:00:00Z"),     // 00:00 EST on 03-08
            utc("2026-03-09T03:59:59Z"),     // 23:59:59 EDT on 03-08
            utc("2026-03-09T04:00:00Z"),     // 00:00 EDT on 03-09
        ];
        let days = local_days(&ts, tz);
        let d = |s: &str| date_to_day(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        assert_eq!(
            days,
            vec![d("2026-03-07"), d("2026-03-08"), d("2026-03-08"), d("2026-03-09")]
        );
        assert_eq!(day_to_date(d("2026-03-08")), NaiveDate::from_ymd_opt(2026, 3, 8));
        // Shanghai: +08:00, so 16:00 UTC is the next day.
        let sh: Tz = "Asia/Shanghai".parse().unwrap();
        assert_eq!(
            local_days(&[utc("2026-03-07T16:00:00Z")], sh),
            vec![d("2026-03-08")]
        );
    }

    #[test]
    fn threads_give_the_same_answers_as_one() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut b = EventColumnsBuilder::with_capacity(300_000);
        for n in ["Signed Up", "V", "A", "C", "O"] {
            b.name(n).unwrap();
        }
        for _ in 0..300_000 {
            let u = rnd(20_000) as u32;
            b.push_ids(u, (rnd(30 * 24) * HOUR_MS as u64) as i64, rnd(5) as u16)
                .unwrap();
        }
        for u in 0..20_000u32 {
            b.set_property("p", u, ["x", "y", "z"][(u % 3) as usize]);
        }
        let mut c = b.build(Tz::UTC);
        let period = crate::kpi::Period {
            from: 0,
            to: 20 * DAY_MS,
        };
        let today = NaiveDate::from_ymd_opt(1970, 1, 25).unwrap();
        let mut answers = Vec::new();
        for t in [1, 2, 3] {
            c.set_threads(t);
            assert_eq!(c.user_chunks().len(), t);
            let f = funnel(&c, &[1, 2, 3, 4], 5 * DAY_MS, period, c.property("p")).unwrap();
            let r = retention(&c, &[0], &[1, 7, 30], period, today).unwrap();
            answers.push((f, r));
        }
        assert!(answers[0].0.steps[3].users > 0);
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0], answers[2]);
    }

    #[test]
    fn chunks_cover_every_user_once() {
        let mut b = EventColumnsBuilder::new();
        for u in 0..1000u32 {
            let n = b.name("x").unwrap();
            for t in 0..(u % 300) {
                b.push_ids(u, i64::from(t), n).unwrap();
            }
        }
        let mut c = b.build(Tz::UTC);
        c.set_threads(3);
        let chunks = c.user_chunks();
        assert_eq!(chunks.first().map(|r| r.start), Some(0));
        assert_eq!(chunks.last().map(|r| r.end), Some(1000));
        for w in chunks.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
    }
}
