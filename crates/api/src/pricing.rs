//! `POST /api/v1/cart/price`: prices a cart with the promotions and coupons in the
//! request (`docs/pricing.md`). Nothing is stored, reserved or spent.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use flywheel_promotions::{PricingInput, Quote};

use crate::error::ApiError;
use crate::extract::AdminBody;
use crate::AppState;

/// `POST /api/v1/cart/price`.
pub async fn price(
    State(s): State<Arc<AppState>>,
    h: HeaderMap,
    AdminBody(b): AdminBody,
) -> Result<Json<Quote>, ApiError> {
    s.admin.check(&h)?;
    let input: PricingInput = serde_json::from_slice(&b)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))?;
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
