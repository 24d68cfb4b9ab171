//! What the store-backed analytics tests share: Shanghai wall-clock times, and Segment
//! messages sent through the real ingest pipeline.

#![allow(dead_code)]

use chrono::TimeZone;
use flywheel_core::time::from_millis;
use flywheel_ingest::ecommerce::materialise;
use flywheel_ingest::message::{parse, Envelope};
use flywheel_ingest::Pipeline;
use serde_json::{json, Value};

/// `YYYY-MM-DD HH:MM[:SS.mmm]` in Asia/Shanghai, as ms.
pub fn sh(s: &str) -> i64 {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.3f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .unwrap();
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&t)
        .unwrap()
        .timestamp_millis()
}

/// Sends `msg` at `at` (message id `m{n}`, `n` counted up).
pub async fn send(p: &Pipeline, n: &mut u32, mut msg: Value, at: i64) {
    *n += 1;
    msg["messageId"] = json!(format!("m{n}"));
    msg["timestamp"] = json!(from_millis(at).to_rfc3339());
    let env = Envelope {
        index: 0,
        kind: None,
        received_at: Some(from_millis(at)),
        sent_at: None,
        context: None,
        integrations: None,
        ..Default::default()
    };
    let ev = materialise(parse(msg, &env).unwrap().event, None, 0).unwrap();
    p.submit(vec![ev]).await.unwrap();
}

/// A track call.
pub fn track(user: &str, name: &str, props: Value) -> Value {
    json!({"type": "track", "userId": user, "event": name, "properties": props})
}

/// An `Order Completed` of `total` 元 without lines.
pub fn order(user: &str, id: &str, total: i64) -> Value {
    track(
        user,
        "Order Completed",
        json!({"order_id": id, "total": total, "products": []}),
    )
}
