//! Journey effects never skip work: an event-triggered journey issues a coupon and
//! points while the store fails — injected outages before effects (`FLYWHEEL_FAULTS`,
//! test-only), and on PostgreSQL the server's connections terminated with
//! `pg_terminate_backend` for a stretch of time — and afterwards every entered user holds
//! exactly one coupon and one points grant. A step that keeps failing is set aside in the
//! dead-letter list (API, CLI, metrics, an alert); a retry resumes it, a dismissal ends
//! its run.

mod common;

use std::time::Duration;

use common::{Backend, Server, Site};
use serde_json::{json, Value};

const USERS: usize = 10;
/// Attempts of an effect before it is set aside (`[journeys.effect_retry]` below).
const ATTEMPTS: usize = 40;

/// How long a wait may take while retries wait out outages.
const PATIENCE: Duration = Duration::from_secs(120);

fn created(r: common::Reply) {
    assert!(r.status == 200 || r.status == 201, "{} {}", r.status, r.body);
}

fn start_journey(s: &Server, def: Value) {
    let name = def["name"].as_str().unwrap_or_default().to_string();
    created(s.admin_post("/api/v1/journeys", &def));
    created(s.admin_post(&format!("/api/v1/journeys/{name}/start"), &json!({})));
}

fn journeys_listed(s: &Server, n: usize) -> Vec<Value> {
    let v = s.wait_for_within("/api/v1/dead-letters", PATIENCE, |v| {
        v["dead_letters"]
            .as_array()
            .is_some_and(|l| l.iter().filter(|d| d["workflow"] == "journeys").count() == n)
    });
    v["dead_letters"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|d| d["workflow"] == "journeys")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn campaign_points(s: &Server, user: &str) -> Value {
    s.get(&format!("/api/v1/users/{user}/points")).body
}

fn no_effect_is_skipped_or_doubled(mut site: Site) {
    // On PostgreSQL, name this test's connections so only they are terminated.
    let pg = site.name_connections("journey_faults");
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let config = site.data_dir.join("flywheel.toml");
    std::fs::write(
        &config,
        format!(
            "[journeys]\nlease_ms = 2000\n\n[journeys.effect_retry]\nmax_attempts = {ATTEMPTS}\n\
             initial_delay_ms = 50\nmax_delay_ms = 200\n"
        ),
    )
    .unwrap();
    let key = site.write_key();
    let mut command = site.command();
    command.env(
        "FLYWHEEL_FAULTS",
        format!(
            "journeys.effects:6,journeys.effects.poison=bonus_points:{}",
            2 * ATTEMPTS
        ),
    );
    let s = common::serve_with(command, &["--config", config.to_str().unwrap()]);
    let t = json!({"id": "welcome_10", "name": "welcome 10", "benefit": {"type": "amount", "off": 1000},
                   "validity": {"type": "days_after_issue", "days": 30}});
    created(s.admin_post("/api/v1/coupon-templates", &t));
    start_journey(
        &s,
        json!({"name": "welcome", "trigger": {"event": {"name": "Signed Up"}},
               "steps": [{"id": "coupon", "type": "coupon", "template": "welcome_10"},
                         {"id": "points", "type": "points", "amount": 100}]}),
    );
    start_journey(
        &s,
        json!({"name": "bonus", "trigger": {"event": {"name": "Bonus Claimed"}},
               "steps": [{"id": "bonus_points", "type": "points", "amount": 50}]}),
    );

    // The store fails while the effects run: injected outages, and on PostgreSQL the
    // server's connections terminated over and over.
    let killer = common::ConnectionKiller::start(pg);
    for i in 0..USERS {
        s.track_until_accepted(
            &key,
            &json!({"userId": format!("u{i}"), "event": "Signed Up", "messageId": format!("signup-{i}")}),
        );
    }
    if let Some(k) = killer {
        k.finish_after(Duration::from_secs(2));
    }
    // The poisoned step runs after the stretch of terminated connections: a poisoned
    // attempt whose write was lost with its connection would not count toward the
    // attempts, and the poison would run out before the step is set aside.
    for p in ["p1", "p2"] {
        s.track_until_accepted(
            &key,
            &json!({"userId": p, "event": "Bonus Claimed", "messageId": format!("bonus-{p}")}),
        );
    }

    // Every entered user holds exactly one coupon and one points grant.
    for i in 0..USERS {
        let user = format!("u{i}");
        let points = s.wait_for_within(&format!("/api/v1/users/{user}/points"), PATIENCE, |v| {
            v["balance"] == 100
        });
        let grants = points["entries"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|e| e["source"] == "campaign").count());
        assert_eq!(grants, 1, "{user}: {points}");
        let wallet = s.get(&format!("/api/v1/users/{user}/coupons")).body;
        assert_eq!(
            wallet["coupons"].as_array().map(Vec::len),
            Some(1),
            "{user}: {wallet}"
        );
    }

    // The poisoned step was set aside for both users, with an alert, and waits there.
    let listed = journeys_listed(&s, 2);
    for d in &listed {
        assert_eq!(d["attempts"], json!(ATTEMPTS), "{d}");
        assert!(d["item"].as_str().unwrap_or("").ends_with("/bonus_points"), "{d}");
        assert!(d["error"].as_str().unwrap_or("").contains("bonus"), "{d}");
    }
    let metrics = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains("flywheel_dead_letters{workflow=\"journeys\"} 2"),
        "{metrics}"
    );
    let alerts = s.wait_for_within("/api/v1/analytics/alerts", PATIENCE, |v| {
        v.to_string().matches("dead_lettered").count() >= 2
    });
    assert!(alerts.to_string().contains("bonus"), "{alerts}");
    for p in ["p1", "p2"] {
        assert_eq!(campaign_points(&s, p)["balance"], 0, "{p} has no bonus yet");
    }

    // The CLI lists them too, and a retry from it resumes the step in the server.
    let out = site.cli(&["dead-letters", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        cli["dead_letters"]
            .as_array()
            .map(|l| l.iter().filter(|d| d["workflow"] == "journeys").count()),
        Some(2),
        "{cli}"
    );
    let user_of = |d: &Value| d["user_id"].as_str().unwrap_or_default().to_string();
    let (first, second) = (listed[0].clone(), listed[1].clone());
    let out = site.cli(&["dead-letters", "retry", &first["id"].to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.wait_for_within(
        &format!("/api/v1/users/{}/points", user_of(&first)),
        PATIENCE,
        |v| v["balance"] == 50,
    );
    journeys_listed(&s, 1);

    // A dismissal over the API removes the other; its run ends without the bonus.
    let r = s.admin_post(
        &format!("/api/v1/dead-letters/{}/dismiss", second["id"]),
        &json!(null),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    journeys_listed(&s, 0);
    let r = s.admin_post(
        &format!("/api/v1/dead-letters/{}/dismiss", second["id"]),
        &json!(null),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let out = site.cli(&["dead-letters", "dismiss", "99999"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = s.get("/api/v1/journeys/bonus/runs").body;
    let dismissed = runs["runs"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|r| r["user_id"] == json!(user_of(&second)))
                .cloned()
        })
        .unwrap_or_default();
    assert_eq!(dismissed["state"], "exited", "{runs}");
    assert_eq!(campaign_points(&s, &user_of(&second))["balance"], 0);
    // Nothing was doubled meanwhile.
    for i in 0..USERS {
        assert_eq!(campaign_points(&s, &format!("u{i}"))["balance"], 100);
    }
}

on_each_backend!(journey_effects, no_effect_is_skipped_or_doubled);
