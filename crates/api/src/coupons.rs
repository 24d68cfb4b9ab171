//! `/api/v1/coupon-templates…`, `/api/v1/coupons…`, `/api/v1/users/{id}/coupons`: coupon
//! templates, issuing, codes, and each coupon's life at checkout. Thin handlers over
//! [`flywheel_promotions::coupons::CouponService`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flywheel_core::ErrorCode;
use flywheel_promotions::coupons::{AuditEntry, CouponInstance, CouponTemplate};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Admin, AdminBody};
use crate::AppState;

/// Who the admin API acts as in coupon audit trails.
const ADMIN_ACTOR: &str = "admin-api";
/// Default checkout hold of a reservation.
const DEFAULT_HOLD_MINUTES: i64 = 15;

/// `GET /api/v1/coupon-templates`.
pub async fn list_templates(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, ApiError> {
    let list: Vec<Value> = s
        .coupons
        .templates()
        .await?
        .into_iter()
        .map(|(t, issued)| json!({"template": t, "issued": issued}))
        .collect();
    Ok(Json(json!({"templates": list})))
}

/// `POST /api/v1/coupon-templates`.
pub async fn create_template(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Response, ApiError> {
    let t: CouponTemplate = body.json()?;
    if let Some(expr) = &t.audience {
        s.audience.compile(&flywheel_audience::SegmentInput::text(expr))?;
    }
    Ok((StatusCode::CREATED, Json(s.coupons.create_template(t).await?)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    user_id: String,
}

/// `POST /api/v1/coupon-templates/{id}/issue`: `{"user_id"}` → the coupon (409
/// `not_in_audience` outside the template's audience).
pub async fn issue(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: AdminBody,
) -> Result<Response, ApiError> {
    let req: IssueBody = body.json()?;
    let c = s
        .coupons
        .issue_to_member(s.audience_gate.as_ref(), &id, &req.user_id, ADMIN_ACTOR)
        .await?;
    Ok((StatusCode::CREATED, Json(c)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodesBody {
    count: i64,
}

/// `POST /api/v1/coupon-templates/{id}/codes`: `{"count"}` → unclaimed codes.
pub async fn codes(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: AdminBody,
) -> Result<Response, ApiError> {
    let req: CodesBody = body.json()?;
    let codes = s.coupons.generate_codes(&id, req.count, ADMIN_ACTOR).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"template_id": id, "codes": codes})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    code: String,
    user_id: String,
}

/// `POST /api/v1/coupons/claim`: `{"code", "user_id"}` (409 `not_in_audience` outside
/// the template's audience).
pub async fn claim(
    State(s): State<Arc<AppState>>,
    body: AdminBody,
) -> Result<Json<CouponInstance>, ApiError> {
    let req: ClaimBody = body.json()?;
    Ok(Json(
        s.coupons
            .claim_as_member(s.audience_gate.as_ref(), &req.code, &req.user_id)
            .await?,
    ))
}

/// `GET /api/v1/users/{user_id}/coupons`.
pub async fn of_user(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"user_id": user, "coupons": s.coupons.coupons_of(&user).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    #[serde(default)]
    user_id: Option<String>,
    order_id: String,
    #[serde(default)]
    hold_minutes: Option<i64>,
    /// The order's cart: the coupon must apply to it (scope, threshold, validity).
    #[serde(default)]
    cart: Option<flywheel_promotions::Cart>,
}

/// Refuses (409 with the pricing engine's reason code: `out_of_scope`, `below_threshold`,
/// `expired`, …) a coupon that does not apply to the order's cart; nothing is changed.
async fn check_applies(s: &AppState, coupon_id: &str, req: &CheckoutBody) -> Result<(), ApiError> {
    let Some(cart) = &req.cart else { return Ok(()) };
    let c = s.coupons.get(coupon_id).await?;
    let input = flywheel_promotions::PricingInput {
        cart: cart.clone(),
        buyer: flywheel_promotions::Buyer {
            user_id: req.user_id.clone(),
            ..Default::default()
        },
        promotions: Vec::new(),
        coupons: vec![c.coupon],
        policy: Default::default(),
        now: None,
        best_combination: false,
        points: None,
    };
    let quote = flywheel_promotions::price(&input)?;
    match quote.not_applied.into_iter().find(|n| n.id == coupon_id) {
        None => Ok(()),
        Some(n) => Err(ApiError::new(
            n.reason,
            format!("the coupon does not apply to this cart: {}", n.message),
        )),
    }
}

fn user_of(req: &CheckoutBody) -> Result<&str, ApiError> {
    req.user_id
        .as_deref()
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidJson, "user_id is required"))
}

/// `POST /api/v1/coupons/{id}/reserve`: `{"user_id", "order_id", "hold_minutes"}` (default 15),
/// with the order's `cart` to refuse a coupon that does not apply to it.
pub async fn reserve(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: AdminBody,
) -> Result<Json<CouponInstance>, ApiError> {
    let req: CheckoutBody = body.json()?;
    let hold = req.hold_minutes.unwrap_or(DEFAULT_HOLD_MINUTES);
    if !(1..=7 * 24 * 60).contains(&hold) {
        return Err(ApiError::new(
            ErrorCode::InvalidHold,
            "hold_minutes is 1 to 10080",
        ));
    }
    check_applies(&s, &id, &req).await?;
    Ok(Json(
        s.coupons
            .reserve(&id, user_of(&req)?, &req.order_id, hold * 60_000)
            .await?,
    ))
}

/// `POST /api/v1/coupons/{id}/redeem`: `{"user_id", "order_id", "cart"}`; retrying for the same
/// order answers the same.
pub async fn redeem(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: AdminBody,
) -> Result<Json<CouponInstance>, ApiError> {
    let req: CheckoutBody = body.json()?;
    check_applies(&s, &id, &req).await?;
    Ok(Json(s.coupons.redeem(&id, user_of(&req)?, &req.order_id).await?))
}

/// `POST /api/v1/coupons/{id}/release`: `{"order_id"}` — checkout abandoned.
pub async fn release(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: AdminBody,
) -> Result<Json<CouponInstance>, ApiError> {
    let req: CheckoutBody = body.json()?;
    Ok(Json(s.coupons.release(&id, &req.order_id).await?))
}

/// `POST /api/v1/coupons/{id}/refund`: `{"order_id"}` — the order was refunded.
pub async fn refund(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: AdminBody,
) -> Result<Json<CouponInstance>, ApiError> {
    let req: CheckoutBody = body.json()?;
    Ok(Json(s.coupons.refund(&id, &req.order_id).await?))
}

/// `GET /api/v1/coupons/{id}/audit`.
pub async fn audit(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let trail: Vec<AuditEntry> = s.coupons.audit(&id).await?;
    Ok(Json(json!({"coupon_id": id, "audit": trail})))
}
