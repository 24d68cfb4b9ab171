//! Durable, partitioned consumption for workers. A consumer group has one JetStream
//! durable consumer per partition, named `<group>-p<partition>`, with explicit
//! acknowledgement and at most one unacknowledged message per partition: a partition
//! hands out its next message only after the previous one is acknowledged, so one
//! profile's events are handled in order even when several worker processes of the
//! group pull from the same partitions.
//!
//! Rules for the handler:
//! - acknowledge after the effect is durable ([`Delivery::ack`] returns once the server
//!   recorded the acknowledgement);
//! - a message not acknowledged within `ack_wait` (a crash, a hang) is delivered again,
//!   perhaps to another process, so every effect must be idempotent (keyed in the
//!   store); [`Delivery::redelivered`] tells a repeat;
//! - the group never skips a message it was not told to skip: a message that keeps
//!   failing blocks its partition, so a handler that gives up records it somewhere
//!   visible (a dead-letter row) and then acknowledges;
//! - a message that is not an event this version can read is terminated (never
//!   delivered again to the group) and counted in `BusStats::undecodable`.
//!
//! Each partition is pulled by a task of its own, one message per pull request, and asks
//! for the next message only once the previous delivery is acknowledged, asked for again
//! or dropped. (async-nats' continuous pull stream, asked for one message at a time on a
//! multi-threaded runtime, can count a message against a request before it counts the
//! request, then believes one is still due and sits idle until its expiry: seen here as
//! 15 s stalls of single partitions. A request per message cannot miscount.)
//! An idle partition costs one pull request per `pull_expires`.
//!
//! One [`DurableConsumer`] hands its caller one event at a time, from whichever of its
//! partitions has one. Partitions are independent, so a worker that wants them handled
//! in parallel joins the group once per partition (or per subset), each in its own task.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{AckKind, Message};
use flywheel_core::bus::DomainEvent;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::{is_filter, is_token, DurableOptions, DurableStart};
use crate::partition::partition_in;
use crate::publisher::Counters;
use crate::{Error, NatsBus, Result};

/// A message a partition's puller took, with the token whose drop (the delivery
/// acknowledged, asked for again or dropped) lets it ask for the next one.
struct Pulled {
    partition: u32,
    message: Message,
    turn: oneshot::Sender<()>,
}

/// Pulls a consumer group's messages from a set of partitions; see the module rules.
/// Dropping it stops its pullers.
pub struct DurableConsumer {
    group: String,
    rx: mpsc::Receiver<Pulled>,
    pullers: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Drop for DurableConsumer {
    fn drop(&mut self) {
        for puller in &self.pullers {
            puller.abort();
        }
    }
}

impl std::fmt::Debug for DurableConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableConsumer")
            .field("group", &self.group)
            .field("partitions", &self.pullers.len())
            .finish()
    }
}

/// One delivered event. Dropping it without [`ack`](Delivery::ack) leaves it to be
/// delivered again after the group's `ack_wait`.
pub struct Delivery {
    /// The event.
    pub event: DomainEvent,
    /// The partition it came from.
    pub partition: u32,
    /// Its position in the stream (increasing within a partition).
    pub stream_seq: u64,
    /// How many times it has been delivered to the group, this time included (1: first).
    pub delivered: i64,
    message: Message,
    /// Dropped with the delivery: the partition's puller may ask for the next message.
    _turn: oneshot::Sender<()>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("event", &self.event)
            .field("partition", &self.partition)
            .field("stream_seq", &self.stream_seq)
            .field("delivered", &self.delivered)
            .finish()
    }
}

impl Delivery {
    /// True when this event was delivered before and not acknowledged then.
    pub fn redelivered(&self) -> bool {
        self.delivered > 1
    }

    /// Acknowledges the event: the group will not see it again. Returns once the
    /// server confirmed.
    pub async fn ack(self) -> Result<()> {
        self.message.double_ack().await.map_err(Error::js)
    }

    /// Asks for the event again after `delay` (a transient failure); the partition
    /// waits for it.
    pub async fn retry_after(self, delay: Duration) -> Result<()> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(Error::js)
    }

    /// Tells the server the work goes on: the `ack_wait` clock restarts.
    pub async fn in_progress(&self) -> Result<()> {
        self.message.ack_with(AckKind::Progress).await.map_err(Error::js)
    }
}

impl NatsBus {
    /// Joins consumer group `group` on `partitions` with the default [`DurableOptions`].
    pub async fn durable(
        &self,
        group: &str,
        partitions: impl IntoIterator<Item = u32>,
    ) -> Result<DurableConsumer> {
        self.durable_with(group, partitions, DurableOptions::default())
            .await
    }

    /// Joins consumer group `group` on `partitions` (each `< self.partitions()`),
    /// creating the group's durable consumers where missing and updating their
    /// options where they exist. Processes that join one group on overlapping
    /// partitions share the work; each message goes to one of them.
    pub async fn durable_with(
        &self,
        group: &str,
        partitions: impl IntoIterator<Item = u32>,
        options: DurableOptions,
    ) -> Result<DurableConsumer> {
        if !is_token(group) || group.len() > 48 {
            return Err(Error::InvalidGroup(group.to_string()));
        }
        if !is_filter(&options.filter) {
            return Err(Error::InvalidOption(format!(
                "filter {:?} is not a subject pattern",
                options.filter
            )));
        }
        if options.ack_wait.is_zero() || options.pull_expires < Duration::from_secs(1) {
            return Err(Error::InvalidOption(
                "ack_wait must be positive and pull_expires at least 1 s".into(),
            ));
        }
        let all = self.partitions();
        let wanted: BTreeSet<u32> = partitions.into_iter().collect();
        if let Some(&partition) = wanted.iter().find(|p| **p >= all) {
            return Err(Error::NoSuchPartition {
                partition,
                partitions: all,
            });
        }
        let stream = self.topology().ensure_stream(self.context()).await?;
        let (tx, rx) = mpsc::channel(wanted.len().max(1));
        let mut pullers = Vec::with_capacity(wanted.len());
        for p in wanted {
            let name = format!("{group}-p{p}");
            // Where to start applies to a new consumer only (the server refuses to change
            // it): an existing one keeps its own.
            let deliver_policy = match stream.consumer_info(&name).await {
                Ok(existing) => existing.config.deliver_policy,
                Err(_) => match options.start {
                    DurableStart::All => DeliverPolicy::All,
                    DurableStart::New => DeliverPolicy::New,
                },
            };
            let config = pull::Config {
                durable_name: Some(name.clone()),
                description: Some(format!("Flywheel consumer group {group}, partition {p}")),
                deliver_policy,
                ack_policy: AckPolicy::Explicit,
                ack_wait: options.ack_wait,
                max_deliver: -1,
                max_ack_pending: 1,
                filter_subject: format!("{}.{p}.{}", self.stream_name(), options.filter),
                ..pull::Config::default()
            };
            let consumer = stream.create_consumer(config).await.map_err(Error::js)?;
            pullers.push(tokio::spawn(pull_partition(
                consumer,
                p,
                options.pull_expires,
                tx.clone(),
            )));
        }
        Ok(DurableConsumer {
            group: group.to_string(),
            rx,
            pullers,
            counters: self.counters().clone(),
        })
    }
}

/// Asks for one message of one partition at a time, hands it over and waits until its
/// delivery is done with, until the consumer is dropped. A pull that fails (NATS
/// unreachable) is tried again with backoff; a pull that times out is renewed.
async fn pull_partition(consumer: PullConsumer, partition: u32, expires: Duration, tx: mpsc::Sender<Pulled>) {
    let mut backoff = Duration::from_millis(100);
    while !tx.is_closed() {
        let mut batch = match consumer.batch().max_messages(1).expires(expires).messages().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(partition, error = %e, retry_in = ?backoff, "bus: pull from NATS failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        while let Some(item) = batch.next().await {
            match item {
                Ok(message) => {
                    backoff = Duration::from_millis(100);
                    let (turn, done) = oneshot::channel();
                    let pulled = Pulled {
                        partition,
                        message,
                        turn,
                    };
                    if tx.send(pulled).await.is_err() {
                        return;
                    }
                    // Until the delivery is acknowledged, asked for again or dropped.
                    let _ = done.await;
                }
                Err(e) => {
                    tracing::warn!(partition, error = %e, retry_in = ?backoff, "bus: pull from NATS failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

impl DurableConsumer {
    /// The next event of any of the group's partitions, waiting as long as it takes
    /// (through NATS outages: the pullers retry). Fails only with [`Error::Closed`]
    /// when no puller is left.
    pub async fn next(&mut self) -> Result<Delivery> {
        loop {
            let Some(pulled) = self.rx.recv().await else {
                return Err(Error::Closed);
            };
            // Fields, not `self`: the future stays `Send`.
            if let Some(d) = decode(&self.group, &self.counters, pulled).await {
                return Ok(d);
            }
        }
    }
}

/// The delivery of a pulled message, or `None` for a message that is not a readable
/// event (terminated so the group never sees it again, and counted).
async fn decode(group: &str, counters: &Counters, pulled: Pulled) -> Option<Delivery> {
    let Pulled {
        partition,
        message,
        turn,
    } = pulled;
    let (stream_seq, delivered) = match message.info() {
        Ok(i) => (i.stream_sequence, i.delivered),
        Err(_) => (0, 1),
    };
    match serde_json::from_slice::<DomainEvent>(&message.payload) {
        Ok(event) => Some(Delivery {
            event,
            partition: partition_in(&message.subject).unwrap_or(partition),
            stream_seq,
            delivered,
            message,
            _turn: turn,
        }),
        Err(e) => {
            let n = Counters::bump(&counters.undecodable);
            tracing::warn!(%group, subject = %message.subject, error = %e, skipped_total = n, "bus: message is not an event this version reads; terminated");
            if let Err(e) = message.ack_with(AckKind::Term).await {
                tracing::warn!(error = %e, "bus: could not terminate an unreadable message");
            }
            None
        }
    }
}
