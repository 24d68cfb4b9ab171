//! The one small trait every background workflow implements: a [`Service`] is only its
//! work — one run at a time ([`Service::run_once`]) — and how it wants to be paced
//! ([`Pace`]). The runner ([`crate::Workers`]) owns the loop, the backoff after a
//! failure, the shutdown and the health bookkeeping.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flywheel_core::health::LagUnit;
use tokio::sync::Notify;

use crate::shutdown::Shutdown;

/// A background workflow run by [`crate::Workers`].
pub trait Service: Send + 'static {
    /// The name on `/metrics`, `/readyz` and in log lines (`order_rewards`).
    fn name(&self) -> &'static str;

    /// How the runner paces the runs.
    fn pace(&self) -> Pace;

    /// Does the work that is due once. A failure is retried by the runner with backoff
    /// (the service must not move past work it has not done); a success says when to
    /// run again. A run that may wait long (for a message) watches `ctx.shutdown`.
    fn run_once(&mut self, ctx: &Ctx) -> impl Future<Output = Result<Next, Failure>> + Send;
}

/// How a service is paced.
#[derive(Debug, Clone)]
pub struct Pace {
    /// The wait before the first run.
    pub first: Duration,
    /// The wait between runs that left nothing more to do.
    pub every: Duration,
    /// Wakes the service before `every` is over (a log follower woken by commits).
    pub wake: Option<Arc<Notify>>,
    /// The longest wait between two attempts while runs keep failing (the backoff
    /// starts at 100 ms and doubles up to it).
    pub max_backoff: Duration,
    /// What the service's lag counts: [`LagUnit::Seconds`] is measured by the runner
    /// (how long a due run is overdue); any other unit is reported by the service
    /// through [`Ctx::set_lag`].
    pub lag: LagUnit,
}

impl Pace {
    /// A periodic job: runs every `every`, the first time at once; lag in seconds
    /// overdue. Failures are retried at most a period apart (between 1 s and 30 s).
    pub fn every(every: Duration) -> Pace {
        Pace {
            first: Duration::ZERO,
            every,
            wake: None,
            max_backoff: every.clamp(Duration::from_secs(1), Duration::from_secs(30)),
            lag: LagUnit::Seconds,
        }
    }

    /// The same pace, the first run only after `first`.
    pub fn first_after(mut self, first: Duration) -> Pace {
        self.first = first;
        self
    }

    /// The same pace, woken early by `wake`.
    pub fn woken_by(mut self, wake: Arc<Notify>) -> Pace {
        self.wake = Some(wake);
        self
    }

    /// The same pace with a lag the service reports in `unit`.
    pub fn lag_in(mut self, unit: LagUnit) -> Pace {
        self.lag = unit;
        self
    }

    /// The same pace, retrying failures at most every `max`.
    pub fn max_backoff(mut self, max: Duration) -> Pace {
        self.max_backoff = max;
        self
    }
}

/// When to run again after a successful run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// At once: there is more to do.
    Now,
    /// After the pace's `every`, or when woken.
    Wait,
    /// After at most this long, or when woken.
    Within(Duration),
}

/// Why a run failed (its text goes to the log and to the service's health).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.to_string())
    }
}

impl Failure {
    /// A failure described by `text`.
    pub fn new(text: impl Into<String>) -> Failure {
        Failure(text.into())
    }
}

/// What the runner hands every run: the shutdown signal and the service's lag gauge.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The shutdown signal.
    pub shutdown: Shutdown,
    pub(crate) lag: Arc<AtomicU64>,
}

impl Ctx {
    /// Reports how far behind the service is, in its pace's lag unit.
    pub fn set_lag(&self, lag: u64) {
        self.lag.store(lag, Ordering::Relaxed);
    }
}
