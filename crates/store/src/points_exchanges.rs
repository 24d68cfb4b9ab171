//! Points-for-coupon exchanges (migration 019), by the client's idempotency key.
//!
//! The loyalty exchange writes its row, the ledger's spend and the coupon in one write
//! transaction, so a key is either fully done (the row holds the first answer) or
//! absent. A retry reads the row back ([`by_key`]) and answers what was saved;
//! [`insert`] is `ON CONFLICT DO NOTHING` so two writers of one key cannot both win.

use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

/// A stored exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRow {
    /// The client's idempotency key.
    pub key: String,
    /// Whose points were spent.
    pub user_id: String,
    /// The coupon template bought.
    pub template_id: String,
    /// The points spent.
    pub points: i64,
    /// The coupon issued.
    pub coupon_id: String,
    /// The answer given the first time (JSON text), replayed to retries.
    pub response: String,
    /// When it was done (ms).
    pub created_at: i64,
}

const COLUMNS: &str = "key, user_id, template_id, points, coupon_id, response, created_at";

fn row_of(r: &Row) -> Result<ExchangeRow> {
    Ok(ExchangeRow {
        key: r.text(0)?,
        user_id: r.text(1)?,
        template_id: r.text(2)?,
        points: r.i64(3)?,
        coupon_id: r.text(4)?,
        response: r.text(5)?,
        created_at: r.i64(6)?,
    })
}

/// The exchange done under `key`, if any.
pub fn by_key(conn: &mut dyn Conn, key: &str) -> Result<Option<ExchangeRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM points_exchanges WHERE key = $1"),
        &[Param::Text(key)],
    )?
    .first()
    .map(row_of)
    .transpose()
}

/// Records a done exchange; false (nothing written) when its key is already recorded.
pub fn insert(conn: &mut dyn Conn, e: &ExchangeRow) -> Result<bool> {
    Ok(conn.execute(
        &format!(
            "INSERT INTO points_exchanges ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (key) DO NOTHING"
        ),
        &[
            Param::Text(&e.key),
            Param::Text(&e.user_id),
            Param::Text(&e.template_id),
            Param::I64(e.points),
            Param::Text(&e.coupon_id),
            Param::Text(&e.response),
            Param::I64(e.created_at),
        ],
    )? == 1)
}

/// How many exchanges `user_id` made (for tests and reports).
pub fn count_of(conn: &mut dyn Conn, user_id: &str) -> Result<i64> {
    conn.query(
        "SELECT COUNT(*) FROM points_exchanges WHERE user_id = $1",
        &[Param::Text(user_id)],
    )?
    .first()
    .map_or(Ok(0), |r| r.i64(0))
}
