//! Materialising products, orders and order adjustments from accepted events.

use std::collections::{BTreeMap, BTreeSet};

use flywheel_core::time::to_millis;
use flywheel_core::{OrderStatus, Product};

use crate::conn::{Conn, Param};
use crate::write::{adjustment_kind, recompute_order};
use crate::{NewEvent, Result};

/// Applies the commerce parts of freshly inserted events.
pub(crate) fn apply(conn: &mut dyn Conn, events: &[&NewEvent]) -> Result<()> {
    upsert_products(conn, events)?;
    let mut touched: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        if let Some(o) = &e.order {
            let status = OrderStatus::Completed;
            let inserted = conn.execute(
                "INSERT INTO orders (order_id, user_id, anonymous_id, currency, total, revenue, discount, \
                 shipping, tax, coupon, placed_at, refunded, status, message_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $13) \
                 ON CONFLICT (order_id) DO NOTHING",
                &[
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
                    Param::Text(status.as_str()),
                    Param::Text(&o.message_id),
                ],
            )?;
            if inserted == 1 {
                for (i, l) in o.lines.iter().enumerate() {
                    conn.execute(
                        "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, category, brand, \
                         price, quantity) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[
                            Param::Text(&o.order_id),
                            Param::I64(i as i64 + 1),
                            Param::OptText(l.product_id.as_deref()),
                            Param::OptText(l.sku.as_deref()),
                            Param::OptText(l.name.as_deref()),
                            Param::OptText(l.category.as_deref()),
                            Param::OptText(l.brand.as_deref()),
                            Param::I64(l.price.0),
                            Param::I64(l.quantity),
                        ],
                    )?;
                }
                touched.insert(&o.order_id);
            }
        }
        if let Some(a) = &e.adjustment {
            conn.execute(
                "INSERT INTO order_adjustments (message_id, order_id, kind, amount, at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
                &[
                    Param::Text(&a.message_id),
                    Param::Text(&a.order_id),
                    Param::Text(adjustment_kind(a.kind)),
                    Param::OptI64(a.amount.map(|f| f.0)),
                    Param::I64(to_millis(a.at)),
                ],
            )?;
            touched.insert(&a.order_id);
        }
    }
    for order_id in touched {
        recompute_order(conn, order_id)?;
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
    for p in latest.values() {
        conn.execute(
            "INSERT INTO products (product_id, sku, name, category, brand, price, cost, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (product_id) DO UPDATE SET \
             sku = COALESCE(excluded.sku, products.sku), name = COALESCE(excluded.name, products.name), \
             category = COALESCE(excluded.category, products.category), \
             brand = COALESCE(excluded.brand, products.brand), \
             price = COALESCE(excluded.price, products.price), cost = COALESCE(excluded.cost, products.cost), \
             updated_at = excluded.updated_at WHERE excluded.updated_at >= products.updated_at",
            &[
                Param::Text(&p.product_id),
                Param::OptText(p.sku.as_deref()),
                Param::OptText(p.name.as_deref()),
                Param::OptText(p.category.as_deref()),
                Param::OptText(p.brand.as_deref()),
                Param::OptI64(p.price.map(|f| f.0)),
                Param::OptI64(p.cost.map(|f| f.0)),
                Param::I64(to_millis(p.updated_at)),
            ],
        )?;
    }
    Ok(())
}
