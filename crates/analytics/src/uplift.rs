//! Uplift of a journey over its holdout (issue 7; R9 experiments): the difference of
//! conversion rates, treated − holdout, with a 95 % confidence interval by the normal
//! approximation of the difference of two proportions (Wald):
//! `d ± 1.96 · √(p₁(1−p₁)/n₁ + p₂(1−p₂)/n₂)`. With an empty arm everything is n/a.

use serde::Serialize;

use crate::ratio::Ratio;

/// z for a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// One arm: users and those who converted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Arm {
    /// Users in the arm.
    pub users: i64,
    /// Users who converted.
    pub converted: i64,
    /// converted ÷ users.
    pub rate: Ratio,
}

impl Arm {
    /// An arm of `users` with `converted` conversions.
    pub fn new(users: i64, converted: i64) -> Arm {
        Arm {
            users,
            converted,
            rate: Ratio::of(converted, users),
        }
    }
}

/// Treated vs holdout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uplift {
    /// The journey.
    pub journey: String,
    /// Users who went through the journey.
    pub treated: Arm,
    /// Users held out.
    pub holdout: Arm,
    /// treated rate − holdout rate (absolute, 0–1).
    pub uplift: Option<f64>,
    /// Lower end of the 95 % interval.
    pub ci_low: Option<f64>,
    /// Upper end of the 95 % interval.
    pub ci_high: Option<f64>,
}

/// The uplift of `treated` over `holdout`.
pub fn uplift(journey: &str, treated: Arm, holdout: Arm) -> Uplift {
    let (p1, p2) = (treated.rate.value(), holdout.rate.value());
    let (d, half) = match (p1, p2) {
        (Some(p1), Some(p2)) => {
            let se = (p1 * (1.0 - p1) / treated.users as f64 + p2 * (1.0 - p2) / holdout.users as f64).sqrt();
            (Some(p1 - p2), Some(Z95 * se))
        }
        _ => (None, None),
    };
    Uplift {
        journey: journey.to_string(),
        treated,
        holdout,
        uplift: d,
        ci_low: d.zip(half).map(|(d, h)| d - h),
        ci_high: d.zip(half).map(|(d, h)| d + h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_interval() {
        // 12 % of 1000 vs 8 % of 500: d = 0.04,
        // se = √(0.12·0.88/1000 + 0.08·0.92/500) = √(0.0001056 + 0.0001472) = 0.0158997…
        let u = uplift("j", Arm::new(1000, 120), Arm::new(500, 40));
        let d = u.uplift.unwrap();
        assert!((d - 0.04).abs() < 1e-12);
        let se = (0.0001056f64 + 0.0001472).sqrt();
        assert!((u.ci_low.unwrap() - (0.04 - Z95 * se)).abs() < 1e-12);
        assert!((u.ci_high.unwrap() - (0.04 + Z95 * se)).abs() < 1e-12);
        assert!(u.ci_low.unwrap() > 0.0, "significant at 95 %");
    }

    #[test]
    fn an_empty_holdout_is_not_applicable() {
        let u = uplift("j", Arm::new(10, 1), Arm::new(0, 0));
        assert_eq!((u.uplift, u.ci_low, u.ci_high), (None, None, None));
        assert_eq!(u.holdout.rate, Ratio::NotApplicable);
    }
}
