//! What flash sales read and write: sales, and their orders — `held` (stock taken, not
//! paid yet, until `expires_at`), `paid`, `released`. State changes are conditional
//! updates; parameters are named in ascending order of first use (SQLite).

use crate::column_enum::column_enum;
use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

column_enum! {
    /// The state of a flash-sale order (`flash_orders.state`).
    pub enum FlashOrderState("flash order state") {
        /// Stock taken, not paid yet, until `expires_at`.
        Held = "held",
        /// Paid.
        Paid = "paid",
        /// The hold lapsed and its units went back.
        Released = "released",
    }
}

/// A stored flash-sale order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashOrderRow {
    /// Order id.
    pub id: String,
    /// The sale.
    pub sale_id: String,
    /// The buyer.
    pub user_id: String,
    /// Units.
    pub quantity: i64,
    /// Its state.
    pub state: FlashOrderState,
    /// An unpaid hold lapses at (ms).
    pub expires_at: i64,
    /// Created (ms).
    pub created_at: i64,
}

const COLUMNS: &str = "id, sale_id, user_id, quantity, state, expires_at, created_at";

fn order_of(r: &Row) -> Result<FlashOrderRow> {
    Ok(FlashOrderRow {
        id: r.text(0)?,
        sale_id: r.text(1)?,
        user_id: r.text(2)?,
        quantity: r.i64(3)?,
        state: r.text(4)?.parse()?,
        expires_at: r.i64(5)?,
        created_at: r.i64(6)?,
    })
}

/// Stores a sale; false when the id is taken.
pub fn insert_sale(conn: &mut dyn Conn, id: &str, body: &str, stock: i64, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO flash_sales (id, body, stock, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        &[Param::Text(id), Param::Text(body), Param::I64(stock), Param::I64(now)],
    )? == 1)
}

/// Every sale: `(id, JSON body)`.
pub fn sales(conn: &mut dyn Conn) -> Result<Vec<(String, String)>> {
    conn.query("SELECT id, body FROM flash_sales ORDER BY created_at, id", &[])?
        .iter()
        .map(|r| Ok((r.text(0)?, r.text(1)?)))
        .collect()
}

/// Stores a new order.
pub fn insert_order(conn: &mut dyn Conn, o: &FlashOrderRow) -> Result<()> {
    conn.execute(
        &format!("INSERT INTO flash_orders ({COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"),
        &[
            Param::Text(&o.id),
            Param::Text(&o.sale_id),
            Param::Text(&o.user_id),
            Param::I64(o.quantity),
            Param::Text(o.state.as_str()),
            Param::I64(o.expires_at),
            Param::I64(o.created_at),
        ],
    )?;
    Ok(())
}

/// One order.
pub fn order(conn: &mut dyn Conn, id: &str) -> Result<Option<FlashOrderRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM flash_orders WHERE id = $1"),
        &[Param::Text(id)],
    )?
    .first()
    .map(order_of)
    .transpose()
}

/// The orders of a sale that hold stock (held or paid).
pub fn live_orders(conn: &mut dyn Conn, sale_id: &str) -> Result<Vec<FlashOrderRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM flash_orders WHERE sale_id = $1 AND state IN ($2, $3)"),
        &[
            Param::Text(sale_id),
            Param::Text(FlashOrderState::Held.as_str()),
            Param::Text(FlashOrderState::Paid.as_str()),
        ],
    )?
    .iter()
    .map(order_of)
    .collect()
}

/// Held orders whose hold lapsed at or before `now`.
pub fn lapsed(conn: &mut dyn Conn, now: i64) -> Result<Vec<FlashOrderRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM flash_orders WHERE state = $1 AND expires_at <= $2"),
        &[Param::Text(FlashOrderState::Held.as_str()), Param::I64(now)],
    )?
    .iter()
    .map(order_of)
    .collect()
}

/// Moves an order from `from` to `to`; false when it is no longer in `from`.
pub fn transition(
    conn: &mut dyn Conn,
    id: &str,
    from: FlashOrderState,
    to: FlashOrderState,
    now: i64,
) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE flash_orders SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
        &[
            Param::Text(to.as_str()),
            Param::I64(now),
            Param::Text(id),
            Param::Text(from.as_str()),
        ],
    )? == 1)
}
