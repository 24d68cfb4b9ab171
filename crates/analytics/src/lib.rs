//! Analytics (REQUIREMENTS §10, issue 7): the metrics that tell a shop whether growth
//! works, each defined by one documented formula and computed on plain facts (orders,
//! activity days) so it is tested on hand-computed data.
//!
//! - [`kpi`]: GMV, net revenue, orders, buyers, 客單價 AOV, 復購率, new vs returning
//!   buyers, visitor→buyer conversion over a half-open period.
//! - [`retention`]: retention by signup or first-purchase cohort per day, ISO week or
//!   month (次日/7日/30日留存), with the size-weighted average row.
//! - [`goal`]: goal tracking (R10.4, F30): growth against a target, exactly.
//! - [`churn`]: churn rate 流失率 over a period (R3.4 flag).
//! - [`ltv`]: historical LTV by first-order cohort.
//! - [`attribution`]: first/last-touch attribution of orders to campaigns.
//! - [`campaign`]: campaign metrics — open rate, CTR, CVR, CPA, ROI, ROAS, true cost.
//! - [`campaign_facts`]: the message log, touches, costs and holdouts from the store;
//!   guardrail alerts and the audit log into it.
//! - [`guardrail`]: auto-pause rules (R11.4, F21, F22).
//! - [`channel`]: monthly channel ROI and budget reallocation (R11.2).
//! - [`spread`]: spend over a period spread evenly over its shop-local days.
//! - [`uplift`]: a journey against its holdout, with a 95 % interval.
//! - [`review`]: scheduled weekly and monthly reviews (R10.5) and benchmark checks
//!   (R10.6).
//! - [`config`]: `[analytics]` settings.
//! - [`reports`]: the reports the CLI and the HTTP API serve.
//! - [`clv`]: predictive CLV — BG/NBD P(alive) and expected purchases, Gamma-Gamma spend,
//!   discounted CLV (parity with `lifetimes` 0.11.3), churn-risk bands.
//! - [`load`]: the facts from the store (orders, visitors, signup and activity days).
//! - [`columnar`]: the columnar event engine: funnels with a conversion window and
//!   D-N retention in one pass over events sorted by (user, time), across cores.
//!
//! A ratio whose denominator is zero is [`Ratio::NotApplicable`] ("n/a"), never NaN.

pub mod attribution;
pub mod campaign;
pub mod campaign_facts;
pub mod channel;
pub mod churn;
pub mod clv;
pub mod columnar;
pub mod config;
pub mod goal;
pub mod guardrail;
pub mod kpi;
pub mod load;
pub mod ltv;
pub mod ratio;
pub mod reports;
pub mod retention;
pub mod review;
pub mod spread;
pub mod uplift;

pub use kpi::{kpis, Kpis, OrderFact, Period};
pub use ratio::Ratio;
pub use retention::{retention, CohortRow};
