//! Coupons as things a user holds: templates, issuing (by API, by journeys, by
//! batch-generated codes), and the life of each coupon — issued → reserved (at checkout,
//! lapsing after a hold time) → redeemed → returned (refund) / expired — with an audit
//! trail of who did what. Every change is one store transaction with a conditional
//! update, so concurrent requests never double-spend, and a retried redemption for the
//! same order answers the same success. Who may hold a template's coupons and which held
//! coupons price a cart are in [`gate`].

pub mod gate;
mod service;
mod template;

pub use gate::{AudienceGate, GateFuture, PriceRequest};
pub use service::{issue_in, AuditEntry, CouponInstance, CouponService, CouponState};
pub use template::{CouponTemplate, RefundPolicy, Validity};
