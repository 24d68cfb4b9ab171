//! Saved funnels under `/api/v1/analytics/funnels`: save, list, show and delete a named
//! funnel (steps, window, breakdown); `GET /api/v1/analytics/funnel?saved=NAME` runs one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use flywheel_analytics::reports::SavedFunnel;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::analytics::window_ms;
use crate::error::ApiError;
use crate::extract::{Admin, AdminBody};
use crate::AppState;

/// A funnel to save, as posted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveFunnelBody {
    /// Its name.
    name: String,
    /// The event names of the steps, in order.
    steps: Vec<String>,
    /// The conversion window in hours (default 24).
    window_hours: Option<f64>,
    /// Break down by this profile trait or step-1 event property.
    breakdown_by: Option<String>,
}

/// `POST /api/v1/analytics/funnels`: saves a funnel under a name (201); refused with
/// `unknown_funnel_step` for a step never received, `name_taken` for a name in use.
pub async fn create(
    State(s): State<Arc<AppState>>,
    body: AdminBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: SaveFunnelBody = body.json()?;
    let funnel = SavedFunnel {
        name: b.name,
        steps: b.steps.into_iter().map(|s| s.trim().to_string()).collect(),
        window_ms: window_ms(b.window_hours)?,
        breakdown: b.breakdown_by.filter(|k| !k.trim().is_empty()),
        created_at: 0,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let saved = s.reports.save_funnel(funnel, now).await?;
    Ok((StatusCode::CREATED, Json(json!({ "funnel": saved }))))
}

/// `GET /api/v1/analytics/funnels`: every saved funnel, by name.
pub async fn list(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "funnels": s.reports.saved_funnels().await? })))
}

/// `GET /api/v1/analytics/funnels/{name}`: one saved funnel.
pub async fn get_one(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "funnel": s.reports.saved_funnel(&name).await? })))
}

/// `DELETE /api/v1/analytics/funnels/{name}`: deletes a saved funnel (204).
pub async fn delete(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.reports.delete_saved_funnel(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
