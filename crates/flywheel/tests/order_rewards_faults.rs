//! The order rewards (points, referral rewards, claw-backs) never skip work: the store
//! fails while they run — injected outages before and after the points of a stretch
//! (`FLYWHEEL_FAULTS`, test-only), and on PostgreSQL the server's connections
//! terminated with `pg_terminate_backend` for a stretch of time — and afterwards every
//! order has earned exactly once and every referral reward was issued once. An event
//! that fails for a reason of its own lands in the dead-letter list (API, CLI, metrics,
//! an alert); a retry applies it or counts one more attempt, a dismissal removes it.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Server, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

fn send(s: &Server, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = ureq::request(method, &format!("{}{path}", s.url))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .timeout(Duration::from_secs(30))
        .send_string(&body.to_string());
    match r {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => (0, json!(e.to_string())),
    }
}

fn track(s: &Server, key: &str, body: Value) {
    s.track_until_accepted(key, &body);
}

fn order(user: &str, order: &str, yuan: f64) -> Value {
    json!({"userId": user, "event": "Order Completed", "messageId": format!("m-{order}"),
           "properties": {"order_id": order, "total": yuan,
                          "products": [{"product_id": "P", "price": yuan, "quantity": 1}]}})
}

fn wait_for(s: &Server, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = send(s, "GET", path, &json!(null));
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never became what was expected: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const USERS: usize = 12;

fn no_order_is_skipped_or_doubled(mut site: Site) {
    // On PostgreSQL, name this test's connections so only they are terminated.
    let pg = site.name_connections("order_faults");
    let key = site.write_key();
    let mut command = site.command();
    command.env(
        "FLYWHEEL_FAULTS",
        "order_hooks:3,order_hooks.after_points:2,order_hooks.poison=O-POISON:1000",
    );
    let s = common::serve_with(command, &[]);
    let t = json!({"id": "invite", "name": "invite 10", "benefit": {"type": "amount", "off": 1000},
                   "validity": {"type": "days_after_issue", "days": 30}});
    assert_eq!(send(&s, "POST", "/api/v1/coupon-templates", &t).0, 201);
    let program = json!({"inviter_reward": {"coupon_template": "invite", "points": 50},
                         "invitee_reward": {"coupon_template": "invite"}});
    assert_eq!(send(&s, "PUT", "/api/v1/referral-program", &program).0, 200);
    let (_, code) = send(&s, "GET", "/api/v1/users/alice/invite-code", &json!(null));
    for i in 0..3 {
        let (status, r) = send(
            &s,
            "POST",
            "/api/v1/referrals",
            &json!({"code": code["code"], "invitee": format!("invitee{i}")}),
        );
        assert_eq!(status, 201, "{r}");
    }

    // The store fails while the hooks work: injected outages, and on PostgreSQL the
    // server's connections terminated over and over.
    let killer = common::ConnectionKiller::start(pg);
    for i in 0..USERS {
        track(
            &s,
            &key,
            order(&format!("u{i}"), &format!("O-{i}"), 100.0 + i as f64),
        );
        if i == 5 {
            // An event that fails for a reason of its own: the cancellation of u0's order
            // sent as another user's.
            track(
                &s,
                &key,
                json!({"userId": "carol", "event": "Order Cancelled", "messageId": "c-0",
                       "properties": {"order_id": "O-0"}}),
            );
            track(&s, &key, order("mallory", "O-POISON", 77.0));
        }
    }
    for i in 0..3 {
        // Each invitee's first and second orders: only the first rewards.
        track(
            &s,
            &key,
            order(&format!("invitee{i}"), &format!("I-{i}-1"), 200.0),
        );
        track(
            &s,
            &key,
            order(&format!("invitee{i}"), &format!("I-{i}-2"), 300.0),
        );
    }
    if let Some(k) = killer {
        k.finish_after(Duration::from_secs(2));
    }

    // Every order earned exactly once.
    for i in 0..USERS {
        let path = format!("/api/v1/users/u{i}/points");
        let points = wait_for(&s, &path, |v| v["balance"] == json!(100 + i));
        let earned = points["entries"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|e| e["source"] == "order").count());
        assert_eq!(earned, 1, "u{i}: {points}");
    }
    for i in 0..3 {
        let path = format!("/api/v1/users/invitee{i}/points");
        wait_for(&s, &path, |v| v["balance"] == 500);
        let r = wait_for(&s, &format!("/api/v1/referrals/invitee{i}"), |v| {
            v["state"] == "rewarded"
        });
        assert_eq!(r["order_id"], format!("I-{i}-1"));
        assert!(r["rewards"]["invitee"]["coupon"].is_string(), "{r}");
        let (_, wallet) = send(
            &s,
            "GET",
            &format!("/api/v1/users/invitee{i}/coupons"),
            &json!(null),
        );
        assert_eq!(wallet["coupons"].as_array().map(Vec::len), Some(1), "{wallet}");
    }
    let (_, wallet) = send(&s, "GET", "/api/v1/users/alice/coupons", &json!(null));
    assert_eq!(wallet["coupons"].as_array().map(Vec::len), Some(3), "{wallet}");

    // Both poisoned events were set aside after 5 attempts, with an alert; the rest went on.
    let dead = wait_for(&s, "/api/v1/dead-letters", |v| {
        v["dead_letters"].as_array().map(Vec::len) == Some(2)
    });
    let list = dead["dead_letters"].as_array().cloned().unwrap_or_default();
    let by_message = |m: &str| {
        list.iter()
            .find(|d| d["message_id"] == m)
            .cloned()
            .unwrap_or_default()
    };
    let claw = by_message("c-0");
    let poison = by_message("m-O-POISON");
    assert_eq!(
        (claw["attempts"].clone(), claw["workflow"].clone()),
        (json!(5), json!("order_rewards"))
    );
    assert!(
        claw["error"].as_str().unwrap_or("").contains("source_key_taken"),
        "{claw}"
    );
    assert_eq!(
        (poison["attempts"].clone(), poison["user_id"].clone()),
        (json!(5), json!("mallory"))
    );
    let metrics = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains("flywheel_dead_letters{workflow=\"order_rewards\"} 2"),
        "{metrics}"
    );
    let alerts = wait_for(&s, "/api/v1/analytics/alerts", |v| {
        v.to_string().matches("dead_lettered").count() >= 2
    });
    assert!(alerts.to_string().contains("order_rewards"), "{alerts}");
    // u0's points were not taken by someone else's cancellation.
    let (_, u0) = send(&s, "GET", "/api/v1/users/u0/points", &json!(null));
    assert_eq!(u0["balance"], 100);

    // A retry over the API that fails again keeps it, one attempt more.
    let (status, r) = send(
        &s,
        "POST",
        &format!("/api/v1/dead-letters/{}/retry", poison["id"]),
        &json!(null),
    );
    assert_eq!((status, r["code"].clone()), (409, json!("retry_failed")), "{r}");
    let (status, r) = send(&s, "POST", "/api/v1/dead-letters/99999/retry", &json!(null));
    assert_eq!((status, r["code"].clone()), (404, json!("not_found")), "{r}");
    let out = site.cli(&["dead-letters", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    let again = listed["dead_letters"]
        .as_array()
        .and_then(|l| l.iter().find(|d| d["id"] == poison["id"]).cloned())
        .unwrap_or_default();
    assert_eq!(again["attempts"], 6, "{listed}");
    let table = site.cli(&["dead-letters"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("order_rewards") && table.contains("m-O-POISON"),
        "{table}"
    );

    // The CLI's retry (its process injects no fault) applies it: it leaves the list and
    // mallory's order still earned once.
    let id = poison["id"].to_string();
    let out = site.cli(&["dead-letters", "retry", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, m) = send(&s, "GET", "/api/v1/users/mallory/points", &json!(null));
    assert_eq!(m["balance"], 77, "{m}");
    let earned = m["entries"]
        .as_array()
        .map_or(0, |e| e.iter().filter(|e| e["source"] == "order").count());
    assert_eq!(earned, 1, "{m}");
    // The cancellation by the wrong user fails again: exit code 1, one more attempt.
    let out = site.cli(&["dead-letters", "retry", &claw["id"].to_string()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, left) = send(&s, "GET", "/api/v1/dead-letters", &json!(null));
    let left = left["dead_letters"].as_array().cloned().unwrap_or_default();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        (left[0]["message_id"].clone(), left[0]["attempts"].clone()),
        (json!("c-0"), json!(6))
    );
    let metrics = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains("flywheel_dead_letters{workflow=\"order_rewards\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flywheel_workflow_lag_events{workflow=\"order_rewards\"} 0"),
        "{metrics}"
    );
    // The cancellation that can never apply is dismissed from the CLI: it leaves the list
    // and u0 keeps the order's points.
    let out = site.cli(&["dead-letters", "dismiss", &claw["id"].to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, left) = send(&s, "GET", "/api/v1/dead-letters", &json!(null));
    assert_eq!(left["dead_letters"].as_array().map(Vec::len), Some(0), "{left}");
    let (_, u0) = send(&s, "GET", "/api/v1/users/u0/points", &json!(null));
    assert_eq!(u0["balance"], 100);
}

on_each_backend!(order_rewards_under_store_failures, no_order_is_skipped_or_doubled);
