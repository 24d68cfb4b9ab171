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

use crate::error::ApiError;
use crate::AppState;

/// The OpenAPI document, kept beside the docs and checked against the route table by tests.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::new(ErrorCode::NotReady, e.to_string()))?;
    Ok(Json(json!({"status": "ready"})))
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
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
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
    if let Some(wal) = state.store.wal_bytes() {
        let name = "flywheel_store_wal_bytes";
        let _ = writeln!(
            out,
            "# HELP {name} Size of the SQLite write-ahead log file (bounded by --sqlite-wal-limit).\n# TYPE {name} gauge\n{name} {wal}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
