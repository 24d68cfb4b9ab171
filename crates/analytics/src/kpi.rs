//! Shop KPIs over a period (REQUIREMENTS §10). Definitions:
//!
//! | metric | formula |
//! |---|---|
//! | GMV | sum of `total` of orders placed in the period, cancelled orders excluded |
//! | net revenue | GMV − amounts refunded on those orders |
//! | orders | orders placed in the period, cancelled excluded |
//! | buyers | distinct persons with at least one purchase in the period: an order neither cancelled nor fully refunded, zero-value included ([`OrderFact::is_purchase`]) |
//! | AOV 客單價 | GMV ÷ orders (the seed's per-order reading) |
//! | 復購率 repurchase rate | buyers with ≥ 2 purchases in the period ÷ buyers |
//! | new buyers | buyers whose first purchase ever falls in the period; returning = the others |
//! | conversion | buyers ÷ visitors (distinct persons with a customer event in the period) |
//!
//! A person is a resolved profile (docs/analytics.md, "Who is counted"): guest orders
//! count for their anonymous person, aliased ids for the one person they name.
//!
//! The period is half-open, `[from, to)` in milliseconds; a day boundary in the shop
//! timezone is the caller's `from`/`to`.

use std::collections::HashMap;

use flywheel_core::Fen;
use serde::Serialize;

use crate::ratio::{fen_per, Ratio};

/// A half-open period `[from, to)` (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    /// First instant in.
    pub from: i64,
    /// First instant out.
    pub to: i64,
}

impl Period {
    /// Whether `t` lies in the period.
    pub fn contains(&self, t: i64) -> bool {
        self.from <= t && t < self.to
    }
}

/// One order as the KPIs see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFact {
    /// The buyer: a person (profile id, guest orders included).
    pub user: String,
    /// Placed (ms).
    pub placed_at: i64,
    /// Order total.
    pub total: Fen,
    /// Refunded so far.
    pub refunded: Fen,
    /// Cancelled (counts nowhere).
    pub cancelled: bool,
}

impl OrderFact {
    /// Whether the order is a purchase (makes its person a buyer): not cancelled and not
    /// fully refunded; a zero-value order is a purchase (as `lifetimes` counts it).
    pub fn is_purchase(&self) -> bool {
        flywheel_core::OrderStatus::is_purchase(self.total.0, self.refunded.0, self.cancelled)
    }
}

/// The KPIs of one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kpis {
    /// The period.
    pub period: Period,
    /// GMV, fen.
    pub gmv: Fen,
    /// Net revenue after refunds, fen.
    pub net_revenue: Fen,
    /// Orders.
    pub orders: i64,
    /// Buyers.
    pub buyers: i64,
    /// Average order value, fen (`None` without orders).
    pub aov: Option<Fen>,
    /// Buyers with ≥ 2 purchases in the period.
    pub repeat_buyers: i64,
    /// 復購率 = repeat buyers ÷ buyers.
    pub repurchase_rate: Ratio,
    /// Buyers whose first purchase ever is in the period.
    pub new_buyers: i64,
    /// The other buyers.
    pub returning_buyers: i64,
    /// Visitors (given).
    pub visitors: i64,
    /// Buyers ÷ visitors.
    pub conversion: Ratio,
}

/// The KPIs of `period` from `orders` (any period; those outside are ignored),
/// `first_order` (each person's first purchase ever, ms) and the period's
/// `visitors`.
pub fn kpis(orders: &[OrderFact], first_order: &HashMap<String, i64>, visitors: i64, period: Period) -> Kpis {
    let mut gmv = 0i64;
    let mut refunded = 0i64;
    let mut count = 0i64;
    let mut per_buyer: HashMap<&str, i64> = HashMap::new();
    for o in orders
        .iter()
        .filter(|o| !o.cancelled && period.contains(o.placed_at))
    {
        gmv = gmv.saturating_add(o.total.0);
        refunded = refunded.saturating_add(o.refunded.0);
        count += 1;
        if o.is_purchase() {
            *per_buyer.entry(o.user.as_str()).or_default() += 1;
        }
    }
    let buyers = per_buyer.len() as i64;
    let repeat = per_buyer.values().filter(|n| **n >= 2).count() as i64;
    let new_buyers = per_buyer
        .keys()
        .filter(|u| first_order.get(**u).is_some_and(|t| period.contains(*t)))
        .count() as i64;
    Kpis {
        period,
        gmv: Fen(gmv),
        net_revenue: Fen(gmv.saturating_sub(refunded)),
        orders: count,
        buyers,
        aov: fen_per(gmv, count).map(Fen),
        repeat_buyers: repeat,
        repurchase_rate: Ratio::of(repeat, buyers),
        new_buyers,
        returning_buyers: buyers - new_buyers,
        visitors,
        conversion: Ratio::of(buyers, visitors),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An order for hand-computed fixtures (shared by the crate's tests).
    pub(crate) fn order(user: &str, at: i64, total: i64, refunded: i64, cancelled: bool) -> OrderFact {
        OrderFact {
            user: user.into(),
            placed_at: at,
            total: Fen(total),
            refunded: Fen(refunded),
            cancelled,
        }
    }

    #[test]
    fn hand_computed_period_with_refunds_cancellations_and_boundaries() {
        let p = Period {
            from: 1_000,
            to: 2_000,
        };
        let orders = vec![
            order("a", 1_000, 10_000, 0, false),    // in (from is inclusive)
            order("a", 1_500, 5_000, 5_000, false), // in, fully refunded: not a purchase
            order("b", 1_999, 3_000, 0, false),     // in
            order("e", 1_300, 0, 0, false),         // in, zero-value: a purchase
            order("b", 1_200, 9_999, 0, true),      // cancelled
            order("c", 2_000, 7_000, 0, false),     // out (to is exclusive)
            order("d", 999, 1_000, 0, false),       // out
        ];
        let first: HashMap<String, i64> = [
            ("a".to_string(), 500),
            ("b".to_string(), 1_999),
            ("c".to_string(), 2_000),
            ("e".to_string(), 1_300),
        ]
        .into();
        let k = kpis(&orders, &first, 10, p);
        assert_eq!(k.gmv, Fen(18_000));
        assert_eq!(k.net_revenue, Fen(13_000));
        assert_eq!((k.orders, k.buyers), (4, 3));
        assert_eq!(k.aov, Some(Fen(4_500)));
        // a's second order was refunded in full: a bought once, not twice.
        assert_eq!(k.repurchase_rate, Ratio::Value(0.0));
        assert_eq!((k.new_buyers, k.returning_buyers), (2, 1));
        assert_eq!(k.conversion, Ratio::Value(0.3));
    }

    #[test]
    fn a_purchase_is_neither_cancelled_nor_fully_refunded() {
        assert!(order("a", 0, 100, 99, false).is_purchase(), "partial refund");
        assert!(order("a", 0, 0, 0, false).is_purchase(), "zero-value");
        assert!(!order("a", 0, 100, 100, false).is_purchase(), "full refund");
        assert!(!order("a", 0, 100, 0, true).is_purchase(), "cancelled");
    }

    #[test]
    fn aov_is_rounded_half_up_to_the_fen() {
        let p = Period { from: 0, to: 100 };
        // 200.01 元 over 2 orders = 100.005 元: 10001 fen (truncation said 10000).
        let two = [order("a", 1, 10_001, 0, false), order("b", 2, 10_000, 0, false)];
        assert_eq!(kpis(&two, &HashMap::new(), 0, p).aov, Some(Fen(10_001)));
        // 2 元 over 3 orders = 66.67 fen: 67.
        let three = [
            order("a", 1, 100, 0, false),
            order("b", 2, 100, 0, false),
            order("c", 3, 0, 0, false),
        ];
        assert_eq!(kpis(&three, &HashMap::new(), 0, p).aov, Some(Fen(67)));
    }

    #[test]
    fn an_empty_period_has_no_ratios_not_nan() {
        let k = kpis(&[], &HashMap::new(), 0, Period { from: 0, to: 1 });
        assert_eq!(k.aov, None);
        assert_eq!(k.repurchase_rate, Ratio::NotApplicable);
        assert_eq!(k.conversion, Ratio::NotApplicable);
        assert_eq!(k.repurchase_rate.to_string(), "n/a");
    }

    #[test]
    fn f29_repurchase_rate_meets_the_thirty_percent_target() {
        // 1000 buyers in the period, 300 of them with two orders.
        let mut orders = Vec::new();
        for i in 0..1000 {
            let u = format!("u{i}");
            orders.push(order(&u, 10, 100, 0, false));
            if i < 300 {
                orders.push(order(&u, 20, 100, 0, false));
            }
        }
        let k = kpis(&orders, &HashMap::new(), 0, Period { from: 0, to: 100 });
        assert_eq!(k.buyers, 1000);
        assert_eq!(k.repurchase_rate, Ratio::Value(0.3));
        assert!(
            crate::goal::rate_met(300, 1000, 30),
            "30 % meets the 30 % target (R10.4)"
        );
    }
}
