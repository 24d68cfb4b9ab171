//! Delivery-status callbacks already applied (migration 017), so a signed callback
//! replayed while its signature is still fresh is refused instead of applied again.
//!
//! A callback is known by a key its caller derives from what the signature covers (the
//! channel, the signed timestamp and the body). Each key is kept until the signature it
//! came with could no longer verify (`expires_at`); every claim first prunes the keys
//! past that point, so the table holds at most one tolerance window of callbacks.
//! Called inside the write transaction that applies the callback, so the claim and its
//! effect are stored together or not at all.

use crate::conn::Sql;
use crate::conn::{Conn, Param};
use crate::Result;

/// Records `key` as applied, seen at `now` (ms) and kept until `expires_at` (ms).
/// Keys that expired before `now` are removed first. True: the key is new; false: it
/// was already claimed (a replay), and nothing is written.
pub fn claim(conn: &mut dyn Conn, key: &str, channel: &str, now: i64, expires_at: i64) -> Result<bool> {
    conn.execute(
        "DELETE FROM callback_replays WHERE expires_at < $1",
        &[Param::I64(now)],
    )?;
    let inserted = conn.execute(
        "INSERT INTO callback_replays (key, channel, seen_at, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO NOTHING",
        &[
            Param::Text(key),
            Param::Text(channel),
            Param::I64(now),
            Param::I64(expires_at),
        ],
    )?;
    Ok(inserted == 1)
}

/// How many keys are kept (for tests and metrics).
pub fn count(conn: &mut dyn Conn) -> Result<i64> {
    conn.query("SELECT COUNT(*) FROM callback_replays", &[])?
        .first()
        .map(|r| r.i64(0))
        .transpose()
        .map(|n| n.unwrap_or(0))
}
