//! The audience admin API and CLI end to end through the real binary, on SQLite and
//! PostgreSQL: seed tags follow tracked orders, segments are counted, saved, listed,
//! exported; bad expressions and injection attempts get clear 4xx answers.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Server, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

/// Sends raw bytes and reads the whole answer (for requests a client library would not send).
fn raw_request(url: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

fn ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339()
}

fn members(s: &Server, path: &str) -> Vec<String> {
    let r = s.get(path);
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut ids: Vec<String> = r.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["user_id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

fn audience(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    let order = |user: &str, id: &str, total: &str, days: i64| {
        json!({"type": "track", "userId": user, "event": "Order Completed", "messageId": id, "timestamp": ago(days),
               "properties": {"order_id": id, "total": total, "products": [{"product_id": "P1", "category": "護膚", "price": total, "quantity": 1}]}})
    };
    let r = s.post(
        "/v1/batch",
        Some(&key),
        &json!({"batch": [
            order("exact", "o1", "1000.00", 1),
            order("above", "o2", "1000.01", 1),
            {"type": "identify", "userId": "above", "messageId": "i1", "traits": {"gender": "female", "city": "上海"}},
            {"type": "track", "userId": "cart", "event": "Product Added", "messageId": "c1", "properties": {"product_id": "P9"}},
        ]}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    // The engine hears of the commit right after it: the seed tags follow.
    let deadline = Instant::now() + Duration::from_secs(5);
    while members(&s, "/api/v1/tags/高價值客戶/members") != ["above"] {
        assert!(Instant::now() < deadline, "高價值客戶 never updated");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(members(&s, "/api/v1/tags/潛力客戶/members"), ["cart"]);
    let t = s.get("/api/v1/audience/transitions?after=0");
    let added = t.body["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "高價值客戶")
        .cloned()
        .expect("a transition for 高價值客戶");
    assert_eq!(
        (added["entered"].clone(), added["cause"].clone()),
        (json!(true), json!("event"))
    );

    // Counting one-off expressions, text and JSON tree alike.
    let r = s.admin_post(
        "/api/v1/segments/count",
        &json!({"expression": "spend(30d) > 1000 元 and gender = \"女\""}),
    );
    assert_eq!(
        (r.status, r.body["count"].clone()),
        (200, json!(1)),
        "{:?}",
        r.body
    );
    let ast = r.body["ast"].clone();
    let r = s.admin_post("/api/v1/segments/count", &json!({"ast": ast}));
    assert_eq!(r.body["count"], 1, "{:?}", r.body);
    let r = s.admin_post(
        "/api/v1/segments/count",
        &json!({"expression": "spend(30d) >= 1000 元"}),
    );
    assert_eq!(r.body["count"], 2);

    // Saved segments: create, list, members, export, profile view.
    let r = s.admin_post(
        "/api/v1/segments",
        &json!({"name": "上海女性", "expression": "city = \"上海\" and gender = \"女\""}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["members"], 1);
    let r = s.admin_post(
        "/api/v1/segments",
        &json!({"name": "上海女性", "expression": "gender = \"女\""}),
    );
    assert_eq!((r.status, r.body["code"].clone()), (409, json!("name_taken")));
    assert_eq!(members(&s, "/api/v1/segments/上海女性/members"), ["above"]);
    let r = s.admin_post("/api/v1/segments/export", &json!({"expression": "orders >= 1"}));
    assert_eq!(r.status, 200);
    let csv = r.body.as_str().unwrap_or_default().to_owned();
    assert!(
        csv.starts_with("profile_id,user_id\n") && csv.contains(",above\n") && csv.contains(",exact\n"),
        "{csv}"
    );
    // RFM scores are relative to all buyers, re-scored within a second of a new order.
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = s.get("/api/v1/profiles/above/audience");
        assert_eq!(r.status, 200, "{:?}", r.body);
        if r.body["rfm"].is_object() || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        r.body["tags"].as_array().unwrap().contains(&json!("高價值客戶")),
        "{:?}",
        r.body
    );
    assert_eq!(r.body["segments"], json!(["上海女性"]));
    assert_eq!(r.body["traits"]["spend(30d)"], 100_001);
    assert_eq!(r.body["traits"]["gender"], "女");
    assert!(r.body["rfm"]["segment"].is_string(), "{:?}", r.body);

    // Manual tags.
    let r = s.admin_post("/api/v1/tags", &json!({"name": "VIP", "group": "運營"}));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = s.admin_post("/api/v1/tags/VIP/members", &json!({"profiles": ["exact"]}));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s.admin_post("/api/v1/tags/VIP/members", &json!({"profiles": ["nobody"]}));
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = s.admin_post(
        "/api/v1/segments/count",
        &json!({"expression": "tag(\"VIP\") or tag(\"潛力客戶\")"}),
    );
    assert_eq!(r.body["count"], 2);

    // Bad input: each a 4xx with a stable code and a helpful message; nothing is saved.
    for (body, status, code, says) in [
        (
            json!({"expression": "spend(30d) 1000"}),
            400,
            "invalid_expression",
            "line 1, column 12",
        ),
        (
            json!({"expression": "spend(30d) > 1000 元 and\n  (gender = \"女\""}),
            400,
            "invalid_expression",
            "line 2",
        ),
        (
            json!({"expression": "spending(30d) > 1 元"}),
            400,
            "unknown_trait",
            "unknown trait",
        ),
        (
            json!({"expression": "spend(30d) > 1000"}),
            400,
            "invalid_segment",
            "1000 元",
        ),
        (
            json!({"expression": "gender > 3"}),
            400,
            "invalid_segment",
            "text",
        ),
        (
            json!({"expression": "tag(\"不存在\")"}),
            400,
            "unknown_tag",
            "unknown tag",
        ),
        (
            json!({"expression": "spend(30d) > 1000 元; DROP TABLE profiles"}),
            400,
            "invalid_expression",
            "line 1",
        ),
        (
            json!({"expression": "x", "ast": {"type": "tag", "name": "VIP"}}),
            400,
            "invalid_segment",
            "not both",
        ),
        (json!({"ast": {"and": []}}), 400, "invalid_expression", "ast"),
        (
            json!({"expresion": "orders > 1"}),
            400,
            "invalid_json",
            "unknown field",
        ),
    ] {
        let r = s.admin_post("/api/v1/segments/count", &body);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(code)),
            "{body}: {:?}",
            r.body
        );
        assert!(
            r.body["message"].as_str().unwrap_or("").contains(says),
            "{body}: {:?}",
            r.body
        );
    }
    // An injection attempt inside a string literal is only a value.
    let r = s.admin_post(
        "/api/v1/segments/count",
        &json!({"expression": "city = \"x'); DROP TABLE profiles; --\""}),
    );
    assert_eq!((r.status, r.body["count"].clone()), (200, json!(0)));
    let r = s.admin_post(
        "/api/v1/segments",
        &json!({"name": "壞", "expression": "spend(30d) > 1000"}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(s.get("/api/v1/segments/壞").status, 404);
    let r = s.get_with("/api/v1/segments", None);
    assert_eq!(r.status, 401);
    let r = s.get("/api/v1/audience/transitions?after=abc");
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("invalid_query")),
        "{:?}",
        r.body
    );
    // An oversize body is refused from its declared length, before it is sent.
    let head = format!(
        "POST /api/v1/segments/count HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Length: 2097152\r\nConnection: close\r\n\r\n"
    );
    let reply = raw_request(&s.url, &head);
    assert!(
        reply.starts_with("HTTP/1.1 413") && reply.contains("body_too_large"),
        "{reply}"
    );
    let r = s.admin_post(
        "/api/v1/segments/preview",
        &json!({"expression": "orders >= 1", "limit": 1}),
    );
    assert_eq!(r.body["members"].as_array().map(Vec::len), Some(1));
    let cursor = r.body["next_cursor"].as_str().expect("a second page").to_owned();
    let r = s.admin_post(
        "/api/v1/segments/preview",
        &json!({"expression": "orders >= 1", "limit": 1, "cursor": cursor}),
    );
    assert_eq!(
        (
            r.body["members"].as_array().map(Vec::len),
            r.body["next_cursor"].clone()
        ),
        (Some(1), Value::Null)
    );
    drop(s);

    // The CLI rebuilds the same state from the store.
    let out = site.cli(&["segment", "count", "spend(30d) > 1000 元", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["count"], 1);
    let out = site.cli(&["segment", "count", "spend(30d) >"]);
    assert_eq!(out.status.code(), Some(2));
    let out = site.cli(&["segment", "export", "--name", "上海女性"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "profile_id,user_id\nuser:above,above\n"
    );
    let out = site.cli(&["segment", "create", "上海女性", "gender = \"女\""]);
    assert_eq!(out.status.code(), Some(2), "an existing name needs --replace");
    let out = site.cli(&[
        "segment",
        "create",
        "上海女性",
        "--replace",
        "gender = \"女\" and orders >= 1",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Manual tags from a file (the export's own format), and the profile view of the CLI.
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let ids = site.data_dir.join("ids.csv");
    std::fs::write(&ids, "profile_id,user_id\nuser:cart,cart\n").unwrap();
    let out = site.cli(&["tag", "add", "VIP", "--file", ids.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = site.cli(&["profile", "show", "cart", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["audience"]["tags"], json!(["VIP", "新用戶", "潛力客戶"]), "{v}");
    assert_eq!(v["audience"]["lifecycle"], "新用戶");
    let out = site.cli(&["tag", "list", "--format", "json"]);
    let tags: Value = serde_json::from_slice(&out.stdout).unwrap();
    let vip = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "VIP")
        .cloned()
        .unwrap();
    assert_eq!(vip["members"], 2);
}

/// Segments reach into the products of Segment-spec orders: the `bought` shorthand, the
/// windowed `*_bought` traits and `products.category` event filters count the same
/// customers through the API and, rebuilt from the store, through the CLI; two months
/// with orders make a 留存用戶.
fn products_in_segments(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    let order = |user: &str, id: &str, days: i64, products: Value| {
        json!({"type": "track", "userId": user, "event": "Order Completed", "messageId": id, "timestamp": ago(days),
               "properties": {"order_id": id, "total": "10", "products": products}})
    };
    let r = s.post(
        "/v1/batch",
        Some(&key),
        &json!({"batch": [
            // 彩妝 10 days ago, two products of two brands.
            order("mia", "m1", 10, json!([
                {"product_id": "P1", "sku": "S1", "category": "彩妝", "brand": "后", "price": "5", "quantity": 1},
                {"product_id": "P2", "sku": "S2", "category": "護膚", "brand": "雪花秀", "price": "5", "quantity": 1}])),
            // 彩妝 120 days ago only: outside 90 days; then 母嬰 today: two months, retained.
            order("old", "o1", 120, json!([{"sku": "S1", "category": "彩妝", "brand": "后", "price": "10", "quantity": 1}])),
            order("ret", "r1", 0, json!([{"sku": "S3", "category": "母嬰", "brand": "好孩子", "price": "10", "quantity": 1}])),
            order("ret", "r2", 40, json!([{"sku": "S3", "category": "母嬰", "brand": "好孩子", "price": "10", "quantity": 1}])),
            // 彩妝 5 days ago, then cancelled: the order bought nothing.
            order("gone", "g1", 5, json!([{"sku": "S1", "category": "彩妝", "brand": "后", "price": "10", "quantity": 1}])),
            {"type": "track", "userId": "gone", "event": "Order Cancelled", "messageId": "g1c", "timestamp": ago(4),
             "properties": {"order_id": "g1"}},
        ]}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let count = |expression: &str| {
        let r = s.admin_post("/api/v1/segments/count", &json!({"expression": expression}));
        assert_eq!(r.status, 200, "{expression}: {:?}", r.body);
        r.body["count"].as_u64().unwrap_or(u64::MAX)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while count("orders >= 1") != 3 {
        assert!(Instant::now() < deadline, "the orders never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let cases = [
        (r#"bought category "彩妝" within 90d"#, 1),
        (r#"bought category "彩妝""#, 2),
        (r#"categories_bought(90d) contains "彩妝""#, 1),
        (r#"bought brand ["雪花秀", "好孩子"] within 30d"#, 2),
        (r#"bought sku "S1" within 200d and not bought category "母嬰""#, 2),
        (r#"brands_bought(7d) is set"#, 1),
        // The events as they arrived: the cancelled order was an Order Completed too.
        (
            r#"event("Order Completed", within: 90d, where: {"products.category": "彩妝"})"#,
            2,
        ),
        (r#"lifecycle = "留存用戶""#, 1),
    ];
    for (expression, want) in cases {
        assert_eq!(count(expression), want, "{expression}");
    }
    let r = s.admin_post(
        "/api/v1/segments",
        &json!({"name": "近90天彩妝", "expression": "bought category \"彩妝\" within 90d"}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(members(&s, "/api/v1/segments/近90天彩妝/members"), ["mia"]);
    assert_eq!(members(&s, "/api/v1/tags/留存用戶/members"), ["ret"]);
    let r = s.get("/api/v1/profiles/mia/audience");
    assert_eq!(
        r.body["traits"]["categories_bought"],
        json!(["彩妝", "護膚"]),
        "{:?}",
        r.body
    );
    drop(s);
    // The CLI rebuilds the index from the store and counts the same.
    for (expression, want) in cases {
        let out = site.cli(&["segment", "count", expression, "--format", "json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["count"], want, "CLI: {expression}");
    }
}

on_each_backend!(products_in_segments_on, products_in_segments);

#[test]
fn audience_sqlite() {
    audience(Site::new(Backend::Sqlite, "audience").unwrap());
}

#[test]
fn audience_postgres() {
    if let Some(site) = Site::new(Backend::Postgres, "audience") {
        audience(site);
    }
}

#[test]
fn audience_settings_come_from_the_toml_file() {
    let site = Site::new(Backend::Sqlite, "audience_toml").unwrap();
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let file = site.data_dir.join("flywheel.toml");
    std::fs::write(
        &file,
        "[audience]\ntimezone = \"Europe/Berlin\"\n[[audience.builtin_tags]]\nname = \"大客戶\"\ngroup = \"行為標簽\"\n\
         rule = \"spend(30d) > 2000 元\"\ndescription = \"ours\"\n",
    )
    .unwrap();
    let out = site
        .command()
        .args([
            "--config",
            file.to_str().unwrap(),
            "tag",
            "list",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tags: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["大客戶"]);
    assert_eq!(tags[0]["rule"], "spend(30d) > 2000 元");
    // A rule that does not check is bad input (exit 2 with the reason).
    std::fs::write(&file, "[[audience.builtin_tags]]\nname = \"x\"\ngroup = \"g\"\nrule = \"spend(30d) > 2000\"\ndescription = \"\"\n").unwrap();
    let out = site
        .command()
        .args(["--config", file.to_str().unwrap(), "tag", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("built-in tag \"x\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
