//! The raw RFM summary of one buyer, equal to the Python `lifetimes` package's
//! `summary_data_from_transaction_data(..., monetary_value_col=..., observation_period_end=..., freq='D')`.
//!
//! Purchases are bucketed into shop-local calendar days. Purchases on days after the
//! observation end are dropped; purchases on the same day are one period whose value is
//! their sum. Then, with `first`/`last` the first and last purchase days and `end` the
//! observation end day:
//!
//! - `frequency` = distinct purchase days − 1 (repeat purchase periods);
//! - `recency` = `last − first` days, `T` = `end − first` days;
//! - `monetary_value` = mean value of the repeat periods (the first day's value excluded),
//!   0 when `frequency` is 0.
//!
//! Amounts stay integer fen; only the final mean is a float. The parity test against the
//! real package is `crates/audience/tests/lifetimes_fixture.rs` (fixture made by
//! `tests/audience/test_lifetimes.py`, which also checks `flywheel rfm` end to end).

use chrono::{NaiveDate, TimeZone};

/// Purchases summarised without a heap allocation when they are unsorted and at most this many.
const STACK_DAYS: usize = 64;

const MS_PER_DAY: i64 = 86_400_000;

/// One purchase: the shop-local calendar day (days since 1970-01-01 in the shop timezone) and its amount in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Purchase {
    /// Shop-local calendar day of the purchase (days since 1970-01-01), see [`local_day`].
    pub day: i32,
    /// Amount paid, in fen (1 元 = 100 fen).
    pub amount_fen: i64,
}

/// lifetimes-compatible summary of one customer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RfmSummary {
    /// Repeat purchase periods: distinct purchase days − 1 (lifetimes' `frequency`).
    pub frequency: u32,
    /// Days from the first to the last purchase day (lifetimes' `recency`).
    pub recency_days: u32,
    /// Days from the first purchase day to the observation end day (lifetimes' `T`).
    pub t_days: u32,
    /// Mean repeat-period value in fen (exact rational kept as f64 fen); 0 when `frequency` is 0
    /// (lifetimes' `monetary_value`, times 100).
    pub monetary_fen: f64,
    /// First purchase day.
    pub first_day: i32,
    /// Last purchase day.
    pub last_day: i32,
    /// Sum of the counted purchases, in fen.
    pub total_fen: i64,
    /// Number of counted purchases (several on one day count one each).
    pub orders: u32,
}

/// Summary of one customer's purchases as of `observation_end_day` (inclusive); purchases
/// after it are ignored; None when no purchase on or before it. Input need not be sorted.
///
/// O(n) when the counted purchases are in day order, otherwise one sort of their days
/// (on the stack for up to 64 purchases).
pub fn summarize(purchases: &[Purchase], observation_end_day: i32) -> Option<RfmSummary> {
    let mut counted = purchases.iter().filter(|p| p.day <= observation_end_day);
    let head = counted.next()?;
    let (mut first_day, mut last_day) = (head.day, head.day);
    let mut first_day_fen = head.amount_fen;
    let mut total_fen = head.amount_fen;
    let mut orders: u32 = 1;
    // Distinct days, counted on the fly while the days come in non-decreasing order.
    let mut sorted = true;
    let mut distinct: u64 = 1;
    let mut previous = head.day;
    for p in counted {
        total_fen = total_fen.saturating_add(p.amount_fen);
        orders = orders.saturating_add(1);
        match p.day.cmp(&first_day) {
            std::cmp::Ordering::Less => {
                first_day = p.day;
                first_day_fen = p.amount_fen;
            }
            std::cmp::Ordering::Equal => first_day_fen = first_day_fen.saturating_add(p.amount_fen),
            std::cmp::Ordering::Greater => {}
        }
        last_day = last_day.max(p.day);
        if p.day < previous {
            sorted = false;
        } else if p.day > previous {
            distinct += 1;
        }
        previous = p.day;
    }
    if !sorted {
        distinct = distinct_days(purchases, observation_end_day);
    }
    let frequency = u32::try_from(distinct - 1).unwrap_or(u32::MAX);
    let monetary_fen = if distinct > 1 {
        // The repeat periods' values add up to everything but the first day's.
        (i128::from(total_fen) - i128::from(first_day_fen)) as f64 / (distinct - 1) as f64
    } else {
        0.0
    };
    Some(RfmSummary {
        frequency,
        recency_days: day_span(first_day, last_day),
        t_days: day_span(first_day, observation_end_day),
        monetary_fen,
        first_day,
        last_day,
        total_fen,
        orders,
    })
}

/// Number of distinct days among the purchases on or before `end`, by sorting their days.
fn distinct_days(purchases: &[Purchase], end: i32) -> u64 {
    let counted = purchases.iter().filter(|p| p.day <= end).map(|p| p.day);
    if purchases.len() <= STACK_DAYS {
        let mut buf = [0i32; STACK_DAYS];
        let mut n = 0;
        for day in counted {
            buf[n] = day;
            n += 1;
        }
        count_distinct_sorted(&mut buf[..n])
    } else {
        let mut days: Vec<i32> = counted.collect();
        count_distinct_sorted(&mut days)
    }
}

fn count_distinct_sorted(days: &mut [i32]) -> u64 {
    days.sort_unstable();
    let steps = days.windows(2).filter(|w| w[0] != w[1]).count();
    if days.is_empty() {
        0
    } else {
        steps as u64 + 1
    }
}

/// `to − from` in days, for `from <= to`.
fn day_span(from: i32, to: i32) -> u32 {
    u32::try_from(i64::from(to) - i64::from(from)).unwrap_or(0)
}

/// The shop-local day number of a UTC millisecond timestamp.
///
/// Days are counted from 1970-01-01 in `tz`; a timestamp outside chrono's range falls back
/// to its UTC day.
pub fn local_day(ts_ms: i64, tz: chrono_tz::Tz) -> i32 {
    tz.timestamp_millis_opt(ts_ms)
        .single()
        .and_then(|t| i32::try_from((t.date_naive() - NaiveDate::default()).num_days()).ok())
        .unwrap_or_else(|| i32::try_from(ts_ms.div_euclid(MS_PER_DAY)).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(day: i32, amount_fen: i64) -> Purchase {
        Purchase { day, amount_fen }
    }

    #[test]
    fn one_purchase_has_no_repeat_value() {
        let s = summarize(&[p(100, 12_345)], 130).unwrap();
        assert_eq!(
            s,
            RfmSummary {
                frequency: 0,
                recency_days: 0,
                t_days: 30,
                monetary_fen: 0.0,
                first_day: 100,
                last_day: 100,
                total_fen: 12_345,
                orders: 1,
            }
        );
    }

    #[test]
    fn two_purchases_on_one_day_are_one_period() {
        let s = summarize(&[p(100, 1_000), p(100, 2_050)], 100).unwrap();
        assert_eq!((s.frequency, s.recency_days, s.t_days), (0, 0, 0));
        assert_eq!(s.monetary_fen, 0.0);
        assert_eq!((s.orders, s.total_fen), (2, 3_050));
    }

    #[test]
    fn purchases_on_three_days_average_the_repeat_days() {
        // Day 10: 1.00 + 2.00 (first period, excluded); day 12: 3.00 + 4.00; day 20: 0.50.
        let purchases = [p(12, 300), p(20, 50), p(10, 100), p(12, 400), p(10, 200)];
        let s = summarize(&purchases, 30).unwrap();
        assert_eq!((s.frequency, s.recency_days, s.t_days), (2, 10, 20));
        assert_eq!(s.monetary_fen, 375.0);
        assert_eq!(
            (s.first_day, s.last_day, s.orders, s.total_fen),
            (10, 20, 5, 1_050)
        );
        // The same purchases in day order give the same summary (sorted fast path).
        let mut sorted = purchases;
        sorted.sort_by_key(|p| p.day);
        assert_eq!(summarize(&sorted, 30).unwrap(), s);
    }

    #[test]
    fn mean_keeps_fractions_of_a_fen() {
        let s = summarize(&[p(0, 1), p(1, 1), p(2, 1), p(3, 2)], 3).unwrap();
        assert_eq!(s.frequency, 3);
        assert!((s.monetary_fen - 4.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn purchases_after_the_observation_end_are_ignored() {
        let purchases = [p(5, 100), p(11, 999), p(10, 300), p(12, 7)];
        let s = summarize(&purchases, 10).unwrap();
        assert_eq!((s.frequency, s.recency_days, s.t_days), (1, 5, 5));
        assert_eq!(s.monetary_fen, 300.0);
        assert_eq!((s.last_day, s.orders, s.total_fen), (10, 2, 400));
        assert_eq!(summarize(&purchases, 4), None);
        assert_eq!(summarize(&[], 4), None);
    }

    #[test]
    fn many_unsorted_purchases_take_the_heap_path() {
        let purchases: Vec<Purchase> = (0..200).rev().map(|i| p(i / 2, 100)).collect();
        let s = summarize(&purchases, 1_000).unwrap();
        assert_eq!((s.frequency, s.recency_days, s.t_days), (99, 99, 1_000));
        assert_eq!(s.monetary_fen, 200.0);
        assert_eq!(s.orders, 200);
    }

    #[test]
    fn local_day_follows_the_shop_timezone() {
        let tz = chrono_tz::Asia::Shanghai;
        // 2024-03-01T16:00:00Z is 2024-03-02T00:00:00+08:00.
        let midnight = 1_709_308_800_000;
        assert_eq!(local_day(midnight, chrono_tz::UTC), 19_783);
        assert_eq!(local_day(midnight, tz), 19_784);
        assert_eq!(local_day(midnight - 1, tz), 19_783);
        assert_eq!(local_day(-1, chrono_tz::UTC), -1);
    }
}
