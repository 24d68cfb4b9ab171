//! Ids sent as JSON numbers, read from their exact text.
//!
//! Ids are strings. An SDK may still send `"userId": 123456789012345678901234`; parsed
//! into a `serde_json::Value` such a number becomes a float (`1.2345678901234568e23`),
//! and two customers whose ids differ in the last digits would become one. So before a
//! message is validated, every id field holding a number that is not an exact integer
//! (beyond 64 bits, or written with a fraction or an exponent) is replaced by a string
//! of its text as sent: `123456789012345678901234` stays itself, `1.0` is `"1.0"` and
//! `1e3` is `"1e3"` (not `"1000"`). Integers that fit 64 bits are exact already and
//! read as their decimal text by [`crate::message`].
//!
//! The fields are the message's `userId`, `anonymousId`, `groupId`, `previousId`,
//! `messageId` (and the import spellings `user_id`, `anonymous_id`, `message_id`), and
//! the e-commerce ids `order_id`, `product_id`, `sku` and `coupon` at the top, in
//! `properties` and in each `products[]` line. Only when one of them holds such a number
//! is the message's text read a second time (with `RawValue`, borrowing, no copies), so
//! ordinary messages cost one look at those fields. Enabling serde_json's
//! `arbitrary_precision` instead would change how every crate of the workspace reads
//! and compares numbers.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Field names that hold ids.
const ID_KEYS: &[&str] = &[
    "userId",
    "anonymousId",
    "groupId",
    "previousId",
    "messageId",
    "user_id",
    "anonymous_id",
    "message_id",
    "order_id",
    "product_id",
    "sku",
    "coupon",
];

/// One step into a JSON document.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Replaces, in `value` (parsed from `raw`), every id field holding an inexact number
/// with a string of its exact JSON text.
pub fn exact_ids(raw: &str, value: &mut Value) {
    let Value::Object(root) = value else {
        return;
    };
    let mut paths = Vec::new();
    inexact(root, &[], &mut paths);
    if let Some(Value::Object(props)) = root.get("properties") {
        let at = [Step::Key("properties".into())];
        inexact(props, &at, &mut paths);
        lines(props, &at, &mut paths);
    }
    lines(root, &[], &mut paths);
    for path in paths {
        if let Some(text) = raw_at(raw, &path) {
            set(value, &path, Value::String(text.to_string()));
        }
    }
}

/// Paths of the id fields of `map` that hold a number a float cannot carry exactly.
fn inexact(map: &Map<String, Value>, at: &[Step], out: &mut Vec<Vec<Step>>) {
    for (k, v) in map {
        if matches!(v, Value::Number(n) if n.is_f64()) && ID_KEYS.contains(&k.as_str()) {
            let mut path = at.to_vec();
            path.push(Step::Key(k.clone()));
            out.push(path);
        }
    }
}

/// The same for each line of `map`'s `products` array.
fn lines(map: &Map<String, Value>, at: &[Step], out: &mut Vec<Vec<Step>>) {
    if let Some(Value::Array(items)) = map.get("products") {
        for (i, item) in items.iter().enumerate() {
            if let Value::Object(line) = item {
                let mut path = at.to_vec();
                path.extend([Step::Key("products".into()), Step::Index(i)]);
                inexact(line, &path, out);
            }
        }
    }
}

/// The exact text of the value at `path` in the JSON text `raw`. For a key given twice
/// the last wins, as it does when `serde_json` builds a `Value`.
fn raw_at<'a>(raw: &'a str, path: &[Step]) -> Option<&'a str> {
    let mut cur = raw;
    for step in path {
        cur = match step {
            Step::Key(k) => {
                let m: HashMap<String, &'a RawValue> = serde_json::from_str(cur).ok()?;
                m.get(k)?.get()
            }
            Step::Index(i) => {
                let a: Vec<&'a RawValue> = serde_json::from_str(cur).ok()?;
                a.get(*i)?.get()
            }
        };
    }
    Some(cur.trim())
}

fn set(value: &mut Value, path: &[Step], new: Value) {
    let mut cur = value;
    for step in path {
        let next = match (step, cur) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k),
            (Step::Index(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else {
            return;
        };
        cur = next;
    }
    *cur = new;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(raw: &str) -> Value {
        let mut v: Value = serde_json::from_str(raw).unwrap();
        exact_ids(raw, &mut v);
        v
    }

    #[test]
    fn big_and_decimal_ids_keep_their_text() {
        let v = fixed(
            r#"{"userId": 123456789012345678901234, "anonymousId": 1.0, "messageId": 1e3,
                "groupId": 7, "properties": {"order_id": 99999999999999999999.5, "total": 1.5,
                "products": [{"product_id": 123456789012345678901235, "sku": 2E2, "price": 1e2}]}}"#,
        );
        assert_eq!(v["userId"], "123456789012345678901234");
        assert_eq!(v["anonymousId"], "1.0");
        assert_eq!(v["messageId"], "1e3");
        assert_eq!(v["groupId"], 7, "exact integers are left as they are");
        assert_eq!(v["properties"]["order_id"], "99999999999999999999.5");
        assert_eq!(v["properties"]["total"], 1.5, "amounts are not ids");
        assert_eq!(
            v["properties"]["products"][0]["product_id"],
            "123456789012345678901235"
        );
        assert_eq!(v["properties"]["products"][0]["sku"], "2E2");
        assert_eq!(v["properties"]["products"][0]["price"], 100.0);
    }

    #[test]
    fn last_duplicate_key_wins_as_in_the_value() {
        let v = fixed(r#"{"userId": 1, "userId": 123456789012345678901234}"#);
        assert_eq!(v["userId"], "123456789012345678901234");
        let v = fixed(r#"{"user_id": 1.5e40, "products": [{"product_id": 3.25}]}"#);
        assert_eq!(v["user_id"], "1.5e40");
        assert_eq!(v["products"][0]["product_id"], "3.25");
    }
}
