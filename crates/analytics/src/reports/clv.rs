//! Predictive CLV of the customer base: each customer's lifetimes-compatible RFM summary
//! (`flywheel_audience::rfm::summarize`, shop-local days, net order values) fitted with
//! BG/NBD + Gamma-Gamma ([`crate::clv`]), then P(alive), expected purchases in the next
//! `horizon_days`, CLV over `months` and a churn-risk band per customer.

use std::collections::HashMap;

use flywheel_audience::rfm::summary::{local_day, summarize, Purchase};
use flywheel_core::ErrorCode;
use serde::Serialize;

use super::{Error, Filter, Reports, Result};
use crate::clv::{BgNbd, ChurnThresholds, ClvConfig, ClvError, ClvModel, CustomerRfm, GammaGamma};
use flywheel_store::person::Person;

/// One customer's predictions. A customer is a person (a resolved profile): shown by
/// their user id when they have one (the lowest), else by their anonymous id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerPrediction {
    /// The person (profile id).
    pub profile_id: String,
    /// The person's user id (the lowest), if they have one.
    pub user_id: Option<String>,
    /// The anonymous id of a person without a user id (guest buyers).
    pub anonymous_id: Option<String>,
    /// Repeat purchase days.
    pub frequency: u32,
    /// Days first → last purchase.
    pub recency: f64,
    /// Days first purchase → now.
    pub age: f64,
    /// P(alive).
    pub p_alive: f64,
    /// Expected purchases in the horizon.
    pub expected_purchases: f64,
    /// Discounted CLV, fen.
    pub clv: i64,
    /// `low`, `medium` or `high`.
    pub churn_risk: &'static str,
}

/// Customers per churn-risk band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Band {
    /// `low`, `medium`, `high`.
    pub band: &'static str,
    /// Customers.
    pub users: i64,
}

/// The fitted models and every customer's predictions (highest CLV first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClvReport {
    /// BG/NBD parameters.
    pub bgnbd: BgNbd,
    /// Gamma-Gamma parameters.
    pub gamma_gamma: GammaGamma,
    /// The penalizer the fits used (0: plain maximum likelihood).
    pub penalizer: f64,
    /// Expected purchases are for this many days.
    pub horizon_days: u32,
    /// Customers scored.
    pub customers: i64,
    /// Customers per band.
    pub bands: Vec<Band>,
    /// Every customer, highest CLV first.
    pub predictions: Vec<CustomerPrediction>,
}

impl Reports {
    /// Fits CLV on every customer (segment filter applies) as of `now`.
    pub async fn clv(&self, f: &Filter, now: i64) -> Result<ClvReport> {
        let f = &self.touched_scope(f).await?;
        let (orders, _) = self.orders_and_first().await?;
        let tz = self.tz;
        let end = local_day(now, tz);
        let mut by_user: HashMap<&str, Vec<Purchase>> = HashMap::new();
        // Every purchase (not cancelled, not fully refunded; a 0 元 order is one, as
        // `lifetimes` counts it) of each person, at its net value.
        for o in orders
            .iter()
            .filter(|o| o.is_purchase() && o.placed_at <= now && f.user(&o.user))
        {
            by_user.entry(o.user.as_str()).or_default().push(Purchase {
                day: local_day(o.placed_at, tz),
                amount_fen: o.total.0.saturating_sub(o.refunded.0),
            });
        }
        let mut users = Vec::with_capacity(by_user.len());
        let mut rfm = Vec::with_capacity(by_user.len());
        for (user, purchases) in &by_user {
            if let Some(s) = summarize(purchases, end) {
                users.push(*user);
                rfm.push(CustomerRfm {
                    frequency: s.frequency,
                    recency: f64::from(s.recency_days),
                    age: f64::from(s.t_days),
                    monetary: s.monetary_fen / 100.0,
                });
            }
        }
        let c = &self.config.clv;
        let config = ClvConfig {
            horizon_days: f64::from(c.horizon_days),
            clv_months: c.months,
            monthly_discount_rate: c.discount_rate,
            churn: ChurnThresholds::new(c.high_risk_below, c.medium_risk_below)
                .map_err(|e| Error::refused(ErrorCode::InvalidConfig, format!("[analytics.clv]: {e}")))?,
            ..ClvConfig::default()
        };
        // The plain MLE (as lifetimes fits by default); when it does not converge on a
        // small or degenerate customer base, the fallback penalizer, then ten and a
        // hundred times it.
        let mut penalizer = c.penalizer;
        let mut fitted = ClvModel::fit(&rfm, penalizer);
        let mut next = c.fallback_penalizer;
        for _ in 0..3 {
            if !matches!(fitted, Err(ClvError::NotConverged { .. })) || next <= penalizer {
                break;
            }
            penalizer = next;
            fitted = ClvModel::fit(&rfm, penalizer);
            next *= 10.0;
        }
        let model = fitted.map_err(|e| Error::refused(ErrorCode::ClvNotFitted, format!("CLV: {e}")))?;
        let scores = model
            .score_all(&rfm, &config)
            .map_err(|e| Error::refused(ErrorCode::ClvNotFitted, format!("CLV: {e}")))?;
        let mut predictions: Vec<CustomerPrediction> = users
            .iter()
            .zip(&rfm)
            .zip(&scores)
            .map(|((u, r), s)| {
                let shown = Person::of_profile(u);
                CustomerPrediction {
                    profile_id: (*u).to_string(),
                    user_id: shown.user_id().map(str::to_string),
                    anonymous_id: shown.anonymous_id().map(str::to_string),
                    frequency: r.frequency,
                    recency: r.recency,
                    age: r.age,
                    p_alive: s.p_alive,
                    expected_purchases: s.expected_purchases,
                    clv: (s.clv * 100.0).round() as i64,
                    churn_risk: s.churn_risk.as_str(),
                }
            })
            .collect();
        predictions.sort_by(|a, b| b.clv.cmp(&a.clv).then_with(|| a.profile_id.cmp(&b.profile_id)));
        let bands = ["low", "medium", "high"]
            .into_iter()
            .map(|band| Band {
                band,
                users: predictions.iter().filter(|p| p.churn_risk == band).count() as i64,
            })
            .collect();
        Ok(ClvReport {
            bgnbd: model.bgnbd,
            gamma_gamma: model.gamma_gamma,
            penalizer,
            horizon_days: c.horizon_days,
            customers: predictions.len() as i64,
            bands,
            predictions,
        })
    }
}

impl ClvReport {
    /// Segment `identify` messages that put each customer's predictions on their profile
    /// as traits — `clv_p_alive`, `clv_expected_purchases`, `clv_value` (元) and
    /// `clv_churn_risk` — so segments can use them (`traits.clv_churn_risk == "high"`).
    /// Each addresses the person by their user id, else (a guest buyer) by their
    /// anonymous id, so it lands on that profile and never creates another. Message ids
    /// are `clv-PROFILE-AT`, so sending the same scoring twice stores it once.
    pub fn identify_messages(&self, at: i64) -> Vec<serde_json::Value> {
        let ts = flywheel_core::time::from_millis(at).to_rfc3339();
        self.predictions
            .iter()
            .map(|p| {
                let mut m = serde_json::json!({
                    "type": "identify",
                    "messageId": format!("clv-{}-{at}", p.profile_id),
                    "timestamp": ts,
                    "traits": {
                        "clv_p_alive": (p.p_alive * 1e4).round() / 1e4,
                        "clv_expected_purchases": (p.expected_purchases * 1e3).round() / 1e3,
                        "clv_value": p.clv as f64 / 100.0,
                        "clv_churn_risk": p.churn_risk,
                    },
                    "context": {"library": {"name": "flywheel-clv", "version": env!("CARGO_PKG_VERSION")}},
                });
                match (&p.user_id, &p.anonymous_id) {
                    (Some(u), _) => m["userId"] = serde_json::json!(u),
                    (None, Some(a)) => m["anonymousId"] = serde_json::json!(a),
                    (None, None) => m["userId"] = serde_json::json!(p.profile_id),
                }
                m
            })
            .collect()
    }
}
