//! The bus's options, with the defaults a deployment runs with, and the rules for the
//! names that become NATS stream, subject and consumer names.

use std::time::Duration;

use crate::{Error, Result};

/// How a [`NatsBus`](crate::NatsBus) is set up. Every process of a deployment must use
/// the same `partitions` (checked against the stream at connect); the other fields may
/// differ per process.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// Number of partitions P: an event about a profile goes to partition
    /// `hash(profile) mod P`, so one profile's events stay in order; events about no
    /// profile go to partition 0. Fixed for the life of the stream (default 16).
    pub partitions: u32,
    /// How many published events may wait for NATS before new ones are dropped
    /// (default 10,000). Local subscribers still receive a dropped event.
    pub queue_capacity: usize,
    /// How many queued events are sent before their acknowledgements are awaited
    /// (default 256).
    pub publish_batch: usize,
    /// Retention: a message older than this is removed from the stream (default 24 h).
    /// A durable consumer that stays away longer misses what was removed.
    pub max_age: Duration,
    /// Retention: when the stream holds more bytes than this, the oldest messages are
    /// removed (default 1 GiB).
    pub max_bytes: i64,
    /// A publish retried with the same message id within this window is stored once
    /// (default 2 min).
    pub duplicate_window: Duration,
    /// How many messages a slow local subscriber may fall behind before it skips ahead
    /// (default 65,536).
    pub local_capacity: usize,
    /// `false` (default): connecting fails when NATS cannot be reached. `true`: connecting
    /// succeeds at once and the bus sets itself up when NATS comes up; until then
    /// publishes queue (and overflow is dropped) and only local messages are heard.
    pub wait_for_server: bool,
}

impl Default for BusOptions {
    fn default() -> Self {
        BusOptions {
            partitions: 16,
            queue_capacity: 10_000,
            publish_batch: 256,
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: 1 << 30,
            duplicate_window: Duration::from_secs(120),
            local_capacity: 65_536,
            wait_for_server: false,
        }
    }
}

impl BusOptions {
    pub(crate) fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidOption(what.to_string()));
        if self.partitions == 0 || self.partitions > 1024 {
            return bad("partitions must be between 1 and 1024");
        }
        if self.queue_capacity == 0 || self.publish_batch == 0 {
            return bad("queue_capacity and publish_batch must be at least 1");
        }
        if self.max_age.is_zero() || self.max_bytes <= 0 {
            return bad("max_age and max_bytes must be positive");
        }
        if self.duplicate_window.is_zero() || self.duplicate_window > self.max_age {
            return bad("duplicate_window must be positive and at most max_age");
        }
        Ok(())
    }
}

/// Where a durable consumer group starts the first time it is created (afterwards it
/// resumes where the group left off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DurableStart {
    /// Every message still retained by the stream (default: nothing published before
    /// the group existed is missed, within retention).
    #[default]
    All,
    /// Only messages stored after the group was created.
    New,
}

/// How a durable consumer group consumes.
#[derive(Debug, Clone)]
pub struct DurableOptions {
    /// A delivered message that is not acknowledged within this time is delivered
    /// again, to any member of the group (default 30 s). Work that takes longer must be
    /// split or report progress.
    pub ack_wait: Duration,
    /// Where a new group starts.
    pub start: DurableStart,
    /// Only these subjects, as a NATS pattern over the event subject (`segment.*`,
    /// `tier.changed`); `>` (default) is every subject.
    pub filter: String,
    /// How long one pull request waits on the server for a message before it is
    /// renewed (default 5 s, at least 1 s): an idle partition costs one request per
    /// period. It is not a delivery delay: a message is handed over as soon as it is
    /// stored.
    pub pull_expires: Duration,
}

impl Default for DurableOptions {
    fn default() -> Self {
        DurableOptions {
            ack_wait: Duration::from_secs(30),
            start: DurableStart::All,
            filter: ">".to_string(),
            pull_expires: Duration::from_secs(5),
        }
    }
}

/// A name usable as a stream, consumer and subject token: `[A-Za-z0-9_-]`, 1..=64 bytes.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A subject pattern over event subjects: dotted tokens of letters, digits, `_`, `-`,
/// `*`, with `>` allowed as the last token.
pub(crate) fn is_filter(s: &str) -> bool {
    let tokens: Vec<&str> = s.split('.').collect();
    tokens.iter().enumerate().all(|(i, t)| {
        (*t == ">" && i + 1 == tokens.len())
            || *t == "*"
            || (!t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_safe_tokens() {
        assert!(is_token("FLYWHEEL"));
        assert!(is_token("fw_test-1"));
        for bad in ["", "a.b", "a b", "a*", ">", "会员", &"x".repeat(65)] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn filters_are_subject_patterns() {
        for ok in [">", "segment.*", "tier.changed", "*.added", "segment.>"] {
            assert!(is_filter(ok), "{ok:?}");
        }
        for bad in ["", "a..b", ">.a", "a b", "segment.", "a.>x"] {
            assert!(!is_filter(bad), "{bad:?}");
        }
    }

    #[test]
    fn defaults_pass_and_nonsense_is_refused() {
        assert!(BusOptions::default().check().is_ok());
        let o = BusOptions {
            partitions: 0,
            ..BusOptions::default()
        };
        assert!(matches!(o.check(), Err(Error::InvalidOption(_))));
        let o = BusOptions {
            duplicate_window: Duration::from_secs(48 * 3600),
            ..BusOptions::default()
        };
        assert!(o.check().is_err());
    }
}
