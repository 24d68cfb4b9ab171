//! Flywheel's background workflows, each a [`Service`] run by [`Workers`].
//!
//! Owns every workflow that runs by itself in `flywheel serve` — order rewards (points,
//! referral rewards, tiers), campaign guardrails, the CLV refresh, reviews with their
//! alert delivery, the flash-sale hold sweeper, group-buy expiry, the loyalty daily
//! jobs, the journey engine's loops and the write-ahead-log watch — and the adapters that
//! connect one context's ports to another's services. It owns no table and no rule of a
//! domain: each service calls the domain crates' own operations.
//!
//! Threading: each service is one task on the Tokio runtime; the runner owns its loop,
//! the backoff after failures, the one shutdown signal ([`Shutdown`]) and the health
//! bookkeeping read by `/metrics` and `/readyz` through
//! [`flywheel_core::health::WorkerHealth`]. Services are driven by time (a period), by
//! the ingest pipeline's commit notifications (log followers) or both.

pub mod adapters;
pub mod clv_refresh;
pub mod flash_sweeper;
pub mod group_expiry;
pub mod guardrails;
pub mod health;
pub mod journey_ports;
pub mod journey_steps;
pub mod journeys;
pub mod loyalty_daily;
pub mod notify;
pub mod observers;
pub mod order_rewards;
pub mod reviews;
pub mod runner;
pub mod service;
pub mod shutdown;
pub mod singleton;
pub mod wal;

pub use runner::Workers;
pub use service::{Ctx, Failure, Next, Pace, Service};
pub use shutdown::{Shutdown, ShutdownTrigger};

/// Why a workflow step or a setting failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] flywheel_store::Error),
    /// An analytics report failed.
    #[error(transparent)]
    Analytics(#[from] flywheel_analytics::reports::Error),
    /// The journey engine refused or failed.
    #[error(transparent)]
    Journeys(#[from] flywheel_journeys::Error),
    /// The ingest pipeline refused or failed.
    #[error("ingest: {0}")]
    Ingest(String),
    /// A setting cannot be used (`[analytics.notify]`, `[journeys.email]`).
    #[error("{0}")]
    Setting(String),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
