//! What the order hooks (points, referral rewards, claw-backs) read from the event log:
//! for each event after a position, the order it placed and the refund or cancellation
//! it recorded, found by the event's message id.

use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

/// One event of the log with the commerce it recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    /// Its position in the log.
    pub seq: i64,
    /// Its message id.
    pub message_id: String,
    /// Its user, when known.
    pub user_id: Option<String>,
    /// The order it placed: `(order id, total in fen)`.
    pub order: Option<(String, i64)>,
    /// The adjustment it recorded: `(order id, kind, amount in fen when partial)`.
    pub adjustment: Option<(String, String, Option<i64>)>,
}

const SELECT: &str =
    "SELECT e.seq, e.message_id, e.user_id, o.order_id, o.total, a.order_id, a.kind, a.amount \
     FROM (SELECT seq, message_id, user_id FROM events WHERE seq > $1 ORDER BY seq LIMIT $2) e \
     LEFT JOIN orders o ON o.message_id = e.message_id \
     LEFT JOIN order_adjustments a ON a.message_id = e.message_id \
     ORDER BY e.seq";

fn event_of(r: &Row) -> Result<OrderEvent> {
    let order = match r.opt_text(3)? {
        Some(id) => Some((id, r.i64(4)?)),
        None => None,
    };
    let adjustment = match r.opt_text(5)? {
        Some(id) => Some((id, r.text(6)?, r.opt_i64(7)?)),
        None => None,
    };
    Ok(OrderEvent {
        seq: r.i64(0)?,
        message_id: r.text(1)?,
        user_id: r.opt_text(2)?,
        order,
        adjustment,
    })
}

/// At most `limit` events after `after`, in `seq` order, each with its order and adjustment.
pub fn events_after(conn: &mut dyn Conn, after: i64, limit: i64) -> Result<Vec<OrderEvent>> {
    conn.query(SELECT, &[Param::I64(after), Param::I64(limit)])?
        .iter()
        .map(event_of)
        .collect()
}

/// The event at `seq` with its order and adjustment, if stored.
pub fn event_at(conn: &mut dyn Conn, seq: i64) -> Result<Option<OrderEvent>> {
    Ok(events_after(conn, seq.saturating_sub(1), 1)?
        .into_iter()
        .find(|e| e.seq == seq))
}
