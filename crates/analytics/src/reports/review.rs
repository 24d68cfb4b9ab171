//! Weekly and monthly reviews (R10.5) with benchmark checks (R10.6): gathering one
//! period's report, and keeping each written review in the `reviews` table — one per
//! cadence and period, whichever process writes it first.

use chrono::{Duration, NaiveDate};
use flywheel_store::conn::{Param, Row};
use serde::Serialize;

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

/// A stored review as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewEntry {
    /// Its id.
    pub id: i64,
    /// Weekly or monthly.
    pub cadence: String,
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
    /// When it was written (ms).
    pub created_at: i64,
    /// What the last sending came to (`email: sent to 2 of 2; webhook: HTTP 200`, an
    /// error), if it was sent.
    pub delivery: Option<String>,
    /// Times sending was tried.
    pub attempts: i64,
    /// When it went out to everyone (ms); `None` while still to send.
    pub sent_at: Option<i64>,
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
            b.revenue
                .cmp(&a.revenue)
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
            .read_with(move |c| {
                Ok(!c
                    .query(
                        "SELECT id FROM reviews WHERE cadence = $1 AND period_from = $2",
                        &[Param::Text(cadence.as_str()), Param::Text(&from)],
                    )?
                    .is_empty())
            })
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
                let inserted = c.execute(
                    "INSERT INTO reviews (cadence, period_from, period_to, created_at, body) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (cadence, period_from) DO NOTHING",
                    &[
                        Param::Text(cadence),
                        Param::Text(&from),
                        Param::Text(&to),
                        Param::I64(at),
                        Param::Text(&body),
                    ],
                )?;
                if inserted == 0 {
                    return Ok(None);
                }
                for a in &alerts {
                    crate::campaign_facts::record_alert_by(c, "benchmark", a)?;
                }
                let id = c
                    .query(
                        "SELECT id FROM reviews WHERE cadence = $1 AND period_from = $2",
                        &[Param::Text(cadence), Param::Text(&from)],
                    )?
                    .first()
                    .map(|r| r.i64(0))
                    .transpose()?;
                Ok(id)
            })
            .await?)
    }

    /// Claims the next try at sending review `id`, seen tried `attempts` times and not yet
    /// sent: counts the try and answers whether this caller won it (another process that
    /// saw the same count, or sent it meanwhile, makes this `false`).
    pub async fn claim_review_send(&self, id: i64, attempts: i64) -> Result<bool> {
        Ok(self
            .store
            .write_with(move |c| {
                Ok(c.execute(
                    "UPDATE reviews SET attempts = attempts + 1 WHERE id = $1 AND attempts = $2 AND sent_at IS NULL",
                    &[Param::I64(id), Param::I64(attempts)],
                )? == 1)
            })
            .await?)
    }

    /// Records what a try at sending review `id` came to at `now`, and whether it reached
    /// everyone (then the review is sent and never tried again).
    pub async fn record_review_delivery(&self, id: i64, delivery: String, ok: bool, now: i64) -> Result<()> {
        self.store
            .write_with(move |c| {
                c.execute(
                    "UPDATE reviews SET delivery = $1, sent_at = $2 WHERE id = $3",
                    &[
                        Param::Text(&delivery),
                        Param::OptI64(ok.then_some(now)),
                        Param::I64(id),
                    ],
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// The stored reviews still to send — written since `since` (ms), tried fewer than
    /// `max_attempts` times, not yet sent to everyone — oldest first: (id, tries so far,
    /// the review as written).
    pub async fn unsent_reviews(&self, since: i64, max_attempts: i64) -> Result<Vec<(i64, i64, Review)>> {
        let rows = self
            .store
            .read_with(move |c| {
                c.query(
                    "SELECT id, attempts, body FROM reviews WHERE sent_at IS NULL AND attempts < $1 AND created_at >= $2 \
                     ORDER BY created_at, id",
                    &[Param::I64(max_attempts), Param::I64(since)],
                )?
                .iter()
                .map(|r| Ok((r.i64(0)?, r.i64(1)?, r.text(2)?)))
                .collect::<flywheel_store::Result<Vec<_>>>()
            })
            .await?;
        rows.into_iter()
            .map(|(id, attempts, body)| {
                serde_json::from_str(&body)
                    .map(|r| (id, attempts, r))
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
        Ok(self
            .store
            .read_with(move |c| {
                c.query(
                    "SELECT id, cadence, period_from, period_to, created_at, delivery, attempts, sent_at FROM reviews \
                     ORDER BY period_to DESC, cadence DESC, id DESC LIMIT $1",
                    &[Param::I64(limit)],
                )?
                .iter()
                .map(entry_of)
                .collect()
            })
            .await?)
    }

    /// Stored review `id` (its entry and the report as written), if any.
    pub async fn stored_review(&self, id: i64) -> Result<Option<(ReviewEntry, serde_json::Value)>> {
        let row = self
            .store
            .read_with(move |c| {
                c.query(
                    "SELECT id, cadence, period_from, period_to, created_at, delivery, attempts, sent_at, body FROM reviews WHERE id = $1",
                    &[Param::I64(id)],
                )?
                .first()
                .map(|r| Ok((entry_of(r)?, r.text(8)?)))
                .transpose()
            })
            .await?;
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

/// A review entry from a row of `id, cadence, period_from, period_to, created_at, delivery,
/// attempts, sent_at`.
fn entry_of(r: &Row) -> flywheel_store::Result<ReviewEntry> {
    Ok(ReviewEntry {
        id: r.i64(0)?,
        cadence: r.text(1)?,
        from: r.text(2)?,
        to: r.text(3)?,
        created_at: r.i64(4)?,
        delivery: r.opt_text(5)?,
        attempts: r.i64(6)?,
        sent_at: r.opt_i64(7)?,
    })
}
