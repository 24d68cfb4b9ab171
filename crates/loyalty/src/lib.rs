//! Loyalty (REQUIREMENTS §7): what a shop gives back to its members.
//!
//! This crate owns three things, all persisted through [`flywheel_store::loyalty`]:
//!
//! - **The points ledger** (R7.3, fixture F16): an append-only list of entries, each a
//!   credit (`earn`: purchase, check-in, review, share) or a debit (`spend`, `expire`,
//!   `clawback`) with a unique source key, so every operation is idempotent. The balance
//!   is derived from the entries, never stored. Earned points sit in lots that expire
//!   first-in-first-out ([`Loyalty`]).
//! - **Member tiers** (R7.1, R7.2, fixture F15): 青銅 < 白銀 < 黃金 < 鉑金 by rolling
//!   365-day net spend and growth (成長值) from customer activity ([`GrowthConfig`]),
//!   with benefits that must grow with the tier ([`TierConfig`]).
//! - **Points-for-coupon exchanges** (積分兌換): one idempotent operation per client key,
//!   spend and coupon in one transaction ([`PointsExchange`], coupons through the
//!   [`CouponIssuer`] port).
//! - **Birthday perks** (R7.6, fixture F17): the tier's perk, once per user per year
//!   ([`Loyalty::birthday_perks`], [`is_birthday_on`]).
//!
//! Every write is one store write transaction; the store serialises writers, so
//! concurrent spends never overdraw a balance. Time comes from an injectable
//! [`flywheel_core::Clock`]; calendar days are days in the shop timezone.

mod birthday;
mod config;
mod entry;
mod exchange;
mod growth;
mod ledger;
mod lots;
mod tier_track;
mod tiers;
mod view;

pub use birthday::{is_birthday_on, BirthdayPerk};
pub use config::{LoyaltyConfig, PointsConfig};
pub use entry::{Balance, Entry, EntryKind, EntrySource, Lot, Posted};
pub use exchange::{
    CouponIssuer, ExchangeFault, ExchangeKey, ExchangeRequest, Exchanged, IssuedCoupon, IssuerFuture,
    PointsExchange,
};
pub use growth::{Activity, GrowthConfig};
pub use ledger::Loyalty;
pub use tier_track::TierChange;
pub use tiers::{Tier, TierCombine, TierConfig, TierStatus};

/// Errors of the loyalty programme, each with a stable machine-readable [`Error::code`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input or configuration is not valid (`invalid_points`, `tiers_not_monotonic`, …).
    #[error("{message}")]
    Invalid {
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human explanation.
        message: String,
    },
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The change does not fit the ledger (`insufficient_points`, `share_cap_reached`, …).
    #[error("{message}")]
    Conflict {
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human explanation.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(flywheel_store::Error),
}

impl From<flywheel_store::Error> for Error {
    fn from(e: flywheel_store::Error) -> Self {
        Error::Store(e)
    }
}

impl Error {
    /// An [`Error::Invalid`].
    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Error {
        Error::Invalid {
            code,
            message: message.into(),
        }
    }

    /// An [`Error::Conflict`].
    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Error {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    /// The stable code: the `code` of `Invalid`/`Conflict`, else `not_found` / `store_error`.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Invalid { code, .. } | Error::Conflict { code, .. } => *code,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Store(e) => e.code(),
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
use flywheel_core::ErrorCode;
