//! Event counters: "performed X at least N times in the last D days".
//!
//! A counter is registered once per distinct `event(name, within, where)` condition in
//! use. Each profile keeps, per counter, the all-time count and the timestamps of
//! matching events still inside the window; counts at `now` come from those, and the
//! window rolls over as time passes (old timestamps are pruned), never by rescanning
//! the event log.

use serde_json::{Map, Value as Json};

use crate::dsl::ast::{Duration, PropertyFilter, Value};
use crate::window::Windowing;

/// Identifies a registered counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterId(pub u32);

/// What a counter counts.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterSpec {
    /// The event name.
    pub name: String,
    /// The window, `None` for all time.
    pub window: Option<Duration>,
    /// Property filters (all must hold).
    pub filters: Vec<PropertyFilter>,
}

impl CounterSpec {
    /// A stable text key (the column name of the counter).
    pub fn key(&self) -> String {
        let filters = serde_json::to_string(&self.filters).unwrap_or_default();
        match self.window {
            Some(w) => format!("event({:?},{w},{filters})", self.name),
            None => format!("event({:?},all,{filters})", self.name),
        }
    }

    /// Whether an event named `name` with `properties` is counted: every filter holds
    /// for some value at its path (see [`any_at`]).
    pub fn matches(&self, name: &str, properties: &Map<String, Json>) -> bool {
        name == self.name
            && self.filters.iter().all(|f| {
                any_in(properties, &f.property, &|v| {
                    f.values.iter().any(|want| value_eq(want, v))
                })
            })
    }
}

/// Whether some value at `path` of `map` satisfies `ok`. Dots reach into nested
/// objects (`product.brand`), and a list met on the way is searched element by element,
/// so `products.category` holds when any product of a Segment-spec order
/// (`properties.products[]`) has that category, and `tags: "x"` holds for a list of
/// tags containing "x". A key that itself contains dots is tried as written first.
pub fn any_in(map: &Map<String, Json>, path: &str, ok: &dyn Fn(&Json) -> bool) -> bool {
    if map.get(path).is_some_and(|v| any_at(v, None, ok)) {
        return true;
    }
    let Some((head, rest)) = path.split_once('.') else {
        return false;
    };
    map.get(head).is_some_and(|v| any_at(v, Some(rest), ok))
}

/// [`any_in`] below one value: `rest` is the path still to follow (`None`: this value).
fn any_at(v: &Json, rest: Option<&str>, ok: &dyn Fn(&Json) -> bool) -> bool {
    match (v, rest) {
        (Json::Array(items), _) => items.iter().any(|item| any_at(item, rest, ok)),
        (_, None) => ok(v),
        (Json::Object(inner), Some(path)) => any_in(inner, path, ok),
        _ => false,
    }
}

/// Whether a literal of the language equals a JSON property value.
pub fn value_eq(want: &Value, got: &Json) -> bool {
    match (want, got) {
        (Value::Str(a), Json::String(b)) => a == b,
        (Value::Str(a), Json::Number(n)) => a == &n.to_string(),
        (Value::Bool(a), Json::Bool(b)) => a == b,
        (Value::Number(a), Json::Number(n)) => n.as_f64() == Some(*a),
        (Value::Number(a), Json::String(s)) => s.parse::<f64>().ok() == Some(*a),
        (Value::Money(m), Json::Number(n)) => {
            flywheel_core::Fen::parse_decimal(&n.to_string()).is_ok_and(|f| f.0 == m.fen)
        }
        (Value::Money(m), Json::String(s)) => {
            flywheel_core::Fen::parse_decimal(s).is_ok_and(|f| f.0 == m.fen)
        }
        _ => false,
    }
}

/// One profile's state of one counter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterState {
    /// The counter's window (copied here so roll-over needs no lookup).
    pub window: Option<Duration>,
    /// All matching events ever seen.
    pub all: u64,
    /// Times of matching events that may still be inside the window, sorted.
    pub recent: Vec<i64>,
}

impl CounterState {
    /// Records one matching event at `ts`.
    pub fn record(&mut self, window: Option<Duration>, ts: i64) {
        self.window = window;
        self.all += 1;
        if window.is_some() {
            let at = self.recent.partition_point(|t| *t <= ts);
            self.recent.insert(at, ts);
        }
    }

    /// Adds another profile's state (profile merge).
    pub fn merge(&mut self, other: CounterState) {
        self.window = self.window.or(other.window);
        self.all += other.all;
        self.recent.extend(other.recent);
        self.recent.sort_unstable();
    }

    /// The count at `now`.
    pub fn count(&self, windowing: &Windowing, now: i64) -> i64 {
        match self.window {
            None => self.all as i64,
            Some(d) => {
                let start = windowing.start(now, d);
                (self.recent.len() - self.recent.partition_point(|t| *t <= start)) as i64
            }
        }
    }

    /// Forgets timestamps that have left the window for good (`now` only moves forward).
    pub fn prune(&mut self, windowing: &Windowing, now: i64) {
        if let Some(d) = self.window {
            let start = windowing.start(now, d);
            let cut = self.recent.partition_point(|t| *t <= start);
            self.recent.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(filters: serde_json::Value) -> CounterSpec {
        CounterSpec {
            name: "Order Completed".into(),
            window: None,
            filters: serde_json::from_value(filters).unwrap(),
        }
    }

    fn props(v: serde_json::Value) -> Map<String, Json> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn filters_reach_into_the_products_of_an_order() {
        let order = props(json!({"order_id": "o1", "products": [
            {"product_id": "P1", "sku": "S1", "category": "護膚", "brand": "雪花秀"},
            {"product_id": "P2", "sku": "S2", "category": "彩妝", "brand": "后", "tags": ["新品", "限量"]},
        ]}));
        let matches = |f| spec(f).matches("Order Completed", &order);
        assert!(matches(
            json!([{"property": "products.category", "values": ["彩妝"]}])
        ));
        assert!(matches(
            json!([{"property": "products.category", "values": ["母嬰", "護膚"]}])
        ));
        assert!(!matches(
            json!([{"property": "products.category", "values": ["母嬰"]}])
        ));
        assert!(matches(json!([{"property": "products.sku", "values": ["S2"]}])));
        assert!(matches(
            json!([{"property": "products.tags", "values": ["限量"]}])
        ));
        // Each filter looks at the products on its own.
        assert!(matches(json!([
            {"property": "products.category", "values": ["護膚"]},
            {"property": "products.brand", "values": ["后"]},
        ])));
        assert!(!matches(json!([{"property": "products", "values": ["P1"]}])));
        assert!(!matches(json!([{"property": "products.price", "values": [1.0]}])));
        // A single-product event keeps its flat properties, and nested objects still work.
        let added = props(json!({"category": "彩妝", "product": {"brand": "后"}, "a.b": 1}));
        let added_matches = |f| {
            let mut s = spec(f);
            s.name = "Product Added".into();
            s.matches("Product Added", &added)
        };
        assert!(added_matches(
            json!([{"property": "category", "values": ["彩妝"]}])
        ));
        assert!(added_matches(
            json!([{"property": "product.brand", "values": ["后"]}])
        ));
        assert!(added_matches(json!([{"property": "a.b", "values": [1.0]}])));
        assert!(!added_matches(
            json!([{"property": "products.category", "values": ["彩妝"]}])
        ));
        assert!(!spec(json!([])).matches("Product Added", &order));
    }
}
