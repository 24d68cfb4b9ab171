//! `flywheel dead-letters [--format table|json|csv]`, `flywheel dead-letters retry ID` and
//! `flywheel dead-letters dismiss ID`: the order rewards and journey steps set aside after
//! repeated failures, on the store, from the command line (the admin API serves the same
//! at `/api/v1/dead-letters`).

use std::sync::Arc;

use anyhow::Result;
use flywheel_core::bus::InProcessBus;
use flywheel_core::SystemClock;
use flywheel_promotions::coupons::CouponService;

use crate::cli::{DeadLettersAction, DeadLettersArgs};
use crate::config::Settings;
use crate::order_rewards::{Faults, OrderRewards, Retried};
use crate::{commands, output, BadInput};

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
                        d.item.clone(),
                        d.message_id.clone().unwrap_or_default(),
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
                    "item",
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
            match crate::journey_effects::retry(&store, &rewards, id).await? {
                Retried::Applied => println!("dead letter {id} applied"),
                Retried::Resumed => println!("dead letter {id} resumed: the server runs the step again"),
                Retried::Failed { error, attempts } => {
                    anyhow::bail!("dead letter {id} failed again (attempt {attempts}): {error}")
                }
                Retried::NotFound => return Err(BadInput(format!("no dead letter {id}")).into()),
            }
        }
        Some(DeadLettersAction::Dismiss { id }) => {
            if !crate::journey_effects::dismiss(&store, id).await? {
                return Err(BadInput(format!("no dead letter {id}")).into());
            }
            println!("dead letter {id} dismissed");
        }
    }
    Ok(())
}
