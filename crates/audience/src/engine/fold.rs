//! Folding what happened into a profile's [`Facts`]: tracking events, orders and
//! refunds/cancellations, whether they arrive live (a committed ingest batch) or are
//! replayed from the store at start. Both paths go through the functions here, so a
//! rebuilt index equals the incrementally maintained one.

use std::collections::HashSet;

use flywheel_core::time::to_millis;
use flywheel_core::{Event, EventKind, Order, OrderAdjustment, OrderAdjustmentKind};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::AudienceConfig;
use crate::counter::{CounterId, CounterSpec};
use crate::facts::{Bought, Facts, LineRef, OrderFact};

/// What an event does to the facts besides orders: activity (unless it is the system's
/// own write: computed and imported traits are not something the customer did), the
/// traits in `trait_keys`, the facts of its action ([`fold_facts`]) and the counters it
/// matches ([`fold_counters`]).
pub fn fold_event(
    f: &mut Facts,
    ev: &Event,
    system_write: bool,
    config: &AudienceConfig,
    counters: &[(CounterId, CounterSpec)],
    trait_keys: &HashSet<String>,
) {
    let ts = to_millis(ev.timestamp);
    if !system_write {
        f.touch(ts);
    }
    let traits = ev.user_traits();
    if !traits.is_empty() {
        f.set_traits(&traits, ts, &ev.message_id, &|k| trait_keys.contains(k));
    }
    if ev.kind != EventKind::Alias {
        let name = ev.display_name();
        fold_facts(f, ev.kind, name, ts, &ev.properties, config);
        fold_counters(f, name, ts, &ev.properties, counters);
    }
}

/// The part of an event that the start-up replay needs from the stored body: its type
/// and properties (everything else is skipped without being built).
#[derive(Debug, Deserialize)]
pub struct StoredAction {
    /// The call type.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// `properties`.
    #[serde(default)]
    pub properties: Map<String, Value>,
}

/// The facts an action feeds: sign-in, sign-up and cart additions (REQUIREMENTS R3.3:
/// `Product Added`), for track calls only.
pub fn fold_facts(
    f: &mut Facts,
    kind: EventKind,
    name: &str,
    ts: i64,
    properties: &Map<String, Value>,
    config: &AudienceConfig,
) {
    if kind != EventKind::Track {
        return;
    }
    if config.sign_in_events.iter().any(|n| n == name) {
        f.sign_in(ts);
    }
    if config.sign_up_events.iter().any(|n| n == name) {
        f.sign_up(ts);
    }
    if config.cart_events.iter().any(|n| n == name) {
        if let Some(p) = product_of(properties) {
            f.cart_add(ts, p);
        }
    }
}

/// Counts an action in every registered counter it matches.
pub fn fold_counters(
    f: &mut Facts,
    name: &str,
    ts: i64,
    properties: &Map<String, Value>,
    counters: &[(CounterId, CounterSpec)],
) {
    for (id, spec) in counters {
        if spec.matches(name, properties) {
            f.counters.entry_or_default(*id).record(spec.window, ts);
        }
    }
}

/// Whether an event name feeds a fact other than counters (so the start-up replay reads it).
pub fn is_fact_event(name: &str, config: &AudienceConfig) -> bool {
    config
        .sign_in_events
        .iter()
        .chain(&config.sign_up_events)
        .chain(&config.cart_events)
        .any(|n| n == name)
}

fn product_of(properties: &Map<String, Value>) -> Option<String> {
    ["product_id", "sku", "id"]
        .iter()
        .find_map(|k| properties.get(*k))
        .and_then(crate::facts::trait_text)
}

/// The fact of a freshly placed order, with what its lines bought.
pub fn order_fact(o: &Order) -> OrderFact {
    let bought = Bought::of_lines(o.lines.iter().map(|l| LineRef {
        product_id: l.product_id.as_deref(),
        sku: l.sku.as_deref(),
        category: l.category.as_deref(),
        brand: l.brand.as_deref(),
    }));
    OrderFact {
        order_id: o.order_id.clone(),
        at: to_millis(o.placed_at),
        total: o.total.0,
        refunded: 0,
        cancelled: false,
        promo: o.discount.0 > 0 || o.coupon.as_deref().is_some_and(|c| !c.trim().is_empty()),
        bought,
        adjustments: Vec::new(),
    }
}

/// A refund or cancellation as `(messageId, cancel, amount)`.
pub fn adjustment_parts(a: &OrderAdjustment) -> (String, bool, Option<i64>) {
    (
        a.message_id.clone(),
        a.kind == OrderAdjustmentKind::Cancel,
        a.amount.map(|f| f.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::time::from_millis;
    use serde_json::json;

    fn track(name: &str, ts: i64, props: serde_json::Value) -> Event {
        let properties: Map<String, serde_json::Value> = props.as_object().cloned().unwrap_or_default();
        Event {
            message_id: format!("m{ts}"),
            kind: EventKind::Track,
            user_id: Some("u1".into()),
            anonymous_id: None,
            event: Some(name.into()),
            name: None,
            group_id: None,
            previous_id: None,
            timestamp: from_millis(ts),
            original_timestamp: None,
            sent_at: None,
            received_at: from_millis(ts),
            context: Map::new(),
            properties,
            traits: Map::new(),
            integrations: Map::new(),
        }
    }

    #[test]
    fn sign_in_cart_and_counters_are_folded() {
        let config = AudienceConfig::default();
        let spec = CounterSpec {
            name: "Product Added".into(),
            window: Some(crate::window::days(7)),
            filters: vec![],
        };
        let counters = vec![(CounterId(0), spec)];
        let mut f = Facts::default();
        let keys = HashSet::new();
        fold_event(
            &mut f,
            &track("Signed In", 10, json!({})),
            false,
            &config,
            &counters,
            &keys,
        );
        fold_event(
            &mut f,
            &track("Product Added", 20, json!({"product_id": "p1"})),
            false,
            &config,
            &counters,
            &keys,
        );
        // The system's own write (a computed trait) is not activity.
        let mut scored = track("ignored", 90, json!({}));
        scored.kind = flywheel_core::EventKind::Identify;
        scored.traits.insert("clv_value".into(), json!(12.5));
        let keys_with_clv: HashSet<String> = ["clv_value".to_string()].into();
        fold_event(&mut f, &scored, true, &config, &counters, &keys_with_clv);
        assert_eq!(f.last_active, Some(20));
        assert!(f.traits.get("clv_value").is_some(), "the trait itself is kept");
        assert_eq!(f.last_sign_in, Some(10));
        assert_eq!(f.first_seen, Some(10));
        assert_eq!(f.last_active, Some(20));
        assert_eq!(f.carts, vec![(20, "p1".to_string())]);
        assert_eq!(f.counters.get(&CounterId(0)).map(|c| c.all), Some(1));
    }
}
