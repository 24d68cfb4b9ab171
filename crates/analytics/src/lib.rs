//! Analytics (REQUIREMENTS §10, issue 7): the metrics that tell a shop whether growth
//! works, each defined by one documented formula and computed on plain facts (orders,
//! activity days) so it is tested on hand-computed data.
//!
//! - [`kpi`]: GMV, net revenue, orders, buyers, 客單價 AOV, 復購率, new vs returning
//!   buyers, visitor→buyer conversion over a half-open period.
//! - [`retention`]: D-N retention by signup cohort (次日/7日/30日留存).
//! - [`goal`]: goal tracking (R10.4, F30): growth against a target, exactly.
//! - [`clv`]: predictive CLV — BG/NBD P(alive) and expected purchases, Gamma-Gamma spend,
//!   discounted CLV (parity with `lifetimes` 0.11.3), churn-risk bands.
//! - [`load`]: the facts from the store (orders, visitors, signup and activity days).
//! - [`columnar`]: the columnar event engine: funnels with a conversion window and
//!   D-N retention in one pass over events sorted by (user, time), across cores.
//!
//! A ratio whose denominator is zero is [`Ratio::NotApplicable`] ("n/a"), never NaN.

pub mod clv;
pub mod columnar;
pub mod goal;
pub mod kpi;
pub mod load;
pub mod ratio;
pub mod retention;

pub use kpi::{kpis, Kpis, OrderFact, Period};
pub use ratio::Ratio;
pub use retention::{retention, CohortRow};
