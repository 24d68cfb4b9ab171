//! What one stretch of the event log does to orders' rewards: a paid order earns
//! points and rewards a pending referral, a cancellation or a full refund claws both
//! back, and each member's tier is re-evaluated ([`OrderRewards::apply`]). Every step is
//! idempotent (ledger keys `order:ID` and `clawback:ID`, the referral's claim and its
//! coupons keyed per side), so a stretch a failure interrupted is applied again whole.
//!
//! A failure says whether it is the store's (an outage: retried until the store is back,
//! never dead-lettered) or the event's own (a refusal of its data: dead-lettered after
//! repeated attempts). The service that follows the log is
//! [`crate::order_rewards::OrderRewardsService`]; a dead-lettered event is applied again
//! by [`crate::order_rewards::retry_dead_letter`] (API and CLI).

use std::sync::Arc;

use flywheel_core::bus::{Bus, DomainEvent};
use flywheel_core::Fen;
use flywheel_loyalty::Loyalty;
use flywheel_promotions::referral::Referrals;
use flywheel_store::order_hooks::OrderEvent;

use super::faults::Faults;

/// The workflow's name in the dead-letter list, alerts and metrics.
pub const WORKFLOW: &str = "order_rewards";

/// Why applying a stretch failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardFailure {
    /// The store failed (an outage): retry until it is back; never dead-letter.
    pub transient: bool,
    /// What failed, for the log and the dead-letter list.
    pub message: String,
}

impl RewardFailure {
    pub(crate) fn store(e: &flywheel_store::Error) -> RewardFailure {
        // An outage (connection lost, busy or shutting-down database, timeout) is retried
        // until the store is back; anything else it answered (a constraint, bad data) is
        // the event's own problem and counts toward dead-lettering.
        RewardFailure {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }

    pub(crate) fn item(message: String) -> RewardFailure {
        RewardFailure {
            transient: false,
            message,
        }
    }

    pub(crate) fn loyalty(step: &str, e: &flywheel_loyalty::Error) -> RewardFailure {
        match e {
            flywheel_loyalty::Error::Store(s) => RewardFailure::store(s),
            other => RewardFailure::item(format!("{step}: {other} ({})", other.code())),
        }
    }

    fn promotions(step: &str, e: &flywheel_promotions::Error) -> RewardFailure {
        match e {
            flywheel_promotions::Error::Store(s) => RewardFailure::store(s),
            other => RewardFailure::item(format!("{step}: {other} ({})", other.code())),
        }
    }
}

/// One effect an event asks for.
#[derive(Debug, Clone)]
pub(crate) enum Hook {
    Paid { user: String, order: String, total: Fen },
    Reversed { user: String, order: String },
}

impl Hook {
    fn user(&self) -> &str {
        match self {
            Hook::Paid { user, .. } | Hook::Reversed { user, .. } => user,
        }
    }

    pub(crate) fn order(&self) -> &str {
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
    pub async fn apply(&self, events: &[OrderEvent]) -> Result<Applied, RewardFailure> {
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
            posted.map_err(|e| RewardFailure::loyalty(&format!("points of order {order}"), &e))?;
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
            .map_err(|e| RewardFailure::promotions("reading the referrals", &e))?;
        for h in &hooks {
            self.referral_and_claw_back(h, invited.contains(h.user())).await?;
        }
        let changes = self
            .loyalty
            .evaluate_tiers(users, chrono::Utc::now())
            .await
            .map_err(|e| RewardFailure::loyalty("tiers", &e))?;
        for c in &changes {
            publish_tier_change(self.bus.as_ref(), c);
        }
        applied.tiers_changed = changes.len();
        Ok(applied)
    }

    async fn referral_and_claw_back(&self, h: &Hook, invited: bool) -> Result<(), RewardFailure> {
        use flywheel_promotions::Error as P;
        match h {
            Hook::Paid { user, order, .. } if invited => {
                // Only a referred user's first paid order rewards; a later one is refused
                // with `already_rewarded`, which is the answer, not a failure.
                match self.referrals.first_paid_order(user, order).await {
                    Ok(_) | Err(P::NotFound(_)) => Ok(()),
                    Err(P::Conflict {
                        code: flywheel_core::ErrorCode::AlreadyRewarded,
                        ..
                    }) => Ok(()),
                    Err(e) => Err(RewardFailure::promotions(
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
                    .map_err(|e| RewardFailure::loyalty(&format!("claw-back of order {order}"), &e))?;
                if invited {
                    match self.referrals.claw_back(user, order).await {
                        Ok(_) | Err(P::NotFound(_)) => {}
                        Err(e) => {
                            return Err(RewardFailure::promotions(
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

/// Publishes a member's tier change as `tier.changed` (journeys will react to it);
/// logged at debug, the callers log one summary line.
pub fn publish_tier_change(bus: &dyn Bus, change: &flywheel_loyalty::TierChange) {
    tracing::debug!(user = %change.user_id, from = ?change.from, to = %change.to, "member tier changed");
    bus.publish(DomainEvent::TierChanged(change.into()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_outages_are_transient_and_refusals_are_not() {
        let outage = flywheel_store::Error::Connection("gone".into());
        assert!(RewardFailure::store(&outage).transient);
        assert!(
            RewardFailure::store(&flywheel_store::Error::Database(
                "57P01: terminating connection".into()
            ))
            .transient
        );
        assert!(!RewardFailure::store(&flywheel_store::Error::Corrupt("bad".into())).transient);
        // A permanent refusal of the database is the event's own: it is dead-lettered.
        let refused = flywheel_store::Error::Database("23505: duplicate key value".into());
        assert!(!RewardFailure::store(&refused).transient);
        let taken = flywheel_loyalty::Error::conflict(flywheel_core::ErrorCode::SourceKeyTaken, "taken");
        assert!(!RewardFailure::loyalty("claw-back", &taken).transient);
    }
}
