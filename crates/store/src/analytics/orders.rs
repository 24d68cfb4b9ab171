//! Orders as the shop KPIs read them: every order with its person ([`crate::person`]:
//! guest orders, placed with an anonymous id only, belong to that anonymous person or to
//! whoever it was later merged into), its amounts and its status (typed: the stored
//! status text stays here).

use crate::conn::Sql;
use flywheel_core::{Fen, OrderStatus};

use crate::conn::{Conn, Row};
use crate::person::ORDER_PERSON;
use crate::{Error, Result};

/// One order of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFactRow {
    /// The buyer (profile id).
    pub person: String,
    /// When placed (ms).
    pub placed_at: i64,
    /// Amount paid.
    pub total: Fen,
    /// Refunded so far.
    pub refunded: Fen,
    /// Its derived status.
    pub status: OrderStatus,
}

fn row_of(r: &Row) -> Result<OrderFactRow> {
    let status = r.text(4)?;
    Ok(OrderFactRow {
        person: r.text(0)?,
        placed_at: r.i64(1)?,
        total: Fen(r.i64(2)?),
        refunded: Fen(r.i64(3)?),
        status: OrderStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("order status {status:?}")))?,
    })
}

/// Every order, guest orders included, with its person.
pub fn all(conn: &mut dyn Conn) -> Result<Vec<OrderFactRow>> {
    conn.query(
        &format!("SELECT {ORDER_PERSON}, o.placed_at, o.total, o.refunded, o.status FROM orders o"),
        &[],
    )?
    .iter()
    .map(row_of)
    .collect()
}
