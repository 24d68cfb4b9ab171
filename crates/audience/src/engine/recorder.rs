//! The recorder: makes every transition the engine computes durable, in the order it was
//! computed, before it is published on the bus.
//!
//! The engine hands over its transitions (and definition changes: a new definition's
//! first members, a deleted one, the reconciliation at start) on an unbounded channel
//! while it still holds the state lock, so the channel's order is the order the state
//! changed in. One task writes them to the transitions log ([`flywheel_store::transitions`])
//! and retries a failed write with backoff until it succeeds: a store outage delays
//! transitions, it never drops one. What a crash loses from the channel the
//! reconciliation at the next start finds again ([`Record::Reconcile`]): the membership
//! computed from the store is compared with the stored one and the differences logged.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flywheel_core::bus::Bus;
use flywheel_core::faults::Fault;
use flywheel_core::time::to_millis;
use flywheel_core::Clock;
use flywheel_store::conn::Conn;
use flywheel_store::transitions::{self as log, Cause, Change, Kind, NewTransition};
use flywheel_store::Store;
use tokio::sync::{mpsc, oneshot};

use super::defs::DefKind;
use crate::definitions::Transition;

/// Transitions written per transaction at most (more wait for the next one).
const BATCH: usize = 5_000;
/// The longest wait between two attempts at a failed write.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often old log rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The members of one segment or tag: `(kind, name, profile ids)`.
pub(super) type Membership = (Kind, String, Vec<String>);

/// What the recorder is handed, in the order the state changed.
pub(super) enum Record {
    /// Transitions to log, then publish.
    Append(Vec<Transition>),
    /// A new definition's first members, taken silently.
    Seed(Membership),
    /// A deleted definition.
    Forget(Kind, String),
    /// The membership of definitions at `at` (ms), compared with the stored one: every
    /// definition after the rebuild at start (`whole`: stored ones not listed are
    /// forgotten), or one found in the store that another process created.
    Reconcile(Vec<Membership>, i64, bool),
    /// Answer once everything handed over before has been written.
    Barrier(oneshot::Sender<()>),
}

/// The store kind of a definition kind.
pub(super) fn kind_of(k: DefKind) -> Kind {
    match k {
        DefKind::Segment => Kind::Segment,
        DefKind::Tag => Kind::Tag,
    }
}

fn to_new(t: &Transition) -> NewTransition {
    NewTransition {
        kind: if t.kind == DefKind::Tag.as_str() {
            Kind::Tag
        } else {
            Kind::Segment
        },
        name: t.name.clone(),
        profile_id: t.profile_id.clone(),
        change: if t.entered {
            Change::Entered
        } else {
            Change::Exited
        },
        at: t.at,
        cause: t.cause,
    }
}

/// The task that writes what it is handed to the transitions log.
pub(super) struct Recorder {
    pub store: Store,
    pub bus: Arc<dyn Bus>,
    pub clock: Arc<dyn Clock>,
    /// Test-only injected failures of the writes (`transitions.append`).
    pub fault: Arc<Fault>,
    /// How long passed rows are kept (ms).
    pub retention_ms: i64,
    /// Whether and when this process writes the log.
    pub keeping: Keeping,
}

/// Whether a process writes the transitions log.
#[derive(Clone)]
pub(super) enum Keeping {
    /// Always: the only server on the store (embedded mode).
    Always,
    /// Never: a short-lived CLI process; transitions are only published.
    Never,
    /// While this process holds the recorder lease (one of many processes): every write
    /// checks the lease in its transaction, so two processes never log the same
    /// transition; while another process holds it, nothing is logged nor published.
    Lease(Arc<Lease>),
}

/// The recorder lease of one process.
pub struct Lease {
    /// This process's holder id.
    pub holder: String,
    /// Whether this process held the lease at its last claim.
    pub held: std::sync::atomic::AtomicBool,
}

/// The lease name of the transitions recorder.
pub const RECORDER_LEASE: &str = "audience.recorder";

impl Keeping {
    /// Whether transitions are logged now.
    pub(super) fn writes(&self) -> bool {
        match self {
            Keeping::Always => true,
            Keeping::Never => false,
            Keeping::Lease(l) => l.held.load(std::sync::atomic::Ordering::SeqCst),
        }
    }
}

impl Recorder {
    /// Runs until every sender is gone and all that was handed over is written.
    pub(super) async fn run(self, mut rx: mpsc::UnboundedReceiver<Record>) {
        let mut held: Option<Record> = None;
        let mut pruned: Option<Instant> = None;
        loop {
            let next = match held.take() {
                Some(r) => r,
                None => match rx.recv().await {
                    Some(r) => r,
                    None => return,
                },
            };
            if !self.keeping.writes() {
                match next {
                    Record::Append(batch) if matches!(self.keeping, Keeping::Never) => {
                        publish(self.bus.as_ref(), batch)
                    }
                    Record::Append(_) => {}
                    Record::Barrier(done) => {
                        let _ = done.send(());
                    }
                    Record::Seed((kind, name, members)) if matches!(self.keeping, Keeping::Lease(_)) => {
                        // The definition's creator seeds it even while another process
                        // keeps the log (that one reconciles it when it finds it).
                        let members = Arc::new(members);
                        self.until_written_unfenced(move |c| log::seed_untracked(c, kind, &name, &members))
                            .await;
                    }
                    Record::Seed(_) | Record::Forget(..) | Record::Reconcile(..) => {}
                }
                continue;
            }
            match next {
                Record::Append(mut batch) => {
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(Record::Append(more)) => batch.extend(more),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let rows: Arc<Vec<NewTransition>> = Arc::new(batch.iter().map(to_new).collect());
                    if self.until_written(move |c| log::append(c, &rows)).await.is_some() {
                        publish(self.bus.as_ref(), batch);
                    }
                }
                Record::Seed((kind, name, members)) => {
                    let members = Arc::new(members);
                    self.until_written(move |c| log::seed(c, kind, &name, &members))
                        .await;
                }
                Record::Forget(kind, name) => {
                    self.until_written(move |c| log::forget(c, kind, &name)).await;
                }
                Record::Reconcile(live, at, whole) => {
                    let live = Arc::new(live);
                    let Some((logged, seeded)) =
                        self.until_written(move |c| reconcile(c, &live, at, whole)).await
                    else {
                        continue;
                    };
                    tracing::info!(
                        logged,
                        seeded,
                        "audience reconciled: {logged} transitions found at start"
                    );
                }
                Record::Barrier(done) => {
                    let _ = done.send(());
                }
            }
            if pruned.is_none_or(|p| p.elapsed() >= PRUNE_EVERY) {
                pruned = Some(Instant::now());
                self.prune().await;
            }
        }
    }

    /// Runs `f` in a write transaction until it succeeds, backing off between attempts;
    /// `None` when this process turned out not to hold the recorder lease (nothing was
    /// written: the holder logs it, or finds it when it reconciles).
    async fn until_written<T: Send + 'static>(
        &self,
        f: impl Fn(&mut dyn Conn) -> flywheel_store::Result<T> + Clone + Send + 'static,
    ) -> Option<T> {
        let mut delay = Duration::from_millis(50);
        let lease = match &self.keeping {
            Keeping::Lease(l) => Some(l.clone()),
            _ => None,
        };
        loop {
            let attempt = if self.fault.take() {
                Err(flywheel_store::Error::Connection(
                    "injected store fault at transitions.append".into(),
                ))
            } else {
                let (f, lease) = (f.clone(), lease.clone());
                let now = to_millis(self.clock.now());
                self.store
                    .write_with(move |c| match &lease {
                        Some(l) if !flywheel_store::leases::holds(c, RECORDER_LEASE, &l.holder, now)? => {
                            Ok(None)
                        }
                        _ => f(c).map(Some),
                    })
                    .await
            };
            match attempt {
                Ok(None) => {
                    if let Some(l) = &lease {
                        l.held.store(false, std::sync::atomic::Ordering::SeqCst);
                        tracing::info!("the audience recorder lease moved to another process");
                    }
                    return None;
                }
                Ok(v) => return v,
                Err(e) => {
                    tracing::warn!(error = %e, "writing segment and tag transitions failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Runs `f` in a write transaction until it succeeds (no lease check).
    async fn until_written_unfenced<T: Send + 'static>(
        &self,
        f: impl Fn(&mut dyn Conn) -> flywheel_store::Result<T> + Clone + Send + 'static,
    ) -> T {
        let mut delay = Duration::from_millis(50);
        loop {
            match self.store.write_with(f.clone()).await {
                Ok(v) => return v,
                Err(e) => {
                    tracing::warn!(error = %e, "seeding a new segment or tag failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn prune(&self) {
        let before = to_millis(self.clock.now()).saturating_sub(self.retention_ms);
        match self.store.write_with(move |c| log::prune(c, before)).await {
            Ok(n) if n > 0 => tracing::debug!(pruned = n, "old segment and tag transitions pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning segment and tag transitions failed"),
        }
        // The shared log of ingest batches is kept as long: a process whose position is
        // older (stopped for longer) rebuilds from the store instead of following it.
        match self
            .store
            .write_with(move |c| flywheel_store::batch_log::prune(c, before))
            .await
        {
            Ok(n) if n > 0 => tracing::debug!(pruned = n, "old ingest batches of the shared log pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning the shared log of ingest batches failed"),
        }
    }
}

/// Logs the differences between the `live` membership and the stored one (tracked
/// definitions), seeds untracked definitions silently, forgets stored ones no longer
/// defined; returns `(transitions logged, definitions seeded)`.
fn reconcile(
    c: &mut dyn Conn,
    live: &[Membership],
    at: i64,
    whole: bool,
) -> flywheel_store::Result<(usize, usize)> {
    let tracked = log::tracked(c)?;
    let (mut logged, mut seeded) = (0, 0);
    for (kind, name, members) in live {
        if !tracked.contains(&(*kind, name.clone())) {
            log::seed(c, *kind, name, members)?;
            seeded += 1;
            continue;
        }
        let stored = log::members(c, *kind, name)?;
        let now_in: BTreeSet<&str> = members.iter().map(String::as_str).collect();
        let change = |profile: &str, change| NewTransition {
            kind: *kind,
            name: name.clone(),
            profile_id: profile.to_owned(),
            change,
            at,
            cause: Cause::Reconcile,
        };
        let mut diff: Vec<NewTransition> = stored
            .iter()
            .filter(|p| !now_in.contains(p.as_str()))
            .map(|p| change(p, Change::Exited))
            .collect();
        diff.extend(
            now_in
                .iter()
                .filter(|p| !stored.contains(**p))
                .map(|p| change(p, Change::Entered)),
        );
        logged += log::append(c, &diff)?;
    }
    if !whole {
        return Ok((logged, seeded));
    }
    let defined: BTreeSet<(Kind, &str)> = live.iter().map(|(k, n, _)| (*k, n.as_str())).collect();
    for (kind, name) in &tracked {
        if !defined.contains(&(*kind, name.as_str())) {
            log::forget(c, *kind, name)?;
        }
    }
    Ok((logged, seeded))
}

/// Publishes logged transitions on the bus (`segment.entered`, `tag.removed`, ...).
fn publish(bus: &dyn Bus, transitions: Vec<Transition>) {
    for t in transitions {
        bus.publish(t.event());
    }
}
