//! Orders as the shop KPIs read them: every order with a user id, with its amounts and
//! its status (typed: the stored status text stays here).

use crate::conn::Sql;
use flywheel_core::{Fen, OrderStatus};

use crate::conn::{Conn, Row};
use crate::{Error, Result};

/// One order of a known user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFactRow {
    /// The buyer's user id.
    pub user_id: String,
    /// When placed (ms).
    pub placed_at: i64,
    /// Amount paid.
    pub total: Fen,
    /// Refunded so far.
    pub refunded: Fen,
    /// Its derived status.
    pub status: OrderStatus,
}

const COLUMNS: &str = "user_id, placed_at, total, refunded, status";

fn row_of(r: &Row) -> Result<OrderFactRow> {
    let status = r.text(4)?;
    Ok(OrderFactRow {
        user_id: r.text(0)?,
        placed_at: r.i64(1)?,
        total: Fen(r.i64(2)?),
        refunded: Fen(r.i64(3)?),
        status: OrderStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("order status {status:?}")))?,
    })
}

/// Every order that has a user id (orders of anonymous buyers have no customer to count).
pub fn of_known_users(conn: &mut dyn Conn) -> Result<Vec<OrderFactRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM orders WHERE user_id IS NOT NULL"),
        &[],
    )?
    .iter()
    .map(row_of)
    .collect()
}
