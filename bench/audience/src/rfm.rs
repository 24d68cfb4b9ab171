//! RFM over the order log: per buyer R = last order time, F = order count, M = amount
//! spent, each scored 1–5 against quintile breakpoints over all buyers
//! ([`flywheel_audience::rfm::score`]).
//!
//! Aggregation goes into dense arrays indexed by user id (no hashing): each thread
//! folds its share of the orders into arrays of its own, which are then merged by
//! user range, also in parallel.

use std::thread;

use anyhow::{anyhow, Result};
use flywheel_audience::rfm::score::{breakpoints, score};

use crate::data::{self, Manifest};

/// RFM score bins.
const BINS: u8 = 5;

/// The order log, one array per column.
pub struct Orders {
    /// Buyer of each order, `< users`.
    pub user: Vec<u32>,
    /// Order time, ms.
    pub ts: Vec<i64>,
    /// Amount, fen.
    pub amount: Vec<i64>,
    /// Number of user ids.
    pub users: usize,
}

impl Orders {
    /// Reads the order columns and checks every user id is in range.
    pub fn load(m: &Manifest) -> Result<Orders> {
        let n = m.orders;
        let user = data::read(m.order_column("user")?, n)?.into_u32("orders/user")?;
        let ts = data::read(m.order_column("ts")?, n)?.into_i64();
        let amount = data::read(m.order_column("amount")?, n)?.into_i64();
        if let Some(u) = user.iter().copied().find(|u| *u as usize >= m.users) {
            return Err(anyhow!("orders/user: id {u} is not below users = {}", m.users));
        }
        Ok(Orders {
            user,
            ts,
            amount,
            users: m.users,
        })
    }
}

/// The scores of one buyer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scored {
    /// User id.
    pub user: u32,
    /// Recency score 1–5.
    pub r: u8,
    /// Frequency score 1–5.
    pub f: u8,
    /// Monetary score 1–5.
    pub m: u8,
}

/// Per-user aggregates, dense over user ids, one 24-byte slot a user (one cache line
/// touched per order): `[r, m, f]` with r = max ts as `ts − i64::MIN` (order-preserving,
/// 0 = no order yet), m = the wrapping sum of amounts, f = the order count. All zero
/// initially, so the allocation is a zeroed one.
struct Agg(Vec<[u64; 3]>);

/// `ts` as an unsigned number in the same order (`i64::MIN` ↦ 0).
fn enc(ts: i64) -> u64 {
    ts.wrapping_sub(i64::MIN) as u64
}

/// Inverse of [`enc`].
fn dec(r: u64) -> i64 {
    (r as i64).wrapping_add(i64::MIN)
}

impl Agg {
    /// Empty aggregates of `users` users.
    fn new(users: usize) -> Agg {
        Agg(vec![[0; 3]; users])
    }

    /// Folds orders into the aggregates (ids already checked against `users`).
    fn add(&mut self, user: &[u32], ts: &[i64], amount: &[i64]) {
        for ((u, t), a) in user.iter().zip(ts).zip(amount) {
            let slot = &mut self.0[*u as usize];
            slot[0] = slot[0].max(enc(*t));
            slot[1] = slot[1].wrapping_add(*a as u64);
            slot[2] += 1;
        }
    }

    /// Folds another thread's aggregates of the same users in.
    fn merge(into: &mut [[u64; 3]], from: &[[u64; 3]]) {
        for (x, y) in into.iter_mut().zip(from) {
            x[0] = x[0].max(y[0]);
            x[1] = x[1].wrapping_add(y[1]);
            x[2] += y[2];
        }
    }
}

/// Splits `0..n` into `parts` contiguous ranges of nearly equal length.
fn ranges(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    (0..parts).map(|i| n * i / parts..n * (i + 1) / parts).collect()
}

/// Joins a scoped thread, a panic becoming an error.
fn join<T>(h: thread::ScopedJoinHandle<'_, T>) -> Result<T> {
    h.join().map_err(|_| anyhow!("an RFM thread panicked"))
}

/// Aggregates the orders on `threads` threads: each folds a share of the orders into
/// slots of its own, then the slots are merged, split by user range.
fn aggregate(o: &Orders, threads: usize) -> Result<Agg> {
    let parts = ranges(o.user.len(), threads);
    let mut aggs = thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|r| {
                let r = r.clone();
                s.spawn(move || {
                    let mut a = Agg::new(o.users);
                    a.add(&o.user[r.clone()], &o.ts[r.clone()], &o.amount[r]);
                    a
                })
            })
            .collect();
        handles.into_iter().map(join).collect::<Result<Vec<Agg>>>()
    })?;
    let mut total = aggs.pop().unwrap_or_else(|| Agg::new(o.users));
    if aggs.is_empty() {
        return Ok(total);
    }
    let chunk = o.users.div_ceil(threads.max(1)).max(1);
    thread::scope(|s| {
        let handles: Vec<_> = total
            .0
            .chunks_mut(chunk)
            .enumerate()
            .map(|(i, into)| {
                let aggs = &aggs;
                s.spawn(move || {
                    let lo = i * chunk;
                    for a in aggs {
                        Agg::merge(into, &a.0[lo..lo + into.len()]);
                    }
                })
            })
            .collect();
        handles.into_iter().try_for_each(join)
    })?;
    Ok(total)
}

/// Scores every buyer: aggregation, quintile breakpoints per metric, and the
/// materialised (user, r, f, m) of every buyer in user order.
pub fn score_buyers(o: &Orders, threads: usize) -> Result<Vec<Scored>> {
    let agg = aggregate(o, threads)?.0;
    let buyers = agg.iter().filter(|a| a[2] > 0).count();
    let (mut rs, mut fs, mut ms) = (
        Vec::with_capacity(buyers),
        Vec::with_capacity(buyers),
        Vec::with_capacity(buyers),
    );
    for [r, m, f] in agg.iter().copied().filter(|a| a[2] > 0) {
        rs.push(dec(r));
        fs.push(f as i64);
        ms.push(m as i64);
    }
    let (br, bf, bm) = thread::scope(|s| {
        let hr = s.spawn(|| breakpoints(&mut rs, BINS));
        let hf = s.spawn(|| breakpoints(&mut fs, BINS));
        let bm = breakpoints(&mut ms, BINS);
        Ok::<_, anyhow::Error>((join(hr)?, join(hf)?, bm))
    })?;
    drop((rs, fs, ms));
    // Each thread scores one user range into its own slice of the output.
    let parts = ranges(o.users, threads);
    let counts: Vec<usize> = parts
        .iter()
        .map(|r| agg[r.clone()].iter().filter(|a| a[2] > 0).count())
        .collect();
    let mut out = vec![Scored::default(); buyers];
    thread::scope(|s| {
        let mut rest: &mut [Scored] = &mut out;
        let mut handles = Vec::new();
        for (range, n) in parts.into_iter().zip(counts) {
            let (slice, tail) = rest.split_at_mut(n);
            rest = tail;
            let (agg, br, bf, bm) = (&agg, &br, &bf, &bm);
            handles.push(s.spawn(move || {
                let mut slots = slice.iter_mut();
                for (u, [r, m, f]) in range.clone().zip(agg[range].iter().copied()) {
                    if f == 0 {
                        continue;
                    }
                    if let Some(slot) = slots.next() {
                        *slot = Scored {
                            user: u as u32,
                            r: score(dec(r), br),
                            f: score(f as i64, bf),
                            m: score(m as i64, bm),
                        };
                    }
                }
            }));
        }
        handles.into_iter().try_for_each(join)
    })?;
    Ok(out)
}

/// The checksum Σ(100·r + 10·f + m) over every buyer, and the number of buyers.
pub fn checksum(scores: &[Scored]) -> (u64, u64) {
    let sum = scores
        .iter()
        .map(|s| 100 * u64::from(s.r) + 10 * u64::from(s.f) + u64::from(s.m))
        .sum();
    (sum, scores.len() as u64)
}
