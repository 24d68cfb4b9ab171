//! The background services as an operator sees them: `/readyz` and `/metrics` list every
//! service of `serve` with its state, lag and last error; a service that fails and
//! retries (an injected store outage in the order rewards) shows its error while the
//! process stays ready, and catches up; SIGTERM stops every service and the server
//! within the shutdown deadline.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Site};
use serde_json::json;

/// Every service `serve` runs with the default settings (and `wal` on SQLite).
const SERVICES: [&str; 11] = [
    "order_rewards",
    "group_expiry",
    "loyalty_daily",
    "flash_sweeper",
    "journey_timers",
    "journey_tail",
    "journey_refresh",
    "journey_transitions",
    "guardrails",
    "reviews",
    "clv_refresh",
];

/// The graceful stop's deadline (`serve`'s SHUTDOWN_DEADLINE).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(12);

fn services(backend: Backend) -> Vec<&'static str> {
    let mut all = SERVICES.to_vec();
    if backend == Backend::Sqlite {
        all.push("wal");
    }
    all
}

fn every_service_reports_its_health_and_sigterm_stops_them(site: Site, backend: Backend) {
    let key = site.write_key();
    let mut command = site.command();
    // The order rewards' next 3 runs fail as a store outage would.
    command.env("FLYWHEEL_FAULTS", "order_hooks:3");
    let s = common::serve_with(command, &[]);
    let names = services(backend);

    let order = json!({"userId": "u1", "event": "Order Completed", "messageId": "m-O-1",
                       "properties": {"order_id": "O-1", "total": 100.0,
                                      "products": [{"product_id": "P", "price": 100.0, "quantity": 1}]}});
    assert_eq!(s.post("/v1/track", Some(&key), &order).status, 200);
    // The outage is retried until the order has earned: nothing skipped.
    s.wait_for("/api/v1/users/u1/points", |v| v["balance"] == json!(100));

    // Recovered: the run after the third failure went through.
    let ready = s.wait_for("/readyz", |v| {
        let w = &v["workers"]["order_rewards"];
        w["errors"] == json!(3) && w["state"] == "running" && w["lag"] == json!(0)
    });
    assert_eq!(ready["status"], "ready", "{ready}");
    let workers = ready["workers"].as_object().expect("workers object");
    for name in &names {
        let w = &workers[*name];
        assert!(w["state"].is_string(), "{name}: {w}");
        assert_ne!(w["state"], "stopped", "{name}: {w}");
        assert!(w["lag"].is_u64(), "{name}: {w}");
        assert!(
            w.get("last_error").is_some() && w.get("last_error_at").is_some(),
            "{name}: {w}"
        );
        assert!(w.get("last_ok_at").is_some(), "{name}: {w}");
    }
    assert_eq!(workers.len(), names.len(), "{ready}");
    let rewards = &workers["order_rewards"];
    assert_eq!(rewards["state"], "running", "{rewards}");
    assert_eq!(rewards["lag_unit"], "events", "{rewards}");
    assert!(
        rewards["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("injected store fault")),
        "{rewards}"
    );
    assert!(rewards["last_error_at"].is_string(), "{rewards}");

    let metrics = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    for name in &names {
        for gauge in [
            "flywheel_worker_up",
            "flywheel_worker_errors_total",
            "flywheel_worker_last_error_timestamp_seconds",
            "flywheel_worker_last_success_timestamp_seconds",
        ] {
            assert!(
                metrics.contains(&format!("{gauge}{{service=\"{name}\"}} ")),
                "{gauge} {name}\n{metrics}"
            );
        }
        assert!(
            metrics.contains(&format!("flywheel_worker_lag{{service=\"{name}\",unit=")),
            "lag {name}\n{metrics}"
        );
        assert!(
            metrics.contains(&format!("flywheel_worker_up{{service=\"{name}\"}} 1")),
            "{name}\n{metrics}"
        );
    }
    assert!(
        metrics.contains("flywheel_worker_errors_total{service=\"order_rewards\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flywheel_worker_lag{service=\"order_rewards\",unit=\"events\"} 0"),
        "{metrics}"
    );
    // The names operators already use stay.
    assert!(
        metrics.contains("flywheel_workflow_lag_events{workflow=\"order_rewards\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flywheel_dead_letters{workflow=\"order_rewards\"} 0"),
        "{metrics}"
    );

    let asked = Instant::now();
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() < SHUTDOWN_DEADLINE,
        "the graceful stop took {:?}",
        asked.elapsed()
    );
}

#[test]
fn sqlite() {
    if let Some(site) = Site::new(Backend::Sqlite, "workers_health") {
        every_service_reports_its_health_and_sigterm_stops_them(site, Backend::Sqlite);
    }
}

#[test]
fn postgres() {
    if let Some(site) = Site::new(Backend::Postgres, "workers_health") {
        every_service_reports_its_health_and_sigterm_stops_them(site, Backend::Postgres);
    }
}
