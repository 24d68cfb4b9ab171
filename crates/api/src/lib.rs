//! Flywheel's HTTP surface (axum).
//!
//! One route table ([`router`]): the Segment-compatible tracking API under `/v1`
//! (write-key auth), the admin read API under `/api/v1` (bearer admin token), and
//! operations endpoints (`/healthz`, `/readyz`, `/metrics`). Handlers are thin:
//! extract and authenticate, call one service function, map the error through
//! [`error::ApiError`], which owns every status and error code. No SQL and no
//! business rule lives here.

pub mod auth;
pub mod error;
mod ops;
mod profiles;
mod tracking;

use std::sync::Arc;

use axum::routing::{get, post, MethodRouter};
use axum::Router;
use flywheel_core::EventKind;
use flywheel_ingest::{Limits, Pipeline};
use flywheel_store::Store;

pub use ops::OPENAPI;

/// What every handler shares.
pub struct AppState {
    /// The system of record.
    pub store: Store,
    /// The ingest write queue.
    pub pipeline: Pipeline,
    /// Tracking API size limits.
    pub limits: Limits,
    /// Write-key checker.
    pub write_keys: auth::WriteKeys,
    /// Admin credential.
    pub admin: auth::AdminToken,
}

/// A route: method (as in the OpenAPI document), path, handler.
type Route = (&'static str, &'static str, MethodRouter<Arc<AppState>>);

/// The one route table: the router is built from it and the OpenAPI test reads it.
fn routes() -> Vec<Route> {
    vec![
        (
            "post",
            "/v1/track",
            post(|s, h, b| tracking::single(EventKind::Track, s, h, b)),
        ),
        (
            "post",
            "/v1/identify",
            post(|s, h, b| tracking::single(EventKind::Identify, s, h, b)),
        ),
        (
            "post",
            "/v1/page",
            post(|s, h, b| tracking::single(EventKind::Page, s, h, b)),
        ),
        (
            "post",
            "/v1/screen",
            post(|s, h, b| tracking::single(EventKind::Screen, s, h, b)),
        ),
        (
            "post",
            "/v1/group",
            post(|s, h, b| tracking::single(EventKind::Group, s, h, b)),
        ),
        (
            "post",
            "/v1/alias",
            post(|s, h, b| tracking::single(EventKind::Alias, s, h, b)),
        ),
        ("post", "/v1/batch", post(tracking::batch)),
        ("post", "/v1/import", post(tracking::batch)),
        ("get", "/api/v1/profiles", get(profiles::list)),
        ("get", "/api/v1/profiles/{id}", get(profiles::show)),
        ("get", "/api/v1/profiles/{id}/events", get(profiles::events)),
        ("get", "/api/v1/profiles/{id}/orders", get(profiles::orders)),
        ("get", "/api/v1/openapi.json", get(ops::openapi)),
        ("get", "/healthz", get(ops::healthz)),
        ("get", "/readyz", get(ops::readyz)),
        ("get", "/metrics", get(ops::metrics)),
    ]
}

/// Every route of the server. Request bodies are read by the handlers within the
/// tracking limits (so an oversize body gets our JSON 400, not a bare 413).
pub fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    router
        .layer(axum::extract::DefaultBodyLimit::disable())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> error::ApiError {
    error::ApiError::not_found("route")
}

/// The served routes as `(method, path)`.
pub fn route_list() -> Vec<(&'static str, &'static str)> {
    routes().into_iter().map(|(m, p, _)| (m, p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_documents_every_route_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (path, ops) in paths {
            for method in ops.as_object().unwrap().keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        documented.sort();
        let mut routes: Vec<(String, String)> = route_list()
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
