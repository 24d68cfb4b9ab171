//! `flywheel dead-letters [--format table|json|csv]` and `flywheel dead-letters retry ID`:
//! the order rewards set aside after repeated failures of their own, on the store, from
//! the command line (the admin API serves the same at `/api/v1/dead-letters`).

use std::sync::Arc;

use anyhow::Result;
use flywheel_core::bus::InProcessBus;
use flywheel_core::SystemClock;
use flywheel_promotions::coupons::CouponService;

use crate::cli::{DeadLettersAction, DeadLettersArgs};
use crate::config::Settings;
use crate::{commands, output, BadInput};
use flywheel_store::Store;
use flywheel_workers::order_rewards::{retry_dead_letter, Faults, OrderRewards, Retried};

/// Runs `flywheel dead-letters`.
pub async fn run(args: DeadLettersArgs, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    match args.action {
        None => {
            let rows = store
                .read_with(|c| flywheel_store::dead_letters::list(c, None))
                .await?;
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|d| {
                    vec![
                        d.id.to_string(),
                        d.workflow.clone(),
                        d.seq.to_string(),
                        d.message_id.clone(),
                        d.user_id.clone().unwrap_or_default(),
                        d.attempts.to_string(),
                        flywheel_core::time::from_millis(d.last_failed_at).to_rfc3339(),
                        d.error.clone(),
                    ]
                })
                .collect();
            let json: Vec<serde_json::Value> = rows.iter().map(flywheel_api::dead_letters::to_json).collect();
            output::print(
                args.format,
                &[
                    "id",
                    "workflow",
                    "seq",
                    "message_id",
                    "user",
                    "attempts",
                    "last_failed_at",
                    "error",
                ],
                &table,
                &serde_json::json!({ "dead_letters": json }),
            );
        }
        Some(DeadLettersAction::Retry { id }) => {
            let clock = Arc::new(SystemClock);
            let loyalty =
                flywheel_loyalty::Loyalty::new(store.clone(), clock.clone(), settings.loyalty.clone())
                    .map_err(|e| BadInput(format!("[loyalty] settings: {e}")))?;
            let coupons = CouponService::new(store.clone(), clock.clone());
            let referrals = flywheel_promotions::referral::Referrals::new(store.clone(), clock, coupons);
            let rewards = OrderRewards {
                loyalty,
                referrals,
                bus: Arc::new(InProcessBus::default()),
                faults: Arc::new(Faults::default()),
            };
            match retry_dead_letter(&store, &rewards, id).await? {
                Retried::Applied => println!("dead letter {id} applied"),
                Retried::Failed { error, attempts } => {
                    anyhow::bail!("dead letter {id} failed again (attempt {attempts}): {error}")
                }
                Retried::NotFound => return Err(BadInput(format!("no dead letter {id}")).into()),
            }
        }
    }
    Ok(())
}

/// The admin API's dead-letter retry port, answered by the order-rewards workflow.
pub struct RetryPort {
    /// The store holding the list.
    pub store: Store,
    /// The workflow.
    pub rewards: OrderRewards,
}

impl flywheel_api::dead_letters::RetryDeadLetter for RetryPort {
    fn retry(&self, id: i64) -> flywheel_api::dead_letters::RetryFuture<'_> {
        use flywheel_api::dead_letters::RetryOutcome;
        Box::pin(async move {
            Ok(match retry_dead_letter(&self.store, &self.rewards, id).await? {
                Retried::Applied => RetryOutcome::Applied,
                Retried::Failed { error, attempts } => RetryOutcome::Failed { error, attempts },
                Retried::NotFound => RetryOutcome::NotFound,
            })
        })
    }
}
