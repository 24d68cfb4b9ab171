//! Shop reports: KPIs with their daily trend and churn, cohort retention, historical LTV,
//! goals.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use flywheel_core::ErrorCode;
use flywheel_core::Fen;
use flywheel_store::analytics::activity;
use flywheel_store::conn::Conn;
use serde::Serialize;

use super::{Error, Filter, Reports, Result};
use crate::churn::{churn, Activity, Churn};
use crate::columnar::{self, EventColumnsBuilder};
use crate::config::GoalMetric;
use crate::kpi::{kpis, Kpis, OrderFact, Period};
use crate::ltv::{cohorts as ltv_cohorts, LtvCohort};
use crate::retention::{average, AverageRow, CohortBasis, CohortPeriod, CohortRow};
use crate::{goal, load};

/// One shop-local day of the KPI trend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyRow {
    /// The day.
    pub day: NaiveDate,
    /// GMV, fen.
    pub gmv: Fen,
    /// Net revenue, fen.
    pub net_revenue: Fen,
    /// Orders.
    pub orders: i64,
    /// Buyers.
    pub buyers: i64,
    /// Visitors.
    pub visitors: i64,
}

/// The KPI report: the period's KPIs, churn, and the daily trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiReport {
    /// The period.
    pub period: Period,
    /// The KPIs.
    pub kpis: Kpis,
    /// Churn over the period.
    pub churn: Churn,
    /// One row per shop-local day.
    pub daily: Vec<DailyRow>,
}

/// Historical LTV by first-order month (predictive CLV is added by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LtvReport {
    /// The cohorts.
    pub cohorts: Vec<LtvCohort>,
}

/// A goal and how far it is.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct GoalProgress {
    /// The goal's name.
    pub name: String,
    /// The metric.
    pub metric: GoalMetric,
    /// The target (fraction).
    pub target: f64,
    /// The current value (fraction), n/a without a baseline.
    pub current: Option<f64>,
    /// current ÷ target.
    pub progress: Option<f64>,
    /// Reached (decided in integers, F30).
    pub met: bool,
    /// The quarter measured (`2026-Q4`).
    pub quarter: String,
}

/// Visitors (persons) with their customer event times in `period`.
fn visits(conn: &mut dyn Conn, period: Period) -> flywheel_store::Result<Vec<(String, i64)>> {
    Ok(activity::visits(conn, period.from, period.to)?
        .into_iter()
        .map(|v| (v.person, v.at))
        .collect())
}

/// A person's last activity before a period's start and before its end.
type LastSeen = (String, Option<i64>, Option<i64>);

/// Each person's last activity before `period.from` and before `period.to`, looking back
/// `span` ms from `from`.
fn last_seen(conn: &mut dyn Conn, period: Period, span: i64) -> flywheel_store::Result<Vec<LastSeen>> {
    Ok(
        activity::last_activity(conn, period.from, period.from.saturating_sub(span), period.to)?
            .into_iter()
            .map(|a| (a.person, a.before_from, a.before_to))
            .collect(),
    )
}

/// Every customer event since `from` (person, ts, name; "" for unnamed calls), and for
/// each person whose first sign-up (one of `signups`) came before `from`, that sign-up
/// — so the person's earliest sign-up is right and they fall in no cohort of the period.
fn activity_since(
    conn: &mut dyn Conn,
    signups: &[String],
    from: i64,
) -> flywheel_store::Result<Vec<(String, i64, String)>> {
    let names: Vec<&str> = signups.iter().map(String::as_str).collect();
    let mut rows: Vec<(String, i64, String)> = match names.first() {
        Some(first) => load::signups(conn, &names)?
            .into_iter()
            .filter(|(_, t)| *t < from)
            .map(|(u, t)| (u, t, (*first).to_string()))
            .collect(),
        None => Vec::new(),
    };
    rows.extend(
        activity::named_events_since(conn, from)?
            .into_iter()
            .map(|e| (e.person, e.at, e.name)),
    );
    Ok(rows)
}

/// The name the first-purchase cohort marks each buyer's first order with among their
/// events (a control character no tracked event name carries).
const FIRST_PURCHASE: &str = "\u{1}first purchase";

/// Every customer event since `from` (person, ts, name), and each buyer's first purchase
/// ever as a [`FIRST_PURCHASE`] event (so a buyer whose first purchase came before `from`
/// falls in no cohort of the period).
fn first_purchases_and_activity_since(
    conn: &mut dyn Conn,
    from: i64,
    count_zero_value: bool,
) -> flywheel_store::Result<Vec<(String, i64, String)>> {
    let (_, first) = load::orders(conn, count_zero_value)?;
    let mut rows: Vec<(String, i64, String)> = first
        .into_iter()
        .map(|(u, t)| (u, t, FIRST_PURCHASE.to_string()))
        .collect();
    rows.extend(
        activity::named_events_since(conn, from)?
            .into_iter()
            .map(|e| (e.person, e.at, e.name)),
    );
    Ok(rows)
}

/// What a cohort report asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortSpec {
    /// The N of each retention column (periods after the cohort's).
    pub days: Vec<u32>,
    /// Days, ISO weeks or months.
    pub by: CohortPeriod,
    /// What starts a user's cohort.
    pub basis: CohortBasis,
}

/// Retention by cohort with its average row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortReport {
    /// `day`, `week` or `month`.
    pub by: CohortPeriod,
    /// `signup` or `first-purchase`.
    pub cohort: CohortBasis,
    /// One row per cohort with at least one user, oldest first.
    pub rows: Vec<CohortRow>,
    /// Each column's retention over all cohorts, weighted by cohort size.
    pub average: AverageRow,
}

fn keep_orders(
    orders: Vec<OrderFact>,
    first: HashMap<String, i64>,
    f: &Filter,
) -> (Vec<OrderFact>, HashMap<String, i64>) {
    if f.users.is_none() {
        return (orders, first);
    }
    (
        orders.into_iter().filter(|o| f.user(&o.user)).collect(),
        first.into_iter().filter(|(u, _)| f.user(u)).collect(),
    )
}

/// The largest N of a D-N retention column (ten years).
pub const MAX_COHORT_DAY: u32 = 3660;

impl Reports {
    /// KPIs of the filter's period (segment filter: that segment's users and their
    /// orders; anonymous visitors drop out; campaign/channel filter: the orders credited
    /// to it and the users it touched), churn, and the daily trend.
    pub async fn kpi(&self, f: &Filter) -> Result<KpiReport> {
        let p = f.period;
        let span = self.config.churn_days.saturating_mul(86_400_000);
        let count_zero = self.count_zero_value_orders;
        let ((orders, first), visits, seen) = self
            .store
            .read_with(move |c| {
                Ok((
                    load::orders(c, count_zero)?,
                    visits(c, p)?,
                    last_seen(c, p, span)?,
                ))
            })
            .await?;
        let (orders, first) = keep_orders(orders, first, f);
        let visits: Vec<(String, i64)> = visits.into_iter().filter(|(u, _)| f.user(u)).collect();
        let (orders, visits) = if f.campaign.is_some() || f.channel.is_some() {
            self.campaign_scoped(f, orders, visits).await?
        } else {
            (orders, visits)
        };
        let visitors = visits
            .iter()
            .map(|(u, _)| u.as_str())
            .collect::<HashSet<_>>()
            .len() as i64;
        let k = kpis(&orders, &first, visitors, p);
        let users: Vec<Activity> = seen
            .iter()
            .filter(|(u, _, _)| f.user(u))
            .map(|(u, before_from, before_to)| Activity {
                first_order: first.get(u).copied(),
                last_before_from: *before_from,
                last_before_to: *before_to,
            })
            .collect();
        let churn = churn(&users, p, self.config.churn_days);
        Ok(KpiReport {
            period: p,
            daily: self.daily(&orders, &first, &visits, p),
            kpis: k,
            churn,
        })
    }

    fn daily(
        &self,
        orders: &[OrderFact],
        first: &HashMap<String, i64>,
        visits: &[(String, i64)],
        p: Period,
    ) -> Vec<DailyRow> {
        // Each day's KPIs read only the period's orders, not the whole history again.
        let orders: Vec<OrderFact> = orders
            .iter()
            .filter(|o| p.contains(o.placed_at))
            .cloned()
            .collect();
        let orders = orders.as_slice();
        let mut visitors: BTreeMap<NaiveDate, HashSet<&str>> = BTreeMap::new();
        for (u, ts) in visits {
            visitors.entry(self.day_of(*ts)).or_default().insert(u);
        }
        let mut rows = Vec::new();
        let mut day = self.day_of(p.from);
        loop {
            let from = self.day_start(day);
            if from >= p.to {
                break;
            }
            let next = day + chrono::Duration::days(1);
            let dp = Period {
                from: from.max(p.from),
                to: self.day_start(next).min(p.to),
            };
            let v = visitors.get(&day).map_or(0, |s| s.len() as i64);
            let k = kpis(orders, first, v, dp);
            rows.push(DailyRow {
                day,
                gmv: k.gmv,
                net_revenue: k.net_revenue,
                orders: k.orders,
                buyers: k.buyers,
                visitors: v,
            });
            day = next;
        }
        rows
    }

    /// D-N retention by signup day for signups in the filter's period (the daily rows of
    /// [`Reports::cohort_report`]).
    pub async fn cohort(&self, f: &Filter, days: &[u32], today: NaiveDate) -> Result<Vec<CohortRow>> {
        let spec = CohortSpec {
            days: days.to_vec(),
            by: CohortPeriod::Day,
            basis: CohortBasis::Signup,
        };
        Ok(self.cohort_report(f, &spec, today).await?.rows)
    }

    /// Retention by `spec.by` period (day, ISO week, month) of the users whose cohort
    /// starts in the filter's period — by their first sign-up event or their first
    /// non-cancelled order (`spec.basis`) — with the size-weighted average row
    /// ([`crate::retention::average`]); on the columnar engine
    /// ([`columnar::retention_by`], the one `bench/analytics` measures): every start ever
    /// (a user's first one is their start) and every event since the period's start.
    pub async fn cohort_report(
        &self,
        f: &Filter,
        spec: &CohortSpec,
        today: NaiveDate,
    ) -> Result<CohortReport> {
        // The engine keeps one slot per period up to the largest N: bound it before reading.
        if let Some(n) = spec.days.iter().copied().find(|n| *n > MAX_COHORT_DAY) {
            return Err(Error::refused(
                ErrorCode::InvalidCohort,
                format!("period number {n} is too large: retention is measured up to {MAX_COHORT_DAY}"),
            ));
        }
        let f = &self.touched_scope(f).await?;
        let (p, names, basis) = (f.period, self.signup_events.clone(), spec.basis);
        let count_zero = self.count_zero_value_orders;
        let rows = self
            .store
            .read_with(move |c| match basis {
                CohortBasis::Signup => activity_since(c, &names, p.from),
                CohortBasis::FirstPurchase => first_purchases_and_activity_since(c, p.from, count_zero),
            })
            .await?;
        let starts: Vec<&str> = match basis {
            CohortBasis::Signup => self.signup_events.iter().map(String::as_str).collect(),
            CohortBasis::FirstPurchase => vec![FIRST_PURCHASE],
        };
        let mut b = EventColumnsBuilder::with_capacity(rows.len());
        let mut start = Vec::with_capacity(starts.len());
        for name in starts {
            start.push(
                b.name(name)
                    .map_err(|e| Error::refused(ErrorCode::InvalidCohort, e.to_string()))?,
            );
        }
        for (user, ts, name) in rows.iter().filter(|(u, _, _)| f.user(u)) {
            b.push(user, *ts, name)
                .map_err(|e| Error::refused(ErrorCode::InvalidCohort, e.to_string()))?;
        }
        let rows = columnar::retention_by(&b.build(self.tz), &start, &spec.days, p, today, spec.by)
            .map_err(|e| Error::refused(ErrorCode::InvalidCohort, e.to_string()))?;
        Ok(CohortReport {
            by: spec.by,
            cohort: spec.basis,
            average: average(&rows, &spec.days),
            rows,
        })
    }

    /// Historical LTV of customers whose first order is in the filter's period, valued up
    /// to `until`.
    pub async fn ltv(&self, f: &Filter, until: i64) -> Result<LtvReport> {
        let f = &self.touched_scope(f).await?;
        let (orders, first) = self.orders_and_first().await?;
        let (orders, first) = keep_orders(orders, first, f);
        Ok(LtvReport {
            cohorts: ltv_cohorts(&orders, &first, f.period, until, self.tz),
        })
    }

    /// The configured goals (R10.4) measured on the shop-local quarter containing `now`:
    /// growth goals compare the quarter so far with the same stretch of the previous
    /// quarter (like for like; at the quarter's end, whole quarter against whole quarter).
    pub async fn goals(&self, now: i64) -> Result<Vec<GoalProgress>> {
        let today = self.day_of(now);
        let q = (today.month0() / 3) as i32;
        let quarter_start = |year: i32, q: i32| {
            let (y, q) = (year + q.div_euclid(4), q.rem_euclid(4));
            NaiveDate::from_ymd_opt(y, (q * 3 + 1) as u32, 1)
                .ok_or_else(|| Error::refused(ErrorCode::Internal, format!("no quarter {y}-Q{}", q + 1)))
        };
        let cur = Period {
            from: self.day_start(quarter_start(today.year(), q)?),
            to: now.saturating_add(1),
        };
        // Like for like: the previous quarter over as many days as this one has run.
        let prev_from = self.day_start(quarter_start(today.year(), q - 1)?);
        let prev = Period {
            from: prev_from,
            to: prev_from.saturating_add(cur.to - cur.from).min(cur.from),
        };
        let names = self.signup_events.clone();
        let count_zero = self.count_zero_value_orders;
        let ((orders, first), signups) = self
            .store
            .read_with(move |c| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                Ok((load::orders(c, count_zero)?, load::signups(c, &names)?))
            })
            .await?;
        let (k_cur, k_prev) = (kpis(&orders, &first, 0, cur), kpis(&orders, &first, 0, prev));
        let regs = |p: Period| signups.values().filter(|t| p.contains(**t)).count() as i64;
        let (r_cur, r_prev) = (regs(cur), regs(prev));
        let label = format!("{}-Q{}", today.year(), q + 1);
        Ok(self
            .config
            .goals
            .iter()
            .map(|g| {
                let percent = (g.target * 100.0).round() as i64;
                let (current, met) = match g.metric {
                    GoalMetric::QuarterlySalesGrowth => growth(k_prev.gmv.0, k_cur.gmv.0, percent),
                    GoalMetric::QuarterlyRegistrationGrowth => growth(r_prev, r_cur, percent),
                    GoalMetric::RepurchaseRate => (
                        k_cur.repurchase_rate.value(),
                        goal::rate_met(k_cur.repeat_buyers, k_cur.buyers, percent),
                    ),
                };
                GoalProgress {
                    name: g.name.clone(),
                    metric: g.metric,
                    target: g.target,
                    current,
                    progress: current.filter(|_| g.target != 0.0).map(|c| c / g.target),
                    met,
                    quarter: label.clone(),
                }
            })
            .collect())
    }
}

fn growth(prev: i64, cur: i64, percent: i64) -> (Option<f64>, bool) {
    let value = (prev != 0).then(|| (cur - prev) as f64 / prev as f64);
    (value, goal::growth_met(prev, cur, percent))
}
