//! Predictive customer lifetime value (issue 7): the BG/NBD purchase model, the Gamma-Gamma
//! spend model and the discounted CLV built on them, computed as the Python `lifetimes`
//! package (0.11.3) computes them, plus a churn-risk band from P(alive).
//!
//! Input is each customer's RFM summary in `lifetimes`' convention ([`CustomerRfm`]): `x`
//! repeat purchases (purchase days after the first), recency `tₓ` (first to last purchase
//! day), age `T` (first purchase day to the end of observation), all in days, and
//! `monetary`, the mean value of the repeat purchases in 元 (yuan) as `f64` — the `flywheel
//! rfm` summary. Expected average profit and CLV come out in the same unit (元).
//!
//! - [`BgNbd`]: fit (`r, α, a, b`), P(alive), expected purchases in the next `t` days.
//! - [`GammaGamma`]: fit (`p, q, v`), expected average profit, CLV.
//! - [`ClvModel`]: both fitted on one customer base, and [`ClvModel::score`] per customer.
//! - [`ChurnThresholds`]: the churn-risk band of a P(alive).
//!
//! Parity with `lifetimes` (within 1 % on parameters and every prediction) is tested by
//! `tests/clv/test_clv_parity.py` through `examples/clv_fit.rs`.

mod bgnbd;
mod gamma_gamma;
mod optimize;
pub mod special;

pub use bgnbd::BgNbd;
pub use gamma_gamma::GammaGamma;

/// Why a CLV fit or prediction failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClvError {
    /// Too few customers to fit `model`.
    #[error("{model}: {got} customers are too few to fit (need at least {need})")]
    TooFewCustomers {
        model: &'static str,
        got: usize,
        need: usize,
    },
    /// Nobody bought twice: the model's likelihood has no maximum.
    #[error("{model}: no customer has a repeat purchase (frequency > 0), nothing to fit")]
    NoRepeatBuyers { model: &'static str },
    /// The customer at `index` (0-based, in input order) has an impossible summary.
    #[error("customer #{index}: {reason}")]
    InvalidInput { index: usize, reason: String },
    /// A model or prediction parameter is out of range.
    #[error("invalid {name}: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// The maximum-likelihood search did not settle.
    #[error("{model} fit did not converge: {reason}")]
    NotConverged { model: &'static str, reason: String },
    /// A special function or prediction could not be evaluated in `f64`.
    #[error("numerical failure: {what}")]
    Numerical { what: String },
}

/// One customer's RFM summary, `lifetimes`' convention, time in days, money in 元.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomerRfm {
    /// `x`: number of repeat purchase days (purchase days after the first one).
    pub frequency: u32,
    /// `tₓ`: days from the first to the last purchase; 0 when `x = 0`.
    pub recency: f64,
    /// `T`: days from the first purchase to the end of observation (`tₓ ≤ T`).
    pub age: f64,
    /// Mean value of the repeat purchases in 元 (must be `> 0` when `x > 0`; ignored by
    /// the fits when `x = 0`).
    pub monetary: f64,
}

/// Checks `lifetimes`' input rules (`utils._check_inputs`): finite values, `0 ≤ tₓ ≤ T`,
/// `tₓ = 0` when `x = 0`, and a finite `monetary`.
pub(crate) fn validate(index: usize, c: &CustomerRfm) -> Result<(), ClvError> {
    let bad = |reason: String| Err(ClvError::InvalidInput { index, reason });
    if !(c.recency.is_finite() && c.age.is_finite() && c.monetary.is_finite()) {
        return bad(format!(
            "recency {}, T {} and monetary {} must be finite numbers",
            c.recency, c.age, c.monetary
        ));
    }
    if c.recency < 0.0 {
        return bad(format!(
            "negative recency {} (last purchase before the first)",
            c.recency
        ));
    }
    if c.recency > c.age {
        return bad(format!("recency {} is larger than T {}", c.recency, c.age));
    }
    if c.frequency == 0 && c.recency != 0.0 {
        return bad(format!("frequency 0 with non-zero recency {}", c.recency));
    }
    Ok(())
}

/// The time unit of the data, for CLV's months: `lifetimes`' `freq` factors (time units
/// per month): day 30, week 4.345, month 1, hour 720.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum TimeUnit {
    /// Days (`freq='D'`): Flywheel's unit.
    #[default]
    Day,
    /// Weeks (`freq='W'`).
    Week,
    /// Months (`freq='M'`).
    Month,
    /// Hours (`freq='H'`).
    Hour,
}

impl TimeUnit {
    /// `days` expressed in this unit (a week is 7 days, a month 30, an hour 1/24).
    pub fn from_days(self, days: f64) -> f64 {
        match self {
            TimeUnit::Day => days,
            TimeUnit::Week => days / 7.0,
            TimeUnit::Month => days / 30.0,
            TimeUnit::Hour => days * 24.0,
        }
    }

    /// Time units in one month, as `lifetimes` counts them.
    pub fn per_month(self) -> f64 {
        match self {
            TimeUnit::Day => 30.0,
            TimeUnit::Week => 4.345,
            TimeUnit::Month => 1.0,
            TimeUnit::Hour => 720.0,
        }
    }
}

/// Churn-risk band of a customer, from P(alive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChurnRisk {
    /// P(alive) ≥ `medium_below`.
    Low,
    /// `high_below` ≤ P(alive) < `medium_below`.
    Medium,
    /// P(alive) < `high_below`.
    High,
}

impl ChurnRisk {
    /// `"low"`, `"medium"` or `"high"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChurnRisk::Low => "low",
            ChurnRisk::Medium => "medium",
            ChurnRisk::High => "high",
        }
    }
}

/// Bands of P(alive): `high` below `high_below`, `medium` below `medium_below`, else `low`.
/// [SUGGESTED DEFAULT] `high_below = 0.3`, `medium_below = 0.7` (no source fixes these; shops
/// may tune them).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChurnThresholds {
    /// P(alive) below this is [`ChurnRisk::High`].
    pub high_below: f64,
    /// P(alive) below this (and not high) is [`ChurnRisk::Medium`].
    pub medium_below: f64,
}

impl Default for ChurnThresholds {
    fn default() -> Self {
        ChurnThresholds {
            high_below: 0.3,
            medium_below: 0.7,
        }
    }
}

impl ChurnThresholds {
    /// Thresholds with `0 ≤ high_below ≤ medium_below ≤ 1`, else an error.
    pub fn new(high_below: f64, medium_below: f64) -> Result<Self, ClvError> {
        if !(0.0..=1.0).contains(&high_below) || !(high_below..=1.0).contains(&medium_below) {
            return Err(ClvError::InvalidParameter {
                name: "churn thresholds",
                reason: format!("need 0 ≤ high ({high_below}) ≤ medium ({medium_below}) ≤ 1"),
            });
        }
        Ok(ChurnThresholds {
            high_below,
            medium_below,
        })
    }

    /// The band of `p_alive`: `High` if `< high_below`, `Medium` if `< medium_below`, else
    /// `Low`.
    pub fn classify(&self, p_alive: f64) -> ChurnRisk {
        if p_alive < self.high_below {
            ChurnRisk::High
        } else if p_alive < self.medium_below {
            ChurnRisk::Medium
        } else {
            ChurnRisk::Low
        }
    }
}

/// What [`ClvModel::score`] predicts, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClvConfig {
    /// Horizon of the expected purchases, in days (converted to `time_unit`). Default 90.
    pub horizon_days: f64,
    /// CLV horizon in months (`lifetimes`' `time`). Default 12.
    pub clv_months: u32,
    /// Monthly discount rate (`lifetimes`' `discount_rate`). Default 0.01.
    pub monthly_discount_rate: f64,
    /// Time unit of the summaries. Default days.
    pub time_unit: TimeUnit,
    /// Churn-risk bands. Default 0.3 / 0.7.
    pub churn: ChurnThresholds,
}

impl Default for ClvConfig {
    fn default() -> Self {
        ClvConfig {
            horizon_days: 90.0,
            clv_months: 12,
            monthly_discount_rate: 0.01,
            time_unit: TimeUnit::Day,
            churn: ChurnThresholds::default(),
        }
    }
}

/// One customer's predictions.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomerClv {
    /// P(alive) ([`BgNbd::probability_alive`]).
    pub p_alive: f64,
    /// Expected purchases in the next `horizon_days` ([`BgNbd::expected_purchases`]).
    pub expected_purchases: f64,
    /// Expected value per transaction in 元 ([`GammaGamma::expected_average_profit`]).
    pub expected_average_profit: f64,
    /// Discounted CLV over `clv_months` in 元 ([`GammaGamma::customer_lifetime_value`]).
    pub clv: f64,
    /// Band of `p_alive` ([`ChurnThresholds::classify`]).
    pub churn_risk: ChurnRisk,
}

/// BG/NBD and Gamma-Gamma fitted on one customer base.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClvModel {
    /// The purchase model.
    pub bgnbd: BgNbd,
    /// The spend model.
    pub gamma_gamma: GammaGamma,
}

impl ClvModel {
    /// Fits [`GammaGamma::fit`] on the repeat buyers and [`BgNbd::fit`] on every customer,
    /// both with `penalizer_coef` (`lifetimes`' `penalizer_coef`; 0 = plain MLE).
    pub fn fit(customers: &[CustomerRfm], penalizer_coef: f64) -> Result<ClvModel, ClvError> {
        // Gamma-Gamma first: it is cheap and checks the monetary values too.
        let gamma_gamma = GammaGamma::fit(customers, penalizer_coef)?;
        Ok(ClvModel {
            bgnbd: BgNbd::fit(customers, penalizer_coef)?,
            gamma_gamma,
        })
    }

    /// Predictions for every customer, in input order; an invalid summary is reported with
    /// its index.
    pub fn score_all(
        &self,
        customers: &[CustomerRfm],
        config: &ClvConfig,
    ) -> Result<Vec<CustomerClv>, ClvError> {
        customers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                validate(i, c)?;
                self.score(c, config)
            })
            .collect()
    }

    /// Predictions for one customer under `config` (see [`CustomerClv`] for each formula).
    /// An invalid summary is reported as `InvalidInput { index: 0, .. }`.
    pub fn score(&self, customer: &CustomerRfm, config: &ClvConfig) -> Result<CustomerClv, ClvError> {
        validate(0, customer)?;
        let CustomerRfm {
            frequency,
            recency,
            age,
            monetary,
        } = *customer;
        let p_alive = self.bgnbd.probability_alive(frequency, recency, age);
        let horizon = config.time_unit.from_days(config.horizon_days);
        Ok(CustomerClv {
            p_alive,
            expected_purchases: self.bgnbd.expected_purchases(horizon, frequency, recency, age)?,
            expected_average_profit: self.gamma_gamma.expected_average_profit(frequency, monetary),
            clv: self.gamma_gamma.customer_lifetime_value(
                &self.bgnbd,
                customer,
                config.clv_months,
                config.monthly_discount_rate,
                config.time_unit,
            )?,
            churn_risk: config.churn.classify(p_alive),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_bands_use_the_suggested_defaults() {
        let t = ChurnThresholds::default();
        assert_eq!(t.classify(0.0), ChurnRisk::High);
        assert_eq!(t.classify(0.299_999), ChurnRisk::High);
        assert_eq!(t.classify(0.3), ChurnRisk::Medium);
        assert_eq!(t.classify(0.699_999), ChurnRisk::Medium);
        assert_eq!(t.classify(0.7), ChurnRisk::Low);
        assert_eq!(t.classify(1.0), ChurnRisk::Low);
        assert!(ChurnThresholds::new(0.8, 0.5).is_err() && ChurnThresholds::new(-0.1, 0.5).is_err());
        assert_eq!(
            ChurnThresholds::new(0.2, 0.5).unwrap().classify(0.4),
            ChurnRisk::Medium
        );
        assert_eq!(ChurnRisk::High.as_str(), "high");
    }

    #[test]
    fn validation_follows_lifetimes_rules() {
        let ok = CustomerRfm {
            frequency: 2,
            recency: 5.0,
            age: 10.0,
            monetary: 3.0,
        };
        assert!(validate(0, &ok).is_ok());
        for bad in [
            CustomerRfm { recency: 11.0, ..ok },
            CustomerRfm { recency: -1.0, ..ok },
            CustomerRfm { frequency: 0, ..ok },
            CustomerRfm { age: f64::NAN, ..ok },
        ] {
            let err = validate(4, &bad).unwrap_err();
            assert!(matches!(err, ClvError::InvalidInput { index: 4, .. }), "{err}");
        }
    }

    #[test]
    fn scores_a_customer_end_to_end() {
        let data: Vec<CustomerRfm> = [
            (0, 0.0, 30.0, 0.0),
            (1, 10.0, 40.0, 35.0),
            (3, 25.0, 60.0, 120.5),
            (7, 88.5, 90.0, 48.25),
            (2, 3.0, 70.0, 19.9),
            (12, 150.0, 180.0, 66.0),
            (1, 30.0, 100.0, 250.0),
            (4, 60.0, 95.0, 80.0),
        ]
        .into_iter()
        .map(|(frequency, recency, age, monetary)| CustomerRfm {
            frequency,
            recency,
            age,
            monetary,
        })
        .collect();
        let model = ClvModel::fit(&data, 0.01).unwrap();
        let s = model.score(&data[3], &ClvConfig::default()).unwrap();
        assert!(
            s.p_alive > 0.0 && s.p_alive <= 1.0 && s.expected_purchases > 0.0 && s.clv > 0.0,
            "{s:?}"
        );
        let new = model.score(&data[0], &ClvConfig::default()).unwrap();
        assert_eq!((new.p_alive, new.churn_risk), (1.0, ChurnRisk::Low));
    }
}
