//! Adapters that connect one context's ports to another's services (wiring, no rules),
//! each a small struct implementing a port its consumer owns:
//!
//! - [`AudienceMembership`]: promotions' [`AudienceGate`] (a coupon template's audience)
//!   answered by the audience engine (the CLI builds the engine lazily around it).
//! - [`CouponsForPoints`]: loyalty's [`CouponIssuer`] (the points-for-coupon exchange)
//!   answered by the coupon service, issuing inside the exchange's transaction, behind
//!   the same audience gate as the admin API and the CLI.

use std::sync::Arc;

use flywheel_audience::{Audience, SegmentInput};
use flywheel_core::ErrorCode;
use flywheel_loyalty::{CouponIssuer, IssuedCoupon, IssuerFuture};
use flywheel_promotions::coupons::{AudienceGate, CouponService, GateFuture};
use flywheel_store::conn::Conn;
use flywheel_store::Store;

/// The audience engine as promotions' audience gate.
#[derive(Clone)]
pub struct AudienceMembership {
    /// Resolves a shop user id to its profile.
    pub store: Store,
    /// The segment engine.
    pub audience: Audience,
}

fn promotions_error(e: flywheel_audience::Error) -> flywheel_promotions::Error {
    match e {
        flywheel_audience::Error::Store(s) => flywheel_promotions::Error::Store(s),
        other => flywheel_promotions::Error::invalid(ErrorCode::InvalidAudience, other.to_string()),
    }
}

impl AudienceGate for AudienceMembership {
    fn is_member<'a>(&'a self, expression: &'a str, user_id: &'a str) -> GateFuture<'a> {
        Box::pin(async move {
            let Some(pid) = self.store.find_profile_id(user_id).await? else {
                return Ok(false);
            };
            let input = SegmentInput::text(expression);
            self.audience.prepare(&input).await.map_err(promotions_error)?;
            self.audience.is_member(&input, &pid.0).map_err(promotions_error)
        })
    }
}

/// The coupon service as loyalty's coupon issuer for points exchanges.
#[derive(Clone)]
pub struct CouponsForPoints {
    /// Coupon templates and coupons.
    pub coupons: CouponService,
    /// The template audience gate.
    pub gate: Arc<dyn AudienceGate>,
}

fn loyalty_error(e: flywheel_promotions::Error) -> flywheel_loyalty::Error {
    use flywheel_promotions::Error as E;
    match e {
        E::Invalid { code, message } => flywheel_loyalty::Error::Invalid { code, message },
        E::NotFound(what) => flywheel_loyalty::Error::NotFound(what),
        E::Conflict { code, message } => flywheel_loyalty::Error::Conflict { code, message },
        E::Store(s) => flywheel_loyalty::Error::Store(s),
    }
}

impl CouponIssuer for CouponsForPoints {
    fn admit<'a>(&'a self, template_id: &'a str, user_id: &'a str) -> IssuerFuture<'a> {
        Box::pin(async move {
            let t = self.coupons.template(template_id).await.map_err(loyalty_error)?;
            self.coupons
                .check_audience(self.gate.as_ref(), &t, user_id)
                .await
                .map_err(loyalty_error)
        })
    }

    fn issue_in(
        &self,
        c: &mut dyn Conn,
        template_id: &str,
        user_id: &str,
        actor: &str,
        now: i64,
    ) -> flywheel_loyalty::Result<IssuedCoupon> {
        let coupon = flywheel_promotions::coupons::issue_in(c, template_id, user_id, actor, now)
            .map_err(loyalty_error)?;
        let json = serde_json::to_value(&coupon).map_err(|e| {
            flywheel_loyalty::Error::Store(flywheel_store::Error::Corrupt(format!(
                "coupon {}: {e}",
                coupon.id
            )))
        })?;
        Ok(IssuedCoupon { id: coupon.id, json })
    }
}

/// The fault named by `FLYWHEEL_FAULTS` (tests only: `exchange_after_spend`,
/// `exchange_after_issue`), logged loudly when set.
pub fn exchange_fault() -> Option<flywheel_loyalty::ExchangeFault> {
    let names = std::env::var("FLYWHEEL_FAULTS").ok()?;
    let fault = names.split(',').find_map(flywheel_loyalty::ExchangeFault::named);
    if let Some(f) = fault {
        tracing::warn!(fault = ?f, "FLYWHEEL_FAULTS is set: the process will abort at this point (tests only)");
    }
    fault
}

/// The audience's reading of stored events ([`flywheel_audience::EventDecoder`]) through
/// the ingest crate's reading of the e-commerce spec, so an order read back from the
/// shared log is the order ingest stored (the event was validated when it was accepted;
/// should it no longer read, it is folded as a plain event and a warning logged).
pub struct IngestDecoder;

impl flywheel_audience::EventDecoder for IngestDecoder {
    fn decode(&self, event: flywheel_core::Event, source: Option<String>) -> flywheel_store::NewEvent {
        let plain = event.clone();
        match flywheel_ingest::ecommerce::materialise(event, source.clone(), 0) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(message_id = %plain.message_id, error = %e, "a stored event no longer reads as it did; folded without its order");
                flywheel_store::NewEvent::new(plain, source)
            }
        }
    }
}
