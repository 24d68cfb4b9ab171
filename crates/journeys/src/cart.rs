//! The run's cart (R3.6: 潛力客戶 → "推送加購商品的優惠券"; fixture F5): the products a
//! coupon step with `scope: cart` narrows its coupon to. A cart is named by the run's
//! key (the trigger event's `cart_id`, say); its products are those the customer added to
//! it (`Product Added` with that key), less those removed from it (`Product Removed` with
//! that key) and those bought after being added (`Order Completed`, any cart). Only the
//! customer's own events count (the store leaves system writes out).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::db::Tracked;
use crate::tail::key_of;

/// Segment's e-commerce spec: a product added to a cart.
pub(crate) const PRODUCT_ADDED: &str = "Product Added";
/// Segment's e-commerce spec: a product removed from a cart.
pub(crate) const PRODUCT_REMOVED: &str = "Product Removed";

/// The events a cart is read from.
pub(crate) const CART_EVENTS: [&str; 3] = [
    PRODUCT_ADDED,
    PRODUCT_REMOVED,
    flywheel_core::commerce::ORDER_COMPLETED,
];

/// A product's id in event properties: `product_id`, else `sku`.
fn product_id(p: &Value) -> Option<String> {
    ["product_id", "sku"].iter().find_map(|k| match p.get(*k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The products an event's properties name: itself (`product_id` / `sku`) and each of
/// its `products[]`.
fn products_of(props: &Value) -> Vec<String> {
    let mut out: Vec<String> = product_id(props).into_iter().collect();
    if let Some(list) = props.get("products").and_then(Value::as_array) {
        out.extend(list.iter().filter_map(product_id));
    }
    out
}

/// The products left in the cart `key` (read at `key_path` of each event's properties)
/// after `events`, oldest first; in the order first added.
pub(crate) fn cart_products(events: &[Tracked], key_path: &str, key: &str) -> Vec<String> {
    let mut cart: Vec<String> = Vec::new();
    for e in events {
        let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
        let props = body.get("properties").cloned().unwrap_or(Value::Null);
        let this_cart = key_of(&props, key_path).as_deref() == Some(key);
        let named = products_of(&props);
        match e.name.as_str() {
            PRODUCT_ADDED if this_cart => {
                for p in named {
                    if !cart.contains(&p) {
                        cart.push(p);
                    }
                }
            }
            PRODUCT_REMOVED if this_cart => cart.retain(|p| !named.contains(p)),
            flywheel_core::commerce::ORDER_COMPLETED => {
                let bought: BTreeSet<&String> = named.iter().collect();
                cart.retain(|p| !bought.contains(p));
            }
            _ => {}
        }
    }
    cart
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(name: &str, at: i64, props: Value) -> Tracked {
        Tracked {
            name: name.into(),
            at,
            body: json!({ "properties": props }).to_string(),
        }
    }

    #[test]
    fn added_less_removed_less_bought_for_this_cart_only() {
        let events = vec![
            ev(PRODUCT_ADDED, 1, json!({"cart_id": "c1", "product_id": "SKU1"})),
            ev(PRODUCT_ADDED, 2, json!({"cart_id": "c1", "sku": "SKU2"})),
            ev(PRODUCT_ADDED, 3, json!({"cart_id": "c2", "product_id": "SKU9"})),
            ev(PRODUCT_ADDED, 4, json!({"cart_id": "c1", "product_id": "SKU3"})),
            ev(PRODUCT_ADDED, 5, json!({"cart_id": "c1", "product_id": "SKU1"})),
            // Removed from another cart: stays in c1.
            ev(PRODUCT_REMOVED, 6, json!({"cart_id": "c2", "product_id": "SKU1"})),
            ev(PRODUCT_REMOVED, 7, json!({"cart_id": "c1", "product_id": "SKU2"})),
            // Bought (any cart): no longer left.
            ev(
                flywheel_core::commerce::ORDER_COMPLETED,
                8,
                json!({"order_id": "o", "products": [{"product_id": "SKU3"}]}),
            ),
            ev(PRODUCT_ADDED, 9, json!({"cart_id": "c1", "product_id": "  "})),
        ];
        assert_eq!(cart_products(&events, "cart_id", "c1"), vec!["SKU1"]);
        assert_eq!(cart_products(&events, "cart_id", "c2"), vec!["SKU9"]);
        assert!(cart_products(&events, "cart_id", "c3").is_empty());
        // Added again after it was bought: left in the cart again.
        let mut again = events.clone();
        again.push(ev(
            PRODUCT_ADDED,
            10,
            json!({"cart_id": "c1", "products": [{"product_id": "SKU3"}]}),
        ));
        assert_eq!(cart_products(&again, "cart_id", "c1"), vec!["SKU1", "SKU3"]);
    }
}
