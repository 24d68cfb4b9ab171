//! What happens by itself when orders arrive: committed ingest batches are handed to the
//! audience engine, and paid orders earn points and settle referral rewards, refunds and
//! cancellations claw them back ([`OrderHooks`], durable behind a cursor in the store;
//! what one stretch does is [`crate::order_rewards`]). Observers never block the ingest
//! writer. A stretch that fails is retried with backoff and the cursor never passes work
//! not done; an event that keeps failing for a reason of its own goes to the dead-letter
//! list with an alert.

use std::ops::Range;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use std::time::Duration;

use flywheel_audience::Audience;
use flywheel_core::bus::{Bus, DomainEvent};
use flywheel_ingest::pipeline::CommitObserver;
use flywheel_store::conn::Conn;
use flywheel_store::dead_letters::{self, DeadLetterRow};
use flywheel_store::order_hooks::{self, OrderEvent};
use flywheel_store::{log_cursor, ApplyOutcome, NewEvent, Store};

use crate::order_rewards::{Failure, OrderRewards, WORKFLOW};

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
/// the orders and adjustments those events recorded, applies them, and moves the cursor
/// past what it applied, never further. Every step is idempotent per order (`order:ID`,
/// `clawback:ID` ledger keys, the referral claim and its keyed coupons), so what a crash
/// or a failure interrupts is applied again and nothing is lost or doubled.
///
/// A stretch that fails because the store failed (an outage, a busy database) is retried
/// with backoff, 100 ms doubling to 30 s, for as long as it takes. A stretch that fails
/// for a reason of one event's own is applied again one event at a time: the event that
/// still fails after `dead_letter_after` attempts is listed in the dead-letter table with
/// an alert and the cursor moves past it. A busy shop's points may lag behind its orders
/// but never grow a queue in memory. The first start begins at the end of the log
/// (history earns nothing). The ingest observer only wakes the worker; these writes
/// never crowd the ingest writer.
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
    pub async fn wait(&self, limit: Duration) -> i64 {
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

/// Publishes a member's tier change as `tier.changed` (journeys will react to it);
/// logged at debug, the callers log one summary line.
pub fn publish_tier_change(bus: &dyn Bus, change: &flywheel_loyalty::TierChange) {
    tracing::debug!(user = %change.user_id, from = ?change.from, to = %change.to, "member tier changed");
    bus.publish(DomainEvent::TierChanged(change.into()));
}

/// Events looked at per store read.
const BATCH: i64 = 1_000;
/// The settings key of the cursor.
const CURSOR_KEY: &str = log_cursor::ORDER_HOOKS;

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

/// Waits between attempts: 100 ms, doubling up to 30 s; back to 100 ms after a success.
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(30);

    fn new() -> Backoff {
        Backoff(Backoff::FIRST)
    }

    /// Sleeps the current delay, then doubles it.
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Backoff::MAX);
    }

    fn reset(&mut self) {
        self.0 = Backoff::FIRST;
    }
}

/// The worker behind [`OrderHooks`].
struct Worker {
    store: Store,
    rewards: OrderRewards,
    notifier: crate::notify::Notifier,
    dead_letter_after: u32,
    at: HooksDrain,
    backoff: Backoff,
}

impl Worker {
    /// Runs a store operation until it succeeds (an outage is waited out with backoff).
    async fn until_ok<T: Send + 'static>(
        &mut self,
        what: &str,
        f: impl Fn(&mut dyn Conn) -> flywheel_store::Result<T> + Clone + Send + 'static,
        write: bool,
    ) -> T {
        loop {
            let g = f.clone();
            let out = if write {
                self.store.write_with(g).await
            } else {
                self.store.read_with(g).await
            };
            match out {
                Ok(v) => {
                    // The store answers again: the next failure starts over at 100 ms.
                    self.backoff.reset();
                    return v;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = self.backoff.0.as_millis() as u64, "order hooks: cannot {what}; retrying");
                    self.backoff.wait().await;
                }
            }
        }
    }

    /// Moves the cursor to `seq` (the work up to it is done or dead-lettered).
    async fn advance(&mut self, seq: i64) {
        self.until_ok(
            "move the cursor",
            move |c| log_cursor::set(c, CURSOR_KEY, seq),
            true,
        )
        .await;
        self.at.cursor.store(seq, Ordering::SeqCst);
        self.at.moved.notify_waiters();
    }

    /// Applies `events` (read after the cursor, the last one looked at `last`) and moves
    /// the cursor to `last`. Returns once that is done.
    async fn stretch(&mut self, events: Vec<OrderEvent>, last: i64) {
        loop {
            match self.rewards.apply(&events).await {
                Ok(a) => {
                    if a.orders + a.reversals > 0 {
                        tracing::info!(
                            orders = a.orders,
                            reversals = a.reversals,
                            tiers_changed = a.tiers_changed,
                            "order rewards: {} orders, {} reversals applied; tiers: {} changed",
                            a.orders,
                            a.reversals,
                            a.tiers_changed
                        );
                    }
                    break;
                }
                Err(f) if f.transient => {
                    tracing::warn!(error = %f.message, retry_in_ms = self.backoff.0.as_millis() as u64, "order rewards: the store failed; retrying the stretch");
                    self.backoff.wait().await;
                }
                Err(f) => {
                    tracing::warn!(error = %f.message, "order rewards: an event failed; applying the stretch one event at a time");
                    self.one_by_one(&events).await;
                    break;
                }
            }
        }
        self.backoff.reset();
        self.advance(last).await;
    }

    /// Applies `events` one event at a time, moving the cursor past each; an event that
    /// fails for a reason of its own `dead_letter_after` times is dead-lettered.
    async fn one_by_one(&mut self, events: &[OrderEvent]) {
        let mut i = 0;
        while i < events.len() {
            let seq = events[i].seq;
            let n = events[i..].iter().take_while(|e| e.seq == seq).count();
            let one = &events[i..i + n];
            i += n;
            if !crate::order_rewards::has_work(one) {
                continue;
            }
            let mut attempts: i64 = 0;
            let first_failed_at = chrono::Utc::now().timestamp_millis();
            loop {
                match self.rewards.apply(one).await {
                    Ok(_) => break,
                    Err(f) if f.transient => {
                        tracing::warn!(seq, error = %f.message, "order rewards: the store failed; retrying the event");
                        self.backoff.wait().await;
                    }
                    Err(f) => {
                        attempts += 1;
                        if attempts >= i64::from(self.dead_letter_after) {
                            self.dead_letter(&one[0], f, attempts, first_failed_at).await;
                            break;
                        }
                        tracing::warn!(seq, attempts, error = %f.message, "order rewards: an event failed; retrying it");
                        self.backoff.wait().await;
                    }
                }
            }
            self.backoff.reset();
            self.advance(seq).await;
        }
    }

    /// Lists `event` in the dead-letter table and raises an alert.
    async fn dead_letter(&mut self, event: &OrderEvent, f: Failure, attempts: i64, first_failed_at: i64) {
        let now = chrono::Utc::now().timestamp_millis();
        let row = DeadLetterRow {
            id: 0,
            workflow: WORKFLOW.into(),
            seq: event.seq,
            message_id: event.message_id.clone(),
            user_id: event.user_id.clone(),
            error: f.message.clone(),
            attempts,
            first_failed_at,
            last_failed_at: now,
        };
        let alert = flywheel_analytics::campaign_facts::Alert {
            at: now,
            campaign: WORKFLOW.into(),
            rule: "dead_lettered".into(),
            detail: format!(
                "event {} (message {}) failed {attempts} times and was set aside: {}",
                event.seq, event.message_id, f.message
            ),
            action: "alerted".into(),
        };
        let (r, a) = (row.clone(), alert.clone());
        let id = self
            .until_ok(
                "record a dead letter",
                move |c| {
                    let id = dead_letters::record(c, &r)?;
                    flywheel_analytics::campaign_facts::record_alert_by(c, WORKFLOW, &a)?;
                    Ok(id)
                },
                true,
            )
            .await;
        tracing::error!(
            id,
            seq = event.seq,
            message_id = %event.message_id,
            attempts,
            error = %f.message,
            "order rewards: event dead-lettered (flywheel dead-letters retry {id})"
        );
        let sent = self.notifier.alert(&alert).await;
        tracing::debug!(delivery = %sent.summary, "dead-letter alert sent");
    }

    async fn run(mut self, wake: Arc<tokio::sync::Notify>, busy: Busy) {
        let mut after = self.until_ok("read the cursor", cursor, true).await;
        self.at.cursor.store(after, Ordering::SeqCst);
        loop {
            let notified = wake.notified();
            let events = self
                .until_ok(
                    "read the event log",
                    move |c| order_hooks::events_after(c, after, BATCH),
                    false,
                )
                .await;
            let Some(last) = events.iter().map(|e| e.seq).max() else {
                // Caught up: wait for the next commit (or look again in a second).
                let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
                continue;
            };
            self.stretch(events, last).await;
            after = last;
            if busy.within(BUSY_MS) {
                tokio::time::sleep(Duration::from_millis(YIELD_MS)).await;
            }
        }
    }
}

impl OrderHooks {
    /// Starts the worker on the current runtime; an event failing `dead_letter_after`
    /// times for a reason of its own is dead-lettered, with an alert through `notifier`.
    pub fn start(
        rewards: OrderRewards,
        store: Store,
        notifier: crate::notify::Notifier,
        dead_letter_after: u32,
    ) -> OrderHooks {
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
        let worker = Worker {
            store,
            rewards,
            notifier,
            dead_letter_after: dead_letter_after.max(1),
            at: drain.clone(),
            backoff: Backoff::new(),
        };
        tokio::spawn(worker.run(wake.clone(), busy.clone()));
        OrderHooks { wake, drain, busy }
    }

    /// The handle a graceful stop waits on.
    pub fn drain(&self) -> HooksDrain {
        self.drain.clone()
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
