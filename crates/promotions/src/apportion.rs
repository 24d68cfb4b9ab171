//! Apportioning (分攤) an order-level discount to the lines it applies to, so a partial
//! refund returns the right amount.
//!
//! The rule: each line gets `discount × amount / total`, rounded down to the fen; the
//! fen left over go one each to the lines with the largest remainders, ties to the
//! earlier line (largest-remainder method). The shares always add up to the discount
//! exactly, no line gets more than its amount, and the result is deterministic.

/// Splits `discount` (fen, `0 <= discount <= Σ amounts`) over `amounts` (fen, each ≥ 0).
pub fn apportion(discount: i64, amounts: &[i64]) -> Vec<i64> {
    let total: i64 = amounts.iter().sum();
    if discount <= 0 || total <= 0 {
        return vec![0; amounts.len()];
    }
    let discount = discount.min(total);
    let mut shares = Vec::with_capacity(amounts.len());
    let mut remainders = Vec::with_capacity(amounts.len());
    for (i, &a) in amounts.iter().enumerate() {
        let exact = i128::from(discount) * i128::from(a);
        shares.push((exact / i128::from(total)) as i64);
        remainders.push((exact % i128::from(total), i));
    }
    let mut left = discount - shares.iter().sum::<i64>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left == 0 {
            break;
        }
        if shares[i] < amounts[i] {
            shares[i] += 1;
            left -= 1;
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn thirds_go_to_the_largest_remainders_first() {
        assert_eq!(apportion(100, &[100, 100, 100]), vec![34, 33, 33]);
        assert_eq!(apportion(5000, &[30000, 5000]), vec![4286, 714]);
        assert_eq!(apportion(0, &[1, 2]), vec![0, 0]);
        assert_eq!(apportion(10, &[0, 0]), vec![0, 0]);
        assert_eq!(apportion(999, &[3, 0, 5]), vec![3, 0, 5]);
    }

    proptest! {
        #[test]
        fn shares_sum_exactly_and_never_exceed_a_line(amounts in prop::collection::vec(0i64..1_000_000, 1..12), frac in 0.0f64..1.2) {
            let total: i64 = amounts.iter().sum();
            let discount = (total as f64 * frac) as i64;
            let shares = apportion(discount, &amounts);
            prop_assert_eq!(shares.iter().sum::<i64>(), discount.min(total).max(0));
            for (s, a) in shares.iter().zip(&amounts) {
                prop_assert!(*s >= 0 && s <= a);
            }
        }
    }
}
