//! The order-rewards service: paid orders earn points (R7.3) and reward a pending
//! referral; a cancellation or a full refund claws both back. Partial refunds leave
//! points as they are. Either way the member's tier is re-evaluated and a change
//! published as `tier.changed`. What one stretch does is [`apply`].
//!
//! The work is read from the store, not queued in memory: the service follows the event
//! log in `seq` order behind a cursor kept in `settings` (`order_hooks_cursor`), finds
//! the orders and adjustments those events recorded, applies them, and moves the cursor
//! past what it applied, never further. Every step is idempotent per order (`order:ID`,
//! `clawback:ID` ledger keys, the referral claim and its keyed coupons), so what a crash
//! or a failure interrupts is applied again and nothing is lost or doubled.
//!
//! A stretch that fails because the store failed (an outage, a busy database) is retried
//! by the runner with backoff, 100 ms doubling to 5 s, for as long as it takes. A
//! stretch that fails for a reason of one event's own is applied again one event at a
//! time: the event that still fails after `dead_letter_after` attempts is listed in the
//! dead-letter table with an alert and the cursor moves past it. A busy shop's points
//! may lag behind its orders but never grow a queue in memory. The first start begins
//! at the end of the log (history earns nothing). The ingest observer only wakes the
//! service; these writes never crowd the ingest writer. Its lag is the events of the
//! log it has yet to look at.

pub mod apply;
pub mod faults;
pub mod retry;

use std::ops::Range;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flywheel_analytics::campaign_facts::{self, Alert};
use flywheel_core::health::LagUnit;
use flywheel_ingest::pipeline::CommitObserver;
use flywheel_store::conn::Conn;
use flywheel_store::dead_letters::{self, DeadLetterRow};
use flywheel_store::order_hooks::{self, OrderEvent};
use flywheel_store::{log_cursor, ApplyOutcome, NewEvent, Store};

pub use apply::{has_work, publish_tier_change, Applied, OrderRewards, RewardFailure, WORKFLOW};
pub use faults::Faults;
pub use retry::{retry_dead_letter, Retried};

use crate::notify::Notifier;
use crate::service::{Ctx, Failure, Next, Pace, Service};

/// Events looked at per store read.
const BATCH: i64 = 1_000;
/// The settings key of the cursor.
const CURSOR_KEY: &str = log_cursor::ORDER_HOOKS;
/// While ingest is busy (a commit in the last [`BUSY_MS`]), the service pauses this long
/// after each stretch it applies, so ingest keeps most of the writer.
const YIELD: Duration = Duration::from_millis(100);
/// See [`YIELD`].
const BUSY_MS: i64 = 100;
/// The longest wait between retries during an outage: points follow orders within
/// seconds of the store coming back.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// When ingest last committed, so the service can leave the store's one writer to it: a
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

    /// Whether ingest committed within `ms`.
    fn within(&self, ms: i64) -> bool {
        self.now_ms() - self.last_commit_ms.load(Ordering::Relaxed) < ms
    }
}

/// Wakes the service when ingest commits (the pipeline's observer).
#[derive(Clone)]
pub struct OrderRewardsWake {
    wake: Arc<tokio::sync::Notify>,
    busy: Busy,
}

impl CommitObserver for OrderRewardsWake {
    fn committed(&self, _: &Arc<Vec<NewEvent>>, _: Range<usize>, outcome: &ApplyOutcome) {
        if outcome.inserted > 0 {
            self.busy
                .last_commit_ms
                .store(self.busy.now_ms(), Ordering::Relaxed);
            self.wake.notify_one();
        }
    }
}

/// Where the service stands: a graceful stop waits on it to catch up with the log.
#[derive(Clone)]
pub struct CatchUp {
    store: Store,
    cursor: Arc<AtomicI64>,
    moved: Arc<tokio::sync::Notify>,
}

impl CatchUp {
    /// Waits until the service has applied every event stored when called, or `limit`
    /// has passed; returns how many events were still to look at (0: caught up). What
    /// is left is applied after the next start.
    pub async fn wait(&self, limit: Duration) -> i64 {
        let target = match self.store.read_with(log_cursor::last_seq).await {
            Ok(t) => t,
            Err(_) => return 0,
        };
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let moved = self.moved.notified();
            if self.cursor.load(Ordering::SeqCst) >= target {
                return 0;
            }
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                return target - self.cursor.load(Ordering::SeqCst).min(target);
            }
        }
    }
}

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

/// The service following the log for [`OrderRewards`].
pub struct OrderRewardsService {
    store: Store,
    rewards: OrderRewards,
    notifier: Notifier,
    dead_letter_after: i64,
    at: CatchUp,
    wake: OrderRewardsWake,
    /// The cursor, once read.
    after: Option<i64>,
    /// A stretch failed for an event's own reason: events up to this seq are applied
    /// one at a time.
    one_by_one_until: Option<i64>,
    /// The event failing for a reason of its own: its seq, attempts, first failure.
    failing: Option<(i64, i64, i64)>,
    /// A cursor move still to write (the work before it is done or dead-lettered).
    pending: Option<i64>,
}

impl OrderRewardsService {
    /// The service; an event failing `dead_letter_after` times for a reason of its own is
    /// dead-lettered, with an alert through `notifier`.
    pub fn new(rewards: OrderRewards, store: Store, notifier: Notifier, dead_letter_after: u32) -> Self {
        let at = CatchUp {
            store: store.clone(),
            cursor: Arc::new(AtomicI64::new(i64::MAX)),
            moved: Arc::new(tokio::sync::Notify::new()),
        };
        let wake = OrderRewardsWake {
            wake: Arc::new(tokio::sync::Notify::new()),
            busy: Busy {
                since: std::time::Instant::now(),
                last_commit_ms: Arc::new(AtomicI64::new(i64::MIN / 2)),
            },
        };
        OrderRewardsService {
            store,
            rewards,
            notifier,
            dead_letter_after: i64::from(dead_letter_after.max(1)),
            at,
            wake,
            after: None,
            one_by_one_until: None,
            failing: None,
            pending: None,
        }
    }

    /// The observer that wakes the service when ingest commits.
    pub fn wake(&self) -> OrderRewardsWake {
        self.wake.clone()
    }

    /// The handle a graceful stop waits on.
    pub fn catch_up(&self) -> CatchUp {
        self.at.clone()
    }

    /// Moves the cursor to `seq` (the work up to it is done or dead-lettered).
    async fn advance(&mut self, seq: i64) -> Result<(), Failure> {
        self.pending = Some(seq);
        self.store
            .write_with(move |c| log_cursor::set(c, CURSOR_KEY, seq))
            .await?;
        self.pending = None;
        self.after = Some(seq);
        self.at.cursor.store(seq, Ordering::SeqCst);
        self.at.moved.notify_waiters();
        Ok(())
    }

    /// Applies a whole stretch; on an event's own failure, switches to one at a time.
    async fn stretch(&mut self, events: &[OrderEvent], last: i64, ctx: &Ctx) -> Result<Next, Failure> {
        match self.rewards.apply(events).await {
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
                self.advance(last).await?;
                if self.wake.busy.within(BUSY_MS) {
                    ctx.shutdown.sleep(YIELD).await;
                }
                Ok(Next::Now)
            }
            Err(f) if f.transient => Err(Failure(format!("the store failed: {}", f.message))),
            Err(f) => {
                tracing::warn!(error = %f.message, "order rewards: an event failed; applying the stretch one event at a time");
                self.one_by_one_until = Some(last);
                Ok(Next::Now)
            }
        }
    }

    /// Applies the first event of `events` that asks for an effect alone (moving past
    /// those before it that ask for none); dead-letters it once it has failed for a
    /// reason of its own `dead_letter_after` times.
    async fn one(&mut self, events: &[OrderEvent], until: i64) -> Result<Next, Failure> {
        let mut start = 0;
        let mut seq = events[0].seq;
        let mut n = 0;
        while start < events.len() {
            seq = events[start].seq;
            n = events[start..].iter().take_while(|e| e.seq == seq).count();
            if seq >= until || has_work(&events[start..start + n]) {
                break;
            }
            start += n;
        }
        if start >= events.len() {
            // Nothing up to the end of this read asks for an effect.
            self.advance(seq).await?;
            return Ok(Next::Now);
        }
        let one = &events[start..start + n];
        if has_work(one) {
            match self.rewards.apply(one).await {
                Ok(_) => {}
                Err(f) if f.transient => {
                    return Err(Failure(format!("the store failed at event {seq}: {}", f.message)))
                }
                Err(f) => {
                    let now = chrono::Utc::now().timestamp_millis();
                    let (attempts, first) = match self.failing {
                        Some((s, a, first)) if s == seq => (a + 1, first),
                        _ => (1, now),
                    };
                    self.failing = Some((seq, attempts, first));
                    if attempts < self.dead_letter_after {
                        return Err(Failure(format!(
                            "event {seq} failed (attempt {attempts}): {}",
                            f.message
                        )));
                    }
                    self.dead_letter(&one[0], &f, attempts, first).await?;
                }
            }
        }
        self.failing = None;
        if seq >= until {
            self.one_by_one_until = None;
        }
        self.advance(seq).await?;
        Ok(Next::Now)
    }

    /// Lists `event` in the dead-letter table and raises an alert; then moves past it.
    async fn dead_letter(
        &mut self,
        event: &OrderEvent,
        f: &RewardFailure,
        attempts: i64,
        first_failed_at: i64,
    ) -> Result<(), Failure> {
        let now = chrono::Utc::now().timestamp_millis();
        let row = DeadLetterRow {
            id: 0,
            workflow: WORKFLOW.into(),
            item: event.seq.to_string(),
            seq: Some(event.seq),
            message_id: Some(event.message_id.clone()),
            user_id: event.user_id.clone(),
            error: f.message.clone(),
            attempts,
            first_failed_at,
            last_failed_at: now,
        };
        let alert = Alert {
            at: now,
            campaign: WORKFLOW.into(),
            rule: "dead_lettered".into(),
            detail: format!(
                "event {} (message {}) failed {attempts} times and was set aside: {}",
                event.seq, event.message_id, f.message
            ),
            action: "alerted".into(),
        };
        let (r, a) = (row, alert.clone());
        let id = self
            .store
            .write_with(move |c| {
                let id = dead_letters::record(c, &r)?;
                campaign_facts::record_alert_by(c, WORKFLOW, &a)?;
                Ok(id)
            })
            .await?;
        // Recorded: whatever happens next, this event is not recorded twice.
        self.pending = Some(event.seq);
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
        Ok(())
    }
}

impl Service for OrderRewardsService {
    fn name(&self) -> &'static str {
        WORKFLOW
    }

    fn pace(&self) -> Pace {
        // Caught up: wait for the next commit, or look again in a second.
        Pace::every(Duration::from_secs(1))
            .woken_by(self.wake.wake.clone())
            .lag_in(LagUnit::Events)
            .max_backoff(MAX_BACKOFF)
    }

    async fn run_once(&mut self, ctx: &Ctx) -> Result<Next, Failure> {
        if let Some(seq) = self.pending {
            self.failing = None;
            if self.one_by_one_until.is_some_and(|until| seq >= until) {
                self.one_by_one_until = None;
            }
            self.advance(seq).await?;
        }
        let after = match self.after {
            Some(at) => at,
            None => {
                let at = self.store.write_with(cursor).await?;
                self.after = Some(at);
                self.at.cursor.store(at, Ordering::SeqCst);
                at
            }
        };
        let (events, end) = self
            .store
            .read_with(move |c| {
                Ok((
                    order_hooks::events_after(c, after, BATCH)?,
                    log_cursor::last_seq(c)?,
                ))
            })
            .await?;
        ctx.set_lag(u64::try_from(end - after).unwrap_or(0));
        let Some(last) = events.iter().map(|e| e.seq).max() else {
            return Ok(Next::Wait);
        };
        let next = match self.one_by_one_until {
            Some(until) => self.one(&events, until).await?,
            None => self.stretch(&events, last, ctx).await?,
        };
        ctx.set_lag(u64::try_from(end - self.after.unwrap_or(after)).unwrap_or(0));
        Ok(next)
    }
}
