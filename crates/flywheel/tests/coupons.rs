//! Coupons through the real binary on SQLite and PostgreSQL: a template, issuing, the
//! buyer's wallet in cart pricing, 200 concurrent redemptions over HTTP, refunds, the
//! audit trail, codes, and refusals with stable codes.

mod common;

use common::{Backend, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

fn coupons(site: Site) {
    let s = site.serve(&[]);
    let t = json!({"id": "店X滿300減50", "name": "店鋪滿300減50券", "scope": {"type": "shop", "shop": "X"},
                   "benefit": {"type": "amount", "off": 5000, "min_spend": 30000},
                   "validity": {"type": "days_after_issue", "days": 30}, "per_user_limit": 2});
    let r = s.admin_post("/api/v1/coupon-templates", &t);
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        s.admin_post("/api/v1/coupon-templates", &t).body["code"],
        "template_exists"
    );
    let r = s.admin_post(
        "/api/v1/coupon-templates/店X滿300減50/issue",
        &json!({"user_id": "u1"}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // The wallet: the buyer's coupons join the pricing.
    let cart = json!({"cart": {"lines": [{"shop": "X", "product": "A", "unit_price": 30000, "quantity": 1}]},
                      "buyer": {"user_id": "u1"}, "wallet": true, "best_combination": true});
    let r = s.admin_post("/api/v1/cart/price", &cart);
    assert_eq!(
        (r.status, r.body["payable"].clone()),
        (200, json!(25000)),
        "{:?}",
        r.body
    );

    // 200 concurrent redemptions for different orders: exactly one wins.
    let url = s.url.clone();
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let (url, id) = (url.clone(), id.clone());
            std::thread::spawn(move || {
                let body = json!({"user_id": "u1", "order_id": format!("o{i}")}).to_string();
                match ureq::post(&format!("{url}/api/v1/coupons/{id}/redeem"))
                    .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
                    .send_string(&body)
                {
                    Ok(r) => r.status(),
                    Err(ureq::Error::Status(code, r)) => {
                        let v: Value = r.into_json().unwrap_or_default();
                        assert_eq!(v["code"], "already_redeemed", "{v}");
                        code
                    }
                    Err(e) => panic!("transport: {e}"),
                }
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 199);
    let winner = s.get("/api/v1/users/u1/coupons").body["coupons"][0]["order_id"].clone();
    let order = winner.as_str().unwrap().to_owned();
    // The same order again answers the same; a refund gives the coupon back.
    let r = s.admin_post(
        &format!("/api/v1/coupons/{id}/redeem"),
        &json!({"user_id": "u1", "order_id": order}),
    );
    assert_eq!((r.status, r.body["state"].clone()), (200, json!("redeemed")));
    let r = s.admin_post(
        &format!("/api/v1/coupons/{id}/refund"),
        &json!({"order_id": order}),
    );
    assert_eq!(r.body["state"], "issued");
    let trail = s.get(&format!("/api/v1/coupons/{id}/audit")).body["audit"].clone();
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["issued", "redeemed", "returned"]);

    // Codes: generated, claimed once.
    let r = s.admin_post(
        "/api/v1/coupon-templates/店X滿300減50/codes",
        &json!({"count": 3}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let code = r.body["codes"][0].as_str().unwrap().to_owned();
    assert_eq!(
        s.admin_post("/api/v1/coupons/claim", &json!({"code": code, "user_id": "u2"}))
            .status,
        200
    );
    let r = s.admin_post("/api/v1/coupons/claim", &json!({"code": code, "user_id": "u3"}));
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (409, json!("already_claimed"))
    );

    // A coupon checked against the order's cart: another shop's cart is refused, nothing reserved.
    let other_shop = json!({"lines": [{"shop": "Y", "product": "B", "unit_price": 50000, "quantity": 1}]});
    let r = s.admin_post(
        &format!("/api/v1/coupons/{id}/reserve"),
        &json!({"user_id": "u1", "order_id": "o-y", "cart": other_shop}),
    );
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (409, json!("out_of_scope")),
        "{:?}",
        r.body
    );
    let small = json!({"lines": [{"shop": "X", "product": "A", "unit_price": 29999, "quantity": 1}]});
    let r = s.admin_post(
        &format!("/api/v1/coupons/{id}/redeem"),
        &json!({"user_id": "u1", "order_id": "o-s", "cart": small}),
    );
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (409, json!("below_threshold")),
        "{:?}",
        r.body
    );
    let fits = json!({"lines": [{"shop": "X", "product": "A", "unit_price": 30000, "quantity": 1}]});
    let r = s.admin_post(
        &format!("/api/v1/coupons/{id}/reserve"),
        &json!({"user_id": "u1", "order_id": "o-x", "cart": fits}),
    );
    assert_eq!(
        (r.status, r.body["state"].clone()),
        (200, json!("reserved")),
        "{:?}",
        r.body
    );
    assert_eq!(
        s.admin_post(
            &format!("/api/v1/coupons/{id}/release"),
            &json!({"order_id": "o-x"})
        )
        .body["state"],
        "issued"
    );

    // Refusals.
    for (path, body, status, code) in [
        (
            "/api/v1/coupon-templates/nope/issue",
            json!({"user_id": "u"}),
            404,
            "not_found",
        ),
        (
            "/api/v1/coupon-templates/店X滿300減50/issue",
            json!({"user": "u"}),
            400,
            "invalid_json",
        ),
        (
            "/api/v1/coupon-templates",
            json!({"id": "x", "name": "x", "benefit": {"type": "percent", "percent": 0},
                                           "validity": {"type": "days_after_issue", "days": 1}}),
            400,
            "invalid_template",
        ),
        (
            "/api/v1/coupons/nope/redeem",
            json!({"user_id": "u", "order_id": "o"}),
            404,
            "not_found",
        ),
        (
            &format!("/api/v1/coupons/{id}/redeem"),
            json!({"user_id": "u2", "order_id": "o"}),
            409,
            "not_owner",
        ),
    ] {
        let r = s.admin_post(path, &body);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(code)),
            "{path} {body}: {:?}",
            r.body
        );
    }
    // A template for an audience: only members of the segment get it.
    let vip = json!({"id": "大客戶券", "name": "大客戶專享", "benefit": {"type": "amount", "off": 2000},
                     "validity": {"type": "days_after_issue", "days": 7}, "audience": "orders >= 1"});
    assert_eq!(s.admin_post("/api/v1/coupon-templates", &vip).status, 201);
    let bad = json!({"id": "壞券", "name": "x", "benefit": {"type": "amount", "off": 1},
                     "validity": {"type": "days_after_issue", "days": 7}, "audience": "orders >="});
    assert_eq!(
        s.admin_post("/api/v1/coupon-templates", &bad).body["code"],
        "invalid_expression"
    );
    let r = s.admin_post(
        "/api/v1/coupon-templates/大客戶券/issue",
        &json!({"user_id": "u1"}),
    );
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (409, json!("not_in_audience")),
        "{:?}",
        r.body
    );

    // Per-user limit 2: u1 holds one, gets one more, then no more.
    assert_eq!(
        s.admin_post(
            "/api/v1/coupon-templates/店X滿300減50/issue",
            &json!({"user_id": "u1"})
        )
        .status,
        201
    );
    let r = s.admin_post(
        "/api/v1/coupon-templates/店X滿300減50/issue",
        &json!({"user_id": "u1"}),
    );
    assert_eq!((r.status, r.body["code"].clone()), (409, json!("per_user_limit")));
    drop(s);

    // The CLI over the same store.
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let file = site.data_dir.join("welcome.json");
    std::fs::write(
        &file,
        json!({"id": "新人10元", "name": "新人10元無門檻券", "benefit": {"type": "amount", "off": 1000},
        "validity": {"type": "days_after_issue", "days": 7}, "total_quantity": 5})
        .to_string(),
    )
    .unwrap();
    let out = site.cli(&["coupon", "create-template", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = site.cli(&["coupon", "issue", "新人10元", "u9"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = site.cli(&["coupon", "codes", "新人10元", "9"]);
    assert_eq!(out.status.code(), Some(2), "only 4 left");
    assert!(String::from_utf8_lossy(&out.stderr).contains("sold_out"));
    let out = site.cli(&["coupon", "list", "u9", "--format", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (list[0]["template_id"].clone(), list[0]["state"].clone()),
        (json!("新人10元"), json!("issued"))
    );
    let out = site.cli(&["coupon", "templates", "--format", "json"]);
    let t: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t.as_array().map(Vec::len), Some(3));
}

#[test]
fn coupons_sqlite() {
    coupons(Site::new(Backend::Sqlite, "coupons").unwrap());
}

#[test]
fn coupons_postgres() {
    if let Some(site) = Site::new(Backend::Postgres, "coupons") {
        coupons(site);
    }
}
