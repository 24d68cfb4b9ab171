//! The scale-out event bus: [`NatsBus`] carries Flywheel's [`DomainEvent`]s between the
//! `api` and `worker` processes of one deployment over NATS JetStream, behind the same
//! [`Bus`] trait as the embedded in-process bus.
//!
//! What it owns: one JetStream stream per deployment (named by the prefix), the subject
//! layout `<prefix>.<partition>.<subject>`, a never-blocking publisher, a per-process
//! subscriber that mirrors every process's messages into a local broadcast channel, and
//! durable, partitioned consumer groups for workers. What it does not own: the truth.
//! PostgreSQL holds the event log and the audience transitions log; the bus carries
//! notifications about them (wake-ups, transitions, cache invalidations), and a message
//! may be lost while NATS is unreachable (counted in [`BusStats`]). Readers that must not
//! miss anything follow the store and use the bus to learn early.
//!
//! Threading model: [`NatsBus::connect`] spawns two tokio tasks on the current runtime,
//! one publishing queued events, one feeding the local subscribers; both end when the
//! last clone of the bus is dropped. [`DurableConsumer`] does its work in the caller's
//! task.

#![warn(missing_docs)]

mod config;
mod durable;
mod nats_bus;
mod partition;
mod publisher;
mod subscriber;

pub use config::{BusOptions, DurableOptions, DurableStart};
pub use durable::{Delivery, DurableConsumer};
pub use flywheel_core::bus::{Bus, DomainEvent};
pub use nats_bus::{redact, NatsBus};
pub use partition::partition_of;
pub use publisher::BusStats;

/// Why the bus could not be set up or a durable consumer could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The prefix cannot name a stream and a subject root.
    #[error("invalid bus prefix {0:?}: use letters, digits, '_' or '-'")]
    InvalidPrefix(String),
    /// A consumer group name cannot name a durable consumer.
    #[error("invalid consumer group {0:?}: use letters, digits, '_' or '-'")]
    InvalidGroup(String),
    /// An option is out of range.
    #[error("invalid bus option: {0}")]
    InvalidOption(String),
    /// A partition outside `0..partitions` was asked for.
    #[error("partition {partition} does not exist (the bus has {partitions})")]
    NoSuchPartition {
        /// The partition asked for.
        partition: u32,
        /// How many there are.
        partitions: u32,
    },
    /// The stream exists with another partition count: processes would disagree on
    /// where one profile's events go.
    #[error("stream {stream} was created with {existing} partitions, this process uses {configured}")]
    PartitionMismatch {
        /// The stream.
        stream: String,
        /// The partition count recorded on the stream.
        existing: u32,
        /// The partition count of this process.
        configured: u32,
    },
    /// The NATS server could not be reached.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The URL tried.
        url: String,
        /// Why.
        source: async_nats::ConnectError,
    },
    /// A JetStream request (stream or consumer management, pull, ack) failed.
    #[error("NATS JetStream: {0}")]
    JetStream(String),
    /// The durable consumer's message streams ended (the connection was closed).
    #[error("the durable consumer was closed")]
    Closed,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn js(e: impl std::fmt::Display) -> Error {
        Error::JetStream(e.to_string())
    }
}
