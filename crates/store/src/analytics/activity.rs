//! What customers did, as the shop reports read it from the event log: visitors,
//! sign-ups, activity times and event names. Identity is the event's own `user_id` (or
//! anonymous id for visitors), as the reports have always counted it. Only customer
//! events count: the system's own writes are left out ([`crate::activity`]).

use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

/// One event of someone: who (a user id, or for visits the anonymous id when there is
/// no user id) and when (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The user id (for visits: the user id, else the anonymous id).
    pub who: String,
    /// When (ms).
    pub at: i64,
}

fn seen_of(r: &Row) -> Result<Seen> {
    Ok(Seen {
        who: r.text(0)?,
        at: r.i64(1)?,
    })
}

/// One event of a known user with its name (`""` for unnamed calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedEvent {
    /// The user id.
    pub user_id: String,
    /// When (ms).
    pub at: i64,
    /// The event's name (track event or page/screen name), `""` when it has none.
    pub name: String,
}

/// The columns [`named_of`] reads.
pub(crate) const NAMED_COLUMNS: &str = "user_id, ts, COALESCE(name, '')";

/// A [`NamedEvent`] from a row of [`NAMED_COLUMNS`].
pub(crate) fn named_of(r: &Row) -> Result<NamedEvent> {
    Ok(NamedEvent {
        user_id: r.text(0)?,
        at: r.i64(1)?,
        name: r.text(2)?,
    })
}

/// A user's last activity before a period's start and before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastActivity {
    /// The user id.
    pub user_id: String,
    /// Their last event before the period's start (within the look-back), ms.
    pub before_from: Option<i64>,
    /// Their last event before the period's end, ms.
    pub before_to: Option<i64>,
}

/// Distinct visitors (user ids, else anonymous ids) with any event in `[from, to)`.
pub fn visitor_count(conn: &mut dyn Conn, from: i64, to: i64) -> Result<i64> {
    Ok(conn
        .query(
            "SELECT COUNT(DISTINCT COALESCE(user_id, anonymous_id)) FROM events WHERE ts >= $1 AND ts < $2 AND system_write = 0",
            &[Param::I64(from), Param::I64(to)],
        )?
        .first()
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0))
}

/// Every event in `[from, to)` as a visit: the user id, else the anonymous id, and when.
pub fn visits(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<Seen>> {
    conn.query(
        "SELECT COALESCE(user_id, anonymous_id), ts FROM events WHERE ts >= $1 AND ts < $2 AND system_write = 0",
        &[Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(seen_of)
    .collect()
}

/// Each known user's first track event named `name` (ms), all time.
pub fn first_track_of(conn: &mut dyn Conn, name: &str) -> Result<Vec<Seen>> {
    conn.query(
        "SELECT user_id, MIN(ts) FROM events WHERE kind = 'track' AND name = $1 AND user_id IS NOT NULL \
         GROUP BY user_id",
        &[Param::Text(name)],
    )?
    .iter()
    .map(seen_of)
    .collect()
}

/// Every event of a known user at or after `from`: who and when.
pub fn user_events_since(conn: &mut dyn Conn, from: i64) -> Result<Vec<Seen>> {
    conn.query(
        "SELECT user_id, ts FROM events WHERE user_id IS NOT NULL AND ts >= $1 AND system_write = 0",
        &[Param::I64(from)],
    )?
    .iter()
    .map(seen_of)
    .collect()
}

/// Every event of a known user at or after `from`, with its name.
pub fn named_events_since(conn: &mut dyn Conn, from: i64) -> Result<Vec<NamedEvent>> {
    conn.query(
        &format!(
            "SELECT {NAMED_COLUMNS} FROM events WHERE user_id IS NOT NULL AND ts >= $1 AND system_write = 0"
        ),
        &[Param::I64(from)],
    )?
    .iter()
    .map(named_of)
    .collect()
}

/// Each known user with an event in `[look_back_from, to)`: their last event before
/// `from` and their last event before `to`.
pub fn last_activity(
    conn: &mut dyn Conn,
    from: i64,
    look_back_from: i64,
    to: i64,
) -> Result<Vec<LastActivity>> {
    conn.query(
        "SELECT user_id, MAX(CASE WHEN ts < $1 THEN ts END), MAX(ts) FROM events \
         WHERE user_id IS NOT NULL AND ts >= $2 AND ts < $3 AND system_write = 0 GROUP BY user_id",
        &[Param::I64(from), Param::I64(look_back_from), Param::I64(to)],
    )?
    .iter()
    .map(|r| {
        Ok(LastActivity {
            user_id: r.text(0)?,
            before_from: r.opt_i64(1)?,
            before_to: r.opt_i64(2)?,
        })
    })
    .collect()
}
