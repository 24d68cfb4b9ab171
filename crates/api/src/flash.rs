//! `/api/v1/flash-sales…` and `/api/v1/flash-orders/{id}/pay`: flash sales (秒殺).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flywheel_promotions::flash::{FlashOrder, FlashSale};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Admin, AdminBody};
use crate::AppState;

/// `GET /api/v1/flash-sales`: every sale with its units left.
pub async fn list(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, ApiError> {
    let sales: Vec<Value> = s
        .flash
        .list()
        .await?
        .into_iter()
        .map(|(sale, left)| json!({"sale": sale, "remaining": left}))
        .collect();
    Ok(Json(json!({"sales": sales})))
}

/// `POST /api/v1/flash-sales`.
pub async fn create(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Response, ApiError> {
    let sale: FlashSale = body.json()?;
    Ok((StatusCode::CREATED, Json(s.flash.create(sale).await?)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuyBody {
    user_id: String,
    #[serde(default = "one")]
    quantity: i64,
}

fn one() -> i64 {
    1
}

/// `POST /api/v1/flash-sales/{id}/orders`: `{"user_id", "quantity"}` → a held order, or
/// 409 `sold_out` / `per_user_limit` / `not_started` / `ended`.
pub async fn buy(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: AdminBody,
) -> Result<Response, ApiError> {
    let req: BuyBody = body.json()?;
    let order: FlashOrder = s.flash.buy(&id, &req.user_id, req.quantity).await?;
    Ok((StatusCode::CREATED, Json(order)).into_response())
}

/// `POST /api/v1/flash-orders/{id}/pay`: pays a held order before its hold lapses.
pub async fn pay(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<FlashOrder>, ApiError> {
    Ok(Json(s.flash.pay(&id).await?))
}
