//! Churn rate 流失率 (REQUIREMENTS §10 [SUGGESTED DEFAULT], flag from R3.4 "近90天未登錄且未購買"):
//! of the customers active at the start of a period, the share flagged churn-risk at its
//! end.
//!
//! - customer: at least one non-cancelled order before the period starts;
//! - active at the start: any activity (event, which includes logins and orders) in the
//!   `churn_days` before `from`;
//! - churned at the end: no activity in the `churn_days` before `to`.
//!
//! churn rate = churned ÷ active customers at the start; n/a when there are none.

use serde::Serialize;

use crate::kpi::Period;
use crate::ratio::Ratio;

/// One customer's activity as the churn rate needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// First non-cancelled order (ms), if any.
    pub first_order: Option<i64>,
    /// Last activity before the period's start (ms).
    pub last_before_from: Option<i64>,
    /// Last activity before the period's end (ms).
    pub last_before_to: Option<i64>,
}

/// Churn over a period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Churn {
    /// Customers active at the start.
    pub active_at_start: i64,
    /// Of those, flagged churn-risk at the end.
    pub churned: i64,
    /// churned ÷ active_at_start.
    pub rate: Ratio,
}

/// The churn of `period` with the churn-risk flag after `churn_days` of silence.
pub fn churn(users: &[Activity], period: Period, churn_days: i64) -> Churn {
    let span = churn_days.saturating_mul(86_400_000);
    let mut base = 0;
    let mut churned = 0;
    for u in users {
        let customer = u.first_order.is_some_and(|t| t < period.from);
        let active = u
            .last_before_from
            .is_some_and(|t| t >= period.from.saturating_sub(span));
        if customer && active {
            base += 1;
            if u.last_before_to
                .is_none_or(|t| t < period.to.saturating_sub(span))
            {
                churned += 1;
            }
        }
    }
    Churn {
        active_at_start: base,
        churned,
        rate: Ratio::of(churned, base),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn a(first: Option<i64>, before_from: Option<i64>, before_to: Option<i64>) -> Activity {
        Activity {
            first_order: first,
            last_before_from: before_from,
            last_before_to: before_to,
        }
    }

    #[test]
    fn hand_computed_churn_over_a_thirty_day_period() {
        let p = Period {
            from: 200 * DAY,
            to: 230 * DAY,
        };
        let users = vec![
            a(Some(10 * DAY), Some(150 * DAY), Some(150 * DAY)), // active at start, silent since: 80 days before `to` → not yet
            a(Some(10 * DAY), Some(120 * DAY), Some(120 * DAY)), // 110 days silent at the end → churned
            a(Some(10 * DAY), Some(110 * DAY), Some(220 * DAY)), // exactly 90 days before `from`: active; came back
            a(Some(10 * DAY), Some(109 * DAY), None),            // already lapsed at start: not counted
            a(None, Some(199 * DAY), Some(199 * DAY)),           // never bought: not a customer
            a(Some(205 * DAY), Some(199 * DAY), Some(205 * DAY)), // first order inside: not yet a customer
        ];
        let c = churn(&users, p, 90);
        assert_eq!((c.active_at_start, c.churned), (3, 1));
        assert_eq!(c.rate, Ratio::of(1, 3));
        assert_eq!(churn(&[], p, 90).rate, Ratio::NotApplicable);
    }
}
