//! How the background services of a process are doing, as the operations endpoints read
//! it (`/metrics`, `/readyz`): a read-only snapshot per service and the small port
//! ([`WorkerHealth`]) that hands it over, so the HTTP layer reads the workers' health
//! without depending on the crate that runs them.

use serde::Serialize;

/// Where a service stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Its last run succeeded (or it has not failed since it started).
    Running,
    /// Its last run failed; it is retried with backoff and nothing is skipped meanwhile.
    Failing,
    /// It no longer runs: stopped by the shutdown signal, or ended by a panic (then
    /// `last_error` says so and the process is not ready).
    Stopped,
}

impl ServiceState {
    /// The state's name on `/readyz` and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Running => "running",
            ServiceState::Failing => "failing",
            ServiceState::Stopped => "stopped",
        }
    }
}

/// What a service's lag counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LagUnit {
    /// Events of the log a log follower has yet to apply.
    Events,
    /// Seconds a periodic job's due run is overdue (0 while it is on time).
    Seconds,
    /// Bytes past a bound (the write-ahead log past its truncation trigger).
    Bytes,
}

impl LagUnit {
    /// The unit's name (a label on `/metrics`).
    pub fn as_str(self) -> &'static str {
        match self {
            LagUnit::Events => "events",
            LagUnit::Seconds => "seconds",
            LagUnit::Bytes => "bytes",
        }
    }
}

/// One service's health at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceHealth {
    /// The service's name (`order_rewards`, `group_expiry`, ...).
    pub name: String,
    /// Where it stands.
    pub state: ServiceState,
    /// How far behind it is, in `lag_unit`.
    pub lag: u64,
    /// What `lag` counts.
    pub lag_unit: LagUnit,
    /// Failed runs since the process started.
    pub errors: u64,
    /// The last failure's text, kept after a later success.
    pub last_error: Option<String>,
    /// When the last failure happened (UTC epoch milliseconds).
    pub last_error_at: Option<i64>,
    /// When the last run succeeded (UTC epoch milliseconds).
    pub last_ok_at: Option<i64>,
}

/// The port through which the operations endpoints read the workers' health.
pub trait WorkerHealth: Send + Sync {
    /// Every service's health now, in a stable order.
    fn services(&self) -> Vec<ServiceHealth>;
}

/// No services (a process that runs none, and tests of the HTTP layer).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoWorkers;

impl WorkerHealth for NoWorkers {
    fn services(&self) -> Vec<ServiceHealth> {
        Vec::new()
    }
}
