//! The event bus: how one bounded context tells the others that something happened
//! (a user entered a segment, a tag was added, ...).
//!
//! Embedded mode uses [`InProcessBus`], a broadcast channel: every subscriber sees
//! every message published after it subscribed, and a subscriber that falls more than
//! the channel capacity behind skips ahead (it is told how many it missed). The
//! scale-out mode will put NATS JetStream behind the same trait.

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
}

impl DomainEvent {
    /// Every subject, in declaration order.
    pub const SUBJECTS: [&'static str; 5] = [
        "segment.entered",
        "segment.exited",
        "tag.added",
        "tag.removed",
        "tier.changed",
    ];

    /// The dotted subject: stable, part of the contract with subscribers.
    pub fn subject(&self) -> &'static str {
        match self {
            DomainEvent::SegmentEntered(_) => "segment.entered",
            DomainEvent::SegmentExited(_) => "segment.exited",
            DomainEvent::TagAdded(_) => "tag.added",
            DomainEvent::TagRemoved(_) => "tag.removed",
            DomainEvent::TierChanged(_) => "tier.changed",
        }
    }
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
