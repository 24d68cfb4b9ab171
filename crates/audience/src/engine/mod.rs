//! The audience engine: the live [`State`] of every profile, kept up to date from
//! committed ingest batches and the passing of time, and the service functions the
//! API and the CLI call (definitions, counts, members, profile views, RFM).
//!
//! Threading: the state sits behind one `RwLock`. Queries take the read lock. One
//! writer thread (`audience-writer`) applies committed batches handed over by
//! [`Audience::observe`] (which never blocks the ingest writer) and ticks the clock
//! every `tick_ms`, so segment entry/exit caused by an event or by time alone is
//! published on the [`Bus`] well within a second. Definition changes take the write
//! lock from the calling task after their store writes are done.

mod defs;
mod fold;
mod manage;
mod query;
mod rfm;
mod snapshot;
mod state;

use std::ops::Range;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration as StdDuration;

use flywheel_core::bus::Bus;
use flywheel_core::time::to_millis;
use flywheel_core::Clock;
use flywheel_store::{ApplyOutcome, NewEvent, Store};

pub use defs::DefKind;
pub use manage::{SegmentInput, TagInput};
pub use query::{MemberPage, ProfileAudience, SegmentInfo, TagInfo};
pub use rfm::RfmRow;
pub use state::State;

use crate::config::AudienceConfig;
use crate::definitions::Transition;
use crate::Result;

/// What the writer thread is handed.
enum Work {
    /// A committed batch.
    Batch(Arc<Vec<NewEvent>>, Range<usize>, ApplyOutcome),
    /// Answer once everything queued before has been applied.
    Barrier(mpsc::Sender<()>),
}

struct Shared {
    state: RwLock<State>,
    store: Store,
    bus: Arc<dyn Bus>,
    clock: Arc<dyn Clock>,
    work: Mutex<Option<mpsc::Sender<Work>>>,
}

/// A handle to the engine (cheap to clone).
#[derive(Clone)]
pub struct Audience {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Audience {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audience").finish_non_exhaustive()
    }
}

impl Audience {
    /// Rebuilds the state from `store` and starts the writer thread.
    pub async fn open(
        store: Store,
        config: AudienceConfig,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
    ) -> Result<Audience> {
        let now = to_millis(clock.now());
        let state = manage::rebuild(&store, config, now).await?;
        let tick = StdDuration::from_millis(state.config.tick_ms.max(10));
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            store,
            bus,
            clock,
            work: Mutex::new(Some(tx)),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("audience-writer".into())
            .spawn(move || writer(weak, rx, tick))
            .map_err(|e| crate::Error::Internal(format!("cannot start the audience writer: {e}")))?;
        Ok(Audience { shared })
    }

    /// Hands a committed batch to the writer thread (never blocks).
    pub fn observe(&self, events: &Arc<Vec<NewEvent>>, range: Range<usize>, outcome: &ApplyOutcome) {
        let work = Work::Batch(events.clone(), range, outcome.clone());
        if let Some(tx) = self.shared.work.lock().ok().as_ref().and_then(|g| g.as_ref()) {
            let _ = tx.send(work);
        }
    }

    /// Waits until every batch handed over before this call has been applied.
    pub async fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        let sent = self
            .shared
            .work
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|w| w.send(Work::Barrier(tx)).is_ok()))
            .unwrap_or(false);
        if sent {
            let _ = tokio::task::spawn_blocking(move || rx.recv()).await;
        }
    }

    /// Runs the time-driven updates now (the writer also does it every `tick_ms`).
    pub fn tick(&self) {
        tick(&self.shared);
    }

    /// The current time of the engine's clock (ms).
    pub fn now(&self) -> i64 {
        to_millis(self.shared.clock.now())
    }

    /// Stops the writer thread (after it drains what is queued).
    pub fn stop(&self) {
        if let Ok(mut g) = self.shared.work.lock() {
            g.take();
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.shared.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.shared.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self) -> &Store {
        &self.shared.store
    }

    fn publish(&self, transitions: Vec<Transition>) {
        publish(&self.shared, transitions);
    }
}

fn publish(shared: &Shared, transitions: Vec<Transition>) {
    for t in transitions {
        shared.bus.publish(t.event());
    }
}

fn tick(shared: &Shared) {
    let now = to_millis(shared.clock.now());
    let out = shared.state.write().unwrap_or_else(|p| p.into_inner()).tick(now);
    publish(shared, out);
}

fn writer(shared: std::sync::Weak<Shared>, rx: mpsc::Receiver<Work>, tick_every: StdDuration) {
    let mut last_tick = std::time::Instant::now();
    loop {
        let wait = tick_every.saturating_sub(last_tick.elapsed());
        let got = rx.recv_timeout(wait);
        let Some(shared) = shared.upgrade() else { return };
        match got {
            Ok(Work::Batch(events, range, outcome)) => {
                let now = to_millis(shared.clock.now());
                let out = shared
                    .state
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .apply_batch(&events, range, &outcome, now);
                publish(&shared, out);
            }
            Ok(Work::Barrier(done)) => {
                let _ = done.send(());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if last_tick.elapsed() >= tick_every {
            tick(&shared);
            last_tick = std::time::Instant::now();
        }
    }
}
