//! What journeys persist to survive a crash (issue 6 §3): **timers** — a waiting step's
//! wake-up, keyed by (journey run, step) — and **effects** — the record that a step's
//! effect (a send, a coupon, a tag) was done, so a retry or a restart never does it twice.
//!
//! Timers are claimed with a lease: a worker takes due timers whose lease has lapsed and
//! leases them for a while; it deletes a timer once its step is done. A worker that dies
//! holding a lease loses it when the lease runs out, and another worker takes the timer
//! again — so a timer fires at least once, and the effects table makes its effect happen
//! at most once. Parameters are named in ascending order of first use (SQLite).

use crate::conn::Sql;
use crate::conn::{Conn, Dialect, Param, Row};
use crate::Result;

/// A stored timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerRow {
    /// Unique key, e.g. `<run id>/<step id>`.
    pub key: String,
    /// When it is due (ms).
    pub due_at: i64,
    /// What the journey engine needs to resume (JSON).
    pub payload: String,
    /// Times it has been claimed (1 on the first firing).
    pub attempts: i64,
}

fn timer_of(r: &Row) -> Result<TimerRow> {
    Ok(TimerRow {
        key: r.text(0)?,
        due_at: r.i64(1)?,
        payload: r.text(2)?,
        attempts: r.i64(3)?,
    })
}

/// Schedules a timer; false (and nothing changed) when one with this key exists, so
/// scheduling is idempotent.
pub fn schedule(conn: &mut dyn Conn, key: &str, due_at: i64, payload: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO journey_timers (key, due_at, payload, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO NOTHING",
        &[
            Param::Text(key),
            Param::I64(due_at),
            Param::Text(payload),
            Param::I64(now),
        ],
    )? == 1)
}

/// Takes up to `limit` timers due at `now` and not leased, earliest first (timers due at
/// the same instant in the order they were scheduled: the `due_at` index's own order,
/// with no sort, and rows written together read together), leasing them
/// until `now + lease_ms`. Run it in a write transaction: claims then never overlap.
pub fn claim_due(conn: &mut dyn Conn, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<TimerRow>> {
    let due = conn.query(
        "SELECT key, due_at, payload, attempts FROM journey_timers \
         WHERE due_at <= $1 AND lease_until <= $1 ORDER BY due_at LIMIT $2",
        &[Param::I64(now), Param::I64(limit)],
    )?;
    let mut claimed = Vec::with_capacity(due.len());
    for row in &due {
        let mut timer = timer_of(row)?;
        let leased = conn.execute(
            "UPDATE journey_timers SET lease_until = $1, attempts = attempts + 1 \
             WHERE key = $2 AND lease_until <= $3",
            &[
                Param::I64(now.saturating_add(lease_ms)),
                Param::Text(&timer.key),
                Param::I64(now),
            ],
        )?;
        if leased == 1 {
            timer.attempts += 1;
            claimed.push(timer);
        }
    }
    Ok(claimed)
}

/// The statement [`due`] runs.
const DUE: &str = "SELECT key, due_at, payload, attempts FROM journey_timers \
     WHERE due_at <= $1 AND lease_until <= $1 ORDER BY due_at LIMIT $2";

/// Up to `limit` timers due at `now` and not leased, earliest first, without claiming
/// them: a caller that finishes a timer in the same write transaction completes or
/// reschedules it, and [`lease`]s only the ones it hands to slower work.
pub fn due(conn: &mut dyn Conn, now: i64, limit: i64) -> Result<Vec<TimerRow>> {
    conn.query(DUE, &[Param::I64(now), Param::I64(limit)])?
        .iter()
        .map(timer_of)
        .collect()
}

/// How the database plans [`due`] (`; `-separated lines), for the journeys benchmark to
/// show that due timers are read through their index, not by a scan and sort.
pub fn due_plan(conn: &mut dyn Conn, now: i64, limit: i64) -> Result<String> {
    let (explain, column) = match conn.dialect() {
        Dialect::Sqlite => ("EXPLAIN QUERY PLAN", 3),
        Dialect::Postgres => ("EXPLAIN", 0),
    };
    Ok(conn
        .query(&format!("{explain} {DUE}"), &[Param::I64(now), Param::I64(limit)])?
        .iter()
        .map(|r| r.text(column))
        .collect::<Result<Vec<_>>>()?
        .join("; "))
}

/// Leases a timer until `until` (counting an attempt); false when another holds it.
pub fn lease(conn: &mut dyn Conn, key: &str, now: i64, until: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE journey_timers SET lease_until = $1, attempts = attempts + 1 WHERE key = $2 AND lease_until <= $3",
        &[Param::I64(until), Param::Text(key), Param::I64(now)],
    )? == 1)
}

/// Extends the leases of `keys` that are still leased at `now` until `until` (a worker
/// renewing the timers it is working on, so another process does not take them over
/// while it is still sending); a timer already rescheduled or completed is left alone.
pub fn extend(conn: &mut dyn Conn, keys: &[String], now: i64, until: i64) -> Result<u64> {
    let mut n = 0;
    for key in keys {
        n += conn.execute(
            "UPDATE journey_timers SET lease_until = $1 WHERE key = $2 AND lease_until > $3",
            &[Param::I64(until), Param::Text(key), Param::I64(now)],
        )?;
    }
    Ok(n)
}

/// Removes a timer whose step is done; false when it was already gone.
pub fn complete(conn: &mut dyn Conn, key: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM journey_timers WHERE key = $1", &[Param::Text(key)])? == 1)
}

/// Moves a timer to a new due time and releases its lease (a deferred send).
pub fn reschedule(conn: &mut dyn Conn, key: &str, due_at: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE journey_timers SET due_at = $1, lease_until = 0 WHERE key = $2",
        &[Param::I64(due_at), Param::Text(key)],
    )? == 1)
}

/// The earliest due time of any timer (to sleep until), if there is one.
pub fn next_due(conn: &mut dyn Conn) -> Result<Option<i64>> {
    conn.query("SELECT MIN(due_at) FROM journey_timers", &[])?
        .first()
        .map(|r| r.opt_i64(0))
        .transpose()
        .map(Option::flatten)
}

/// How many timers are stored.
pub fn count(conn: &mut dyn Conn) -> Result<i64> {
    conn.query("SELECT COUNT(*) FROM journey_timers", &[])?
        .first()
        .map(|r| r.i64(0))
        .transpose()
        .map(|n| n.unwrap_or(0))
}

/// Records that the effect keyed `key` was done with `result`; false when it already
/// was. Call it in the transaction that decides to do the effect, before doing it.
pub fn record_effect(conn: &mut dyn Conn, key: &str, result: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO journey_effects (key, result, done_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO NOTHING",
        &[Param::Text(key), Param::Text(result), Param::I64(now)],
    )? == 1)
}

/// The recorded result of an effect, if it was done.
pub fn effect(conn: &mut dyn Conn, key: &str) -> Result<Option<String>> {
    conn.query(
        "SELECT result FROM journey_effects WHERE key = $1",
        &[Param::Text(key)],
    )?
    .first()
    .map(|r| r.text(0))
    .transpose()
}

/// Replaces the recorded result of an effect (from `pending` to what was done).
pub fn settle_effect(conn: &mut dyn Conn, key: &str, result: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE journey_effects SET result = $1, done_at = $2 WHERE key = $3",
        &[Param::Text(result), Param::I64(now), Param::Text(key)],
    )?;
    Ok(())
}

/// Forgets an effect that was not done after all (a send deferred by a cap or quiet
/// hours is decided afresh when it comes due).
pub fn forget_effect(conn: &mut dyn Conn, key: &str) -> Result<()> {
    conn.execute("DELETE FROM journey_effects WHERE key = $1", &[Param::Text(key)])?;
    Ok(())
}

/// Releases every lease (a single process starting again after a crash: nobody else
/// holds them). Returns how many were released.
pub fn release_leases(conn: &mut dyn Conn) -> Result<u64> {
    conn.execute(
        "UPDATE journey_timers SET lease_until = 0 WHERE lease_until > 0",
        &[],
    )
}
