//! The tracking API's trust boundary and the edges of its input, through the real binary
//! on SQLite and PostgreSQL: a client-scoped (public) write key cannot credit, refund or
//! cancel orders, cannot change where messages go (contact traits in any spelling, in
//! `traits` or `context.traits`, by every endpoint and way of sending the key) and cannot
//! join two customers; ids sent as big numbers stay distinct people; negative amounts and
//! quantities are refused whole, sub-fen amounts are rounded as documented.

mod common;

use std::time::Duration;

use common::{Backend, Server, Site};
use serde_json::{json, Value};

/// The value of a Prometheus counter on `/metrics`.
fn counter(s: &Server, name: &str) -> u64 {
    let text = s.get_with("/metrics", None).body;
    let text = text.as_str().unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics: {text}"))
}

fn order(id: &str, user: &str, order_id: &str, total: f64) -> Value {
    json!({"type": "track", "userId": user, "event": "Order Completed", "messageId": id,
           "properties": {"order_id": order_id, "total": total,
                          "products": [{"product_id": "P", "price": total, "quantity": 1}]}})
}

fn client_keys_cannot_move_money(site: Site) {
    let server = site.write_key();
    let client = site.scoped_write_key("client");
    let s = site.serve(&[]);
    // The shop's backend records a 5 元 order: 5 points, the entry tier.
    let r = s.post(
        "/v1/track",
        Some(&server),
        &order("real-1", "u000100", "O-1", 5.0),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    s.wait_for("/api/v1/users/u000100/points", |v| v["balance"] == 5);
    let tier_before = s.get("/api/v1/users/u000100/tier").body;
    assert_eq!(tier_before["spend_365d"], 500, "{tier_before}");

    // The forged order of the report, with the public key as HTTP Basic …
    let r = s.post(
        "/v1/track",
        Some(&client),
        &json!({"userId": "u000100", "event": "Order Completed", "messageId": "forged-1",
                "properties": {"order_id": "F1", "total": 99999, "revenue": 99999,
                               "products": [{"product_id": "P", "price": 99999, "quantity": 1}]}}),
    );
    assert_eq!((r.status, r.body.clone()), (200, json!({"success": true})));
    // … in a batch with the key in the body, in /v1/import with the key per item, and
    // refunds and cancellations of the real order by every route.
    let mut forged_batch = order("forged-2", "u000100", "F2", 88888.0);
    forged_batch["writeKey"] = json!(client);
    let r = s.post(
        "/v1/batch",
        None,
        &json!({"writeKey": client, "batch": [forged_batch,
            {"type": "track", "userId": "u000100", "event": "Order Refunded", "messageId": "forged-3",
             "properties": {"order_id": "O-1", "total": 5}}]}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut imported = order("forged-4", "u000100", "F4", 77777.0);
    imported["writeKey"] = json!(client);
    let cancel = json!({"type": "track", "userId": "u000100", "event": "Order Cancelled",
                        "messageId": "forged-5", "properties": {"order_id": "O-1"}, "writeKey": client});
    let r = s.post("/v1/import", None, &json!({"batch": [imported, cancel]}));
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A client key's batch with a server key named per item is still the client's: the
    // request's key wins over an item's.
    let mut smuggled = order("forged-6", "u000100", "F6", 66666.0);
    smuggled["writeKey"] = json!(server);
    let r = s.post("/v1/batch", Some(&client), &json!({"batch": [smuggled]}));
    assert_eq!(r.status, 200, "{:?}", r.body);

    // The public key claims the message id the backend will use next: it is its own.
    let r = s.post(
        "/v1/track",
        Some(&client),
        &json!({"userId": "barrier", "event": "Order Completed", "messageId": "real-2",
                "properties": {"order_id": "O-2", "total": 50000}}),
    );
    assert_eq!(r.status, 200);
    // A later real order for someone else: once its points are there, every event before
    // it has been through the order hooks (and it was not taken for a duplicate).
    let r = s.post(
        "/v1/track",
        Some(&server),
        &order("real-2", "barrier", "O-2", 1.0),
    );
    assert_eq!(r.status, 200);
    s.wait_for("/api/v1/users/barrier/points", |v| v["balance"] == 1);

    let points = s.get("/api/v1/users/u000100/points").body;
    assert_eq!(points["balance"], 5, "{points}");
    let tier = s.get("/api/v1/users/u000100/tier").body;
    assert_eq!(
        (tier["tier"].clone(), tier["spend_365d"].clone()),
        (tier_before["tier"].clone(), json!(500)),
        "{tier}"
    );
    let orders = s.get("/api/v1/profiles/u000100/orders").body;
    let orders = orders["orders"].as_array().cloned().unwrap_or_default();
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(
        (orders[0]["order_id"].clone(), orders[0]["status"].clone()),
        (json!("O-1"), json!("completed"))
    );
    // The forged events are kept as behaviour, their message ids in the key's own space.
    let events = s.get("/api/v1/profiles/u000100/events?limit=100").body;
    let ids: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["messageId"].as_str())
        .collect();
    for id in [
        "forged-1", "forged-2", "forged-3", "forged-4", "forged-5", "forged-6",
    ] {
        assert!(
            ids.iter().any(|m| m.ends_with(&format!("/{id}"))),
            "{id} not stored: {ids:?}"
        );
    }
    assert_eq!(counter(&s, "flywheel_ingest_client_orders_ignored_total"), 7);
    let barrier = s.get("/api/v1/profiles/barrier/orders").body;
    assert_eq!(barrier["orders"][0]["total_fen"], 100, "{barrier}");
}
on_each_backend!(client_keys_cannot_move_money, client_keys_cannot_move_money);

/// A journey that rewards orders (points on `Order Completed`) is entered by the shop's
/// real order, never by a browser's claim of one.
fn client_orders_trigger_no_journey(site: Site) {
    let server = site.write_key();
    let client = site.scoped_write_key("client");
    let s = site.serve(&[]);
    let journey = json!({"name": "thanks", "trigger": {"event": {"name": "Order Completed"}},
                         "entry": "every_time",
                         "steps": [{"id": "reward", "type": "points", "amount": 100, "reason": "thanks"}]});
    let admin = |path: &str, body: &Value| s.admin_post(path, body);
    let r = admin("/api/v1/journeys", &journey);
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(admin("/api/v1/journeys/thanks/start", &json!({})).status, 200);
    let r = s.post(
        "/v1/track",
        Some(&client),
        &order("forged-j", "u7", "F-J", 9999.0),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    // The shop's own order afterwards: it enters, so the forged one had its chance first.
    let r = s.post("/v1/track", Some(&server), &order("real-j", "u7", "O-J", 10.0));
    assert_eq!(r.status, 200, "{:?}", r.body);
    s.wait_for("/api/v1/journeys/thanks/runs", |v| {
        v["runs"].as_array().is_some_and(|r| !r.is_empty())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let runs = s.get("/api/v1/journeys/thanks/runs").body;
    let triggers: Vec<String> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect();
    assert_eq!(triggers.len(), 1, "{runs}");
    assert!(!triggers[0].contains("forged-j"), "{runs}");
}
on_each_backend!(client_orders_trigger_no_journey, client_orders_trigger_no_journey);

fn client_keys_cannot_redirect_messages(site: Site) {
    let server = site.write_key();
    let client = site.scoped_write_key("client");
    let s = site.serve(&[]);
    let at = |n: u32| format!("2024-11-11T0{n}:00:00Z");
    // The shop's backend knows the victim's address, and mallory's own (a real account).
    for (id, user, email, t) in [
        ("s1", "victim", "victim@example.com", 1),
        ("s2", "mallory", "evil@example.com", 2),
    ] {
        let r = s.post(
            "/v1/identify",
            Some(&server),
            &json!({"userId": user, "messageId": id, "timestamp": at(t),
                    "traits": {"email": email, "phone": "13800000000", "name": user}}),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    // With the public key: identify with contact traits in other spellings …
    let evil = "evil@example.com";
    let sends = [
        (
            "/v1/identify",
            json!({"userId": "victim", "messageId": "c1", "timestamp": at(3),
                   "traits": {"email": evil, "Email": evil, "E-Mail": evil, "PHONE": "1", "phone_number": "1",
                              "push_token": "t", "deviceToken": "t", "wechat_openid": "o", "city": "深圳",
                              "tier": "鉑金", "clv_value": 999999}}),
        ),
        // … a track with context.traits …
        (
            "/v1/track",
            json!({"userId": "victim", "event": "Product Viewed", "messageId": "c2", "timestamp": at(4),
                   "context": {"traits": {"email": evil, "Phone": "1"}}}),
        ),
        // … a batch with the key in the body and batch-level context traits …
        (
            "/v1/batch",
            json!({"writeKey": client, "context": {"traits": {"EMAIL": evil}}, "batch": [
                {"type": "page", "userId": "victim", "name": "Home", "messageId": "c3", "timestamp": at(5)},
                {"type": "identify", "anonymousId": "dev-x", "messageId": "c4", "timestamp": at(5),
                 "traits": {"email": "device@evil.example"}}]}),
        ),
        // … an alias and a shared device joining mallory to the victim …
        (
            "/v1/alias",
            json!({"userId": "mallory", "previousId": "victim", "messageId": "c5", "timestamp": at(6)}),
        ),
        (
            "/v1/import",
            json!({"batch": [
                {"type": "identify", "userId": "mallory", "anonymousId": "dev-x", "messageId": "c6",
                 "timestamp": at(7), "writeKey": client},
                {"type": "identify", "userId": "victim", "anonymousId": "dev-x", "messageId": "c7",
                 "timestamp": at(7), "writeKey": client}]}),
        ),
    ];
    for (path, body) in sends {
        let key = (!path.ends_with("batch") && !path.ends_with("import")).then_some(client.as_str());
        let r = s.post(path, key, &body);
        assert_eq!(
            (r.status, r.body.clone()),
            (200, json!({"success": true})),
            "{path}"
        );
    }
    let victim = s.get("/api/v1/profiles/victim").body;
    let mallory = s.get("/api/v1/profiles/mallory").body;
    assert_ne!(victim["id"], mallory["id"], "{victim} {mallory}");
    assert_eq!(
        victim["traits"],
        json!({"email": "victim@example.com", "phone": "13800000000", "name": "victim", "city": "深圳"}),
        "the rest of a client's identify is kept, its contact traits are not"
    );
    assert_eq!(victim["user_ids"], json!(["victim"]));
    // The device joined mallory (its first customer), whose address is still the one
    // the shop's backend gave, not the one its anonymous identify sent.
    let device = s.get("/api/v1/profiles/dev-x").body;
    assert_eq!(device["id"], "user:mallory");
    assert_eq!(device["traits"]["email"], "evil@example.com", "{device}");
    // Nothing stored anywhere carries the attacker's address for the victim.
    let events = s.get("/api/v1/profiles/victim/events?limit=100").body;
    let client_events: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["messageId"].as_str().is_some_and(|m| m.starts_with("key_")))
        .collect();
    assert!(!client_events.is_empty());
    for e in client_events {
        assert!(!e.to_string().contains(evil), "{e}");
    }
    assert!(counter(&s, "flywheel_ingest_client_traits_dropped_total") >= 13);
    // A server key may still change an address (the shop's backend is trusted).
    let r = s.post(
        "/v1/identify",
        Some(&server),
        &json!({"userId": "victim", "messageId": "s3", "timestamp": at(8), "traits": {"email": "new@example.com"}}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        s.get("/api/v1/profiles/victim").body["traits"]["email"],
        "new@example.com"
    );
}
on_each_backend!(
    client_keys_cannot_redirect_messages,
    client_keys_cannot_redirect_messages
);

fn numeric_ids_stay_distinct(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    // serde_json's json! would turn these into floats, so the bodies are text.
    let body = r#"{"batch": [
        {"type": "identify", "userId": 123456789012345678901234, "messageId": 98765432109876543210001, "traits": {"name": "甲"}},
        {"type": "identify", "userId": 123456789012345678901235, "messageId": 98765432109876543210002, "traits": {"name": "乙"}},
        {"type": "track", "userId": 123456789012345678901234, "event": "Order Completed", "messageId": "o1",
         "properties": {"order_id": 100000000000000000000001, "total": 1}},
        {"type": "track", "userId": 123456789012345678901234, "event": "Order Completed", "messageId": "o2",
         "properties": {"order_id": 100000000000000000000002, "total": 2}},
        {"type": "identify", "userId": 1e3, "messageId": "e1"},
        {"type": "identify", "userId": 1.0, "messageId": "e2"}]}"#;
    let r = s.post_raw("/v1/batch", Some(&key), &[], body.as_bytes());
    assert_eq!(r.status, 200, "{:?}", r.body);
    let a = s.get("/api/v1/profiles/123456789012345678901234").body;
    let b = s.get("/api/v1/profiles/123456789012345678901235").body;
    assert_eq!(a["id"], "user:123456789012345678901234", "{a}");
    assert_eq!(b["id"], "user:123456789012345678901235", "{b}");
    assert_eq!(
        (a["traits"]["name"].clone(), b["traits"]["name"].clone()),
        (json!("甲"), json!("乙"))
    );
    let orders = s.get("/api/v1/profiles/123456789012345678901234/orders").body;
    let mut ids: Vec<String> = orders["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["100000000000000000000001", "100000000000000000000002"]);
    // Numbers with a fraction or an exponent are their text, as sent.
    assert_eq!(s.get("/api/v1/profiles/1e3").body["id"], "user:1e3");
    assert_eq!(s.get("/api/v1/profiles/1.0").body["id"], "user:1.0");
}
on_each_backend!(numeric_ids_stay_distinct, numeric_ids_stay_distinct);

fn negative_amounts_are_refused(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    let line = |price: Value, quantity: Value| {
        json!({"type": "track", "userId": "n1", "event": "Order Completed", "messageId": "n-bad",
               "properties": {"order_id": "N-1", "products": [{"product_id": "P", "price": 10, "quantity": 1},
                                                               {"product_id": "Q", "price": price, "quantity": quantity}]}})
    };
    for (body, code, field) in [
        (
            line(json!(-100.5), json!(1)),
            "negative_amount",
            "properties.products[1].price",
        ),
        (
            line(json!("-0.01"), json!(1)),
            "negative_amount",
            "properties.products[1].price",
        ),
        (
            line(json!(5), json!(-2)),
            "negative_quantity",
            "properties.products[1].quantity",
        ),
    ] {
        let r = s.post("/v1/track", Some(&key), &body);
        assert_eq!((r.status, r.body["code"].clone()), (400, json!(code)), "{body}");
        assert!(
            r.body["message"].as_str().unwrap_or_default().contains(field),
            "{:?}",
            r.body
        );
        assert_eq!(r.body["success"], false);
    }
    for (props, field) in [
        (json!({"order_id": "N-2", "total": -1}), "properties.total"),
        (
            json!({"order_id": "N-2", "total": 10, "discount": -5}),
            "properties.discount",
        ),
        (
            json!({"order_id": "N-2", "products": [{"price": 10}], "discount": 20}),
            "order total",
        ),
    ] {
        let r = s.post(
            "/v1/track",
            Some(&key),
            &json!({"userId": "n1", "event": "Order Completed", "properties": props}),
        );
        assert_eq!(
            (r.status, r.body["code"].clone()),
            (400, json!("negative_amount")),
            "{props}"
        );
        assert!(
            r.body["message"].as_str().unwrap_or_default().contains(field),
            "{:?}",
            r.body
        );
    }
    // A refund of a negative amount, too.
    let r = s.post(
        "/v1/track",
        Some(&key),
        &json!({"userId": "n1", "event": "Order Refunded", "properties": {"order_id": "N-1", "total": -50}}),
    );
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (400, json!("negative_amount"))
    );
    // One bad item refuses its whole batch, naming the item; nothing of it is stored.
    let r = s.post(
        "/v1/batch",
        Some(&key),
        &json!({"batch": [
            {"type": "track", "userId": "n2", "event": "Order Completed", "messageId": "n-ok",
             "properties": {"order_id": "N-3", "total": 10}},
            line(json!(-100.5), json!(1))]}),
    );
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (400, json!("negative_amount"))
    );
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("message 1:"),
        "{:?}",
        r.body
    );
    assert_eq!(s.get("/api/v1/profiles/n2").status, 404);
    // Sub-fen amounts are rounded half away from zero, from the exact text: 1.005 is 101 fen.
    let r = s.post(
        "/v1/track",
        Some(&key),
        &json!({"userId": "n3", "event": "Order Completed", "messageId": "n-round",
                "properties": {"order_id": "N-4", "products": [{"product_id": "P", "price": 1.005, "quantity": 1}]}}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let o = &s.get("/api/v1/profiles/n3/orders").body["orders"][0];
    assert_eq!(
        (o["total_fen"].clone(), o["lines"][0]["price"].clone()),
        (json!(101), json!(101))
    );
    assert_eq!(
        s.get("/api/v1/profiles/n1").status,
        404,
        "no refused message was stored"
    );
}
on_each_backend!(negative_amounts_are_refused, negative_amounts_are_refused);

/// `keys create` needs a scope and prints it; `keys list` shows every key's scope.
#[test]
fn keys_have_a_scope() {
    let site = Site::new(Backend::Sqlite, "keys_scope").unwrap();
    let out = site.cli(&["keys", "create", "web"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scope"));
    let out = site.cli(&["keys", "create", "web", "--scope", "public"]);
    assert_eq!(out.status.code(), Some(2));
    let out = site.cli(&["keys", "create", "web", "--scope", "client", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["scope"], "client");
    site.write_key();
    let out = site.cli(&["keys", "list", "--format", "json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let scopes: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap().into(),
                k["scope"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        scopes,
        [
            ("web".to_string(), "client".to_string()),
            ("server".into(), "server".into())
        ]
    );
    let out = site.cli(&["keys", "list"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("scope") && table.contains("client"), "{table}");
}
