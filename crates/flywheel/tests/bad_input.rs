//! Every kind of bad input gets the right 4xx with a stable code and a clear message,
//! and nothing already stored changes.

mod common;

use common::{Backend, Site};
use serde_json::{json, Value};

/// (path, write key, body, expected status, expected code).
type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);

fn refused(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    let good = json!({"type": "track", "userId": "keep", "event": "Product Viewed", "messageId": "good-1"});
    assert_eq!(
        s.post("/v1/batch", Some(&key), &json!({"batch": [good]})).status,
        200
    );
    let before = s.get("/api/v1/profiles/keep").body;

    let big = "x".repeat(33 * 1024);
    let many: Vec<Value> = (0..600)
        .map(|i| json!({"type": "track", "userId": "keep", "event": "E", "messageId": format!("big-{i}"), "properties": {"p": "y".repeat(900)}}))
        .collect();
    let cases: Vec<Case> = vec![
        ("/v1/batch", Some(&key), b"{\"batch\": [".to_vec(), 400, "invalid_json"),
        ("/v1/track", Some(&key), b"not json at all".to_vec(), 400, "invalid_json"),
        ("/v1/track", Some(&key), b"{\"userId\":\"\xff\xfe\",\"event\":\"E\"}".to_vec(), 400, "invalid_utf8"),
        ("/v1/track", Some(&key), br#"{"userId": "keep", "event": 42}"#.to_vec(), 400, "wrong_type"),
        ("/v1/track", Some(&key), br#"{"userId": ["a"], "event": "E"}"#.to_vec(), 400, "wrong_type"),
        ("/v1/identify", Some(&key), br#"{"userId": "keep", "traits": "tall"}"#.to_vec(), 400, "wrong_type"),
        ("/v1/track", Some(&key), br#"{"event": "E"}"#.to_vec(), 400, "missing_id"),
        ("/v1/track", Some(&key), br#"{"userId": "keep"}"#.to_vec(), 400, "missing_event"),
        ("/v1/alias", Some(&key), br#"{"userId": "keep"}"#.to_vec(), 400, "missing_id"),
        ("/v1/group", Some(&key), br#"{"userId": "keep"}"#.to_vec(), 400, "missing_group_id"),
        ("/v1/batch", Some(&key), br#"{"batch": [{"userId": "keep", "event": "E"}]}"#.to_vec(), 400, "missing_type"),
        ("/v1/batch", Some(&key), br#"{"batch": []}"#.to_vec(), 400, "empty_batch"),
        ("/v1/batch", Some(&key), br#"{"batch": [{"type": "shout", "userId": "keep"}]}"#.to_vec(), 400, "unknown_type"),
        (
            "/v1/track",
            Some(&key),
            br#"{"userId": "keep", "event": "E", "timestamp": "1901-01-01T00:00:00Z"}"#.to_vec(),
            400,
            "timestamp_out_of_range",
        ),
        (
            "/v1/track",
            Some(&key),
            br#"{"userId": "keep", "event": "E", "timestamp": "3024-01-01T00:00:00Z"}"#.to_vec(),
            400,
            "timestamp_out_of_range",
        ),
        ("/v1/track", Some(&key), br#"{"userId": "keep", "event": "E", "timestamp": "soon"}"#.to_vec(), 400, "invalid_timestamp"),
        (
            "/v1/track",
            Some(&key),
            br#"{"userId": "keep", "event": "Order Completed", "properties": {"order_id": "o", "total": "much"}}"#.to_vec(),
            400,
            "invalid_money",
        ),
        (
            "/v1/track",
            Some(&key),
            json!({"userId": "keep", "event": "E", "properties": {"p": big}}).to_string().into_bytes(),
            400,
            "message_too_large",
        ),
        ("/v1/batch", Some(&key), json!({"batch": many}).to_string().into_bytes(), 400, "batch_too_large"),
        ("/v1/track", None, br#"{"userId": "keep", "event": "E"}"#.to_vec(), 401, "missing_write_key"),
        ("/v1/track", Some("wk_wrong"), br#"{"userId": "keep", "event": "E"}"#.to_vec(), 401, "invalid_write_key"),
        (
            "/v1/batch",
            None,
            br#"{"writeKey": "wk_wrong", "batch": [{"type": "track", "userId": "keep", "event": "E"}]}"#.to_vec(),
            401,
            "invalid_write_key",
        ),
    ];
    for (path, k, body, status, code) in cases {
        let r = s.post_raw(path, k, &[], &body);
        assert_eq!(r.status, status, "{path} {code}: {:?}", r.body);
        assert_eq!(r.body["code"], code, "{path}: {:?}", r.body);
        assert_eq!(r.body["success"], false);
        assert!(
            r.body["message"].as_str().is_some_and(|m| m.len() > 10),
            "clear message: {:?}",
            r.body
        );
    }
    // A batch with one bad item stores none of its good items.
    let mixed = json!({"batch": [
        {"type": "track", "userId": "keep", "event": "E", "messageId": "mixed-ok"},
        {"type": "track", "userId": "keep", "messageId": "mixed-bad"}]});
    let r = s.post("/v1/batch", Some(&key), &mixed);
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"].as_str().unwrap().starts_with("message 1:"),
        "{:?}",
        r.body
    );
    // Basic auth that is not Basic.
    let r = s.post_raw(
        "/v1/track",
        None,
        &[("Authorization", "Bearer x")],
        br#"{"userId": "k", "event": "E"}"#,
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (401, Some("invalid_authorization"))
    );
    // Admin API needs the token; bad paging is a 400; unknown profiles a 404.
    assert_eq!(s.get_with("/api/v1/profiles", None).status, 401);
    assert_eq!(
        s.get_with("/api/v1/profiles", Some("Bearer wrong")).body["code"],
        "unauthorized"
    );
    assert_eq!(s.get("/api/v1/profiles?limit=0").body["code"], "invalid_limit");
    assert_eq!(
        s.get("/api/v1/profiles/keep/events?cursor=zzz").body["code"],
        "invalid_cursor"
    );
    assert_eq!(s.get("/api/v1/profiles/nobody").status, 404);
    assert_eq!(s.get("/no/such/route").body["code"], "not_found");
    // Nothing changed.
    assert_eq!(s.get("/api/v1/profiles/keep").body, before);
    assert_eq!(before["event_count"], 1);
}
on_each_backend!(bad_input_is_refused_and_changes_nothing, refused);

fn documented_routes(site: Site) {
    let s = site.serve(&[]);
    let doc: Value = serde_json::from_str(flywheel_api_openapi()).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "nobody");
        for method in ops.as_object().unwrap().keys() {
            let r = if method == "get" {
                s.get(&concrete)
            } else {
                s.post(&concrete, None, &json!({}))
            };
            assert_ne!(
                r.body["message"], "route not found",
                "{method} {path} is documented but not served"
            );
        }
    }
    let served = s.get("/api/v1/openapi.json").body;
    assert_eq!(served, doc);
    assert_eq!(s.get_with("/healthz", None).status, 200);
    assert_eq!(s.get_with("/readyz", None).status, 200);
    let m = s.get_with("/metrics", None).body;
    assert!(m.as_str().unwrap().contains("flywheel_events_inserted_total"));
}

fn flywheel_api_openapi() -> &'static str {
    include_str!("../../../docs/openapi.json")
}
on_each_backend!(every_documented_route_is_served, documented_routes);

/// Every route the OpenAPI document marks as needing the admin token refuses a request
/// without it, and one with a wrong token, with a 401 `unauthorized` — whatever the path
/// parameters, query or body (the token is checked before anything else is read).
#[test]
fn every_admin_route_refuses_a_missing_or_wrong_token() {
    let site = Site::new(Backend::Sqlite, "admin_routes").unwrap();
    let s = site.serve(&[]);
    let doc: Value = serde_json::from_str(include_str!("../../../docs/openapi.json")).unwrap();
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(30))
        .build();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let admin = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("adminToken").is_some()));
            if !admin {
                continue;
            }
            let concrete = path.replace(['{', '}'], "");
            for auth in [None, Some("Bearer not-the-token")] {
                let mut req = agent.request(&method.to_uppercase(), &format!("{}{concrete}", s.url));
                if let Some(a) = auth {
                    req = req.set("Authorization", a);
                }
                // A body where the route takes one, as clients send them.
                let sent = if op.get("requestBody").is_some() {
                    req.send_string("{}")
                } else {
                    req.call()
                };
                let r = match sent {
                    Ok(r) => r,
                    Err(ureq::Error::Status(_, r)) => r,
                    Err(e) => panic!("{method} {path}: {e}"),
                };
                let status = r.status();
                let body: Value = r.into_json().unwrap_or(Value::Null);
                assert_eq!(
                    (status, body["code"].as_str()),
                    (401, Some("unauthorized")),
                    "{method} {path} with {auth:?}: {body}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} admin routes checked");
}
