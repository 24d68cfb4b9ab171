//! `/api/v1/referral-program`, `/api/v1/referrals…`, `/api/v1/users/{id}/invite-code` and
//! `/api/v1/users/{id}/referrals`: the referral program (裂變).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flywheel_promotions::referral::{Referral, ReferralProgram};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Admin, AdminBody};
use crate::AppState;

/// `GET /api/v1/referral-program`.
pub async fn program(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<ReferralProgram>, ApiError> {
    Ok(Json(s.referrals.program().await?))
}

/// `PUT /api/v1/referral-program`.
pub async fn set_program(
    State(s): State<Arc<AppState>>,
    body: AdminBody,
) -> Result<Json<ReferralProgram>, ApiError> {
    Ok(Json(s.referrals.set_program(body.json()?).await?))
}

/// `GET /api/v1/users/{user_id}/invite-code`: made on first use.
pub async fn invite_code(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"user_id": user, "code": s.referrals.invite_code(&user).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    code: String,
    invitee: String,
    #[serde(default)]
    device_id: Option<String>,
    #[serde(default)]
    ip: Option<String>,
}

/// `POST /api/v1/referrals`: `{"code", "invitee", "device_id", "ip"}`.
pub async fn register(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Response, ApiError> {
    let r: Register = body.json()?;
    let referral = s
        .referrals
        .register(&r.code, &r.invitee, r.device_id.as_deref(), r.ip.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(referral)).into_response())
}

/// `GET /api/v1/referrals/{invitee}`.
pub async fn show(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(invitee): Path<String>,
) -> Result<Json<Referral>, ApiError> {
    Ok(Json(s.referrals.get(&invitee).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderRef {
    order_id: String,
}

/// `POST /api/v1/referrals/{invitee}/first-order`: `{"order_id"}` — rewards both sides once.
pub async fn first_order(
    State(s): State<Arc<AppState>>,
    Path(invitee): Path<String>,
    body: AdminBody,
) -> Result<Json<Referral>, ApiError> {
    let o: OrderRef = body.json()?;
    Ok(Json(s.referrals.first_paid_order(&invitee, &o.order_id).await?))
}

/// `POST /api/v1/referrals/{invitee}/claw-back`: `{"order_id"}` — the first order was refunded.
pub async fn claw_back(
    State(s): State<Arc<AppState>>,
    Path(invitee): Path<String>,
    body: AdminBody,
) -> Result<Json<Referral>, ApiError> {
    let o: OrderRef = body.json()?;
    Ok(Json(s.referrals.claw_back(&invitee, &o.order_id).await?))
}

/// `GET /api/v1/users/{user_id}/referrals`: who a user invited.
pub async fn of_inviter(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"inviter": user, "referrals": s.referrals.of_inviter(&user).await?}),
    ))
}
