//! The guardrails service and what it enforces (R11.4, F21, F22): a campaign that trips
//! is paused — its journey set to `paused` — with an alert and an audit entry, and the
//! alert is sent through `[analytics.notify]`. A campaign's journey is the one that sent
//! its messages, else the journey of the campaign's name. A campaign without a journey
//! (paid ads) can only be alerted, at most once a day per rule; a journey already paused
//! or stopped is left alone. Checked every `[analytics.guardrail] interval_secs`.

use std::time::Duration;

use flywheel_analytics::campaign_facts::Alert;
use flywheel_analytics::reports::Reports;
use flywheel_journeys::db::Status;

use crate::notify::Notifier;
use crate::service::{Ctx, Failure, Next, Pace, Service};

const DAY_MS: i64 = 86_400_000;

/// Checks every campaign once at `now`; returns the alerts raised.
pub async fn enforce(
    reports: &Reports,
    journeys: &flywheel_journeys::Engine,
    now: i64,
) -> crate::Result<Vec<Alert>> {
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

/// Runs [`enforce`] every `[analytics.guardrail] interval_secs` and sends each alert.
pub struct Guardrails {
    reports: Reports,
    journeys: flywheel_journeys::Engine,
    notifier: Notifier,
}

impl Guardrails {
    /// The service, or `None` when `[analytics.guardrail]` is disabled.
    pub fn new(reports: Reports, journeys: flywheel_journeys::Engine, notifier: Notifier) -> Option<Self> {
        reports.config().guardrail.enabled.then_some(Guardrails {
            reports,
            journeys,
            notifier,
        })
    }
}

impl Service for Guardrails {
    fn name(&self) -> &'static str {
        "guardrails"
    }

    fn pace(&self) -> Pace {
        let secs = self.reports.config().guardrail.interval_secs.max(1);
        Pace::every(Duration::from_secs(secs))
    }

    async fn run_once(&mut self, _: &Ctx) -> Result<Next, Failure> {
        let now = chrono::Utc::now().timestamp_millis();
        let alerts = enforce(&self.reports, &self.journeys, now).await?;
        if !alerts.is_empty() {
            tracing::info!(
                alerts = alerts.len(),
                "guardrails: {} campaigns tripped",
                alerts.len()
            );
        }
        for a in alerts {
            self.notifier.alert(&a).await;
        }
        Ok(Next::Wait)
    }
}
