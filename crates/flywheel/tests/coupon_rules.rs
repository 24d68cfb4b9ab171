//! The coupon audience gate and the wallet rule give the same answer through the admin
//! API and the CLI (both ask `promotions`), on SQLite and PostgreSQL: a user outside a
//! template's audience is refused `not_in_audience` by `coupon issue` and `coupon claim`
//! as by the API, a member is admitted by both, and `flywheel price` with
//! `"wallet": true` prices the buyer's held coupons as `POST /api/v1/cart/price` does.

mod common;

use common::{Backend, Site};
use serde_json::{json, Value};

fn cli(site: &Site, args: &[&str]) -> (i32, String, String) {
    let out = site.cli(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn api_and_cli_agree(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    // ann has a paid order, bob has none.
    let r = s.post(
        "/v1/track",
        Some(&key),
        &json!({"userId": "ann", "event": "Order Completed", "messageId": "o1",
                "properties": {"order_id": "O-1", "total": 100, "products": [{"product_id": "P", "price": 100, "quantity": 1}]}}),
    );
    assert_eq!(r.status, 200);
    s.post(
        "/v1/identify",
        Some(&key),
        &json!({"userId": "bob", "messageId": "i1", "traits": {"name": "bob"}}),
    );
    s.wait_for("/api/v1/profiles/ann/audience", |v| v["traits"]["orders"] == 1);
    let vip = json!({"id": "大客戶券", "name": "大客戶專享", "benefit": {"type": "amount", "off": 2000},
                     "validity": {"type": "days_after_issue", "days": 7}, "audience": "orders >= 1"});
    assert_eq!(s.admin_post("/api/v1/coupon-templates", &vip).status, 201);
    let r = s.admin_post("/api/v1/coupon-templates/大客戶券/codes", &json!({"count": 2}));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let codes: Vec<String> = r.body["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    // The API: bob is refused, ann admitted.
    let r = s.admin_post(
        "/api/v1/coupon-templates/大客戶券/issue",
        &json!({"user_id": "bob"}),
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("not_in_audience")),
        "{:?}",
        r.body
    );
    let r = s.admin_post(
        "/api/v1/coupons/claim",
        &json!({"code": codes[0], "user_id": "bob"}),
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("not_in_audience")),
        "{:?}",
        r.body
    );
    let r = s.admin_post(
        "/api/v1/coupon-templates/大客戶券/issue",
        &json!({"user_id": "ann"}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let cart = json!({"cart": {"lines": [{"shop": "X", "product": "A", "unit_price": 10000, "quantity": 1}]},
                      "buyer": {"user_id": "ann"}, "wallet": true});
    let api_quote = s.admin_post("/api/v1/cart/price", &cart);
    assert_eq!(
        (api_quote.status, api_quote.body["payable"].clone()),
        (200, json!(8000)),
        "{:?}",
        api_quote.body
    );
    drop(s);

    // The CLI over the same store: the same answers.
    let (code, _, err) = cli(&site, &["coupon", "issue", "大客戶券", "bob"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not_in_audience"), "{err}");
    let (code, _, err) = cli(&site, &["coupon", "claim", &codes[0], "bob"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not_in_audience"), "{err}");
    let (code, out, err) = cli(&site, &["coupon", "claim", &codes[1], "ann"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"owner\": \"ann\""), "{out}");
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let file = site.data_dir.join("cart.json");
    // ann now holds two coupons of one group: the CLI considers both and applies one.
    std::fs::write(&file, cart.to_string()).unwrap();
    let (code, out, err) = cli(&site, &["price", file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let cli_quote: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cli_quote["payable"], 8000, "{cli_quote}");
    assert_eq!(
        cli_quote["applied"].as_array().map(Vec::len),
        Some(1),
        "{cli_quote}"
    );
    assert_eq!(
        cli_quote["not_applied"][0]["reason"], "group_taken",
        "{cli_quote}"
    );
    // Without the wallet the held coupons do not count, as in the API.
    let mut bare = cart.clone();
    bare["wallet"] = json!(false);
    std::fs::write(&file, bare.to_string()).unwrap();
    let (code, out, err) = cli(&site, &["price", file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["payable"], 10000);
    // The wallet without a buyer is refused by both.
    let mut anonymous = cart.clone();
    anonymous["buyer"] = json!({});
    std::fs::write(&file, anonymous.to_string()).unwrap();
    let (code, _, err) = cli(&site, &["price", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("wallet needs buyer.user_id"), "{err}");
    let s = site.serve(&[]);
    let r = s.admin_post("/api/v1/cart/price", &anonymous);
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("invalid_json")),
        "{:?}",
        r.body
    );
}
on_each_backend!(api_and_cli_agree, api_and_cli_agree);
