//! The in-memory audience index: every profile as a dense row number, its computed
//! traits as [columns](crate::column), tags and saved segments as roaring bitmaps, and
//! the evaluator that answers a [`Plan`] with bitmap operations.
//!
//! Evaluation of an `and` starts from its cheapest exact operands (tags, segments,
//! text values: bitmap lookups, borrowed where stored), intersects them, then narrows
//! the rows found by each other condition, most selective first (estimated from bucket
//! sizes), computing each on those rows only (see [`NumColumn::retain_range`]). Counting
//! an `and` leaves its most selective numeric condition for last and counts it on the
//! rows of the others without building the result. The index is not thread-safe by
//! itself; the engine guards it.

mod saved;

use std::borrow::Cow;
use std::collections::HashMap;

use roaring::RoaringBitmap;

use crate::column::{CatColumn, MultiColumn, NumColumn};
use crate::dsl::ast::CmpOp;
use crate::plan::{Leaf, NumPred, Plan};
use crate::traits::{Measure, TraitValue};
use crate::window::Windowing;

/// The index.
#[derive(Debug, Default)]
pub struct Index {
    rows: u32,
    alive: RoaringBitmap,
    num: HashMap<String, NumColumn>,
    cat: HashMap<String, CatColumn>,
    multi: HashMap<String, MultiColumn>,
    tags: HashMap<String, RoaringBitmap>,
    segments: HashMap<String, RoaringBitmap>,
    /// Numeric columns a query read while they had no value buckets (built row by row):
    /// [`Index::bucket_asked`] builds theirs, so a column costs bucket memory only once
    /// a condition on it is asked.
    asked: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// Below this many rows a numeric column is read row by row (a fraction of a
/// millisecond); from it on, a column a query reads gets value buckets.
pub const BUCKET_FROM_ROWS: usize = 100_000;

/// What evaluation needs besides the index.
#[derive(Debug, Clone, Copy)]
pub struct EvalCtx<'a> {
    /// The instant conditions are evaluated at.
    pub now: i64,
    /// Window arithmetic.
    pub windowing: &'a Windowing,
}

/// The column name of a leaf's value.
pub fn column_of(leaf: &Leaf) -> Option<String> {
    match leaf {
        Leaf::Num { measure, .. }
        | Leaf::Cat { measure, .. }
        | Leaf::IsSet { measure, .. }
        | Leaf::Contains { measure, .. } => Some(measure.key()),
        Leaf::Event { spec, .. } => Some(spec.key()),
        Leaf::Tag(_) | Leaf::Segment(_) => None,
    }
}

/// The inclusive value range `lo..=hi` of `x op v`; `None` for `!=` (not one range).
/// `> i64::MAX` and `< i64::MIN` hold for no value: an empty range (`lo > hi`).
fn cmp_range(op: CmpOp, v: i64) -> Option<(i64, i64)> {
    const EMPTY: (i64, i64) = (i64::MAX, i64::MIN);
    Some(match op {
        CmpOp::Eq => (v, v),
        CmpOp::Gt => v.checked_add(1).map_or(EMPTY, |lo| (lo, i64::MAX)),
        CmpOp::Ge => (v, i64::MAX),
        CmpOp::Lt => v.checked_sub(1).map_or(EMPTY, |hi| (i64::MIN, hi)),
        CmpOp::Le => (i64::MIN, v),
        CmpOp::Ne => return None,
    })
}

/// The names whose bitmap holds `row`, sorted.
fn names_containing(bitmaps: &HashMap<String, RoaringBitmap>, row: u32) -> Vec<String> {
    let mut out: Vec<String> = bitmaps
        .iter()
        .filter(|(_, b)| b.contains(row))
        .map(|(n, _)| n.clone())
        .collect();
    out.sort();
    out
}

/// Whether `value op rhs` holds.
pub fn compare(value: i64, op: CmpOp, rhs: i64) -> bool {
    match op {
        CmpOp::Eq => value == rhs,
        CmpOp::Ne => value != rhs,
        CmpOp::Lt => value < rhs,
        CmpOp::Le => value <= rhs,
        CmpOp::Gt => value > rhs,
        CmpOp::Ge => value >= rhs,
    }
}

/// A numeric predicate as `(op, constant)` at `now`.
pub fn resolve_pred(pred: NumPred, ctx: &EvalCtx<'_>) -> (CmpOp, i64) {
    match pred {
        NumPred::Cmp(op, v) => (op, v),
        NumPred::Within(d) => (CmpOp::Gt, ctx.windowing.start(ctx.now, d)),
        NumPred::Before(d) => (CmpOp::Le, ctx.windowing.start(ctx.now, d)),
    }
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// Number of rows ever allocated (dead rows included).
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Live rows.
    pub fn alive(&self) -> &RoaringBitmap {
        &self.alive
    }

    /// Allocates `n` more live rows; returns the first.
    pub fn grow(&mut self, n: u32) -> u32 {
        let first = self.rows;
        self.rows += n;
        self.alive.insert_range(first..self.rows);
        first
    }

    /// Marks `row` dead (its profile merged away): it leaves every bitmap.
    pub fn kill(&mut self, row: u32) {
        self.alive.remove(row);
        for b in self.tags.values_mut().chain(self.segments.values_mut()) {
            b.remove(row);
        }
        for c in self.num.values_mut() {
            c.set(row, None);
        }
        for c in self.cat.values_mut() {
            c.set(row, None);
        }
        for c in self.multi.values_mut() {
            c.set(row, &[]);
        }
    }

    /// Notes that a query read numeric column `key` (see [`Index::bucket_asked`]).
    fn note_read(&self, key: &str, col: &NumColumn) {
        if !col.is_bucketed() && col.len() >= BUCKET_FROM_ROWS {
            if let Ok(mut asked) = self.asked.lock() {
                if !asked.contains(key) {
                    asked.insert(key.to_owned());
                }
            }
        }
    }

    /// Builds the value buckets of one numeric column a query read (same values, same
    /// answers; conditions on it then cost bitmap operations instead of a read of every
    /// row); one a call, so the writer is never held long. Returns whether it built one.
    pub fn bucket_asked(&mut self) -> bool {
        loop {
            let next = match self.asked.get_mut() {
                Ok(a) => a.pop_first(),
                Err(p) => p.into_inner().pop_first(),
            };
            let Some(key) = next else { return false };
            if let Some(col) = self.num.get_mut(&key) {
                if !col.is_bucketed() {
                    *col = col.bucketed();
                    return true;
                }
            }
        }
    }

    /// Whether a query read a numeric column that has no value buckets yet.
    pub fn has_asked(&self) -> bool {
        self.asked.lock().map(|a| !a.is_empty()).unwrap_or(false)
    }

    /// Gives back the room columns keep for growth (after a bulk build).
    pub fn shrink_to_fit(&mut self) {
        for c in self.num.values_mut() {
            c.shrink_to_fit();
        }
        for c in self.cat.values_mut() {
            c.shrink_to_fit();
        }
    }

    /// Whether a column exists.
    pub fn has_column(&self, key: &str) -> bool {
        self.num.contains_key(key) || self.cat.contains_key(key) || self.multi.contains_key(key)
    }

    /// Installs a whole numeric column (bulk build).
    pub fn put_num(&mut self, key: String, col: NumColumn) {
        self.num.insert(key, col);
    }

    /// Installs a whole text column (bulk build).
    pub fn put_cat(&mut self, key: String, col: CatColumn) {
        self.cat.insert(key, col);
    }

    /// Installs a whole multi-valued column (bulk build).
    pub fn put_multi(&mut self, key: String, col: MultiColumn) {
        self.multi.insert(key, col);
    }

    /// Sets one value of the column of `measure` (creating the column).
    pub fn set_value(&mut self, key: &str, row: u32, value: &TraitValue) {
        // The key is copied only when the column is new (this runs for every column of
        // every row refreshed).
        match value {
            TraitValue::Num(v) => match self.num.get_mut(key) {
                Some(c) => c.set(row, *v),
                None => self.num.entry(key.to_owned()).or_default().set(row, *v),
            },
            TraitValue::Cat(v) => match self.cat.get_mut(key) {
                Some(c) => c.set(row, v.as_deref()),
                None => self.cat.entry(key.to_owned()).or_default().set(row, v.as_deref()),
            },
            TraitValue::Multi(v) => match self.multi.get_mut(key) {
                Some(c) => c.set(row, v),
                None => self.multi.entry(key.to_owned()).or_default().set(row, v),
            },
        }
    }

    /// Drops a column no longer used.
    pub fn drop_column(&mut self, key: &str) {
        self.num.remove(key);
        self.cat.remove(key);
        self.multi.remove(key);
    }

    /// The numeric column `key`.
    pub fn num_column(&self, key: &str) -> Option<&NumColumn> {
        self.num.get(key)
    }

    /// The text column `key`.
    pub fn cat_column(&self, key: &str) -> Option<&CatColumn> {
        self.cat.get(key)
    }

    /// The bitmap of a tag (empty when unknown).
    pub fn tag(&self, name: &str) -> Option<&RoaringBitmap> {
        self.tags.get(name)
    }

    /// Replaces the members of a tag.
    pub fn put_tag(&mut self, name: &str, members: RoaringBitmap) {
        self.tags.insert(name.to_owned(), members);
    }

    /// The tags of a tag map, mutable (manual tagging).
    pub fn tag_mut(&mut self, name: &str) -> &mut RoaringBitmap {
        self.tags.entry(name.to_owned()).or_default()
    }

    /// Forgets a tag.
    pub fn remove_tag(&mut self, name: &str) {
        self.tags.remove(name);
    }

    /// The members of a saved segment.
    pub fn segment(&self, name: &str) -> Option<&RoaringBitmap> {
        self.segments.get(name)
    }

    /// Replaces the members of a saved segment.
    pub fn put_segment(&mut self, name: &str, members: RoaringBitmap) {
        self.segments.insert(name.to_owned(), members);
    }

    /// Forgets a saved segment.
    pub fn remove_segment(&mut self, name: &str) {
        self.segments.remove(name);
    }

    /// Names of the tags `row` carries, sorted.
    pub fn tags_of(&self, row: u32) -> Vec<String> {
        names_containing(&self.tags, row)
    }

    /// Names of the saved segments `row` is in, sorted.
    pub fn segments_of(&self, row: u32) -> Vec<String> {
        names_containing(&self.segments, row)
    }

    /// Approximate bytes held by columns and bitmaps.
    pub fn heap_bytes(&self) -> u64 {
        self.num.values().map(NumColumn::heap_bytes).sum::<u64>()
            + self.cat.values().map(CatColumn::heap_bytes).sum::<u64>()
            + self
                .tags
                .values()
                .chain(self.segments.values())
                .map(|b| b.serialized_size() as u64)
                .sum::<u64>()
    }

    /// The rows matching `plan`.
    pub fn eval(&self, plan: &Plan, ctx: &EvalCtx<'_>) -> RoaringBitmap {
        match plan {
            Plan::Leaf(l) => self.leaf(l, ctx),
            Plan::Not(x) => &self.alive - &self.eval(x, ctx),
            Plan::Or(xs) => {
                let mut acc = RoaringBitmap::new();
                for x in xs {
                    acc |= self.eval(x, ctx);
                }
                acc
            }
            Plan::And(xs) => self.and(&xs.iter().collect::<Vec<_>>(), ctx),
        }
    }

    /// How many rows match `plan`. The most selective numeric condition of a top-level
    /// `and` is counted on the rows of the others rather than built as a bitmap.
    pub fn count(&self, plan: &Plan, ctx: &EvalCtx<'_>) -> u64 {
        let Plan::And(xs) = plan else {
            return self.eval(plan, ctx).len();
        };
        let last = xs
            .iter()
            .enumerate()
            .filter(|(_, x)| matches!(x, Plan::Leaf(Leaf::Num { .. } | Leaf::Event { .. })))
            .min_by_key(|(_, x)| self.estimate(x, ctx));
        match last {
            Some((i, Plan::Leaf(leaf))) if xs.len() > 1 => {
                let others: Vec<&Plan> = xs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, x)| x)
                    .collect();
                let rows = self.and(&others, ctx);
                self.count_leaf(leaf, &rows, ctx)
            }
            _ => self.eval(plan, ctx).len(),
        }
    }

    /// `rows.intersection_len(&self.leaf(leaf))` for numeric leaves, without building it.
    fn count_leaf(&self, leaf: &Leaf, rows: &RoaringBitmap, ctx: &EvalCtx<'_>) -> u64 {
        let (key, op, v, null_as_zero) = match leaf {
            Leaf::Num { measure, pred } => {
                let (op, v) = resolve_pred(*pred, ctx);
                (measure.key(), op, v, false)
            }
            Leaf::Event { spec, op, count } => (spec.key(), *op, *count, true),
            other => return self.restrict_leaf(other, rows.clone(), ctx).len(),
        };
        let mut live = Cow::Borrowed(rows);
        if !self.all_alive(rows) {
            *live.to_mut() &= &self.alive;
        }
        let zero_matches = null_as_zero && compare(0, op, v);
        let Some(col) = self.num.get(&key) else {
            return if zero_matches { live.len() } else { 0 };
        };
        self.note_read(&key, col);
        let with_value = live.intersection_len(col.nonnull());
        let hits = match cmp_range(op, v) {
            Some((lo, hi)) => col.count_range(&live, lo, hi),
            None => with_value - col.count_range(&live, v, v),
        };
        hits + if zero_matches { live.len() - with_value } else { 0 }
    }

    /// The intersection of `xs`: exact bitmap lookups first (borrowed where they are
    /// stored), smallest first; then the other conditions, most selective first, each
    /// narrowing the rows found so far.
    fn and(&self, xs: &[&Plan], ctx: &EvalCtx<'_>) -> RoaringBitmap {
        let empty = RoaringBitmap::new();
        let mut cheap: Vec<Cow<'_, RoaringBitmap>> = Vec::new();
        let mut rest: Vec<(u64, &Plan)> = Vec::new();
        for x in xs.iter().copied() {
            match x {
                Plan::Leaf(Leaf::Tag(n)) => cheap.push(Cow::Borrowed(self.tags.get(n).unwrap_or(&empty))),
                Plan::Leaf(Leaf::Segment(n)) => {
                    cheap.push(Cow::Borrowed(self.segments.get(n).unwrap_or(&empty)))
                }
                Plan::Leaf(Leaf::Cat {
                    measure,
                    values,
                    negated: false,
                }) => cheap.push(match (self.cat.get(&measure.key()), values.as_slice()) {
                    (None, _) => Cow::Borrowed(&empty),
                    (Some(c), [v]) => Cow::Borrowed(c.rows_of(v).unwrap_or(&empty)),
                    (Some(c), vs) => Cow::Owned(c.any_of(vs)),
                }),
                Plan::Leaf(l @ Leaf::Contains { .. }) => cheap.push(Cow::Owned(self.leaf(l, ctx))),
                other => rest.push((self.estimate(other, ctx), other)),
            }
        }
        // The smallest owned bitmap starts (no copy) unless a borrowed one is much smaller.
        cheap.sort_by_key(|b| b.len());
        let start = cheap
            .iter()
            .position(|b| matches!(b, Cow::Owned(_)))
            .filter(|i| cheap[*i].len() <= cheap[0].len().saturating_mul(4))
            .unwrap_or(0);
        let mut acc = (!cheap.is_empty()).then(|| cheap.swap_remove(start).into_owned());
        cheap.sort_by_key(|b| b.len());
        for b in cheap {
            if let Some(a) = acc.as_mut() {
                *a &= b.as_ref();
            }
            if acc.as_ref().is_some_and(RoaringBitmap::is_empty) {
                return RoaringBitmap::new();
            }
        }
        rest.sort_by_key(|(estimate, _)| *estimate);
        for (_, x) in rest {
            acc = Some(match acc {
                Some(a) => self.restrict(x, a, ctx),
                None => self.eval(x, ctx),
            });
            if acc.as_ref().is_some_and(RoaringBitmap::is_empty) {
                return RoaringBitmap::new();
            }
        }
        acc.unwrap_or_else(|| self.alive.clone())
    }

    /// Whether every row of `rows` is alive (so intersecting with the live rows is a no-op).
    fn all_alive(&self, rows: &RoaringBitmap) -> bool {
        self.alive.len() == u64::from(self.rows) && rows.max().is_none_or(|m| m < self.rows)
    }

    /// Intersects `rows` with the live rows (nothing to do when every row is alive).
    fn keep_alive(&self, rows: &mut RoaringBitmap) {
        if !self.all_alive(rows) {
            *rows &= &self.alive;
        }
    }

    /// `rows & self.eval(plan)`, computed from `rows`: cheap when `rows` is small.
    fn restrict(&self, plan: &Plan, mut rows: RoaringBitmap, ctx: &EvalCtx<'_>) -> RoaringBitmap {
        match plan {
            Plan::And(xs) if xs.is_empty() => {
                self.keep_alive(&mut rows);
                rows
            }
            Plan::And(xs) => {
                let mut xs: Vec<(u64, &Plan)> = xs.iter().map(|x| (self.estimate(x, ctx), x)).collect();
                xs.sort_by_key(|(estimate, _)| *estimate);
                for (_, x) in xs {
                    if rows.is_empty() {
                        break;
                    }
                    rows = self.restrict(x, rows, ctx);
                }
                rows
            }
            Plan::Or(xs) => {
                let mut acc = RoaringBitmap::new();
                for x in xs {
                    acc |= self.restrict(x, rows.clone(), ctx);
                }
                acc
            }
            Plan::Not(x) => {
                self.keep_alive(&mut rows);
                let out = match x.as_ref() {
                    Plan::Leaf(Leaf::Tag(n)) => self.tags.get(n),
                    Plan::Leaf(Leaf::Segment(n)) => self.segments.get(n),
                    _ => None,
                };
                match out {
                    Some(b) => rows -= b,
                    None => {
                        let inside = self.restrict(x, rows.clone(), ctx);
                        rows -= inside;
                    }
                }
                rows
            }
            Plan::Leaf(l) => self.restrict_leaf(l, rows, ctx),
        }
    }

    fn restrict_leaf(&self, l: &Leaf, mut rows: RoaringBitmap, ctx: &EvalCtx<'_>) -> RoaringBitmap {
        match l {
            Leaf::Num { measure, pred } => {
                let (op, v) = resolve_pred(*pred, ctx);
                self.restrict_num(&measure.key(), op, v, false, rows)
            }
            Leaf::Event { spec, op, count } => self.restrict_num(&spec.key(), *op, *count, true, rows),
            Leaf::Cat {
                measure,
                values,
                negated: false,
            } => match self.cat.get(&measure.key()) {
                None => RoaringBitmap::new(),
                Some(c) => c.restrict_any_of(&rows, values),
            },
            Leaf::Tag(n) => match self.tags.get(n) {
                Some(b) => rows & b,
                None => RoaringBitmap::new(),
            },
            Leaf::Segment(n) => match self.segments.get(n) {
                Some(b) => rows & b,
                None => RoaringBitmap::new(),
            },
            other => {
                rows &= self.leaf(other, ctx);
                rows
            }
        }
    }

    /// `rows & self.num_leaf(key, op, v, null_as_zero)`.
    fn restrict_num(
        &self,
        key: &str,
        op: CmpOp,
        v: i64,
        null_as_zero: bool,
        mut rows: RoaringBitmap,
    ) -> RoaringBitmap {
        self.keep_alive(&mut rows);
        let zero_matches = null_as_zero && compare(0, op, v);
        let Some(col) = self.num.get(key) else {
            return if zero_matches { rows } else { RoaringBitmap::new() };
        };
        self.note_read(key, col);
        let nulls = zero_matches.then(|| &rows - col.nonnull());
        let mut hits = match cmp_range(op, v) {
            Some((lo, hi)) => {
                col.retain_range(&mut rows, lo, hi);
                rows
            }
            None => {
                let equal = col.restrict_range(&rows, v, v);
                rows &= col.nonnull();
                rows -= equal;
                rows
            }
        };
        if let Some(nulls) = nulls {
            hits |= nulls;
        }
        hits
    }

    /// About how many rows match `plan` (for ordering the operands of an `and`; exact
    /// for bitmaps, from bucket sizes for numeric ranges, the row count when unknown).
    fn estimate(&self, plan: &Plan, ctx: &EvalCtx<'_>) -> u64 {
        let all = self.alive.len();
        match plan {
            Plan::And(xs) => xs.iter().map(|x| self.estimate(x, ctx)).min().unwrap_or(all),
            Plan::Or(xs) => xs.iter().map(|x| self.estimate(x, ctx)).sum::<u64>().min(all),
            Plan::Not(x) => all.saturating_sub(self.estimate(x, ctx)),
            Plan::Leaf(l) => match l {
                Leaf::Num { measure, pred } => {
                    let (op, v) = resolve_pred(*pred, ctx);
                    self.num
                        .get(&measure.key())
                        .map_or(0, |c| match cmp_range(op, v) {
                            Some((lo, hi)) => c.estimate_range(lo, hi),
                            None => c.nonnull().len().saturating_sub(c.estimate_range(v, v)),
                        })
                }
                Leaf::Cat {
                    measure,
                    values,
                    negated: false,
                } => self.cat.get(&measure.key()).map_or(0, |c| c.count_any_of(values)),
                Leaf::Tag(n) => self.tags.get(n).map_or(0, RoaringBitmap::len),
                Leaf::Segment(n) => self.segments.get(n).map_or(0, RoaringBitmap::len),
                _ => all,
            },
        }
    }

    fn num_leaf(&self, key: &str, op: CmpOp, v: i64, null_as_zero: bool) -> RoaringBitmap {
        let Some(col) = self.num.get(key) else {
            // No column yet: every value is null (or zero for counters).
            return if null_as_zero && compare(0, op, v) {
                self.alive.clone()
            } else {
                RoaringBitmap::new()
            };
        };
        self.note_read(key, col);
        let mut hits = match cmp_range(op, v) {
            Some((lo, hi)) => col.range(lo, hi),
            None => col.nonnull() - &col.range(v, v),
        };
        if null_as_zero && compare(0, op, v) {
            hits |= &self.alive - col.nonnull();
        }
        hits & &self.alive
    }

    fn leaf(&self, l: &Leaf, ctx: &EvalCtx<'_>) -> RoaringBitmap {
        match l {
            Leaf::Num { measure, pred } => {
                let (op, v) = resolve_pred(*pred, ctx);
                self.num_leaf(&measure.key(), op, v, false)
            }
            Leaf::Event { spec, op, count } => self.num_leaf(&spec.key(), *op, *count, true),
            Leaf::Cat {
                measure,
                values,
                negated,
            } => match self.cat.get(&measure.key()) {
                None => RoaringBitmap::new(),
                Some(c) if *negated => c.nonnull() - c.any_of(values),
                Some(c) => c.any_of(values),
            },
            Leaf::IsSet { measure, negated } => {
                let key = measure.key();
                let set = if let Some(c) = self.num.get(&key) {
                    c.nonnull().clone()
                } else if let Some(c) = self.cat.get(&key) {
                    c.nonnull()
                } else if let Some(c) = self.multi.get(&key) {
                    c.nonempty().clone()
                } else {
                    RoaringBitmap::new()
                };
                if *negated {
                    &self.alive - set
                } else {
                    set & &self.alive
                }
            }
            Leaf::Contains { measure, value } => self
                .multi
                .get(&measure.key())
                .map(|c| c.containing(value))
                .unwrap_or_default(),
            Leaf::Tag(n) => self.tags.get(n).map(|b| b & &self.alive).unwrap_or_default(),
            Leaf::Segment(n) => self.segments.get(n).map(|b| b & &self.alive).unwrap_or_default(),
        }
    }

    /// Whether one row matches `plan`, reading its column values.
    pub fn row_matches(&self, plan: &Plan, row: u32, ctx: &EvalCtx<'_>) -> bool {
        match plan {
            Plan::And(xs) => xs.iter().all(|x| self.row_matches(x, row, ctx)),
            Plan::Or(xs) => xs.iter().any(|x| self.row_matches(x, row, ctx)),
            Plan::Not(x) => self.alive.contains(row) && !self.row_matches(x, row, ctx),
            Plan::Leaf(l) => self.alive.contains(row) && self.row_leaf(l, row, ctx),
        }
    }

    fn row_leaf(&self, l: &Leaf, row: u32, ctx: &EvalCtx<'_>) -> bool {
        match l {
            Leaf::Num { measure, pred } => {
                let (op, v) = resolve_pred(*pred, ctx);
                self.num
                    .get(&measure.key())
                    .and_then(|c| c.get(row))
                    .is_some_and(|x| compare(x, op, v))
            }
            Leaf::Event { spec, op, count } => {
                let x = self.num.get(&spec.key()).and_then(|c| c.get(row)).unwrap_or(0);
                compare(x, *op, *count)
            }
            Leaf::Cat {
                measure,
                values,
                negated,
            } => match self.cat.get(&measure.key()).and_then(|c| c.get(row)) {
                None => false,
                Some(v) => values.iter().any(|w| w == v) != *negated,
            },
            Leaf::IsSet { measure, negated } => {
                let key = measure.key();
                let set = self.num.get(&key).is_some_and(|c| c.get(row).is_some())
                    || self.cat.get(&key).is_some_and(|c| c.get(row).is_some())
                    || self.multi.get(&key).is_some_and(|c| c.nonempty().contains(row));
                set != *negated
            }
            Leaf::Contains { measure, value } => self
                .multi
                .get(&measure.key())
                .is_some_and(|c| c.contains(row, value)),
            Leaf::Tag(n) => self.tags.get(n).is_some_and(|b| b.contains(row)),
            Leaf::Segment(n) => self.segments.get(n).is_some_and(|b| b.contains(row)),
        }
    }
}

/// Measures whose columns every index row carries (the built-in catalogue without windows).
pub fn base_measures() -> Vec<Measure> {
    use crate::facts::LineField;
    use crate::window::days;
    let mut out = vec![
        Measure::FirstOrder,
        Measure::LastOrder,
        Measure::LastActive,
        Measure::LastSignIn,
        Measure::FirstSeen,
        Measure::RegisteredAt,
        Measure::DaysSinceRegistration,
        Measure::DaysSinceLastOrder,
        Measure::Age,
        Measure::Gender,
        Measure::AgeBand,
        Measure::Region,
        Measure::City,
        Measure::Tier,
        Measure::Lifecycle,
        Measure::Bought(LineField::Category, None),
        Measure::Bought(LineField::Brand, None),
    ];
    for w in [
        None,
        Some(days(7)),
        Some(days(30)),
        Some(days(90)),
        Some(days(365)),
    ] {
        out.extend([
            Measure::Spend(w),
            Measure::Orders(w),
            Measure::Aov(w),
            Measure::PromoShare(w),
        ]);
    }
    out.push(Measure::UnboughtCartItems(days(30)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{check, Names};
    use crate::window::days;

    struct Known;

    impl Names for Known {
        fn has_tag(&self, name: &str) -> bool {
            name == "vip"
        }
        fn has_segment(&self, _name: &str) -> bool {
            false
        }
    }

    #[test]
    fn counts_and_bitmaps_equal_the_row_by_row_answer_on_a_large_index_with_dead_rows() {
        const NOW: i64 = 1_735_660_800_000;
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let n = 300_000u32;
        let mut index = Index::new();
        index.grow(n);
        let spend = (0..n).map(|_| match next(10) {
            0..=5 => Some(0),
            6 => None,
            _ => Some(next(500_000) as i64),
        });
        index.put_num(
            Measure::Spend(Some(days(30))).key(),
            NumColumn::build(spend.collect::<Vec<_>>()),
        );
        let active = (0..n).map(|_| Some(NOW - next(200 * 86_400_000) as i64));
        index.put_num(
            Measure::LastActive.key(),
            NumColumn::build(active.collect::<Vec<_>>()),
        );
        let regions = ["", "上海", "北京", "廣東", "浙江"].map(str::to_owned).to_vec();
        let codes = (0..n).map(|_| next(5) as u32).collect();
        index.put_cat(Measure::Region.key(), CatColumn::from_codes(regions, codes));
        let genders = ["", "男", "女"].map(str::to_owned).to_vec();
        let codes = (0..n).map(|_| next(3) as u32).collect();
        index.put_cat(Measure::Gender.key(), CatColumn::from_codes(genders, codes));
        index.put_tag("vip", (0..n).filter(|_| next(4) == 0).collect());
        for row in (0..n).step_by(101) {
            index.kill(row);
        }
        index.tag_mut("vip").insert(7 * 101); // a dead row left in a tag
        let windowing = Windowing::default();
        let ctx = EvalCtx {
            now: NOW,
            windowing: &windowing,
        };
        for text in [
            r#"spend(30d) > 1000 元 and last_active within 30d and region in ["上海", "北京", "廣東"] and gender = "女" and not tag("vip")"#,
            r#"spend(30d) >= 0 元 and last_active within 90d"#,
            r#"spend(30d) != 0 元 and tag("vip")"#,
            r#"spend(30d) < 2000 元 and region = "浙江" and not (last_active within 10d)"#,
            r#"tag("vip") and gender = "男""#,
            r#"last_active before 150d and (region = "上海" or spend(30d) > 4000 元)"#,
            r#"spend(30d) > 4999 元 and spend(30d) < 1 元"#,
        ] {
            let expr = crate::dsl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let plan = check(&expr, &Known, windowing.tz).unwrap_or_else(|e| panic!("{text}: {e}"));
            let want: Vec<u32> = (0..n + 10)
                .filter(|r| index.row_matches(&plan, *r, &ctx))
                .collect();
            let got: Vec<u32> = index.eval(&plan, &ctx).iter().collect();
            assert_eq!(got, want, "{text}");
            assert_eq!(index.count(&plan, &ctx), want.len() as u64, "{text}");
        }
    }

    #[test]
    fn comparisons_past_the_ends_of_i64_match_nothing_and_lone_tags_skip_dead_rows() {
        let mut index = Index::new();
        index.grow(4);
        index.tag_mut("vip").extend([1, 2]);
        index.kill(2);
        let windowing = Windowing::default();
        let ctx = EvalCtx {
            now: 0,
            windowing: &windowing,
        };
        let num = |op, v| {
            Plan::Leaf(Leaf::Num {
                measure: Measure::RawNumber("x".into()),
                pred: NumPred::Cmp(op, v),
            })
        };
        // i64::MIN is the columns' null; every measure keeps within ±9e18 (traits::to_ppm).
        let values = [Some(i64::MIN + 1), Some(0), Some(i64::MAX), None];
        index.put_num(Measure::RawNumber("x".into()).key(), NumColumn::build(values));
        for (op, v, want) in [
            (CmpOp::Gt, i64::MAX, 0),
            (CmpOp::Lt, i64::MIN, 0),
            (CmpOp::Ge, i64::MAX, 0), // the only such row is dead
            (CmpOp::Le, i64::MIN, 0),
            (CmpOp::Le, i64::MIN + 1, 1),
            (CmpOp::Ne, 0, 1),
        ] {
            let plan = num(op, v);
            assert_eq!(index.eval(&plan, &ctx).len(), want, "{op:?} {v}");
            assert_eq!(index.count(&plan, &ctx), want, "{op:?} {v}");
        }
        let tag = Plan::Leaf(Leaf::Tag("vip".into()));
        assert_eq!(index.eval(&tag, &ctx).iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(index.count(&tag, &ctx), 1);
    }
}
