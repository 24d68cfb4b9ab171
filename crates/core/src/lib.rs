//! Shared vocabulary of Flywheel.
//!
//! Owns the small value types every other crate speaks: money in integer fen
//! ([`Fen`]), timestamps and the shop timezone ([`time`]), user identities
//! ([`Identity`]), validated tracking events ([`Event`]), e-commerce records
//! ([`commerce`]) and profiles ([`Profile`]). It holds no I/O and no business
//! process: it is driven by whoever builds these values at the edge, and the
//! fallible constructors here are where input is parsed once ("parse, don't
//! validate").

pub mod bus;
pub mod commerce;
pub mod error_code;
pub mod event;
pub mod faults;
pub mod health;
pub mod identity;
pub mod money;
pub mod profile;
pub mod time;

pub use commerce::{Order, OrderAdjustment, OrderAdjustmentKind, OrderLine, OrderStatus, Product};
pub use error_code::ErrorCode;
pub use event::{Event, EventKind};
pub use identity::{Identity, ProfileId};
pub use money::Fen;
pub use profile::{Profile, ProfileSummary};
pub use time::{Clock, FixedClock, SystemClock, Timestamp};

/// Errors raised when building a core value from untrusted input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A money amount could not be read as a decimal number of yuan.
    #[error("invalid money amount {0:?}: expected a decimal number such as 27.50")]
    InvalidMoney(String),
    /// A money amount is outside the range Flywheel stores.
    #[error("money amount {0:?} is out of range")]
    MoneyOutOfRange(String),
    /// A timestamp could not be read as ISO-8601 / RFC 3339.
    #[error("invalid timestamp {0:?}: expected ISO-8601 such as 2024-11-11T12:00:00+08:00")]
    InvalidTimestamp(String),
    /// An identity string was empty or too long.
    #[error("invalid {kind}: {reason}")]
    InvalidIdentity {
        /// Which id field was wrong (`userId`, `anonymousId`, ...).
        kind: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An unknown timezone name.
    #[error("unknown timezone {0:?}: use an IANA name such as Asia/Shanghai")]
    UnknownTimezone(String),
}

impl Error {
    /// The stable refusal code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidMoney(_) => ErrorCode::InvalidMoney,
            Error::MoneyOutOfRange(_) => ErrorCode::AmountTooLarge,
            Error::InvalidTimestamp(_) => ErrorCode::InvalidTimestamp,
            Error::InvalidIdentity { .. } => ErrorCode::InvalidId,
            Error::UnknownTimezone(_) => ErrorCode::InvalidTimezone,
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
