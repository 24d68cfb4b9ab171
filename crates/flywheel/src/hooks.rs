//! What happens by itself when orders arrive: committed ingest batches are handed to the
//! audience engine, and paid orders earn points and settle referral rewards, refunds and
//! cancellations claw them back ([`OrderHooks`], durable behind a cursor in the store).
//! Observers never block the ingest writer.

use std::ops::Range;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use flywheel_audience::Audience;
use flywheel_core::bus::{Bus, BusMessage};
use flywheel_ingest::pipeline::CommitObserver;
use flywheel_loyalty::Loyalty;
use flywheel_promotions::referral::Referrals;
use flywheel_store::conn::{Conn, Param};
use flywheel_store::{log_cursor, ApplyOutcome, NewEvent, Store};

/// Several observers as one.
pub struct Observers(pub Vec<Arc<dyn CommitObserver>>);

impl CommitObserver for Observers {
    fn committed(&self, events: &Arc<Vec<NewEvent>>, range: Range<usize>, outcome: &ApplyOutcome) {
        for o in &self.0 {
            o.committed(events, range.clone(), outcome);
        }
    }
}

/// Hands every committed batch to the audience engine.
pub struct AudienceObserver(pub Audience);

impl CommitObserver for AudienceObserver {
    fn committed(&self, events: &Arc<Vec<NewEvent>>, range: Range<usize>, outcome: &ApplyOutcome) {
        self.0.observe(events, range, outcome);
    }
}

/// Tells the journey engine that events were committed (its tail reads them from the
/// store behind its own cursor; this only wakes it). Set once the engine exists.
#[derive(Default)]
pub struct JourneyObserver(pub std::sync::OnceLock<flywheel_journeys::Engine>);

impl CommitObserver for JourneyObserver {
    fn committed(&self, _: &Arc<Vec<NewEvent>>, _: Range<usize>, outcome: &ApplyOutcome) {
        if outcome.inserted > 0 {
            if let Some(e) = self.0.get() {
                e.events_committed();
            }
        }
    }
}

/// Paid orders earn points (R7.3) and reward a pending referral; a cancellation or a
/// full refund claws both back. Partial refunds leave points as they are. Either way the
/// member's tier is re-evaluated and a change published as `tier.changed`.
///
/// The work is read from the store, not queued in memory: one worker follows the event
/// log in `seq` order behind a cursor kept in `settings` (`order_hooks_cursor`), finds
/// the orders and adjustments those events recorded, applies them, and moves the cursor.
/// Every step is idempotent per order (`order:ID`, `clawback:ID` ledger keys), so what a
/// crash interrupts is applied again after a restart and nothing is lost or doubled; a
/// busy shop's points may lag behind its orders but never grow a queue in memory. The
/// first start begins at the end of the log (history earns nothing). The ingest observer
/// only wakes the worker; these writes never crowd the ingest writer.
pub struct OrderHooks {
    wake: Arc<tokio::sync::Notify>,
    drain: HooksDrain,
    busy: Busy,
}

/// When ingest last committed, so the hooks can leave the store's one writer to it: a
/// shop's events come first, its points follow.
#[derive(Clone)]
struct Busy {
    since: std::time::Instant,
    last_commit_ms: Arc<AtomicI64>,
}

impl Busy {
    fn now_ms(&self) -> i64 {
        i64::try_from(self.since.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn committed(&self) {
        self.last_commit_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Whether ingest committed within `ms`.
    fn within(&self, ms: i64) -> bool {
        self.now_ms() - self.last_commit_ms.load(Ordering::Relaxed) < ms
    }
}

/// While ingest is busy (a commit in the last [`BUSY_MS`]), the hooks pause this long
/// after each stretch they apply, so ingest keeps most of the writer.
const YIELD_MS: u64 = 100;
/// See [`YIELD_MS`].
const BUSY_MS: i64 = 100;

/// Where the order hooks stand: waits for them to catch up with the event log.
#[derive(Clone)]
pub struct HooksDrain {
    store: Store,
    cursor: Arc<AtomicI64>,
    moved: Arc<tokio::sync::Notify>,
}

impl HooksDrain {
    /// Waits until the hooks have applied every event stored when called, or `limit` has
    /// passed; returns how many events were still to look at (0: caught up). What is left
    /// is applied after the next start.
    pub async fn wait(&self, limit: std::time::Duration) -> i64 {
        let target = match self.store.read_with(log_cursor::last_seq).await {
            Ok(t) => t,
            Err(_) => return 0,
        };
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let moved = self.moved.notified();
            let at = self.cursor.load(Ordering::SeqCst);
            if at >= target {
                return 0;
            }
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                return target - self.cursor.load(Ordering::SeqCst).min(target);
            }
        }
    }
}

/// Publishes a member's tier change as `tier.changed` (journeys will react to it).
pub fn publish_tier_change(bus: &dyn Bus, change: &flywheel_loyalty::TierChange) {
    tracing::info!(user = %change.user_id, from = ?change.from, to = %change.to, "member tier changed");
    bus.publish(BusMessage {
        subject: "tier.changed".into(),
        payload: serde_json::to_value(change).unwrap_or_default(),
    });
}

enum Hook {
    Paid(String, String, flywheel_core::Fen),
    Reversed(String, String),
}

/// Events looked at per store read.
const BATCH: i64 = 1_000;
/// The settings key of the cursor.
const CURSOR_KEY: &str = "order_hooks_cursor";

/// The cursor, set to the end of the log the first time.
fn cursor(c: &mut dyn Conn) -> flywheel_store::Result<i64> {
    match log_cursor::get(c, CURSOR_KEY)? {
        Some(at) => Ok(at),
        None => {
            let last = log_cursor::last_seq(c)?;
            log_cursor::set(c, CURSOR_KEY, last)?;
            Ok(last)
        }
    }
}

/// The hooks of the events after `after` (at most [`BATCH`] events), in order, and the
/// last `seq` looked at: an event that placed an order earns; a cancellation or a refund
/// without an amount (in full) reverses. Events of no known user are passed over.
fn hooks_after(c: &mut dyn Conn, after: i64) -> flywheel_store::Result<(Vec<Hook>, i64)> {
    let rows = c.query(
        "SELECT e.seq, e.user_id, o.order_id, o.total, a.order_id, a.kind, a.amount \
         FROM (SELECT seq, message_id, user_id FROM events WHERE seq > $1 ORDER BY seq LIMIT $2) e \
         LEFT JOIN orders o ON o.message_id = e.message_id \
         LEFT JOIN order_adjustments a ON a.message_id = e.message_id \
         ORDER BY e.seq",
        &[Param::I64(after), Param::I64(BATCH)],
    )?;
    let mut last = after;
    let mut hooks = Vec::new();
    for r in &rows {
        last = last.max(r.i64(0)?);
        let Some(user) = r.opt_text(1)? else { continue };
        if let Some(order) = r.opt_text(2)? {
            hooks.push(Hook::Paid(user.clone(), order, flywheel_core::Fen(r.i64(3)?)));
        }
        if let Some(order) = r.opt_text(4)? {
            if r.text(5)? == "cancel" || r.opt_i64(6)?.is_none() {
                hooks.push(Hook::Reversed(user, order));
            }
        }
    }
    Ok((hooks, last))
}

impl OrderHooks {
    /// Starts the worker on the current runtime.
    pub fn start(store: Store, loyalty: Loyalty, referrals: Referrals, bus: Arc<dyn Bus>) -> OrderHooks {
        let wake = Arc::new(tokio::sync::Notify::new());
        let drain = HooksDrain {
            store: store.clone(),
            cursor: Arc::new(AtomicI64::new(i64::MAX)),
            moved: Arc::new(tokio::sync::Notify::new()),
        };
        let busy = Busy {
            since: std::time::Instant::now(),
            last_commit_ms: Arc::new(AtomicI64::new(i64::MIN / 2)),
        };
        let (woken, at, ingest) = (wake.clone(), drain.clone(), busy.clone());
        tokio::spawn(async move {
            let mut after = loop {
                match store.write_with(cursor).await {
                    Ok(c) => break c,
                    Err(e) => {
                        tracing::warn!(error = %e, "order hooks: cannot read the cursor; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            };
            at.cursor.store(after, Ordering::SeqCst);
            loop {
                let notified = woken.notified();
                let (hooks, last) = match store.read_with(move |c| hooks_after(c, after)).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e, "order hooks: cannot read the event log; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if last == after {
                    // Caught up: wait for the next commit (or look again in a second).
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), notified).await;
                    continue;
                }
                apply_batch(&loyalty, &referrals, bus.as_ref(), hooks).await;
                if let Err(e) = store
                    .write_with(move |c| log_cursor::set(c, CURSOR_KEY, last))
                    .await
                {
                    // The batch is applied again later: every step is idempotent.
                    tracing::warn!(error = %e, "order hooks: cannot move the cursor; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
                after = last;
                at.cursor.store(after, Ordering::SeqCst);
                at.moved.notify_waiters();
                if ingest.within(BUSY_MS) {
                    tokio::time::sleep(std::time::Duration::from_millis(YIELD_MS)).await;
                }
            }
        });
        OrderHooks { wake, drain, busy }
    }

    /// The handle a graceful stop waits on.
    pub fn drain(&self) -> HooksDrain {
        self.drain.clone()
    }
}

/// Applies a stretch of hooks: the points of every paid order in one transaction, then
/// in log order the claw-backs and the referral steps (only for users who were invited),
/// then each member's tier once (100 members per transaction). A cancellation in the same stretch as its order thus
/// comes after the order's points and takes them back.
async fn apply_batch(loyalty: &Loyalty, referrals: &Referrals, bus: &dyn Bus, hooks: Vec<Hook>) {
    let paid: Vec<(String, String, flywheel_core::Fen)> = hooks
        .iter()
        .filter_map(|h| match h {
            Hook::Paid(user, order, total) => Some((user.clone(), order.clone(), *total)),
            Hook::Reversed(..) => None,
        })
        .collect();
    for ((user, order, _), posted) in paid.iter().zip(loyalty.earn_orders(paid.clone()).await) {
        if let Err(e) = posted {
            tracing::warn!(%user, %order, error = %e, "order points not posted");
        }
    }
    let mut users: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for h in &hooks {
        let (Hook::Paid(user, ..) | Hook::Reversed(user, _)) = h;
        if seen.insert(user.clone()) {
            users.push(user.clone());
        }
    }
    let invited = match referrals.invitees_among(users.clone()).await {
        Ok(set) => set,
        Err(e) => {
            tracing::warn!(error = %e, "order hooks: cannot read the referrals; asking per order");
            seen
        }
    };
    for h in &hooks {
        match h {
            Hook::Paid(user, order, _) if invited.contains(user) => {
                // Only a referred user's first paid order rewards; others answer not found.
                let _ = referrals.first_paid_order(user, order).await;
            }
            Hook::Paid(..) => {}
            Hook::Reversed(user, order) => {
                if let Err(e) = loyalty.claw_back_order(user, order).await {
                    tracing::warn!(%user, %order, error = %e, "order points not taken back");
                }
                if invited.contains(user) {
                    let _ = referrals.claw_back(user, order).await;
                }
            }
        }
    }
    match loyalty.evaluate_tiers(users, chrono::Utc::now()).await {
        Ok(changes) => changes.iter().for_each(|c| publish_tier_change(bus, c)),
        Err(e) => tracing::warn!(error = %e, "tiers not re-evaluated"),
    }
}

impl CommitObserver for OrderHooks {
    fn committed(&self, _: &Arc<Vec<NewEvent>>, _: Range<usize>, outcome: &ApplyOutcome) {
        if outcome.inserted > 0 {
            self.busy.committed();
            self.wake.notify_one();
        }
    }
}
