//! Group-buy expiry: every second, open groups past their deadline expire and their
//! orders are cancelled (the rule is [`GroupBuys::expire_due`]'s).

use std::time::Duration;

use flywheel_promotions::group::GroupBuys;

use crate::service::{Ctx, Failure, Next, Pace, Service};

/// Expires due group buys every second.
pub struct GroupExpiry(pub GroupBuys);

impl Service for GroupExpiry {
    fn name(&self) -> &'static str {
        "group_expiry"
    }

    fn pace(&self) -> Pace {
        Pace::every(Duration::from_secs(1))
    }

    async fn run_once(&mut self, _: &Ctx) -> Result<Next, Failure> {
        let expired = self.0.expire_due().await?;
        if !expired.is_empty() {
            tracing::debug!(groups = ?expired, "group buys expired");
            tracing::info!(expired = expired.len(), "group buys: {} expired", expired.len());
        }
        Ok(Next::Wait)
    }
}
