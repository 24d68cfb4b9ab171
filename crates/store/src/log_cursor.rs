//! Positions of the readers that follow the event log in `seq` order (the journeys'
//! trigger tail, the order hooks): each keeps the last `seq` it has dealt with in
//! `settings` under its own key, written in the transaction that deals with the events.

use crate::conn::Sql;
use crate::conn::{Conn, Param};
use crate::{Error, Result};

/// The settings key of the order hooks' cursor (points, referral rewards, claw-backs).
pub const ORDER_HOOKS: &str = "order_hooks_cursor";

/// How many events of the log the reader at `key` has yet to look at (0 before it first
/// started: it starts at the end).
pub fn lag(conn: &mut dyn Conn, key: &str) -> Result<i64> {
    let last = last_seq(conn)?;
    Ok(get(conn, key)?.map_or(0, |at| (last - at).max(0)))
}

/// The highest event `seq` stored (0 when none).
pub fn last_seq(conn: &mut dyn Conn) -> Result<i64> {
    Ok(conn
        .query("SELECT MAX(seq) FROM events", &[])?
        .first()
        .map(|r| r.opt_i64(0))
        .transpose()?
        .flatten()
        .unwrap_or(0))
}

/// The position stored under `key`, if any.
pub fn get(conn: &mut dyn Conn, key: &str) -> Result<Option<i64>> {
    conn.query("SELECT value FROM settings WHERE key = $1", &[Param::Text(key)])?
        .first()
        .map(|r| r.text(0))
        .transpose()?
        .map(|t| {
            t.parse::<i64>()
                .map_err(|_| Error::Corrupt(format!("{key} {t:?}")))
        })
        .transpose()
}

/// Stores the position under `key`.
pub fn set(conn: &mut dyn Conn, key: &str, seq: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[Param::Text(key), Param::Text(&seq.to_string())],
    )?;
    Ok(())
}
