//! Money as integer fen (1 元 = 100 fen). Never floats for money (DESIGN, rules of the house).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// An amount of money in fen, the smallest unit of the currency (分 for CNY, cents otherwise).
///
/// Built from decimal text with [`Fen::parse_decimal`] or from a JSON value with
/// [`Fen::from_json`]. Amounts with more than two decimals are rounded half away from
/// zero to the nearest fen (documented in `docs/ingest.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(pub i64);

/// The largest amount accepted: 10^15 fen (10 trillion 元); beyond is surely bad input.
const MAX_ABS_FEN: i64 = 1_000_000_000_000_000;

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// Builds an amount from whole yuan.
    pub const fn yuan(yuan: i64) -> Fen {
        Fen(yuan * 100)
    }

    /// Reads decimal yuan text such as `"27.5"`, `"-3"`, `"1000.01"` or `"1e3"`.
    ///
    /// Exact: the digits are read as a decimal, never through a float, so
    /// `"1000.01"` is exactly 100001 fen.
    pub fn parse_decimal(text: &str) -> Result<Fen> {
        let bad = || Error::InvalidMoney(text.to_string());
        let s = text.trim();
        if s.is_empty() {
            return Err(bad());
        }
        let (negative, s) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exponent) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().map_err(|_| bad())?),
            None => (s, 0),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mantissa, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        // All digits as one integer, with the decimal point `scale` places from the right.
        let digits: String = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let scale = frac_part.len() as i32 - exponent; // value = digits * 10^-scale
        if digits.is_empty() {
            return Ok(Fen::ZERO);
        }
        if digits.len() > 30 || !(-20..=40).contains(&scale) {
            return Err(Error::MoneyOutOfRange(text.to_string()));
        }
        let n: i128 = digits
            .parse()
            .map_err(|_| Error::MoneyOutOfRange(text.to_string()))?;
        // fen = digits * 10^(2 - scale), rounded half away from zero.
        let shift = 2 - scale;
        let fen: i128 = if shift >= 0 {
            n.checked_mul(10i128.pow(shift as u32))
                .ok_or_else(|| Error::MoneyOutOfRange(text.to_string()))?
        } else {
            let div = 10i128.pow((-shift) as u32);
            let q = n / div;
            let r = n % div;
            if r * 2 >= div {
                q + 1
            } else {
                q
            }
        };
        if fen > MAX_ABS_FEN as i128 {
            return Err(Error::MoneyOutOfRange(text.to_string()));
        }
        let fen = fen as i64;
        Ok(Fen(if negative { -fen } else { fen }))
    }

    /// Reads a JSON number or numeric string as yuan.
    ///
    /// JSON numbers are read through their shortest round-trip text, so `27.50`
    /// sent by an SDK becomes exactly 2750 fen.
    pub fn from_json(value: &serde_json::Value) -> Result<Fen> {
        match value {
            serde_json::Value::Number(n) => Fen::parse_decimal(&n.to_string()),
            serde_json::Value::String(s) => Fen::parse_decimal(s),
            other => Err(Error::InvalidMoney(other.to_string())),
        }
    }

    /// The amount as yuan for display and JSON output (may lose nothing: two decimals).
    pub fn to_yuan_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }

    /// Checked addition.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} 元", self.to_yuan_string())
    }
}

impl std::ops::Add for Fen {
    type Output = Fen;
    fn add(self, rhs: Fen) -> Fen {
        Fen(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Fen {
    type Output = Fen;
    fn sub(self, rhs: Fen) -> Fen {
        Fen(self.0 - rhs.0)
    }
}

impl std::iter::Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        Fen(iter.map(|f| f.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_decimals() {
        assert_eq!(Fen::parse_decimal("1000.01").unwrap(), Fen(100_001));
        assert_eq!(Fen::parse_decimal("1000").unwrap(), Fen(100_000));
        assert_eq!(Fen::parse_decimal("27.5").unwrap(), Fen(2750));
        assert_eq!(Fen::parse_decimal("0.1").unwrap(), Fen(10));
        assert_eq!(Fen::parse_decimal("-3").unwrap(), Fen(-300));
        assert_eq!(Fen::parse_decimal(".5").unwrap(), Fen(50));
        assert_eq!(Fen::parse_decimal("1e3").unwrap(), Fen(100_000));
        assert_eq!(Fen::parse_decimal("1.5E-1").unwrap(), Fen(15));
        assert_eq!(Fen::parse_decimal("0").unwrap(), Fen(0));
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(Fen::parse_decimal("0.005").unwrap(), Fen(1));
        assert_eq!(Fen::parse_decimal("0.004").unwrap(), Fen(0));
        assert_eq!(Fen::parse_decimal("-0.005").unwrap(), Fen(-1));
        assert_eq!(Fen::parse_decimal("19.999").unwrap(), Fen(2000));
    }

    #[test]
    fn rejects_garbage_and_huge() {
        for s in ["", "abc", "1.2.3", "--1", "1e", "NaN", "1,000", "."] {
            assert!(Fen::parse_decimal(s).is_err(), "{s}");
        }
        assert!(matches!(
            Fen::parse_decimal("1e30"),
            Err(Error::MoneyOutOfRange(_))
        ));
    }

    #[test]
    fn json_numbers_round_trip_exactly() {
        let v: serde_json::Value = serde_json::from_str("[27.50, 1000.01, 0.3, \"12.34\", 5]").unwrap();
        let got: Vec<i64> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| Fen::from_json(x).unwrap().0)
            .collect();
        assert_eq!(got, vec![2750, 100_001, 30, 1234, 500]);
        assert!(Fen::from_json(&serde_json::json!(true)).is_err());
    }

    #[test]
    fn formats_yuan() {
        assert_eq!(Fen(100_001).to_yuan_string(), "1000.01");
        assert_eq!(Fen(-5).to_yuan_string(), "-0.05");
        assert_eq!(Fen(100_000).to_string(), "1000.00 元");
    }
}
