//! The journeys engine's alert port and test-only fault point, and the dead-letter port
//! of the admin API over both workflows that set items aside (order rewards and journey
//! steps): a retry or dismissal goes to the workflow that listed the item.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use flywheel_api::dead_letters::{DismissFuture, RetryDeadLetter, RetryFuture};
use flywheel_journeys::dead_letter::{self as journey_letters, Handled};
use flywheel_journeys::ports::{AlertPort, DeadLettered, FaultPoint, PortError, PortFuture, PortResult};
use flywheel_store::{dead_letters, Store};

use crate::order_rewards::{retry_dead_letter, Faults, OrderRewards, Retried};

/// Dead-letter alerts of journey steps: stored with the other alerts (campaign: the
/// journey, rule `dead_lettered`) and sent through `[analytics.notify]`.
pub struct JourneyAlerts {
    /// Where alerts are stored.
    pub store: Store,
    /// Where they are sent.
    pub notifier: crate::notify::Notifier,
}

impl AlertPort for JourneyAlerts {
    fn dead_lettered<'a>(&'a self, d: &'a DeadLettered) -> PortFuture<'a, ()> {
        Box::pin(async move {
            let alert = flywheel_analytics::campaign_facts::Alert {
                at: chrono::Utc::now().timestamp_millis(),
                campaign: d.journey.clone(),
                rule: "dead_lettered".into(),
                detail: format!(
                    "step {} of run {} (user {}) failed {} times and was set aside: {}",
                    d.step, d.run, d.user, d.attempts, d.error
                ),
                action: "alerted".into(),
            };
            let a = alert.clone();
            self.store
                .write_with(move |c| {
                    flywheel_analytics::campaign_facts::record_alert_by(c, journey_letters::WORKFLOW, &a)
                })
                .await
                .map_err(|e| PortError::store(&e))?;
            let sent = self.notifier.alert(&alert).await;
            tracing::debug!(delivery = %sent.summary, "dead-letter alert sent");
            Ok(())
        })
    }
}

/// Test-only faults before journey effects, read once from `FLYWHEEL_FAULTS` at start
/// (unset in production: none is ever injected). Comma-separated `POINT:COUNT`:
///
/// - `journeys.effects:N`: the next N effects (coupon, points, perk, tag, trait steps)
///   fail as a store outage would, before anything is done;
/// - `journeys.effects.poison=STEP:N`: the next N effects of step STEP (of any journey)
///   fail as an outage.
#[derive(Debug, Default)]
pub struct EffectFaults {
    any: AtomicI64,
    poison: Option<(String, AtomicI64)>,
}

impl EffectFaults {
    /// The faults of `FLYWHEEL_FAULTS`, if it names any journey fault point.
    pub fn from_env() -> Option<Arc<dyn FaultPoint>> {
        let spec = std::env::var("FLYWHEEL_FAULTS").ok()?;
        let f = EffectFaults::parse(&spec);
        (f.any.load(std::sync::atomic::Ordering::SeqCst) > 0 || f.poison.is_some())
            .then(|| Arc::new(f) as Arc<dyn FaultPoint>)
    }

    fn parse(spec: &str) -> EffectFaults {
        let mut f = EffectFaults::default();
        for part in spec.split(',').map(str::trim) {
            let Some((point, n)) = part.rsplit_once(':') else {
                continue;
            };
            let Ok(n) = n.parse::<i64>() else { continue };
            match point.split_once('=') {
                Some(("journeys.effects.poison", step)) => {
                    f.poison = Some((step.to_owned(), AtomicI64::new(n)));
                }
                _ if point == "journeys.effects" => f.any = AtomicI64::new(n),
                _ => {}
            }
        }
        f
    }
}

impl FaultPoint for EffectFaults {
    fn before_effect(&self, step: &str) -> PortResult<()> {
        if let Some((poisoned, left)) = &self.poison {
            if poisoned == step && Faults::take(left) {
                return Err(PortError::transient(format!(
                    "injected store fault at step {step}"
                )));
            }
        }
        if Faults::take(&self.any) {
            return Err(PortError::transient("injected store fault at journeys.effects"));
        }
        Ok(())
    }
}

/// Retries and dismissals of dead letters, sent to the workflow that listed each.
pub struct DeadLetterPort {
    /// The store holding the list.
    pub store: Store,
    /// The order rewards.
    pub rewards: OrderRewards,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Retries dead letter `id`: an order-rewards event is applied again now, a journey
/// step is resumed (its run's timer is due now, its attempts start over).
pub async fn retry(store: &Store, rewards: &OrderRewards, id: i64) -> Result<Retried, flywheel_store::Error> {
    let Some(row) = store.read_with(move |c| dead_letters::get(c, id)).await? else {
        return Ok(Retried::NotFound);
    };
    if row.workflow != journey_letters::WORKFLOW {
        return retry_dead_letter(store, rewards, id).await;
    }
    Ok(match journey_letters::resume(store, id, now_ms()).await? {
        Handled::Done => {
            tracing::info!(id, item = %row.item, "journey step resumed from the dead-letter list");
            Retried::Resumed
        }
        Handled::RunEnded => Retried::Applied,
        Handled::NotFound => Retried::NotFound,
    })
}

/// Dismisses dead letter `id`: it leaves the list unapplied; a journey run waiting at the
/// step ends. False when it was not listed.
pub async fn dismiss(store: &Store, id: i64) -> Result<bool, flywheel_store::Error> {
    let Some(row) = store.read_with(move |c| dead_letters::get(c, id)).await? else {
        return Ok(false);
    };
    let gone = if row.workflow == journey_letters::WORKFLOW {
        journey_letters::dismiss(store, id, now_ms()).await? != Handled::NotFound
    } else {
        store.write_with(move |c| dead_letters::remove(c, id)).await?
    };
    if gone {
        tracing::warn!(id, workflow = %row.workflow, item = %row.item, error = %row.error, "dead letter dismissed");
    }
    Ok(gone)
}

impl RetryDeadLetter for DeadLetterPort {
    fn retry(&self, id: i64) -> RetryFuture<'_> {
        Box::pin(retry(&self.store, &self.rewards, id))
    }

    fn dismiss(&self, id: i64) -> DismissFuture<'_> {
        Box::pin(dismiss(&self.store, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_journey_fault_spec() {
        let f = EffectFaults::parse("order_hooks:3,journeys.effects:2, journeys.effects.poison=points:4");
        assert!(f.before_effect("coupon").is_err());
        assert!(f.before_effect("coupon").is_err());
        assert!(f.before_effect("coupon").is_ok());
        for _ in 0..4 {
            let e = f.before_effect("points").unwrap_err();
            assert!(e.transient);
        }
        assert!(f.before_effect("points").is_ok());
    }
}
