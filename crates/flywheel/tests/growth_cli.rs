//! The growth commands from the command line: loyalty, flash sales, group buys, referrals.

mod common;

use common::{Backend, Site};
use serde_json::{json, Value};

fn ok(site: &Site, args: &[&str]) -> String {
    let out = site.cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn growth_commands() {
    let site = Site::new(Backend::Sqlite, "growth_cli").unwrap();
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let file = |name: &str, v: Value| {
        let p = site.data_dir.join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.to_str().unwrap().to_owned()
    };
    // Loyalty.
    let posted: Value = serde_json::from_str(&ok(&site, &["loyalty", "check-in", "u1"])).unwrap();
    assert_eq!(posted["balance"], 5);
    let again: Value = serde_json::from_str(&ok(&site, &["loyalty", "check-in", "u1"])).unwrap();
    assert_eq!(again["repeated"], true);
    let b: Value =
        serde_json::from_str(&ok(&site, &["loyalty", "points", "u1", "--format", "json"])).unwrap();
    assert_eq!(b["balance"], 5);
    let tier: Value = serde_json::from_str(&ok(&site, &["loyalty", "tier", "u1"])).unwrap();
    assert_eq!(tier["tier"], "青銅");
    // Flash sales.
    let now = chrono::Utc::now();
    let sale = file(
        "sale.json",
        json!({"id": "s1", "product": "P", "price": 100, "stock": 7,
        "starts_at": now.to_rfc3339(), "ends_at": (now + chrono::Duration::hours(1)).to_rfc3339()}),
    );
    ok(&site, &["flash-sale", "create", &sale]);
    let list: Value = serde_json::from_str(&ok(&site, &["flash-sale", "list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["remaining"], 7);
    let out = site.cli(&["flash-sale", "create", &sale]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sale_exists"));
    // Group buys.
    let deal = file(
        "deal.json",
        json!({"id": "d", "product": "P", "group_price": 100, "group_size": 2, "join_hours": 1}),
    );
    ok(&site, &["group-buy", "create-deal", &deal]);
    let g: Value = serde_json::from_str(&ok(&site, &["group-buy", "open", "d", "leader"])).unwrap();
    let id = g["id"].as_str().unwrap();
    let full: Value = serde_json::from_str(&ok(&site, &["group-buy", "join", id, "friend"])).unwrap();
    assert_eq!(full["state"], "full");
    let out = site.cli(&["group-buy", "join", id, "late"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("group_full"));
    // Referrals.
    let code = ok(&site, &["referral", "code", "alice"]).trim().to_owned();
    assert_eq!(code.len(), 8);
    assert_eq!(ok(&site, &["referral", "code", "alice"]).trim(), code);
    let out = site.cli(&["referral", "show", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
}
