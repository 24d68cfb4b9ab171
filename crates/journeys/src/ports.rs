//! What journeys need from the other bounded contexts, as small traits journeys owns
//! (ports): segment membership and manual tags ([`AudiencePort`]), coupon issue
//! ([`CouponIssuer`]), points, tiers and birthday perks ([`PointsPort`]), recording
//! events ([`EventRecorder`]) and raising an alert ([`AlertPort`]). The adapters over the
//! real services are wired by the binary; journeys never imports those crates.
//!
//! A port's failure says whether it is an outage ([`PortError::transient`]: the store was
//! unreachable or busy, a connection broke, a queue was full — worth trying again) or a
//! refusal (the template does not exist, it is sold out, the user is not eligible —
//! trying again gives the same answer). Effect steps retry the first and follow their
//! failure path on the second ([`crate::effects`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use flywheel_core::Timestamp;
use serde_json::Value;

/// Why a port call failed: an outage worth retrying, or a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    /// An outage (store unreachable or busy, connection lost, timeout, queue full): the
    /// same call may well succeed later.
    pub transient: bool,
    /// What failed.
    pub message: String,
}

impl PortError {
    /// An outage: the call may be tried again.
    pub fn transient(message: impl Into<String>) -> PortError {
        PortError {
            transient: true,
            message: message.into(),
        }
    }

    /// A refusal: trying again gives the same answer.
    pub fn refused(message: impl Into<String>) -> PortError {
        PortError {
            transient: false,
            message: message.into(),
        }
    }

    /// A store failure: transient when the store says it is an outage.
    pub fn store(e: &flywheel_store::Error) -> PortError {
        PortError {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

/// What a port call answers.
pub type PortResult<T> = Result<T, PortError>;

/// The future of an asynchronous port call.
pub type PortFuture<'a, T> = Pin<Box<dyn Future<Output = PortResult<T>> + Send + 'a>>;

/// What a manual-tag lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    /// A manual tag: steps may set and remove it.
    Manual,
    /// A rule tag: it follows its rule, steps may not set it.
    Rule,
    /// No such tag.
    Missing,
}

/// What templates see of a profile's audience: computed traits and tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileView {
    /// Computed traits by name.
    pub traits: BTreeMap<String, Value>,
    /// Tags carried.
    pub tags: Vec<String>,
}

/// What templates see of a user's points and tier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointsView {
    /// `points.balance`, `points.expiring`, `points.expiring_at`.
    pub points: Option<Value>,
    /// `tier.name`.
    pub tier: Option<String>,
}

/// Segment expressions and manual tags (the audience context).
pub trait AudiencePort: Send + Sync {
    /// Whether `expression` compiles (`Err` says why not, with the audience's refusal code).
    fn check_expression(&self, expression: &str) -> Result<(), (flywheel_core::ErrorCode, String)>;
    /// Whether `tag` is a manual tag, a rule tag, or missing.
    fn tag_kind(&self, tag: &str) -> TagKind;
    /// Whether profile `profile_id` matches `expression` now (false when it cannot tell).
    fn is_member(&self, expression: &str, profile_id: &str) -> bool;
    /// The user ids of every profile matching `expression` now.
    fn members(&self, expression: &str) -> PortResult<Vec<String>>;
    /// A profile's computed traits and tags, if known.
    fn profile(&self, profile_id: &str) -> Option<ProfileView>;
    /// Adds (or with `remove`, removes) manual tag `tag` on a profile; idempotent.
    fn assign_tag<'a>(&'a self, tag: &'a str, profile_id: &'a str, remove: bool) -> PortFuture<'a, ()>;
}

/// Coupon issue (the promotions context). Coupons are answered as the template
/// variables `coupon.*` (docs/channels.md).
pub trait CouponIssuer: Send + Sync {
    /// Issues one coupon of `template` to `user`, once per `key`: a repeat with the same
    /// key (a step tried again after an unknown outcome) answers the first coupon. With
    /// `products`, the coupon covers only those products (a cart coupon), whatever the
    /// template covers.
    fn issue<'a>(
        &'a self,
        template: &'a str,
        user: &'a str,
        key: &'a str,
        products: Option<&'a [String]>,
    ) -> PortFuture<'a, Value>;
    /// What a coupon of `template` issued at `now` would look like (a preview), if the
    /// template exists.
    fn preview<'a>(&'a self, template: &'a str, now: Timestamp) -> PortFuture<'a, Option<Value>>;
    /// Coupon `id`, if it exists.
    fn coupon<'a>(&'a self, id: &'a str) -> PortFuture<'a, Option<Value>>;
}

/// Points, tiers and birthday perks (the loyalty context).
pub trait PointsPort: Send + Sync {
    /// Awards `points` to `user` once per `key`; answers the balance after.
    fn award<'a>(&'a self, user: &'a str, key: &'a str, points: i64) -> PortFuture<'a, i64>;
    /// Grants `user` this year's birthday perk of their tier at `now` (once per year);
    /// answers `perk.*` (`tier`, `value_yuan`, `year`, `granted_now`).
    fn birthday_perk<'a>(&'a self, user: &'a str, now: Timestamp) -> PortFuture<'a, Value>;
    /// What templates see of `user`'s points and tier at `now` (best effort).
    fn view<'a>(
        &'a self,
        user: &'a str,
        now: Timestamp,
    ) -> Pin<Box<dyn Future<Output = PointsView> + Send + 'a>>;
}

/// Recording events the engine causes (traits a step sets, opens, clicks) through the
/// ingest pipeline, deduplicated by their message ids.
pub trait EventRecorder: Send + Sync {
    /// Records `events`; `wait` waits for room in a full queue instead of failing.
    fn record(&self, events: Vec<flywheel_store::NewEvent>, wait: bool) -> PortFuture<'_, ()>;
}

/// A journey step set aside in the dead-letter list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLettered {
    /// Its id in the dead-letter list.
    pub id: i64,
    /// The journey.
    pub journey: String,
    /// The run.
    pub run: String,
    /// The step.
    pub step: String,
    /// The run's user.
    pub user: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}

/// Raises an alert (stored with the others and sent to the operators).
pub trait AlertPort: Send + Sync {
    /// A journey step was set aside after repeated failures.
    fn dead_lettered<'a>(&'a self, d: &'a DeadLettered) -> PortFuture<'a, ()>;
}

/// Test-only fault injection before an effect (the binary wires it from
/// `FLYWHEEL_FAULTS`; unset in production).
pub trait FaultPoint: Send + Sync {
    /// Fails the effect of step `step` about to be done, when a fault is due.
    fn before_effect(&self, step: &str) -> PortResult<()>;
}
