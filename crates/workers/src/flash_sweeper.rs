//! The flash-sale hold sweeper: every second, holds whose payment window lapsed are
//! released back to stock (the rule is [`FlashSales::sweep`]'s).

use std::sync::Arc;
use std::time::Duration;

use flywheel_promotions::flash::{AnyStock, FlashSales};

use crate::service::{Ctx, Failure, Next, Pace, Service};

/// Releases lapsed flash-sale holds every second.
pub struct FlashSweeper(pub Arc<FlashSales<AnyStock>>);

impl Service for FlashSweeper {
    fn name(&self) -> &'static str {
        "flash_sweeper"
    }

    fn pace(&self) -> Pace {
        Pace::every(Duration::from_secs(1))
    }

    async fn run_once(&mut self, _: &Ctx) -> Result<Next, Failure> {
        let released = self.0.sweep().await?;
        if released > 0 {
            tracing::info!(released, "flash sales: {released} lapsed holds released");
        }
        Ok(Next::Wait)
    }
}
