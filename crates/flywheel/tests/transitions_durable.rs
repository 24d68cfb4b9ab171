//! Segment triggers are durable: users who cross a segment boundary enter the
//! segment-triggered journey exactly once, whatever fails meanwhile —
//!
//! - the store fails while transitions are logged and while journeys read them
//!   (`FLYWHEEL_FAULTS`, test-only), and on PostgreSQL the server's connections are
//!   terminated with `pg_terminate_backend` for a stretch of time;
//! - the server is killed (SIGKILL) while users cross by an event, and while they cross
//!   by time alone; after the restart each has entered once.
//!
//! The journey ends at once, so a user entered twice would show two runs.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Backend, Server, Site};
use serde_json::{json, Value};

fn track(s: &Server, key: &str, body: &Value) {
    s.track_until_accepted(key, body);
}

/// A `Ping` of `user` stamped `at` (ms).
fn ping(user: &str, id: &str, at: i64) -> Value {
    let ts = chrono::DateTime::from_timestamp_millis(at)
        .expect("time")
        .to_rfc3339();
    json!({"userId": user, "event": "Ping", "messageId": id, "timestamp": ts})
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Defines segment `name` as `expression` (once `Ping` is a known event name) and a
/// journey entering whoever enters it, ending at once.
fn segment_journey(s: &Server, key: &str, name: &str, expression: &str) {
    // An event name is known to the segment language once one was seen: a ping a day ago.
    track(s, key, &ping("warm", "warm-0", now_ms() - 86_400_000));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = s.admin_post(
            "/api/v1/segments",
            &json!({"name": name, "expression": expression}),
        );
        if r.status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "segment refused: {} {}",
            r.status,
            r.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let journey = json!({
        "name": format!("{name}_journey"),
        "trigger": {"segment": {"name": name, "on": "entered"}},
        "steps": [{"id": "done", "type": "exit"}]
    });
    let r = s.admin_post("/api/v1/journeys", &journey);
    assert!(r.status < 300, "{} {}", r.status, r.body);
    let r = s.admin_post(&format!("/api/v1/journeys/{name}_journey/start"), &json!({}));
    assert!(r.status < 300, "{} {}", r.status, r.body);
}

/// Runs of the journey per user.
fn runs_by_user(s: &Server, name: &str) -> BTreeMap<String, usize> {
    let v = s
        .get(&format!("/api/v1/journeys/{name}_journey/runs?limit=1000"))
        .body;
    let mut by = BTreeMap::new();
    for r in v["runs"].as_array().cloned().unwrap_or_default() {
        if let Some(u) = r["user_id"].as_str() {
            *by.entry(u.to_string()).or_insert(0) += 1;
        }
    }
    by
}

/// Waits until each of `users` has entered, then checks that each entered exactly once
/// and nobody else entered.
fn each_entered_once(s: &Server, name: &str, users: &[String]) {
    let path = format!("/api/v1/journeys/{name}_journey/runs?limit=1000");
    s.wait_for(&path, |v| {
        let runs = v["runs"].as_array().cloned().unwrap_or_default();
        users
            .iter()
            .all(|u| runs.iter().any(|r| r["user_id"] == u.as_str()))
    });
    let by = runs_by_user(s, name);
    let expected: BTreeMap<String, usize> = users.iter().map(|u| (u.clone(), 1)).collect();
    assert_eq!(by, expected);
}

const USERS: usize = 20;

fn users(prefix: &str) -> Vec<String> {
    (0..USERS).map(|i| format!("{prefix}{i}")).collect()
}

fn entries_survive_store_failures(mut site: Site) {
    // On PostgreSQL, name this test's connections so only they are terminated.
    let pg = site.name_connections("transitions");
    let key = site.write_key();
    let mut command = site.command();
    command.env("FLYWHEEL_FAULTS", "transitions.append:4,journeys.transitions:3");
    let s = common::serve_with(command, &[]);
    segment_journey(&s, &key, "pinged", "event(\"Ping\", within: 1h) >= 1");

    let killer = common::ConnectionKiller::start(pg);
    let crossed = users("u");
    for (i, u) in crossed.iter().enumerate() {
        track(&s, &key, &ping(u, &format!("p-{u}"), now_ms()));
        if i % 5 == 4 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if let Some(k) = killer {
        k.finish_after(Duration::from_secs(2));
    }
    each_entered_once(&s, "pinged", &crossed);
}

fn entries_survive_a_kill_while_users_cross_by_event(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    segment_journey(&s, &key, "pinged", "event(\"Ping\", within: 1h) >= 1");
    let crossed = users("e");
    // Killed right after a stretch of events is accepted: their transitions are being
    // computed and logged, and the journeys' entries made, as the process dies.
    let (before, after) = crossed.split_at(USERS / 2);
    for u in before {
        track(&s, &key, &ping(u, &format!("p-{u}"), now_ms()));
    }
    s.kill();
    let s = site.serve(&[]);
    for u in after {
        track(&s, &key, &ping(u, &format!("p-{u}"), now_ms()));
    }
    each_entered_once(&s, "pinged", &crossed);
}

fn entries_survive_a_kill_while_users_cross_by_time(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    // In the segment a minute after the last ping, by time alone.
    segment_journey(
        &s,
        &key,
        "lapsed",
        "event(\"Ping\") >= 1 and event(\"Ping\", within: 1m) = 0",
    );
    let crossed = users("t");
    // Each user's ping is stamped so that they cross one after the other, 100 ms apart,
    // from 2 s from now: some while the server runs, some while it is down.
    let first = now_ms() + 2_000 - 60_000;
    for (i, u) in crossed.iter().enumerate() {
        track(&s, &key, &ping(u, &format!("p-{u}"), first + 100 * i as i64));
    }
    let last_crossing = first + 100 * USERS as i64 + 60_000;
    // Killed in the middle of the crossings.
    while now_ms() < first + 60_000 + 100 * (USERS as i64 / 2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    s.kill();
    // Down until every user has crossed.
    while now_ms() <= last_crossing {
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = site.serve(&[]);
    each_entered_once(&s, "lapsed", &crossed);
}

on_each_backend!(
    segment_entries_under_store_failures,
    entries_survive_store_failures
);
on_each_backend!(
    segment_entries_across_a_kill_by_event,
    entries_survive_a_kill_while_users_cross_by_event
);
on_each_backend!(
    segment_entries_across_a_kill_by_time,
    entries_survive_a_kill_while_users_cross_by_time
);
