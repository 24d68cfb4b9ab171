//! `GET /api/v1/profiles…`: the admin read API over profiles, timelines and orders.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use flywheel_core::ErrorCode;
use flywheel_core::{Profile, ProfileId};
use flywheel_store::{EventPage, ProfilePage, StoredOrder};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Admin, Params};
use crate::AppState;

/// Largest page size.
const MAX_LIMIT: usize = 1000;
/// Default page size.
const DEFAULT_LIMIT: usize = 50;

/// Paging parameters.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    /// Continue after this cursor (from `next_cursor`).
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<usize>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::new(
                ErrorCode::InvalidLimit,
                format!("limit {n} must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }
}

/// Finds a profile by any id (see [`flywheel_store::Store::find_profile_id`]).
async fn find(state: &AppState, id: &str) -> Result<ProfileId, ApiError> {
    state
        .store
        .find_profile_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("profile {id:?}")))
}

/// `GET /api/v1/profiles/{id}`.
pub async fn show(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Profile>, ApiError> {
    let pid = find(&state, &id).await?;
    let profile = state.store.profile(pid).await?;
    profile
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("profile {id:?}")))
}

/// `GET /api/v1/profiles/{id}/events?cursor=&limit=`.
pub async fn events(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
    Params(q): Params<PageQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = q.limit()?;
    let pid = find(&state, &id).await?;
    Ok(Json(state.store.profile_events(pid, q.cursor, limit).await?))
}

/// `GET /api/v1/profiles/{id}/orders`.
pub async fn orders(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let pid = find(&state, &id).await?;
    let orders: Vec<StoredOrder> = state.store.orders_of(pid.clone()).await?;
    Ok(Json(json!({"profile_id": pid, "orders": orders})))
}

/// `GET /api/v1/profiles?cursor=&limit=`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<PageQuery>,
) -> Result<Json<ProfilePage>, ApiError> {
    let limit = q.limit()?;
    Ok(Json(state.store.list_profiles(q.cursor, limit).await?))
}
