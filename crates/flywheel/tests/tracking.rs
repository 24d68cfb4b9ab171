//! End to end through the real binary: the Segment-compatible tracking API, identity
//! resolution, e-commerce materialisation and the admin read API, on SQLite and PostgreSQL.

mod common;

use std::io::Write;

use common::{Backend, Site};
use serde_json::json;

fn roundtrip(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    // Single calls with Basic auth, anonymous browsing first.
    let r = s.post(
        "/v1/page",
        Some(&key),
        &json!({"anonymousId": "dev-1", "name": "首頁", "messageId": "p1"}),
    );
    assert_eq!((r.status, r.body.clone()), (200, json!({"success": true})));
    let r = s.post(
        "/v1/track",
        Some(&key),
        &json!({"anonymousId": "dev-1", "event": "Product Viewed", "messageId": "t1",
                "properties": {"product_id": "P1", "name": "面膜", "category": "護膚", "price": 99.9}}),
    );
    assert_eq!(r.status, 200);
    // Identify links the device to the user; writeKey in the body instead of Basic.
    let r = s.post(
        "/v1/identify",
        None,
        &json!({"anonymousId": "dev-1", "userId": "u-1", "messageId": "i1", "writeKey": key,
                "traits": {"name": "李雷", "city": "上海"}}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    for (path, body) in [
        (
            "/v1/screen",
            json!({"userId": "u-1", "name": "Cart", "messageId": "s1"}),
        ),
        (
            "/v1/group",
            json!({"userId": "u-1", "groupId": "g-1", "messageId": "g1", "traits": {"name": "VIP"}}),
        ),
        (
            "/v1/alias",
            json!({"userId": "u-1", "previousId": "old-1", "messageId": "a1"}),
        ),
    ] {
        assert_eq!(s.post(path, Some(&key), &body).status, 200, "{path}");
    }
    // A batch with batch-level writeKey and context; an order and a partial refund.
    let r = s.post(
        "/v1/batch",
        None,
        &json!({"writeKey": key, "context": {"library": {"name": "e2e"}}, "batch": [
            {"type": "track", "userId": "u-1", "event": "Order Completed", "messageId": "b1",
             "timestamp": "2024-11-11T04:00:00Z",
             "properties": {"order_id": "O-1", "total": 1000.01, "coupon": "滿300減50", "discount": 50,
                            "products": [{"product_id": "P1", "sku": "S1", "name": "面膜", "category": "護膚",
                                          "brand": "B", "price": 525.005, "quantity": 2}]}},
            {"type": "track", "userId": "u-1", "event": "Order Refunded", "messageId": "b2",
             "timestamp": "2024-11-12T04:00:00Z", "properties": {"order_id": "O-1", "total": 100}}
        ]}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    // /v1/import is an alias of /v1/batch; per-item writeKey.
    let r = s.post(
        "/v1/import",
        None,
        &json!({"batch": [{"type": "identify", "userId": "old-1", "messageId": "im1", "writeKey": key,
                           "traits": {"gender": "男"}, "timestamp": "2020-01-01T00:00:00Z"}]}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    // gzip body.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(
        json!({"batch": [{"type": "track", "userId": "u-1", "event": "Signed In", "messageId": "z1"}]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let r = s.post_raw(
        "/v1/batch",
        Some(&key),
        &[("Content-Encoding", "gzip")],
        &gz.finish().unwrap(),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Every id finds the same merged profile.
    let p = s.get("/api/v1/profiles/dev-1").body;
    for id in ["u-1", "old-1", "user:u-1", "anon:dev-1", "user:old-1"] {
        assert_eq!(s.get(&format!("/api/v1/profiles/{id}")).body, p, "{id}");
    }
    assert_eq!(p["id"], "user:old-1");
    assert_eq!(p["user_ids"], json!(["old-1", "u-1"]));
    assert_eq!(p["anonymous_ids"], json!(["dev-1"]));
    assert_eq!(
        p["traits"],
        json!({"name": "李雷", "city": "上海", "gender": "男"})
    );
    assert_eq!(p["event_count"], 10);
    assert_eq!(p["first_seen"], "2020-01-01T00:00:00Z");
    // Timeline paging.
    let page = s.get("/api/v1/profiles/u-1/events?limit=4").body;
    assert_eq!(page["events"].as_array().unwrap().len(), 4);
    let next = page["next_cursor"].as_str().unwrap().to_string();
    let rest = s
        .get(&format!("/api/v1/profiles/u-1/events?limit=100&cursor={next}"))
        .body;
    assert_eq!(rest["events"].as_array().unwrap().len(), 6);
    assert!(rest["next_cursor"].is_null());
    let first = &page["events"][0];
    assert_eq!(first["messageId"], "z1");
    // Batch context reached the items.
    let all = s.get("/api/v1/profiles/u-1/events?limit=100").body;
    let order_event = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["messageId"] == "b1")
        .unwrap();
    assert_eq!(order_event["context"]["library"]["name"], "e2e");
    // The order, in fen, with its refund.
    let orders = s.get("/api/v1/profiles/u-1/orders").body;
    let o = &orders["orders"][0];
    assert_eq!(o["order_id"], "O-1");
    assert_eq!(o["total_fen"], 100_001);
    assert_eq!(o["discount_fen"], 5_000);
    assert_eq!(o["refunded_fen"], 10_000);
    assert_eq!(o["status"], "partially_refunded");
    assert_eq!(o["lines"][0]["price"], 52_501);
    assert_eq!(o["lines"][0]["quantity"], 2);
    // Profile list.
    let list = s.get("/api/v1/profiles?limit=10").body;
    assert_eq!(list["profiles"].as_array().unwrap().len(), 1);
    // The CLI sees the same profile.
    drop(s);
    let out = site.cli(&["profile", "show", "dev-1", "--format", "json"]);
    assert!(out.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["profile"], p);
}
on_each_backend!(tracking_roundtrip, roundtrip);

fn retries(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    let batch = json!({"batch": (0..50).map(|i| json!({"type": "track", "userId": "r", "event": "Product Viewed", "messageId": format!("r{i}")})).collect::<Vec<_>>()});
    for _ in 0..3 {
        assert_eq!(s.post("/v1/batch", Some(&key), &batch).status, 200);
    }
    let p = s.get("/api/v1/profiles/r").body;
    assert_eq!(p["event_count"], 50);
    assert_eq!(
        s.get("/api/v1/profiles/r/events?limit=1000").body["events"]
            .as_array()
            .unwrap()
            .len(),
        50
    );
}
on_each_backend!(retried_batches_never_duplicate, retries);
