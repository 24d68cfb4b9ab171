//! Putting predicted CLV on profiles (docs/analytics.md, "Lifetime value"): every
//! customer's `clv_p_alive`, `clv_expected_purchases`, `clv_value` and `clv_churn_risk` as
//! profile traits, written as identify calls through an ingest pipeline so the audience
//! engine sees them like any other traits. They are the system's own writes, never
//! customer activity (`NewEvent::system_write`). The CLI does it on demand
//! (`report ltv --clv --save-traits`); the server's [`ClvRefresh`] service every
//! `[analytics.clv] refresh_hours`.

use std::time::Duration;

use flywheel_analytics::reports::{Filter, Reports};
use flywheel_analytics::Period;
use flywheel_ingest::ecommerce::materialise;
use flywheel_ingest::message::{parse, Envelope};
use flywheel_ingest::Pipeline;

use crate::service::{Ctx, Failure, Next, Pace, Service};
use crate::Error;

/// Sends `messages` (identify calls) through `pipeline`; returns how many were stored.
pub async fn save(pipeline: &Pipeline, messages: Vec<serde_json::Value>) -> crate::Result<u64> {
    let received = chrono::Utc::now();
    let mut events = Vec::with_capacity(messages.len());
    for (index, m) in messages.into_iter().enumerate() {
        let env = Envelope {
            index,
            kind: None,
            received_at: Some(received),
            sent_at: None,
            context: None,
            integrations: None,
            ..Default::default()
        };
        let parsed = parse(m, &env).map_err(|e| Error::Ingest(format!("CLV trait message: {e}")))?;
        events.push(
            materialise(parsed.event, None, 0)
                .map_err(|e| Error::Ingest(format!("CLV trait message: {e}")))?
                .system_write(),
        );
    }
    let mut stored = 0;
    for chunk in events.chunks(500) {
        stored += pipeline
            .submit_waiting(chunk.to_vec())
            .await
            .map_err(|e| Error::Ingest(e.to_string()))?
            .inserted;
    }
    Ok(stored)
}

/// Scores every customer at `now` and saves the traits; returns how many were stored.
pub async fn refresh(reports: &Reports, pipeline: &Pipeline, now: i64) -> crate::Result<u64> {
    let everyone = Filter::period(Period { from: 0, to: now });
    let scored = reports.clv(&everyone, now).await?;
    save(pipeline, scored.identify_messages(now)).await
}

/// Refreshes the traits every `refresh_hours`, the first time `refresh_hours` after start.
pub struct ClvRefresh {
    reports: Reports,
    pipeline: Pipeline,
    every: Duration,
}

impl ClvRefresh {
    /// The service, or `None` when `hours` is 0 (never).
    pub fn new(reports: Reports, pipeline: Pipeline, hours: u32) -> Option<Self> {
        (hours > 0).then(|| ClvRefresh {
            reports,
            pipeline,
            every: Duration::from_secs(u64::from(hours) * 3600),
        })
    }
}

impl Service for ClvRefresh {
    fn name(&self) -> &'static str {
        "clv_refresh"
    }

    fn pace(&self) -> Pace {
        Pace::every(self.every)
            .first_after(self.every)
            .max_backoff(Duration::from_secs(600))
    }

    async fn run_once(&mut self, _: &Ctx) -> Result<Next, Failure> {
        let n = refresh(
            &self.reports,
            &self.pipeline,
            chrono::Utc::now().timestamp_millis(),
        )
        .await?;
        tracing::info!(customers = n, "CLV traits: {n} customers refreshed");
        Ok(Next::Wait)
    }
}
