//! Ratios that say "n/a" instead of dividing by zero, and the one division of money:
//! [`fen_per`], an amount shared per order, customer or conversion, rounded half-up to
//! the fen.

use serde::{Serialize, Serializer};

/// A ratio of two counts or amounts, or "n/a" when the denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ratio {
    /// numerator ÷ denominator.
    Value(f64),
    /// The denominator is zero (an empty period, a cohort of nobody).
    NotApplicable,
}

impl Default for Ratio {
    /// n/a: nothing counted yet.
    fn default() -> Ratio {
        Ratio::NotApplicable
    }
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

/// `amount` fen ÷ `count`, rounded half-up to the fen (half away from zero for a negative
/// amount, as [`flywheel_core::Fen::parse_decimal`] rounds): 1 元 over 3 orders is 33 fen,
/// 2 元 over 3 is 67, 5 fen over 2 is 3. `None` when `count` is 0. Every money ratio of
/// the reports (AOV 客單價, LTV per customer, CPA) divides through this, never with
/// integer division, which truncates.
pub fn fen_per(amount: i64, count: i64) -> Option<i64> {
    if count == 0 {
        return None;
    }
    let (a, c) = (i128::from(amount), i128::from(count));
    let (q, r) = (a / c, a % c);
    // |r| ≥ |c| / 2 rounds away from zero: 2|r| ≥ |c|.
    let q = if 2 * r.abs() >= c.abs() {
        q + if (a < 0) != (c < 0) { -1 } else { 1 }
    } else {
        q
    };
    Some(i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_divides_rounding_half_up_to_the_fen() {
        assert_eq!(fen_per(100, 3), Some(33));
        assert_eq!(fen_per(200, 3), Some(67), "66.67 rounds up; truncation said 66");
        assert_eq!(fen_per(5, 2), Some(3), "a half rounds up");
        assert_eq!(fen_per(3, 2), Some(2));
        assert_eq!(fen_per(7, 4), Some(2), "1.75");
        assert_eq!(fen_per(5, 4), Some(1), "1.25");
        assert_eq!(fen_per(12_000, 2), Some(6_000));
        assert_eq!(fen_per(-5, 2), Some(-3), "half away from zero");
        assert_eq!(fen_per(-200, 3), Some(-67));
        assert_eq!(fen_per(1, 0), None);
        assert_eq!(fen_per(i64::MAX, 1), Some(i64::MAX));
        assert_eq!(fen_per(i64::MIN, -1), Some(i64::MAX), "saturates");
    }

    #[test]
    fn zero_denominators_are_not_applicable() {
        assert_eq!(Ratio::of(1, 0), Ratio::NotApplicable);
        assert_eq!(Ratio::of(0, 0).to_string(), "n/a");
        assert_eq!(Ratio::of(3, 10).to_string(), "30.00%");
        assert_eq!(serde_json::to_string(&Ratio::of(1, 0)).unwrap(), "null");
    }
}
