//! Leases: a role only one process of a deployment may hold at a time (the audience
//! transitions recorder). A holder renews its lease before it runs out; once it has run
//! out (the holder crashed or lost the database), any process may claim it.
//!
//! A holder that is slow to renew may lose its lease without knowing it, so every write
//! that only the holder may make checks [`holds`] in the same write transaction (a
//! fencing check): write transactions are serialised by the writer lock, so a claim by
//! another process and the stale holder's write cannot interleave.

use crate::conn::{Conn, Param, Sql};
use crate::Result;

/// Claims or renews `name` for `holder` until `now + ttl_ms` when it is free, expired
/// or already `holder`'s; returns whether `holder` holds it now. Call in a write
/// transaction.
pub fn claim(conn: &mut dyn Conn, name: &str, holder: &str, now: i64, ttl_ms: i64) -> Result<bool> {
    let until = now.saturating_add(ttl_ms);
    let rows = conn.query(
        "INSERT INTO leases (name, holder, until_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
         WHERE leases.holder = excluded.holder OR leases.until_ms < $4 RETURNING holder",
        &[
            Param::Text(name),
            Param::Text(holder),
            Param::I64(until),
            Param::I64(now),
        ],
    )?;
    Ok(!rows.is_empty())
}

/// Whether `holder` holds `name` at `now` (the fencing check of a holder-only write).
pub fn holds(conn: &mut dyn Conn, name: &str, holder: &str, now: i64) -> Result<bool> {
    Ok(!conn
        .query(
            "SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND until_ms >= $3",
            &[Param::Text(name), Param::Text(holder), Param::I64(now)],
        )?
        .is_empty())
}

/// Gives `name` up if `holder` holds it (a graceful stop), so another process may claim
/// it at once.
pub fn release(conn: &mut dyn Conn, name: &str, holder: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM leases WHERE name = $1 AND holder = $2",
        &[Param::Text(name), Param::Text(holder)],
    )?;
    Ok(())
}

/// The current holder of `name` and until when, if any row exists.
pub fn holder(conn: &mut dyn Conn, name: &str) -> Result<Option<(String, i64)>> {
    conn.query(
        "SELECT holder, until_ms FROM leases WHERE name = $1",
        &[Param::Text(name)],
    )?
    .first()
    .map(|r| Ok((r.text(0)?, r.i64(1)?)))
    .transpose()
}
