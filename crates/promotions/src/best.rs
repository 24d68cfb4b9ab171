//! The best combination of a user's coupons: the one with the lowest payable total,
//! found exactly by trying every combination the stacking rules allow (at most one
//! coupon per stacking group; an exclusive coupon alone).

use std::collections::BTreeMap;

use flywheel_core::ErrorCode;

use crate::engine::{price, PricingInput};
use crate::quote::{NotApplied, Quote};
use crate::{Error, Result};

/// The most combinations tried; more is refused (`too_many_coupons`).
pub const MAX_COMBINATIONS: usize = 20_000;

/// Every combination to try, as sorted indexes into `input.coupons`.
fn combinations(input: &PricingInput) -> Result<Vec<Vec<usize>>> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut exclusive = Vec::new();
    for (i, c) in input.coupons.iter().enumerate() {
        if c.exclusive {
            exclusive.push(i);
        } else {
            groups.entry(c.group()).or_default().push(i);
        }
    }
    let count = groups
        .values()
        .try_fold(1usize, |acc, g| acc.checked_mul(g.len() + 1));
    if count.is_none_or(|n| n + exclusive.len() > MAX_COMBINATIONS) {
        return Err(Error::invalid(
            ErrorCode::TooManyCoupons,
            format!("too many coupon combinations to try (at most {MAX_COMBINATIONS})"),
        ));
    }
    let mut out: Vec<Vec<usize>> = vec![Vec::new()];
    for members in groups.values() {
        let mut next = Vec::with_capacity(out.len() * (members.len() + 1));
        for combo in &out {
            next.push(combo.clone());
            for &m in members {
                let mut c = combo.clone();
                c.push(m);
                next.push(c);
            }
        }
        out = next;
    }
    out.extend(exclusive.into_iter().map(|i| vec![i]));
    for c in &mut out {
        c.sort_unstable();
    }
    Ok(out)
}

/// Prices `input` with the combination of its coupons that pays least (ties: fewer
/// coupons, then the earlier ones); the coupons left out are listed in `not_applied`
/// with their own reason, or `not_in_best_combination`.
pub fn best_combination(input: &PricingInput) -> Result<Quote> {
    let with = |combo: &[usize]| {
        let mut one = input.clone();
        one.coupons = combo.iter().map(|&i| input.coupons[i].clone()).collect();
        one
    };
    let mut best: Option<(Vec<usize>, Quote)> = None;
    for combo in combinations(input)? {
        let q = price(&with(&combo))?;
        if q.refused {
            continue;
        }
        let better = best
            .as_ref()
            .is_none_or(|(bc, bq)| (q.payable.0, combo.len(), &combo) < (bq.payable.0, bc.len(), bc));
        if better {
            best = Some((combo, q));
        }
    }
    let Some((combo, mut quote)) = best else {
        // Every combination is refused by the margin guard: answer the one without coupons.
        return price(&with(&[]));
    };
    for (i, c) in input.coupons.iter().enumerate() {
        if combo.contains(&i) || quote.not_applied.iter().any(|n| n.id == c.id) {
            continue;
        }
        let mut trial = combo.clone();
        trial.push(i);
        let q = price(&with(&trial))?;
        let own = q.not_applied.into_iter().find(|n| n.id == c.id);
        quote.not_applied.push(own.unwrap_or_else(|| NotApplied {
            id: c.id.clone(),
            kind: c.rule_kind(),
            name: c.name.clone(),
            reason: ErrorCode::NotInBestCombination,
            message: "another combination of coupons pays less".into(),
        }));
    }
    Ok(quote)
}
