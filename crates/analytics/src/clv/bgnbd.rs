//! The BG/NBD model (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way: An
//! Alternative to the Pareto/NBD Model", Marketing Science 24(2)), as `lifetimes` 0.11.3's
//! `BetaGeoFitter` computes it.
//!
//! While alive, a customer buys as a Poisson process with rate `λ ~ Gamma(r, α)`; after
//! each repeat purchase she drops out with probability `p ~ Beta(a, b)`.

use super::optimize::{self, MinimizeError};
use super::special::{hyp2f1_sign_ln, ln_gamma};
use super::{validate, ClvError, CustomerRfm};

/// Fitted BG/NBD parameters, `α` in the time unit of the data (days in Flywheel).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BgNbd {
    /// Shape of the Gamma purchase-rate heterogeneity.
    pub r: f64,
    /// Scale of the Gamma purchase-rate heterogeneity (time units).
    pub alpha: f64,
    /// First shape of the Beta drop-out heterogeneity.
    pub a: f64,
    /// Second shape of the Beta drop-out heterogeneity.
    pub b: f64,
}

/// Starting log-parameters: `lifetimes`' default (`0.1` for each).
const START: [f64; 4] = [0.1; 4];
/// A fitted log-parameter beyond ±this means the likelihood has no interior maximum.
const MAX_LOG_PARAM: f64 = 30.0;

impl BgNbd {
    /// Individual log-likelihood (Fader, Hardie & Lee 2005, eq. 6, in the overflow-safe form
    /// of Hardie's note 004 / `lifetimes`):
    /// `ln L = A₁ + A₂ + ln(e^{A₃} + δ_{x>0} e^{A₄})` with
    /// `A₁ = ln Γ(r+x) − ln Γ(r) + r ln α`,
    /// `A₂ = ln Γ(a+b) + ln Γ(b+x) − ln Γ(b) − ln Γ(a+b+x)`,
    /// `A₃ = −(r+x) ln(α+T)`,
    /// `A₄ = ln a − ln(b + max(x,1) − 1) − (r+x) ln(α+tₓ)`.
    pub fn log_likelihood(&self, frequency: u32, recency: f64, age: f64) -> f64 {
        let x = f64::from(frequency);
        let gamma_terms = self.ln_gamma_terms(x);
        self.ll_given_gamma_terms(gamma_terms, x, recency, age)
    }

    /// `lifetimes`' objective at these parameters: the mean negative log-likelihood
    /// `−(1/n) Σᵢ ln Lᵢ` plus `penalizer_coef · (r² + α² + a² + b²)`. `lifetimes` fits in time
    /// scaled by `1 / max T` and penalises the scaled `α`; so does this (`α_s = α / max T`), so
    /// penalised fits agree with `BetaGeoFitter(penalizer_coef)` too. Time units must be those
    /// of the data (no scaling is applied to `recency`/`age` here; the log-likelihood itself
    /// changes under scaling only by a constant).
    pub fn objective(&self, customers: &[CustomerRfm], penalizer_coef: f64) -> f64 {
        let max_age = customers.iter().map(|c| c.age).fold(0.0, f64::max);
        let scaled_alpha = if max_age > 0.0 {
            self.alpha / max_age
        } else {
            self.alpha
        };
        let n = customers.len() as f64;
        let ll: f64 = customers
            .iter()
            .map(|c| self.log_likelihood(c.frequency, c.recency, c.age))
            .sum();
        let penalty =
            penalizer_coef * (self.r.powi(2) + scaled_alpha.powi(2) + self.a.powi(2) + self.b.powi(2));
        -ll / n + penalty
    }

    /// `ln Γ(r+x) − ln Γ(r)` and `ln Γ(a+b) + ln Γ(b+x) − ln Γ(b) − ln Γ(a+b+x)`: they depend
    /// on `x` only, so a fit computes them once per distinct frequency.
    fn ln_gamma_terms(&self, x: f64) -> (f64, f64) {
        let BgNbd { r, a, b, .. } = *self;
        (
            ln_gamma(r + x) - ln_gamma(r),
            ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x),
        )
    }

    fn ll_given_gamma_terms(&self, (g_r, g_ab): (f64, f64), x: f64, recency: f64, age: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let a1 = g_r + r * alpha.ln();
        let a3 = -(r + x) * (alpha + age).ln();
        if x == 0.0 {
            return a1 + g_ab + a3;
        }
        let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + recency).ln();
        let m = a3.max(a4);
        a1 + g_ab + m + ((a3 - m).exp() + (a4 - m).exp()).ln()
    }

    /// Fits `r, α, a, b` by maximum likelihood (the objective of [`BgNbd::objective`],
    /// minimised by Nelder–Mead over log-parameters in time scaled by `1 / max T`, started
    /// where `lifetimes` starts, restarted until it no longer moves).
    ///
    /// Errors: no customers, an invalid summary (see [`CustomerRfm`]), no repeat buyer (the
    /// likelihood then has no maximum), a negative or non-finite penalizer, or no
    /// convergence.
    pub fn fit(customers: &[CustomerRfm], penalizer_coef: f64) -> Result<BgNbd, ClvError> {
        if customers.is_empty() {
            return Err(ClvError::TooFewCustomers {
                model: "BG/NBD",
                got: 0,
                need: 1,
            });
        }
        if !(penalizer_coef.is_finite() && penalizer_coef >= 0.0) {
            return Err(ClvError::InvalidParameter {
                name: "penalizer_coef",
                reason: format!("must be finite and ≥ 0, got {penalizer_coef}"),
            });
        }
        for (i, c) in customers.iter().enumerate() {
            validate(i, c)?;
        }
        if customers.iter().all(|c| c.frequency == 0) {
            return Err(ClvError::NoRepeatBuyers { model: "BG/NBD" });
        }
        let max_age = customers.iter().map(|c| c.age).fold(0.0, f64::max);
        if max_age <= 0.0 {
            return Err(ClvError::InvalidInput {
                index: 0,
                reason: "every customer has age T = 0: nothing was observed".into(),
            });
        }
        // Customers in scaled time, grouped by frequency for the Γ terms.
        let mut freqs: Vec<u32> = customers.iter().map(|c| c.frequency).collect();
        freqs.sort_unstable();
        freqs.dedup();
        let scaled: Vec<(usize, f64, f64, f64)> = customers
            .iter()
            .map(|c| {
                let k = freqs.binary_search(&c.frequency).unwrap_or(0);
                (k, f64::from(c.frequency), c.recency / max_age, c.age / max_age)
            })
            .collect();
        let n = customers.len() as f64;
        let mut gamma_terms = vec![(0.0, 0.0); freqs.len()];
        let objective = |lp: &[f64]| -> f64 {
            let m = BgNbd {
                r: lp[0].exp(),
                alpha: lp[1].exp(),
                a: lp[2].exp(),
                b: lp[3].exp(),
            };
            for (slot, &x) in gamma_terms.iter_mut().zip(&freqs) {
                *slot = m.ln_gamma_terms(f64::from(x));
            }
            let ll: f64 = scaled
                .iter()
                .map(|&(k, x, t_x, t)| m.ll_given_gamma_terms(gamma_terms[k], x, t_x, t))
                .sum();
            let penalty = penalizer_coef * (m.r.powi(2) + m.alpha.powi(2) + m.a.powi(2) + m.b.powi(2));
            -ll / n + penalty
        };
        let found = optimize::minimize(objective, &START, optimize::Options::default()).map_err(
            |e| match e {
                MinimizeError::BadStart => ClvError::NotConverged {
                    model: "BG/NBD",
                    reason: "the log-likelihood is not finite at the starting point".into(),
                },
                MinimizeError::Budget { evaluations } => ClvError::NotConverged {
                    model: "BG/NBD",
                    reason: format!(
                        "no convergence after {evaluations} evaluations (too few or degenerate data?); a penalizer > 0 helps"
                    ),
                },
            },
        )?;
        if found.x.iter().any(|v| !v.is_finite() || v.abs() > MAX_LOG_PARAM) {
            return Err(ClvError::NotConverged {
                model: "BG/NBD",
                reason: format!(
                    "parameters diverge (log r, log α, log a, log b = {:?}); a penalizer > 0 helps",
                    found.x
                ),
            });
        }
        Ok(BgNbd {
            r: found.x[0].exp(),
            alpha: found.x[1].exp() * max_age,
            a: found.x[2].exp(),
            b: found.x[3].exp(),
        })
    }

    /// Probability the customer is still alive (Fader, Hardie & Lee 2005, eq. 12; Hardie's
    /// note 021):
    /// `P(alive | x, tₓ, T) = 1 / (1 + δ_{x>0} · a / (b + x − 1) · ((α+T)/(α+tₓ))^{r+x})`,
    /// evaluated as `lifetimes` does, `expit(−ln(…))`; exactly 1 for `x = 0`.
    pub fn probability_alive(&self, frequency: u32, recency: f64, age: f64) -> f64 {
        if frequency == 0 {
            return 1.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(frequency);
        let log_div = (r + x) * ((alpha + age) / (alpha + recency)).ln() + (a / (b + x - 1.0)).ln();
        1.0 / (1.0 + log_div.exp())
    }

    /// Expected number of repeat purchases in the next `t` time units (Fader, Hardie & Lee
    /// 2005, eq. 10):
    /// `E[Y(t) | x, tₓ, T] = (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^{r+x}
    ///   ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))] / (1 + δ_{x>0} a/(b+x−1) ((α+T)/(α+tₓ))^{r+x})`.
    ///
    /// When `x = 0` and `a + b < 1` the ₂F₁ is negative; `lifetimes` then takes its logarithm
    /// and returns NaN, this evaluates the same formula with the sign kept (finite).
    ///
    /// Errors: `t` negative or not finite, or a non-finite result (e.g. `a = 1`, or ₂F₁ out of
    /// reach of its series).
    pub fn expected_purchases(
        &self,
        t: f64,
        frequency: u32,
        recency: f64,
        age: f64,
    ) -> Result<f64, ClvError> {
        if !(t.is_finite() && t >= 0.0) {
            return Err(ClvError::InvalidParameter {
                name: "t",
                reason: format!("the horizon must be finite and ≥ 0, got {t}"),
            });
        }
        if t == 0.0 {
            return Ok(0.0);
        }
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(frequency);
        let z = t / (alpha + age + t);
        let (sign, ln_hyp) = hyp2f1_sign_ln(r + x, b + x, a + b + x - 1.0, z)?;
        let first = (a + b + x - 1.0) / (a - 1.0);
        // 1 − (1−z)^{r+x} ₂F₁, with (α+T)/(α+T+t) = 1 − z; ₂F₁ < 0 only when x = 0 and a + b < 1
        let ln_scaled = ln_hyp + (r + x) * ((alpha + age) / (alpha + t + age)).ln();
        let second = if sign > 0.0 {
            -ln_scaled.exp_m1()
        } else {
            1.0 + ln_scaled.exp()
        };
        let denominator = if frequency > 0 {
            1.0 + a / (b + x - 1.0) * ((alpha + age) / (alpha + recency)).powf(r + x)
        } else {
            1.0
        };
        let value = first * second / denominator;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(ClvError::Numerical {
                what: format!("expected purchases for x = {frequency}, tₓ = {recency}, T = {age}, t = {t} with {self:?}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(frequency: u32, recency: f64, age: f64) -> CustomerRfm {
        CustomerRfm {
            frequency,
            recency,
            age,
            monetary: 0.0,
        }
    }

    /// A tiny data set: (x, tₓ, T) in days.
    fn tiny() -> Vec<CustomerRfm> {
        vec![
            c(0, 0.0, 30.0),
            c(1, 10.0, 40.0),
            c(3, 25.0, 60.0),
            c(0, 0.0, 5.0),
            c(7, 88.5, 90.0),
            c(2, 3.0, 70.0),
            c(0, 0.0, 90.0),
            c(12, 150.0, 180.0),
        ]
    }

    fn close(got: f64, want: f64, tol: f64) {
        let err = (got - want).abs() / want.abs().max(1e-12);
        assert!(err <= tol, "got {got}, want {want}, rel err {err:e}");
    }

    #[test]
    fn log_likelihood_matches_lifetimes_at_fixed_parameters() {
        // lifetimes 0.11.3: BetaGeoFitter._negative_log_likelihood(np.log([0.5, 12.0, 0.8, 2.5]),
        // freq, rec, T, np.ones(8), pen) on tiny() (unscaled days), computed once and pasted.
        let m = BgNbd {
            r: 0.5,
            alpha: 12.0,
            a: 0.8,
            b: 2.5,
        };
        let data = tiny();
        let nll: f64 = -data
            .iter()
            .map(|c| m.log_likelihood(c.frequency, c.recency, c.age))
            .sum::<f64>()
            / 8.0;
        close(nll, 12.748_710_626_655_098, 1e-12);
        // the objective penalises α / max T (180 days), as lifetimes' scaled fit does
        let want_pen = 0.1 * (0.25 + (12.0_f64 / 180.0).powi(2) + 0.64 + 6.25);
        close(m.objective(&data, 0.1), 12.748_710_626_655_098 + want_pen, 1e-12);
    }

    #[test]
    fn fit_on_tiny_data_matches_lifetimes() {
        // lifetimes 0.11.3 BetaGeoFitter(penalizer_coef=0.01).fit(freq, rec, T) on tiny()
        let m = BgNbd::fit(&tiny(), 0.01).unwrap();
        close(m.r, 0.850_839_301_976_328_5, 1e-3);
        close(m.alpha, 12.896_110_441_849_325, 1e-3);
        close(m.a, 0.259_520_371_917_769_83, 1e-3);
        close(m.b, 1.053_123_903_570_463, 1e-3);
    }

    #[test]
    fn predictions_match_lifetimes_at_fixed_parameters() {
        // lifetimes 0.11.3 with params_ set to r 0.242593, α 4.413532, a 0.792886, b 2.425752
        // (its CDNOW fit): conditional_probability_alive and
        // conditional_expected_number_of_purchases_up_to_time(t, x, tₓ, T), pasted.
        let m = BgNbd {
            r: 0.242_593,
            alpha: 4.413_532,
            a: 0.792_886,
            b: 2.425_752,
        };
        close(
            m.probability_alive(2, 30.43, 38.86),
            0.726_609_102_456_250_8,
            1e-12,
        );
        close(
            m.probability_alive(1, 1.71, 38.86),
            0.212_227_323_452_095_25,
            1e-12,
        );
        assert_eq!(m.probability_alive(0, 0.0, 38.86), 1.0);
        close(
            m.expected_purchases(39.0, 2, 30.43, 38.86).unwrap(),
            1.225_910_385_693_892_9,
            1e-10,
        );
        close(
            m.expected_purchases(39.0, 0, 0.0, 38.86).unwrap(),
            0.194_780_912_293_565_14,
            1e-10,
        );
        close(
            m.expected_purchases(360.0, 29, 38.0, 38.86).unwrap(),
            81.851_560_378_145_98,
            1e-10,
        );
        assert_eq!(m.expected_purchases(0.0, 3, 10.0, 20.0).unwrap(), 0.0);
        assert!(m.expected_purchases(-1.0, 3, 10.0, 20.0).is_err());
    }

    #[test]
    fn expected_purchases_stay_finite_when_the_hypergeometric_is_negative() {
        // a + b < 1: for x = 0, ₂F₁(r, b; a+b−1; z) < 0 and lifetimes returns NaN. Want: eq. 10
        // evaluated directly with scipy.special.hyp2f1 (no logarithm), computed once and pasted.
        let m = BgNbd {
            r: 0.218_690_04,
            alpha: 4.432_445_35,
            a: 0.171_795_1,
            b: 0.732_734_55,
        };
        close(
            m.expected_purchases(365.0, 0, 0.0, 1.0).unwrap(),
            7.794_591_485_726_01,
            1e-10,
        );
        close(
            m.expected_purchases(30.0, 0, 0.0, 200.0).unwrap(),
            0.031_580_709_085_200_52,
            1e-10,
        );
        close(
            m.expected_purchases(365.0, 2, 4.0, 4.0).unwrap(),
            52.828_370_343_393_935,
            1e-10,
        );
    }

    #[test]
    fn fit_refuses_data_without_a_maximum() {
        assert!(matches!(
            BgNbd::fit(&[], 0.0),
            Err(ClvError::TooFewCustomers { .. })
        ));
        let none_repeat = vec![c(0, 0.0, 10.0), c(0, 0.0, 20.0)];
        assert!(matches!(
            BgNbd::fit(&none_repeat, 0.0),
            Err(ClvError::NoRepeatBuyers { .. })
        ));
        assert!(matches!(
            BgNbd::fit(&[c(1, 30.0, 20.0)], 0.0),
            Err(ClvError::InvalidInput { index: 0, .. })
        ));
        assert!(matches!(
            BgNbd::fit(&tiny(), -1.0),
            Err(ClvError::InvalidParameter { .. })
        ));
    }
}
