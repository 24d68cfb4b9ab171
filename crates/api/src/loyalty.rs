//! `/api/v1/users/{user_id}/points…` and `/api/v1/users/{user_id}/tier`: the points ledger
//! and member tiers. Earning on paid orders and claw-back on refunds happen by
//! themselves (the server hooks them to ingest); these routes cover the rest. The
//! points-for-coupon exchange is [`flywheel_loyalty::PointsExchange`]'s, keyed by the
//! client's `Idempotency-Key`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flywheel_core::ErrorCode;
use flywheel_loyalty::{Balance, ExchangeKey, ExchangeRequest, Posted, TierStatus};
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

/// `GET /api/v1/users/{user_id}/tier`: the member tier by rolling 365-day net spend and
/// growth, with both.
pub async fn tier(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(user): Path<String>,
) -> Result<Json<TierStatus>, ApiError> {
    Ok(Json(s.loyalty.tier_of(&user, chrono::Utc::now()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Redeem {
    template_id: String,
    points: i64,
}

/// The request header naming one exchange; a retry sends the same value.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer that replays the first answer to a retried key.
const REPLAYED: &str = "idempotency-replayed";

/// `POST /api/v1/users/{user_id}/points/redeem` with header `Idempotency-Key` and
/// `{"template_id", "points"}`: exchanges points for a coupon (積分兌換) once per key —
/// spend and coupon together or neither; a retry answers the first answer
/// ([`flywheel_loyalty::PointsExchange`]).
pub async fn redeem(
    State(s): State<Arc<AppState>>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: AdminBody,
) -> Result<Response, ApiError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::IdempotencyKeyMissing,
                "an exchange needs an Idempotency-Key header (the same value on every retry)",
            )
        })?
        .to_str()
        .map_err(|_| {
            flywheel_loyalty::Error::invalid(
                ErrorCode::InvalidIdempotencyKey,
                "the Idempotency-Key is not ASCII",
            )
        })
        .and_then(ExchangeKey::parse)?;
    let r: Redeem = body.json()?;
    let done = s
        .exchange
        .exchange(
            &key,
            ExchangeRequest {
                user_id: user,
                template_id: r.template_id,
                points: r.points,
            },
        )
        .await?;
    let mut response = Json(done.response).into_response();
    if done.replayed {
        response
            .headers_mut()
            .insert(REPLAYED, axum::http::HeaderValue::from_static("true"));
    }
    Ok(response)
}
