//! Timing: one untimed warm-up, then timed runs summarised by median and minimum.

use std::time::Instant;

use anyhow::Result;

/// Median and minimum of the timed runs, in milliseconds.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Median of the runs (mean of the middle two for an even count).
    pub median: f64,
    /// Fastest run.
    pub min: f64,
    /// Every run, in order.
    pub runs: Vec<f64>,
}

/// Calls `f` once untimed, then `runs` times timed; returns the timing and the last result.
pub fn timed<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<(Timing, T)> {
    let mut out = f()?;
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        out = f()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    };
    Ok((
        Timing {
            median,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            runs: ms,
        },
        out,
    ))
}
