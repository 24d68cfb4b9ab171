//! RFM scores and segment names.
//!
//! Scores are quantile bins over all buyers: for a metric with values sorted ascending
//! `s[0..n)`, the breakpoints are `b_k = s[⌊(n−1)·k/bins⌋]` for `k = 1..bins−1` and a
//! value's score is `1 + #{k : x > b_k}` — ties always share a score, and the same
//! definition is run by DuckDB and Polars in `bench/audience`. Recency is scored on
//! the last purchase time (more recent = higher), frequency on paid orders, monetary
//! on net spend.

/// Breakpoints of `values` (reordered in place) for `bins` bins.
///
/// Each order statistic is selected (not sorted for), largest first, each within the
/// prefix the previous selection left below it: linear time instead of a full sort.
pub fn breakpoints(values: &mut [i64], bins: u8) -> Vec<i64> {
    let n = values.len() as u64;
    if n == 0 {
        return Vec::new();
    }
    let ranks: Vec<usize> = (1..u64::from(bins.max(1)))
        .map(|k| ((n - 1) * k / u64::from(bins)) as usize)
        .collect();
    let mut out = vec![0; ranks.len()];
    let mut end = values.len();
    for (slot, &rank) in out.iter_mut().zip(&ranks).rev() {
        // values[..end] holds the `end` smallest values and rank < end.
        let (_, v, _) = values[..end].select_nth_unstable(rank);
        *slot = *v;
        end = rank + 1;
    }
    out
}

/// The score of `x` against `breakpoints`.
pub fn score(x: i64, breakpoints: &[i64]) -> u8 {
    1 + breakpoints.iter().filter(|b| x > **b).count() as u8
}

/// The usual RFM segment name of recency and frequency scores on a 1–5 scale
/// (the common R×F grid; R = 1, F = 1 is "Lost").
pub fn segment_name(r: u8, f: u8) -> &'static str {
    match (r, f) {
        (5, 4..=5) => "Champions",
        (3..=4, 4..=5) => "Loyal",
        (4..=5, 2..=3) => "Potential Loyalist",
        (5, 1) => "New Customers",
        (4, 1) => "Promising",
        (3, 3) => "Need Attention",
        (3, 1..=2) => "About To Sleep",
        (1..=2, 5) => "Cannot Lose Them",
        (1..=2, 3..=4) => "At Risk",
        (1, 1) => "Lost",
        _ => "Hibernating",
    }
}

/// Rescales a score on `bins` bins to 1–5 for naming.
pub fn to_five(score: u8, bins: u8) -> u8 {
    if bins == 5 || bins == 0 {
        return score;
    }
    ((u16::from(score) * 5).div_ceil(u16::from(bins))).clamp(1, 5) as u8
}

/// Scores of one buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RfmScore {
    /// Recency score.
    pub r: u8,
    /// Frequency score.
    pub f: u8,
    /// Monetary score.
    pub m: u8,
}

/// Scores every buyer: `last_ts`, `frequency`, `monetary` are parallel per buyer.
pub fn score_all(last_ts: &[i64], frequency: &[i64], monetary: &[i64], bins: u8) -> Vec<RfmScore> {
    let br = breakpoints(&mut last_ts.to_vec(), bins);
    let bf = breakpoints(&mut frequency.to_vec(), bins);
    let bm = breakpoints(&mut monetary.to_vec(), bins);
    last_ts
        .iter()
        .zip(frequency)
        .zip(monetary)
        .map(|((r, f), m)| RfmScore {
            r: score(*r, &br),
            f: score(*f, &bf),
            m: score(*m, &bm),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_share_scores_on_ties() {
        let v: Vec<i64> = (1..=10).collect();
        let b = breakpoints(&mut v.clone(), 5);
        assert_eq!(b, vec![2, 4, 6, 8]);
        assert_eq!(
            v.iter().map(|x| score(*x, &b)).collect::<Vec<_>>(),
            vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        );
        let same = breakpoints(&mut [7, 7, 7, 7], 5);
        assert_eq!(score(7, &same), 1);
    }

    #[test]
    fn selected_breakpoints_equal_those_of_the_sorted_values() {
        let mut x: u64 = 0x853c_49e6_748f_ea9b;
        for n in [1usize, 2, 3, 4, 5, 6, 7, 10, 11, 99, 1000, 4097] {
            for spread in [3u64, 1_000_000] {
                let v: Vec<i64> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % spread) as i64 - 1
                    })
                    .collect();
                let mut sorted = v.clone();
                sorted.sort_unstable();
                for bins in [0u8, 1, 2, 3, 5, 10] {
                    let want: Vec<i64> = (1..u64::from(bins.max(1)))
                        .map(|k| sorted[((n as u64 - 1) * k / u64::from(bins)) as usize])
                        .collect();
                    assert_eq!(breakpoints(&mut v.clone(), bins), want, "n {n} bins {bins}");
                }
            }
        }
    }

    #[test]
    fn grid_names() {
        assert_eq!(segment_name(5, 5), "Champions");
        assert_eq!(segment_name(1, 1), "Lost");
        assert_eq!(segment_name(2, 1), "Hibernating");
        assert_eq!(segment_name(1, 4), "At Risk");
        assert_eq!(segment_name(4, 5), "Loyal");
        assert_eq!(to_five(3, 3), 5);
    }
}
