//! Scheduled reviews (R10.5: "定期(如每周或每月)召開營銷復盤會議", implemented as
//! scheduled weekly and monthly reports) and benchmark checks (R10.6: "用戶留存率低于行業
//! 平均水平", implemented as metric-vs-configured-benchmark alerts).
//!
//! A review covers one shop-local week (Monday to Sunday) or calendar month and compares
//! it with the period before. This module holds the calendar, the comparisons and the
//! benchmark rule; [`crate::reports`] gathers the facts and the store keeps the result.

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::config::{BenchmarkConfig, BenchmarkMetric};
use crate::kpi::Kpis;
use crate::retention::CohortRow;
use crate::Ratio;

/// How often a review is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cadence {
    /// Monday to Sunday, shop-local.
    Weekly,
    /// A calendar month, shop-local.
    Monthly,
}

impl Cadence {
    /// `weekly` or `monthly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cadence::Weekly => "weekly",
            Cadence::Monthly => "monthly",
        }
    }

    /// The period (first and last day, both included) containing `day`.
    pub fn period_of(self, day: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Cadence::Weekly => {
                let from = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
                (from, from + Duration::days(6))
            }
            Cadence::Monthly => {
                let from = day.with_day(1).unwrap_or(day);
                let next = from
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap_or(NaiveDate::MAX);
                (from, next.pred_opt().unwrap_or(next))
            }
        }
    }

    /// The period just before the one starting on `from`.
    pub fn previous(self, from: NaiveDate) -> (NaiveDate, NaiveDate) {
        self.period_of(from.pred_opt().unwrap_or(from))
    }

    /// The last period that ended before `today`.
    pub fn last_complete(self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        self.previous(self.period_of(today).0)
    }
}

impl std::str::FromStr for Cadence {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "weekly" => Ok(Cadence::Weekly),
            "monthly" => Ok(Cadence::Monthly),
            other => Err(format!("cadence {other:?}: use weekly or monthly")),
        }
    }
}

/// A figure of a review: money, a count or a rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "value", rename_all = "lowercase")]
pub enum Figure {
    /// Money, fen; `None` where undefined (AOV without orders).
    Fen(Option<i64>),
    /// A count.
    Count(i64),
    /// A rate in 0–1, or n/a.
    Rate(Ratio),
}

impl Figure {
    fn number(self) -> Option<f64> {
        match self {
            Figure::Fen(v) => v.map(|v| v as f64),
            Figure::Count(v) => Some(v as f64),
            Figure::Rate(r) => r.value(),
        }
    }
}

impl std::fmt::Display for Figure {
    /// Money in 元 with two decimals, counts as they are, rates as percentages; n/a.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Figure::Fen(Some(v)) => f.write_str(&flywheel_core::Fen(*v).to_yuan_string()),
            Figure::Fen(None) => f.write_str("n/a"),
            Figure::Count(v) => write!(f, "{v}"),
            Figure::Rate(r) => write!(f, "{r}"),
        }
    }
}

/// One metric of this period against the period before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricChange {
    /// The metric (`gmv`, `net_revenue`, `orders`, …).
    pub metric: String,
    /// This period.
    pub current: Figure,
    /// The period before.
    pub previous: Figure,
    /// Money and counts: (current − previous) ÷ previous, n/a from zero. Rates: the
    /// difference in percentage points ÷ 100 (0.05 is +5 points), n/a if either is n/a.
    pub change: Ratio,
}

/// The KPIs of two periods side by side, with the churn rate of each.
pub fn changes(cur: &Kpis, prev: &Kpis, churn: (Ratio, Ratio)) -> Vec<MetricChange> {
    let money = |metric, c: Option<i64>, p: Option<i64>| (metric, Figure::Fen(c), Figure::Fen(p));
    let count = |metric, c, p| (metric, Figure::Count(c), Figure::Count(p));
    let rate = |metric, c, p| (metric, Figure::Rate(c), Figure::Rate(p));
    [
        money("gmv", Some(cur.gmv.0), Some(prev.gmv.0)),
        money("net_revenue", Some(cur.net_revenue.0), Some(prev.net_revenue.0)),
        count("orders", cur.orders, prev.orders),
        count("buyers", cur.buyers, prev.buyers),
        money("aov", cur.aov.map(|a| a.0), prev.aov.map(|a| a.0)),
        count("new_buyers", cur.new_buyers, prev.new_buyers),
        count("returning_buyers", cur.returning_buyers, prev.returning_buyers),
        rate("repurchase_rate", cur.repurchase_rate, prev.repurchase_rate),
        count("visitors", cur.visitors, prev.visitors),
        rate("conversion", cur.conversion, prev.conversion),
        rate("churn_rate", churn.0, churn.1),
    ]
    .into_iter()
    .map(
        |(metric, current, previous): (&str, Figure, Figure)| MetricChange {
            metric: metric.to_string(),
            current,
            previous,
            change: change(current, previous),
        },
    )
    .collect()
}

fn change(current: Figure, previous: Figure) -> Ratio {
    match (current, previous) {
        (Figure::Rate(c), Figure::Rate(p)) => match (c.value(), p.value()) {
            (Some(c), Some(p)) => Ratio::Value(c - p),
            _ => Ratio::NotApplicable,
        },
        (Figure::Fen(Some(c)), Figure::Fen(Some(p))) | (Figure::Count(c), Figure::Count(p)) => {
            Ratio::of(c.saturating_sub(p), p)
        }
        _ => Ratio::NotApplicable,
    }
}

/// D-N retention observed in a period: of the users whose day N fell in the period
/// (signed up N days before one of its days), the share active on their day N.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetentionFigure {
    /// N.
    pub day_n: u32,
    /// Users whose day N fell in the period.
    pub users: i64,
    /// Of those, active on day N.
    pub retained: i64,
    /// retained ÷ users.
    pub rate: Ratio,
}

/// D-N retention observed in the days `from..=to`, from cohort rows by signup day that
/// cover at least `from − N ..= to − N` for every N of `days`.
pub fn observed_retention(
    rows: &[CohortRow],
    days: &[u32],
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<RetentionFigure> {
    days.iter()
        .map(|&n| {
            let shift = Duration::days(i64::from(n));
            let (mut users, mut retained) = (0i64, 0i64);
            for row in rows
                .iter()
                .filter(|r| r.day + shift >= from && r.day + shift <= to)
            {
                if let Some(&(_, kept, rate)) = row.retained.iter().find(|(d, _, _)| *d == n) {
                    if rate.value().is_some() {
                        users += row.size;
                        retained += kept;
                    }
                }
            }
            RetentionFigure {
                day_n: n,
                users,
                retained,
                rate: Ratio::of(retained, users),
            }
        })
        .collect()
}

/// The facts a benchmark is judged on: numerator and denominator of each metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BenchmarkFacts {
    /// (retained, users) at D1, D7, D30.
    pub retention: [(i64, i64); 3],
    /// (repeat buyers, buyers).
    pub repurchase: (i64, i64),
    /// (buyers, visitors).
    pub conversion: (i64, i64),
    /// (churned, active at start).
    pub churn: (i64, i64),
}

/// A benchmark as judged on a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkCheck {
    /// The benchmark's name.
    pub name: String,
    /// The metric.
    pub metric: BenchmarkMetric,
    /// The benchmark value.
    pub benchmark: f64,
    /// The shop's value, or n/a.
    pub value: Ratio,
    /// Missed: strictly below the benchmark ("低于"), or strictly above it for churn.
    /// An n/a value misses nothing.
    pub missed: bool,
}

/// Judges each benchmark on `facts`. The comparison is `num < benchmark × den` (or `>`
/// for churn) on the counts, so a value exactly at the benchmark is not a miss.
pub fn check_benchmarks(benchmarks: &[BenchmarkConfig], facts: &BenchmarkFacts) -> Vec<BenchmarkCheck> {
    benchmarks
        .iter()
        .map(|b| {
            let (num, den) = match b.metric {
                BenchmarkMetric::D1Retention => facts.retention[0],
                BenchmarkMetric::D7Retention => facts.retention[1],
                BenchmarkMetric::D30Retention => facts.retention[2],
                BenchmarkMetric::RepurchaseRate => facts.repurchase,
                BenchmarkMetric::Conversion => facts.conversion,
                BenchmarkMetric::ChurnRate => facts.churn,
            };
            let bar = b.value * den as f64;
            let missed = den > 0
                && if b.metric.higher_is_better() {
                    (num as f64) < bar
                } else {
                    (num as f64) > bar
                };
            BenchmarkCheck {
                name: b.name.clone(),
                metric: b.metric,
                benchmark: b.value,
                value: Ratio::of(num, den),
                missed,
            }
        })
        .collect()
}

/// The benchmark facts of a period's KPIs, observed retention (D1, D7, D30 in
/// `retention`, matched by `day_n`) and churn counts.
pub fn benchmark_facts(k: &Kpis, retention: &[RetentionFigure], churn: (i64, i64)) -> BenchmarkFacts {
    let at = |n: u32| {
        retention
            .iter()
            .find(|r| r.day_n == n)
            .map_or((0, 0), |r| (r.retained, r.users))
    };
    BenchmarkFacts {
        retention: [at(1), at(7), at(30)],
        repurchase: (k.repeat_buyers, k.buyers),
        conversion: (k.buyers, k.visitors),
        churn,
    }
}

/// The change of a figure as shown in a table: `+12.50%` (relative) or `+5.00 pt`
/// (rates), `n/a`.
pub fn show_change(c: &MetricChange) -> String {
    match (c.current, c.change.value()) {
        (_, None) => "n/a".into(),
        (Figure::Rate(_), Some(v)) => format!("{:+.2} pt", v * 100.0),
        (_, Some(v)) => format!("{:+.2}%", v * 100.0),
    }
}

impl MetricChange {
    /// The current value as a number (fen, count or 0–1), if defined.
    pub fn current_number(&self) -> Option<f64> {
        self.current.number()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::{kpis, OrderFact, Period};
    use flywheel_core::Fen;
    use std::collections::HashMap;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn weeks_run_monday_to_sunday_and_months_are_calendar_months() {
        // 2026-11-30 is a Monday.
        assert_eq!(
            Cadence::Weekly.period_of(d("2026-11-30")),
            (d("2026-11-30"), d("2026-12-06"))
        );
        assert_eq!(
            Cadence::Weekly.period_of(d("2026-11-29")),
            (d("2026-11-23"), d("2026-11-29"))
        );
        assert_eq!(
            Cadence::Weekly.last_complete(d("2026-11-30")),
            (d("2026-11-23"), d("2026-11-29"))
        );
        assert_eq!(
            Cadence::Weekly.last_complete(d("2026-12-06")),
            (d("2026-11-23"), d("2026-11-29"))
        );
        assert_eq!(
            Cadence::Monthly.period_of(d("2026-02-14")),
            (d("2026-02-01"), d("2026-02-28"))
        );
        assert_eq!(
            Cadence::Monthly.period_of(d("2028-02-29")),
            (d("2028-02-01"), d("2028-02-29"))
        );
        assert_eq!(
            Cadence::Monthly.last_complete(d("2026-01-01")),
            (d("2025-12-01"), d("2025-12-31"))
        );
        assert_eq!(
            Cadence::Monthly.previous(d("2026-03-01")),
            (d("2026-02-01"), d("2026-02-28"))
        );
        assert_eq!("weekly".parse::<Cadence>(), Ok(Cadence::Weekly));
        assert!("daily".parse::<Cadence>().is_err());
    }

    fn order(user: &str, at: i64, total: i64) -> OrderFact {
        OrderFact {
            user: user.into(),
            placed_at: at,
            total: Fen(total),
            refunded: Fen(0),
            cancelled: false,
        }
    }

    #[test]
    fn changes_are_relative_for_amounts_and_in_points_for_rates() {
        let cur_p = Period { from: 100, to: 200 };
        let prev_p = Period { from: 0, to: 100 };
        // Previous: a buys 100 元 once. Current: a buys twice (300 元), b once (150 元).
        let orders = vec![
            order("a", 10, 10_000),
            order("a", 110, 10_000),
            order("a", 120, 20_000),
            order("b", 130, 15_000),
        ];
        let first: HashMap<String, i64> = [("a".to_string(), 10), ("b".to_string(), 130)].into();
        let cur = kpis(&orders, &first, 4, cur_p);
        let prev = kpis(&orders, &first, 0, prev_p);
        let rows = changes(&cur, &prev, (Ratio::of(1, 4), Ratio::NotApplicable));
        let get = |m: &str| rows.iter().find(|r| r.metric == m).unwrap().clone();
        assert_eq!(get("gmv").current, Figure::Fen(Some(45_000)));
        assert_eq!(
            get("gmv").change,
            Ratio::Value(3.5),
            "450 元 against 100 元: +350 %"
        );
        assert_eq!(show_change(&get("gmv")), "+350.00%");
        assert_eq!(get("orders").change, Ratio::Value(2.0));
        assert_eq!(
            get("new_buyers").change,
            Ratio::Value(0.0),
            "a was new before, b is new now"
        );
        assert_eq!(
            get("returning_buyers").change,
            Ratio::NotApplicable,
            "from zero: n/a"
        );
        // 復購率 1/2 against 0/1: +50 points.
        assert_eq!(get("repurchase_rate").change, Ratio::Value(0.5));
        assert_eq!(show_change(&get("repurchase_rate")), "+50.00 pt");
        // No visitors before: conversion n/a, so its change is n/a.
        assert_eq!(get("conversion").change, Ratio::NotApplicable);
        assert_eq!(get("churn_rate").change, Ratio::NotApplicable);
        assert_eq!(get("aov").current.to_string(), "150.00");
        assert_eq!(show_change(&get("conversion")), "n/a");
    }

    fn cohort(day: &str, size: i64, kept: &[(u32, i64)], today: NaiveDate) -> CohortRow {
        let day = d(day);
        CohortRow {
            day,
            size,
            retained: kept
                .iter()
                .map(|&(n, k)| {
                    if day + Duration::days(i64::from(n)) > today {
                        (n, 0, Ratio::NotApplicable)
                    } else {
                        (n, k, Ratio::of(k, size))
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn retention_counts_the_users_whose_day_n_fell_in_the_period() {
        let today = d("2026-11-29");
        let rows = vec![
            cohort("2026-11-16", 10, &[(1, 9), (7, 5)], today), // D7 on 11-23: in
            cohort("2026-11-22", 10, &[(1, 4), (7, 3)], today), // D1 on 11-23: in; D7 on 11-29: in
            cohort("2026-11-23", 20, &[(1, 2), (7, 0)], today), // D1 on 11-24: in; D7 11-30: out
            cohort("2026-11-29", 5, &[(1, 0), (7, 0)], today),  // D1 on 11-30: out
        ];
        let r = observed_retention(&rows, &[1, 7], d("2026-11-23"), d("2026-11-29"));
        assert_eq!(
            (r[0].users, r[0].retained),
            (30, 6),
            "D1: cohorts of 11-22 and 11-23"
        );
        assert_eq!(
            (r[1].users, r[1].retained),
            (20, 8),
            "D7: cohorts of 11-16 and 11-22"
        );
        assert_eq!(r[1].rate, Ratio::Value(0.4));
        let none = observed_retention(&[], &[1], d("2026-11-23"), d("2026-11-29"));
        assert_eq!(none[0].rate, Ratio::NotApplicable);
    }

    #[test]
    fn a_benchmark_is_missed_only_strictly_below_or_above_for_churn() {
        let b = |metric, value| BenchmarkConfig {
            name: "bench".into(),
            metric,
            value,
        };
        let facts = BenchmarkFacts {
            retention: [(35, 100), (0, 0), (19, 100)],
            repurchase: (30, 100),
            conversion: (2, 100),
            churn: (11, 100),
        };
        let checks = check_benchmarks(
            &[
                b(BenchmarkMetric::D1Retention, 0.35),   // exactly at: kept
                b(BenchmarkMetric::D7Retention, 0.2),    // no data: n/a, kept
                b(BenchmarkMetric::D30Retention, 0.2),   // 19 % < 20 %: missed
                b(BenchmarkMetric::RepurchaseRate, 0.3), // exactly at: kept
                b(BenchmarkMetric::Conversion, 0.03),    // 2 % < 3 %: missed
                b(BenchmarkMetric::ChurnRate, 0.1),      // 11 % > 10 %: missed
                b(BenchmarkMetric::ChurnRate, 0.11),     // exactly at: kept
            ],
            &facts,
        );
        let missed: Vec<bool> = checks.iter().map(|c| c.missed).collect();
        assert_eq!(missed, [false, false, true, false, true, true, false]);
        assert_eq!(checks[1].value, Ratio::NotApplicable);
        assert_eq!(checks[2].value, Ratio::Value(0.19));
    }
}
