//! The Segment e-commerce spec v2: reading orders, refunds, cancellations and
//! products out of `track` events.
//!
//! * `Order Completed` (`order_id` required) places an order. Its amount paid is
//!   `total`, else `revenue + shipping + tax`, else the sum of line prices × quantities
//!   − `discount` + `shipping` + `tax`; `revenue` defaults to `total − shipping − tax`.
//!   `currency` defaults to `CNY`. Lines come from `products[]` (`quantity` defaults to 1).
//! * `Order Refunded` records a refund of `total` (else `revenue`, else the refunded
//!   `products[]` value, else the whole order); `Order Cancelled` voids the order.
//!   Both may arrive before the order; the order's state is derived from all of them.
//! * Product events (`Product Viewed`, `Product Added`, ...) and order lines upsert
//!   the catalogue (`product_id`, else `sku`); a `cost` property records unit cost.
//!
//! Money is read exactly into fen (see [`flywheel_core::Fen::from_json`]); more than two
//! decimals are rounded half away from zero (`1.005` → 101 fen), because SDKs send
//! float arithmetic such as `59.970000000000006`. No amount may be negative — a price,
//! `cost`, `total`, `revenue`, `discount`, `shipping`, `tax`, a refund, nor the total or
//! revenue worked out from them (`negative_amount`) — and no quantity (`negative_quantity`):
//! a negative line would lower a customer's spend. Like every invalid message, such a
//! message refuses its whole request.

use flywheel_core::ErrorCode;
use flywheel_core::{Event, EventKind, Fen, Order, OrderAdjustment, OrderAdjustmentKind, OrderLine, Product};
use flywheel_store::NewEvent;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Event names of the e-commerce spec v2 that Flywheel understands.
pub mod names {
    /// A product page was viewed.
    pub const PRODUCT_VIEWED: &str = "Product Viewed";
    /// A product was clicked in a list.
    pub const PRODUCT_CLICKED: &str = "Product Clicked";
    /// Added to cart (加購).
    pub const PRODUCT_ADDED: &str = "Product Added";
    /// Removed from cart.
    pub const PRODUCT_REMOVED: &str = "Product Removed";
    /// Added to wishlist (收藏).
    pub const PRODUCT_ADDED_TO_WISHLIST: &str = "Product Added to Wishlist";
    /// Reviewed (評價).
    pub const PRODUCT_REVIEWED: &str = "Product Reviewed";
    /// Shared (分享).
    pub const PRODUCT_SHARED: &str = "Product Shared";
    /// Searched (搜索).
    pub const PRODUCTS_SEARCHED: &str = "Products Searched";
    /// Cart viewed.
    pub const CART_VIEWED: &str = "Cart Viewed";
    /// Checkout started.
    pub const CHECKOUT_STARTED: &str = "Checkout Started";
    /// Paid order (購買).
    pub const ORDER_COMPLETED: &str = flywheel_core::commerce::ORDER_COMPLETED;
    /// Refund.
    pub const ORDER_REFUNDED: &str = flywheel_core::commerce::ORDER_REFUNDED;
    /// Cancellation.
    pub const ORDER_CANCELLED: &str = flywheel_core::commerce::ORDER_CANCELLED;
    /// A coupon was applied.
    pub const COUPON_APPLIED: &str = "Coupon Applied";
    /// Registration (注冊).
    pub const SIGNED_UP: &str = "Signed Up";
    /// Sign-in (登錄).
    pub const SIGNED_IN: &str = "Signed In";
}

/// Product events whose properties describe one product.
const SINGLE_PRODUCT_EVENTS: &[&str] = &[
    names::PRODUCT_VIEWED,
    names::PRODUCT_CLICKED,
    names::PRODUCT_ADDED,
    names::PRODUCT_REMOVED,
    names::PRODUCT_ADDED_TO_WISHLIST,
    names::PRODUCT_REVIEWED,
    names::PRODUCT_SHARED,
];

/// Turns an accepted event into what the store writes for it. `index` names the
/// message in errors.
pub fn materialise(event: Event, source: Option<String>, index: usize) -> Result<NewEvent> {
    if event.kind != EventKind::Track {
        return Ok(NewEvent::new(event, source));
    }
    let e = &event;
    let props = &e.properties;
    let (mut order, mut adjustment, mut products) = (None, None, Vec::new());
    let name = e.event.as_deref().unwrap_or("");
    match name {
        names::ORDER_COMPLETED => {
            let o = read_order(e, index)?;
            products = o.lines.iter().filter_map(|l| product_of_line(l, e)).collect();
            order = Some(o);
        }
        names::ORDER_REFUNDED | names::ORDER_CANCELLED => {
            let order_id = order_id(props, index)?;
            let kind = if name == names::ORDER_CANCELLED {
                OrderAdjustmentKind::Cancel
            } else {
                OrderAdjustmentKind::Refund
            };
            let amount =
                match kind {
                    OrderAdjustmentKind::Cancel => None,
                    OrderAdjustmentKind::Refund => match money(props, "properties", "total", index)?
                        .or(money(props, "properties", "revenue", index)?)
                    {
                        Some(a) => Some(a),
                        None => {
                            let lines = read_lines(props, index)?;
                            (!lines.is_empty())
                                .then(|| lines.iter().map(|l| Fen(l.price.0 * l.quantity)).sum())
                        }
                    },
                };
            adjustment = Some(OrderAdjustment {
                order_id,
                kind,
                amount,
                at: e.timestamp,
                message_id: e.message_id.clone(),
            });
        }
        n if SINGLE_PRODUCT_EVENTS.contains(&n) => {
            if let Some(p) = read_product(props, e, index)? {
                products.push(p);
            }
        }
        _ => {}
    }
    let mut out = NewEvent::new(event, source);
    out.order = order;
    out.adjustment = adjustment;
    out.products = products;
    Ok(out)
}

fn order_id(props: &Map<String, Value>, index: usize) -> Result<String> {
    match props.get("order_id") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(Error::invalid(
            index,
            ErrorCode::MissingOrderId,
            "properties.order_id (a non-empty string) is required",
        )),
    }
}

/// The amount `field` of `map` (found at `at`, for messages), never negative.
fn money(map: &Map<String, Value>, at: &str, field: &str, index: usize) -> Result<Option<Fen>> {
    let fen = match map.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => Fen::from_json(v)
            .map_err(|e| Error::invalid(index, ErrorCode::InvalidMoney, format!("{at}.{field}: {e}")))?,
    };
    if fen < Fen::ZERO {
        return Err(Error::invalid(
            index,
            ErrorCode::NegativeAmount,
            format!(
                "{at}.{field} is {}: amounts must be 0 or more (a refund is an Order Refunded event)",
                fen.to_yuan_string()
            ),
        ));
    }
    Ok(Some(fen))
}

/// `amount`, refused when negative; `what` names how it was worked out.
fn not_negative(amount: Fen, what: &str, index: usize) -> Result<Fen> {
    if amount < Fen::ZERO {
        return Err(Error::invalid(
            index,
            ErrorCode::NegativeAmount,
            format!("{what} is {}: it must be 0 or more", amount.to_yuan_string()),
        ));
    }
    Ok(amount)
}

fn text(m: &Map<String, Value>, field: &str) -> Option<String> {
    match m.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn read_lines(props: &Map<String, Value>, index: usize) -> Result<Vec<OrderLine>> {
    let items = match props.get("products") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(Error::invalid(
                index,
                ErrorCode::WrongType,
                "properties.products must be an array",
            ))
        }
    };
    let mut lines = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let Value::Object(p) = item else {
            return Err(Error::invalid(
                index,
                ErrorCode::WrongType,
                format!("properties.products[{n}] must be an object"),
            ));
        };
        let at = format!("properties.products[{n}]");
        let price = money(p, &at, "price", index)?.unwrap_or(Fen::ZERO);
        let quantity = match p.get("quantity") {
            None | Some(Value::Null) => 1,
            Some(Value::Number(q)) if q.as_f64().is_some_and(|q| q < 0.0) => {
                return Err(Error::invalid(
                    index,
                    ErrorCode::NegativeQuantity,
                    format!("{at}.quantity is {q}: quantities must be 0 or more"),
                ))
            }
            Some(Value::Number(q)) => q.as_i64().ok_or_else(|| {
                Error::invalid(
                    index,
                    ErrorCode::WrongType,
                    format!("{at}.quantity must be a whole number ≥ 0"),
                )
            })?,
            Some(_) => {
                return Err(Error::invalid(
                    index,
                    ErrorCode::WrongType,
                    format!("properties.products[{n}].quantity must be a number"),
                ))
            }
        };
        lines.push(OrderLine {
            product_id: text(p, "product_id"),
            sku: text(p, "sku"),
            name: text(p, "name"),
            category: text(p, "category"),
            brand: text(p, "brand"),
            price,
            quantity,
        });
    }
    Ok(lines)
}

fn read_order(e: &Event, index: usize) -> Result<Order> {
    let p = &e.properties;
    let order_id = order_id(p, index)?;
    let lines = read_lines(p, index)?;
    let discount = money(p, "properties", "discount", index)?.unwrap_or(Fen::ZERO);
    let shipping = money(p, "properties", "shipping", index)?.unwrap_or(Fen::ZERO);
    let tax = money(p, "properties", "tax", index)?.unwrap_or(Fen::ZERO);
    let revenue = money(p, "properties", "revenue", index)?;
    let total = match (money(p, "properties", "total", index)?, revenue) {
        (Some(t), _) => t,
        (None, Some(r)) => r + shipping + tax,
        (None, None) => not_negative(
            lines.iter().map(|l| Fen(l.price.0 * l.quantity)).sum::<Fen>() - discount + shipping + tax,
            "the order total (Σ price × quantity − discount + shipping + tax)",
            index,
        )?,
    };
    let revenue = match revenue {
        Some(r) => r,
        None => not_negative(
            total - shipping - tax,
            "the order revenue (total − shipping − tax)",
            index,
        )?,
    };
    let currency = text(p, "currency")
        .map(|c| c.to_uppercase())
        .unwrap_or_else(|| "CNY".to_string());
    Ok(Order {
        order_id,
        user_id: e.user_id.clone(),
        anonymous_id: e.anonymous_id.clone(),
        total,
        revenue,
        discount,
        shipping,
        tax,
        coupon: text(p, "coupon"),
        currency,
        placed_at: e.timestamp,
        lines,
        message_id: e.message_id.clone(),
    })
}

fn product_of_line(l: &OrderLine, e: &Event) -> Option<Product> {
    let id = l.product_id.clone().or(l.sku.clone())?;
    Some(Product {
        product_id: id,
        sku: l.sku.clone(),
        name: l.name.clone(),
        category: l.category.clone(),
        brand: l.brand.clone(),
        price: Some(l.price),
        cost: None,
        updated_at: e.timestamp,
    })
}

fn read_product(p: &Map<String, Value>, e: &Event, index: usize) -> Result<Option<Product>> {
    let Some(id) = text(p, "product_id").or(text(p, "sku")) else {
        return Ok(None);
    };
    Ok(Some(Product {
        product_id: id,
        sku: text(p, "sku"),
        name: text(p, "name"),
        category: text(p, "category"),
        brand: text(p, "brand"),
        price: money(p, "properties", "price", index)?,
        cost: money(p, "properties", "cost", index)?,
        updated_at: e.timestamp,
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::message::{parse, Envelope};

    fn track(name: &str, props: Value) -> Event {
        parse(
            json!({"type": "track", "userId": "u1", "event": name, "properties": props}),
            &Envelope::default(),
        )
        .unwrap()
        .event
    }

    #[test]
    fn order_completed_places_an_order_in_fen() {
        let e = track(
            "Order Completed",
            json!({"order_id": "o1", "total": 1000.01, "discount": 5, "coupon": "NEW10", "currency": "cny",
                   "products": [{"product_id": "p1", "sku": "S1", "name": "面膜", "category": "護膚", "brand": "B",
                                 "price": 500.005, "quantity": 2}]}),
        );
        let n = materialise(e, None, 0).unwrap();
        let o = n.order.unwrap();
        assert_eq!(o.total, Fen(100_001));
        assert_eq!(o.revenue, Fen(100_001));
        assert_eq!(o.currency, "CNY");
        assert_eq!(o.lines[0].price, Fen(50_001));
        assert_eq!(o.lines[0].quantity, 2);
        assert_eq!(n.products[0].category.as_deref(), Some("護膚"));
    }

    #[test]
    fn order_total_falls_back_to_revenue_then_lines() {
        let e = track(
            "Order Completed",
            json!({"order_id": 7, "revenue": 90, "shipping": 10}),
        );
        assert_eq!(materialise(e, None, 0).unwrap().order.unwrap().total, Fen(10_000));
        let e = track(
            "Order Completed",
            json!({"order_id": "o", "discount": 1, "products": [{"price": "2.50", "quantity": 4}, {"price": 3}]}),
        );
        let o = materialise(e, None, 0).unwrap().order.unwrap();
        assert_eq!(o.order_id, "o");
        assert_eq!(o.total, Fen(1200));
    }

    #[test]
    fn refunds_and_cancellations() {
        let n = materialise(
            track("Order Refunded", json!({"order_id": "o1", "total": 30})),
            None,
            0,
        )
        .unwrap();
        assert_eq!(n.adjustment.unwrap().amount, Some(Fen(3000)));
        let n = materialise(
            track(
                "Order Refunded",
                json!({"order_id": "o1", "products": [{"price": 10, "quantity": 2}]}),
            ),
            None,
            0,
        )
        .unwrap();
        assert_eq!(n.adjustment.unwrap().amount, Some(Fen(2000)));
        let n = materialise(track("Order Refunded", json!({"order_id": "o1"})), None, 0).unwrap();
        assert_eq!(n.adjustment.unwrap().amount, None);
        let n = materialise(track("Order Cancelled", json!({"order_id": "o1"})), None, 0).unwrap();
        assert_eq!(n.adjustment.unwrap().kind, OrderAdjustmentKind::Cancel);
    }

    #[test]
    fn bad_commerce_fields_are_refused() {
        let code = |name: &str, p: Value| materialise(track(name, p), None, 3).unwrap_err().code();
        assert_eq!(code("Order Completed", json!({"total": 5})), "missing_order_id");
        assert_eq!(
            code("Order Completed", json!({"order_id": "o", "total": "lots"})),
            "invalid_money"
        );
        assert_eq!(
            code("Order Completed", json!({"order_id": "o", "products": {}})),
            "wrong_type"
        );
        assert_eq!(
            code(
                "Order Completed",
                json!({"order_id": "o", "products": [{"quantity": 1.5}]})
            ),
            "wrong_type"
        );
        assert_eq!(
            code("Product Viewed", json!({"product_id": "p", "price": [1]})),
            "invalid_money"
        );
    }

    #[test]
    fn negative_amounts_and_quantities_are_refused_naming_the_field() {
        let err = |name: &str, p: Value| materialise(track(name, p), None, 3).unwrap_err();
        for (props, field) in [
            (
                json!({"order_id": "o", "products": [{"price": 10}, {"price": -100.5}]}),
                "properties.products[1].price",
            ),
            (json!({"order_id": "o", "total": -1}), "properties.total"),
            (
                json!({"order_id": "o", "total": 5, "revenue": "-0.01"}),
                "properties.revenue",
            ),
            (
                json!({"order_id": "o", "total": 5, "discount": -5}),
                "properties.discount",
            ),
            (
                json!({"order_id": "o", "total": 5, "shipping": -5}),
                "properties.shipping",
            ),
            (json!({"order_id": "o", "total": 5, "tax": -5}), "properties.tax"),
            (
                json!({"order_id": "o", "products": [{"price": 10}], "discount": 20}),
                "the order total",
            ),
            (
                json!({"order_id": "o", "total": 5, "shipping": 10}),
                "the order revenue",
            ),
        ] {
            let e = err("Order Completed", props.clone());
            assert_eq!(e.code(), "negative_amount", "{props}");
            assert!(e.to_string().starts_with(&format!("message 3: {field}")), "{e}");
        }
        let e = err(
            "Order Completed",
            json!({"order_id": "o", "products": [{"price": 1, "quantity": -2}]}),
        );
        assert_eq!(e.code(), "negative_quantity");
        assert!(e.to_string().contains("properties.products[0].quantity"), "{e}");
        assert_eq!(
            err("Order Refunded", json!({"order_id": "o", "total": -30})).code(),
            "negative_amount"
        );
        assert_eq!(
            err("Product Viewed", json!({"product_id": "p", "price": -1})).code(),
            "negative_amount"
        );
        assert_eq!(
            err("Product Viewed", json!({"product_id": "p", "cost": -1})).code(),
            "negative_amount"
        );
        // Zero is fine (a free gift line), and sub-fen amounts round half away from zero.
        let o = materialise(
            track(
                "Order Completed",
                json!({"order_id": "o", "products": [{"price": 0}, {"price": 1.005}]}),
            ),
            None,
            0,
        )
        .unwrap()
        .order
        .unwrap();
        assert_eq!(o.total, Fen(101));
    }

    #[test]
    fn product_events_upsert_the_catalogue() {
        let n = materialise(
            track(
                "Product Viewed",
                json!({"sku": "S9", "name": "運動鞋", "price": 399, "cost": 120.5}),
            ),
            None,
            0,
        )
        .unwrap();
        assert_eq!(n.products[0].product_id, "S9");
        assert_eq!(n.products[0].cost, Some(Fen(12_050)));
        assert!(materialise(track("Product Viewed", json!({})), None, 0)
            .unwrap()
            .products
            .is_empty());
    }
}
