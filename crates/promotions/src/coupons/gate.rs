//! Who may hold a coupon of a template, and which held coupons join a cart's pricing:
//! the rules the API and the CLI both apply, so they give the same answer.
//!
//! - **The audience gate**: a template with an `audience` segment expression is issued
//!   and claimed only by its members (`409 not_in_audience`). Membership is the audience
//!   engine's answer, asked through the [`AudienceGate`] port this crate owns; the binary
//!   wires the engine to it (promotions does not depend on `audience`).
//! - **The wallet rule**: a pricing request with `"wallet": true` adds every coupon the
//!   buyer holds in state `issued` (not reserved, spent, expired or taken back) to the
//!   coupons considered ([`PriceRequest`], [`CouponService::quote_request`]).

use std::future::Future;
use std::pin::Pin;

use flywheel_core::ErrorCode;

use super::service::{CouponService, CouponState};
use super::template::CouponTemplate;
use crate::engine::PricingInput;
use crate::quote::Quote;
use crate::{Error, Result};

/// A boxed future of the [`AudienceGate`] port.
pub type GateFuture<'a> = Pin<Box<dyn Future<Output = Result<bool>> + Send + 'a>>;

/// The port promotions asks whether a user belongs to a segment expression now.
pub trait AudienceGate: Send + Sync {
    /// Whether `user_id` (a shop user id; unknown users are not members) matches the
    /// segment `expression` now. An expression the engine refuses is an
    /// [`Error::Invalid`]; a store failure an [`Error::Store`].
    fn is_member<'a>(&'a self, expression: &'a str, user_id: &'a str) -> GateFuture<'a>;
}

/// A cart-pricing request as the API and `flywheel price` read it: the engine's input
/// plus `"wallet": true|false` (default false).
#[derive(Debug, Clone)]
pub struct PriceRequest {
    /// What the pricing engine prices.
    pub input: PricingInput,
    /// Add every usable coupon the buyer holds.
    pub wallet: bool,
}

impl PriceRequest {
    /// Parses a request body: `invalid_json` names what is wrong (a non-boolean
    /// `wallet`, `wallet` without `buyer.user_id`, an unknown field, …).
    pub fn parse(mut v: serde_json::Value) -> Result<PriceRequest> {
        let wallet = match v.as_object_mut().and_then(|o| o.remove("wallet")) {
            None => false,
            Some(serde_json::Value::Bool(w)) => w,
            Some(_) => return Err(Error::invalid(ErrorCode::InvalidJson, "wallet is true or false")),
        };
        let input: PricingInput = serde_json::from_value(v)
            .map_err(|e| Error::invalid(ErrorCode::InvalidJson, format!("request body: {e}")))?;
        if wallet && input.buyer.user_id.is_none() {
            return Err(Error::invalid(
                ErrorCode::InvalidJson,
                "wallet needs buyer.user_id",
            ));
        }
        Ok(PriceRequest { input, wallet })
    }
}

impl CouponService {
    /// Refuses (`not_in_audience`) a user outside `t`'s audience; a template without an
    /// audience admits everyone.
    pub async fn check_audience(
        &self,
        gate: &dyn AudienceGate,
        t: &CouponTemplate,
        user: &str,
    ) -> Result<()> {
        let Some(expr) = &t.audience else { return Ok(()) };
        if gate.is_member(expr, user).await? {
            return Ok(());
        }
        Err(Error::Conflict {
            code: ErrorCode::NotInAudience,
            message: format!("{user} is not in the audience of {:?}: {expr}", t.id),
        })
    }

    /// Issues one coupon of `template_id` to `owner` when `owner` is in the template's
    /// audience (the admin API's and the CLI's issue).
    pub async fn issue_to_member(
        &self,
        gate: &dyn AudienceGate,
        template_id: &str,
        owner: &str,
        actor: &str,
    ) -> Result<super::CouponInstance> {
        self.check_audience(gate, &self.template(template_id).await?, owner)
            .await?;
        self.issue(template_id, owner, actor).await
    }

    /// Claims `code` for `owner` when `owner` is in its template's audience.
    pub async fn claim_as_member(
        &self,
        gate: &dyn AudienceGate,
        code: &str,
        owner: &str,
    ) -> Result<super::CouponInstance> {
        self.check_audience(gate, &self.template_of_code(code).await?, owner)
            .await?;
        self.claim(code, owner).await
    }

    /// Prices `req`: with `wallet`, the buyer's usable coupons join those in the request.
    pub async fn quote_request(&self, req: PriceRequest) -> Result<Quote> {
        let PriceRequest { mut input, wallet } = req;
        if wallet {
            let user = input
                .buyer
                .user_id
                .clone()
                .ok_or_else(|| Error::invalid(ErrorCode::InvalidJson, "wallet needs buyer.user_id"))?;
            input.coupons.extend(
                self.coupons_of(&user)
                    .await?
                    .into_iter()
                    .filter(|c| c.state == CouponState::Issued)
                    .map(|c| c.coupon),
            );
        }
        crate::quote(&input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cart() -> serde_json::Value {
        json!({"cart": {"lines": [{"shop": "X", "product": "A", "unit_price": 100, "quantity": 1}]},
               "buyer": {"user_id": "u1"}})
    }

    #[test]
    fn a_price_request_reads_wallet_and_refuses_what_the_api_refuses() {
        assert!(!PriceRequest::parse(cart()).unwrap().wallet);
        let mut v = cart();
        v["wallet"] = json!(true);
        assert!(PriceRequest::parse(v.clone()).unwrap().wallet);
        v["buyer"] = json!({});
        let e = PriceRequest::parse(v.clone()).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            (ErrorCode::InvalidJson, "wallet needs buyer.user_id")
        );
        v["wallet"] = json!("yes");
        assert_eq!(PriceRequest::parse(v).unwrap_err().code(), "invalid_json");
        let mut v = cart();
        v["walet"] = json!(true);
        assert_eq!(PriceRequest::parse(v).unwrap_err().code(), "invalid_json");
    }
}
