//! Analytics over HTTP (issue 7): `/api/v1/analytics/…` (admin token). Every report
//! takes `from`/`to` (shop-local days, inclusive; default the 30 days ending today) and
//! the filters `segment`, `channel`, `campaign`; the formulas are in docs/analytics.md.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use flywheel_analytics::campaign_facts::Spend;
use flywheel_analytics::config::Model;
use flywheel_analytics::reports::{CohortSpec, Error as ReportError, Filter};
use flywheel_analytics::review::Cadence;
use flywheel_core::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Admin, AdminBody, Params};
use crate::AppState;

/// The query of every analytics route (each route reads the fields it needs).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// First day, `YYYY-MM-DD` (shop-local).
    from: Option<String>,
    /// Last day, inclusive.
    to: Option<String>,
    /// Only the members of this saved segment.
    segment: Option<String>,
    /// Only this channel.
    channel: Option<String>,
    /// Only this campaign.
    campaign: Option<String>,
    /// Cohort: the period numbers, e.g. `1,7,30`.
    days: Option<String>,
    /// Cohort: `day` (default), `week` or `month`.
    by: Option<String>,
    /// Cohort: `signup` (default) or `first-purchase`.
    cohort: Option<String>,
    /// Funnel: the event names in order, comma-separated.
    steps: Option<String>,
    /// Funnel: run this saved funnel (instead of steps, window_hours, breakdown).
    saved: Option<String>,
    /// Funnel: the conversion window in hours (default 24).
    window_hours: Option<f64>,
    /// Funnel: break down by this profile trait, or by a property of the step-1 event
    /// (`properties.category`, `context.campaign.source`).
    breakdown: Option<String>,
    /// Channels: the month, `YYYY-MM` (default this month).
    month: Option<String>,
    /// Attribution: `first` or `last` (default the configured one).
    model: Option<String>,
    /// Attribution: window in days (default the configured one).
    window_days: Option<u32>,
    /// Uplift: the journey.
    journey: Option<String>,
    /// Alerts, reviews: how many (default 100, 50).
    limit: Option<i64>,
    /// Review: `weekly` or `monthly` (default weekly).
    cadence: Option<String>,
    /// Review: a day of the period, `YYYY-MM-DD` (default the last complete period).
    day: Option<String>,
}

fn day(text: &str, what: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ApiError::new(ErrorCode::InvalidDate, format!("{what} {text:?}: use YYYY-MM-DD")))
}

/// A numeric id from the path (our JSON 400 `invalid_path`, not axum's plain-text one).
fn id_of(text: &str) -> Result<i64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::new(ErrorCode::InvalidPath, format!("id {text:?} is not a number")))
}

fn today(s: &AppState) -> NaiveDate {
    s.reports.day_of(chrono::Utc::now().timestamp_millis())
}

/// The filter of `q`: its period (default the 30 days ending today), segment members,
/// channel and campaign.
fn filter(s: &AppState, q: &AnalyticsQuery) -> Result<Filter, ApiError> {
    let to = q.to.as_deref().map(|t| day(t, "to")).transpose()?;
    let from = q.from.as_deref().map(|f| day(f, "from")).transpose()?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut f = Filter::period(s.reports.days_or_recent(from, to, now)?);
    if let Some(name) = &q.segment {
        f.users = Some(Arc::new(s.audience.segment_profile_ids(name)?));
    }
    f.channel.clone_from(&q.channel);
    f.campaign.clone_from(&q.campaign);
    Ok(f)
}

/// `GET /api/v1/analytics/kpi`: KPIs, churn and the daily trend.
pub async fn kpi(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let r = s.reports.kpi(&filter(&s, &q)?).await?;
    let mut kpis = serde_json::to_value(&r.kpis).map_err(internal)?;
    kpis["churn_rate"] = serde_json::to_value(r.churn.rate).map_err(internal)?;
    kpis["churn"] = serde_json::to_value(r.churn).map_err(internal)?;
    Ok(Json(json!({"period": r.period, "kpis": kpis, "daily": r.daily})))
}

pub(crate) fn internal(e: serde_json::Error) -> ApiError {
    ApiError::new(ErrorCode::Internal, e.to_string())
}

/// The day numbers of `days` (`1,7,30` by default).
pub fn day_numbers(days: Option<&str>) -> Result<Vec<u32>, String> {
    let text = days.unwrap_or("1,7,30");
    let out: Result<Vec<u32>, _> = text.split(',').map(|d| d.trim().parse::<u32>()).collect();
    match out {
        Ok(v) if !v.is_empty() && v.len() <= 90 => Ok(v),
        _ => Err(format!("days {text:?}: use day numbers like 1,7,30")),
    }
}

/// `GET /api/v1/analytics/cohort`: retention by signup or first-purchase cohort, per
/// day, ISO week or month, with the size-weighted average row.
pub async fn cohort(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::InvalidCohort, m);
    let spec = CohortSpec {
        days: day_numbers(q.days.as_deref()).map_err(bad)?,
        by: q.by.as_deref().unwrap_or("day").parse().map_err(bad)?,
        basis: q.cohort.as_deref().unwrap_or("signup").parse().map_err(bad)?,
    };
    let r = s
        .reports
        .cohort_report(&filter(&s, &q)?, &spec, today(&s))
        .await?;
    Ok(Json(serde_json::to_value(r).map_err(internal)?))
}

/// Why the CLV models could not be fitted, without the code (the panel says it).
fn clv_reason(e: ReportError) -> String {
    match e {
        ReportError::Refused { message, .. } => message,
        other => other.to_string(),
    }
}

/// `GET /api/v1/analytics/ltv`: historical LTV by first-order month.
pub async fn ltv(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let f = s.reports.touched_scope(&filter(&s, &q)?).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let r = s.reports.ltv(&f, now).await?;
    // Too few customers (or no repeat buyers) to fit is not an error of the request.
    let clv = match s.reports.clv(&f, f.observed_at(now)).await {
        Ok(c) => json!({
            "bgnbd": c.bgnbd,
            "gamma_gamma": c.gamma_gamma,
            "penalizer": c.penalizer,
            "customers": c.customers,
            "horizon_days": c.horizon_days,
            "bands": c.bands,
            "top": c.predictions.iter().take(20).map(|p| json!({
                "profile_id": p.profile_id,
                "user_id": p.user_id,
                "anonymous_id": p.anonymous_id,
                "p_alive": p.p_alive,
                "expected_purchases_90d": p.expected_purchases,
                "clv": p.clv,
                "churn_risk": p.churn_risk,
            })).collect::<Vec<_>>(),
        }),
        Err(e) if e.code() == ErrorCode::ClvNotFitted => json!({ "error": clv_reason(e) }),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(json!({ "cohorts": r.cohorts, "clv": clv })))
}

/// `GET /api/v1/analytics/campaigns`: campaign metrics and ROI.
pub async fn campaigns(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let rows = s.reports.campaigns(&filter(&s, &q)?).await?;
    Ok(Json(json!({ "rows": rows })))
}

/// `GET /api/v1/analytics/channels`: monthly channel ROI and budget suggestion.
pub async fn channels(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let month = q
        .month
        .clone()
        .unwrap_or_else(|| today(&s).format("%Y-%m").to_string());
    let r = s.reports.channels(&month, &filter(&s, &q)?).await?;
    Ok(Json(serde_json::to_value(r).map_err(internal)?))
}

/// `GET /api/v1/analytics/attribution`: revenue credited per campaign.
pub async fn attribution(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let defaults = &s.reports.config().attribution;
    let model: Model = match &q.model {
        Some(m) => m
            .parse()
            .map_err(|e: String| ApiError::new(ErrorCode::InvalidQuery, e))?,
        None => defaults.model,
    };
    let window = q.window_days.unwrap_or(defaults.window_days);
    if !(1..=365).contains(&window) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "window_days must be 1–365",
        ));
    }
    let r = s.reports.attribution(&filter(&s, &q)?, model, window).await?;
    Ok(Json(serde_json::to_value(r).map_err(internal)?))
}

/// `GET /api/v1/analytics/uplift?journey=…`: a journey against its holdout.
pub async fn uplift(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let journey = q
        .journey
        .as_deref()
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidQuery, "journey is required"))?;
    let r = s.reports.uplift(journey, &filter(&s, &q)?).await?;
    Ok(Json(serde_json::to_value(r).map_err(internal)?))
}

/// `GET /api/v1/analytics/goals`: goals with progress.
pub async fn goals(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, ApiError> {
    let goals = s.reports.goals(chrono::Utc::now().timestamp_millis()).await?;
    Ok(Json(json!({ "goals": goals })))
}

/// `GET /api/v1/analytics/alerts`: guardrail alerts, newest first.
pub async fn alerts(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(json!({ "alerts": s.reports.alerts(limit).await? })))
}

/// `GET /api/v1/analytics/review`: the weekly or monthly review (R10.5) of the period
/// containing `day`, computed now (stored reviews: `/api/v1/analytics/reviews`).
pub async fn review(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let cadence: Cadence = q
        .cadence
        .as_deref()
        .unwrap_or("weekly")
        .parse()
        .map_err(|m| ApiError::new(ErrorCode::InvalidQuery, m))?;
    let on = match &q.day {
        Some(d) => day(d, "day")?,
        None => cadence.last_complete(today(&s)).0,
    };
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Json(
        json!({ "review": s.reports.review(cadence, on, now).await? }),
    ))
}

/// `GET /api/v1/analytics/reviews`: the stored reviews, newest period first.
pub async fn reviews(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    Ok(Json(json!({ "reviews": s.reports.reviews(limit).await? })))
}

/// `GET /api/v1/analytics/reviews/{id}`: one stored review as it was written.
pub async fn stored_review(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(&id)?;
    match s.reports.stored_review(id).await? {
        Some((entry, review)) => Ok(Json(json!({ "entry": entry, "review": review }))),
        None => Err(ApiError::not_found(format!("review {id}"))),
    }
}

/// The conversion window of `window_hours` (default 24) in ms.
pub fn window_ms(window_hours: Option<f64>) -> Result<i64, ApiError> {
    Ok(flywheel_analytics::reports::window_of_hours(
        window_hours.unwrap_or(24.0),
    )?)
}

/// `GET /api/v1/analytics/funnel?steps=A,B,C` (or `?saved=NAME`): ordered funnel with
/// per-step conversion, drop-off and median time, optionally broken down by a profile
/// trait; the JSON is the funnel report as `flywheel report funnel --format json` prints it.
pub async fn funnel(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let f = filter(&s, &q)?;
    let r = match &q.saved {
        Some(name) => {
            if q.steps.is_some() || q.window_hours.is_some() || q.breakdown.is_some() {
                return Err(ApiError::new(
                    ErrorCode::InvalidQuery,
                    "saved runs a saved funnel as it was saved: give saved or steps/window_hours/breakdown, not both",
                ));
            }
            s.reports.run_saved_funnel(&f, name).await?
        }
        None => {
            let text = q.steps.as_deref().unwrap_or(DEFAULT_FUNNEL);
            let steps: Vec<String> = text
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let window_ms = window_ms(q.window_hours)?;
            s.reports
                .funnel(&f, &steps, window_ms, q.breakdown.as_deref())
                .await?
        }
    };
    Ok(Json(serde_json::to_value(r).map_err(internal)?))
}

/// The shop funnel shown when no steps are given.
pub const DEFAULT_FUNNEL: &str = "Product Viewed,Product Added,Checkout Started,Order Completed";

/// A spend entry as posted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendBody {
    /// The channel (`douyin`, `baidu`, …).
    channel: String,
    /// Amount in fen.
    amount_fen: i64,
    /// The campaign it paid for.
    campaign: Option<String>,
    /// The shop-local day of the spend, `YYYY-MM-DD` (default today; not with from/to).
    day: Option<String>,
    /// A spend over a period: its first shop-local day (with `to`).
    from: Option<String>,
    /// A spend over a period: its last shop-local day, included (with `from`).
    to: Option<String>,
    /// A note.
    note: Option<String>,
}

/// `POST /api/v1/analytics/spend`: records marketing spend on a channel (channel and
/// campaign ROI read it).
pub async fn spend(
    State(s): State<Arc<AppState>>,
    body: AdminBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let b: SpendBody = body.json()?;
    let now = chrono::Utc::now().timestamp_millis();
    let (at, until) = match (&b.day, &b.from, &b.to) {
        (None, Some(from), Some(to)) => {
            let (first, last) = (day(from, "from")?, day(to, "to")?);
            let next = last
                .succ_opt()
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidDate, format!("to {to:?} is out of range")))?;
            (s.reports.day_start(first), Some(s.reports.day_start(next)))
        }
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidSpend,
                "give day, or from and to for a period, not both",
            ))
        }
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidSpend,
                "a spend period needs both from and to",
            ))
        }
        (Some(d), None, None) => (s.reports.day_start(day(d, "day")?), None),
        (None, None, None) => (now, None),
    };
    let entry = Spend {
        channel: b.channel,
        campaign: b.campaign,
        at,
        until,
        amount: b.amount_fen,
        note: b.note,
    };
    let id = s.reports.add_cost(entry.clone(), now).await?;
    let mut spend = serde_json::to_value(&entry).map_err(internal)?;
    spend["id"] = json!(id);
    Ok((StatusCode::CREATED, Json(json!({ "spend": spend }))))
}

/// `GET /api/v1/analytics/spend`: the spend entries of `month` (`YYYY-MM`, default this
/// month), or of the days `from`..=`to`, oldest first.
pub async fn spend_list(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<AnalyticsQuery>,
) -> Result<Json<Value>, ApiError> {
    let period = match (&q.month, q.from.is_some() || q.to.is_some()) {
        (Some(_), true) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "give month or from/to, not both",
            ))
        }
        (Some(m), false) => s.reports.month(m)?,
        (None, true) => filter(&s, &q)?.period,
        (None, false) => s.reports.month(&today(&s).format("%Y-%m").to_string())?,
    };
    Ok(Json(json!({ "spend": s.reports.spend_entries(period).await? })))
}

/// `DELETE /api/v1/analytics/spend/{id}`: removes a spend entry (a mistyped amount, a
/// duplicate), with an audit entry; answers the entry removed.
pub async fn spend_delete(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(&id)?;
    let now = chrono::Utc::now().timestamp_millis();
    match s.reports.delete_cost(id, now).await? {
        Some(entry) => Ok(Json(json!({ "deleted": entry }))),
        None => Err(ApiError::not_found(format!("spend entry {id}"))),
    }
}
