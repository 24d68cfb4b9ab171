//! Upgrades and downgrades (R7.2): a member's tier, from their spend and growth over
//! the last 365 days ([`standing`]), is re-evaluated after each paid or reversed order
//! and daily for everyone with a tier (orders and activity age out of the 365-day
//! window), and each change is returned as a [`TierChange`] for the caller to publish
//! (`tier.changed` on the bus). Changes take effect at once in both directions
//! ([SUGGESTED DEFAULT]; the seeds set no grace period).

use flywheel_core::{Fen, Timestamp};
use flywheel_store::conn::Conn;
use flywheel_store::loyalty as q;
use flywheel_store::member_activity as m;
use serde::Serialize;

use crate::growth::Activity;
use crate::tiers::TierStatus;
use crate::{Loyalty, LoyaltyConfig, Result};

/// The tiers' evaluation period: the 365 days up to the evaluation, ms.
const PERIOD_MS: i64 = 365 * crate::entry::DAY_MS;

/// `user`'s tier at `until` (ms) from the person's net spend and growth over
/// `(until − 365 days, until]` (R7.2): orders count total − refunded (cancelled 0);
/// growth counts their customer activity on the shop's calendar (`tz`).
pub(crate) fn standing(
    c: &mut dyn Conn,
    config: &LoyaltyConfig,
    tz: chrono_tz::Tz,
    user: &str,
    until: i64,
) -> flywheel_store::Result<TierStatus> {
    let from = until.saturating_sub(PERIOD_MS);
    let person = m::member_ids(c, user)?;
    let spend = Fen(m::net_spend(c, &person, from, until)?);
    let g = &config.growth;
    let did = m::member_activity(c, &person, from, until, &g.sign_in_events, &g.review_events)?;
    let activity = Activity::of(&did, tz);
    let growth = g.growth(&activity);
    Ok(TierStatus {
        tier: config.tiers.tier_for_activity(spend, growth).to_owned(),
        spend_365d: spend,
        growth_365d: growth,
        activity_365d: activity,
    })
}

/// A member's tier changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierChange {
    /// The member.
    pub user_id: String,
    /// The tier before (`None`: first evaluation).
    pub from: Option<String>,
    /// The tier now.
    pub to: String,
    /// Net spend of the last 365 days that decided it.
    pub spend_365d: Fen,
    /// Growth of the last 365 days that decided it.
    pub growth_365d: i64,
    /// Up the ladder (or first evaluation) rather than down.
    pub upgrade: bool,
}

impl From<&TierChange> for flywheel_core::bus::TierChanged {
    fn from(c: &TierChange) -> Self {
        flywheel_core::bus::TierChanged {
            user_id: c.user_id.clone(),
            from: c.from.clone(),
            to: c.to.clone(),
            spend_365d: c.spend_365d,
            upgrade: c.upgrade,
        }
    }
}

impl Loyalty {
    /// Re-evaluates `user`'s tier at `now`; returns the change, if any.
    pub async fn evaluate_tier(&self, user: &str, now: Timestamp) -> Result<Option<TierChange>> {
        let status = self.tier_of(user, now).await?;
        let u = user.to_owned();
        let recorded = self
            .store
            .read_with(move |c| q::current_tier(c, &u))
            .await?
            .map(|(t, _)| t);
        if recorded.as_deref() == Some(status.tier.as_str()) {
            // Unchanged: nothing to write.
            return Ok(None);
        }
        let (u, tier, at) = (
            user.to_owned(),
            status.tier.clone(),
            flywheel_core::time::to_millis(now),
        );
        let before = self
            .store
            .write_with(move |c| {
                let before = q::current_tier(c, &u)?.map(|(t, _)| t);
                q::set_tier(c, &u, &tier, at)?;
                Ok(before)
            })
            .await?;
        if before.as_deref() == Some(status.tier.as_str()) {
            return Ok(None);
        }
        let upgrade = before
            .as_deref()
            .is_none_or(|b| self.rank(&status.tier) > self.rank(b));
        Ok(Some(TierChange {
            user_id: user.to_owned(),
            from: before,
            to: status.tier,
            spend_365d: status.spend_365d,
            growth_365d: status.growth_365d,
            upgrade,
        }))
    }

    /// Re-evaluates the tiers of `users` at `now`, 100 members per write transaction (the
    /// order hooks' batches); returns the changes, in the order of `users`.
    pub async fn evaluate_tiers(&self, users: Vec<String>, now: Timestamp) -> Result<Vec<TierChange>> {
        let until = flywheel_core::time::to_millis(now);
        let mut out = Vec::new();
        for chunk in users.chunks(100) {
            let (chunk, config, tz) = (chunk.to_vec(), self.config.clone(), self.tz);
            let changes = self
                .store
                .write_tx(move |c| {
                    let mut changes = Vec::new();
                    for user in chunk {
                        let status = standing(c, &config, tz, &user, until)?;
                        let before = q::current_tier(c, &user)?.map(|(t, _)| t);
                        if before.as_deref() == Some(status.tier.as_str()) {
                            continue;
                        }
                        q::set_tier(c, &user, &status.tier, until)?;
                        changes.push((user, before, status));
                    }
                    Ok::<_, crate::Error>(changes)
                })
                .await?;
            for (user_id, from, status) in changes {
                let upgrade = from
                    .as_deref()
                    .is_none_or(|b| self.rank(&status.tier) > self.rank(b));
                out.push(TierChange {
                    user_id,
                    from,
                    to: status.tier,
                    spend_365d: status.spend_365d,
                    growth_365d: status.growth_365d,
                    upgrade,
                });
            }
        }
        Ok(out)
    }

    /// A tier's place on the ladder (`None`: not configured).
    fn rank(&self, tier: &str) -> Option<usize> {
        self.config.tiers.tiers.iter().position(|x| x.name == tier)
    }

    /// Re-evaluates everyone with a recorded tier (the daily run); returns the changes.
    pub async fn evaluate_all_tiers(&self, now: Timestamp) -> Result<Vec<TierChange>> {
        let users = self.store.read_with(q::tiered_users).await?;
        let mut out = Vec::new();
        for u in users {
            if let Some(change) = self.evaluate_tier(&u, now).await? {
                out.push(change);
            }
        }
        Ok(out)
    }
}
