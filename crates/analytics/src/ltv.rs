//! Historical LTV by first-order cohort (REQUIREMENTS §10 LTV [RULE]: "historical LTV =
//! sum of the customer's net paid order value from the first order to now").
//!
//! A customer (a person) is in the cohort of the shop-local month of their first purchase
//! (an order neither cancelled nor fully refunded, [`OrderFact::is_purchase`]). Per
//! cohort: customers, revenue = Σ net order value (total − refunded, cancelled orders
//! excluded) of those customers up to `until`, and LTV = revenue ÷ customers (whole fen,
//! rounded down).

use std::collections::{BTreeMap, HashMap};

use chrono::Datelike;
use chrono_tz::Tz;
use flywheel_core::time::from_millis;
use serde::Serialize;

use crate::kpi::{OrderFact, Period};
use crate::ratio::fen_per;

/// One first-order cohort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LtvCohort {
    /// `YYYY-MM`, shop-local.
    pub month: String,
    /// Customers whose first order is in the month.
    pub users: i64,
    /// Their net order value up to `until`, fen.
    pub revenue: i64,
    /// revenue ÷ users, fen.
    pub ltv: i64,
}

/// Each customer's historical LTV (net order value up to `until`, fen).
pub fn per_user(orders: &[OrderFact], until: i64) -> HashMap<&str, i64> {
    let mut out: HashMap<&str, i64> = HashMap::new();
    for o in orders.iter().filter(|o| !o.cancelled && o.placed_at < until) {
        let v = out.entry(o.user.as_str()).or_default();
        *v = v.saturating_add(o.total.0.saturating_sub(o.refunded.0));
    }
    out
}

/// Cohorts of customers whose first order falls in `period`, valued up to `until`.
pub fn cohorts(
    orders: &[OrderFact],
    first_order: &HashMap<String, i64>,
    period: Period,
    until: i64,
    tz: Tz,
) -> Vec<LtvCohort> {
    let values = per_user(orders, until);
    let mut by_month: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (user, first) in first_order {
        if !period.contains(*first) {
            continue;
        }
        let d = from_millis(*first).with_timezone(&tz);
        let e = by_month
            .entry(format!("{:04}-{:02}", d.year(), d.month()))
            .or_default();
        e.0 += 1;
        e.1 =
            e.1.saturating_add(values.get(user.as_str()).copied().unwrap_or(0));
    }
    by_month
        .into_iter()
        .map(|(month, (users, revenue))| LtvCohort {
            month,
            users,
            revenue,
            ltv: fen_per(revenue, users).unwrap_or(0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpi::tests::order;

    #[test]
    fn cohorts_by_shop_local_first_order_month() {
        // 2026-01-31T16:30Z is 2026-02-01 00:30 in Shanghai: a February customer.
        let jan31_utc = 1_769_877_000_000;
        let mar = 1_772_323_200_000; // 2026-03-01T00:00Z
        let orders = vec![
            order("a", jan31_utc, 10_000, 1_000, false),
            order("a", mar, 5_000, 0, false),
            order("a", mar + 1, 99_999, 0, true), // cancelled: nothing
            order("b", jan31_utc + 3_600_000, 3_000, 0, false),
            order("c", mar, 2_000, 0, false),
        ];
        let first: HashMap<String, i64> = [
            ("a".to_string(), jan31_utc),
            ("b".to_string(), jan31_utc + 3_600_000),
            ("c".to_string(), mar),
        ]
        .into();
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let all = Period {
            from: 0,
            to: i64::MAX,
        };
        let rows = cohorts(&orders, &first, all, i64::MAX, tz);
        assert_eq!(
            rows,
            vec![
                LtvCohort {
                    month: "2026-02".into(),
                    users: 2,
                    revenue: 17_000,
                    ltv: 8_500
                },
                LtvCohort {
                    month: "2026-03".into(),
                    users: 1,
                    revenue: 2_000,
                    ltv: 2_000
                },
            ]
        );
        let utc = cohorts(&orders, &first, all, mar, chrono_tz::UTC);
        assert_eq!(
            utc[0].month, "2026-01",
            "the same instant is still January in UTC"
        );
        assert_eq!(
            utc[0].revenue, 12_000,
            "valued up to March 1st: a's March order not yet"
        );
        assert!(cohorts(&[], &HashMap::new(), all, 0, tz).is_empty());
    }

    #[test]
    fn ltv_is_rounded_half_up_to_the_fen() {
        // 100.00 元 + 0.01 元 + 0 over 3 customers = 33.3367 元: 3334 fen; 1 + 0 over 2 = 0.5
        // fen: 1 (truncation said 3333 and 0).
        let orders = vec![
            order("a", 10, 10_000, 0, false),
            order("b", 10, 1, 0, false),
            order("c", 10, 0, 0, false),
        ];
        let first: HashMap<String, i64> = ["a", "b", "c"].iter().map(|u| (u.to_string(), 10)).collect();
        let all = Period {
            from: 0,
            to: i64::MAX,
        };
        let rows = cohorts(&orders, &first, all, i64::MAX, chrono_tz::UTC);
        assert_eq!((rows[0].revenue, rows[0].ltv), (10_001, 3_334));
        let first: HashMap<String, i64> = ["b", "c"].iter().map(|u| (u.to_string(), 10)).collect();
        let half = cohorts(&orders[1..], &first, all, i64::MAX, chrono_tz::UTC);
        assert_eq!((half[0].users, half[0].ltv), (2, 1));
    }
}
