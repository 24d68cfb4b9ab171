//! The journey engine's position in the event log and the events it reads behind it:
//! triggers, awaited events and goals are looked at in `seq` order, and the cursor moves
//! in the transaction that reacted to them.

use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

/// The settings key of the engine's position in the event log.
const EVENT_CURSOR: &str = "journeys_event_cursor";

/// The engine's position in the event log (events with a greater `seq` are not yet
/// looked at for triggers, awaited events and goals).
pub fn event_cursor(conn: &mut dyn Conn) -> Result<Option<i64>> {
    crate::log_cursor::get(conn, EVENT_CURSOR)
}

/// Moves the event cursor.
pub fn set_event_cursor(conn: &mut dyn Conn, seq: i64) -> Result<()> {
    crate::log_cursor::set(conn, EVENT_CURSOR, seq)
}

/// The highest event sequence number stored (0 when none).
pub fn last_event_seq(conn: &mut dyn Conn) -> Result<i64> {
    crate::log_cursor::last_seq(conn)
}

/// A stored track event with a user, for the trigger tail.
#[derive(Debug, Clone)]
pub struct TailEvent {
    /// Sequence number.
    pub seq: i64,
    /// Message id.
    pub message_id: String,
    /// Event name (track events).
    pub name: String,
    /// The shop's user id.
    pub user_id: String,
    /// The event JSON.
    pub body: String,
    /// Event time (ms).
    pub ts: i64,
    /// Sent with a client-scoped write key (a browser or app): its orders, refunds and
    /// cancellations are behaviour only.
    pub from_client: bool,
}

/// Columns [`tail_event_of`] reads, in its order.
const TAIL_SELECT: &str =
    "SELECT e.seq, e.message_id, e.name, e.user_id, e.body, e.ts, e.kind, k.scope FROM events e \
     LEFT JOIN write_keys k ON k.id = e.source";

/// The row's event when it is a track event with a name and a user (else `None`), with
/// its `seq`.
fn tail_event_of(r: &Row) -> Result<(i64, Option<TailEvent>)> {
    let seq = r.i64(0)?;
    let (Some(name), Some(user)) = (r.opt_text(2)?, r.opt_text(3)?) else {
        return Ok((seq, None));
    };
    if r.text(6)? != flywheel_core::EventKind::Track.as_str() {
        return Ok((seq, None));
    }
    Ok((
        seq,
        Some(TailEvent {
            seq,
            message_id: r.text(1)?,
            name,
            user_id: user,
            body: r.text(4)?,
            ts: r.i64(5)?,
            from_client: r.opt_text(7)?.as_deref() == Some(crate::KeyScope::Client.as_str()),
        }),
    ))
}

/// Up to `limit` events after `after`, of which the track events with a user are
/// returned in order, with the highest sequence number read (events without a user
/// still move the cursor).
pub fn events_after(conn: &mut dyn Conn, after: i64, limit: i64) -> Result<(Vec<TailEvent>, i64)> {
    let rows = conn.query(
        &format!("{TAIL_SELECT} WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"),
        &[Param::I64(after), Param::I64(limit)],
    )?;
    let mut last = after;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let (seq, event) = tail_event_of(r)?;
        last = last.max(seq);
        out.extend(event);
    }
    Ok((out, last))
}
