//! Promotions: what a cart costs after coupons and promotions (REQUIREMENTS §6).
//!
//! Owns coupon and promotion definitions as data, and the pure pricing engine
//! ([`engine::price`]) that applies them to a cart in a fixed, documented order of
//! stages, apportions every order-level discount to the lines (分攤), explains why each
//! candidate did or did not apply, finds the best combination of a user's coupons
//! ([`best::best_combination`]) and checks a margin floor. Everything is integer fen.
//! It reads no store and keeps no state: callers pass the cart, the buyer, the active
//! promotions and the coupons to consider (see `docs/pricing.md`).

use flywheel_core::ErrorCode;

pub mod apportion;
pub mod best;
pub mod cart;
pub mod coupons;
pub mod engine;
pub mod flash;
pub mod group;
pub mod quote;
pub mod referral;
pub mod rules;

pub use cart::{Buyer, Cart, CartLine};
pub use engine::{price, quote, PricingInput};
pub use quote::Quote;
pub use rules::{Coupon, Promotion, StackingPolicy};

/// Errors of the pricing engine: input it refuses, with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not a valid cart, rule or coupon.
    #[error("{message}")]
    Invalid {
        /// Stable machine-readable code (`negative_amount`, `empty_cart`, …).
        code: ErrorCode,
        /// Human explanation.
        message: String,
    },
    /// A template, coupon or code does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The change does not fit the coupon's state or limits (`sold_out`, `already_redeemed`, …).
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

    /// The stable code.
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
