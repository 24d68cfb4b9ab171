//! Per-profile facts: the small, mergeable summary of a profile's history from which
//! every computed trait is derived at any `now`.
//!
//! Facts are folded from events as they are committed (and replayed from the store at
//! start), merged when two profiles merge, and never need the event log again: orders
//! are kept (few per user), other activity as a few instants, and each registered event
//! counter as the timestamps of matching events inside its window.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::counter::{CounterId, CounterState};
use crate::dsl::ast::Duration;
use crate::small::SortedMap;
use crate::window::Windowing;

/// One order of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFact {
    /// The shop's order id.
    pub order_id: String,
    /// When it was placed (ms).
    pub at: i64,
    /// Amount paid (fen).
    pub total: i64,
    /// Refunded so far (fen, clamped to `0..=total`).
    pub refunded: i64,
    /// Cancelled orders count for nothing.
    pub cancelled: bool,
    /// It used a coupon or carried a discount (易受促銷影響客戶).
    pub promo: bool,
    /// What its lines bought, per field (`products[]` of the order): `categories_bought`,
    /// `brands_bought`, `skus_bought`, `products_bought` and `bought ... within`.
    pub bought: Bought,
    /// Refunds and cancellations: `(messageId, cancel, amount)`; `None` refunds the whole order.
    pub adjustments: Vec<(String, bool, Option<i64>)>,
}

/// One order line as the engine reads it, live (`Order Completed`'s `products[]`) or
/// from the store's order lines at start; both paths build [`Bought`] from these.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineRef<'a> {
    /// `product_id`.
    pub product_id: Option<&'a str>,
    /// `sku`.
    pub sku: Option<&'a str>,
    /// `category`.
    pub category: Option<&'a str>,
    /// `brand`.
    pub brand: Option<&'a str>,
}

/// The distinct values an order's lines carry, per field: one boxed slice of
/// `(field, value)` sorted by field then value, no blanks (one allocation per order
/// besides the text, as an index of millions of profiles wants).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bought(Box<[(LineField, Box<str>)]>);

impl Bought {
    /// Collects the lines of one order; the product is the product id, else the sku.
    pub fn of_lines<'a>(lines: impl IntoIterator<Item = LineRef<'a>>) -> Bought {
        let mut all: Vec<(LineField, Box<str>)> = Vec::new();
        for l in lines {
            for (field, v) in [
                (LineField::Category, l.category),
                (LineField::Brand, l.brand),
                (LineField::Sku, l.sku),
                (LineField::Product, l.product_id.or(l.sku)),
            ] {
                if let Some(v) = v.filter(|v| !v.trim().is_empty()) {
                    all.push((field, v.into()));
                }
            }
        }
        all.sort_unstable();
        all.dedup();
        Bought(all.into_boxed_slice())
    }

    /// Every `(field, value)`, sorted (the compact encoding).
    pub fn entries(&self) -> &[(LineField, Box<str>)] {
        &self.0
    }

    /// From entries as [`Bought::entries`] gives them (sorted, distinct).
    pub fn from_entries(mut entries: Vec<(LineField, Box<str>)>) -> Bought {
        entries.sort_unstable();
        entries.dedup();
        Bought(entries.into_boxed_slice())
    }

    /// The values of one field, sorted.
    pub fn field(&self, field: LineField) -> impl Iterator<Item = &str> + '_ {
        let from = self.0.partition_point(|(f, _)| *f < field);
        self.0[from..]
            .iter()
            .take_while(move |(f, _)| *f == field)
            .map(|(_, v)| &**v)
    }
}

/// A field of an order line that segments can ask about (`categories_bought`,
/// `bought brand "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineField {
    /// `category`.
    Category,
    /// `brand`.
    Brand,
    /// `sku`.
    Sku,
    /// `product_id` (the sku when a line has none).
    Product,
}

impl LineField {
    /// Every field, in catalogue order.
    pub const ALL: [LineField; 4] = [
        LineField::Category,
        LineField::Brand,
        LineField::Sku,
        LineField::Product,
    ];

    /// The word after `bought` in the text language: `category`, `brand`, `sku`, `product`.
    pub fn word(self) -> &'static str {
        match self {
            LineField::Category => "category",
            LineField::Brand => "brand",
            LineField::Sku => "sku",
            LineField::Product => "product",
        }
    }

    /// The multi-valued trait of this field: `categories_bought`, `brands_bought`, ….
    pub fn trait_name(self) -> &'static str {
        match self {
            LineField::Category => "categories_bought",
            LineField::Brand => "brands_bought",
            LineField::Sku => "skus_bought",
            LineField::Product => "products_bought",
        }
    }

    /// The field named by `word` (case-insensitive).
    pub fn from_word(word: &str) -> Option<LineField> {
        LineField::ALL
            .into_iter()
            .find(|f| f.word().eq_ignore_ascii_case(word))
    }
}

impl OrderFact {
    /// Adds a refund or cancellation (once per messageId) and re-derives the refunded
    /// amount and the cancelled flag, the same way the store derives them.
    pub fn adjust(&mut self, message_id: &str, cancel: bool, amount: Option<i64>) {
        if self.adjustments.iter().any(|(m, _, _)| m == message_id) {
            return;
        }
        self.adjustments.push((message_id.to_owned(), cancel, amount));
        let mut refunded: i64 = 0;
        self.cancelled = false;
        for (_, cancel, amount) in &self.adjustments {
            if *cancel {
                self.cancelled = true;
            } else {
                refunded = refunded.saturating_add(amount.unwrap_or(self.total));
            }
        }
        self.refunded = refunded.clamp(0, self.total.max(0));
    }

    /// Net paid amount: total minus refunds; 0 when cancelled.
    pub fn net(&self) -> i64 {
        if self.cancelled {
            0
        } else {
            (self.total - self.refunded.clamp(0, self.total.max(0))).max(0)
        }
    }

    /// Whether it counts as a paid order: not cancelled and not fully refunded. An order
    /// of 0 元 (a free gift, a fully discounted basket) counts, as `lifetimes` counts it;
    /// a refund that leaves nothing paid takes an order out.
    pub fn counts(&self) -> bool {
        flywheel_core::OrderStatus::is_purchase(self.total, self.refunded, self.cancelled)
    }
}

/// A trait value with the rule that picks the winner (latest timestamp, then larger messageId).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitFact {
    /// The value as text (numbers and booleans in their JSON form).
    pub value: Box<str>,
    /// When it was set.
    pub ts: i64,
    /// The message that set it.
    pub message_id: Box<str>,
}

/// Everything the audience engine knows about one profile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// First customer event time (the system's own writes are not activity).
    pub first_seen: Option<i64>,
    /// Last customer event time (the system's own writes are not activity).
    pub last_active: Option<i64>,
    /// First sign-up event time.
    pub registered_at: Option<i64>,
    /// Last sign-in event time.
    pub last_sign_in: Option<i64>,
    /// Orders, sorted by time.
    pub orders: Vec<OrderFact>,
    /// Cart additions `(time, product id)`, sorted by time.
    pub carts: Vec<(i64, String)>,
    /// Profile traits (flattened one level: `address.city`).
    pub traits: SortedMap<Box<str>, TraitFact>,
    /// Registered event counters.
    pub counters: SortedMap<CounterId, CounterState>,
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) | (None, x) => x,
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) | (None, x) => x,
    }
}

/// The text form of a trait value (`None` for null, which unsets nothing).
pub fn trait_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

impl Facts {
    /// Records activity at `ts`.
    pub fn touch(&mut self, ts: i64) {
        self.first_seen = min_opt(self.first_seen, Some(ts));
        self.last_active = max_opt(self.last_active, Some(ts));
    }

    /// Records a sign-in.
    pub fn sign_in(&mut self, ts: i64) {
        self.last_sign_in = max_opt(self.last_sign_in, Some(ts));
    }

    /// Records a registration.
    pub fn sign_up(&mut self, ts: i64) {
        self.registered_at = min_opt(self.registered_at, Some(ts));
    }

    /// Records a cart addition.
    pub fn cart_add(&mut self, ts: i64, product: String) {
        let at = self.carts.partition_point(|(t, _)| *t <= ts);
        self.carts.insert(at, (ts, product));
    }

    /// Sets traits from an identify call (latest timestamp wins, ties by messageId);
    /// nested objects are flattened one level (`address.city`). Only keys `keep`
    /// accepts are kept.
    pub fn set_traits(
        &mut self,
        traits: &Map<String, Value>,
        ts: i64,
        message_id: &str,
        keep: &dyn Fn(&str) -> bool,
    ) {
        for (k, v) in traits {
            if let Value::Object(inner) = v {
                for (k2, v2) in inner {
                    let key = format!("{k}.{k2}");
                    if keep(&key) {
                        self.set_trait(key, v2, ts, message_id);
                    }
                }
            } else if keep(k) {
                self.set_trait(k.clone(), v, ts, message_id);
            }
        }
    }

    fn set_trait(&mut self, key: String, v: &Value, ts: i64, message_id: &str) {
        let Some(value) = trait_text(v) else {
            return;
        };
        self.set_trait_text(key, value, ts, message_id);
    }

    /// Sets one trait from its text form under the winner rule.
    pub fn set_trait_text(&mut self, key: String, value: String, ts: i64, message_id: &str) {
        let newer = self
            .traits
            .get(key.as_str())
            .is_none_or(|old| (ts, message_id) > (old.ts, &*old.message_id));
        if newer {
            self.traits.insert(
                key.into_boxed_str(),
                TraitFact {
                    value: value.into_boxed_str(),
                    ts,
                    message_id: message_id.into(),
                },
            );
        }
    }

    /// Adds an order (ignored when the order id is already known).
    pub fn add_order(&mut self, order: OrderFact) -> bool {
        if self.orders.iter().any(|o| o.order_id == order.order_id) {
            return false;
        }
        let at = self
            .orders
            .partition_point(|o| (o.at, &o.order_id) <= (order.at, &order.order_id));
        self.orders.insert(at, order);
        true
    }

    /// The order with this id, to apply an adjustment.
    pub fn order_mut(&mut self, order_id: &str) -> Option<&mut OrderFact> {
        self.orders.iter_mut().find(|o| o.order_id == order_id)
    }

    /// Moves everything of `other` (a merged-away profile) into `self`.
    pub fn merge(&mut self, other: Facts) {
        self.first_seen = min_opt(self.first_seen, other.first_seen);
        self.last_active = max_opt(self.last_active, other.last_active);
        self.registered_at = min_opt(self.registered_at, other.registered_at);
        self.last_sign_in = max_opt(self.last_sign_in, other.last_sign_in);
        for o in other.orders {
            if !self.orders.iter().any(|m| m.order_id == o.order_id) {
                self.orders.push(o);
            }
        }
        self.orders
            .sort_by(|a, b| (a.at, &a.order_id).cmp(&(b.at, &b.order_id)));
        self.carts.extend(other.carts);
        self.carts.sort();
        for (k, t) in other.traits {
            self.set_trait_text(k.into(), t.value.into(), t.ts, &t.message_id);
        }
        for (id, c) in other.counters {
            self.counters.entry_or_default(id).merge(c);
        }
    }

    /// Paid orders inside window `w` (all time when `None`) at `now`.
    pub fn orders_in<'a>(
        &'a self,
        windowing: &'a Windowing,
        now: i64,
        w: Option<Duration>,
    ) -> impl Iterator<Item = &'a OrderFact> + 'a {
        let start = w.map(|d| windowing.start(now, d));
        self.orders
            .iter()
            .filter(move |o| o.counts() && start.is_none_or(|s| o.at > s))
    }

    /// The distinct values of `field` over the lines of paid orders inside window `w`
    /// (all time when `None`), sorted: `categories_bought(90d)` and its kin.
    pub fn bought(
        &self,
        windowing: &Windowing,
        now: i64,
        w: Option<Duration>,
        field: LineField,
    ) -> Vec<String> {
        let mut out: BTreeSet<&str> = BTreeSet::new();
        for o in self.orders_in(windowing, now, w) {
            out.extend(o.bought.field(field));
        }
        out.into_iter().map(str::to_owned).collect()
    }

    /// First and last paid order times.
    pub fn order_span(&self) -> (Option<i64>, Option<i64>) {
        let mut paid = self.orders.iter().filter(|o| o.counts());
        let first = paid.next().map(|o| o.at);
        let last = self.orders.iter().rev().find(|o| o.counts()).map(|o| o.at);
        (first, last)
    }

    /// Cart additions inside window `w` whose product was not bought at or after the addition.
    pub fn unbought_cart_items(&self, windowing: &Windowing, now: i64, w: Duration) -> i64 {
        let start = windowing.start(now, w);
        let mut open: BTreeSet<&str> = BTreeSet::new();
        for (t, p) in self.carts.iter().filter(|(t, _)| *t > start) {
            let bought_later = self.orders.iter().any(|o| {
                o.counts() && o.at >= *t && o.bought.field(LineField::Product).any(|x| x == p.as_str())
            });
            if !bought_later {
                open.insert(p);
            }
        }
        open.len() as i64
    }

    /// The first instant after `now` at which a value over one of `windows` changes by
    /// time alone (an order, a cart addition or a counted event leaving a window).
    pub fn next_change(&self, windowing: &Windowing, now: i64, windows: &[Duration]) -> Option<i64> {
        let mut next: Option<i64> = None;
        let mut consider = |t: i64, d: Duration| {
            let leaves = windowing.leaves_at(t, d);
            if leaves > now {
                next = Some(next.map_or(leaves, |n: i64| n.min(leaves)));
            }
        };
        for &d in windows {
            let start = windowing.start(now, d);
            if let Some(o) = self.orders.iter().find(|o| o.at > start) {
                consider(o.at, d);
            }
            if let Some((t, _)) = self.carts.iter().find(|(t, _)| *t > start) {
                consider(*t, d);
            }
        }
        for c in self.counters.values() {
            if let Some(d) = c.window {
                if let Some(&t) = c.recent.iter().find(|t| windowing.contains(now, d, **t)) {
                    consider(t, d);
                }
            }
        }
        next
    }
}

#[cfg(test)]
mod order_tests {
    use super::OrderFact;

    fn order(total: i64, refunded: i64, cancelled: bool) -> OrderFact {
        OrderFact {
            order_id: "o".into(),
            at: 0,
            total,
            refunded,
            cancelled,
            promo: false,
            bought: Default::default(),
            adjustments: vec![],
        }
    }

    #[test]
    fn zero_value_orders_count_and_only_cancelled_or_fully_refunded_ones_do_not() {
        assert!(order(0, 0, false).counts(), "a 0 元 order is an order");
        assert!(order(10_000, 5_000, false).counts());
        assert!(!order(10_000, 10_000, false).counts(), "fully refunded");
        assert!(!order(0, 0, true).counts(), "cancelled");
        assert!(!order(10_000, 0, true).counts(), "cancelled");
    }
}
