//! Journeys (REQUIREMENTS §5, issue 6): marketing automation — trigger, wait, branch,
//! send — durable across crashes, with each step's effect done once.
//!
//! - [`definition`]: journeys as JSON, versioned; triggers (event with filters, segment
//!   or tag change, schedule, date), steps (waits, waits for an event with a timeout,
//!   conditions, splits with a holdout, sends, coupons, points, tags, traits, webhooks,
//!   exit), keyed journeys, entry policy, concurrency limits, goals.
//! - [`engine`]: runs advanced by durable timers, effects recorded before and settled
//!   after ([`effects`]), triggers read from the event log behind a cursor ([`tail`]),
//!   schedules and dates ([`schedule`]).
//! - [`ports`]: what journeys needs from audience, promotions, loyalty and ingest, as
//!   traits the binary wires to them; [`dead_letter`]: effect steps set aside after
//!   repeated outages, resumed or dismissed from the dead-letter list.
//! - [`delivery`]: quiet hours (default 22:00–08:00 shop time) and per-user frequency
//!   caps, for marketing only, each send reserving its cap slots atomically ([`caps`],
//!   in-process or in Redis); [`send_time`]: the user's most active hour; [`split`]:
//!   deterministic branch choice.
//! - [`manage`]: the API/CLI operations — save, start/pause/stop, dry-run, per-step
//!   counts, the message log, consent, open/click tracking, unsubscribe,
//!   delivery-status callbacks; [`callback`]: the order a message's delivery status
//!   moves in, and the bounds of a provider's report.

pub mod callback;
pub mod caps;
mod cart;
pub mod cron;
pub mod db;
pub mod dead_letter;
pub mod definition;
pub mod delivery;
pub mod effects;
pub mod engine;
pub mod loops;
pub mod manage;
pub mod ports;
pub mod providers;
mod render;
pub mod schedule;
pub mod seeds;
pub mod send;
pub mod send_time;
pub mod split;
pub mod tail;
pub mod transitions;
pub mod walk;

pub use definition::{CouponScope, DefinitionError, Journey};
pub use delivery::{
    CapAction, CapPeriod, CapRule, CapScope, Decision, DeliveryPolicy, QuietHours, SentRecord,
};
pub use engine::{Engine, EngineConfig, Services};
pub use flywheel_channels::{Category, Channel};
pub use providers::{Providers, WebhookSettings};
pub use send_time::{most_active_hour, next_at_hour};
pub use split::{BadWeights, Split};

/// What journey operations fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] flywheel_store::Error),
    /// The input breaks a rule (the message says which).
    #[error("{0}")]
    Invalid(String),
    /// No such journey, message, link…
    #[error("{0} not found")]
    NotFound(String),
    /// The journey has runs in progress (it cannot be deleted).
    #[error("{0}")]
    Conflict(String),
    /// A signature did not verify.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A signed request already applied, sent again while its signature is fresh.
    #[error("{0}")]
    Replayed(String),
    /// A lock was poisoned by a panic.
    #[error("internal lock poisoned")]
    Poisoned,
    /// A refusal with its own code (an unknown channel or tag, a template over its
    /// render limits, an expression naming an unknown trait, ...).
    #[error("{message}")]
    Refused {
        /// The refusal's stable code.
        code: flywheel_core::ErrorCode,
        /// Human explanation.
        message: String,
    },
}

impl Error {
    /// An [`Error::Refused`] with `code`.
    pub fn refused(code: flywheel_core::ErrorCode, message: impl Into<String>) -> Error {
        Error::Refused {
            code,
            message: message.into(),
        }
    }

    /// The stable code: each refusal its own; a definition that does not parse or
    /// breaks a rule `invalid_journey`.
    pub fn code(&self) -> flywheel_core::ErrorCode {
        use flywheel_core::ErrorCode as C;
        match self {
            Error::Store(e) => e.code(),
            Error::Invalid(_) => C::InvalidJourney,
            Error::NotFound(_) => C::NotFound,
            Error::Conflict(_) => C::RunsInProgress,
            Error::Forbidden(_) => C::BadSignature,
            Error::Replayed(_) => C::CallbackReplayed,
            Error::Poisoned => C::Internal,
            Error::Refused { code, .. } => *code,
        }
    }
}

/// Result of journey operations.
pub type Result<T> = std::result::Result<T, Error>;
