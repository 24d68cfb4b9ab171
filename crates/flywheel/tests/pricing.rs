//! Cart pricing through the real binary: `POST /api/v1/cart/price` and `flywheel price`,
//! on the example of docs/pricing.md.

mod common;

use common::{Backend, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

const EXAMPLE: &str = include_str!("../../../docs/examples/cart-double11.json");

#[test]
fn api_and_cli_price_the_documented_cart() {
    let site = Site::new(Backend::Sqlite, "pricing").unwrap();
    let s = site.serve(&[]);
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let post = |body: &[u8]| s.post_raw("/api/v1/cart/price", None, &[("Authorization", &auth)], body);
    let r = post(EXAMPLE.as_bytes());
    assert_eq!(r.status, 200, "{:?}", r.body);
    // 350 − 50 (店鋪滿300減50) − 20 (跨店滿200減20) − 15 (護膚15元) = 265; shipping 10 − 10 (免運券).
    assert_eq!(r.body["payable"], 26500);
    assert_eq!(r.body["subtotal"], 35000);
    let reasons: Vec<(String, String)> = r.body["not_applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_owned(),
                n["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("平臺滿399減30".into(), "below_threshold".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("首購立減5元".into(), "not_first_order".into())),
        "{reasons:?}"
    );
    let gift = r.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["gift"] == true)
        .cloned()
        .unwrap();
    assert_eq!(
        (gift["product"].clone(), gift["payable"].clone()),
        (json!("面膜"), json!(0))
    );
    // Line shares add up to the total discount.
    let lines: i64 = r.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["discount"].as_i64().unwrap())
        .sum();
    assert_eq!(lines, r.body["discount"].as_i64().unwrap());

    // Bad input: a 4xx with a stable code.
    let mut bad: Value = serde_json::from_str(EXAMPLE).unwrap();
    bad["cart"]["lines"][0]["unit_price"] = json!(-1);
    let r = post(bad.to_string().as_bytes());
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("negative_amount")),
        "{:?}",
        r.body
    );
    let r = post(b"{\"cart\": 1}");
    assert_eq!((r.status, r.body["code"].as_str()), (400, Some("invalid_json")));
    let r = s.post_raw("/api/v1/cart/price", None, &[], EXAMPLE.as_bytes());
    assert_eq!(r.status, 401);
    drop(s);

    // The CLI gives the same quote.
    let file = std::env::temp_dir().join(format!("flywheel-cart-{}.json", std::process::id()));
    std::fs::write(&file, EXAMPLE).unwrap();
    let out = site.cli(&["price", file.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let q: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(q["payable"], 26500);
    std::fs::write(&file, bad.to_string()).unwrap();
    let out = site.cli(&["price", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("negative_amount"));
}
