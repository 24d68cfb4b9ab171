//! What one stretch of the event log does to orders' rewards: a paid order earns
//! points and rewards a pending referral, a cancellation or a full refund claws both
//! back, and each member's tier is re-evaluated ([`OrderRewards::apply`]). Every step is
//! idempotent (ledger keys `order:ID` and `clawback:ID`, the referral's claim and its
//! coupons keyed per side), so a stretch a failure interrupted is applied again whole.
//!
//! A failure says whether it is the store's (an outage: retried until the store is back,
//! never dead-lettered) or the event's own (a refusal of its data: dead-lettered after
//! repeated attempts). The worker that follows the log is [`crate::hooks::OrderHooks`];
//! a dead-lettered event is applied again by [`retry_dead_letter`] (API and CLI).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use flywheel_core::bus::Bus;
use flywheel_core::ErrorCode;
use flywheel_core::Fen;
use flywheel_loyalty::Loyalty;
use flywheel_promotions::referral::Referrals;
use flywheel_store::dead_letters;
use flywheel_store::order_hooks::{self, OrderEvent};
use flywheel_store::Store;

pub use flywheel_api::dead_letters::RetryOutcome as Retried;

/// The workflow's name in the dead-letter list, alerts and metrics.
pub const WORKFLOW: &str = "order_rewards";

/// Why applying a stretch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The store failed (an outage): retry until it is back; never dead-letter.
    pub transient: bool,
    /// What failed, for the log and the dead-letter list.
    pub message: String,
}

impl Failure {
    fn store(e: &flywheel_store::Error) -> Failure {
        use flywheel_store::Error as S;
        // Data the store cannot read back is the event's own problem; every other store
        // error (connection, refused statement, busy database, task) is an outage.
        let transient = !matches!(e, S::Corrupt(_) | S::NotFound(_) | S::BadCursor(_));
        Failure {
            transient,
            message: e.to_string(),
        }
    }

    fn item(message: String) -> Failure {
        Failure {
            transient: false,
            message,
        }
    }

    fn loyalty(step: &str, e: &flywheel_loyalty::Error) -> Failure {
        match e {
            flywheel_loyalty::Error::Store(s) => Failure::store(s),
            other => Failure::item(format!("{step}: {other} ({})", other.code())),
        }
    }

    fn promotions(step: &str, e: &flywheel_promotions::Error) -> Failure {
        match e {
            flywheel_promotions::Error::Store(s) => Failure::store(s),
            other => Failure::item(format!("{step}: {other} ({})", other.code())),
        }
    }
}

/// One effect an event asks for.
#[derive(Debug, Clone)]
enum Hook {
    Paid { user: String, order: String, total: Fen },
    Reversed { user: String, order: String },
}

impl Hook {
    fn user(&self) -> &str {
        match self {
            Hook::Paid { user, .. } | Hook::Reversed { user, .. } => user,
        }
    }

    fn order(&self) -> &str {
        match self {
            Hook::Paid { order, .. } | Hook::Reversed { order, .. } => order,
        }
    }
}

/// The effects of `events`, in log order: an event that placed an order earns; a
/// cancellation or a refund without an amount (in full) reverses. Events of no known
/// user are passed over.
fn hooks_of(events: &[OrderEvent]) -> Vec<Hook> {
    let mut hooks = Vec::new();
    for e in events {
        let Some(user) = &e.user_id else { continue };
        if let Some((order, total)) = &e.order {
            hooks.push(Hook::Paid {
                user: user.clone(),
                order: order.clone(),
                total: Fen(*total),
            });
        }
        if let Some((order, kind, amount)) = &e.adjustment {
            if kind == "cancel" || amount.is_none() {
                hooks.push(Hook::Reversed {
                    user: user.clone(),
                    order: order.clone(),
                });
            }
        }
    }
    hooks
}

/// Whether `events` ask for any effect.
pub fn has_work(events: &[OrderEvent]) -> bool {
    !hooks_of(events).is_empty()
}

/// Test-only fault injection, read once from `FLYWHEEL_FAULTS` at start (unset in
/// production: no fault is ever injected). Comma-separated `POINT:COUNT`:
///
/// - `order_hooks:N`: the next N applications fail as a store outage would, before
///   anything is written;
/// - `order_hooks.after_points:N`: the next N applications fail as a store outage,
///   after the points of the stretch were posted (a half-applied stretch);
/// - `order_hooks.poison=ORDER:N`: the first N applications touching order ORDER fail
///   with an error of the event's own, after its points were posted.
///
/// The end-to-end tests use it to prove that no order is skipped and none doubled.
#[derive(Debug, Default)]
pub struct Faults {
    before: AtomicI64,
    after_points: AtomicI64,
    poison: Option<(String, AtomicI64)>,
}

impl Faults {
    /// The faults of `FLYWHEEL_FAULTS` (none when unset or unreadable).
    pub fn from_env() -> Faults {
        match std::env::var("FLYWHEEL_FAULTS") {
            Ok(spec) => {
                tracing::warn!(faults = %spec, "FLYWHEEL_FAULTS is set: injecting test faults");
                Faults::parse(&spec)
            }
            Err(_) => Faults::default(),
        }
    }

    fn parse(spec: &str) -> Faults {
        let mut f = Faults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((point, n)) = part.rsplit_once(':') else {
                continue;
            };
            let Ok(n) = n.parse::<i64>() else { continue };
            match point.split_once('=') {
                Some(("order_hooks.poison", order)) => {
                    f.poison = Some((order.to_owned(), AtomicI64::new(n)));
                }
                _ if point == "order_hooks" => f.before = AtomicI64::new(n),
                _ if point == "order_hooks.after_points" => f.after_points = AtomicI64::new(n),
                _ => {}
            }
        }
        f
    }

    /// Takes one of `left`, if any are left.
    fn take(left: &AtomicI64) -> bool {
        left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n > 0).then(|| n - 1))
            .is_ok()
    }

    fn outage(left: &AtomicI64, point: &str) -> Result<(), Failure> {
        if Faults::take(left) {
            return Err(Failure {
                transient: true,
                message: format!("injected store fault at {point}"),
            });
        }
        Ok(())
    }

    fn poisoned(&self, hooks: &[Hook]) -> Result<(), Failure> {
        if let Some((order, left)) = &self.poison {
            if hooks.iter().any(|h| h.order() == order) && Faults::take(left) {
                return Err(Failure::item(format!("injected fault for order {order}")));
            }
        }
        Ok(())
    }
}

/// What applying a stretch came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Paid orders looked at (points posted now or before).
    pub orders: usize,
    /// Cancellations and full refunds looked at.
    pub reversals: usize,
    /// Members whose tier changed.
    pub tiers_changed: usize,
}

/// The order-rewards workflow over the loyalty ledger and the referral program.
#[derive(Clone)]
pub struct OrderRewards {
    /// Points and tiers.
    pub loyalty: Loyalty,
    /// Referral rewards.
    pub referrals: Referrals,
    /// Where tier changes are published.
    pub bus: Arc<dyn Bus>,
    /// Injected faults (tests only).
    pub faults: Arc<Faults>,
}

impl OrderRewards {
    /// Applies the effects of `events`: the points of every paid order in one
    /// transaction, then in log order the claw-backs and the referral steps (only for
    /// users who were invited), then each member's tier once. A cancellation in the same
    /// stretch as its order thus comes after the order's points and takes them back.
    /// Stops at the first failure; what was done before it is done again, harmlessly,
    /// by the next attempt.
    pub async fn apply(&self, events: &[OrderEvent]) -> Result<Applied, Failure> {
        let hooks = hooks_of(events);
        if hooks.is_empty() {
            return Ok(Applied::default());
        }
        Faults::outage(&self.faults.before, "order_hooks")?;
        let mut applied = Applied::default();
        let paid: Vec<(String, String, Fen)> = hooks
            .iter()
            .filter_map(|h| match h {
                Hook::Paid { user, order, total } => Some((user.clone(), order.clone(), *total)),
                Hook::Reversed { .. } => None,
            })
            .collect();
        applied.orders = paid.len();
        applied.reversals = hooks.len() - paid.len();
        for ((_, order, _), posted) in paid.iter().zip(self.loyalty.earn_orders(paid.clone()).await) {
            posted.map_err(|e| Failure::loyalty(&format!("points of order {order}"), &e))?;
        }
        Faults::outage(&self.faults.after_points, "order_hooks.after_points")?;
        self.faults.poisoned(&hooks)?;
        let mut users: Vec<String> = Vec::new();
        for h in &hooks {
            if !users.iter().any(|u| u == h.user()) {
                users.push(h.user().to_owned());
            }
        }
        let invited = self
            .referrals
            .invitees_among(users.clone())
            .await
            .map_err(|e| Failure::promotions("reading the referrals", &e))?;
        for h in &hooks {
            self.referral_and_claw_back(h, invited.contains(h.user())).await?;
        }
        let changes = self
            .loyalty
            .evaluate_tiers(users, chrono::Utc::now())
            .await
            .map_err(|e| Failure::loyalty("tiers", &e))?;
        for c in &changes {
            crate::hooks::publish_tier_change(self.bus.as_ref(), c);
        }
        applied.tiers_changed = changes.len();
        Ok(applied)
    }

    async fn referral_and_claw_back(&self, h: &Hook, invited: bool) -> Result<(), Failure> {
        use flywheel_promotions::Error as P;
        match h {
            Hook::Paid { user, order, .. } if invited => {
                // Only a referred user's first paid order rewards; a later one is refused
                // with `already_rewarded`, which is the answer, not a failure.
                match self.referrals.first_paid_order(user, order).await {
                    Ok(_) | Err(P::NotFound(_)) => Ok(()),
                    Err(P::Conflict {
                        code: ErrorCode::AlreadyRewarded,
                        ..
                    }) => Ok(()),
                    Err(e) => Err(Failure::promotions(
                        &format!("referral reward of order {order}"),
                        &e,
                    )),
                }
            }
            Hook::Paid { .. } => Ok(()),
            Hook::Reversed { user, order } => {
                self.loyalty
                    .claw_back_order(user, order)
                    .await
                    .map_err(|e| Failure::loyalty(&format!("claw-back of order {order}"), &e))?;
                if invited {
                    match self.referrals.claw_back(user, order).await {
                        Ok(_) | Err(P::NotFound(_)) => {}
                        Err(e) => {
                            return Err(Failure::promotions(
                                &format!("referral claw-back of order {order}"),
                                &e,
                            ))
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// Applies dead letter `id` again now: success removes it from the list, a failure
/// keeps it with one more attempt. A store failure reading or writing the list is an
/// `Err`.
pub async fn retry_dead_letter(
    store: &Store,
    rewards: &OrderRewards,
    id: i64,
) -> Result<Retried, flywheel_store::Error> {
    let Some(dead) = store.read_with(move |c| dead_letters::get(c, id)).await? else {
        return Ok(Retried::NotFound);
    };
    let seq = dead.seq;
    let event = store.read_with(move |c| order_hooks::event_at(c, seq)).await?;
    let outcome = match (dead.workflow.as_str(), event) {
        (WORKFLOW, Some(e)) => rewards.apply(&[e]).await.map(|_| ()),
        (WORKFLOW, None) => Err(Failure::item(format!("event {seq} is no longer stored"))),
        (other, _) => Err(Failure::item(format!("unknown workflow {other:?}"))),
    };
    match outcome {
        Ok(()) => {
            store.write_with(move |c| dead_letters::remove(c, id)).await?;
            tracing::info!(id, seq, workflow = %dead.workflow, "dead letter applied on retry");
            Ok(Retried::Applied)
        }
        Err(f) => {
            let (error, at) = (f.message.clone(), chrono::Utc::now().timestamp_millis());
            store
                .write_with(move |c| dead_letters::failed_again(c, id, &error, at))
                .await?;
            tracing::warn!(id, seq, error = %f.message, "dead letter failed again on retry");
            Ok(Retried::Failed {
                error: f.message,
                attempts: dead.attempts + 1,
            })
        }
    }
}

/// The dead-letter retry port of the admin API, over this workflow.
pub struct RetryPort {
    /// The store holding the list.
    pub store: Store,
    /// The workflow.
    pub rewards: OrderRewards,
}

impl flywheel_api::dead_letters::RetryDeadLetter for RetryPort {
    fn retry(&self, id: i64) -> flywheel_api::dead_letters::RetryFuture<'_> {
        Box::pin(retry_dead_letter(&self.store, &self.rewards, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fault_spec() {
        let f = Faults::parse("order_hooks:3, order_hooks.after_points:2,order_hooks.poison=O-9:6,bogus");
        assert_eq!(f.before.load(Ordering::SeqCst), 3);
        assert_eq!(f.after_points.load(Ordering::SeqCst), 2);
        let (order, n) = f.poison.as_ref().unwrap();
        assert_eq!((order.as_str(), n.load(Ordering::SeqCst)), ("O-9", 6));
        assert!(Faults::outage(&f.before, "x").is_err());
        assert!(Faults::outage(&Faults::default().before, "x").is_ok());
    }

    #[test]
    fn store_outages_are_transient_and_refusals_are_not() {
        let outage = flywheel_store::Error::Connection("gone".into());
        assert!(Failure::store(&outage).transient);
        assert!(Failure::store(&flywheel_store::Error::Database("57P01".into())).transient);
        assert!(!Failure::store(&flywheel_store::Error::Corrupt("bad".into())).transient);
        let taken = flywheel_loyalty::Error::conflict(ErrorCode::SourceKeyTaken, "taken");
        assert!(!Failure::loyalty("claw-back", &taken).transient);
    }
}
