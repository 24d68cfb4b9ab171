//! The audience engine: the live [`State`] of every profile, kept up to date from
//! committed ingest batches and the passing of time, and the service functions the
//! API and the CLI call (definitions, counts, members, profile views, RFM).
//!
//! Threading: the state sits behind one `RwLock`. Queries take the read lock. One
//! writer thread (`audience-writer`) applies committed batches handed over by
//! [`Audience::observe`] (which never blocks the ingest writer) and ticks the clock
//! every `tick_ms`, so segment entry/exit caused by an event or by time alone is
//! computed well within a second. Definition changes take the write lock from the
//! calling task after their store writes are done.
//!
//! Every transition is handed, under the state lock, to the [`recorder`] task, which
//! appends it to the durable transitions log and then publishes it on the [`Bus`];
//! [`Audience::reconcile`] at start logs what changed while nothing was recording.

mod defs;
mod fold;
mod follow;
mod ids;
mod manage;
pub mod persist;
mod query;
mod recorder;
mod rfm;
mod snapshot;
mod state;

use std::ops::Range;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration as StdDuration;

use flywheel_core::bus::Bus;
use flywheel_core::faults::Fault;
use flywheel_core::time::to_millis;
use flywheel_core::Clock;
use flywheel_store::{ApplyOutcome, NewEvent, Store};

pub use defs::DefKind;
pub use follow::{EventDecoder, Following};
pub use ids::{OrderOwners, ProfileIds};
pub use manage::{compile, register_definitions, seeded, SegmentInput, TagInput};
pub use query::{MemberPage, ProfileAudience, SegmentInfo, TagInfo};
pub use rfm::RfmRow;
pub use state::{Part, State};

use crate::config::AudienceConfig;
use crate::definitions::Transition;
use crate::Result;
use recorder::{kind_of, Keeping, Record, Recorder};

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
    clock: Arc<dyn Clock>,
    work: Mutex<Option<mpsc::Sender<Work>>>,
    /// Where transitions go to be logged, then published (see [`recorder`]).
    recorder: tokio::sync::mpsc::UnboundedSender<Record>,
    /// Test-only injected failures of the recorder's writes.
    append_fault: Arc<Fault>,
    /// Whether the state was loaded from its snapshot rather than rebuilt from the store.
    from_snapshot: bool,
    /// Following the shared log: wakes the follower (its own commits, `observe`).
    log_wake: Option<Arc<tokio::sync::Notify>>,
    /// Following the shared log: wakes the definitions re-read.
    defs_wake: Option<Arc<tokio::sync::Notify>>,
    /// Whether and when this process writes the transitions log.
    keeping: Keeping,
    /// Where definition changes are announced to the other processes.
    bus: Arc<dyn Bus>,
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
    /// Rebuilds the state from `store` and starts the writer thread and the recorder
    /// (on the current runtime). Call [`Audience::reconcile`] next where this process
    /// is the one that keeps the transitions log current (`serve`).
    pub async fn open(
        store: Store,
        config: AudienceConfig,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
    ) -> Result<Audience> {
        Audience::open_mode(store, config, bus, clock, Keeping::Always, None).await
    }

    /// [`Audience::open`] for a short-lived process that does not keep the transitions
    /// log (a CLI command beside a running server, whose engine keeps it): transitions
    /// are published on `bus` only; the server's reconciliation at its next start logs
    /// what this process changed.
    pub async fn open_unrecorded(
        store: Store,
        config: AudienceConfig,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
    ) -> Result<Audience> {
        Audience::open_mode(store, config, bus, clock, Keeping::Never, None).await
    }

    /// [`Audience::open`] for one of several processes on one store: the state follows
    /// the shared log of committed batches (whoever ingested them) instead of this
    /// process's commits alone, definitions changed elsewhere are re-read, and
    /// transitions are logged and published only while this process holds the recorder
    /// lease (see [`follow`](self::follow)).
    pub async fn open_following(
        store: Store,
        config: AudienceConfig,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
        following: Following,
    ) -> Result<Audience> {
        let lease = Arc::new(recorder::Lease {
            holder: following.holder.clone(),
            held: std::sync::atomic::AtomicBool::new(false),
        });
        let audience = Audience::open_mode(
            store,
            config,
            bus.clone(),
            clock,
            Keeping::Lease(lease.clone()),
            Some(following.clone()),
        )
        .await?;
        let weak = Arc::downgrade(&audience.shared);
        if let (Some(log), Some(defs)) = (&audience.shared.log_wake, &audience.shared.defs_wake) {
            tokio::spawn(follow::follow(weak.clone(), following.clone(), log.clone(), bus));
            tokio::spawn(follow::sync_definitions(
                weak.clone(),
                following.clone(),
                defs.clone(),
            ));
        }
        // The first claim before serving: a process alone on its store records from the
        // start (a definition created right away is seeded by the log's keeper).
        follow::claim_lease(&weak, &following, &lease).await;
        tokio::spawn(follow::hold_lease(weak, following, lease));
        Ok(audience)
    }

    /// Whether this process logs transitions now (always in embedded mode; while it
    /// holds the recorder lease when following the shared log).
    pub fn records_transitions(&self) -> bool {
        self.shared.keeping.writes()
    }

    /// Says that stored definitions or manual tags changed elsewhere (a bus message):
    /// a following process re-reads them now instead of at its next poll.
    pub fn definitions_changed(&self) {
        if let Some(w) = &self.shared.defs_wake {
            w.notify_one();
        }
    }

    async fn open_mode(
        store: Store,
        config: AudienceConfig,
        bus: Arc<dyn Bus>,
        clock: Arc<dyn Clock>,
        keeping: Keeping,
        following: Option<Following>,
    ) -> Result<Audience> {
        let now = to_millis(clock.now());
        let (state, from_snapshot) = manage::open_state(&store, config, now, following.is_some()).await?;
        let tick = StdDuration::from_millis(state.config.tick_ms.max(10));
        let (tx, rx) = mpsc::channel();
        let (record_tx, record_rx) = tokio::sync::mpsc::unbounded_channel();
        let append_fault = Arc::new(Fault::default());
        let recorder = Recorder {
            store: store.clone(),
            bus: bus.clone(),
            clock: clock.clone(),
            fault: append_fault.clone(),
            keeping: keeping.clone(),
            retention_ms: i64::from(state.config.transitions_retention_days).saturating_mul(86_400_000),
        };
        tokio::spawn(recorder.run(record_rx));
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            store,
            clock,
            work: Mutex::new(Some(tx)),
            recorder: record_tx,
            append_fault,
            from_snapshot,
            keeping,
            bus,
            log_wake: following.as_ref().map(|_| Arc::new(tokio::sync::Notify::new())),
            defs_wake: following.as_ref().map(|_| Arc::new(tokio::sync::Notify::new())),
        });
        let minutes = u64::from(shared_minutes(&shared));
        if minutes > 0 {
            let weak = Arc::downgrade(&shared);
            tokio::spawn(async move {
                let every = StdDuration::from_secs(minutes * 60);
                loop {
                    tokio::time::sleep(every).await;
                    let Some(shared) = weak.upgrade() else { return };
                    let audience = Audience { shared };
                    if let Err(e) = audience.save_snapshot().await {
                        tracing::warn!(error = %e, "saving the audience snapshot failed; the next start rebuilds");
                    }
                }
            });
        }
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("audience-writer".into())
            .spawn(move || writer(weak, rx, tick))
            .map_err(|e| crate::Error::Internal(format!("cannot start the audience writer: {e}")))?;
        Ok(Audience { shared })
    }

    /// Hands a committed batch to the writer thread (never blocks).
    pub fn observe(&self, events: &Arc<Vec<NewEvent>>, range: Range<usize>, outcome: &ApplyOutcome) {
        if let Some(wake) = &self.shared.log_wake {
            // Following the shared log: this commit is read from there, in order.
            wake.notify_one();
            return;
        }
        let work = Work::Batch(events.clone(), range, outcome.clone());
        if let Some(tx) = self.shared.work.lock().ok().as_ref().and_then(|g| g.as_ref()) {
            let _ = tx.send(work);
        }
    }

    /// Logs what changed while no process was recording: the membership just rebuilt from
    /// the store is compared with the stored membership and the differences appended to
    /// the transitions log (cause `reconcile`) — a user who crossed a boundary while the
    /// server was down, or whose transition was computed but not yet logged when it
    /// stopped. A definition without stored membership takes its members silently.
    pub fn reconcile(&self) {
        let s = self.read();
        let now = to_millis(self.shared.clock.now());
        let live = s
            .registry
            .entries()
            .iter()
            .map(|e| (kind_of(e.kind), e.name.clone(), s.member_ids(e.kind, &e.name)))
            .collect();
        let _ = self.shared.recorder.send(Record::Reconcile(live, now, true));
    }

    /// Makes the next `count` writes of the transitions log fail as a store outage would
    /// (test-only fault injection, `FLYWHEEL_FAULTS=transitions.append:N`).
    pub fn inject_append_failures(&self, count: i64) {
        self.shared.append_fault.arm(count);
    }

    /// Waits until every batch handed over before this call has been applied and every
    /// transition computed so far is logged.
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
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.shared.recorder.send(Record::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Runs the time-driven updates now (the writer also does it every `tick_ms`).
    pub fn tick(&self) {
        tick(&self.shared);
    }

    /// Whether this engine started from its saved state rather than a rebuild from the
    /// store (see [`persist`]).
    pub fn loaded_from_snapshot(&self) -> bool {
        self.shared.from_snapshot
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

    /// Hands transitions to the recorder; call it while holding the state's write lock,
    /// so the log's order is the order the state changed in.
    fn record(&self, transitions: Vec<Transition>) {
        record(&self.shared, transitions);
    }

    /// Hands a definition change to the recorder (under the state's write lock too).
    fn record_definition(&self, change: Record) {
        let _ = self.shared.recorder.send(change);
    }
}

/// Minutes between saved snapshots (0: none, also when there is nowhere to save).
fn shared_minutes(shared: &Shared) -> u32 {
    let s = shared.state.read().unwrap_or_else(|p| p.into_inner());
    if s.config.snapshot_dir.is_some() {
        s.config.snapshot_minutes
    } else {
        0
    }
}

fn record(shared: &Shared, transitions: Vec<Transition>) {
    if !transitions.is_empty() {
        let _ = shared.recorder.send(Record::Append(transitions));
    }
}

fn tick(shared: &Shared) {
    let now = to_millis(shared.clock.now());
    let mut state = shared.state.write().unwrap_or_else(|p| p.into_inner());
    let out = state.tick(now);
    record(shared, out);
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
                let mut state = shared.state.write().unwrap_or_else(|p| p.into_inner());
                let out = state.apply_batch(&events, range, &outcome, now);
                if let Some(at) = outcome.last_seq {
                    state.position = state.position.max(at);
                }
                record(&shared, out);
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
