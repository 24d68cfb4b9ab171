//! Journeys (REQUIREMENTS §5): marketing automation — trigger, wait, branch, send.
//!
//! This first part holds the **delivery rules** every marketing send passes through
//! ([`delivery`]): quiet hours (default 22:00–08:00 shop time; messages wait for the
//! next allowed time) and per-user frequency caps per channel and overall, per day and
//! per week, each cap deferring or skipping. Transactional messages bypass both
//! (REQUIREMENTS open question 14: the seeds only warn about fatigue, R5.10, so every
//! number here is a configurable default).

pub mod delivery;
pub mod send_time;
pub mod split;

pub use delivery::{
    CapAction, CapPeriod, CapRule, CapScope, Decision, DeliveryPolicy, Error, QuietHours, SentRecord,
};
pub use flywheel_channels::{Category, Channel};
pub use send_time::{most_active_hour, next_at_hour};
pub use split::{BadWeights, Split};
