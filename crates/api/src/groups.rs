//! `/api/v1/group-deals…` and `/api/v1/groups…`: group buys (拼團).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flywheel_promotions::group::{Group, GroupDeal};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Admin, AdminBody};
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Member {
    user_id: String,
}

/// `GET /api/v1/group-deals`.
pub async fn deals(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"deals": s.groups.deals().await?})))
}

/// `POST /api/v1/group-deals`.
pub async fn create_deal(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Response, ApiError> {
    let d: GroupDeal = body.json()?;
    Ok((StatusCode::CREATED, Json(s.groups.create_deal(d).await?)).into_response())
}

/// `POST /api/v1/group-deals/{id}/groups`: `{"user_id"}` opens a group led by that user.
pub async fn open(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: AdminBody,
) -> Result<Response, ApiError> {
    let m: Member = body.json()?;
    Ok((StatusCode::CREATED, Json(s.groups.open(&id, &m.user_id).await?)).into_response())
}

/// `GET /api/v1/groups/{id}`.
pub async fn show(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Group>, ApiError> {
    Ok(Json(s.groups.group(&id).await?))
}

/// `POST /api/v1/groups/{id}/join`: `{"user_id"}`.
pub async fn join(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: AdminBody,
) -> Result<Json<Group>, ApiError> {
    let m: Member = body.json()?;
    Ok(Json(s.groups.join(&id, &m.user_id).await?))
}
