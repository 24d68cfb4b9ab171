//! Row-by-row reference evaluation: a plan evaluated directly on one profile's trait
//! values, with no index, buckets or planner. The property tests hold the index to it.

use crate::index::{compare, resolve_pred, EvalCtx};
use crate::plan::{Leaf, Plan};
use crate::traits::{Measure, TraitValue};

/// What the reference evaluator reads about one profile.
pub trait ProfileView {
    /// The value of a measure (event counters come as `Measure::Counter` resolved by key).
    fn value(&self, m: &Measure) -> TraitValue;
    /// The count of the event counter with this key.
    fn counter(&self, key: &str) -> i64;
    /// Whether the profile carries the tag.
    fn has_tag(&self, name: &str) -> bool;
    /// Whether the profile is in the segment.
    fn in_segment(&self, name: &str) -> bool;
}

/// Whether the profile matches `plan` at `ctx.now`.
pub fn matches(plan: &Plan, p: &dyn ProfileView, ctx: &EvalCtx<'_>) -> bool {
    match plan {
        Plan::And(xs) => xs.iter().all(|x| matches(x, p, ctx)),
        Plan::Or(xs) => xs.iter().any(|x| matches(x, p, ctx)),
        Plan::Not(x) => !matches(x, p, ctx),
        Plan::Leaf(l) => leaf(l, p, ctx),
    }
}

fn leaf(l: &Leaf, p: &dyn ProfileView, ctx: &EvalCtx<'_>) -> bool {
    match l {
        Leaf::Num { measure, pred } => {
            let (op, v) = resolve_pred(*pred, ctx);
            matches!(p.value(measure), TraitValue::Num(Some(x)) if compare(x, op, v))
        }
        Leaf::Event { spec, op, count } => compare(p.counter(&spec.key()), *op, *count),
        Leaf::Cat {
            measure,
            values,
            negated,
        } => match p.value(measure) {
            TraitValue::Cat(Some(v)) => values.contains(&v) != *negated,
            _ => false,
        },
        Leaf::IsSet { measure, negated } => {
            let set = match p.value(measure) {
                TraitValue::Num(v) => v.is_some(),
                TraitValue::Cat(v) => v.is_some(),
                TraitValue::Multi(v) => !v.is_empty(),
            };
            set != *negated
        }
        Leaf::Contains { measure, value } => {
            matches!(p.value(measure), TraitValue::Multi(v) if v.contains(value))
        }
        Leaf::Tag(n) => p.has_tag(n),
        Leaf::Segment(n) => p.in_segment(n),
    }
}
