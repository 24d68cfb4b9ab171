//! One truth for audiences across processes: every process of a scale-out deployment
//! folds the same shared log of committed ingest batches
//! ([`flywheel_store::batch_log`]) in the same order, whichever process ingested them,
//! so all answer the same count for the same expression at the same log position
//! ([`Audience::position`]). Its own commits only wake the follower; so does a
//! `log.advanced` message from another process on the bus, and it polls besides.
//!
//! Only the process holding the recorder lease logs and publishes transitions: every
//! process computes them, one writes them, so a transition fires once per profile, not
//! once per process. A process that gains the lease reconciles first (logs what the
//! stored membership lacks), which also covers whatever the previous holder computed
//! but did not log before it died.
//!
//! Definitions (tags, segments) and manual tags changed through another process are
//! re-read from the store when the bus says so and on a slower poll.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use flywheel_core::bus::{Bus, CacheKind, DomainEvent};
use flywheel_core::time::to_millis;
use flywheel_core::Event;
use flywheel_store::transitions::Cause;
use flywheel_store::{ApplyOutcome, NewEvent};

use super::defs::{DefKind, Entry};
use super::manage::{segment_entry, tag_entry};
use super::recorder::{Lease, RECORDER_LEASE};
use super::{Audience, Shared, Work};
use crate::definitions::{SegmentDef, TagDef};
use crate::Result;

/// Turns a stored event back into what ingest stored for it (the order an
/// `Order Completed` placed, the refund an `Order Refunded` recorded): the ingest
/// crate's reading of the e-commerce spec, handed in by the binary.
pub trait EventDecoder: Send + Sync {
    /// The event as ingest materialised it; `source` is its write key, if any.
    fn decode(&self, event: Event, source: Option<String>) -> NewEvent;
}

/// How a process follows the shared log.
#[derive(Clone)]
pub struct Following {
    /// Rebuilds orders and adjustments of stored events.
    pub decoder: Arc<dyn EventDecoder>,
    /// This process's id as a lease holder (unique per process).
    pub holder: String,
    /// How often the log is read when nothing wakes the follower.
    pub poll: Duration,
    /// How often stored definitions and manual tags are compared with the live ones.
    pub definitions_poll: Duration,
    /// How long a claim of the recorder lease lasts (renewed at a fifth of it).
    pub lease_ttl: Duration,
}

impl Following {
    /// Defaults: log poll 250 ms, definitions every 2 s, lease 10 s.
    pub fn new(decoder: Arc<dyn EventDecoder>, holder: String) -> Following {
        Following {
            decoder,
            holder,
            poll: Duration::from_millis(250),
            definitions_poll: Duration::from_secs(2),
            lease_ttl: Duration::from_secs(10),
        }
    }
}

/// Events read per round at most (whole batches).
const READ_EVENTS: i64 = 5_000;

/// Reads the log after the state's position and hands each batch to the writer thread,
/// in order, until the audience is dropped.
pub(super) async fn follow(
    shared: Weak<Shared>,
    following: Following,
    wake: Arc<tokio::sync::Notify>,
    bus: Arc<dyn Bus>,
) {
    let mut rx = bus.subscribe();
    let mut sent = match shared.upgrade() {
        Some(s) => s.state.read().unwrap_or_else(|p| p.into_inner()).position,
        None => return,
    };
    let mut delay = Duration::from_millis(50);
    loop {
        let Some(s) = shared.upgrade() else { return };
        let from = sent;
        let read = s
            .store
            .read_with(move |c| flywheel_store::batch_log::after(c, from, READ_EVENTS))
            .await;
        let more = match read {
            Ok(batches) => {
                delay = Duration::from_millis(50);
                let more = !batches.is_empty();
                for b in batches {
                    sent = b.last_seq;
                    let n = b.events.len();
                    let mut events = Vec::with_capacity(n);
                    let mut profiles = Vec::with_capacity(n);
                    for e in b.events {
                        let decoded = following.decoder.decode(e.event, e.source);
                        events.push(if e.system_write {
                            decoded.system_write()
                        } else {
                            decoded
                        });
                        profiles.push(e.profile);
                    }
                    let mut outcome = ApplyOutcome::from_flags(vec![true; n]);
                    outcome.profiles = profiles;
                    outcome.merges = b.merges;
                    outcome.last_seq = Some(b.last_seq);
                    let work = Work::Batch(Arc::new(events), 0..n, outcome);
                    if let Some(tx) = s.work.lock().ok().as_ref().and_then(|g| g.as_ref()) {
                        let _ = tx.send(work);
                    }
                }
                more
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the shared event log failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        drop(s);
        if more {
            continue;
        }
        let deadline = tokio::time::sleep(following.poll);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = wake.notified() => break,
                _ = &mut deadline => break,
                got = rx.recv() => match got {
                    Ok(e) => match &*e {
                        DomainEvent::LogAdvanced(at) if at.seq > sent => break,
                        DomainEvent::Invalidated(i)
                            if matches!(i.what, CacheKind::Definitions | CacheKind::ManualTags) =>
                        {
                            if let Some(s) = shared.upgrade() {
                                if let Some(w) = &s.defs_wake {
                                    w.notify_one();
                                }
                            }
                        }
                        _ => {}
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        // No bus any more: poll only.
                        (&mut deadline).await;
                        break;
                    }
                },
            }
        }
    }
}

/// Claims and renews the recorder lease; reconciles each time this process gains it.
pub(super) async fn hold_lease(shared: Weak<Shared>, following: Following, lease: Arc<Lease>) {
    let every = following.lease_ttl / 5;
    loop {
        tokio::time::sleep(every).await;
        if !claim_lease(&shared, &following, &lease).await {
            return;
        }
    }
}

/// One claim or renewal of the recorder lease (reconciling when this process gains it);
/// false once the audience is gone.
pub(super) async fn claim_lease(shared: &Weak<Shared>, following: &Following, lease: &Arc<Lease>) -> bool {
    let ttl = i64::try_from(following.lease_ttl.as_millis())
        .unwrap_or(10_000)
        .max(1_000);
    let Some(s) = shared.upgrade() else { return false };
    let now = to_millis(s.clock.now());
    let holder = lease.holder.clone();
    let claimed = s
        .store
        .write_with(move |c| flywheel_store::leases::claim(c, RECORDER_LEASE, &holder, now, ttl))
        .await;
    match claimed {
        Ok(true) => {
            if !lease.held.swap(true, Ordering::SeqCst) {
                tracing::info!(holder = %lease.holder, "this process now records audience transitions");
                Audience { shared: s.clone() }.reconcile();
            }
        }
        Ok(false) => {
            if lease.held.swap(false, Ordering::SeqCst) {
                tracing::info!("another process now records audience transitions");
            }
        }
        Err(e) => {
            // Unsure: stop claiming to be the holder (the fenced writes check anyway).
            lease.held.store(false, Ordering::SeqCst);
            tracing::warn!(error = %e, "renewing the audience recorder lease failed");
        }
    }
    true
}

/// Re-reads definitions and manual tags from the store on every wake-up and poll.
pub(super) async fn sync_definitions(
    shared: Weak<Shared>,
    following: Following,
    wake: Arc<tokio::sync::Notify>,
) {
    loop {
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(following.definitions_poll) => {}
        }
        let Some(s) = shared.upgrade() else { return };
        let audience = Audience { shared: s };
        if let Err(e) = audience.sync_from_store().await {
            tracing::warn!(error = %e, "re-reading audience definitions failed");
        }
    }
}

/// The JSON a definition is stored as, for comparing a stored one with a live one.
fn stored_json(e: &Entry) -> Option<serde_json::Value> {
    match (&e.tag, &e.segment) {
        (Some(t), _) => serde_json::to_value(t).ok(),
        (_, Some(s)) => serde_json::to_value(s).ok(),
        _ => None,
    }
}

impl Audience {
    /// Brings the live definitions and manual tags in line with the store (changes made
    /// through another process): new and changed definitions are installed as a local
    /// change would be (the recorder-lease holder logs their transitions), deleted ones
    /// removed, manual tag members added or removed.
    pub async fn sync_from_store(&self) -> Result<()> {
        let stored = self.store().read_with(super::snapshot::read_definitions).await?;
        let live: HashMap<(DefKind, String), Option<serde_json::Value>> = self
            .read()
            .registry
            .entries()
            .iter()
            .filter(|e| !e.tag.as_ref().is_some_and(|t| t.builtin))
            .map(|e| ((e.kind, e.name.clone()), stored_json(e)))
            .collect();
        let mut wanted = BTreeSet::new();
        // Tags first: segments may use them.
        let all = stored
            .tags
            .iter()
            .map(|(n, b)| (DefKind::Tag, n, b))
            .chain(stored.segments.iter().map(|(n, b)| (DefKind::Segment, n, b)));
        for (kind, name, body) in all {
            wanted.insert((kind, name.clone()));
            let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
                continue;
            };
            let current = live.get(&(kind, name.clone()));
            if current.is_some_and(|v| v.as_ref() == Some(&value)) {
                continue;
            }
            let entry = {
                let s = self.read();
                match kind {
                    DefKind::Tag => serde_json::from_value::<TagDef>(value)
                        .map_err(|e| crate::Error::Invalid(e.to_string()))
                        .and_then(|d| tag_entry(d, &s)),
                    DefKind::Segment => serde_json::from_value::<SegmentDef>(value)
                        .map_err(|e| crate::Error::Invalid(e.to_string()))
                        .and_then(|d| segment_entry(d, &s)),
                }
            };
            match entry {
                Ok(e) => self.apply_installed(e, current.is_some()).await?,
                Err(e) => {
                    tracing::warn!(%name, error = %e, "a stored definition does not check here; skipped")
                }
            }
        }
        for (kind, name) in live.keys() {
            if !wanted.contains(&(*kind, name.clone())) {
                self.apply_deleted(*kind, name);
            }
        }
        self.sync_manual_tags().await
    }

    /// Manual tag members as stored, applied where they differ from the live ones.
    async fn sync_manual_tags(&self) -> Result<()> {
        let rows = self
            .store()
            .read_with(flywheel_store::audience::manual_tags)
            .await?;
        let mut stored: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (tag, pid) in rows {
            stored.entry(tag).or_default().insert(pid);
        }
        let now = self.now();
        let mut s = self.write();
        let manual: Vec<String> = s
            .registry
            .entries()
            .iter()
            .filter(|e| e.kind == DefKind::Tag && e.plan.is_none())
            .map(|e| e.name.clone())
            .collect();
        let mut out = Vec::new();
        let mut rows_touched = Vec::new();
        for tag in manual {
            let want = stored.remove(&tag).unwrap_or_default();
            let have: BTreeSet<String> = s.member_ids(DefKind::Tag, &tag).into_iter().collect();
            let added: Vec<(u32, bool)> = want.difference(&have).map(|pid| (s.row_of(pid), true)).collect();
            let removed: Vec<(u32, bool)> = have
                .difference(&want)
                .filter_map(|pid| s.ids.row(pid))
                .map(|row| (row, false))
                .collect();
            for (row, on) in added.into_iter().chain(removed) {
                if let Some(t) = s.set_manual_tag(&tag, row, on, now) {
                    rows_touched.push(row);
                    out.push(t);
                }
            }
        }
        if !rows_touched.is_empty() {
            out.extend(s.evaluate_rows(&rows_touched, now, Cause::Event));
        }
        self.record(out);
        Ok(())
    }

    /// Tells the other processes that stored definitions or manual tags changed here
    /// (`cache.invalidated` on the bus), so they re-read them now.
    pub(super) fn invalidate(&self, what: CacheKind, key: &str) {
        if self.shared.log_wake.is_some() {
            self.shared
                .bus
                .publish(DomainEvent::Invalidated(flywheel_core::bus::Invalidation {
                    what,
                    key: Some(key.to_owned()),
                }));
        }
    }

    /// The shared log position this process's audience stands at: counts answered at
    /// the same position agree across processes.
    pub fn position(&self) -> i64 {
        self.read().position
    }

    /// Waits (up to `timeout`) until the audience stands at `position` or beyond;
    /// returns the position reached.
    pub async fn wait_for_position(&self, position: i64, timeout: Duration) -> i64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let at = self.position();
            if at >= position || tokio::time::Instant::now() >= deadline {
                return at;
            }
            if let Some(w) = &self.shared.log_wake {
                w.notify_one();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
