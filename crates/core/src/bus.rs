//! The event bus: how one bounded context tells the others that something happened
//! (a user entered a segment, a tag was added, ...).
//!
//! Embedded mode uses [`InProcessBus`], a broadcast channel: every subscriber sees
//! every message published after it subscribed, and a subscriber that falls more than
//! the channel capacity behind skips ahead (it is told how many it missed). The
//! scale-out mode puts NATS JetStream behind the same trait (the `flywheel-bus` crate):
//! there a message may also be lost while NATS is unreachable, so the bus only ever
//! carries notifications and facts whose truth lives in the store (the event log, the
//! audience transitions log, the saved definitions); a reader that must not miss
//! anything follows the store and treats the bus as a wake-up.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Everything one bounded context tells the others on the bus: one typed variant per
/// kind of fact, each with a stable [`subject`](DomainEvent::subject) (the NATS subject
/// of the scale-out mode) and a typed payload. A new fact is a new variant, never a
/// free-form subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DomainEvent {
    /// A profile entered a saved segment (`segment.entered`).
    SegmentEntered(Membership),
    /// A profile left a saved segment (`segment.exited`).
    SegmentExited(Membership),
    /// A tag was added to a profile (`tag.added`).
    TagAdded(Membership),
    /// A tag was removed from a profile (`tag.removed`).
    TagRemoved(Membership),
    /// A member's loyalty tier changed (`tier.changed`).
    TierChanged(TierChanged),
    /// The event log is committed up to a position (`log.advanced`): a wake-up for
    /// processes that follow the shared log.
    LogAdvanced(LogAdvanced),
    /// A cached copy of a stored thing is stale and must be re-read (`cache.invalidated`).
    Invalidated(Invalidation),
}

impl DomainEvent {
    /// Every subject, in declaration order.
    pub const SUBJECTS: [&'static str; 7] = [
        "segment.entered",
        "segment.exited",
        "tag.added",
        "tag.removed",
        "tier.changed",
        "log.advanced",
        "cache.invalidated",
    ];

    /// The dotted subject: stable, part of the contract with subscribers.
    pub fn subject(&self) -> &'static str {
        match self {
            DomainEvent::SegmentEntered(_) => "segment.entered",
            DomainEvent::SegmentExited(_) => "segment.exited",
            DomainEvent::TagAdded(_) => "tag.added",
            DomainEvent::TagRemoved(_) => "tag.removed",
            DomainEvent::TierChanged(_) => "tier.changed",
            DomainEvent::LogAdvanced(_) => "log.advanced",
            DomainEvent::Invalidated(_) => "cache.invalidated",
        }
    }

    /// The profile (user) the event is about, if it is about one: the key a partitioned
    /// bus uses so that one profile's events stay in order. Log positions and cache
    /// invalidations are about stored things, not a profile, and have none.
    pub fn profile(&self) -> Option<&str> {
        match self {
            DomainEvent::SegmentEntered(m)
            | DomainEvent::SegmentExited(m)
            | DomainEvent::TagAdded(m)
            | DomainEvent::TagRemoved(m) => Some(&m.profile_id),
            DomainEvent::TierChanged(t) => Some(&t.user_id),
            DomainEvent::LogAdvanced(_) | DomainEvent::Invalidated(_) => None,
        }
    }
}

/// The event log is committed up to `seq`: every event with a smaller or equal `seq`
/// is readable. Published by the process that committed an ingest batch, after the
/// commit; a follower that hears it reads the log from its own cursor (it may have
/// missed earlier notices, so it never trusts the notice's `seq` as "the next one").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogAdvanced {
    /// The highest committed log position.
    pub seq: i64,
}

/// A cached copy of a stored thing is stale: whoever holds it re-reads it from the
/// store. `key` names one item (a definition name, a write key, a user id); `None`
/// means every cached item of that kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Invalidation {
    /// Which kind of cached thing.
    pub what: CacheKind,
    /// Which one (`None`: all of them).
    pub key: Option<String>,
}

/// The kinds of stored things that processes cache and must re-read when told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKind {
    /// Saved segment and tag definitions.
    Definitions,
    /// Manual tags set or removed by hand.
    ManualTags,
    /// Tracking-API write keys.
    WriteKeys,
    /// Consent and unsubscribe records.
    Consent,
    /// Journey definitions.
    Journeys,
    /// Shop settings.
    Settings,
}

/// A membership change of one profile in one segment or tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Increasing number of the change since the audience engine started.
    pub seq: u64,
    /// The segment or tag name.
    pub name: String,
    /// The profile.
    pub profile_id: String,
    /// When it was detected (ms since the epoch).
    pub at: i64,
    /// What caused it.
    pub cause: TransitionCause,
}

/// What moved a profile into or out of a segment or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionCause {
    /// Arriving data (an event, an order).
    Event,
    /// Time alone: a window moved.
    Time,
    /// A manual tag was set or removed by hand.
    Manual,
    /// A saved definition was changed.
    Definition,
    /// The profile was merged into another one (its exits; the manual tags the other gained).
    Merge,
    /// Found at start: the membership computed from the store differed from the stored
    /// one (the change happened while the server was down, or was computed but not yet
    /// logged when it stopped).
    Reconcile,
}

impl TransitionCause {
    /// Every cause.
    pub const ALL: [TransitionCause; 6] = [
        TransitionCause::Event,
        TransitionCause::Time,
        TransitionCause::Manual,
        TransitionCause::Definition,
        TransitionCause::Merge,
        TransitionCause::Reconcile,
    ];

    /// The cause as stored and served (`event`, `time`, `manual`, `definition`, `merge`,
    /// `reconcile`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionCause::Event => "event",
            TransitionCause::Time => "time",
            TransitionCause::Manual => "manual",
            TransitionCause::Definition => "definition",
            TransitionCause::Merge => "merge",
            TransitionCause::Reconcile => "reconcile",
        }
    }

    /// The cause named `s`, if any.
    pub fn parse(s: &str) -> Option<TransitionCause> {
        TransitionCause::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A member's loyalty tier changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierChanged {
    /// The member.
    pub user_id: String,
    /// The tier before (`None`: first evaluation).
    pub from: Option<String>,
    /// The tier now.
    pub to: String,
    /// Net spend of the last 365 days that decided it.
    pub spend_365d: crate::Fen,
    /// Up the ladder (or first evaluation) rather than down.
    pub upgrade: bool,
}

/// Publishes and subscribes to domain events.
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Publishes an event (never blocks).
    fn publish(&self, event: DomainEvent);
    /// A receiver of every event published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<DomainEvent>>;
}

/// The in-process bus of embedded mode.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    tx: broadcast::Sender<Arc<DomainEvent>>,
}

impl InProcessBus {
    /// A bus buffering up to `capacity` messages per slow subscriber.
    pub fn new(capacity: usize) -> InProcessBus {
        let (tx, _) = broadcast::channel(capacity.max(16));
        InProcessBus { tx }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        InProcessBus::new(65_536)
    }
}

impl Bus for InProcessBus {
    fn publish(&self, event: DomainEvent) {
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.tx.send(Arc::new(event));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<DomainEvent>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(name: &str) -> Membership {
        Membership {
            seq: 1,
            name: name.into(),
            profile_id: "p1".into(),
            at: 5,
            cause: TransitionCause::Event,
        }
    }

    #[test]
    fn subscribers_see_events_published_after_they_subscribe() {
        let bus = InProcessBus::new(16);
        bus.publish(DomainEvent::TagAdded(membership("early")));
        let mut rx = bus.subscribe();
        bus.publish(DomainEvent::SegmentEntered(membership("x")));
        let got = rx.try_recv().unwrap();
        assert_eq!(got.subject(), "segment.entered");
        assert_eq!(*got, DomainEvent::SegmentEntered(membership("x")));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn events_round_trip_through_json_with_their_type() {
        let events = [
            DomainEvent::SegmentEntered(membership("a")),
            DomainEvent::SegmentExited(membership("a")),
            DomainEvent::TagAdded(membership("t")),
            DomainEvent::TagRemoved(membership("t")),
            DomainEvent::TierChanged(TierChanged {
                user_id: "u".into(),
                from: None,
                to: "金卡".into(),
                spend_365d: crate::Fen(100),
                upgrade: true,
            }),
            DomainEvent::LogAdvanced(LogAdvanced { seq: 42 }),
            DomainEvent::Invalidated(Invalidation {
                what: CacheKind::ManualTags,
                key: Some("会员".into()),
            }),
        ];
        let subjects: Vec<&str> = events.iter().map(DomainEvent::subject).collect();
        assert_eq!(subjects, DomainEvent::SUBJECTS);
        for e in events {
            let json = serde_json::to_value(&e).unwrap();
            assert_eq!(serde_json::from_value::<DomainEvent>(json).unwrap(), e);
        }
        let json = serde_json::to_value(DomainEvent::TagAdded(membership("t"))).unwrap();
        assert_eq!(json["type"], "tag_added");
        assert_eq!(json["cause"], "event");
        let json = serde_json::to_value(DomainEvent::Invalidated(Invalidation {
            what: CacheKind::WriteKeys,
            key: None,
        }))
        .unwrap();
        assert_eq!(json["type"], "invalidated");
        assert_eq!(json["what"], "write_keys");
        let json = serde_json::to_value(DomainEvent::LogAdvanced(LogAdvanced { seq: 7 })).unwrap();
        assert_eq!(json, serde_json::json!({"type": "log_advanced", "seq": 7}));
    }

    #[test]
    fn events_name_the_profile_they_are_about() {
        let mut m = membership("vip");
        m.profile_id = "u9".into();
        assert_eq!(DomainEvent::SegmentExited(m.clone()).profile(), Some("u9"));
        assert_eq!(DomainEvent::TagRemoved(m).profile(), Some("u9"));
        let tier = DomainEvent::TierChanged(TierChanged {
            user_id: "u7".into(),
            from: Some("银卡".into()),
            to: "金卡".into(),
            spend_365d: crate::Fen(1),
            upgrade: true,
        });
        assert_eq!(tier.profile(), Some("u7"));
        assert_eq!(DomainEvent::LogAdvanced(LogAdvanced { seq: 1 }).profile(), None);
        let inv = DomainEvent::Invalidated(Invalidation {
            what: CacheKind::Consent,
            key: Some("u7".into()),
        });
        assert_eq!(inv.profile(), None);
    }

    #[test]
    fn causes_read_as_their_names() {
        for c in [
            TransitionCause::Event,
            TransitionCause::Time,
            TransitionCause::Manual,
            TransitionCause::Definition,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
    }
}
