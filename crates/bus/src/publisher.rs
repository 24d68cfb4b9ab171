//! The publishing side: [`NatsBus::publish`](crate::NatsBus) hands an event to a bounded
//! queue and returns; one background task sends queued events to JetStream in batches,
//! each with a `Nats-Msg-Id` so that a retry after a lost acknowledgement is stored once
//! (within the stream's duplicate window).
//!
//! Within one batch, an older `log.advanced` and a `cache.invalidated` repeated later in
//! the batch are left out: the later message says the same or more.
//!
//! Failure rules: a send that fails for a transient reason (timeout, lost connection,
//! stream missing) is retried from the first unacknowledged event, in order, with
//! exponential backoff (100 ms doubling to 5 s), for as long as it takes; while that
//! lasts the queue fills, and once it is full new events are dropped (counted in
//! [`BusStats::dropped_queue_full`], logged at the first drop and every 1,000th). An
//! event the server refuses (too large, or refused five times) is dropped and counted
//! in [`BusStats::dropped_rejected`]. Nothing here is the truth: PostgreSQL is, and the
//! readers that care also poll it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use bytes::Bytes;
use flywheel_core::bus::DomainEvent;
use tokio::sync::mpsc;

use crate::nats_bus::Topology;
use crate::partition::subject_of;

/// The header naming the process (bus instance) that published a message, so that its
/// own subscriber does not deliver it a second time.
pub(crate) const ORIGIN_HEADER: &str = "Flywheel-Origin";

const MAX_REFUSALS: u32 = 5;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the bus did since it was connected (counters only grow). Meant for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Events stored by JetStream (acknowledged, not duplicates).
    pub published: u64,
    /// Sends that JetStream recognised as a duplicate of a stored message id.
    pub duplicates: u64,
    /// Sends that failed and were retried.
    pub retries: u64,
    /// Events dropped because the publish queue was full (NATS down or too slow).
    pub dropped_queue_full: u64,
    /// Events dropped because the server refused them.
    pub dropped_rejected: u64,
    /// Events not sent because a later one in the same batch says the same or more (an
    /// older `log.advanced`, a repeated `cache.invalidated`).
    pub coalesced: u64,
    /// Events from other processes delivered to the local subscribers.
    pub received: u64,
    /// Messages on the stream that were not a readable event (skipped).
    pub undecodable: u64,
}

/// The live counters behind [`BusStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub published: AtomicU64,
    pub duplicates: AtomicU64,
    pub retries: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_rejected: AtomicU64,
    pub coalesced: AtomicU64,
    pub received: AtomicU64,
    pub undecodable: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> BusStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BusStats {
            published: g(&self.published),
            duplicates: g(&self.duplicates),
            retries: g(&self.retries),
            dropped_queue_full: g(&self.dropped_queue_full),
            dropped_rejected: g(&self.dropped_rejected),
            coalesced: g(&self.coalesced),
            received: g(&self.received),
            undecodable: g(&self.undecodable),
        }
    }

    pub(crate) fn bump(a: &AtomicU64) -> u64 {
        a.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// One queued event with the message id that every retry of it carries.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub event: Arc<DomainEvent>,
    pub id: String,
}

/// Sends queued events until every sender of the queue is gone.
pub(crate) async fn run(
    js: Context,
    topology: Arc<Topology>,
    origin: String,
    counters: Arc<Counters>,
    mut rx: mpsc::Receiver<Outgoing>,
    batch_size: usize,
) {
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, batch_size).await == 0 {
            return;
        }
        let merged = coalesce(&mut batch);
        counters.coalesced.fetch_add(merged, Ordering::Relaxed);
        let wire: Vec<(String, PublishMessage)> = batch
            .iter()
            .filter_map(|o| encode(&topology, &origin, o, &counters))
            .collect();
        if !send_all(&js, &topology, &counters, &wire, &rx).await {
            tracing::warn!(
                queued_left = rx.len(),
                "bus: closed while NATS was unreachable; queued events not sent"
            );
            return;
        }
    }
}

/// Leaves out of a batch what a later message of the same batch makes redundant: every
/// `log.advanced` but the one with the highest position, and a `cache.invalidated` equal
/// to a later one. Returns how many were left out. (Local subscribers heard them all.)
fn coalesce(batch: &mut Vec<Outgoing>) -> u64 {
    let newest_log = batch
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match &*o.event {
            DomainEvent::LogAdvanced(l) => Some((l.seq, i)),
            _ => None,
        })
        .max();
    let mut later_invalidations = HashSet::new();
    let mut keep = vec![true; batch.len()];
    for (i, o) in batch.iter().enumerate().rev() {
        keep[i] = match &*o.event {
            DomainEvent::LogAdvanced(_) => newest_log.is_some_and(|(_, n)| n == i),
            DomainEvent::Invalidated(inv) => later_invalidations.insert(inv.clone()),
            _ => true,
        };
    }
    let before = batch.len();
    let mut flags = keep.into_iter();
    batch.retain(|_| flags.next().unwrap_or(true));
    (before - batch.len()) as u64
}

fn encode(
    topology: &Topology,
    origin: &str,
    out: &Outgoing,
    counters: &Counters,
) -> Option<(String, PublishMessage)> {
    let payload = match serde_json::to_vec(&*out.event) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "bus: event cannot be encoded; dropped");
            Counters::bump(&counters.dropped_rejected);
            return None;
        }
    };
    let subject = subject_of(&topology.prefix, &out.event, topology.partitions);
    let msg = PublishMessage::build()
        .payload(Bytes::from(payload))
        .message_id(&out.id)
        .header(ORIGIN_HEADER, origin);
    Some((subject, msg))
}

/// Sends `wire` in order until every message is stored or dropped (true), or until the
/// bus is gone while sends still fail (false: nobody is left to flush for).
async fn send_all(
    js: &Context,
    topology: &Topology,
    counters: &Counters,
    wire: &[(String, PublishMessage)],
    rx: &mpsc::Receiver<Outgoing>,
) -> bool {
    let mut next = 0;
    let mut refusals = 0;
    let mut backoff = BACKOFF_START;
    while next < wire.len() {
        let (done, error) = send_from(js, counters, &wire[next..]).await;
        next += done;
        let Some(error) = error else { continue };
        if done > 0 {
            refusals = 0;
            backoff = BACKOFF_START;
        }
        match error.kind() {
            PublishErrorKind::MaxPayloadExceeded => {
                drop_refused(counters, &wire[next].0, &error);
                next += 1;
                continue;
            }
            PublishErrorKind::Other
            | PublishErrorKind::WrongLastMessageId
            | PublishErrorKind::WrongLastSequence => {
                refusals += 1;
                if refusals >= MAX_REFUSALS {
                    drop_refused(counters, &wire[next].0, &error);
                    next += 1;
                    refusals = 0;
                    continue;
                }
            }
            PublishErrorKind::StreamNotFound => {
                if let Err(e) = topology.ensure_stream(js).await {
                    tracing::warn!(error = %e, "bus: stream missing and cannot be created yet");
                }
            }
            _ => {}
        }
        if rx.is_closed() {
            return false;
        }
        Counters::bump(&counters.retries);
        tracing::warn!(error = %error, retry_in = ?backoff, "bus: publish to NATS failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
    true
}

/// Sends every message, then awaits the acknowledgements in order: how many leading
/// messages are stored, and the error that stopped the rest.
async fn send_from(
    js: &Context,
    counters: &Counters,
    wire: &[(String, PublishMessage)],
) -> (usize, Option<PublishError>) {
    let mut pending = Vec::with_capacity(wire.len());
    let mut stop = None;
    for (subject, msg) in wire {
        match js.send_publish(subject.clone(), msg.clone()).await {
            Ok(ack) => pending.push(ack),
            Err(e) => {
                stop = Some(e);
                break;
            }
        }
    }
    let mut done = 0;
    for ack in pending {
        match ack.await {
            Ok(ack) => {
                done += 1;
                if ack.duplicate {
                    Counters::bump(&counters.duplicates);
                } else {
                    Counters::bump(&counters.published);
                }
            }
            Err(e) => return (done, Some(e)),
        }
    }
    (done, stop)
}

fn drop_refused(counters: &Counters, subject: &str, error: &PublishError) {
    let n = Counters::bump(&counters.dropped_rejected);
    tracing::error!(%subject, error = %error, dropped_total = n, "bus: NATS refused an event; dropped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::bus::{CacheKind, Invalidation, LogAdvanced, TierChanged};

    fn out(event: DomainEvent) -> Outgoing {
        Outgoing {
            event: Arc::new(event),
            id: String::new(),
        }
    }

    fn log(seq: i64) -> DomainEvent {
        DomainEvent::LogAdvanced(LogAdvanced { seq })
    }

    fn inv(what: CacheKind, key: Option<&str>) -> DomainEvent {
        DomainEvent::Invalidated(Invalidation {
            what,
            key: key.map(String::from),
        })
    }

    #[test]
    fn a_batch_sends_the_newest_log_position_and_each_invalidation_once() {
        let tier = DomainEvent::TierChanged(TierChanged {
            user_id: "u".into(),
            from: None,
            to: "金卡".into(),
            spend_365d: flywheel_core::Fen(1),
            upgrade: true,
        });
        let mut batch = vec![
            out(log(5)),
            out(inv(CacheKind::WriteKeys, Some("k1"))),
            out(tier.clone()),
            out(log(9)),
            out(inv(CacheKind::WriteKeys, Some("k2"))),
            out(log(7)),
            out(inv(CacheKind::WriteKeys, Some("k1"))),
            out(tier.clone()),
        ];
        assert_eq!(coalesce(&mut batch), 3);
        let left: Vec<DomainEvent> = batch.iter().map(|o| (*o.event).clone()).collect();
        assert_eq!(
            left,
            vec![
                tier.clone(),
                log(9),
                inv(CacheKind::WriteKeys, Some("k2")),
                inv(CacheKind::WriteKeys, Some("k1")),
                tier,
            ]
        );
        let mut plain = vec![out(log(1))];
        assert_eq!(coalesce(&mut plain), 0);
        assert_eq!(plain.len(), 1);
    }
}
