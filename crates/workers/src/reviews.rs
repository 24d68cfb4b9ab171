//! The reviews service (R10.5, `[analytics.reviews]`): every ten minutes it looks for a
//! weekly or monthly review that is due, writes it with its benchmark alerts (R10.6) and
//! sends every stored review still to send through `[analytics.notify]`.

use std::time::Duration;

use flywheel_analytics::reports::{Reports, Review};

use crate::notify::{Delivery, Notifier};
use crate::service::{Ctx, Failure, Next, Pace, Service};

/// Tries to send a stored review this many times at most (each check, every 10
/// minutes, is one try).
const MAX_SEND_ATTEMPTS: i64 = 5;

/// Reviews written longer ago than this are not sent any more: a review found unsent
/// after two days of outage is stale news [SUGGESTED DEFAULT].
const RESEND_WINDOW_MS: i64 = 2 * 86_400_000;

/// Writes every review due at `now` (`[analytics.reviews]`) with its benchmark alerts,
/// then sends every stored review still to send through `notifier` — the ones just
/// written, one saved without sending (`report review --save`), one whose sending failed
/// or was cut short by a crash — up to [`MAX_SEND_ATTEMPTS`] tries within
/// [`RESEND_WINDOW_MS`] of writing. A review another process wrote or is sending is left
/// to it. Returns the reviews written.
pub async fn write_due(
    reports: &Reports,
    notifier: &Notifier,
    now: i64,
) -> crate::Result<Vec<(i64, Review)>> {
    let mut written = Vec::new();
    for (cadence, day) in reports.due_reviews(now).await? {
        let review = reports.review(cadence, day, now).await?;
        let Some(id) = reports.save_review(&review).await? else {
            continue;
        };
        tracing::debug!(id, cadence = cadence.as_str(), from = %review.from, to = %review.to, "review written");
        for alert in review.benchmark_alerts(now) {
            tracing::warn!(benchmark = %alert.campaign, detail = %alert.detail, "benchmark missed");
        }
        written.push((id, review));
    }
    if !notifier.is_empty() {
        for (id, attempts, review) in reports
            .unsent_reviews(now - RESEND_WINDOW_MS, MAX_SEND_ATTEMPTS)
            .await?
        {
            send(reports, notifier, id, attempts, &review, now).await?;
        }
    }
    Ok(written)
}

/// Sends stored review `id` (tried `attempts` times so far) and its benchmark alerts
/// through `notifier` if this caller wins the try, and records what sending the review
/// came to; returns that, or `None` when another process took the try. A retry goes to
/// every recipient again with the same Message-ID, which receivers de-duplicate.
pub async fn send(
    reports: &Reports,
    notifier: &Notifier,
    id: i64,
    attempts: i64,
    review: &Review,
    now: i64,
) -> crate::Result<Option<Delivery>> {
    if !reports.claim_review_send(id, attempts).await? {
        return Ok(None);
    }
    for alert in review.benchmark_alerts(review.generated_at) {
        notifier.alert(&alert).await;
    }
    let delivery = notifier.review(id, review).await;
    reports
        .record_review_delivery(id, delivery.summary.clone(), delivery.ok, now)
        .await?;
    Ok(Some(delivery))
}

/// Runs [`write_due`] every ten minutes.
pub struct Reviews {
    reports: Reports,
    notifier: Notifier,
}

impl Reviews {
    /// The service, or `None` when neither weekly nor monthly reviews are on.
    pub fn new(reports: Reports, notifier: Notifier) -> Option<Self> {
        let r = &reports.config().reviews;
        (r.weekly || r.monthly).then_some(Reviews { reports, notifier })
    }
}

impl Service for Reviews {
    fn name(&self) -> &'static str {
        "reviews"
    }

    fn pace(&self) -> Pace {
        Pace::every(Duration::from_secs(600)).max_backoff(Duration::from_secs(600))
    }

    async fn run_once(&mut self, _: &Ctx) -> Result<Next, Failure> {
        let now = chrono::Utc::now().timestamp_millis();
        let written = write_due(&self.reports, &self.notifier, now).await?;
        if !written.is_empty() {
            tracing::info!(written = written.len(), "reviews: {} written", written.len());
        }
        Ok(Next::Wait)
    }
}
