//! Goal tracking (R10.4, F30): growth against a target, decided in integers so "exactly
//! 20 %" is reached and 19.99… % is not.

/// Whether `current` grew at least `target_percent` % over `previous`:
/// `(current − previous) × 100 ≥ target_percent × previous`. A zero baseline reaches any
/// target only with positive `current`.
pub fn growth_met(previous: i64, current: i64, target_percent: i64) -> bool {
    let gain = i128::from(current) - i128::from(previous);
    if previous == 0 {
        return gain > 0;
    }
    gain * 100 >= i128::from(target_percent) * i128::from(previous)
}

/// Whether a rate `num / den` reaches `target_percent` % (e.g. 復購率 30 %); never with
/// an empty denominator.
pub fn rate_met(num: i64, den: i64, target_percent: i64) -> bool {
    den > 0 && i128::from(num) * 100 >= i128::from(target_percent) * i128::from(den)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f30_quarterly_sales_growth_of_twenty_percent() {
        assert!(growth_met(1_000_000, 1_200_000, 20), "case 1: exactly 20 %");
        assert!(!growth_met(1_000_000, 1_190_000, 20), "case 2: 19 %");
        assert!(!growth_met(1_000_000, 1_199_999, 20));
        assert!(growth_met(0, 1, 20) && !growth_met(0, 0, 20));
        assert!(!rate_met(0, 0, 30) && rate_met(300, 1000, 30) && !rate_met(299, 1000, 30));
    }
}
