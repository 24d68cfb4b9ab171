//! Enforcing campaign guardrails (R11.4, F21, F22): a campaign that trips is paused —
//! its journey set to `paused` — with an alert and an audit entry. A campaign's journey is
//! the one that sent its messages, else the journey of the campaign's name. A campaign
//! without a journey (paid ads) can only be alerted, at most once a day per rule; a
//! journey already paused or stopped is left alone.

use anyhow::Result;
use flywheel_analytics::campaign_facts::Alert;
use flywheel_analytics::reports::Reports;
use flywheel_journeys::db::Status;

const DAY_MS: i64 = 86_400_000;

/// Checks every campaign once at `now`; returns the alerts raised.
pub async fn enforce(
    reports: &Reports,
    journeys: &flywheel_journeys::Engine,
    now: i64,
) -> Result<Vec<Alert>> {
    let mut raised = Vec::new();
    for trip in reports.guardrail_trips(now).await? {
        let journey = trip.journey.as_deref().unwrap_or(&trip.campaign);
        let action = match journeys.get(journey).await {
            Ok(info) if info.row.status == Status::Active => {
                journeys.set_status(journey, Status::Paused).await?;
                "paused"
            }
            Ok(_) => continue,
            Err(flywheel_journeys::Error::NotFound(_)) => "alerted",
            Err(e) => return Err(e.into()),
        };
        if action == "alerted" {
            let last = reports.last_alert(&trip.campaign, trip.rule.as_str()).await?;
            if last.is_some_and(|t| t > now - DAY_MS) {
                continue;
            }
        }
        let alert = Alert {
            at: now,
            campaign: trip.campaign.clone(),
            rule: trip.rule.as_str().to_string(),
            detail: trip.detail.clone(),
            action: action.to_string(),
        };
        tracing::warn!(campaign = %alert.campaign, rule = %alert.rule, action, detail = %alert.detail, "campaign guardrail tripped");
        reports.record_alert(alert.clone()).await?;
        raised.push(alert);
    }
    Ok(raised)
}
