//! The listening side: one ordered, ephemeral JetStream consumer per bus instance reads
//! every subject of the stream from "new messages only" on, and hands each event that
//! another process published to the local broadcast channel that
//! [`Bus::subscribe`](flywheel_core::bus::Bus::subscribe) receivers read. The instance's
//! own events are broadcast locally at publish time and skipped here (by the origin
//! header), so each event reaches a local subscriber once.
//!
//! The consumer keeps no state on the server worth keeping: if the connection drops it
//! is recreated from the last stream position seen, so a short outage loses nothing
//! that the stream still retains.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::{Context, Message};
use flywheel_core::bus::DomainEvent;
use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::nats_bus::Topology;
use crate::publisher::{Counters, ORIGIN_HEADER};
use crate::{Error, Result};

/// Creates the ordered consumer, starting after `after` (a stream sequence) or at new
/// messages only; the stream is created first if it is missing. Also returns the stream
/// position it starts after, so that a reopening resumes there even if nothing was
/// heard in between.
pub(crate) async fn open(js: &Context, topology: &Topology, after: Option<u64>) -> Result<(Ordered, u64)> {
    let stream = topology.ensure_stream(js).await?;
    let deliver_policy = match after {
        Some(seq) => DeliverPolicy::ByStartSequence {
            start_sequence: seq + 1,
        },
        None => DeliverPolicy::New,
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: format!("{}.>", topology.prefix),
            deliver_policy,
            ..OrderedConfig::default()
        })
        .await
        .map_err(Error::js)?;
    let start_after = consumer.cached_info().delivered.stream_sequence;
    let messages = consumer.messages().await.map_err(Error::js)?;
    Ok((messages, start_after))
}

/// Feeds the local channel until no bus handle is left (the sender's last clone gone).
pub(crate) async fn run(
    js: Context,
    topology: Arc<Topology>,
    origin: String,
    counters: Arc<Counters>,
    local: broadcast::WeakSender<Arc<DomainEvent>>,
    first: Option<(Ordered, u64)>,
) {
    let mut last_seen: Option<u64> = first.as_ref().map(|(_, after)| *after);
    let mut messages = first.map(|(m, _)| m);
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(stream) = messages.as_mut() else {
            match open(&js, &topology, last_seen).await {
                Ok((s, after)) => {
                    messages = Some(s);
                    last_seen = Some(after);
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    if local.upgrade().is_none() {
                        return;
                    }
                    tracing::warn!(error = %e, retry_in = ?backoff, "bus: cannot open the NATS subscriber yet");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            continue;
        };
        // Wake up now and then to notice that the bus was dropped.
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        let Some(tx) = local.upgrade() else { return };
        match next {
            Err(_) => {}
            Ok(None) => messages = None,
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "bus: NATS subscriber failed; reopening");
                messages = None;
            }
            Ok(Some(Ok(msg))) => {
                if let Ok(info) = msg.info() {
                    last_seen = Some(info.stream_sequence);
                }
                deliver(&msg, &origin, &counters, &tx);
            }
        }
    }
}

fn deliver(msg: &Message, origin: &str, counters: &Counters, tx: &broadcast::Sender<Arc<DomainEvent>>) {
    let own = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(ORIGIN_HEADER))
        .is_some_and(|v| v.as_str() == origin);
    if own {
        return;
    }
    match serde_json::from_slice::<DomainEvent>(&msg.payload) {
        Ok(event) => {
            Counters::bump(&counters.received);
            // No local subscriber is not an error.
            let _ = tx.send(Arc::new(event));
        }
        Err(e) => {
            let n = Counters::bump(&counters.undecodable);
            tracing::warn!(subject = %msg.subject, error = %e, skipped_total = n, "bus: message is not an event this version reads; skipped");
        }
    }
}
