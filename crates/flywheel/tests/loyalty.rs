//! Points and tiers through the real binary: a tracked paid order earns points by
//! itself, a referral is rewarded by the invitee's first order, check-in and spend work
//! over HTTP, a cancellation claws the points back, the tier follows spend.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Server, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

fn send(s: &Server, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = ureq::request(method, &format!("{}{path}", s.url))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send_string(&body.to_string());
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

/// `send` with an `Idempotency-Key` header.
fn send_keyed(s: &Server, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let r = ureq::post(&format!("{}{path}", s.url))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .set("Idempotency-Key", key)
        .send_string(&body.to_string());
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

fn wait_for(s: &Server, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = send(s, "GET", path, &json!(null));
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never became what was expected: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn orders_earn_points_and_reward_referrals_by_themselves() {
    let site = Site::new(Backend::Sqlite, "loyalty").unwrap();
    let key = site.write_key();
    let s = site.serve(&[]);
    // A referral program paying the inviter 100 points.
    assert_eq!(
        send(
            &s,
            "PUT",
            "/api/v1/referral-program",
            &json!({"inviter_reward": {"points": 100}})
        )
        .0,
        200
    );
    let (_, code) = send(&s, "GET", "/api/v1/users/alice/invite-code", &json!(null));
    assert_eq!(
        send(
            &s,
            "POST",
            "/api/v1/referrals",
            &json!({"code": code["code"], "invitee": "bob"})
        )
        .0,
        201
    );
    // bob's first paid order of 1234.56 元 through the tracking API.
    let r = s.post(
        "/v1/track",
        Some(&key),
        &json!({"userId": "bob", "event": "Order Completed", "messageId": "o1",
                "properties": {"order_id": "O-1", "total": 1234.56, "products": [{"product_id": "P", "price": 1234.56, "quantity": 1}]}}),
    );
    assert_eq!(r.status, 200);
    let points = wait_for(&s, "/api/v1/users/bob/points", |v| v["balance"] == 1234);
    assert_eq!(points["entries"][0]["source"], "order");
    let referral = wait_for(&s, "/api/v1/referrals/bob", |v| v["state"] == "rewarded");
    assert_eq!(referral["rewards"]["inviter"]["points"], 100);
    // Check-in, spend, refusals.
    let (status, posted) = send(&s, "POST", "/api/v1/users/bob/points/check-in", &json!(null));
    assert_eq!((status, posted["balance"].clone()), (200, json!(1239)));
    let (_, again) = send(&s, "POST", "/api/v1/users/bob/points/check-in", &json!(null));
    assert_eq!(again["repeated"], true);
    let (status, spent) = send(
        &s,
        "POST",
        "/api/v1/users/bob/points/spend",
        &json!({"points": 239, "reason_key": "gift-1"}),
    );
    assert_eq!((status, spent["balance"].clone()), (200, json!(1000)));
    let (status, e) = send(
        &s,
        "POST",
        "/api/v1/users/bob/points/spend",
        &json!({"points": 5000, "reason_key": "gift-2"}),
    );
    assert_eq!((status, e["code"].clone()), (409, json!("insufficient_points")));
    // 積分兌換: 500 points for a coupon; too few points leave both untouched.
    let t = json!({"id": "積分券", "name": "積分兌換5元", "benefit": {"type": "amount", "off": 500},
                   "validity": {"type": "days_after_issue", "days": 30}});
    assert_eq!(send(&s, "POST", "/api/v1/coupon-templates", &t).0, 201);
    let (status, r) = send_keyed(
        &s,
        "/api/v1/users/bob/points/redeem",
        "bob-exchange-1",
        &json!({"template_id": "積分券", "points": 500}),
    );
    assert_eq!((status, r["points"]["balance"].clone()), (200, json!(500)), "{r}");
    let (status, r) = send_keyed(
        &s,
        "/api/v1/users/bob/points/redeem",
        "bob-exchange-2",
        &json!({"template_id": "積分券", "points": 900}),
    );
    assert_eq!((status, r["code"].clone()), (409, json!("insufficient_points")));
    let (_, wallet) = send(&s, "GET", "/api/v1/users/bob/coupons", &json!(null));
    assert_eq!(wallet["coupons"].as_array().map(Vec::len), Some(1));
    let (_, tier) = send(&s, "GET", "/api/v1/users/bob/tier", &json!(null));
    assert_eq!(
        (tier["tier"].clone(), tier["spend_365d"].clone()),
        (json!("白銀"), json!(123456))
    );
    // Growth: today is an active day (1) with one counted order (10); check-ins, spends
    // and exchanges are not events.
    assert_eq!(
        (
            tier["growth_365d"].clone(),
            tier["activity_365d"]["orders"].clone()
        ),
        (json!(11), json!(1)),
        "{tier}"
    );
    // The order is cancelled: its points are clawed back from the balance.
    let r = s.post(
        "/v1/track",
        Some(&key),
        &json!({"userId": "bob", "event": "Order Cancelled", "messageId": "c1",
                                                 "properties": {"order_id": "O-1"}}),
    );
    assert_eq!(r.status, 200);
    let after = wait_for(&s, "/api/v1/users/bob/points", |v| v["balance"] == 0);
    // 1234 earned, 5 checked in, 239 and 500 spent: the claw-back takes the 500 left (check-in
    // points included) and records the 734 already spent as the shortfall.
    let claw = after["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "clawback")
        .cloned()
        .unwrap();
    assert_eq!(
        (claw["points"].clone(), claw["shortfall"].clone()),
        (json!(-500), json!(734))
    );
    wait_for(&s, "/api/v1/referrals/bob", |v| v["state"] == "clawed_back");
}

/// A graceful stop (SIGTERM) right after a batch of paid orders still posts every
/// order's points: the order hooks queued by the batch are applied before the exit.
#[test]
fn a_graceful_stop_applies_every_queued_order_hook() {
    let site = Site::new(Backend::Sqlite, "loyalty_stop").unwrap();
    let key = site.write_key();
    let s = site.serve(&[]);
    let n = 400;
    let batch: Vec<Value> = (0..n)
        .map(|i| {
            json!({"type": "track", "userId": format!("u{i}"), "event": "Order Completed",
                   "messageId": format!("o{i}"),
                   "properties": {"order_id": format!("O-{i}"), "total": 100 + i, "products": []}})
        })
        .collect();
    let r = s.post("/v1/batch", Some(&key), &json!({ "batch": batch }));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(s.terminate().success());
    let s = site.serve(&[]);
    for i in 0..n {
        let (_, v) = send(&s, "GET", &format!("/api/v1/users/u{i}/points"), &json!(null));
        assert_eq!(v["balance"], json!(100 + i), "u{i}: {v}");
    }
}

/// A crash (SIGKILL) right after a batch of paid orders loses no points: the hooks follow
/// the stored event log, so the next start applies what the crash cut short, once.
#[test]
fn a_crash_loses_no_order_points() {
    let site = Site::new(Backend::Sqlite, "loyalty_crash").unwrap();
    let key = site.write_key();
    let s = site.serve(&[]);
    let n = 400;
    let batch: Vec<Value> = (0..n)
        .map(|i| {
            json!({"type": "track", "userId": format!("c{i}"), "event": "Order Completed",
                   "messageId": format!("c{i}"),
                   "properties": {"order_id": format!("C-{i}"), "total": 200 + i, "products": []}})
        })
        .collect();
    assert_eq!(
        s.post("/v1/batch", Some(&key), &json!({ "batch": batch })).status,
        200
    );
    s.kill();
    let s = site.serve(&[]);
    for i in 0..n {
        let v = wait_for(&s, &format!("/api/v1/users/c{i}/points"), |v| {
            v["balance"] == json!(200 + i)
        });
        assert_eq!(
            v["entries"].as_array().map(Vec::len),
            Some(1),
            "c{i} earned once: {v}"
        );
    }
}
