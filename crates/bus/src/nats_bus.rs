//! [`NatsBus`]: the [`Bus`] of the scale-out mode, over one JetStream stream.
//!
//! The stream (named by the prefix) holds subjects `<prefix>.>` in files, with limits
//! retention: a message is removed when it is older than `max_age` (default 24 h) or
//! when the stream outgrows `max_bytes` (default 1 GiB, oldest removed first). A
//! publish carrying a message id already stored within `duplicate_window` (default
//! 2 min) is acknowledged as a duplicate and not stored again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use flywheel_core::bus::{Bus, DomainEvent};
use tokio::sync::{broadcast, mpsc};

use crate::config::{is_token, BusOptions};
use crate::publisher::{self, BusStats, Counters, Outgoing};
use crate::{subscriber, Error, Result};

/// What every process of a deployment must agree on: the stream and how subjects are
/// laid out on it.
#[derive(Debug)]
pub(crate) struct Topology {
    pub prefix: String,
    pub partitions: u32,
    max_age: Duration,
    max_bytes: i64,
    duplicate_window: Duration,
}

const PARTITIONS_TAG: &str = "partitions=";

impl Topology {
    /// Creates the stream, or brings its limits up to this process's options; refuses a
    /// stream made with another partition count.
    pub(crate) async fn ensure_stream(&self, js: &Context) -> Result<stream::Stream> {
        if let Ok(existing) = js.get_stream(&self.prefix).await {
            let recorded = existing
                .cached_info()
                .config
                .description
                .as_deref()
                .and_then(|d| d.split(PARTITIONS_TAG).nth(1))
                .and_then(|n| n.trim().parse::<u32>().ok());
            if let Some(existing) = recorded.filter(|n| *n != self.partitions) {
                return Err(Error::PartitionMismatch {
                    stream: self.prefix.clone(),
                    existing,
                    configured: self.partitions,
                });
            }
        }
        let config = stream::Config {
            name: self.prefix.clone(),
            description: Some(format!(
                "Flywheel domain events, {PARTITIONS_TAG}{}",
                self.partitions
            )),
            subjects: vec![format!("{}.>", self.prefix)],
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            discard: DiscardPolicy::Old,
            max_age: self.max_age,
            max_bytes: self.max_bytes,
            max_messages: -1,
            max_messages_per_subject: -1,
            max_consumers: -1,
            duplicate_window: self.duplicate_window,
            num_replicas: 1,
            ..stream::Config::default()
        };
        js.create_or_update_stream(config).await.map_err(Error::js)?;
        js.get_stream(&self.prefix).await.map_err(Error::js)
    }
}

/// The scale-out bus. Rules:
/// - `publish` never blocks: the event is broadcast to this process's subscribers at
///   once and queued for NATS; a full queue drops it for the other processes (counted
///   in [`BusStats::dropped_queue_full`]).
/// - every process's subscribers hear every event published after they subscribed, by
///   any process, once; an event published by this process is heard before NATS has
///   stored it, so the local order may differ from the stream order.
/// - one profile's events go to one partition (see
///   [`partition_of`](crate::partition_of)) and are stored in publish order.
/// - events about a profile are consumed in that order by a [durable
///   group](NatsBus::durable), one unacknowledged message per partition at a time.
///
/// Clones share one connection and one queue; the background tasks end when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    js: Context,
    topology: Arc<Topology>,
    origin: String,
    next_id: AtomicU64,
    counters: Arc<Counters>,
    queued: AtomicU64,
    local: broadcast::Sender<Arc<DomainEvent>>,
    queue: mpsc::Sender<Outgoing>,
}

impl NatsBus {
    /// Connects with the default [`BusOptions`]: fails if NATS cannot be reached, if the
    /// prefix is not a single name (`[A-Za-z0-9_-]`), or if the stream `prefix` exists
    /// with another partition count.
    pub async fn connect(url: &str, prefix: &str) -> Result<NatsBus> {
        NatsBus::connect_with(url, prefix, BusOptions::default()).await
    }

    /// Connects with `options`; must be called inside a tokio runtime, which runs the
    /// bus's two background tasks.
    pub async fn connect_with(url: &str, prefix: &str, options: BusOptions) -> Result<NatsBus> {
        options.check()?;
        if !is_token(prefix) {
            return Err(Error::InvalidPrefix(prefix.to_string()));
        }
        let mut connect = async_nats::ConnectOptions::new().name(format!("flywheel bus {prefix}"));
        if options.wait_for_server {
            connect = connect.retry_on_initial_connect();
        }
        let client = connect.connect(url).await.map_err(|source| Error::Connect {
            url: redact(url),
            source,
        })?;
        let js = jetstream::new(client);
        let topology = Arc::new(Topology {
            prefix: prefix.to_string(),
            partitions: options.partitions,
            max_age: options.max_age,
            max_bytes: options.max_bytes,
            duplicate_window: options.duplicate_window,
        });
        let first = if options.wait_for_server {
            None
        } else {
            Some(subscriber::open(&js, &topology, None).await?)
        };
        let origin = format!("{:016x}", rand::random::<u64>());
        let counters = Arc::new(Counters::default());
        let (local, _) = broadcast::channel(options.local_capacity.max(16));
        let (queue, rx) = mpsc::channel(options.queue_capacity);
        tokio::spawn(publisher::run(
            js.clone(),
            topology.clone(),
            origin.clone(),
            counters.clone(),
            rx,
            options.publish_batch,
        ));
        tokio::spawn(subscriber::run(
            js.clone(),
            topology.clone(),
            origin.clone(),
            counters.clone(),
            local.downgrade(),
            first,
        ));
        Ok(NatsBus {
            inner: Arc::new(Inner {
                js,
                topology,
                origin,
                next_id: AtomicU64::new(0),
                counters,
                queued: AtomicU64::new(0),
                local,
                queue,
            }),
        })
    }

    /// Publishes with a caller-chosen message id: a second publish with the same id
    /// within the duplicate window is not stored again (use a key the store already
    /// made unique, e.g. a transition's row id). [`Bus::publish`] makes a fresh id per
    /// call. This process's own subscribers hear every call (they are told at once,
    /// before NATS has seen it); other processes hear the stored message once.
    pub fn publish_with_id(&self, event: DomainEvent, id: impl Into<String>) {
        let event = Arc::new(event);
        // No local subscriber is not an error.
        let _ = self.inner.local.send(event.clone());
        let out = Outgoing { event, id: id.into() };
        match self.inner.queue.try_send(out) {
            Ok(()) => {
                self.inner.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let n = Counters::bump(&self.inner.counters.dropped_queue_full);
                if n == 1 || n.is_multiple_of(1000) {
                    let why = match e {
                        mpsc::error::TrySendError::Full(_) => "NATS is unreachable or slow",
                        mpsc::error::TrySendError::Closed(_) => "the publisher stopped",
                    };
                    tracing::warn!(
                        dropped_total = n,
                        "bus: publish queue full ({why}); event kept local only"
                    );
                }
            }
        }
    }

    /// Waits until every event queued before the call is stored or dropped, at most
    /// `timeout`: true when it got there. For an orderly shutdown.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let target = self.inner.queued.load(Ordering::Relaxed);
        let settled = || {
            let s = self.stats();
            s.published + s.duplicates + s.dropped_rejected + s.coalesced >= target
        };
        tokio::time::timeout(timeout, async {
            while !settled() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .is_ok()
    }

    /// What the bus has done so far.
    pub fn stats(&self) -> BusStats {
        self.inner.counters.snapshot()
    }

    /// The number of partitions.
    pub fn partitions(&self) -> u32 {
        self.inner.topology.partitions
    }

    /// The JetStream stream name (the prefix).
    pub fn stream_name(&self) -> &str {
        &self.inner.topology.prefix
    }

    pub(crate) fn context(&self) -> &Context {
        &self.inner.js
    }

    pub(crate) fn topology(&self) -> &Arc<Topology> {
        &self.inner.topology
    }

    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.inner.counters
    }
}

impl Bus for NatsBus {
    fn publish(&self, event: DomainEvent) {
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", self.inner.origin);
        self.publish_with_id(event, id);
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<DomainEvent>> {
        self.inner.local.subscribe()
    }
}

/// The URL without its user and password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_in_messages_hide_credentials() {
        assert_eq!(redact("nats://u:secret@h:4222"), "nats://***@h:4222");
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
        assert_eq!(redact("h:4222"), "h:4222");
    }
}
