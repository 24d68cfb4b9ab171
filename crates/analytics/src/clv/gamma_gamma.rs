//! The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV:
//! Using Iso-Value Curves for Customer Base Analysis", JMR 42(4); Hardie's note 025), and the
//! discounted CLV that `lifetimes` 0.11.3 builds on it with a BG/NBD transaction model.
//!
//! A customer's transaction values are `Gamma(p, ν)` with `ν ~ Gamma(q, v)` across
//! customers; the average value `m` of her `x` repeat transactions is what is observed.

use super::bgnbd::BgNbd;
use super::optimize::{self, MinimizeError};
use super::special::ln_gamma;
use super::{validate, ClvError, CustomerRfm, TimeUnit};

/// Fitted Gamma-Gamma parameters (`v` in the money unit of `monetary`: 元 in Flywheel).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GammaGamma {
    /// Shape of each transaction's value.
    pub p: f64,
    /// Shape of the across-customer Gamma of `ν`.
    pub q: f64,
    /// Scale (rate) of the across-customer Gamma of `ν`, in money units.
    pub v: f64,
}

/// Starting log-parameters: `lifetimes`' default (`0.1` for each).
const START: [f64; 3] = [0.1; 3];
/// A fitted log-parameter beyond ±this means the likelihood has no interior maximum.
const MAX_LOG_PARAM: f64 = 30.0;

impl GammaGamma {
    /// Individual log-likelihood of the average value `m` of `x ≥ 1` repeat transactions
    /// (Hardie's note 025, eq. 1a, as `lifetimes` writes it):
    /// `ln L = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln v + (px−1) ln m + px ln x − (px+q) ln(xm+v)`.
    pub fn log_likelihood(&self, frequency: u32, monetary: f64) -> f64 {
        let x = f64::from(frequency);
        self.ll_given_gamma_term(self.ln_gamma_term(x), x, monetary)
    }

    /// `lifetimes`' objective: mean negative log-likelihood over the repeat buyers plus
    /// `penalizer_coef · (p² + q² + v²)`.
    pub fn objective(&self, repeat_buyers: &[(u32, f64)], penalizer_coef: f64) -> f64 {
        let n = repeat_buyers.len() as f64;
        let ll: f64 = repeat_buyers
            .iter()
            .map(|&(x, m)| self.log_likelihood(x, m))
            .sum();
        -ll / n + penalizer_coef * (self.p.powi(2) + self.q.powi(2) + self.v.powi(2))
    }

    fn ln_gamma_term(&self, x: f64) -> f64 {
        ln_gamma(self.p * x + self.q) - ln_gamma(self.p * x)
    }

    fn ll_given_gamma_term(&self, g: f64, x: f64, m: f64) -> f64 {
        let GammaGamma { p, q, v } = *self;
        g - ln_gamma(q) + q * v.ln() + (p * x - 1.0) * m.ln() + p * x * x.ln()
            - (p * x + q) * (x * m + v).ln()
    }

    /// Fits `p, q, v` by maximum likelihood on the customers with `frequency > 0` and a
    /// positive mean spend (as `lifetimes` is used: `GammaGammaFitter.fit` on the repeat
    /// buyers, which refuses a spend ≤ 0), minimising [`GammaGamma::objective`] by
    /// Nelder–Mead over log-parameters from `lifetimes`' start. A repeat buyer whose repeat
    /// purchases were all of 0 元 (zero-value orders count as purchases) is left out of the
    /// fit, and is still scored by [`GammaGamma::expected_average_profit`].
    ///
    /// Errors: an invalid summary, a repeat buyer whose `monetary` is negative, fewer than
    /// two repeat buyers with spend, a negative penalizer, or no convergence.
    pub fn fit(customers: &[CustomerRfm], penalizer_coef: f64) -> Result<GammaGamma, ClvError> {
        if !(penalizer_coef.is_finite() && penalizer_coef >= 0.0) {
            return Err(ClvError::InvalidParameter {
                name: "penalizer_coef",
                reason: format!("must be finite and ≥ 0, got {penalizer_coef}"),
            });
        }
        let mut repeat = Vec::new();
        for (i, c) in customers.iter().enumerate() {
            validate(i, c)?;
            if c.frequency > 0 {
                if c.monetary == 0.0 {
                    continue;
                }
                if c.monetary < 0.0 {
                    return Err(ClvError::InvalidInput {
                        index: i,
                        reason: format!(
                            "a repeat buyer (frequency {}) needs a monetary value ≥ 0, got {}",
                            c.frequency, c.monetary
                        ),
                    });
                }
                repeat.push((c.frequency, c.monetary));
            }
        }
        if repeat.is_empty() {
            return Err(ClvError::NoRepeatBuyers { model: "Gamma-Gamma" });
        }
        if repeat.len() < 2 {
            return Err(ClvError::TooFewCustomers {
                model: "Gamma-Gamma",
                got: repeat.len(),
                need: 2,
            });
        }
        let mut freqs: Vec<u32> = repeat.iter().map(|r| r.0).collect();
        freqs.sort_unstable();
        freqs.dedup();
        let rows: Vec<(usize, f64, f64)> = repeat
            .iter()
            .map(|&(x, m)| (freqs.binary_search(&x).unwrap_or(0), f64::from(x), m))
            .collect();
        let n = rows.len() as f64;
        let mut terms = vec![0.0; freqs.len()];
        let objective = |lp: &[f64]| -> f64 {
            let g = GammaGamma {
                p: lp[0].exp(),
                q: lp[1].exp(),
                v: lp[2].exp(),
            };
            for (slot, &x) in terms.iter_mut().zip(&freqs) {
                *slot = g.ln_gamma_term(f64::from(x));
            }
            let ll: f64 = rows
                .iter()
                .map(|&(k, x, m)| g.ll_given_gamma_term(terms[k], x, m))
                .sum();
            -ll / n + penalizer_coef * (g.p.powi(2) + g.q.powi(2) + g.v.powi(2))
        };
        let found = optimize::minimize(objective, &START, optimize::Options::default()).map_err(
            |e| match e {
                MinimizeError::BadStart => ClvError::NotConverged {
                    model: "Gamma-Gamma",
                    reason: "the log-likelihood is not finite at the starting point".into(),
                },
                MinimizeError::Budget { evaluations } => ClvError::NotConverged {
                    model: "Gamma-Gamma",
                    reason: format!(
                        "no convergence after {evaluations} evaluations (too few or degenerate data?); a penalizer > 0 helps"
                    ),
                },
            },
        )?;
        if found.x.iter().any(|v| !v.is_finite() || v.abs() > MAX_LOG_PARAM) {
            return Err(ClvError::NotConverged {
                model: "Gamma-Gamma",
                reason: format!(
                    "parameters diverge (log p, log q, log v = {:?}); a penalizer > 0 helps",
                    found.x
                ),
            });
        }
        Ok(GammaGamma {
            p: found.x[0].exp(),
            q: found.x[1].exp(),
            v: found.x[2].exp(),
        })
    }

    /// Expected average value of a customer's transactions (Hardie's note 025, eq. 5; Fader,
    /// Hardie & Lee 2005 JMR eq. 3): a weighted mean of the population mean and her own
    /// average, `E[M | x, m] = (1 − w) · v p / (q − 1) + w · m` with `w = p x / (p x + q − 1)`.
    /// A customer without repeat purchases (`x = 0`) gets the population mean `v p / (q − 1)`
    /// (negative when `q < 1`, exactly as in `lifetimes`).
    pub fn expected_average_profit(&self, frequency: u32, monetary: f64) -> f64 {
        let GammaGamma { p, q, v } = *self;
        let x = f64::from(frequency);
        let w = p * x / (p * x + q - 1.0);
        let population_mean = v * p / (q - 1.0);
        (1.0 - w) * population_mean + w * monetary
    }

    /// Discounted customer lifetime value as `lifetimes`' `customer_lifetime_value(bgf, x,
    /// tₓ, T, m, time=months, discount_rate, freq)` computes it:
    /// `CLV = Σ_{k=1..months} E[M | x, m] · (E[Y(k·f)] − E[Y((k−1)·f)]) / (1 + d)^k`,
    /// `E[Y(·)]` the BG/NBD conditional expectation ([`BgNbd::expected_purchases`]), `f` the
    /// time units per month of `unit` (`lifetimes`' factors: 30 days, 4.345 weeks, 720 hours)
    /// and `d` the monthly discount rate. In the money unit of `monetary` (元 in Flywheel).
    ///
    /// Errors: `monthly_discount_rate ≤ −1` or not finite, or a failed BG/NBD expectation.
    pub fn customer_lifetime_value(
        &self,
        transactions: &BgNbd,
        customer: &CustomerRfm,
        months: u32,
        monthly_discount_rate: f64,
        unit: TimeUnit,
    ) -> Result<f64, ClvError> {
        if !(monthly_discount_rate.is_finite() && monthly_discount_rate > -1.0) {
            return Err(ClvError::InvalidParameter {
                name: "discount_rate",
                reason: format!(
                    "the monthly discount rate must be finite and > −1, got {monthly_discount_rate}"
                ),
            });
        }
        let value = self.expected_average_profit(customer.frequency, customer.monetary);
        let factor = unit.per_month();
        let mut clv = 0.0;
        let mut previous = 0.0;
        for k in 1..=months {
            let t = f64::from(k) * factor;
            let cumulative =
                transactions.expected_purchases(t, customer.frequency, customer.recency, customer.age)?;
            clv += value * (cumulative - previous) / (1.0 + monthly_discount_rate).powf(t / factor);
            previous = cumulative;
        }
        Ok(clv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, tol: f64) {
        let err = (got - want).abs() / want.abs().max(1e-12);
        assert!(err <= tol, "got {got}, want {want}, rel err {err:e}");
    }

    fn c(frequency: u32, recency: f64, age: f64, monetary: f64) -> CustomerRfm {
        CustomerRfm {
            frequency,
            recency,
            age,
            monetary,
        }
    }

    fn tiny() -> Vec<CustomerRfm> {
        vec![
            c(1, 10.0, 40.0, 35.0),
            c(3, 25.0, 60.0, 120.5),
            c(0, 0.0, 5.0, 0.0),
            c(7, 88.5, 90.0, 48.25),
            c(2, 3.0, 70.0, 19.9),
            c(12, 150.0, 180.0, 66.0),
            c(1, 30.0, 100.0, 250.0),
            c(4, 60.0, 95.0, 80.0),
        ]
    }

    #[test]
    fn log_likelihood_matches_lifetimes_at_fixed_parameters() {
        // lifetimes 0.11.3: GammaGammaFitter._negative_log_likelihood(np.log([6.0, 4.0, 15.0]),
        // x, m, np.ones(7), 0) on the repeat buyers of tiny(), computed once and pasted.
        let g = GammaGamma {
            p: 6.0,
            q: 4.0,
            v: 15.0,
        };
        let rows: Vec<(u32, f64)> = tiny()
            .iter()
            .filter(|c| c.frequency > 0)
            .map(|c| (c.frequency, c.monetary))
            .collect();
        close(g.objective(&rows, 0.0), 6.432_459_539_739_598_5, 1e-12);
    }

    #[test]
    fn fit_and_predictions_match_lifetimes() {
        // lifetimes 0.11.3 GammaGammaFitter(penalizer_coef=0.01).fit(x, m) on the repeat
        // buyers of tiny(); then conditional_expected_average_profit and
        // customer_lifetime_value(bgf with r 0.5, α 12, a 0.8, b 2.5, ..., time=12,
        // discount_rate=0.01, freq='D'), pasted.
        let g = GammaGamma::fit(&tiny(), 0.01).unwrap();
        close(g.p, 4.064_922_049_612_383, 1e-3);
        close(g.q, 0.623_674_367_485_673_4, 1e-3);
        close(g.v, 3.899_336_544_018_009, 1e-3);
        let fixed = GammaGamma {
            p: 6.0,
            q: 4.0,
            v: 15.0,
        };
        close(
            fixed.expected_average_profit(3, 120.5),
            107.571_428_571_428_57,
            1e-12,
        );
        close(fixed.expected_average_profit(0, 0.0), 30.0, 1e-12);
        let bg = BgNbd {
            r: 0.5,
            alpha: 12.0,
            a: 0.8,
            b: 2.5,
        };
        let clv = fixed.customer_lifetime_value(&bg, &c(3, 25.0, 60.0, 120.5), 12, 0.01, TimeUnit::Day);
        close(clv.unwrap(), 318.454_923_024_196_1, 1e-10);
        assert!(fixed
            .customer_lifetime_value(&bg, &tiny()[0], 12, -1.0, TimeUnit::Day)
            .is_err());
    }

    #[test]
    fn fit_refuses_bad_spend_and_too_few_repeat_buyers() {
        let mut data = tiny();
        data[1].monetary = -1.0;
        assert!(matches!(
            GammaGamma::fit(&data, 0.0),
            Err(ClvError::InvalidInput { index: 1, .. })
        ));
        // A repeat buyer whose repeat purchases were all of 0 元 is left out of the fit
        // (lifetimes refuses spend ≤ 0, so its users filter them) and still scored.
        let with_spend: Vec<CustomerRfm> = tiny().into_iter().filter(|c| c.frequency > 0).collect();
        let mut zero = tiny();
        zero.push(c(2, 5.0, 9.0, 0.0));
        let fitted = GammaGamma::fit(&zero, 0.01).unwrap();
        assert_eq!(fitted, GammaGamma::fit(&with_spend, 0.01).unwrap());
        assert!(fitted.expected_average_profit(2, 0.0).is_finite());
        assert!(matches!(
            GammaGamma::fit(&[c(0, 0.0, 3.0, 0.0)], 0.0),
            Err(ClvError::NoRepeatBuyers { .. })
        ));
        assert!(matches!(
            GammaGamma::fit(&[c(2, 3.0, 3.0, 10.0)], 0.0),
            Err(ClvError::TooFewCustomers { got: 1, .. })
        ));
    }
}
