//! `POST /api/v1/cart/price`: prices a cart with the promotions and coupons in the
//! request (`docs/pricing.md`), plus — with `"wallet": true` — every usable coupon the
//! buyer holds. Nothing is stored, reserved or spent.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use flywheel_promotions::{PricingInput, Quote};

use crate::error::ApiError;
use crate::extract::AdminBody;
use crate::AppState;

/// `POST /api/v1/cart/price`.
pub async fn price(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Json<Quote>, ApiError> {
    let bad = |e: serde_json::Error| ApiError::bad_request("invalid_json", format!("request body: {e}"));
    let mut v: serde_json::Value = body.json()?;
    let wallet = match v.as_object_mut().and_then(|o| o.remove("wallet")) {
        None => false,
        Some(serde_json::Value::Bool(w)) => w,
        Some(_) => return Err(ApiError::bad_request("invalid_json", "wallet is true or false")),
    };
    let mut input: PricingInput = serde_json::from_value(v).map_err(bad)?;
    if wallet {
        let user = input
            .buyer
            .user_id
            .clone()
            .ok_or_else(|| ApiError::bad_request("invalid_json", "wallet needs buyer.user_id"))?;
        let held = s.coupons.coupons_of(&user).await?;
        input.coupons.extend(
            held.into_iter()
                .filter(|c| c.state == flywheel_promotions::coupons::CouponState::Issued)
                .map(|c| c.coupon),
        );
    }
    Ok(Json(flywheel_promotions::quote(&input)?))
}

impl From<flywheel_promotions::Error> for ApiError {
    fn from(e: flywheel_promotions::Error) -> Self {
        use flywheel_promotions::Error as E;
        match e {
            E::Invalid { code, message } => ApiError::bad_request(code, message),
            E::NotFound(what) => ApiError::not_found(what),
            E::Conflict { code, message } => ApiError::new(axum::http::StatusCode::CONFLICT, code, message),
            E::Store(s) => ApiError::from(s),
        }
    }
}
