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

/// Per-user aggregates, dense over user ids; `f = 0` means no order.
struct Agg {
    r: Vec<i64>,
    f: Vec<u32>,
    m: Vec<i64>,
}

impl Agg {
    fn new(users: usize) -> Agg {
        Agg {
            r: vec![i64::MIN; users],
            f: vec![0; users],
            m: vec![0; users],
        }
    }

    /// Folds orders into the aggregates (ids already checked against `users`).
    fn add(&mut self, user: &[u32], ts: &[i64], amount: &[i64]) {
        for ((u, t), a) in user.iter().zip(ts).zip(amount) {
            let u = *u as usize;
            self.r[u] = self.r[u].max(*t);
            self.f[u] += 1;
            self.m[u] += *a;
        }
    }
}

/// Splits `0..n` into `parts` contiguous ranges of nearly equal length.
fn ranges(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    (0..parts).map(|i| n * i / parts..n * (i + 1) / parts).collect()
}

fn join<T>(h: thread::ScopedJoinHandle<'_, T>) -> Result<T> {
    h.join().map_err(|_| anyhow!("an RFM thread panicked"))
}

/// Aggregates the orders on `threads` threads.
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
    // Merge the other threads' arrays into `total`, split by user range.
    let chunk = o.users.div_ceil(threads.max(1)).max(1);
    thread::scope(|s| {
        let handles: Vec<_> = total
            .r
            .chunks_mut(chunk)
            .zip(total.f.chunks_mut(chunk))
            .zip(total.m.chunks_mut(chunk))
            .enumerate()
            .map(|(i, ((r, f), m))| {
                let aggs = &aggs;
                s.spawn(move || {
                    let lo = i * chunk;
                    for a in aggs {
                        let hi = lo + r.len();
                        for (x, y) in r.iter_mut().zip(&a.r[lo..hi]) {
                            *x = (*x).max(*y);
                        }
                        for (x, y) in f.iter_mut().zip(&a.f[lo..hi]) {
                            *x += *y;
                        }
                        for (x, y) in m.iter_mut().zip(&a.m[lo..hi]) {
                            *x += *y;
                        }
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
    let agg = aggregate(o, threads)?;
    let buyers = agg.f.iter().filter(|f| **f > 0).count();
    let (mut rs, mut fs, mut ms) = (
        Vec::with_capacity(buyers),
        Vec::with_capacity(buyers),
        Vec::with_capacity(buyers),
    );
    for u in 0..o.users {
        if agg.f[u] > 0 {
            rs.push(agg.r[u]);
            fs.push(i64::from(agg.f[u]));
            ms.push(agg.m[u]);
        }
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
        .map(|r| agg.f[r.clone()].iter().filter(|f| **f > 0).count())
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
                for u in range {
                    let f = agg.f[u];
                    if f == 0 {
                        continue;
                    }
                    if let Some(slot) = slots.next() {
                        *slot = Scored {
                            user: u as u32,
                            r: score(agg.r[u], br),
                            f: score(i64::from(f), bf),
                            m: score(agg.m[u], bm),
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
