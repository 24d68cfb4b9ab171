//! `/api/v1/users/{user_id}/points…` and `/api/v1/users/{user_id}/tier`: the points ledger
//! and member tiers. Earning on paid orders and claw-back on refunds happen by
//! themselves (the server hooks them to ingest); these routes cover the rest.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use flywheel_loyalty::{Balance, Posted, TierStatus};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Admin, AdminBody, Params};
use crate::profiles::PageQuery;
use crate::AppState;

/// `GET /api/v1/users/{user_id}/points?cursor=&limit=`: balance, lots, entries newest first.
pub async fn balance(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(user): Path<String>,
    Params(q): Params<PageQuery>,
) -> Result<Json<Balance>, ApiError> {
    let limit = q.limit()?;
    Ok(Json(s.loyalty.balance(&user, q.cursor.as_deref(), limit).await?))
}

/// `POST /api/v1/users/{user_id}/points/check-in`: 簽到, once per shop-local day.
pub async fn check_in(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(user): Path<String>,
) -> Result<Json<Posted>, ApiError> {
    Ok(Json(s.loyalty.check_in(&user).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Review {
    review_id: String,
}

/// `POST /api/v1/users/{user_id}/points/review`: `{"review_id"}`.
pub async fn review(
    State(s): State<Arc<AppState>>,
    Path(user): Path<String>,
    body: AdminBody,
) -> Result<Json<Posted>, ApiError> {
    let r: Review = body.json()?;
    Ok(Json(s.loyalty.review(&user, &r.review_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Share {
    share_id: String,
}

/// `POST /api/v1/users/{user_id}/points/share`: `{"share_id"}`.
pub async fn share(
    State(s): State<Arc<AppState>>,
    Path(user): Path<String>,
    body: AdminBody,
) -> Result<Json<Posted>, ApiError> {
    let r: Share = body.json()?;
    Ok(Json(s.loyalty.share(&user, &r.share_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spend {
    points: i64,
    reason_key: String,
}

/// `POST /api/v1/users/{user_id}/points/spend`: `{"points", "reason_key"}` — idempotent per reason key.
pub async fn spend(
    State(s): State<Arc<AppState>>,
    Path(user): Path<String>,
    body: AdminBody,
) -> Result<(StatusCode, Json<Posted>), ApiError> {
    let r: Spend = body.json()?;
    Ok((
        StatusCode::OK,
        Json(s.loyalty.spend(&user, r.points, &r.reason_key).await?),
    ))
}

/// `GET /api/v1/users/{user_id}/tier`: the member tier by rolling 365-day net spend.
pub async fn tier(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(user): Path<String>,
) -> Result<Json<TierStatus>, ApiError> {
    Ok(Json(s.loyalty.tier_of(&user, chrono::Utc::now()).await?))
}

impl From<flywheel_loyalty::Error> for ApiError {
    fn from(e: flywheel_loyalty::Error) -> Self {
        use flywheel_loyalty::Error as E;
        match e {
            E::Invalid { code, message } => ApiError::bad_request(code, message),
            E::NotFound(what) => ApiError::not_found(what),
            E::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            E::Store(s) => ApiError::from(s),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Redeem {
    template_id: String,
    points: i64,
}

/// `POST /api/v1/users/{user_id}/points/redeem`: `{"template_id", "points"}` — exchanges
/// points for a coupon (積分兌換). The coupon is issued, then the points are spent; if the
/// spend is refused the coupon is voided, so neither is lost.
pub async fn redeem(
    State(s): State<Arc<AppState>>,
    Path(user): Path<String>,
    body: AdminBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    let r: Redeem = body.json()?;
    if r.points < 1 {
        return Err(ApiError::bad_request(
            "invalid_points",
            "points must be at least 1",
        ));
    }
    if s.loyalty.balance(&user, None, 1).await?.balance < r.points {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "insufficient_points",
            "not enough points",
        ));
    }
    let coupon = s.coupons.issue(&r.template_id, &user, "points").await?;
    match s
        .loyalty
        .spend(&user, r.points, &format!("coupon:{}", coupon.id))
        .await
    {
        Ok(posted) => Ok(Json(serde_json::json!({"coupon": coupon, "points": posted}))),
        Err(e) => {
            if let Err(v) = s.coupons.void(&coupon.id, "points").await {
                tracing::error!(coupon = %coupon.id, error = %v, "a coupon bought with points could not be voided after the spend failed");
            }
            Err(e.into())
        }
    }
}
