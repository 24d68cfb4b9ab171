//! Funnels end to end through the real binary, on SQLite and PostgreSQL: a misspelt step
//! is refused with a "did you mean" by the API (400 `unknown_funnel_step`) and the CLI
//! (exit 2); the API and `report funnel --format json` answer the same JSON; a funnel is
//! saved, listed, shown, run by name and deleted through the API and the CLI.

mod common;

use common::{Backend, Site, ADMIN_TOKEN};
use serde_json::json;

use common::days_ago as at;

/// DELETEs an admin API path; the status.
fn delete(url: &str, path: &str) -> u16 {
    match ureq::delete(&format!("{url}{path}"))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("transport error: {e}"),
    }
}

fn funnels(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    let track = |user: &str, id: &str, event: &str, days: i64| json!({"type": "track", "userId": user, "messageId": id, "event": event, "timestamp": at(days), "properties": {}});
    let batch = json!({"batch": [
        track("u1", "v1", "Product Viewed", 2),
        track("u1", "w1", "Wishlist Shared", 2),
        track("u1", "a1", "Product Added", 2),
        track("u2", "v2", "Product Viewed", 2),
    ]});
    assert_eq!(s.post("/v1/batch", Some(&key), &batch).status, 200);
    s.wait_for("/api/v1/analytics/funnel?steps=Product%20Viewed", |v| {
        v["steps"][0]["users"] == 2
    });

    // A misspelt step: 400 with the closest received name; the CLI exits 2 saying it.
    let bad = s.get("/api/v1/analytics/funnel?steps=Product%20Viewed,Wishlist%20Shraed");
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert_eq!(bad.body["code"], "unknown_funnel_step");
    let message = bad.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("did you mean \"Wishlist Shared\"?"), "{message}");
    let out = site.cli(&["report", "funnel", "--steps", "Prodcut Viewed,Product Added"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean \"Product Viewed\"?"), "{stderr}");
    // A standard e-commerce event not received yet is a step like any other.
    let standard = s.get("/api/v1/analytics/funnel?steps=Product%20Viewed,Checkout%20Started");
    assert_eq!(standard.status, 200, "{:?}", standard.body);
    assert_eq!(standard.body["steps"][1]["users"], 0);

    // The same JSON from the API and the CLI.
    let api = s.get(
        "/api/v1/analytics/funnel?steps=Product%20Viewed,Wishlist%20Shared,Product%20Added&window_hours=2",
    );
    assert_eq!(api.status, 200, "{:?}", api.body);
    let cli = site.cli_json(&[
        "report",
        "funnel",
        "--steps",
        "Product Viewed,Wishlist Shared,Product Added",
        "--window-hours",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(api.body, cli);
    assert_eq!(cli["window_hours"], 2.0);
    let users: Vec<i64> = cli["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|st| st["users"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(users, vec![2, 1, 1]);
    assert_eq!(cli["steps"][1]["from_first"], 0.5);
    assert_eq!(cli["steps"][1]["dropped"], 1);

    // Saved funnels through the API.
    let body = json!({"name": "wishlist", "steps": ["Product Viewed", "Wishlist Shared", "Product Added"], "window_hours": 2});
    let created = s.admin_post("/api/v1/analytics/funnels", &body);
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["funnel"]["window_hours"], 2.0);
    let again = s.admin_post("/api/v1/analytics/funnels", &body);
    assert_eq!((again.status, &again.body["code"]), (409, &json!("name_taken")));
    let misspelt = s.admin_post(
        "/api/v1/analytics/funnels",
        &json!({"name": "typo", "steps": ["Product Viewd"]}),
    );
    assert_eq!(misspelt.status, 400, "{:?}", misspelt.body);
    assert_eq!(misspelt.body["code"], "unknown_funnel_step");
    let list = s.get("/api/v1/analytics/funnels");
    assert_eq!(
        list.body["funnels"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        list.body
    );
    let one = s.get("/api/v1/analytics/funnels/wishlist");
    assert_eq!(one.body["funnel"]["steps"][1], "Wishlist Shared");
    let run = s.get("/api/v1/analytics/funnel?saved=wishlist");
    assert_eq!(run.status, 200, "{:?}", run.body);
    assert_eq!(run.body["steps"], api.body["steps"]);
    let cli_run = site.cli_json(&["report", "funnel", "--saved", "wishlist", "--format", "json"]);
    assert_eq!(cli_run, run.body);
    assert_eq!(
        s.get("/api/v1/analytics/funnel?saved=wishlist&steps=Product%20Viewed")
            .status,
        400
    );
    assert_eq!(delete(&s.url, "/api/v1/analytics/funnels/wishlist"), 204);
    assert_eq!(delete(&s.url, "/api/v1/analytics/funnels/wishlist"), 404);
    assert_eq!(s.get("/api/v1/analytics/funnel?saved=wishlist").status, 404);

    // Saved funnels through the CLI.
    let out = site.cli(&[
        "funnel",
        "save",
        "cart",
        "--steps",
        "Product Viewed,Product Added",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = site.cli(&["funnel", "save", "cart", "--steps", "Product Viewed"]);
    assert_eq!(out.status.code(), Some(2), "a taken name");
    let out = site.cli(&["funnel", "save", "oops", "--steps", "Product Addded"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean \"Product Added\"?"));
    let listed = site.cli_json(&["funnel", "list", "--format", "json"]);
    assert_eq!(listed["funnels"][0]["name"], "cart");
    let shown = site.cli_json(&["funnel", "show", "cart"]);
    assert_eq!(shown["steps"], json!(["Product Viewed", "Product Added"]));
    assert_eq!(
        s.get("/api/v1/analytics/funnel?saved=cart").body["steps"][1]["users"],
        1
    );
    let out = site.cli(&["funnel", "delete", "cart"]);
    assert!(out.status.success());
    let out = site.cli(&["funnel", "show", "cart"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn funnels_sqlite() {
    funnels(Site::new(Backend::Sqlite, "funnels").unwrap());
}

#[test]
fn funnels_postgres() {
    if let Some(site) = Site::new(Backend::Postgres, "funnels") {
        funnels(site);
    }
}
