//! Index columns over dense profile numbers (rows): numeric values with value-range
//! bucket bitmaps, dictionary-encoded text with one bitmap per value, and multi-valued
//! text as one bitmap per value.
//!
//! A numeric column keeps, besides its values: 255 quantile buckets as bitmaps, the
//! cumulative bitmaps of every sixteenth bucket boundary ("rows below group `g`"), and a
//! fine bucket code per row (65,280 quantiles, two bytes a row). A range over the whole
//! column unions the bitmaps of buckets wholly inside the range, or subtracts from the
//! non-null rows when the outside is smaller, and checks only the rows of the (at most
//! two) edge buckets. A range over given rows ([`NumColumn::retain_range`],
//! [`NumColumn::count_range`]) costs two operations with the cumulative bitmaps plus the
//! buckets of the two end groups, and reads values only for rows in the fine bucket of
//! an end of the range — so a condition costs bitmap operations, not a scan of rows.

use std::collections::HashMap;

use roaring::{MultiOps, RoaringBitmap};

mod saved;
mod values;

use values::{Values, NULL};

/// Number of value buckets of a numeric column.
const BUCKETS: usize = 255;

/// Checking one row by its code costs about this many elements of a bitmap operation
/// (iterating the row, reading its code, building the result).
const ROW_CHECK: u64 = 15;

/// An element of an operation between two sparse (array) bitmaps costs about this many
/// elements of a dense one.
const SPARSE_OP: u64 = 6;

/// A numeric column; `None` is null.
#[derive(Debug, Clone, Default)]
pub struct NumColumn {
    /// One value per row, in the narrowest width that holds them.
    values: Values,
    /// The fine bucket of each row's value ([`NULL_CODE`] for null): a row-by-row check
    /// reads two bytes a row, and the value only in the (small) fine bucket holding an
    /// end of the range. Empty while the column has a single fine bucket (built row by
    /// row, not yet bucketed): then the values are read instead.
    codes: Vec<u16>,
    /// Lower bounds of the fine buckets, ascending (every bucket bound is one of them,
    /// so a fine bucket lies inside one bucket).
    fine: Vec<i64>,
    /// Lower bounds of the buckets, ascending; bucket `b` holds `bounds[b] <= v < bounds[b + 1]`.
    bounds: Vec<i64>,
    buckets: Vec<RoaringBitmap>,
    /// Number of rows of each bucket.
    lens: Vec<u64>,
    /// `below[g − 1]` = rows whose bucket is below `g · GROUP`, for `g` in `1..groups`:
    /// any run of whole groups of buckets is two bitmap operations away.
    below: Vec<RoaringBitmap>,
    nonnull: RoaringBitmap,
}

/// Grows `v` to `n` elements of `fill`, keeping about an eighth spare rather than
/// doubling: a column of millions of rows grows a row at a time.
fn grow_exact<T: Copy>(v: &mut Vec<T>, n: usize, fill: T) {
    if n > v.capacity() {
        v.reserve_exact((n - v.len()).max(v.len() / 8).max(1024));
    }
    v.resize(n, fill);
}

/// Number of fine buckets of a numeric column (a multiple of [`BUCKETS`]).
const FINE: usize = BUCKETS * 256;

/// The fine bucket code of a null value (fine bucket numbers stay below `FINE + 1`).
const NULL_CODE: u16 = u16::MAX;

/// Buckets per group of the cumulative bitmaps.
const GROUP: usize = 16;

/// Bucket classes against a range: wholly outside, wholly inside, straddling an end.
const OUT: u8 = 0;
const IN: u8 = 1;
const EDGE: u8 = 2;

/// Bucket bounds from a sample of `values`: `parts` quantiles, deduplicated, plus the
/// maximum as a bound of its own.
fn bounds_of(sample: &[i64], parts: usize) -> Vec<i64> {
    let mut bounds = vec![NULL + 1];
    if sample.is_empty() {
        return bounds;
    }
    for k in 1..parts {
        let v = sample[(sample.len() - 1) * k / parts];
        if v > *bounds.last().unwrap_or(&NULL) {
            bounds.push(v);
        }
    }
    // Values equal to the top bound start their own bucket, so a very common value
    // (0 spend) sits alone and a range that excludes it never has to scan it.
    if let Some(&max) = sample.last() {
        if max > *bounds.last().unwrap_or(&NULL) {
            bounds.push(max);
        }
    }
    bounds
}

/// The sorted non-null values of about 65,536 rows.
fn sample_of(values: &[i64]) -> Vec<i64> {
    let step = (values.len() / 65_536).max(1);
    let mut sample: Vec<i64> = values
        .iter()
        .step_by(step)
        .copied()
        .filter(|v| *v != NULL)
        .collect();
    sample.sort_unstable();
    sample
}

impl NumColumn {
    /// Builds a column from one value per row (`None` = null).
    pub fn build(values: impl IntoIterator<Item = Option<i64>>) -> NumColumn {
        let values: Vec<i64> = values.into_iter().map(|v| v.unwrap_or(NULL)).collect();
        let sample = sample_of(&values);
        let bounds = bounds_of(&sample, BUCKETS);
        let fine = bounds_of(&sample, FINE);
        drop(sample);
        // The bucket of each fine bucket.
        let bucket_of_fine: Vec<usize> = fine
            .iter()
            .map(|f| bounds.partition_point(|x| x <= f).saturating_sub(1))
            .collect();
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); bounds.len()];
        let mut nonnull = Vec::with_capacity(values.len());
        let coded = fine.len() > 1;
        let mut codes = Vec::with_capacity(if coded { values.len() } else { 0 });
        for (row, &v) in values.iter().enumerate() {
            if v != NULL {
                let f = fine.partition_point(|x| *x <= v).saturating_sub(1);
                rows[bucket_of_fine[f]].push(row as u32);
                nonnull.push(row as u32);
                if coded {
                    codes.push(f as u16);
                }
            } else if coded {
                codes.push(NULL_CODE);
            }
        }
        let lens = rows.iter().map(|r| r.len() as u64).collect();
        let buckets: Vec<RoaringBitmap> = rows
            .into_iter()
            .map(|r| RoaringBitmap::from_sorted_iter(r).unwrap_or_default())
            .collect();
        let mut below = Vec::new();
        let mut acc = RoaringBitmap::new();
        for g in 1..buckets.len().div_ceil(GROUP) {
            for b in &buckets[(g - 1) * GROUP..g * GROUP] {
                acc |= b;
            }
            below.push(acc.clone());
        }
        NumColumn {
            values: Values::from_vec(&values),
            codes,
            fine,
            bounds,
            buckets,
            lens,
            below,
            nonnull: RoaringBitmap::from_sorted_iter(nonnull).unwrap_or_default(),
        }
    }

    /// Rows whose bucket is below `g · GROUP` (`None`: no row).
    fn below(&self, g: usize) -> Option<&RoaringBitmap> {
        match g {
            0 => None,
            g if g >= self.bounds.len().div_ceil(GROUP) => Some(&self.nonnull),
            g => self.below.get(g - 1),
        }
    }

    /// The value of `row`.
    pub fn get(&self, row: u32) -> Option<i64> {
        Some(self.values.get(row as usize)).filter(|v| *v != NULL)
    }

    fn bucket_of(&self, v: i64) -> usize {
        self.bounds.partition_point(|x| *x <= v).saturating_sub(1)
    }

    fn fine_of(&self, v: i64) -> usize {
        self.fine.partition_point(|x| *x <= v).saturating_sub(1)
    }

    /// Sets the value of `row` (growing the column as needed).
    pub fn set(&mut self, row: u32, v: Option<i64>) {
        let i = row as usize;
        if i >= self.values.len() {
            self.values.set(i, NULL);
            if self.fine.len() > 1 {
                grow_exact(&mut self.codes, i + 1, NULL_CODE);
            }
        }
        if self.bounds.is_empty() {
            self.bounds.push(NULL + 1);
            self.buckets.push(RoaringBitmap::new());
            self.lens.push(0);
        }
        if self.fine.is_empty() {
            self.fine.push(NULL + 1);
        }
        let old = self.values.get(i);
        let new = v.unwrap_or(NULL);
        if old == new {
            return;
        }
        let old_bucket = (old != NULL).then(|| self.bucket_of(old));
        let new_bucket = (new != NULL).then(|| self.bucket_of(new));
        for (g, below) in (1..).zip(self.below.iter_mut()) {
            let was = old_bucket.is_some_and(|b| b < g * GROUP);
            let is = new_bucket.is_some_and(|b| b < g * GROUP);
            if was && !is {
                below.remove(row);
            } else if is && !was {
                below.insert(row);
            }
        }
        if let Some(b) = old_bucket {
            if self.buckets[b].remove(row) {
                self.lens[b] -= 1;
            }
        }
        if new != NULL {
            let b = self.bucket_of(new);
            if self.buckets[b].insert(row) {
                self.lens[b] += 1;
            }
            self.nonnull.insert(row);
            let code = self.fine_of(new) as u16;
            if let Some(c) = self.codes.get_mut(i) {
                *c = code;
            }
        } else {
            self.nonnull.remove(row);
            if let Some(c) = self.codes.get_mut(i) {
                *c = NULL_CODE;
            }
        }
        self.values.set(i, new);
    }

    /// The buckets against `lo..=hi` (`lo > NULL`): wholly inside, wholly outside, or
    /// straddling an end of the range (at most two).
    fn split(&self, lo: i64, hi: i64) -> Split<'_> {
        let mut split = Split {
            class: [OUT; 256],
            inside: Vec::new(),
            outside: Vec::new(),
            partial: Vec::new(),
            in_len: 0,
            out_len: 0,
            partial_len: 0,
        };
        let n = self.bounds.len();
        for ((b, bm), &len) in self.buckets.iter().enumerate().zip(&self.lens) {
            let blo = self.bounds[b];
            let bhi = if b + 1 < n {
                self.bounds[b + 1] - 1
            } else {
                i64::MAX
            };
            if blo >= lo && bhi <= hi {
                split.class[b] = IN;
                if len > 0 {
                    split.in_len += len;
                    split.inside.push(bm);
                }
            } else if bhi < lo || blo > hi {
                if len > 0 {
                    split.out_len += len;
                    split.outside.push(bm);
                }
            } else {
                split.class[b] = EDGE;
                if len > 0 {
                    split.partial_len += len;
                    split.partial.push(bm);
                }
            }
        }
        split
    }

    /// Rows whose value lies in `lo..=hi`.
    pub fn range(&self, lo: i64, hi: i64) -> RoaringBitmap {
        if lo > hi || self.bounds.is_empty() {
            return RoaringBitmap::new();
        }
        let lo = lo.max(NULL + 1);
        let split = self.split(lo, hi);
        if split.in_len <= split.out_len {
            let mut acc = split.inside.union();
            for bm in &split.partial {
                acc |= *bm - self.outside(bm.iter(), lo, hi);
            }
            acc
        } else {
            let mut acc = &self.nonnull - split.outside.union();
            for bm in &split.partial {
                acc -= self.outside(bm.iter(), lo, hi);
            }
            acc
        }
    }

    /// How `lo..=hi` meets the buckets: the groups `gx..=gy` it touches and, in each end
    /// group, the buckets not wholly inside it (`None`: no bucket is touched).
    fn plan(&self, lo: i64, hi: i64) -> Option<RangePlan> {
        if lo > hi || self.bounds.is_empty() {
            return None;
        }
        let lo = lo.max(NULL + 1);
        let split = self.split(lo, hi);
        let n = self.buckets.len();
        let touched = |b: &usize| split.class[*b] != OUT;
        let (x, y) = ((0..n).find(touched)?, (0..n).rev().find(touched)?);
        let (gx, gy) = (x / GROUP, y / GROUP);
        let ends = if gx == gy { vec![gx] } else { vec![gx, gy] }
            .into_iter()
            .map(|g| {
                let not_in = self
                    .group(g)
                    .filter(|b| split.class[*b] != IN)
                    .map(|b| (b, split.class[b]));
                (g, not_in.collect::<Vec<_>>())
            })
            .filter(|(_, not_in)| !not_in.is_empty())
            .collect();
        Some(RangePlan { lo, hi, gx, gy, ends })
    }

    /// The buckets of group `g`.
    fn group(&self, g: usize) -> std::ops::Range<usize> {
        g * GROUP..((g + 1) * GROUP).min(self.buckets.len())
    }

    /// Whether `rows` is dense: mostly bitmap containers, from which removing a bucket
    /// costs only the bucket's own rows.
    fn dense(&self, rows: &RoaringBitmap) -> bool {
        rows.len().saturating_mul(16) > self.values.len() as u64
    }

    /// The rows of `rows` whose value lies in `lo..=hi`: `rows & self.range(lo, hi)`.
    /// See [`NumColumn::retain_range`].
    pub fn restrict_range(&self, rows: &RoaringBitmap, lo: i64, hi: i64) -> RoaringBitmap {
        let mut out = rows.clone();
        self.retain_range(&mut out, lo, hi);
        out
    }

    /// Keeps the rows of `rows` whose value lies in `lo..=hi` (`rows &= self.range(lo, hi)`),
    /// with whole-bitmap operations.
    ///
    /// The buckets the range touches span groups `gx..=gy`; two operations with the
    /// cumulative bitmaps keep the rows of those groups. In an end group not wholly
    /// inside the range, the buckets outside it are removed and the rows of the edge
    /// buckets checked by value — first, while `rows` is dense (bitmap containers, where
    /// removing a bucket costs only the bucket's rows) — or, when `rows` is sparse, its
    /// rows in that group are checked one by one unless removing buckets is cheaper.
    pub fn retain_range(&self, rows: &mut RoaringBitmap, lo: i64, hi: i64) {
        self.retain_range_by(rows, lo, hi, None);
    }

    /// [`NumColumn::retain_range`]; `check_rows` forces the way the end groups are done.
    fn retain_range_by(&self, rows: &mut RoaringBitmap, lo: i64, hi: i64, check_rows: Option<bool>) {
        if rows.is_empty() {
            return;
        }
        let Some(p) = self.plan(lo, hi) else {
            rows.clear();
            return;
        };
        if self.dense(rows) && check_rows.is_none() {
            for (b, class) in p.ends.iter().flat_map(|(_, not_in)| not_in) {
                self.drop_bucket(rows, *b, *class, p.lo, p.hi);
            }
            self.keep_groups(rows, p.gx, p.gy + 1);
            return;
        }
        self.keep_groups(rows, p.gx, p.gy + 1);
        let bucket_len = |b: usize| self.lens[b];
        let touched_len: u64 = (self.group(p.gx).start..self.group(p.gy).end)
            .map(bucket_len)
            .sum::<u64>()
            .max(1);
        for (g, not_in) in p.ends {
            if rows.is_empty() {
                break;
            }
            // Estimated costs in steps of a bitmap operation: a row checked costs about
            // ROW_CHECK, an element of a sparse-sparse operation about SPARSE_OP.
            let share = |len: u64| rows.len() * len / touched_len;
            let check = 2 * rows.len() + share(self.group(g).map(bucket_len).sum()) * ROW_CHECK;
            let remove: u64 = not_in
                .iter()
                .map(|(b, _)| (rows.len() + bucket_len(*b)) * SPARSE_OP + share(bucket_len(*b)) * ROW_CHECK)
                .sum();
            if check_rows.unwrap_or(check <= remove) {
                let mut in_group = rows.clone();
                self.keep_groups(&mut in_group, g, g + 1);
                *rows -= self.outside(in_group.iter(), p.lo, p.hi);
            } else {
                for (b, class) in not_in {
                    self.drop_bucket(rows, b, class, p.lo, p.hi);
                }
            }
        }
    }

    /// How many rows of `rows` have a value in `lo..=hi`: `rows.intersection_len(&self.range(lo, hi))`,
    /// counted without building the intersection (bitmap operations only count, apart from
    /// the rows of `rows` in the edge buckets, which are checked by value).
    pub fn count_range(&self, rows: &RoaringBitmap, lo: i64, hi: i64) -> u64 {
        let Some(p) = self.plan(lo, hi) else {
            return 0;
        };
        if rows.is_empty() {
            return 0;
        }
        let below = |g: usize| match self.below(g) {
            None => 0,
            Some(b) if self.covers(b, rows) => rows.len(),
            Some(b) => rows.intersection_len(b),
        };
        let mut n = below(p.gy + 1) - below(p.gx);
        for (b, class) in p.ends.iter().flat_map(|(_, not_in)| not_in) {
            let bucket = &self.buckets[*b];
            n -= match *class {
                OUT => rows.intersection_len(bucket),
                _ => self.outside_rows((rows & bucket).iter(), p.lo, p.hi).len() as u64,
            };
        }
        n
    }

    /// Keeps the rows of `rows` whose bucket lies in groups `from..to`.
    fn keep_groups(&self, rows: &mut RoaringBitmap, from: usize, to: usize) {
        if from >= to {
            rows.clear();
            return;
        }
        // Lower groups first: a dense `rows` usually turns sparse there, and the upper
        // cut then costs a bit test a row.
        if let Some(lower) = self.below(from) {
            *rows -= lower;
        }
        match self.below(to) {
            None => rows.clear(),
            Some(upper) if self.covers(upper, rows) => {}
            Some(upper) => *rows &= upper,
        }
    }

    /// Whether `set` is the non-null rows, every row has a value and `rows` lies within
    /// the column: then `rows ⊆ set` without looking.
    fn covers(&self, set: &RoaringBitmap, rows: &RoaringBitmap) -> bool {
        std::ptr::eq(set, &self.nonnull)
            && self.nonnull.len() == self.values.len() as u64
            && rows.max().is_none_or(|m| (m as usize) < self.values.len())
    }

    /// Removes from `rows` those of bucket `b` outside `lo..=hi`: all of them for an
    /// [`OUT`] bucket, those whose value is outside for an [`EDGE`] bucket.
    fn drop_bucket(&self, rows: &mut RoaringBitmap, b: usize, class: u8, lo: i64, hi: i64) {
        match class {
            OUT => *rows -= &self.buckets[b],
            EDGE => {
                let edge = &*rows & &self.buckets[b];
                *rows -= self.outside(edge.iter(), lo, hi);
            }
            _ => {}
        }
    }

    /// About how many rows have a value in `lo..=hi` (from the bucket sizes; edge
    /// buckets count half), for ordering conditions.
    pub fn estimate_range(&self, lo: i64, hi: i64) -> u64 {
        if lo > hi || self.bounds.is_empty() {
            return 0;
        }
        let split = self.split(lo.max(NULL + 1), hi);
        split.in_len + split.partial_len / 2
    }

    /// The rows of `rows` (ascending) whose value is outside `lo..=hi` (null and missing
    /// rows included), by each row's fine bucket and, in the fine buckets holding `lo` or
    /// `hi`, its value. Codes are read in batches before any is tested, so the cache
    /// misses of a batch overlap.
    fn outside(&self, rows: impl Iterator<Item = u32>, lo: i64, hi: i64) -> RoaringBitmap {
        RoaringBitmap::from_sorted_iter(self.outside_rows(rows, lo, hi)).unwrap_or_default()
    }

    /// [`NumColumn::outside`] as a list.
    fn outside_rows(&self, mut rows: impl Iterator<Item = u32>, lo: i64, hi: i64) -> Vec<u32> {
        const BATCH: usize = 256;
        let (cx, cy) = (self.fine_of(lo), self.fine_of(hi));
        let mut ids = [0u32; BATCH];
        let mut codes = [NULL_CODE; BATCH];
        let mut out: Vec<u32> = Vec::new();
        loop {
            let mut n = 0;
            for (slot, r) in ids.iter_mut().zip(rows.by_ref()) {
                *slot = r;
                n += 1;
            }
            if n == 0 {
                break;
            }
            if self.codes.is_empty() {
                // Not bucketed: every value is read.
                let start = out.len();
                out.resize(start + n, 0);
                let mut k = start;
                for r in &ids[..n] {
                    let v = self.values.get(*r as usize);
                    out[k] = *r;
                    k += usize::from(!(v >= lo && v <= hi));
                }
                out.truncate(k);
                if n < BATCH {
                    break;
                }
                continue;
            }
            for (c, r) in codes.iter_mut().zip(&ids[..n]) {
                *c = self.codes.get(*r as usize).copied().unwrap_or(NULL_CODE);
            }
            let start = out.len();
            out.resize(start + n, 0);
            let mut k = start;
            for (c, r) in codes.iter().zip(&ids[..n]) {
                let c = usize::from(*c);
                let within = if c == cx || c == cy {
                    let v = self.values.get(*r as usize);
                    v >= lo && v <= hi
                } else {
                    c > cx && c < cy
                };
                out[k] = *r;
                k += usize::from(!within);
            }
            out.truncate(k);
            if n < BATCH {
                break;
            }
        }
        out
    }

    /// Rows with a value.
    pub fn nonnull(&self) -> &RoaringBitmap {
        &self.nonnull
    }

    /// Whether it has value buckets (built by [`NumColumn::build`] from enough values),
    /// rather than one bucket of every row (built row by row).
    pub fn is_bucketed(&self) -> bool {
        self.fine.len() > 1
    }

    /// The same values with value buckets ([`NumColumn::build`]).
    pub fn bucketed(&self) -> NumColumn {
        NumColumn::build((0..self.values.len() as u32).map(|r| self.get(r)))
    }

    /// Gives back the room kept for growth (after a bulk build).
    pub fn shrink_to_fit(&mut self) {
        self.values.shrink_to_fit();
        self.codes.shrink_to_fit();
    }

    /// Number of rows the column covers.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the column covers no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Bytes held (approximate), for reporting.
    pub fn heap_bytes(&self) -> u64 {
        self.values.heap_bytes()
            + (self.codes.capacity() * 2 + self.fine.capacity() * 8) as u64
            + self
                .buckets
                .iter()
                .chain(&self.below)
                .map(|b| b.serialized_size() as u64)
                .sum::<u64>()
            + self.nonnull.serialized_size() as u64
    }
}

/// How a range meets the buckets of a numeric column (see [`NumColumn::retain_range`]).
struct RangePlan {
    /// The range, `lo > NULL`.
    lo: i64,
    hi: i64,
    /// The groups of buckets the range touches, `gx..=gy`.
    gx: usize,
    gy: usize,
    /// Per end group, the buckets not wholly inside the range and their class.
    ends: Vec<(usize, Vec<(usize, u8)>)>,
}

/// Buckets of a numeric column sorted against a range.
struct Split<'a> {
    /// [`OUT`], [`IN`] or [`EDGE`] by bucket code ([`NULL_CODE`] is out).
    class: [u8; 256],
    inside: Vec<&'a RoaringBitmap>,
    outside: Vec<&'a RoaringBitmap>,
    partial: Vec<&'a RoaringBitmap>,
    in_len: u64,
    out_len: u64,
    partial_len: u64,
}

/// The codes of a text column, one a row, in the narrowest width that holds them.
#[derive(Debug, Clone)]
enum Codes {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Codes {
    /// Narrows a list of codes.
    fn from_vec(codes: Vec<u32>) -> Codes {
        match codes.iter().copied().max().unwrap_or(0) {
            0..=0xFF => Codes::U8(codes.into_iter().map(|c| c as u8).collect()),
            0x100..=0xFFFF => Codes::U16(codes.into_iter().map(|c| c as u16).collect()),
            _ => Codes::U32(codes),
        }
    }

    fn len(&self) -> usize {
        match self {
            Codes::U8(v) => v.len(),
            Codes::U16(v) => v.len(),
            Codes::U32(v) => v.len(),
        }
    }

    fn get(&self, i: usize) -> Option<u32> {
        match self {
            Codes::U8(v) => v.get(i).map(|c| u32::from(*c)),
            Codes::U16(v) => v.get(i).map(|c| u32::from(*c)),
            Codes::U32(v) => v.get(i).copied(),
        }
    }

    /// Grows to `n` codes, the new ones 0.
    fn grow(&mut self, n: usize) {
        match self {
            Codes::U8(v) => grow_exact(v, n, 0),
            Codes::U16(v) => grow_exact(v, n, 0),
            Codes::U32(v) => grow_exact(v, n, 0),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Codes::U8(v) => v.shrink_to_fit(),
            Codes::U16(v) => v.shrink_to_fit(),
            Codes::U32(v) => v.shrink_to_fit(),
        }
    }

    /// Sets code `i` (below `len`), widening every code when `c` does not fit.
    fn set(&mut self, i: usize, c: u32) {
        match self {
            Codes::U8(v) if c <= 0xFF => v[i] = c as u8,
            Codes::U16(v) if c <= 0xFFFF => v[i] = c as u16,
            Codes::U32(v) => v[i] = c,
            Codes::U8(v) => {
                let mut wide: Vec<u32> = v.iter().map(|c| u32::from(*c)).collect();
                wide[i] = c;
                *self = Codes::from_vec(wide);
            }
            Codes::U16(v) => {
                let mut wide: Vec<u32> = v.iter().map(|c| u32::from(*c)).collect();
                wide[i] = c;
                *self = Codes::from_vec(wide);
            }
        }
    }

    fn heap_bytes(&self) -> u64 {
        (match self {
            Codes::U8(v) => v.capacity(),
            Codes::U16(v) => v.capacity() * 2,
            Codes::U32(v) => v.capacity() * 4,
        }) as u64
    }
}

/// A text column: a code per row (0 = null) and a bitmap per value.
#[derive(Debug, Clone)]
pub struct CatColumn {
    codes: Codes,
    dict: Vec<String>,
    lookup: HashMap<String, u32>,
    bitmaps: Vec<RoaringBitmap>,
}

impl Default for CatColumn {
    fn default() -> Self {
        CatColumn {
            codes: Codes::U8(Vec::new()),
            dict: vec![String::new()],
            lookup: HashMap::new(),
            bitmaps: vec![RoaringBitmap::new()],
        }
    }
}

impl CatColumn {
    /// Builds a column from a dictionary (index 0 is null and ignored) and one code per row.
    pub fn from_codes(dict: Vec<String>, codes: Vec<u32>) -> CatColumn {
        let mut col = CatColumn::default();
        for name in dict.into_iter().skip(1) {
            col.code_of(&name);
        }
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); col.dict.len()];
        for (row, &c) in codes.iter().enumerate() {
            if c != 0 {
                if let Some(r) = rows.get_mut(c as usize) {
                    r.push(row as u32);
                }
            }
        }
        col.bitmaps = rows
            .into_iter()
            .map(|r| RoaringBitmap::from_sorted_iter(r).unwrap_or_default())
            .collect();
        col.codes = Codes::from_vec(codes);
        col
    }

    fn code_of(&mut self, v: &str) -> u32 {
        if let Some(c) = self.lookup.get(v) {
            return *c;
        }
        let c = self.dict.len() as u32;
        self.dict.push(v.to_owned());
        self.lookup.insert(v.to_owned(), c);
        self.bitmaps.push(RoaringBitmap::new());
        c
    }

    /// The value of `row`.
    pub fn get(&self, row: u32) -> Option<&str> {
        match self.codes.get(row as usize).unwrap_or(0) {
            0 => None,
            c => self.dict.get(c as usize).map(String::as_str),
        }
    }

    /// Sets the value of `row`.
    pub fn set(&mut self, row: u32, v: Option<&str>) {
        let i = row as usize;
        if i >= self.codes.len() {
            self.codes.grow(i + 1);
        }
        let new = v.map_or(0, |v| self.code_of(v));
        let old = self.codes.get(i).unwrap_or(0);
        if old == new {
            return;
        }
        if old != 0 {
            self.bitmaps[old as usize].remove(row);
        }
        if new != 0 {
            self.bitmaps[new as usize].insert(row);
        }
        self.codes.set(i, new);
    }

    /// Gives back the room kept for growth (after a bulk build).
    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
    }

    /// Rows whose value is one of `values`.
    pub fn any_of(&self, values: &[String]) -> RoaringBitmap {
        values.iter().filter_map(|v| self.rows_of(v)).union()
    }

    /// Rows whose value is `value` (`None` when no row ever had it).
    pub fn rows_of(&self, value: &str) -> Option<&RoaringBitmap> {
        self.lookup.get(value).map(|c| &self.bitmaps[*c as usize])
    }

    /// The rows of `rows` whose value is one of `values`: `rows & self.any_of(values)`,
    /// touching only the containers of `rows`. Sparse `rows` are intersected with each
    /// value's rows; dense `rows` lose the rows of each value in turn (staying dense, so
    /// no container changes representation) and the rows left are then taken away.
    pub fn restrict_any_of(&self, rows: &RoaringBitmap, values: &[String]) -> RoaringBitmap {
        let bitmaps: Vec<&RoaringBitmap> = values.iter().filter_map(|v| self.rows_of(v)).collect();
        match bitmaps.as_slice() {
            [] => RoaringBitmap::new(),
            [b] => rows & *b,
            _ if rows.len().saturating_mul(16) > self.codes.len() as u64 => {
                let mut miss = rows.clone();
                for b in bitmaps {
                    miss -= b;
                }
                rows - miss
            }
            _ => {
                let mut acc = RoaringBitmap::new();
                for b in bitmaps {
                    acc |= rows & b;
                }
                acc
            }
        }
    }

    /// How many rows have one of `values` (a value listed twice counts twice).
    pub fn count_any_of(&self, values: &[String]) -> u64 {
        values
            .iter()
            .filter_map(|v| self.rows_of(v))
            .map(RoaringBitmap::len)
            .sum()
    }

    /// Rows with a value.
    pub fn nonnull(&self) -> RoaringBitmap {
        self.bitmaps.iter().skip(1).union()
    }

    /// Value counts, largest first (for the console and docs).
    pub fn histogram(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .dict
            .iter()
            .zip(&self.bitmaps)
            .skip(1)
            .filter(|(_, b)| !b.is_empty())
            .map(|(d, b)| (d.clone(), b.len()))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Bytes held (approximate).
    pub fn heap_bytes(&self) -> u64 {
        self.codes.heap_bytes()
            + self
                .bitmaps
                .iter()
                .map(|b| b.serialized_size() as u64)
                .sum::<u64>()
    }
}

/// A multi-valued text column: one bitmap per value.
#[derive(Debug, Clone, Default)]
pub struct MultiColumn {
    lookup: HashMap<String, usize>,
    bitmaps: Vec<RoaringBitmap>,
    nonempty: RoaringBitmap,
}

impl MultiColumn {
    /// Replaces the values of `row`.
    pub fn set(&mut self, row: u32, values: &[String]) {
        // A row that holds no value is in no value's bitmap (a new row, most of a rebuild).
        if self.nonempty.contains(row) {
            for b in &mut self.bitmaps {
                b.remove(row);
            }
        }
        for v in values {
            let next = self.bitmaps.len();
            let i = match self.lookup.get(v.as_str()) {
                Some(i) => *i,
                None => *self.lookup.entry(v.clone()).or_insert(next),
            };
            if i == next {
                self.bitmaps.push(RoaringBitmap::new());
            }
            self.bitmaps[i].insert(row);
        }
        if values.is_empty() {
            self.nonempty.remove(row);
        } else {
            self.nonempty.insert(row);
        }
    }

    /// Rows holding `value`.
    pub fn containing(&self, value: &str) -> RoaringBitmap {
        self.lookup
            .get(value)
            .map(|i| self.bitmaps[*i].clone())
            .unwrap_or_default()
    }

    /// Whether `row` holds `value`.
    pub fn contains(&self, row: u32, value: &str) -> bool {
        self.lookup
            .get(value)
            .is_some_and(|i| self.bitmaps[*i].contains(row))
    }

    /// Rows holding at least one value.
    pub fn nonempty(&self) -> &RoaringBitmap {
        &self.nonempty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_queries_match_a_scan_on_either_side() {
        let values: Vec<Option<i64>> = (0..10_000)
            .map(|i| {
                if i % 7 == 0 {
                    None
                } else {
                    Some((i * 37 % 1000) as i64 - 100)
                }
            })
            .collect();
        let mut col = NumColumn::build(values.clone());
        col.set(3, Some(5000));
        col.set(14, None);
        let mut truth = values;
        truth[3] = Some(5000);
        truth[14] = None;
        for (lo, hi) in [
            (0, 10),
            (-1000, 100),
            (500, i64::MAX),
            (i64::MIN, i64::MAX),
            (5000, 5000),
            (900, 100),
        ] {
            let got: Vec<u32> = col.range(lo, hi).iter().collect();
            let want: Vec<u32> = truth
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_some_and(|v| v >= lo && v <= hi))
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(got, want, "range {lo}..={hi}");
        }
    }

    #[test]
    fn restricted_ranges_equal_the_intersection_with_the_full_range() {
        // Many distinct values (all groups used), a very common value, nulls.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = 200_000u32;
        let values: Vec<Option<i64>> = (0..n)
            .map(|_| match next() % 10 {
                0 => None,
                1..=4 => Some(0),
                _ => Some((next() % 1_000_000) as i64),
            })
            .collect();
        let mut col = NumColumn::build(values.clone());
        let mut truth = values;
        truth.resize(n as usize + 6, None);
        let mut set = |col: &mut NumColumn, row: u32, v: Option<i64>| {
            col.set(row, v);
            truth[row as usize] = v;
        };
        for row in (0..n).step_by(997) {
            set(&mut col, row, Some((next() % 2_000_000) as i64 - 500_000));
        }
        set(&mut col, n + 5, Some(42));
        for row in (0..n).step_by(1_313) {
            set(&mut col, row, None);
        }
        let truth = truth;
        let subsets: Vec<RoaringBitmap> = vec![
            (0..n + 10).collect(),
            (0..n).filter(|r| r % 3 == 0).collect(),
            (0..n).step_by(211).collect(),
            (0..n + 10).filter(|_| next() % 50 == 0).collect(),
            RoaringBitmap::new(),
        ];
        for (lo, hi) in [
            (1, i64::MAX),
            (0, 0),
            (100_001, i64::MAX),
            (i64::MIN, 500_000),
            (250_000, 260_000),
            (-500_000, -1),
            (42, 42),
            (i64::MIN, i64::MAX),
            (7, 3),
        ] {
            let full = col.range(lo, hi);
            let scan: RoaringBitmap = (0u32..)
                .zip(&truth)
                .filter(|(_, v)| v.is_some_and(|v| v >= lo && v <= hi))
                .map(|(r, _)| r)
                .collect();
            assert_eq!(full, scan, "range {lo}..={hi}");
            for rows in &subsets {
                let want = rows & &full;
                assert_eq!(
                    col.restrict_range(rows, lo, hi),
                    want,
                    "range {lo}..={hi}, {} rows",
                    rows.len()
                );
                assert_eq!(col.count_range(rows, lo, hi), want.len(), "count {lo}..={hi}");
                for by in [None, Some(true), Some(false)] {
                    let mut got = rows.clone();
                    col.retain_range_by(&mut got, lo, hi, by);
                    assert_eq!(
                        got,
                        want,
                        "range {lo}..={hi}, {} rows, checking rows: {by:?}",
                        rows.len()
                    );
                }
            }
        }
    }

    #[test]
    fn text_codes_widen_when_the_dictionary_outgrows_them() {
        let mut col = CatColumn::from_codes(vec![String::new(), "a".into()], vec![1, 0, 1]);
        for i in 0..300u32 {
            col.set(3 + i, Some(&format!("v{i}")));
        }
        col.set(1, Some("v299"));
        assert_eq!(col.get(0), Some("a"));
        assert_eq!(col.get(1), Some("v299"));
        assert_eq!(col.get(302), Some("v299"));
        assert_eq!(col.get(303), None);
        assert_eq!(
            col.any_of(&["v299".into()]).iter().collect::<Vec<_>>(),
            vec![1, 302]
        );
    }

    #[test]
    fn categorical_values_move_between_bitmaps() {
        let mut col = CatColumn::default();
        col.set(0, Some("上海"));
        col.set(1, Some("北京"));
        col.set(2, Some("上海"));
        col.set(2, Some("北京"));
        col.set(1, None);
        assert_eq!(col.any_of(&["北京".into()]).iter().collect::<Vec<_>>(), vec![2]);
        assert_eq!(col.any_of(&["上海".into(), "北京".into()]).len(), 2);
        assert_eq!(col.get(1), None);
        assert_eq!(col.histogram(), vec![("上海".into(), 1), ("北京".into(), 1)]);
    }
}
