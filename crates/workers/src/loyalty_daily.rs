//! The loyalty daily jobs: every minute the expiry of lapsed point lots is written, and
//! once a day (per UTC date) every member's tier is re-evaluated — orders and activity
//! (growth) age out of the 365-day window — publishing each change as `tier.changed`.
//! Each tier change is logged at debug; each run that did something logs one summary line.

use std::sync::Arc;
use std::time::Duration;

use flywheel_core::bus::Bus;
use flywheel_loyalty::Loyalty;

use crate::order_rewards::publish_tier_change;
use crate::service::{Ctx, Failure, Next, Pace, Service};

/// Expires point lots every minute and re-evaluates tiers once a day.
pub struct LoyaltyDaily {
    loyalty: Loyalty,
    bus: Arc<dyn Bus>,
    /// The date tiers were last re-evaluated.
    last_tiers: Option<chrono::NaiveDate>,
}

impl LoyaltyDaily {
    /// The service over `loyalty`, publishing tier changes on `bus`.
    pub fn new(loyalty: Loyalty, bus: Arc<dyn Bus>) -> Self {
        LoyaltyDaily {
            loyalty,
            bus,
            last_tiers: None,
        }
    }
}

impl Service for LoyaltyDaily {
    fn name(&self) -> &'static str {
        "loyalty_daily"
    }

    fn pace(&self) -> Pace {
        Pace::every(Duration::from_secs(60))
    }

    async fn run_once(&mut self, _: &Ctx) -> Result<Next, Failure> {
        let now = chrono::Utc::now();
        let lots = self.loyalty.expire_due(now).await?;
        if lots > 0 {
            tracing::info!(lots, "points: {lots} lots expired");
        }
        if self.last_tiers != Some(now.date_naive()) {
            let changes = self.loyalty.evaluate_all_tiers(now).await?;
            for c in &changes {
                publish_tier_change(self.bus.as_ref(), c);
            }
            self.last_tiers = Some(now.date_naive());
            if changes.is_empty() {
                tracing::debug!("tiers: none changed");
            } else {
                tracing::info!(changed = changes.len(), "tiers: {} changed", changes.len());
            }
        }
        Ok(Next::Wait)
    }
}
