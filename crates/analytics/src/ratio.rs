//! Ratios that say "n/a" instead of dividing by zero.

use serde::{Serialize, Serializer};

/// A ratio of two counts or amounts, or "n/a" when the denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ratio {
    /// numerator ÷ denominator.
    Value(f64),
    /// The denominator is zero (an empty period, a cohort of nobody).
    NotApplicable,
}

impl Ratio {
    /// `num / den`, or n/a when `den` is 0.
    pub fn of(num: i64, den: i64) -> Ratio {
        if den == 0 {
            Ratio::NotApplicable
        } else {
            Ratio::Value(num as f64 / den as f64)
        }
    }

    /// The value, if applicable.
    pub fn value(self) -> Option<f64> {
        match self {
            Ratio::Value(v) => Some(v),
            Ratio::NotApplicable => None,
        }
    }
}

impl std::fmt::Display for Ratio {
    /// As a percentage with two decimals (`30.00%`), or `n/a`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ratio::Value(v) => write!(f, "{:.2}%", v * 100.0),
            Ratio::NotApplicable => f.write_str("n/a"),
        }
    }
}

impl Serialize for Ratio {
    /// A number in 0–1, or `null`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ratio::Value(v) => s.serialize_f64(*v),
            Ratio::NotApplicable => s.serialize_none(),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Ratio {
    /// A number, or `null` for n/a (what [`Serialize`] writes).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map_or(Ratio::NotApplicable, Ratio::Value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_denominators_are_not_applicable() {
        assert_eq!(Ratio::of(1, 0), Ratio::NotApplicable);
        assert_eq!(Ratio::of(0, 0).to_string(), "n/a");
        assert_eq!(Ratio::of(3, 10).to_string(), "30.00%");
        assert_eq!(serde_json::to_string(&Ratio::of(1, 0)).unwrap(), "null");
    }
}
