//! The event bus: how one bounded context tells the others that something happened
//! (a user entered a segment, a tag was added, ...).
//!
//! Embedded mode uses [`InProcessBus`], a broadcast channel: every subscriber sees
//! every message published after it subscribed, and a subscriber that falls more than
//! the channel capacity behind skips ahead (it is told how many it missed). The
//! scale-out mode will put NATS JetStream behind the same trait.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusMessage {
    /// Dotted subject, e.g. `segment.entered`.
    pub subject: String,
    /// JSON payload.
    pub payload: serde_json::Value,
}

/// Publishes and subscribes to messages.
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Publishes a message (never blocks).
    fn publish(&self, message: BusMessage);
    /// A receiver of every message published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<BusMessage>>;
}

/// The in-process bus of embedded mode.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    tx: broadcast::Sender<Arc<BusMessage>>,
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
    fn publish(&self, message: BusMessage) {
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.tx.send(Arc::new(message));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<BusMessage>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_see_messages_published_after_they_subscribe() {
        let bus = InProcessBus::new(16);
        bus.publish(BusMessage {
            subject: "early".into(),
            payload: serde_json::json!(1),
        });
        let mut rx = bus.subscribe();
        bus.publish(BusMessage {
            subject: "segment.entered".into(),
            payload: serde_json::json!({"segment": "x"}),
        });
        let got = rx.try_recv().unwrap();
        assert_eq!(got.subject, "segment.entered");
        assert!(rx.try_recv().is_err());
    }
}
