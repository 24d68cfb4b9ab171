//! Rebuilding the engine state from the store at start: profiles, traits, orders with
//! their lines and adjustments, the events that feed facts (sign-in, sign-up, cart) and
//! registered counters, manual tags and the stored definitions.

use std::collections::{HashMap, HashSet};

use flywheel_store::audience as q;
use flywheel_store::conn::Conn;

use crate::config::AudienceConfig;
use crate::counter::{CounterId, CounterSpec};
use crate::engine::fold::{fold_counters, fold_facts, is_fact_event, StoredAction};
use crate::engine::state::State;
use crate::facts::{Bought, LineRef, OrderFact};

/// Everything read from the store in one pass, before any folding.
pub struct Snapshot {
    /// The log position the snapshot stands at: the highest event `seq` stored.
    pub position: i64,
    profiles: Vec<q::ProfileRow>,
    traits: Vec<q::TraitRow>,
    user_ids: Vec<(String, String)>,
    orders: Vec<q::OrderRow>,
    lines: Vec<q::LineRow>,
    adjustments: Vec<q::AdjustmentRow>,
    events: Vec<q::EventRow>,
    /// Manual tag assignments `(tag, profile)`.
    pub manual_tags: Vec<(String, String)>,
}

/// Reads a snapshot; `counter_names` are the event names of counters the stored
/// definitions use (their events are read too).
pub fn read(
    conn: &mut dyn Conn,
    config: &AudienceConfig,
    counter_names: &[String],
) -> flywheel_store::Result<Snapshot> {
    let mut names: Vec<String> = config
        .sign_in_events
        .iter()
        .chain(&config.sign_up_events)
        .chain(&config.cart_events)
        .chain(counter_names)
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    // One read transaction: the facts and the log position they stand at agree, so
    // following the shared log from `position` neither skips nor repeats a batch.
    conn.begin_read()?;
    let read = read_all(conn, &names);
    conn.rollback();
    read
}

fn read_all(conn: &mut dyn Conn, names: &[String]) -> flywheel_store::Result<Snapshot> {
    Ok(Snapshot {
        position: flywheel_store::batch_log::head(conn)?,
        profiles: q::profiles(conn)?,
        traits: q::traits(conn)?,
        user_ids: q::user_ids(conn)?,
        orders: q::orders(conn)?,
        lines: q::order_lines(conn)?,
        adjustments: q::adjustments(conn)?,
        events: q::events_named(conn, names, i64::MIN)?,
        manual_tags: q::manual_tags(conn)?,
    })
}

/// What definitions are checked against before the snapshot is read.
pub struct StoredDefinitions {
    /// Tags `(name, JSON)`.
    pub tags: Vec<(String, String)>,
    /// Segments `(name, JSON)`.
    pub segments: Vec<(String, String)>,
    /// Every event name received.
    pub event_names: Vec<String>,
}

/// Reads the stored definitions and the event names they may use (to learn which
/// counters a snapshot needs).
pub fn read_definitions(conn: &mut dyn Conn) -> flywheel_store::Result<StoredDefinitions> {
    Ok(StoredDefinitions {
        tags: q::definitions(conn, "tag")?,
        segments: q::definitions(conn, "segment")?,
        event_names: q::event_names(conn)?,
    })
}

/// Folds a snapshot's facts into `state` (rows, facts; not yet columns or memberships).
pub fn fold(state: &mut State, snap: &Snapshot) {
    for (id, first, last) in &snap.profiles {
        let row = state.row_of(id);
        if first.is_some() || last.is_some() {
            state.facts.edit(row, |f| {
                for t in [first, last].into_iter().flatten() {
                    f.touch(*t);
                }
            });
        }
    }
    for (pid, user) in &snap.user_ids {
        if let Some(row) = state.ids.row(pid) {
            if state.ids.user_id(row).is_none_or(|u| user.as_str() < u) {
                state.ids.set_user_id(row, Some(user));
            }
        }
    }
    let keys = state.trait_keys.clone();
    fold_traits(state, &snap.traits, &keys);
    fold_orders(state, snap);
    let counters: Vec<(CounterId, CounterSpec)> = state.registry.counters().to_vec();
    for (pid, name, ts, _mid, body) in &snap.events {
        let Some(row) = state.ids.row(pid) else { continue };
        let Ok(action) = serde_json::from_str::<StoredAction>(body) else {
            tracing::warn!(profile = %pid, event = %name, "stored event does not parse; skipped");
            continue;
        };
        let config = &state.config;
        state.facts.edit(row, |f| {
            // Events read only for a counter feed no other fact.
            if is_fact_event(name, config) {
                fold_facts(f, action.kind, name, *ts, &action.properties, config);
            }
            fold_counters(f, name, *ts, &action.properties, &counters);
        });
    }
}

fn fold_orders(state: &mut State, snap: &Snapshot) {
    let mut lines: HashMap<&str, Vec<&q::LineRow>> = HashMap::new();
    for l in &snap.lines {
        lines.entry(l.order_id.as_str()).or_default().push(l);
    }
    for o in &snap.orders {
        let Some(row) = state.ids.row(&o.profile_id) else {
            continue;
        };
        let own = lines
            .get(o.order_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let fact = OrderFact {
            order_id: o.order_id.clone(),
            at: o.placed_at,
            total: o.total,
            refunded: 0,
            cancelled: false,
            promo: o.discount > 0 || o.coupon.as_deref().is_some_and(|c| !c.trim().is_empty()),
            bought: Bought::of_lines(own.iter().map(|l| LineRef {
                product_id: l.product_id.as_deref(),
                sku: l.sku.as_deref(),
                category: l.category.as_deref(),
                brand: l.brand.as_deref(),
            })),
            adjustments: Vec::new(),
        };
        state.add_order(row, fact);
    }
    for (order_id, mid, cancel, amount) in &snap.adjustments {
        state.adjust(order_id, (mid.clone(), *cancel, *amount));
    }
}

/// Folds stored trait rows into the facts of their profiles, keeping the keys in `keep`
/// (start-up, and the back-fill of keys a new rule reads).
pub fn fold_traits(state: &mut State, rows: &[q::TraitRow], keep: &HashSet<String>) {
    for (pid, key, json, ts, mid) in rows {
        let Some(row) = state.ids.row(pid) else { continue };
        let value = serde_json::from_str(json).unwrap_or(serde_json::Value::String(json.clone()));
        let mut one = serde_json::Map::new();
        one.insert(key.clone(), value);
        state
            .facts
            .edit(row, |f| f.set_traits(&one, *ts, mid, &|k| keep.contains(k)));
    }
}
