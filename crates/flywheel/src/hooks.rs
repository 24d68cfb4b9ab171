//! What happens by itself when orders arrive: committed ingest batches are handed to the
//! audience engine, and paid orders earn points and settle referral rewards, refunds and
//! cancellations claw them back. Observers never block the ingest writer: the work is
//! spawned onto the runtime.

use std::ops::Range;
use std::sync::Arc;

use flywheel_audience::Audience;
use flywheel_core::bus::{Bus, BusMessage};
use flywheel_core::OrderAdjustmentKind;
use flywheel_ingest::pipeline::CommitObserver;
use flywheel_loyalty::Loyalty;
use flywheel_promotions::referral::Referrals;
use flywheel_store::{ApplyOutcome, NewEvent};

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
/// The observer only queues; one worker applies the queue in order, so these writes never
/// crowd the ingest writer (at most one of them waits for the store at a time). The queue
/// lives in memory: a graceful stop waits for it to drain ([`HooksDrain`]).
pub struct OrderHooks {
    queue: tokio::sync::mpsc::UnboundedSender<Hook>,
    drain: HooksDrain,
}

/// Waits for the order hooks queued so far to be applied.
#[derive(Clone, Default)]
pub struct HooksDrain {
    pending: Arc<std::sync::atomic::AtomicUsize>,
    idle: Arc<tokio::sync::Notify>,
}

impl HooksDrain {
    fn queued(&self) {
        self.pending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn done(&self) {
        if self.pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Hooks queued and not yet applied.
    pub fn pending(&self) -> usize {
        self.pending.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until nothing is queued, or `limit` has passed; returns what is still queued.
    pub async fn wait(&self, limit: std::time::Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let idle = self.idle.notified();
            if self.pending() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.pending();
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

impl OrderHooks {
    /// Starts the worker on the current runtime.
    pub fn start(loyalty: Loyalty, referrals: Referrals, bus: Arc<dyn Bus>) -> OrderHooks {
        let (queue, mut rx) = tokio::sync::mpsc::unbounded_channel::<Hook>();
        let drain = HooksDrain::default();
        let worker_drain = drain.clone();
        tokio::spawn(async move {
            while let Some(h) = rx.recv().await {
                let (user, order, result) = match h {
                    Hook::Paid(user, order, total) => {
                        let r = loyalty.earn_order(&user, &order, total).await.map(|_| ());
                        // Only a referred user's first paid order rewards; others answer not found.
                        let _ = referrals.first_paid_order(&user, &order).await;
                        (user, order, r)
                    }
                    Hook::Reversed(user, order) => {
                        let r = loyalty.claw_back_order(&user, &order).await.map(|_| ());
                        let _ = referrals.claw_back(&user, &order).await;
                        (user, order, r)
                    }
                };
                if let Err(e) = result {
                    tracing::warn!(%user, %order, error = %e, "order points not posted");
                }
                match loyalty.evaluate_tier(&user, chrono::Utc::now()).await {
                    Ok(Some(change)) => publish_tier_change(bus.as_ref(), &change),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(%user, error = %e, "tier not re-evaluated"),
                }
                worker_drain.done();
            }
        });
        OrderHooks { queue, drain }
    }

    /// The handle a graceful stop waits on.
    pub fn drain(&self) -> HooksDrain {
        self.drain.clone()
    }

    fn push(&self, hook: Hook) {
        self.drain.queued();
        if self.queue.send(hook).is_err() {
            self.drain.done();
        }
    }
}

impl CommitObserver for OrderHooks {
    fn committed(&self, events: &Arc<Vec<NewEvent>>, range: Range<usize>, outcome: &ApplyOutcome) {
        for (i, e) in events.get(range).unwrap_or_default().iter().enumerate() {
            if !outcome.stored.get(i).copied().unwrap_or(false) {
                continue;
            }
            let Some(user) = e.event().user_id.clone() else {
                continue;
            };
            if let Some(o) = &e.order {
                self.push(Hook::Paid(user.clone(), o.order_id.clone(), o.total));
            }
            if let Some(a) = &e.adjustment {
                if a.kind == OrderAdjustmentKind::Cancel || a.amount.is_none() {
                    self.push(Hook::Reversed(user, a.order_id.clone()));
                }
            }
        }
    }
}
