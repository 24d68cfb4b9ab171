//! What the audience engine reads and writes: a snapshot of profile facts to rebuild
//! its index at start, events by name (to backfill a new event counter), tag and
//! segment definitions, and manual tag assignments.

use crate::conn::Sql;
use crate::conn::{Conn, Param};
use crate::person::{EVENT_PROFILE, ORDER_PROFILE};
use crate::Result;

/// A profile row: `(id, first_active, last_active)`: its first and last customer event
/// (`None` while it has only the system's own writes; [`crate::activity`]).
pub type ProfileRow = (String, Option<i64>, Option<i64>);
/// A trait row: `(profile, key, JSON value, ts, messageId)`.
pub type TraitRow = (String, String, String, i64, String);

/// One order for the audience engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Owning profile.
    pub profile_id: String,
    /// Order id.
    pub order_id: String,
    /// Placed at (ms).
    pub placed_at: i64,
    /// Amount paid (fen).
    pub total: i64,
    /// Refunded (fen).
    pub refunded: i64,
    /// Derived status.
    pub status: flywheel_core::OrderStatus,
    /// Discount (fen).
    pub discount: i64,
    /// Coupon code, if any.
    pub coupon: Option<String>,
}

/// One order line for the audience engine (what segments ask of `products[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRow {
    /// The order it belongs to.
    pub order_id: String,
    /// `product_id`.
    pub product_id: Option<String>,
    /// `sku`.
    pub sku: Option<String>,
    /// `category`.
    pub category: Option<String>,
    /// `brand`.
    pub brand: Option<String>,
}

/// One event for the audience engine: `(profile, name, ts, messageId, JSON body)`.
pub type EventRow = (String, String, i64, String, String);

/// All profiles, with their customer activity span.
pub fn profiles(conn: &mut dyn Conn) -> Result<Vec<ProfileRow>> {
    conn.query(
        "SELECT id, first_active, last_active FROM profiles ORDER BY id",
        &[],
    )?
    .into_iter()
    .map(|r| Ok((r.text(0)?, r.opt_i64(1)?, r.opt_i64(2)?)))
    .collect()
}

/// All profile traits.
pub fn traits(conn: &mut dyn Conn) -> Result<Vec<TraitRow>> {
    conn.query(
        "SELECT profile_id, key, value, ts, message_id FROM profile_traits",
        &[],
    )?
    .into_iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.i64(3)?, r.text(4)?)))
    .collect()
}

/// All orders with their owning profile.
pub fn orders(conn: &mut dyn Conn) -> Result<Vec<OrderRow>> {
    let sql = format!(
        "SELECT {ORDER_PROFILE}, o.order_id, o.placed_at, o.total, o.refunded, o.status, o.discount, o.coupon \
         FROM orders o"
    );
    let mut out = Vec::new();
    for r in conn.query(&sql, &[])? {
        let Some(profile_id) = r.opt_text(0)? else {
            continue;
        };
        out.push(OrderRow {
            profile_id,
            order_id: r.text(1)?,
            placed_at: r.i64(2)?,
            total: r.i64(3)?,
            refunded: r.i64(4)?,
            status: {
                let s = r.text(5)?;
                flywheel_core::OrderStatus::parse(&s)
                    .ok_or_else(|| crate::Error::Corrupt(format!("unknown order status {s:?}")))?
            },
            discount: r.i64(6)?,
            coupon: r.opt_text(7)?,
        });
    }
    Ok(out)
}

/// All order lines.
pub fn order_lines(conn: &mut dyn Conn) -> Result<Vec<LineRow>> {
    conn.query(
        "SELECT order_id, product_id, sku, category, brand FROM order_lines ORDER BY order_id, line_no",
        &[],
    )?
    .into_iter()
    .map(|r| {
        Ok(LineRow {
            order_id: r.text(0)?,
            product_id: r.opt_text(1)?,
            sku: r.opt_text(2)?,
            category: r.opt_text(3)?,
            brand: r.opt_text(4)?,
        })
    })
    .collect()
}

/// Events named one of `names` at or after `since`, with their profile, in no particular
/// order (what reads them folds order-independent facts: counts, latest times, sets).
pub fn events_named(conn: &mut dyn Conn, names: &[String], since: i64) -> Result<Vec<EventRow>> {
    let sql = format!(
        "SELECT {EVENT_PROFILE}, e.name, e.ts, e.message_id, e.body FROM events e WHERE e.name = $1 AND e.ts >= $2"
    );
    let mut out = Vec::new();
    for name in names {
        for r in conn.query(&sql, &[Param::Text(name), Param::I64(since)])? {
            if let Some(p) = r.opt_text(0)? {
                out.push((p, r.text(1)?, r.i64(2)?, r.text(3)?, r.text(4)?));
            }
        }
    }
    Ok(out)
}

/// Stored definitions of `kind` (`tag`, `segment`): `(name, JSON body)`.
pub fn definitions(conn: &mut dyn Conn, kind: &str) -> Result<Vec<(String, String)>> {
    conn.query(
        "SELECT name, body FROM audience_definitions WHERE kind = $1 ORDER BY created_at, name",
        &[Param::Text(kind)],
    )?
    .into_iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?)))
    .collect()
}

/// Creates or replaces a definition.
pub fn put_definition(conn: &mut dyn Conn, kind: &str, name: &str, body: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO audience_definitions (kind, name, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        &[Param::Text(kind), Param::Text(name), Param::Text(body), Param::I64(now)],
    )?;
    Ok(())
}

/// Deletes a definition; returns whether it existed.
pub fn delete_definition(conn: &mut dyn Conn, kind: &str, name: &str) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM audience_definitions WHERE kind = $1 AND name = $2",
        &[Param::Text(kind), Param::Text(name)],
    )? > 0)
}

/// Adds (or with `remove`, removes) a manual tag on profiles.
pub fn set_manual_tag(
    conn: &mut dyn Conn,
    tag: &str,
    profiles: &[String],
    remove: bool,
    now: i64,
) -> Result<()> {
    for p in profiles {
        if remove {
            conn.execute(
                "DELETE FROM manual_tags WHERE tag = $1 AND profile_id = $2",
                &[Param::Text(tag), Param::Text(p)],
            )?;
        } else {
            conn.execute(
                "INSERT INTO manual_tags (tag, profile_id, at) VALUES ($1, $2, $3) ON CONFLICT (tag, profile_id) DO NOTHING",
                &[Param::Text(tag), Param::Text(p), Param::I64(now)],
            )?;
        }
    }
    Ok(())
}

/// Removes every assignment of a manual tag.
pub fn clear_manual_tag(conn: &mut dyn Conn, tag: &str) -> Result<()> {
    conn.execute("DELETE FROM manual_tags WHERE tag = $1", &[Param::Text(tag)])?;
    Ok(())
}

/// All manual tag assignments: `(tag, profile)`.
pub fn manual_tags(conn: &mut dyn Conn) -> Result<Vec<(String, String)>> {
    conn.query(
        "SELECT tag, profile_id FROM manual_tags ORDER BY tag, profile_id",
        &[],
    )?
    .into_iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?)))
    .collect()
}

/// An order adjustment: `(order_id, messageId, is_cancel, amount)`; `None` refunds the whole order.
pub type AdjustmentRow = (String, String, bool, Option<i64>);

/// All order adjustments.
pub fn adjustments(conn: &mut dyn Conn) -> Result<Vec<AdjustmentRow>> {
    conn.query(
        "SELECT order_id, message_id, kind, amount FROM order_adjustments ORDER BY at, message_id",
        &[],
    )?
    .into_iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)? == "cancel", r.opt_i64(3)?)))
    .collect()
}

/// Every user id with its profile: `(profile, user id)`.
pub fn user_ids(conn: &mut dyn Conn) -> Result<Vec<(String, String)>> {
    conn.query(
        "SELECT profile_id, id FROM identities WHERE id LIKE 'user:%'",
        &[],
    )?
    .into_iter()
    .map(|r| {
        let id = r.text(1)?;
        Ok((r.text(0)?, id.strip_prefix("user:").unwrap_or(&id).to_owned()))
    })
    .collect()
}

/// Every distinct event name received (track event names, page and screen names).
pub fn event_names(conn: &mut dyn Conn) -> Result<Vec<String>> {
    conn.query("SELECT DISTINCT name FROM events WHERE name IS NOT NULL", &[])?
        .into_iter()
        .map(|r| r.text(0))
        .collect()
}

/// The stored traits named `keys` (top-level keys), of every profile.
pub fn traits_keyed(conn: &mut dyn Conn, keys: &[String]) -> Result<Vec<TraitRow>> {
    let mut out = Vec::new();
    for key in keys {
        for r in conn.query(
            "SELECT profile_id, key, value, ts, message_id FROM profile_traits WHERE key = $1",
            &[Param::Text(key)],
        )? {
            out.push((r.text(0)?, r.text(1)?, r.text(2)?, r.i64(3)?, r.text(4)?));
        }
    }
    Ok(out)
}
