//! Putting predicted CLV on profiles (docs/analytics.md, "Lifetime value"): every
//! customer's `clv_p_alive`, `clv_expected_purchases`, `clv_value` and `clv_churn_risk` as
//! profile traits, written as identify calls through an ingest pipeline so the audience
//! engine sees them like any other traits. The CLI does it on demand
//! (`report ltv --clv --save-traits`); the server every `[analytics.clv] refresh_hours`.

use anyhow::Result;
use flywheel_analytics::reports::{Filter, Reports};
use flywheel_analytics::Period;
use flywheel_ingest::ecommerce::materialise;
use flywheel_ingest::message::{parse, Envelope};
use flywheel_ingest::Pipeline;

/// Sends `messages` (identify calls) through `pipeline`; returns how many were stored.
pub async fn save(pipeline: &Pipeline, messages: Vec<serde_json::Value>) -> Result<u64> {
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
        };
        let parsed = parse(m, &env).map_err(|e| anyhow::anyhow!("CLV trait message: {e}"))?;
        events
            .push(materialise(parsed.event, None, 0).map_err(|e| anyhow::anyhow!("CLV trait message: {e}"))?);
    }
    let mut stored = 0;
    for chunk in events.chunks(500) {
        stored += pipeline.submit_waiting(chunk.to_vec()).await?.inserted;
    }
    Ok(stored)
}

/// Scores every customer at `now` and saves the traits; returns how many were stored.
pub async fn refresh(reports: &Reports, pipeline: &Pipeline, now: i64) -> Result<u64> {
    let everyone = Filter::period(Period { from: 0, to: now });
    let scored = reports.clv(&everyone, now).await?;
    save(pipeline, scored.identify_messages(now)).await
}

/// Refreshes the traits every `hours` (0: never), the first time `hours` after start.
pub fn spawn(reports: Reports, pipeline: Pipeline, hours: u32) {
    if hours == 0 {
        return;
    }
    let every = std::time::Duration::from_secs(u64::from(hours) * 3600);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match refresh(&reports, &pipeline, chrono::Utc::now().timestamp_millis()).await {
                Ok(n) => tracing::info!(customers = n, "CLV traits refreshed"),
                Err(e) => tracing::warn!(error = %e, "CLV traits not refreshed"),
            }
        }
    });
}
