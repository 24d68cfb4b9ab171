//! Weekly and monthly reviews (R10.5) with benchmark checks (R10.6): gathering one
//! period's report, and keeping each written review in the `reviews` table — one per
//! cadence and period, whichever process writes it first.

use chrono::{Duration, NaiveDate};
use flywheel_store::analytics::reviews::{self as stored, NewReview};
use serde::Serialize;

pub use flywheel_store::analytics::reviews::ReviewEntry;

use super::{Filter, GoalProgress, Reports, Result};
use crate::campaign::CampaignRow;
use crate::campaign_facts::{alerts_in, Alert};
use crate::channel::{channel_rows, ChannelRow};
use crate::review::{
    benchmark_facts, changes, check_benchmarks, observed_retention, BenchmarkCheck, Cadence, MetricChange,
    RetentionFigure,
};

/// The retention days a review shows (次日, 7日, 30日留存).
const RETENTION_DAYS: [u32; 3] = [1, 7, 30];

/// One period's review: KPIs against the period before, retention observed in the period,
/// campaigns and channels, goals, benchmarks and the alerts raised.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Review {
    /// Weekly or monthly.
    pub cadence: Cadence,
    /// First day (shop-local).
    pub from: NaiveDate,
    /// Last day, included.
    pub to: NaiveDate,
    /// The period compared against: first day.
    pub previous_from: NaiveDate,
    /// The period compared against: last day.
    pub previous_to: NaiveDate,
    /// Whether the period had ended when the review was written.
    pub complete: bool,
    /// When the review was written (ms).
    pub generated_at: i64,
    /// KPIs against the period before.
    pub changes: Vec<MetricChange>,
    /// D1, D7, D30 retention observed in the period.
    pub retention: Vec<RetentionFigure>,
    /// Campaign metrics of the period, highest revenue first.
    pub campaigns: Vec<CampaignRow>,
    /// Spend, revenue and ROI per channel in the period.
    pub channels: Vec<ChannelRow>,
    /// Goals as of the period's end.
    pub goals: Vec<GoalProgress>,
    /// The configured benchmarks, judged on the period.
    pub benchmarks: Vec<BenchmarkCheck>,
    /// Alerts raised in the period (guardrails and benchmarks), oldest first.
    pub alerts: Vec<Alert>,
}

impl Review {
    /// The alerts this review raises: one per missed benchmark (rule `benchmark_missed`:
    /// below the benchmark, or above it for churn), action `alerted`, at `at`.
    pub fn benchmark_alerts(&self, at: i64) -> Vec<Alert> {
        self.benchmarks
            .iter()
            .filter(|b| b.missed)
            .map(|b| Alert {
                at,
                campaign: b.name.clone(),
                rule: "benchmark_missed".into(),
                detail: format!(
                    "{} {} {} benchmark {:.2}% ({} {}–{})",
                    b.metric.as_str(),
                    b.value,
                    if b.metric.higher_is_better() { "<" } else { ">" },
                    b.benchmark * 100.0,
                    self.cadence.as_str(),
                    self.from,
                    self.to
                ),
                action: "alerted".into(),
            })
            .collect()
    }
}

impl Reports {
    /// The review of the `cadence` period containing shop-local `day`, as of `now`.
    pub async fn review(&self, cadence: Cadence, day: NaiveDate, now: i64) -> Result<Review> {
        // Checked before any date arithmetic, which would overflow near chrono's limits.
        self.span(day, day)?;
        let (from, to) = cadence.period_of(day);
        let (previous_from, previous_to) = cadence.previous(from);
        let cur = self.span(from, to)?;
        let prev = self.span(previous_from, previous_to)?;
        let k_cur = self.kpi(&Filter::period(cur)).await?;
        let k_prev = self.kpi(&Filter::period(prev)).await?;
        let today = to.min(self.day_of(now));
        let longest = RETENTION_DAYS.iter().copied().max().unwrap_or(0);
        let signups = self.span(from - Duration::days(i64::from(longest)), to)?;
        let cohorts = self
            .cohort(&Filter::period(signups), &RETENTION_DAYS, today)
            .await?;
        let retention = observed_retention(&cohorts, &RETENTION_DAYS, from, to);
        let mut campaigns = self.campaigns(&Filter::period(cur)).await?;
        campaigns.sort_by(|a, b| {
            b.metrics
                .revenue
                .cmp(&a.metrics.revenue)
                .then_with(|| a.campaign.cmp(&b.campaign))
        });
        let channels = channel_rows(&campaigns, &self.config);
        let goals = self.goals(now.min(cur.to - 1)).await?;
        let alerts = self.store.read_with(move |c| alerts_in(c, cur)).await?;
        let churn = (k_cur.churn.churned, k_cur.churn.active_at_start);
        let benchmarks = check_benchmarks(
            &self.config.benchmarks,
            &benchmark_facts(&k_cur.kpis, &retention, churn),
        );
        Ok(Review {
            cadence,
            from,
            to,
            previous_from,
            previous_to,
            complete: now >= cur.to,
            generated_at: now,
            changes: changes(&k_cur.kpis, &k_prev.kpis, (k_cur.churn.rate, k_prev.churn.rate)),
            retention,
            campaigns,
            channels,
            goals,
            benchmarks,
            alerts,
        })
    }

    /// The reviews due at `now` and not yet written: for each cadence turned on
    /// (`[analytics.reviews]`), the last complete period, once the shop-local hour of the
    /// day after it has reached `at_hour`. Returns (cadence, a day of the period).
    pub async fn due_reviews(&self, now: i64) -> Result<Vec<(Cadence, NaiveDate)>> {
        let r = &self.config.reviews;
        let local = flywheel_core::time::from_millis(now).with_timezone(&self.tz);
        let today = local.date_naive();
        let mut due = Vec::new();
        for (on, cadence) in [(r.weekly, Cadence::Weekly), (r.monthly, Cadence::Monthly)] {
            let (from, to) = cadence.last_complete(today);
            let ready = today > to + Duration::days(1) || chrono::Timelike::hour(&local) >= r.at_hour;
            if on && ready && !self.review_exists(cadence, from).await? {
                due.push((cadence, from));
            }
        }
        Ok(due)
    }

    async fn review_exists(&self, cadence: Cadence, from: NaiveDate) -> Result<bool> {
        let from = from.to_string();
        Ok(self
            .store
            .read_with(move |c| stored::exists(c, cadence.as_str(), &from))
            .await?)
    }

    /// Stores `review` with its benchmark alerts (each with an audit entry), in one
    /// transaction. Returns the new id, or `None` when that period's review was already
    /// written (by this or another process) — then nothing is stored.
    pub async fn save_review(&self, review: &Review) -> Result<Option<i64>> {
        let body = serde_json::to_string(review)
            .map_err(|e| super::Error::refused(flywheel_core::ErrorCode::Internal, e.to_string()))?;
        let (cadence, from, to, at) = (
            review.cadence.as_str(),
            review.from.to_string(),
            review.to.to_string(),
            review.generated_at,
        );
        let alerts = review.benchmark_alerts(at);
        Ok(self
            .store
            .write_with(move |c| {
                let new = NewReview {
                    cadence,
                    from: &from,
                    to: &to,
                    created_at: at,
                    body: &body,
                };
                let Some(id) = stored::insert(c, &new)? else {
                    return Ok(None);
                };
                for a in &alerts {
                    crate::campaign_facts::record_alert_by(c, "benchmark", a)?;
                }
                Ok(Some(id))
            })
            .await?)
    }

    /// Claims the next try at sending review `id`, seen tried `attempts` times and not yet
    /// sent: counts the try and answers whether this caller won it (another process that
    /// saw the same count, or sent it meanwhile, makes this `false`).
    pub async fn claim_review_send(&self, id: i64, attempts: i64) -> Result<bool> {
        Ok(self
            .store
            .write_with(move |c| stored::claim_send(c, id, attempts))
            .await?)
    }

    /// Records what a try at sending review `id` came to at `now`, and whether it reached
    /// everyone (then the review is sent and never tried again).
    pub async fn record_review_delivery(&self, id: i64, delivery: String, ok: bool, now: i64) -> Result<()> {
        Ok(self
            .store
            .write_with(move |c| stored::record_delivery(c, id, &delivery, ok.then_some(now)))
            .await?)
    }

    /// The stored reviews still to send — written since `since` (ms), tried fewer than
    /// `max_attempts` times, not yet sent to everyone — oldest first: (id, tries so far,
    /// the review as written).
    pub async fn unsent_reviews(&self, since: i64, max_attempts: i64) -> Result<Vec<(i64, i64, Review)>> {
        let rows = self
            .store
            .read_with(move |c| stored::unsent(c, since, max_attempts))
            .await?;
        rows.into_iter()
            .map(|r| {
                let id = r.id;
                serde_json::from_str(&r.body)
                    .map(|review| (id, r.attempts, review))
                    .map_err(|e| {
                        super::Error::refused(
                            flywheel_core::ErrorCode::Internal,
                            format!("stored review {id} does not read back: {e}"),
                        )
                    })
            })
            .collect()
    }

    /// The stored reviews, newest period first, at most `limit`.
    pub async fn reviews(&self, limit: i64) -> Result<Vec<ReviewEntry>> {
        Ok(self.store.read_with(move |c| stored::list(c, limit)).await?)
    }

    /// Stored review `id` (its entry and the report as written), if any.
    pub async fn stored_review(&self, id: i64) -> Result<Option<(ReviewEntry, serde_json::Value)>> {
        let row = self.store.read_with(move |c| stored::get(c, id)).await?;
        row.map(|(entry, body)| {
            serde_json::from_str(&body).map(|v| (entry, v)).map_err(|e| {
                super::Error::refused(
                    flywheel_core::ErrorCode::Internal,
                    format!("stored review {id} is not JSON: {e}"),
                )
            })
        })
        .transpose()
    }
}
