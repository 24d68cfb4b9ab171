//! What the coupon service reads and writes: templates with their issued count, coupon
//! instances with their state, and the audit trail of every change. Callers run these
//! inside one write transaction ([`crate::Store::write_with`]); state changes are
//! conditional updates, so a change whose precondition no longer holds changes nothing.

use crate::column_enum::column_enum;
use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

column_enum! {
    /// The stored state of a coupon (`coupons.state`); what a user sees (expired,
    /// unclaimed, a lapsed reservation) is derived from it and the time by the coupon
    /// service.
    pub enum CouponRowState("coupon state") {
        /// Issued (or a code generated), not reserved or spent.
        Issued = "issued",
        /// Held for an order until `reserved_until`.
        Reserved = "reserved",
        /// Spent on an order.
        Redeemed = "redeemed",
        /// Taken back.
        Void = "void",
    }
}

column_enum! {
    /// What happened to a coupon, as its audit trail records it (`coupon_audit.action`).
    pub enum CouponAction("coupon audit action") {
        /// Generated as a code.
        Generated = "generated",
        /// Issued to a user.
        Issued = "issued",
        /// A code claimed by a user.
        Claimed = "claimed",
        /// Held for an order.
        Reserved = "reserved",
        /// Spent on an order.
        Redeemed = "redeemed",
        /// A reservation released.
        Released = "released",
        /// Given back after a refund.
        Returned = "returned",
        /// Taken back.
        Voided = "voided",
    }
}

/// A stored template: `(id, JSON body, total quantity, per-user limit, issued so far)`.
pub type TemplateRow = (String, String, Option<i64>, Option<i64>, i64);

/// A stored coupon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponRow {
    /// Coupon id.
    pub id: String,
    /// Its template.
    pub template_id: String,
    /// The user holding it (`None`: a code not claimed yet).
    pub owner: Option<String>,
    /// Redemption code, if issued as a code.
    pub code: Option<String>,
    /// Its stored state.
    pub state: CouponRowState,
    /// Usable from (ms).
    pub valid_from: Option<i64>,
    /// Usable until (ms, exclusive).
    pub valid_until: Option<i64>,
    /// The order reserving or redeeming it.
    pub order_id: Option<String>,
    /// A reservation lapses at (ms).
    pub reserved_until: Option<i64>,
    /// Issued at (ms).
    pub issued_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Its own scope (pricing scope JSON) when narrower than its template's (a journey's
    /// cart coupon); `None`: the template's.
    pub scope: Option<String>,
}

const COLUMNS: &str =
    "id, template_id, owner, code, state, valid_from, valid_until, order_id, reserved_until, \
     issued_at, updated_at, scope";

fn coupon_of(r: &Row) -> Result<CouponRow> {
    Ok(CouponRow {
        id: r.text(0)?,
        template_id: r.text(1)?,
        owner: r.opt_text(2)?,
        code: r.opt_text(3)?,
        state: r.text(4)?.parse()?,
        valid_from: r.opt_i64(5)?,
        valid_until: r.opt_i64(6)?,
        order_id: r.opt_text(7)?,
        reserved_until: r.opt_i64(8)?,
        issued_at: r.i64(9)?,
        updated_at: r.i64(10)?,
        scope: r.opt_text(11)?,
    })
}

/// Stores a new template; false when the id is taken.
pub fn insert_template(
    conn: &mut dyn Conn,
    id: &str,
    body: &str,
    total: Option<i64>,
    per_user: Option<i64>,
    now: i64,
) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO coupon_templates (id, body, total_quantity, per_user_limit, issued, created_at) \
         VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (id) DO NOTHING",
        &[
            Param::Text(id),
            Param::Text(body),
            Param::OptI64(total),
            Param::OptI64(per_user),
            Param::I64(now),
        ],
    )? == 1)
}

/// One template.
pub fn template(conn: &mut dyn Conn, id: &str) -> Result<Option<TemplateRow>> {
    let rows = conn.query(
        "SELECT id, body, total_quantity, per_user_limit, issued FROM coupon_templates WHERE id = $1",
        &[Param::Text(id)],
    )?;
    rows.first()
        .map(|r| Ok((r.text(0)?, r.text(1)?, r.opt_i64(2)?, r.opt_i64(3)?, r.i64(4)?)))
        .transpose()
}

/// Every template, oldest first.
pub fn templates(conn: &mut dyn Conn) -> Result<Vec<TemplateRow>> {
    conn.query(
        "SELECT id, body, total_quantity, per_user_limit, issued FROM coupon_templates ORDER BY created_at, id",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.opt_i64(2)?, r.opt_i64(3)?, r.i64(4)?)))
    .collect()
}

/// Takes `n` from a template's total quantity; false when not that many are left.
pub fn take_quantity(conn: &mut dyn Conn, template_id: &str, n: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE coupon_templates SET issued = issued + $1 \
         WHERE id = $2 AND (total_quantity IS NULL OR issued + $1 <= total_quantity)",
        &[Param::I64(n), Param::Text(template_id)],
    )? == 1)
}

/// How many coupons of a template a user holds or has held.
pub fn count_owned(conn: &mut dyn Conn, template_id: &str, owner: &str) -> Result<i64> {
    conn.query(
        "SELECT COUNT(*) FROM coupons WHERE template_id = $1 AND owner = $2",
        &[Param::Text(template_id), Param::Text(owner)],
    )?
    .first()
    .map_or(Ok(0), |r| r.i64(0))
}

/// Stores a new coupon.
pub fn insert_coupon(conn: &mut dyn Conn, c: &CouponRow) -> Result<()> {
    conn.execute(
        &format!(
            "INSERT INTO coupons ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ),
        &[
            Param::Text(&c.id),
            Param::Text(&c.template_id),
            Param::OptText(c.owner.as_deref()),
            Param::OptText(c.code.as_deref()),
            Param::Text(c.state.as_str()),
            Param::OptI64(c.valid_from),
            Param::OptI64(c.valid_until),
            Param::OptText(c.order_id.as_deref()),
            Param::OptI64(c.reserved_until),
            Param::I64(c.issued_at),
            Param::I64(c.updated_at),
            Param::OptText(c.scope.as_deref()),
        ],
    )?;
    Ok(())
}

/// One coupon by id.
pub fn coupon(conn: &mut dyn Conn, id: &str) -> Result<Option<CouponRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM coupons WHERE id = $1"),
        &[Param::Text(id)],
    )?
    .first()
    .map(coupon_of)
    .transpose()
}

/// One coupon by its code.
pub fn coupon_by_code(conn: &mut dyn Conn, code: &str) -> Result<Option<CouponRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM coupons WHERE code = $1"),
        &[Param::Text(code)],
    )?
    .first()
    .map(coupon_of)
    .transpose()
}

/// A user's coupons, newest first.
pub fn coupons_of(conn: &mut dyn Conn, owner: &str) -> Result<Vec<CouponRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM coupons WHERE owner = $1 ORDER BY issued_at DESC, id"),
        &[Param::Text(owner)],
    )?
    .iter()
    .map(coupon_of)
    .collect()
}

/// Writes a coupon's changed fields (state, owner, order, reservation) when its current
/// state and order are still `expect_state` / `expect_order`; false when they are not.
pub fn update(
    conn: &mut dyn Conn,
    c: &CouponRow,
    expect_state: CouponRowState,
    expect_order: Option<&str>,
) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE coupons SET state = $1, owner = $2, order_id = $3, reserved_until = $4, updated_at = $5 \
         WHERE id = $6 AND state = $7 AND COALESCE(order_id, '') = $8",
        &[
            Param::Text(c.state.as_str()),
            Param::OptText(c.owner.as_deref()),
            Param::OptText(c.order_id.as_deref()),
            Param::OptI64(c.reserved_until),
            Param::I64(c.updated_at),
            Param::Text(&c.id),
            Param::Text(expect_state.as_str()),
            Param::Text(expect_order.unwrap_or("")),
        ],
    )? == 1)
}

/// Appends to a coupon's audit trail.
pub fn audit(
    conn: &mut dyn Conn,
    coupon_id: &str,
    action: CouponAction,
    actor: Option<&str>,
    order_id: Option<&str>,
    at: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO coupon_audit (coupon_id, action, actor, order_id, at) VALUES ($1, $2, $3, $4, $5)",
        &[
            Param::Text(coupon_id),
            Param::Text(action.as_str()),
            Param::OptText(actor),
            Param::OptText(order_id),
            Param::I64(at),
        ],
    )?;
    Ok(())
}

/// One audit entry: `(action, actor, order id, at)`.
pub type AuditRow = (CouponAction, Option<String>, Option<String>, i64);

/// A coupon's audit trail, oldest first.
pub fn audit_of(conn: &mut dyn Conn, coupon_id: &str) -> Result<Vec<AuditRow>> {
    conn.query(
        "SELECT action, actor, order_id, at FROM coupon_audit WHERE coupon_id = $1 ORDER BY seq",
        &[Param::Text(coupon_id)],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?.parse()?, r.opt_text(1)?, r.opt_text(2)?, r.i64(3)?)))
    .collect()
}

/// Sets a coupon's validity window (a code's window starts when it is claimed).
pub fn set_window(conn: &mut dyn Conn, id: &str, from: i64, until: i64) -> Result<()> {
    conn.execute(
        "UPDATE coupons SET valid_from = $1, valid_until = $2 WHERE id = $3",
        &[Param::I64(from), Param::I64(until), Param::Text(id)],
    )?;
    Ok(())
}
