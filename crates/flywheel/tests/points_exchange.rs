//! Points for a coupon (積分兌換) through the real binary on SQLite and PostgreSQL: one
//! idempotent operation per `Idempotency-Key`. 50 concurrent retries of one request give
//! one coupon, one spend and 50 identical answers; another key is another exchange; a key
//! reused for another request, a missing key, too few points and a user outside the
//! template's audience are refused with nothing written; and a process killed inside the
//! exchange (test-only `FLYWHEEL_FAULTS`) leaves neither a coupon nor a spend, so a retry
//! after the restart exchanges exactly once.

mod common;

use common::{Backend, Server, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

/// An admin POST with an optional Idempotency-Key: (status, replayed header, body).
fn exchange(url: &str, user: &str, key: Option<&str>, body: &Value) -> (u16, bool, Value) {
    let mut req = ureq::post(&format!("{url}/api/v1/users/{user}/points/redeem"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"));
    if let Some(k) = key {
        req = req.set("Idempotency-Key", k);
    }
    let r = match req.send_string(&body.to_string()) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let replayed = r.header("Idempotency-Replayed") == Some("true");
    (r.status(), replayed, r.into_json().unwrap_or(Value::Null))
}

/// Tracks a paid order of `yuan` 元 for `user` and waits for its points.
fn earn(s: &Server, key: &str, user: &str, order: &str, yuan: i64, balance: i64) {
    let r = s.post(
        "/v1/track",
        Some(key),
        &json!({"userId": user, "event": "Order Completed", "messageId": order,
                "properties": {"order_id": order, "total": yuan,
                               "products": [{"product_id": "P", "price": yuan, "quantity": 1}]}}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    s.wait_for(&format!("/api/v1/users/{user}/points"), |v| {
        v["balance"] == balance
    });
}

/// (balance, spend entries of source `exchange`, coupons held) of `user`.
fn state(s: &Server, user: &str) -> (i64, usize, usize) {
    let points = s.get(&format!("/api/v1/users/{user}/points?limit=100")).body;
    let spends = points["entries"]
        .as_array()
        .map_or(0, |es| es.iter().filter(|e| e["source"] == "exchange").count());
    let coupons = s.get(&format!("/api/v1/users/{user}/coupons")).body;
    (
        points["balance"].as_i64().unwrap_or(-1),
        spends,
        coupons["coupons"].as_array().map_or(0, Vec::len),
    )
}

fn template(s: &Server, id: &str, audience: Option<&str>) {
    let mut t = json!({"id": id, "name": "積分兌換10元", "benefit": {"type": "amount", "off": 1000},
                       "validity": {"type": "days_after_issue", "days": 30}});
    if let Some(a) = audience {
        t["audience"] = json!(a);
    }
    let r = s.admin_post("/api/v1/coupon-templates", &t);
    assert_eq!(r.status, 201, "{:?}", r.body);
}

fn exchanges_once_per_key(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    earn(&s, &key, "ann", "O-1", 1000, 1000);
    template(&s, "兌換券", None);
    let body = json!({"template_id": "兌換券", "points": 300});

    // 50 concurrent requests with one key: one exchange, 50 identical answers.
    let answers: Vec<(u16, bool, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|_| scope.spawn(|| exchange(&s.url, "ann", Some("ex-1"), &body)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = &answers[0].2;
    assert!(first["coupon"]["id"].is_string(), "{first}");
    for (status, _, answer) in &answers {
        assert_eq!(
            (*status, answer),
            (200, first),
            "every retry answers the first answer"
        );
    }
    assert_eq!(
        answers.iter().filter(|a| !a.1).count(),
        1,
        "one answer is the original"
    );
    assert_eq!(first["exchange_key"], "ex-1");
    assert_eq!(first["points"]["balance"], 700);
    assert_eq!(first["points"]["entry"]["source_key"], "exchange:ex-1");
    assert_eq!(state(&s, "ann"), (700, 1, 1));
    let coupon = first["coupon"]["id"].as_str().unwrap().to_owned();
    let audit = s.get(&format!("/api/v1/coupons/{coupon}/audit")).body;
    assert_eq!(audit["audit"][0]["actor"], "exchange:ex-1", "{audit}");

    // Another key: another exchange.
    let (status, replayed, second) = exchange(&s.url, "ann", Some("ex-2"), &body);
    assert_eq!((status, replayed), (200, false), "{second}");
    assert_ne!(second["coupon"]["id"], first["coupon"]["id"]);
    assert_eq!(state(&s, "ann"), (400, 2, 2));

    // Refusals write nothing.
    let other = json!({"template_id": "兌換券", "points": 200});
    let refusals = [
        (Some("ex-1"), "ann", other.clone(), 409, "idempotency_key_reused"),
        (Some("ex-1"), "bob", body.clone(), 409, "idempotency_key_reused"),
        (None, "ann", body.clone(), 400, "idempotency_key_missing"),
        (
            Some("has space"),
            "ann",
            body.clone(),
            400,
            "invalid_idempotency_key",
        ),
        (
            Some("ex-3"),
            "ann",
            json!({"template_id": "兌換券", "points": 5000}),
            409,
            "insufficient_points",
        ),
        (
            Some("ex-3"),
            "ann",
            json!({"template_id": "兌換券", "points": 0}),
            400,
            "invalid_points",
        ),
        (
            Some("ex-3"),
            "ann",
            json!({"template_id": "無此券", "points": 10}),
            404,
            "not_found",
        ),
    ];
    for (k, user, b, code, name) in refusals {
        let (status, _, e) = exchange(&s.url, user, k, &b);
        assert_eq!((status, e["code"].as_str()), (code, Some(name)), "{k:?} {b}: {e}");
    }
    // A template for an audience: ann (1 order) is not in "orders >= 5".
    template(&s, "大客戶兌換券", Some("orders >= 5"));
    let (status, _, e) = exchange(
        &s.url,
        "ann",
        Some("ex-4"),
        &json!({"template_id": "大客戶兌換券", "points": 10}),
    );
    assert_eq!(
        (status, e["code"].as_str()),
        (409, Some("not_in_audience")),
        "{e}"
    );
    assert_eq!(state(&s, "ann"), (400, 2, 2));
    // The refused key is free: with enough points it exchanges.
    let (status, _, ok) = exchange(
        &s.url,
        "ann",
        Some("ex-3"),
        &json!({"template_id": "兌換券", "points": 400}),
    );
    assert_eq!(status, 200, "{ok}");
    assert_eq!(state(&s, "ann"), (0, 3, 3));
}
on_each_backend!(exchanges_once_per_key, exchanges_once_per_key);

/// Starts the server aborting at `fault`, asks for one exchange (the process dies inside
/// it), restarts without the fault and checks nothing of it was kept.
fn crash_during(site: &Site, fault: &str, key: &str, before: (i64, usize, usize)) {
    let mut cmd = site.command();
    cmd.env("FLYWHEEL_FAULTS", fault);
    let s = common::serve_with(cmd, &[]);
    let r = ureq::post(&format!("{}/api/v1/users/ann/points/redeem", s.url))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .set("Idempotency-Key", key)
        .send_string(&json!({"template_id": "兌換券", "points": 300}).to_string());
    assert!(
        matches!(r, Err(ureq::Error::Transport(_))),
        "the process should have died inside the exchange ({fault})"
    );
    s.kill();
    let s = site.serve(&[]);
    assert_eq!(
        state(&s, "ann"),
        before,
        "after a crash at {fault}: no coupon, no spend"
    );
}

fn crash_inside_exchange_leaves_nothing(site: Site) {
    let key = site.write_key();
    {
        let s = site.serve(&[]);
        earn(&s, &key, "ann", "O-1", 1000, 1000);
        template(&s, "兌換券", None);
    }
    crash_during(&site, "exchange_after_spend", "crash-1", (1000, 0, 0));
    crash_during(&site, "exchange_after_issue", "crash-1", (1000, 0, 0));
    // The retry after the restarts exchanges once.
    let s = site.serve(&[]);
    let body = json!({"template_id": "兌換券", "points": 300});
    let (status, replayed, first) = exchange(&s.url, "ann", Some("crash-1"), &body);
    assert_eq!((status, replayed), (200, false), "{first}");
    let (status, replayed, again) = exchange(&s.url, "ann", Some("crash-1"), &body);
    assert_eq!((status, replayed, &again), (200, true, &first));
    assert_eq!(state(&s, "ann"), (700, 1, 1));
}
on_each_backend!(
    crash_inside_exchange_leaves_nothing,
    crash_inside_exchange_leaves_nothing
);
