//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use flywheel_core::ErrorCode;
use serde_json::{json, Value};

use flywheel_core::health::{ServiceHealth, ServiceState};

use crate::error::ApiError;
use crate::AppState;

/// The OpenAPI document, kept beside the docs and checked against the route table by tests.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers and no background service has stopped. A service
/// that is failing and retrying leaves the process ready (it catches up once the cause
/// is gone; its state, lag and last error are listed under `workers`); one that stopped
/// — ended by a panic — makes it 503 `not_ready`, with the same listing.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<axum::response::Response, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::new(ErrorCode::NotReady, e.to_string()))?;
    let services = state.workers.services();
    let workers = workers_json(&services);
    if let Some(message) = not_ready(&services) {
        tracing::warn!(code = "not_ready", %message, "not ready");
        let body = json!({
            "success": false,
            "code": "not_ready",
            "message": message,
            "status": "not_ready",
            "workers": workers,
        });
        return Ok((axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
    }
    Ok(Json(json!({"status": "ready", "workers": workers})).into_response())
}

/// Why the process is not ready: the background services that stopped (a service that
/// is failing and retrying does not count).
fn not_ready(services: &[ServiceHealth]) -> Option<String> {
    let stopped: Vec<&str> = services
        .iter()
        .filter(|s| s.state == ServiceState::Stopped)
        .map(|s| s.name.as_str())
        .collect();
    (!stopped.is_empty()).then(|| format!("background services stopped: {}", stopped.join(", ")))
}

/// Each service's state, lag, errors, last error and last success, by name.
fn workers_json(services: &[ServiceHealth]) -> Value {
    let rfc3339 = |ms: Option<i64>| ms.map(|ms| flywheel_core::time::from_millis(ms).to_rfc3339());
    let mut out = serde_json::Map::new();
    for s in services {
        out.insert(
            s.name.clone(),
            json!({
                "state": s.state.as_str(),
                "lag": s.lag,
                "lag_unit": s.lag_unit.as_str(),
                "errors": s.errors,
                "last_error": s.last_error,
                "last_error_at": rfc3339(s.last_error_at),
                "last_ok_at": rfc3339(s.last_ok_at),
            }),
        );
    }
    Value::Object(out)
}

/// A per-service gauge: name, help, value of one service.
type Gauge = (&'static str, &'static str, fn(&ServiceHealth) -> String);

/// The per-service gauges of `/metrics`.
fn worker_metrics(out: &mut String, services: &[ServiceHealth]) {
    let gauges: [Gauge; 4] = [
        (
            "flywheel_worker_up",
            "1 while a background service runs (also while it retries a failure), 0 once it stopped.",
            |s| u8::from(s.state != ServiceState::Stopped).to_string(),
        ),
        (
            "flywheel_worker_errors_total",
            "Failed runs of a background service since the process started.",
            |s| s.errors.to_string(),
        ),
        (
            "flywheel_worker_last_error_timestamp_seconds",
            "When a background service last failed (Unix seconds; 0 never).",
            |s| (s.last_error_at.unwrap_or(0) / 1000).to_string(),
        ),
        (
            "flywheel_worker_last_success_timestamp_seconds",
            "When a background service's last run succeeded (Unix seconds; 0 never).",
            |s| (s.last_ok_at.unwrap_or(0) / 1000).to_string(),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in services {
            let _ = writeln!(out, "{name}{{service=\"{}\"}} {}", s.name, value(s));
        }
    }
    let name = "flywheel_worker_lag";
    let _ = writeln!(
        out,
        "# HELP {name} How far behind a background service is: events of the log yet to apply, seconds a due run is overdue, or WAL bytes past the truncation trigger (label unit).\n# TYPE {name} gauge"
    );
    for s in services {
        let _ = writeln!(
            out,
            "{name}{{service=\"{}\",unit=\"{}\"}} {}",
            s.name,
            s.lag_unit.as_str(),
            s.lag
        );
    }
}

/// Requests refused with 429, per edge.
fn rate_limit_metrics(out: &mut String, stats: &crate::rate_limit::RateStats) {
    let name = "flywheel_rate_limited_total";
    let _ = writeln!(
        out,
        "# HELP {name} Requests refused with 429 rate_limited (label edge: tracking or admin).\n# TYPE {name} counter"
    );
    for (edge, n) in [
        ("tracking", &stats.tracking_limited),
        ("admin", &stats.admin_limited),
    ] {
        let _ = writeln!(out, "{name}{{edge=\"{edge}\"}} {}", n.load(Ordering::Relaxed));
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let s = state.pipeline.stats();
    let mut out = String::new();
    for (name, help, value) in [
        (
            "flywheel_events_inserted_total",
            "Events stored.",
            s.inserted.load(Ordering::Relaxed),
        ),
        (
            "flywheel_events_duplicate_total",
            "Events dropped as duplicate messageIds.",
            s.duplicates.load(Ordering::Relaxed),
        ),
        (
            "flywheel_ingest_commits_total",
            "Write transactions committed by the ingest pipeline.",
            s.commits.load(Ordering::Relaxed),
        ),
        (
            "flywheel_ingest_overloaded_total",
            "Batches refused with 503 because the queue was full.",
            s.overloaded.load(Ordering::Relaxed),
        ),
        (
            "flywheel_ingest_client_traits_dropped_total",
            "Server-only traits (email, phone, push and WeChat ids, tier, predicted CLV) dropped from client-key messages.",
            s.client_traits_dropped.load(Ordering::Relaxed),
        ),
        (
            "flywheel_ingest_client_orders_ignored_total",
            "Orders, refunds and cancellations from client keys stored as plain events only.",
            s.client_commerce_ignored.load(Ordering::Relaxed),
        ),
        (
            "flywheel_rate_limit_unavailable_total",
            "Requests let through unchecked because the shared rate limits (Redis) could not be reached.",
            state.rate_limits.stats().unavailable.load(Ordering::Relaxed),
        ),
        (
            "flywheel_journey_cap_unshared_total",
            "Marketing messages whose frequency-cap slots could not be reserved (Redis unreachable): decided by the message log alone.",
            state.journeys.stats().cap_unshared.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    rate_limit_metrics(&mut out, state.rate_limits.stats());
    // Dead letters per workflow; the order rewards always appear (0 when none).
    let mut dead = state
        .store
        .read_with(flywheel_store::dead_letters::counts)
        .await
        .unwrap_or_default();
    if !dead.iter().any(|(w, _)| w == "order_rewards") {
        dead.insert(0, ("order_rewards".to_owned(), 0));
    }
    let _ = writeln!(
        out,
        "# HELP flywheel_dead_letters Items a workflow set aside after repeated failures, waiting for a retry.\n# TYPE flywheel_dead_letters gauge"
    );
    for (workflow, n) in dead {
        let _ = writeln!(out, "flywheel_dead_letters{{workflow=\"{workflow}\"}} {n}");
    }
    use flywheel_store::log_cursor;
    if let Ok(lag) = state
        .store
        .read_with(|c| log_cursor::lag(c, log_cursor::ORDER_HOOKS))
        .await
    {
        let _ = writeln!(
            out,
            "# HELP flywheel_workflow_lag_events Events of the log a workflow has yet to apply (it grows while the store fails: nothing is skipped).\n# TYPE flywheel_workflow_lag_events gauge\nflywheel_workflow_lag_events{{workflow=\"order_rewards\"}} {lag}"
        );
    }
    worker_metrics(&mut out, &state.workers.services());
    audience_metrics(&mut out, &state.audience);
    if let Some(wal) = state.store.wal_bytes() {
        let name = "flywheel_store_wal_bytes";
        let _ = writeln!(
            out,
            "# HELP {name} Size of the SQLite write-ahead log file (bounded by --sqlite-wal-limit).\n# TYPE {name} gauge\n{name} {wal}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// The audience engine's log position, whether this process logs transitions, and every
/// segment's and tag's size read at that position (processes at the same position
/// report the same sizes).
fn audience_metrics(out: &mut String, audience: &flywheel_audience::Audience) {
    let (position, sizes) = audience.sizes_at();
    let recorder = u8::from(audience.records_transitions());
    let _ = writeln!(
        out,
        "# HELP flywheel_audience_position Position in the shared event log (highest event seq) the audience engine stands at.\n# TYPE flywheel_audience_position gauge\nflywheel_audience_position {position}\n# HELP flywheel_audience_recorder 1 when this process logs segment and tag transitions (it holds the recorder lease).\n# TYPE flywheel_audience_recorder gauge\nflywheel_audience_recorder {recorder}\n# HELP flywheel_audience_members Members of each saved segment and tag at flywheel_audience_position.\n# TYPE flywheel_audience_members gauge"
    );
    for (kind, name, n) in sizes {
        let name = name
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = writeln!(
            out,
            "flywheel_audience_members{{kind=\"{}\",name=\"{name}\"}} {n}",
            kind.as_str()
        );
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

#[cfg(test)]
mod tests {
    use flywheel_core::health::LagUnit;

    use super::*;

    fn service(name: &str, state: ServiceState) -> ServiceHealth {
        ServiceHealth {
            name: name.into(),
            state,
            lag: 4,
            lag_unit: LagUnit::Events,
            errors: 2,
            last_error: Some("connection refused".into()),
            last_error_at: Some(1_700_000_000_000),
            last_ok_at: None,
        }
    }

    #[test]
    fn retrying_services_stay_ready_and_a_stopped_one_is_not() {
        let retrying = [
            service("order_rewards", ServiceState::Failing),
            service("group_expiry", ServiceState::Running),
        ];
        assert_eq!(not_ready(&retrying), None);
        let stopped = [
            service("order_rewards", ServiceState::Failing),
            service("reviews", ServiceState::Stopped),
        ];
        assert_eq!(
            not_ready(&stopped).as_deref(),
            Some("background services stopped: reviews")
        );
    }

    #[test]
    fn lists_each_service_with_its_health() {
        let v = workers_json(&[service("order_rewards", ServiceState::Failing)]);
        let w = &v["order_rewards"];
        assert_eq!(w["state"], "failing");
        assert_eq!(
            (w["lag"].as_u64(), w["lag_unit"].as_str()),
            (Some(4), Some("events"))
        );
        assert_eq!(w["last_error"], "connection refused");
        assert!(w["last_error_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2023-11-14T22:13:20")));
        assert!(w["last_ok_at"].is_null());

        let mut text = String::new();
        worker_metrics(&mut text, &[service("order_rewards", ServiceState::Stopped)]);
        assert!(
            text.contains("flywheel_worker_up{service=\"order_rewards\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("flywheel_worker_errors_total{service=\"order_rewards\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("flywheel_worker_lag{service=\"order_rewards\",unit=\"events\"} 4"),
            "{text}"
        );
        assert!(
            text.contains(
                "flywheel_worker_last_error_timestamp_seconds{service=\"order_rewards\"} 1700000000"
            ),
            "{text}"
        );
    }
}
