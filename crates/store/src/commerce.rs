//! Materialising products, orders and order adjustments from accepted events, with
//! multi-row statements (one round trip per kind per chunk, which matters on PostgreSQL).

use crate::conn::Sql;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use flywheel_core::time::to_millis;
use flywheel_core::{Order, OrderAdjustment, OrderStatus, Product};

use crate::conn::{Conn, Param};
use crate::write::adjustment_kind;
use crate::{NewEvent, Result};

/// Applies the commerce parts of freshly inserted events.
pub(crate) fn apply(conn: &mut dyn Conn, events: &[&NewEvent]) -> Result<()> {
    upsert_products(conn, events)?;
    // The first completion of an order id wins, within the batch as in the store.
    let mut seen = BTreeSet::new();
    let orders: Vec<&Order> = events
        .iter()
        .filter_map(|e| e.order.as_ref())
        .filter(|o| seen.insert(o.order_id.as_str()))
        .collect();
    let adjustments: Vec<&OrderAdjustment> = events.iter().filter_map(|e| e.adjustment.as_ref()).collect();
    if orders.is_empty() && adjustments.is_empty() {
        return Ok(());
    }
    let placed = insert_orders(conn, &orders)?;
    insert_adjustments(conn, &adjustments)?;
    // Orders whose refund state may have changed: new orders and adjusted orders.
    let touched: BTreeSet<&str> = placed
        .iter()
        .map(String::as_str)
        .chain(adjustments.iter().map(|a| a.order_id.as_str()))
        .collect();
    recompute(conn, &touched.into_iter().collect::<Vec<_>>())
}

fn insert_orders(conn: &mut dyn Conn, orders: &[&Order]) -> Result<Vec<String>> {
    const COLS: usize = 13;
    let completed = OrderStatus::Completed.as_str();
    let mut params = Vec::with_capacity(orders.len() * COLS);
    for o in orders {
        params.extend([
            Param::Text(&o.order_id),
            Param::OptText(o.user_id.as_deref()),
            Param::OptText(o.anonymous_id.as_deref()),
            Param::Text(&o.currency),
            Param::I64(o.total.0),
            Param::I64(o.revenue.0),
            Param::I64(o.discount.0),
            Param::I64(o.shipping.0),
            Param::I64(o.tax.0),
            Param::OptText(o.coupon.as_deref()),
            Param::I64(to_millis(o.placed_at)),
            Param::Text(completed),
            Param::Text(&o.message_id),
        ]);
    }
    let mut placed = Vec::with_capacity(orders.len());
    for row in conn.insert_rows(
        "INSERT INTO orders (order_id, user_id, anonymous_id, currency, total, revenue, discount, \
         shipping, tax, coupon, placed_at, status, message_id)",
        COLS,
        "ON CONFLICT (order_id) DO NOTHING RETURNING order_id",
        &params,
    )? {
        placed.push(row.text(0)?);
    }
    let by_id: HashMap<&str, &Order> = orders.iter().map(|o| (o.order_id.as_str(), *o)).collect();
    let lines: Vec<(&str, i64, &flywheel_core::OrderLine)> = placed
        .iter()
        .filter_map(|id| by_id.get(id.as_str()))
        .flat_map(|o| {
            o.lines
                .iter()
                .enumerate()
                .map(|(i, l)| (o.order_id.as_str(), i as i64 + 1, l))
        })
        .collect();
    const LINE_COLS: usize = 9;
    let mut params = Vec::with_capacity(lines.len() * LINE_COLS);
    for (order_id, line_no, l) in &lines {
        params.extend([
            Param::Text(order_id),
            Param::I64(*line_no),
            Param::OptText(l.product_id.as_deref()),
            Param::OptText(l.sku.as_deref()),
            Param::OptText(l.name.as_deref()),
            Param::OptText(l.category.as_deref()),
            Param::OptText(l.brand.as_deref()),
            Param::I64(l.price.0),
            Param::I64(l.quantity),
        ]);
    }
    conn.insert_rows(
        "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, category, brand, price, quantity)",
        LINE_COLS,
        "",
        &params,
    )?;
    Ok(placed)
}

fn insert_adjustments(conn: &mut dyn Conn, adjustments: &[&OrderAdjustment]) -> Result<()> {
    const COLS: usize = 5;
    let mut params = Vec::with_capacity(adjustments.len() * COLS);
    for a in adjustments {
        params.extend([
            Param::Text(&a.message_id),
            Param::Text(&a.order_id),
            Param::Text(adjustment_kind(a.kind)),
            Param::OptI64(a.amount.map(|f| f.0)),
            Param::I64(to_millis(a.at)),
        ]);
    }
    conn.insert_rows(
        "INSERT INTO order_adjustments (message_id, order_id, kind, amount, at)",
        COLS,
        "ON CONFLICT (message_id) DO NOTHING",
        &params,
    )?;
    Ok(())
}

/// Derives refunded amount and status of the `touched` orders that have adjustments
/// (an order without any keeps the `completed` state it was placed with).
fn recompute(conn: &mut dyn Conn, touched: &[&str]) -> Result<()> {
    let mut adjusted: BTreeMap<String, Vec<(String, Option<i64>)>> = BTreeMap::new();
    for r in conn.select_in(
        "SELECT order_id, kind, amount FROM order_adjustments",
        "order_id",
        touched,
    )? {
        adjusted
            .entry(r.text(0)?)
            .or_default()
            .push((r.text(1)?, r.opt_i64(2)?));
    }
    let ids: Vec<&str> = adjusted.keys().map(String::as_str).collect();
    let mut totals: HashMap<String, i64> = HashMap::new();
    for r in conn.select_in("SELECT order_id, total FROM orders", "order_id", &ids)? {
        totals.insert(r.text(0)?, r.i64(1)?);
    }
    for (order_id, adjustments) in &adjusted {
        // Adjustments of an order not placed yet wait for it.
        let Some(&total) = totals.get(order_id) else {
            continue;
        };
        let mut refunded: i64 = 0;
        let mut cancelled = false;
        for (kind, amount) in adjustments {
            match kind.as_str() {
                "cancel" => cancelled = true,
                _ => refunded = refunded.saturating_add(amount.unwrap_or(total)),
            }
        }
        let refunded = refunded.clamp(0, total.max(0));
        let status = OrderStatus::derive(
            true,
            cancelled,
            flywheel_core::Fen(total),
            flywheel_core::Fen(refunded),
        );
        conn.execute(
            "UPDATE orders SET refunded = $1, status = $2 WHERE order_id = $3",
            &[
                Param::I64(refunded),
                Param::Text(status.as_str()),
                Param::Text(order_id),
            ],
        )?;
    }
    Ok(())
}

/// Upserts catalogue entries; the latest description of a product wins, and fields
/// it leaves out keep their earlier values.
fn upsert_products(conn: &mut dyn Conn, events: &[&NewEvent]) -> Result<()> {
    let mut latest: BTreeMap<&str, &Product> = BTreeMap::new();
    for p in events.iter().flat_map(|e| e.products.iter()) {
        match latest.get(p.product_id.as_str()) {
            Some(cur) if cur.updated_at > p.updated_at => {}
            _ => {
                latest.insert(&p.product_id, p);
            }
        }
    }
    let products: Vec<&Product> = latest.into_values().collect();
    const COLS: usize = 8;
    let mut params = Vec::with_capacity(products.len() * COLS);
    for p in &products {
        params.extend([
            Param::Text(&p.product_id),
            Param::OptText(p.sku.as_deref()),
            Param::OptText(p.name.as_deref()),
            Param::OptText(p.category.as_deref()),
            Param::OptText(p.brand.as_deref()),
            Param::OptI64(p.price.map(|f| f.0)),
            Param::OptI64(p.cost.map(|f| f.0)),
            Param::I64(to_millis(p.updated_at)),
        ]);
    }
    conn.insert_rows(
        "INSERT INTO products (product_id, sku, name, category, brand, price, cost, updated_at)",
        COLS,
        "ON CONFLICT (product_id) DO UPDATE SET \
         sku = COALESCE(excluded.sku, products.sku), name = COALESCE(excluded.name, products.name), \
         category = COALESCE(excluded.category, products.category), \
         brand = COALESCE(excluded.brand, products.brand), \
         price = COALESCE(excluded.price, products.price), cost = COALESCE(excluded.cost, products.cost), \
         updated_at = excluded.updated_at WHERE excluded.updated_at >= products.updated_at",
        &params,
    )?;
    Ok(())
}
