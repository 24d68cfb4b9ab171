//! RFM over the engine's facts: live scores for every buyer (re-scored when orders
//! change, used by `rfm_r`/`rfm_f`/`rfm_m`/`rfm_segment` in expressions), and the
//! as-of report of `flywheel rfm` with the lifetimes-compatible summary.

use serde::Serialize;

use crate::engine::state::State;
use crate::facts::Facts;
use crate::rfm::score::{score_all, segment_name, to_five, RfmScore};
use crate::rfm::summary::{summarize, Purchase, RfmSummary};
use crate::traits::{Measure, TraitValue};
use crate::window::days;

/// One buyer's paid orders up to `as_of` as `(last order time, orders, net spend)`,
/// inside the configured RFM window (all time when 0 days).
fn rfm_inputs(state: &State, facts: &Facts, as_of: i64) -> Option<(i64, i64, i64)> {
    let w = state.config.rfm.window_days;
    let start = (w > 0).then(|| state.windowing.start(as_of, days(w)));
    let mut last = None;
    let (mut n, mut spend) = (0i64, 0i64);
    for o in facts.orders.iter().filter(|o| o.counts() && o.at <= as_of) {
        if start.is_some_and(|s| o.at <= s) {
            continue;
        }
        last = Some(o.at);
        n += 1;
        spend += o.net();
    }
    last.map(|l| (l, n, spend))
}

/// Scores every buyer at `now` and writes the RFM columns.
pub fn rescore(state: &mut State, now: i64) {
    let rows: Vec<u32> = state.index.alive().iter().collect();
    let mut buyers = Vec::new();
    let (mut r, mut f, mut m) = (Vec::new(), Vec::new(), Vec::new());
    for &row in &rows {
        if let Some((last, n, spend)) = rfm_inputs(state, &state.facts.get(row), now) {
            buyers.push(row);
            r.push(last);
            f.push(n);
            m.push(spend);
        }
    }
    let scores = score_all(&r, &f, &m, state.config.rfm.bins);
    for s in state.rfm.iter_mut() {
        *s = None;
    }
    for (row, s) in buyers.iter().zip(&scores) {
        state.rfm[*row as usize] = Some(*s);
    }
    let bins = state.config.rfm.bins;
    for row in rows {
        let s = state.rfm[row as usize];
        let num = |v: Option<u8>| TraitValue::Num(v.map(i64::from));
        state
            .index
            .set_value(&Measure::RfmR.key(), row, &num(s.map(|s| s.r)));
        state
            .index
            .set_value(&Measure::RfmF.key(), row, &num(s.map(|s| s.f)));
        state
            .index
            .set_value(&Measure::RfmM.key(), row, &num(s.map(|s| s.m)));
        let name = s.map(|s| segment_name(to_five(s.r, bins), to_five(s.f, bins)).to_owned());
        state
            .index
            .set_value(&Measure::RfmSegment.key(), row, &TraitValue::Cat(name));
    }
    state.rfm_dirty = false;
}

/// One row of `flywheel rfm`.
#[derive(Debug, Clone, Serialize)]
pub struct RfmRow {
    /// The profile.
    pub profile_id: String,
    /// Its user id, if any.
    pub user_id: Option<String>,
    /// lifetimes-compatible summary.
    pub summary: RfmSummary,
    /// Scores among the buyers of the report.
    pub score: RfmScore,
    /// Segment name.
    pub segment: &'static str,
}

/// The RFM report as of `as_of`: every buyer with a paid order placed at or before it,
/// summarised over shop-local days (lifetimes' `summary_data_from_transaction_data`)
/// and scored among those buyers; sorted by profile id.
pub fn report(state: &State, as_of: i64) -> Vec<RfmRow> {
    let end_day = state.windowing.local_day(as_of);
    let mut rows = Vec::new();
    let (mut r, mut f, mut m) = (Vec::new(), Vec::new(), Vec::new());
    for row in state.index.alive().iter() {
        let facts = &state.facts.get(row);
        let purchases: Vec<Purchase> = facts
            .orders
            .iter()
            .filter(|o| o.counts() && o.at <= as_of)
            .map(|o| Purchase {
                day: state.windowing.local_day(o.at),
                amount_fen: o.net(),
            })
            .collect();
        let Some(summary) = summarize(&purchases, end_day) else {
            continue;
        };
        let Some((last, n, spend)) = rfm_inputs(state, facts, as_of) else {
            continue;
        };
        r.push(last);
        f.push(n);
        m.push(spend);
        rows.push((row, summary));
    }
    let bins = state.config.rfm.bins;
    let scores = score_all(&r, &f, &m, bins);
    let mut out: Vec<RfmRow> = rows
        .into_iter()
        .zip(scores)
        .map(|((row, summary), score)| RfmRow {
            profile_id: state.ids.id(row).to_owned(),
            user_id: state.ids.user_id(row).map(str::to_owned),
            summary,
            score,
            segment: segment_name(to_five(score.r, bins), to_five(score.f, bins)),
        })
        .collect();
    out.sort_by(|a, b| a.profile_id.cmp(&b.profile_id));
    out
}
