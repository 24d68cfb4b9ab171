//! The runner: [`Workers`] runs every [`Service`] as a task of its own, owns its loop,
//! the backoff after failures (100 ms doubling up to the pace's `max_backoff`, back to
//! 100 ms after a success), the one shutdown signal and the health bookkeeping.
//!
//! A failure is logged at warn once per failure streak, then "still failing" at most
//! once a minute, and "recovered" at info when a run succeeds again; every attempt
//! between is at debug. A service that panics is stopped and shows as such (the
//! process is then not ready); one stopped by the signal finishes the run in hand.

use std::sync::Arc;
use std::time::Duration;

use flywheel_core::health::WorkerHealth;
use tokio::task::JoinHandle;

use crate::health::{Board, Entry};
use crate::service::{Ctx, Failure, Next, Service};
use crate::shutdown::{self, Shutdown, ShutdownTrigger};

/// How often a failure streak is logged again at warn.
const STILL_FAILING_EVERY: Duration = Duration::from_secs(60);

/// The first wait after a failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The background services of a process and their one shutdown signal.
pub struct Workers {
    trigger: ShutdownTrigger,
    shutdown: Shutdown,
    board: Board,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Workers {
    fn default() -> Self {
        Workers::new()
    }
}

impl Workers {
    /// No services yet; [`Workers::spawn`] starts each.
    pub fn new() -> Workers {
        let (trigger, shutdown) = shutdown::channel();
        Workers {
            trigger,
            shutdown,
            board: Board::default(),
            tasks: Vec::new(),
        }
    }

    /// Starts `service`, which must run in one process at a time: under its lease when
    /// `singletons` is given (several processes on one store), else as is.
    pub fn spawn_single<S: Service>(
        &mut self,
        service: S,
        singletons: Option<&crate::singleton::Singletons>,
    ) {
        match singletons {
            Some(s) => self.spawn(s.wrap(service)),
            None => self.spawn(service),
        }
    }

    /// Starts `service` on the current runtime.
    pub fn spawn<S: Service>(&mut self, service: S) {
        let name = service.name();
        let entry = self.board.entry(name, service.pace().lag);
        let task = tokio::spawn(run(service, entry.clone(), self.shutdown.clone()));
        let watch = tokio::spawn(async move {
            match task.await {
                Ok(()) => entry.stopped(None),
                Err(e) => {
                    let why = if e.is_panic() {
                        format!("panicked: {}", panic_text(e.into_panic()))
                    } else {
                        "cancelled".to_owned()
                    };
                    tracing::error!(service = name, error = %why, "{name}: stopped");
                    entry.stopped(Some(&why));
                }
            }
        });
        self.tasks.push((name, watch));
    }

    /// The shutdown signal every service watches (for loops started elsewhere).
    pub fn shutdown_signal(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// The services' health, read by `/metrics` and `/readyz`.
    pub fn health(&self) -> Arc<dyn WorkerHealth> {
        Arc::new(self.board.clone())
    }

    /// Sends the shutdown signal and waits up to `deadline` for every service to finish
    /// the run in hand; returns the names of those that had not (they are abandoned).
    pub async fn shutdown(self, deadline: Duration) -> Vec<&'static str> {
        self.trigger.trigger();
        let until = tokio::time::Instant::now() + deadline;
        let mut late = Vec::new();
        for (name, task) in self.tasks {
            if tokio::time::timeout_at(until, task).await.is_err() {
                late.push(name);
            }
        }
        late
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// A failure streak, for logging it once (and "still failing" once a minute).
struct Streak {
    failures: u64,
    last_warned: Option<tokio::time::Instant>,
}

impl Streak {
    fn failed(&mut self, name: &str, f: &Failure, retry_in: Duration) {
        self.failures += 1;
        let retry_in_ms = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
        let due = self
            .last_warned
            .is_none_or(|at| at.elapsed() >= STILL_FAILING_EVERY);
        if self.failures == 1 {
            tracing::warn!(service = name, error = %f.0, retry_in_ms, "{name}: failed; retrying");
        } else if due {
            tracing::warn!(service = name, error = %f.0, attempts = self.failures, "{name}: still failing");
        } else {
            tracing::debug!(service = name, error = %f.0, attempts = self.failures, retry_in_ms, "{name}: failed again");
            return;
        }
        self.last_warned = Some(tokio::time::Instant::now());
    }

    fn succeeded(&mut self, name: &str) {
        if self.failures > 0 {
            tracing::info!(service = name, attempts = self.failures, "{name}: recovered");
        }
        self.failures = 0;
        self.last_warned = None;
    }
}

/// The loop of one service.
async fn run<S: Service>(mut service: S, entry: Entry, stop: Shutdown) {
    let name = service.name();
    let pace = service.pace();
    let ctx = Ctx {
        shutdown: stop.clone(),
        lag: entry.lag.clone(),
    };
    if !pace.first.is_zero() && !stop.sleep(pace.first).await {
        return;
    }
    let mut backoff = FIRST_BACKOFF;
    let mut streak = Streak {
        failures: 0,
        last_warned: None,
    };
    while !stop.is_triggered() {
        entry.due();
        let wait = match service.run_once(&ctx).await {
            Ok(next) => {
                entry.ok();
                streak.succeeded(name);
                backoff = FIRST_BACKOFF;
                match next {
                    Next::Now => {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    Next::Wait => pace.every,
                    Next::Within(d) => d,
                }
            }
            Err(f) => {
                entry.failed(&f.0);
                streak.failed(name, &f, backoff);
                let wait = backoff;
                backoff = (backoff * 2).min(pace.max_backoff.max(FIRST_BACKOFF));
                if !stop.sleep(wait).await {
                    return;
                }
                continue;
            }
        };
        let woken = async {
            match &pace.wake {
                Some(w) => w.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = woken => {}
            () = stop.triggered() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use flywheel_core::health::{LagUnit, ServiceHealth, ServiceState};

    use super::*;
    use crate::service::Pace;

    /// Fails its first `failures` runs, then succeeds; counts its runs.
    struct Flaky {
        failures: u32,
        runs: Arc<AtomicU32>,
    }

    impl Service for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }

        fn pace(&self) -> Pace {
            Pace::every(Duration::from_secs(3600)).lag_in(LagUnit::Events)
        }

        async fn run_once(&mut self, ctx: &Ctx) -> Result<Next, Failure> {
            let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            ctx.set_lag(7);
            if n <= self.failures {
                return Err(Failure(format!("store unavailable (attempt {n})")));
            }
            Ok(Next::Wait)
        }
    }

    /// Panics on its first run.
    struct Panicky;

    impl Service for Panicky {
        fn name(&self) -> &'static str {
            "panicky"
        }

        fn pace(&self) -> Pace {
            Pace::every(Duration::from_secs(1))
        }

        async fn run_once(&mut self, _: &Ctx) -> Result<Next, Failure> {
            panic!("bug in the service");
        }
    }

    fn health_of(workers: &Workers, name: &str) -> ServiceHealth {
        workers
            .health()
            .services()
            .into_iter()
            .find(|s| s.name == name)
            .expect("service listed")
    }

    /// Lets the paused clock run until `ok` holds (each step advances virtual time).
    async fn until(workers: &Workers, name: &str, ok: impl Fn(&ServiceHealth) -> bool) -> ServiceHealth {
        for _ in 0..10_000 {
            let h = health_of(workers, name);
            if ok(&h) {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "{name} never reached the expected health: {:?}",
            health_of(workers, name)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_service_is_retried_with_backoff_and_shows_its_error() {
        let runs = Arc::new(AtomicU32::new(0));
        let mut workers = Workers::new();
        workers.spawn(Flaky {
            failures: 3,
            runs: runs.clone(),
        });
        let failing = until(&workers, "flaky", |h| h.errors >= 1).await;
        assert_eq!(failing.state, ServiceState::Failing);
        assert!(failing
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("store unavailable")));
        assert!(failing.last_error_at.is_some());
        assert_eq!((failing.lag, failing.lag_unit), (7, LagUnit::Events));
        // The retries wait 100 ms, 200 ms, 400 ms: after 3 failures, the 4th run succeeds
        // no sooner than 700 ms after the first.
        let started = tokio::time::Instant::now();
        let ok = until(&workers, "flaky", |h| h.last_ok_at.is_some()).await;
        assert!(
            started.elapsed() >= Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(ok.state, ServiceState::Running);
        assert_eq!(ok.errors, 3);
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        // The error stays visible after recovery.
        assert!(ok.last_error.as_deref().is_some_and(|e| e.contains("attempt 3")));
        assert!(workers.shutdown(Duration::from_secs(1)).await.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_every_service_promptly() {
        let mut workers = Workers::new();
        let runs = Arc::new(AtomicU32::new(0));
        workers.spawn(Flaky {
            failures: 0,
            runs: runs.clone(),
        });
        // Fails forever: the signal must cut its backoff short.
        workers.spawn(Flaky {
            failures: u32::MAX,
            runs: Arc::new(AtomicU32::new(0)),
        });
        let signal = workers.shutdown_signal();
        let board = workers.health();
        until(&workers, "flaky", |h| h.last_ok_at.is_some()).await;
        let late = workers.shutdown(Duration::from_secs(1)).await;
        assert!(late.is_empty(), "{late:?}");
        assert!(signal.is_triggered());
        assert!(board.services().iter().all(|s| s.state == ServiceState::Stopped));
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "an hourly job ran once and stopped waiting"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_service_shows_as_stopped_with_its_panic() {
        let mut workers = Workers::new();
        workers.spawn(Panicky);
        let h = until(&workers, "panicky", |h| h.state == ServiceState::Stopped).await;
        assert!(
            h.last_error
                .as_deref()
                .is_some_and(|e| e.contains("bug in the service")),
            "{h:?}"
        );
        assert_eq!(h.errors, 1);
    }
}
