//! `POST /api/v1/cart/price`: prices a cart with the promotions and coupons in the
//! request (`docs/pricing.md`), plus — with `"wallet": true` — every usable coupon the
//! buyer holds. Nothing is stored, reserved or spent.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use flywheel_promotions::coupons::PriceRequest;
use flywheel_promotions::Quote;

use crate::error::ApiError;
use crate::extract::AdminBody;
use crate::AppState;

/// `POST /api/v1/cart/price`: the request as [`PriceRequest`] reads it, priced by
/// [`flywheel_promotions::coupons::CouponService::quote_request`] (the wallet rule).
pub async fn price(State(s): State<Arc<AppState>>, body: AdminBody) -> Result<Json<Quote>, ApiError> {
    let req = PriceRequest::parse(body.json()?)?;
    Ok(Json(s.coupons.quote_request(req).await?))
}
