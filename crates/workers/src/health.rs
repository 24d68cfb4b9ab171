//! The health bookkeeping of the runner: one record per service (state, lag, errors,
//! last error and last success), read as [`ServiceHealth`] snapshots through the
//! [`WorkerHealth`] port by `/metrics` and `/readyz`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use flywheel_core::health::{LagUnit, ServiceHealth, ServiceState, WorkerHealth};

/// Every service's record; cheap to clone.
#[derive(Clone, Default)]
pub struct Board(Arc<Mutex<Vec<Entry>>>);

/// One service's record; the runner writes it.
#[derive(Clone)]
pub struct Entry {
    record: Arc<Mutex<Record>>,
    pub(crate) lag: Arc<AtomicU64>,
}

struct Record {
    name: &'static str,
    unit: LagUnit,
    state: ServiceState,
    errors: u64,
    last_error: Option<String>,
    last_error_at: Option<i64>,
    last_ok_at: Option<i64>,
    /// Since when a run of a periodic job has been due without succeeding.
    due_since: Option<i64>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Board {
    /// A record for service `name`, whose lag counts `unit`.
    pub fn entry(&self, name: &'static str, unit: LagUnit) -> Entry {
        let entry = Entry {
            record: Arc::new(Mutex::new(Record {
                name,
                unit,
                state: ServiceState::Running,
                errors: 0,
                last_error: None,
                last_error_at: None,
                last_ok_at: None,
                due_since: None,
            })),
            lag: Arc::new(AtomicU64::new(0)),
        };
        lock(&self.0).push(entry.clone());
        entry
    }
}

/// A poisoned lock still holds usable bookkeeping (a panic elsewhere must not hide health).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl WorkerHealth for Board {
    fn services(&self) -> Vec<ServiceHealth> {
        let now = now_ms();
        lock(&self.0).iter().map(|e| e.snapshot(now)).collect()
    }
}

impl Entry {
    /// A run became due (periodic jobs: the start of their overdue time).
    pub(crate) fn due(&self) {
        let mut r = lock(&self.record);
        if r.due_since.is_none() {
            r.due_since = Some(now_ms());
        }
    }

    /// A run succeeded.
    pub(crate) fn ok(&self) {
        let mut r = lock(&self.record);
        r.last_ok_at = Some(now_ms());
        r.due_since = None;
        if r.state == ServiceState::Failing {
            r.state = ServiceState::Running;
        }
    }

    /// A run failed with `error`.
    pub(crate) fn failed(&self, error: &str) {
        let mut r = lock(&self.record);
        r.errors += 1;
        r.last_error = Some(error.to_owned());
        r.last_error_at = Some(now_ms());
        if r.state == ServiceState::Running {
            r.state = ServiceState::Failing;
        }
    }

    /// The service no longer runs; `error` says why when it was not asked to stop.
    pub(crate) fn stopped(&self, error: Option<&str>) {
        if let Some(e) = error {
            self.failed(e);
        }
        lock(&self.record).state = ServiceState::Stopped;
    }

    fn snapshot(&self, now: i64) -> ServiceHealth {
        let r = lock(&self.record);
        let lag = match r.unit {
            LagUnit::Seconds => r
                .due_since
                .map_or(0, |since| u64::try_from((now - since) / 1000).unwrap_or(0)),
            _ => self.lag.load(Ordering::Relaxed),
        };
        ServiceHealth {
            name: r.name.to_owned(),
            state: r.state,
            lag,
            lag_unit: r.unit,
            errors: r.errors,
            last_error: r.last_error.clone(),
            last_error_at: r.last_error_at,
            last_ok_at: r.last_ok_at,
        }
    }
}
