//! Attribution (R10.2, issue 7): which campaign an order is credited to.
//!
//! A **touch** is a moment a user met a campaign: a message of that campaign sent to
//! them, or an event of theirs carrying `context.campaign.name` (the utm_campaign that
//! Segment/RudderStack SDKs fill in). An order placed at `t` is credited to one touch of
//! the same user in `[t − window, t]`: the earliest (first-touch) or the latest
//! (last-touch; ties: the later-listed touch). Orders without a touch in the window are
//! unattributed. The credit is the order's net revenue (total − refunded); cancelled
//! orders earn nothing.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::config::Model;
use crate::kpi::{OrderFact, Period};

/// One user meeting one campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// The person touched (profile id).
    pub user: String,
    /// When (ms).
    pub at: i64,
    /// The campaign.
    pub campaign: String,
    /// The channel it came through (`email`, `sms`, a utm source …).
    pub channel: String,
}

/// What one campaign earned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Credit {
    /// Orders credited.
    pub orders: i64,
    /// Their net revenue, fen.
    pub revenue: i64,
}

/// Touches of each user, sorted by time (build once, attribute many orders).
pub struct TouchIndex<'a> {
    by_user: HashMap<&'a str, Vec<&'a Touch>>,
}

impl<'a> TouchIndex<'a> {
    /// Indexes `touches`.
    pub fn new(touches: &'a [Touch]) -> Self {
        let mut by_user: HashMap<&str, Vec<&Touch>> = HashMap::new();
        for t in touches {
            by_user.entry(t.user.as_str()).or_default().push(t);
        }
        for v in by_user.values_mut() {
            v.sort_by_key(|t| t.at);
        }
        TouchIndex { by_user }
    }

    /// The touch credited for an order of `user` at `at` under `model` and `window_ms`.
    pub fn credited(&self, user: &str, at: i64, model: Model, window_ms: i64) -> Option<&'a Touch> {
        let touches = self.by_user.get(user)?;
        let lo = touches.partition_point(|t| t.at < at.saturating_sub(window_ms));
        let hi = touches.partition_point(|t| t.at <= at);
        let within = touches.get(lo..hi)?;
        match model {
            Model::First => within.first().copied(),
            Model::Last => within.last().copied(),
        }
    }
}

/// Credits every non-cancelled order placed in `period` (REQUIREMENTS §10 ROI: "attributed
/// sales revenue"), by (campaign, channel) of the credited touch.
pub fn attribute(
    orders: &[OrderFact],
    touches: &[Touch],
    model: Model,
    window_days: u32,
    period: Period,
) -> BTreeMap<(String, String), Credit> {
    let index = TouchIndex::new(touches);
    let window_ms = i64::from(window_days) * 86_400_000;
    let mut out: BTreeMap<(String, String), Credit> = BTreeMap::new();
    for o in orders
        .iter()
        .filter(|o| !o.cancelled && period.contains(o.placed_at))
    {
        if let Some(t) = index.credited(&o.user, o.placed_at, model, window_ms) {
            let c = out.entry((t.campaign.clone(), t.channel.clone())).or_default();
            c.orders += 1;
            c.revenue = c.revenue.saturating_add(o.total.0.saturating_sub(o.refunded.0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn touch(user: &str, at: i64, campaign: &str) -> Touch {
        Touch {
            user: user.into(),
            at,
            campaign: campaign.into(),
            channel: "email".into(),
        }
    }

    fn order(user: &str, at: i64, total: i64, refunded: i64) -> OrderFact {
        crate::kpi::tests::order(user, at, total, refunded, false)
    }

    #[test]
    fn first_and_last_touch_within_a_seven_day_window() {
        let touches = vec![
            touch("a", 0, "old"),             // 10 days before: outside the window
            touch("a", 3 * DAY, "welcome"),   // 7 days before exactly: inside
            touch("a", 8 * DAY, "winback"),   // 2 days before
            touch("a", 11 * DAY, "too_late"), // after the order
            touch("b", 5 * DAY, "welcome"),
        ];
        let orders = vec![
            order("a", 10 * DAY, 10_000, 2_000),
            order("b", 20 * DAY, 5_000, 0), // touch 15 days before: unattributed
            order("c", 10 * DAY, 7_000, 0), // never touched
        ];
        let p = Period {
            from: 0,
            to: 30 * DAY,
        };
        let last = attribute(&orders, &touches, Model::Last, 7, p);
        assert_eq!(last.len(), 1);
        let key = |c: &str| (c.to_string(), "email".to_string());
        assert_eq!(
            last[&key("winback")],
            Credit {
                orders: 1,
                revenue: 8_000
            }
        );
        let first = attribute(&orders, &touches, Model::First, 7, p);
        assert_eq!(
            first[&key("welcome")],
            Credit {
                orders: 1,
                revenue: 8_000
            }
        );
        let wide = attribute(&orders, &touches, Model::First, 30, p);
        assert_eq!(wide[&key("old")].orders, 1);
        assert_eq!(
            wide[&key("welcome")].orders,
            1,
            "b's order, 15 days after its touch"
        );
    }

    #[test]
    fn no_orders_no_credit() {
        let p = Period { from: 0, to: DAY };
        assert!(attribute(&[], &[touch("a", 0, "x")], Model::Last, 7, p).is_empty());
    }
}
