//! Coupon templates (優惠券): what a coupon gives, where, for how long, how many.

use flywheel_core::ErrorCode;
use flywheel_core::{Fen, Timestamp};
use serde::{Deserialize, Serialize};

use crate::rules::{Coupon, CouponBenefit, Scope};
use crate::{Error, Result};

/// How long an issued coupon can be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Validity {
    /// A fixed window for every coupon.
    Window {
        /// From (inclusive).
        from: Timestamp,
        /// Until (exclusive).
        until: Timestamp,
    },
    /// `days` × 24 h from the moment it is issued (or claimed, for a code).
    DaysAfterIssue {
        /// Days.
        days: u32,
    },
}

/// What happens to a redeemed coupon when its order is refunded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RefundPolicy {
    /// It is returned to the user, usable again while still valid (default).
    #[default]
    Restore,
    /// It stays spent.
    Keep,
}

/// A coupon template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponTemplate {
    /// Unique id.
    pub id: String,
    /// Display name (新人10元無門檻券).
    pub name: String,
    /// Lines covered.
    #[serde(default)]
    pub scope: Scope,
    /// Products never covered.
    #[serde(default)]
    pub exclude_products: Vec<String>,
    /// What it gives.
    pub benefit: CouponBenefit,
    /// How long it can be used.
    pub validity: Validity,
    /// At most this many issued in all.
    #[serde(default)]
    pub total_quantity: Option<i64>,
    /// At most this many per user.
    #[serde(default)]
    pub per_user_limit: Option<i64>,
    /// Stacking group (see [`Coupon::stacking_group`]).
    #[serde(default)]
    pub stacking_group: Option<String>,
    /// Combines with no other coupon.
    #[serde(default)]
    pub exclusive: bool,
    /// What a refund does to it.
    #[serde(default)]
    pub refund_policy: RefundPolicy,
    /// Only users matching this segment expression may get it (`docs/segments.md`;
    /// checked by the server when issuing and claiming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

impl CouponTemplate {
    /// Checks the template (ids, amounts, limits, window).
    pub fn check(&self) -> Result<()> {
        let bad = |m: &str| {
            Err(Error::invalid(
                ErrorCode::InvalidTemplate,
                format!("template {:?}: {m}", self.id),
            ))
        };
        if self.id.trim().is_empty() || self.id.len() > 100 || self.name.trim().is_empty() {
            return bad("needs an id (at most 100 bytes) and a name");
        }
        if self.total_quantity.is_some_and(|n| n < 0) || self.per_user_limit.is_some_and(|n| n < 1) {
            return bad("total_quantity must be ≥ 0 and per_user_limit ≥ 1");
        }
        match &self.validity {
            Validity::Window { from, until } if until <= from => {
                return bad("the window ends before it starts")
            }
            Validity::DaysAfterIssue { days: 0 } => return bad("days must be at least 1"),
            _ => {}
        }
        let money = |f: &Option<Fen>| f.is_some_and(|f| f.0 < 0);
        let negative = match &self.benefit {
            CouponBenefit::Amount { off, min_spend } => off.0 < 0 || money(min_spend),
            CouponBenefit::Percent {
                percent,
                cap,
                min_spend,
            } => !(1..=100).contains(percent) || money(cap) || money(min_spend),
            CouponBenefit::FreeShipping { min_spend } => money(min_spend),
        };
        if negative {
            return bad("amounts must not be negative and a percent paid is 1 to 100");
        }
        Ok(())
    }

    /// The validity window of a coupon issued at `issued_at` (ms).
    pub fn window(&self, issued_at: i64) -> (i64, i64) {
        match &self.validity {
            Validity::Window { from, until } => (from.timestamp_millis(), until.timestamp_millis()),
            Validity::DaysAfterIssue { days } => (issued_at, issued_at + i64::from(*days) * 86_400_000),
        }
    }

    /// The pricing engine's view of a coupon `id` of this template usable in `window`
    /// (ms; `i64::MIN` / `i64::MAX` for an open end).
    pub fn coupon(&self, id: &str, owner: Option<&str>, window: (i64, i64)) -> Coupon {
        Coupon {
            id: id.to_owned(),
            name: self.name.clone(),
            owner: owner.map(str::to_owned),
            scope: self.scope.clone(),
            exclude_products: self.exclude_products.clone(),
            benefit: self.benefit.clone(),
            valid_from: (window.0 != i64::MIN).then(|| flywheel_core::time::from_millis(window.0)),
            valid_until: (window.1 != i64::MAX).then(|| flywheel_core::time::from_millis(window.1)),
            stacking_group: self.stacking_group.clone(),
            exclusive: self.exclusive,
        }
    }
}
