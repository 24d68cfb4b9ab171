//! Analytics end to end through the real binary, on SQLite and PostgreSQL: events in over
//! the tracking API, spend in over the admin API, reports out over `/api/v1/analytics/…`
//! and `flywheel report …` (table, JSON, CSV); the F21 guardrail pauses the campaign's
//! active journey with an alert and an audit entry, and ROI = 1.0 does not trip.

mod common;

use common::{Backend, Server, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

fn admin_post(s: &Server, path: &str, body: &Value) -> common::Reply {
    s.post_raw(
        path,
        None,
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        body.to_string().as_bytes(),
    )
}

fn day(days_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days_ago))
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d")
        .to_string()
}

use common::days_ago as at;

fn analytics(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    // u1 comes from a douyin ad (campaign K) and buys 900 元; u2 from baidu (campaign L)
    // and buys 1000 元; u3 walks the funnel and buys 50 元 with no campaign.
    let page = |user: &str, id: &str, campaign: &str, source: &str, days: i64| {
        json!({"type": "page", "userId": user, "messageId": id, "timestamp": at(days), "name": "活動頁",
               "context": {"campaign": {"name": campaign, "source": source, "medium": "cpc"}}})
    };
    let track = |user: &str, id: &str, event: &str, props: Value, days: i64| json!({"type": "track", "userId": user, "messageId": id, "event": event, "timestamp": at(days), "properties": props});
    let order = |id: &str, total: &str| json!({"order_id": id, "total": total, "products": []});
    let batch = json!({"batch": [
        track("u1", "s1", "Signed Up", json!({}), 5),
        page("u1", "p1", "K", "douyin", 4),
        track("u1", "o1", "Order Completed", order("O1", "900"), 3),
        page("u2", "p2", "L", "baidu", 4),
        track("u2", "o2", "Order Completed", order("O2", "1000"), 3),
        track("u3", "v3", "Product Viewed", json!({}), 2),
        track("u3", "a3", "Product Added", json!({}), 2),
        track("u3", "o3", "Order Completed", order("O3", "50"), 2),
    ]});
    assert_eq!(s.post("/v1/batch", Some(&key), &batch).status, 200);

    // Spend: K 1000 元 (ROI 0.9), L 1000 元 (ROI exactly 1).
    for campaign in ["K", "L"] {
        let channel = if campaign == "K" { "douyin" } else { "baidu" };
        let r = admin_post(
            &s,
            "/api/v1/analytics/spend",
            &json!({"channel": channel, "campaign": campaign, "amount_fen": 100_000, "day": day(4)}),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let bad = admin_post(
        &s,
        "/api/v1/analytics/spend",
        &json!({"channel": "douyin", "amount_fen": -5}),
    );
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    // A mistyped entry (10,000 元 for 100), listed, then deleted; deleting it again is 404.
    let typo = admin_post(
        &s,
        "/api/v1/analytics/spend",
        &json!({"channel": "douyin", "campaign": "K", "amount_fen": 1_000_000, "day": day(4)}),
    );
    let typo_id = typo.body["spend"]["id"].as_i64().expect("the new entry's id");
    let month = &day(4)[..7];
    let listed = s.get(&format!("/api/v1/analytics/spend?month={month}"));
    let ids: Vec<i64> = listed.body["spend"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .collect();
    assert_eq!(ids.len(), 3, "{:?}", listed.body);
    assert!(ids.contains(&typo_id));
    let delete = |id: i64| match ureq::delete(&format!("{}/api/v1/analytics/spend/{id}", s.url))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
    {
        Ok(r) => (r.status(), r.into_json::<Value>().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json::<Value>().unwrap()),
        Err(e) => panic!("{e}"),
    };
    let (status, gone) = delete(typo_id);
    assert_eq!(
        (status, gone["deleted"]["amount"].clone()),
        (200, json!(1_000_000))
    );
    let (status, again) = delete(typo_id);
    assert_eq!((status, again["code"].clone()), (404, json!("not_found")));
    let bad_id = ureq::delete(&format!("{}/api/v1/analytics/spend/abc", s.url))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call();
    match bad_id {
        Err(ureq::Error::Status(400, r)) => {
            assert_eq!(r.into_json::<Value>().unwrap()["code"], "invalid_path")
        }
        other => panic!("{other:?}"),
    }
    let cli_list = site.cli_json(&["spend", "--list", month, "--format", "json"]);
    assert_eq!(cli_list["spend"].as_array().map(Vec::len), Some(2), "{cli_list}");
    let out = site.cli(&["spend", "--delete", &typo_id.to_string()]);
    assert!(!out.status.success(), "an entry already deleted");
    let anon = s.post(
        "/api/v1/analytics/spend",
        None,
        &json!({"channel": "x", "amount_fen": 1}),
    );
    assert_eq!(anon.status, 401);
    assert_eq!(s.get_with("/api/v1/analytics/kpi", None).status, 401);

    // A journey named after campaign K, running.
    let journey = json!({"name": "K", "trigger": {"event": {"name": "Signed Up"}}, "entry": "once",
                         "steps": [{"id": "wait", "type": "wait", "duration": "30d"}]});
    assert!(admin_post(&s, "/api/v1/journeys", &journey).status < 300);
    assert_eq!(admin_post(&s, "/api/v1/journeys/K/start", &json!({})).status, 200);

    // Reports over HTTP.
    let kpi = s.get("/api/v1/analytics/kpi");
    assert_eq!(kpi.status, 200, "{:?}", kpi.body);
    assert_eq!(kpi.body["kpis"]["orders"], 3);
    assert_eq!(kpi.body["kpis"]["gmv"], 195_000);
    assert_eq!(kpi.body["daily"].as_array().map(Vec::len), Some(30));
    let k_only = s.get("/api/v1/analytics/kpi?campaign=K");
    assert_eq!(k_only.body["kpis"]["gmv"], 90_000, "{:?}", k_only.body);
    let bad_day = s.get("/api/v1/analytics/kpi?from=yesterday");
    assert_eq!(
        (bad_day.status, bad_day.body["code"].as_str()),
        (400, Some("invalid_date"))
    );
    assert_eq!(s.get("/api/v1/analytics/kpi?segment=nope").status, 404);
    let campaigns = s.get("/api/v1/analytics/campaigns");
    let rows = campaigns.body["rows"].as_array().expect("rows").clone();
    let row = |c: &str| rows.iter().find(|r| r["campaign"] == c).cloned().expect(c);
    assert_eq!(
        (row("K")["roi"].as_f64(), &row("K")["channels"]),
        (Some(0.9), &json!(["douyin"]))
    );
    assert_eq!(row("K")["by_channel"][0]["channel"], "douyin");
    assert_eq!(row("L")["roi"].as_f64(), Some(1.0));
    let channels = s.get("/api/v1/analytics/channels");
    assert_eq!(channels.status, 200, "{:?}", channels.body);
    let funnel = s.get("/api/v1/analytics/funnel?steps=Product%20Viewed,Product%20Added,Order%20Completed");
    let users: Vec<i64> = funnel.body["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|st| st["users"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(users, vec![1, 1, 1]);
    let attribution = s.get("/api/v1/analytics/attribution?model=first&window_days=7");
    assert_eq!(
        attribution.body["rows"].as_array().map(Vec::len),
        Some(2),
        "{:?}",
        attribution.body
    );
    assert_eq!(s.get("/api/v1/analytics/attribution?model=middle").status, 400);
    assert_eq!(s.get("/api/v1/analytics/uplift?journey=K").status, 200);
    assert_eq!(
        s.get("/api/v1/analytics/goals").body["goals"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    let cohort = s.get("/api/v1/analytics/cohort?days=1,7");
    assert_eq!(cohort.body["rows"][0]["size"], 1, "{:?}", cohort.body);
    // By first purchase, per ISO week: u1, u2 and u3 bought for the first time.
    let weekly = s.get("/api/v1/analytics/cohort?days=1&by=week&cohort=first-purchase");
    assert_eq!(weekly.body["by"], "week", "{:?}", weekly.body);
    assert_eq!(weekly.body["average"]["size"], 3, "{:?}", weekly.body);
    let bad = s.get("/api/v1/analytics/cohort?by=fortnight");
    assert_eq!((bad.status, &bad.body["code"]), (400, &json!("invalid_cohort")));
    let cli = site.cli_json(&[
        "report",
        "cohort",
        "--by",
        "month",
        "--cohort",
        "first-purchase",
        "--format",
        "json",
    ]);
    assert_eq!(
        (&cli["by"], &cli["average"]["size"]),
        (&json!("month"), &json!(3))
    );

    // The CLI: the guardrail pauses K's journey (ROI 0.9 < 1); L (ROI 1.0) is left alone.
    let out = site.cli(&["guardrails"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("K: paused (roi_below_1)"), "{said}");
    assert!(!said.contains("L:"), "{said}");
    assert_eq!(s.get("/api/v1/journeys/K").body["status"], "paused");
    let alerts = s.get("/api/v1/analytics/alerts");
    assert_eq!(alerts.body["alerts"][0]["campaign"], "K", "{:?}", alerts.body);
    assert_eq!(alerts.body["alerts"][0]["action"], "paused");
    let again = site.cli(&["guardrails"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("no campaign tripped"),
        "a paused journey is left alone"
    );
    let report = site.cli_json(&["report", "alerts", "--format", "json"]);
    assert_eq!(report["alerts"].as_array().map(Vec::len), Some(1));
    let kpi_cli = site.cli_json(&["report", "kpi", "--format", "json"]);
    assert_eq!(kpi_cli["kpis"]["gmv"], 195_000);
    let csv = site.cli(&["report", "campaign", "--format", "csv", "--campaign", "L"]);
    let csv = String::from_utf8_lossy(&csv.stdout).to_string();
    assert!(csv.starts_with("campaign,channels,status,sent"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let parts = site.cli(&[
        "report",
        "campaign",
        "--format",
        "csv",
        "--campaign",
        "L",
        "--by-channel",
    ]);
    let parts = String::from_utf8_lossy(&parts.stdout).to_string();
    assert!(parts.starts_with("campaign,channel,status,sent"), "{parts}");
    let table = site.cli(&["report", "funnel", "--steps", "Product Viewed,Order Completed"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("2. Order Completed"));
    let bad = site.cli(&["report", "kpi", "--from", "2026-13-01"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD"));

    // Spend over a period: 10 元 a day for the 10 days ending today, in the API and the CLI.
    let period = admin_post(
        &s,
        "/api/v1/analytics/spend",
        &json!({"channel": "xiaohongshu", "campaign": "種草", "amount_fen": 10_000, "from": day(9), "to": day(0)}),
    );
    assert_eq!(period.status, 201, "{:?}", period.body);
    assert!(
        period.body["spend"]["until"].as_i64().is_some(),
        "{:?}",
        period.body
    );
    let both = admin_post(
        &s,
        "/api/v1/analytics/spend",
        &json!({"channel": "xiaohongshu", "amount_fen": 1, "day": day(1), "from": day(2), "to": day(1)}),
    );
    assert_eq!((both.status, &both.body["code"]), (400, &json!("invalid_spend")));
    let last_two = s.get(&format!(
        "/api/v1/analytics/campaigns?campaign=種草&from={}&to={}",
        day(1),
        day(0)
    ));
    assert_eq!(last_two.body["rows"][0]["ad_spend"], 2_000, "{:?}", last_two.body);
    let out = site.cli(&[
        "spend",
        "--channel",
        "weibo",
        "--amount",
        "70",
        "--from",
        &day(6),
        "--to",
        &day(0),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let today = site.cli_json(&[
        "report",
        "campaign",
        "--campaign",
        "weibo",
        "--from",
        &day(0),
        "--to",
        &day(0),
        "--format",
        "json",
    ]);
    assert_eq!(today["rows"][0]["ad_spend"], 1_000, "{today}");
}

#[test]
fn analytics_sqlite() {
    analytics(Site::new(Backend::Sqlite, "analytics").unwrap());
}

#[test]
fn analytics_postgres() {
    if let Some(site) = Site::new(Backend::Postgres, "analytics") {
        analytics(site);
    }
}

/// Predicted CLV through the CLI: fitted on the store's customers, saved as profile traits,
/// and a segment on the churn-risk band counts exactly the band's customers.
fn clv_traits_for_segments(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    // 60 customers over a year, BG/NBD-like: each buys every few weeks from their first
    // order until they drop out (some early, some never), at pseudo-random days.
    let mut seed: u64 = 42;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut batch = Vec::new();
    let mut firsts = Vec::new();
    for u in 0..60 {
        let first = 60 + next(300) as i64;
        firsts.push(first);
        let gap = 7 + next(40) as i64;
        let lifetime = if u % 4 == 0 {
            first
        } else {
            next(first as u64) as i64
        };
        let mut orders = vec![first];
        let mut day = first - gap;
        while day > 0 && first - day <= lifetime {
            orders.push(day);
            day -= gap + next(10) as i64;
        }
        for (i, days) in orders.iter().enumerate() {
            let id = format!("c{u}-{i}");
            batch.push(json!({"type": "track", "userId": format!("c{u}"), "messageId": id, "event": "Order Completed",
                "timestamp": at(*days),
                "properties": {"order_id": id, "total": format!("{}", 50 + (u * 13 + i as i64 * 7) % 200), "products": []}}));
        }
    }
    assert_eq!(
        s.post("/v1/batch", Some(&key), &json!({ "batch": batch })).status,
        200
    );
    drop(s);
    let fitted = site.cli_json(&[
        "report",
        "ltv",
        "--clv",
        "--save-traits",
        "--format",
        "json",
        "--top",
        "100",
    ]);
    assert_eq!(fitted["customers"], 60);
    assert!(fitted["penalizer"].as_f64().is_some(), "{fitted}");
    let band = |name: &str| {
        fitted["bands"]
            .as_array()
            .and_then(|b| b.iter().find(|x| x["band"] == name))
            .and_then(|x| x["users"].as_i64())
            .unwrap_or(-1)
    };
    assert_eq!(band("low") + band("medium") + band("high"), 60);
    assert!(band("high") > 0, "{fitted}");
    for name in ["low", "medium", "high"] {
        let expr = format!("traits.clv_churn_risk == \"{name}\"");
        let counted = site.cli_json(&["segment", "count", &expr, "--format", "json"]);
        assert_eq!(counted["count"].as_i64(), Some(band(name)), "{name}");
    }
    // P(alive) is a number trait too.
    let low_p = site.cli_json(&["segment", "count", "traits.clv_p_alive < 0.3", "--format", "json"]);
    let expected = fitted["predictions"].as_array().map(|p| {
        p.iter()
            .filter(|c| c["p_alive"].as_f64().is_some_and(|v| v < 0.3))
            .count() as i64
    });
    assert_eq!(low_p["count"].as_i64(), expected);

    // Scored at the end of a past day (`--to`), only the customers who had bought by then
    // count (the day boundary is the shop's, so allow the day either side).
    let to = day(200);
    let then = site.cli_json(&["report", "ltv", "--clv", "--to", &to, "--format", "json"]);
    let bought_by = |days: i64| firsts.iter().filter(|f| **f >= days).count() as i64;
    let customers = then["customers"].as_i64().unwrap_or(-1);
    assert!(bought_by(199) < 60, "some customers start later: {firsts:?}");
    assert!(
        (bought_by(202)..=bought_by(199)).contains(&customers),
        "{customers} customers at {to}, expected {}..={}",
        bought_by(202),
        bought_by(199)
    );
}

#[test]
fn clv_traits_for_segments_sqlite() {
    clv_traits_for_segments(Site::new(Backend::Sqlite, "clv_traits").unwrap());
}
