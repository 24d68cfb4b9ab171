//! Ordered-step funnels with a conversion window. The rules:
//!
//! - **Entry.** A user enters the funnel at *any* occurrence of step 1 whose time lies in
//!   the period `[from, to)`. Later steps may fall after `to`: the window, not the
//!   period, bounds them.
//! - **Progress from an entry.** From an entry at `t1`, the user reaches step `k` when
//!   there are occurrences of steps 2..k in order at `t1 <= t2 <= … <= tk` with
//!   `tk − t1 <= window` (a step exactly `window` ms after the entry counts). Matching is
//!   greedy: step `k` is the earliest occurrence of its event at or after `t(k−1)`
//!   (equal times count; when a funnel repeats an event name, one event fills at most
//!   one step of a path). Greedy earliest matching reaches the deepest step possible
//!   from that entry.
//! - **A user's depth** is the maximum over all their entries; a user with no entry is
//!   not in the funnel. The *path* of a user is that of their earliest entry reaching
//!   that depth, and its times between consecutive steps are the user's step times.
//! - **Per step** `k`: `users` = users whose depth ≥ `k`; `from_first` = users ÷ step-1
//!   users; `from_previous` = users ÷ step-(k−1) users (step 1: users ÷ users, i.e. 1 or
//!   n/a); `dropped` = step-(k−1) users − users (0 for step 1);
//!   `median_seconds_from_previous` = the median, over those users, of the time from
//!   step k−1 to step k on their path, in seconds (`None` for step 1 or without users;
//!   an even count takes the mean of the two middle values).
//! - **Breakdown** by a [`UserProperty`]: the same per value (each user counted under
//!   their value, users without one under `None`), next to the totals.
//!
//! A ratio with a zero denominator is n/a, never NaN (an empty period gives n/a).

use serde::Serialize;

use super::{ColumnarError, EventColumns, UserProperty};
use crate::kpi::Period;
use crate::ratio::Ratio;

/// The most steps a funnel may have.
pub const MAX_STEPS: usize = 32;

/// One step of a funnel report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelStep {
    /// Event name of the step.
    pub name: String,
    /// Users who reached this step (depth ≥ this step).
    pub users: i64,
    /// `users` ÷ step-1 users.
    pub from_first: Ratio,
    /// `users` ÷ previous step's users (step 1: `users` ÷ `users`).
    pub from_previous: Ratio,
    /// Previous step's users − `users` (0 for step 1).
    pub dropped: i64,
    /// Median seconds from the previous step on the users' paths (`None` for step 1 or
    /// no users).
    pub median_seconds_from_previous: Option<f64>,
}

/// A funnel broken down for one property value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelGroup {
    /// The value (`None`: users without a value).
    pub value: Option<String>,
    /// The steps for the users with that value.
    pub steps: Vec<FunnelStep>,
}

/// A funnel's result. Serialized in one shape for the CLI's JSON and the HTTP API:
/// `{period, window_hours, steps, breakdown_by, groups}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelReport {
    /// The entry period.
    pub period: Period,
    /// The conversion window, ms (serialized as `window_hours`, as it is asked for).
    #[serde(rename = "window_hours", serialize_with = "as_hours")]
    pub window_ms: i64,
    /// The steps over all users.
    pub steps: Vec<FunnelStep>,
    /// The breakdown property's name, if any (serialized as `breakdown_by`).
    #[serde(rename = "breakdown_by")]
    pub breakdown: Option<String>,
    /// Per property value (only values with at least one entered user, in value order,
    /// users without a value last); empty without a breakdown.
    pub groups: Vec<FunnelGroup>,
}

fn as_hours<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(*ms as f64 / 3_600_000.0)
}

/// Per-thread tallies: for each group, users reaching each step, and the step times.
struct Tally {
    /// `reached[g * m + k]`: users of group `g` with depth > k.
    reached: Vec<i64>,
    /// `gaps[k]`: (group, ms from step k−1 to step k) for k ≥ 1; `gaps[0]` unused.
    gaps: Vec<Vec<(u32, i64)>>,
}

/// The funnel `steps` (event name ids) over `cols`, entries in `period`, within
/// `window_ms`, optionally broken down by `breakdown`; the rules are in the module
/// documentation ([`funnel`](self)). Refused: no steps, more than [`MAX_STEPS`], a step
/// id never interned, a negative window, a property not covering every user.
pub fn funnel(
    cols: &EventColumns,
    steps: &[u16],
    window_ms: i64,
    period: Period,
    breakdown: Option<&UserProperty>,
) -> Result<FunnelReport, ColumnarError> {
    let m = steps.len();
    if m == 0 {
        return Err(ColumnarError::NoSteps);
    }
    if m > MAX_STEPS {
        return Err(ColumnarError::TooManySteps(m));
    }
    if window_ms < 0 {
        return Err(ColumnarError::NegativeWindow(window_ms));
    }
    if let Some(&bad) = steps.iter().find(|&&s| usize::from(s) >= cols.names().len()) {
        return Err(ColumnarError::UnknownName(bad));
    }
    // Group count, with users without a value in the last group.
    let groups = match breakdown {
        Some(p) => {
            if p.of_user.len() != cols.users() {
                return Err(ColumnarError::PropertyLength {
                    users: cols.users(),
                    len: p.of_user.len(),
                });
            }
            if let Some(&bad) = p
                .of_user
                .iter()
                .find(|&&v| v != UserProperty::NONE && v as usize >= p.values.len())
            {
                return Err(ColumnarError::UnknownPropertyValue(bad));
            }
            p.values.len() + 1
        }
        None => 1,
    };
    let none_group = (groups - 1) as u32;
    let group_of = |u: u32| -> u32 {
        match breakdown {
            Some(p) => match p.of_user[u as usize] {
                UserProperty::NONE => none_group,
                v => v,
            },
            None => 0,
        }
    };
    let mut dup = [false; MAX_STEPS];
    for k in 1..m {
        dup[k] = steps[..k].contains(&steps[k]);
    }

    let run = |users: std::ops::Range<u32>| -> Tally {
        let mut tally = Tally {
            reached: vec![0; groups * m],
            gaps: vec![Vec::new(); m],
        };
        let mut path = [0i64; MAX_STEPS];
        for u in users {
            let r = cols.user_rows(u);
            let depth = user_path(
                &cols.ts[r.clone()],
                &cols.name[r],
                steps,
                &dup[..m],
                window_ms,
                period,
                &mut path,
            );
            if depth == 0 {
                continue;
            }
            let g = group_of(u);
            let base = g as usize * m;
            for k in 0..depth {
                tally.reached[base + k] += 1;
            }
            for k in 1..depth {
                tally.gaps[k].push((g, path[k] - path[k - 1]));
            }
        }
        tally
    };

    let tallies: Vec<Tally> = cols.per_chunk(run);

    // Merge.
    let mut reached = vec![0i64; groups * m];
    let mut gaps: Vec<Vec<(u32, i64)>> = vec![Vec::new(); m];
    for t in tallies {
        for (a, b) in reached.iter_mut().zip(&t.reached) {
            *a += b;
        }
        for (a, b) in gaps.iter_mut().zip(t.gaps) {
            if a.is_empty() {
                *a = b;
            } else {
                a.extend(b);
            }
        }
    }
    let names: Vec<String> = steps
        .iter()
        .map(|&s| cols.names()[usize::from(s)].clone())
        .collect();

    let totals: Vec<i64> = (0..m)
        .map(|k| (0..groups).map(|g| reached[g * m + k]).sum())
        .collect();
    let mut total_medians = vec![None; m];
    for k in 1..m {
        let mut all: Vec<i64> = gaps[k].iter().map(|&(_, d)| d).collect();
        total_medians[k] = median_seconds(&mut all);
    }
    let steps_out = build_steps(&names, &totals, &total_medians);

    let mut out_groups = Vec::new();
    if let Some(p) = breakdown {
        // Step times per group: sort each step's (group, ms) by group, then take runs.
        let mut medians = vec![None; groups * m];
        for (k, g_gaps) in gaps.iter_mut().enumerate().skip(1) {
            g_gaps.sort_unstable_by_key(|&(g, _)| g);
            let mut buf = Vec::new();
            for run in g_gaps.chunk_by(|a, b| a.0 == b.0) {
                buf.clear();
                buf.extend(run.iter().map(|&(_, d)| d));
                medians[run[0].0 as usize * m + k] = median_seconds(&mut buf);
            }
        }
        for g in 0..groups {
            let counts = &reached[g * m..(g + 1) * m];
            if counts[0] == 0 {
                continue;
            }
            out_groups.push(FunnelGroup {
                value: p.values.get(g).cloned(),
                steps: build_steps(&names, counts, &medians[g * m..(g + 1) * m]),
            });
        }
    }

    Ok(FunnelReport {
        period,
        window_ms,
        steps: steps_out,
        breakdown: breakdown.map(|p| p.name.clone()),
        groups: out_groups,
    })
}

/// The report rows from users per step and median seconds per step.
fn build_steps(names: &[String], users: &[i64], medians: &[Option<f64>]) -> Vec<FunnelStep> {
    (0..users.len())
        .map(|k| {
            let prev = if k == 0 { users[0] } else { users[k - 1] };
            FunnelStep {
                name: names[k].clone(),
                users: users[k],
                from_first: Ratio::of(users[k], users[0]),
                from_previous: Ratio::of(users[k], prev),
                dropped: prev - users[k],
                median_seconds_from_previous: if k == 0 { None } else { medians[k] },
            }
        })
        .collect()
}

/// The median of `ms` in seconds (mean of the two middle values for an even count);
/// `None` when empty. Reorders `ms`.
fn median_seconds(ms: &mut [i64]) -> Option<f64> {
    let n = ms.len();
    if n == 0 {
        return None;
    }
    let (_, &mut hi, _) = ms.select_nth_unstable(n / 2);
    let med = if n % 2 == 1 {
        hi as f64
    } else {
        // The largest of the lower half is the other middle value.
        let lo = ms[..n / 2].iter().copied().max().unwrap_or(hi);
        (lo as f64 + hi as f64) / 2.0
    };
    Some(med / 1000.0)
}

/// One user's depth in the funnel (0: never entered) and, in `path[..depth]`, the step
/// times of the earliest entry reaching that depth. `ts`/`name` are the user's events
/// sorted by time.
///
/// From each entry the chain is matched greedily; the pointer `next[k]` is the first
/// event of step k's name at or after the previous step's time. Since an entry's times
/// never decrease from one entry to the next, each pointer only moves forward: the
/// whole user costs O(events × steps).
fn user_path(
    ts: &[i64],
    name: &[u16],
    steps: &[u16],
    dup: &[bool],
    window: i64,
    period: Period,
    path: &mut [i64; MAX_STEPS],
) -> usize {
    let m = steps.len();
    let n = ts.len();
    let first = steps[0];
    let mut next = [0usize; MAX_STEPS];
    let mut used = [0usize; MAX_STEPS];
    let mut times = [0i64; MAX_STEPS];
    let mut best = 0usize;
    // The first row at or after `period.from` (rows are sorted by time).
    let start = ts.partition_point(|&t| t < period.from);
    for i in start..n {
        let t1 = ts[i];
        if t1 >= period.to {
            break;
        }
        if name[i] != first {
            continue;
        }
        times[0] = t1;
        used[0] = i;
        let deadline = t1.saturating_add(window);
        let mut depth = 1;
        let mut prev = t1;
        for k in 1..m {
            let want = steps[k];
            let mut j = next[k];
            while j < n && (ts[j] < prev || name[j] != want) {
                j += 1;
            }
            next[k] = j;
            if dup[k] {
                // One event fills one step: skip events this path already used.
                while j < n && (name[j] != want || ts[j] < prev || used[..k].contains(&j)) {
                    j += 1;
                }
            }
            if j >= n || ts[j] > deadline {
                break;
            }
            times[k] = ts[j];
            used[k] = j;
            prev = ts[j];
            depth = k + 1;
        }
        if depth > best {
            best = depth;
            path[..depth].copy_from_slice(&times[..depth]);
            if depth == m {
                break;
            }
        }
        // No later entry can go further than step 1 when step 2 never follows.
        if m > 1 && next[1] >= n {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columnar::EventColumnsBuilder;
    use chrono_tz::Tz;

    const ALL: Period = Period {
        from: i64::MIN,
        to: i64::MAX,
    };

    /// Columns from (user, ts, name) rows; names V, A, C, O interned first in that order.
    fn cols(rows: &[(&str, i64, &str)]) -> EventColumns {
        let mut b = EventColumnsBuilder::new();
        for n in ["V", "A", "C", "O"] {
            b.name(n).unwrap();
        }
        for (u, t, n) in rows {
            b.push(u, *t, n).unwrap();
        }
        b.build(Tz::UTC)
    }

    fn users(r: &FunnelReport) -> Vec<i64> {
        r.steps.iter().map(|s| s.users).collect()
    }

    const VACO: [u16; 4] = [0, 1, 2, 3];

    #[test]
    fn window_edge_exactly_the_window_counts() {
        let c = cols(&[
            ("a", 0, "V"),
            ("a", 50, "A"),
            ("a", 100, "C"), // exactly window after entry: counts
            ("a", 101, "O"), // one ms late
            ("b", 0, "V"),
            ("b", 101, "A"), // late
        ]);
        let r = funnel(&c, &VACO, 100, ALL, None).unwrap();
        assert_eq!(users(&r), vec![2, 1, 1, 0]);
        assert_eq!(r.steps[1].dropped, 1);
        assert_eq!(r.steps[1].from_previous, Ratio::Value(0.5));
        assert_eq!(r.steps[2].from_first, Ratio::Value(0.5));
        assert_eq!(r.steps[3].from_previous, Ratio::Value(0.0));
        assert_eq!(r.steps[0].median_seconds_from_previous, None);
        assert_eq!(r.steps[1].median_seconds_from_previous, Some(0.05));
        assert_eq!(r.steps[3].median_seconds_from_previous, None);
    }

    #[test]
    fn out_of_order_steps_do_not_count_and_equal_times_do() {
        let c = cols(&[
            // Added before viewing: no step 2 from the entry at 10.
            ("a", 5, "A"),
            ("a", 10, "V"),
            ("a", 20, "C"),
            // Same millisecond counts (t1 <= t2), whatever the row order.
            ("b", 10, "A"),
            ("b", 10, "V"),
            ("b", 10, "C"),
            // C before A: the chain needs A then C.
            ("c", 0, "V"),
            ("c", 1, "C"),
            ("c", 2, "A"),
        ]);
        let r = funnel(&c, &VACO, 1_000, ALL, None).unwrap();
        assert_eq!(users(&r), vec![3, 2, 1, 0]);
    }

    #[test]
    fn repeated_step_one_takes_the_deepest_entry_and_its_path() {
        let c = cols(&[
            ("a", 0, "V"),
            ("a", 10, "A"), // from 0: V A, then C at 200 is outside a 100 ms window
            ("a", 150, "V"),
            ("a", 160, "A"), // from 150: V A C within 100
            ("a", 200, "C"),
            // Two entries reaching the same depth: the earliest one's times.
            ("b", 0, "V"),
            ("b", 30, "A"),
            ("b", 40, "V"),
            ("b", 41, "A"),
        ]);
        let r = funnel(&c, &VACO, 100, ALL, None).unwrap();
        assert_eq!(users(&r), vec![2, 2, 1, 0]);
        // Step 2 times: a 10 (entry 150 → 160), b 30 (entry 0 → 30): median 20 ms.
        assert_eq!(r.steps[1].median_seconds_from_previous, Some(0.02));
        assert_eq!(r.steps[2].median_seconds_from_previous, Some(0.04));
    }

    #[test]
    fn a_user_who_never_starts_is_not_in_the_funnel_and_entries_follow_the_period() {
        let c = cols(&[
            ("a", 5, "A"),
            ("a", 6, "C"),
            ("b", 99, "V"),  // before the period
            ("b", 100, "A"), // step 2 inside the period, but no entry in it
            ("c", 150, "V"),
            ("c", 250, "A"), // after `to`, inside the window: counts
            ("d", 200, "V"), // `to` is exclusive
        ]);
        let p = Period { from: 100, to: 200 };
        let r = funnel(&c, &VACO, 1_000, p, None).unwrap();
        assert_eq!(users(&r), vec![1, 1, 0, 0]);
    }

    #[test]
    fn empty_period_is_not_applicable_not_nan() {
        let c = cols(&[("a", 5, "V"), ("a", 6, "A")]);
        let r = funnel(&c, &VACO, 1_000, Period { from: 10, to: 10 }, None).unwrap();
        assert_eq!(users(&r), vec![0, 0, 0, 0]);
        for s in &r.steps {
            assert_eq!(s.from_first, Ratio::NotApplicable);
            assert_eq!(s.from_previous, Ratio::NotApplicable);
            assert_eq!(s.median_seconds_from_previous, None);
        }
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"from_first\":null"), "{json}");
        assert!(!json.contains("NaN"));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median_seconds(&mut []), None);
        assert_eq!(median_seconds(&mut [3000]), Some(3.0));
        assert_eq!(median_seconds(&mut [4000, 1000, 2000, 9000]), Some(3.0));
        assert_eq!(median_seconds(&mut [5, 1, 3]), Some(0.003));
    }

    #[test]
    fn breakdown_per_group_plus_totals() {
        let mut b = EventColumnsBuilder::new();
        for n in ["V", "A", "C", "O"] {
            b.name(n).unwrap();
        }
        for (u, t, n) in [
            ("a", 0, "V"),
            ("a", 10, "A"),
            ("b", 0, "V"),
            ("c", 0, "V"),
            ("c", 30, "A"),
            ("c", 40, "C"),
            ("d", 0, "A"), // never enters
        ] {
            b.push(u, t, n).unwrap();
        }
        let (a, bb, c) = (b.user("a"), b.user("b"), b.user("c"));
        b.set_property("country", a, "CN");
        b.set_property("country", bb, "CN");
        b.set_property("country", c, "JP");
        let cols = b.build(Tz::UTC);
        let p = cols.property("country").unwrap();
        let r = funnel(&cols, &VACO, 100, ALL, Some(p)).unwrap();
        assert_eq!(users(&r), vec![3, 2, 1, 0]);
        assert_eq!(r.breakdown.as_deref(), Some("country"));
        assert_eq!(r.groups.len(), 2, "d has no value but never entered");
        assert_eq!(r.groups[0].value.as_deref(), Some("CN"));
        let cn: Vec<i64> = r.groups[0].steps.iter().map(|s| s.users).collect();
        assert_eq!(cn, vec![2, 1, 0, 0]);
        assert_eq!(r.groups[0].steps[1].median_seconds_from_previous, Some(0.01));
        assert_eq!(r.groups[1].value.as_deref(), Some("JP"));
        assert_eq!(r.groups[1].steps[1].median_seconds_from_previous, Some(0.03));
        assert_eq!(r.steps[1].median_seconds_from_previous, Some(0.02));
    }

    #[test]
    fn bad_queries_are_refused() {
        let c = cols(&[("a", 0, "V")]);
        assert_eq!(funnel(&c, &[], 1, ALL, None), Err(ColumnarError::NoSteps));
        assert_eq!(
            funnel(&c, &[0, 9], 1, ALL, None),
            Err(ColumnarError::UnknownName(9))
        );
        assert_eq!(
            funnel(&c, &[0], -1, ALL, None),
            Err(ColumnarError::NegativeWindow(-1))
        );
        let p = UserProperty {
            name: "x".into(),
            values: vec![],
            of_user: vec![],
        };
        assert!(matches!(
            funnel(&c, &[0], 1, ALL, Some(&p)),
            Err(ColumnarError::PropertyLength { .. })
        ));
    }

    /// The rules written the slow, obvious way: every entry, every step, earliest unused.
    fn reference(ts: &[i64], name: &[u16], steps: &[u16], window: i64, period: Period) -> (usize, Vec<i64>) {
        let mut best = (0, Vec::new());
        for i in 0..ts.len() {
            if name[i] != steps[0] || !period.contains(ts[i]) {
                continue;
            }
            let mut times = vec![ts[i]];
            let mut used = vec![i];
            for &s in &steps[1..] {
                let prev = *times.last().unwrap();
                let cand = (0..ts.len())
                    .filter(|&j| name[j] == s && ts[j] >= prev && !used.contains(&j))
                    .min_by_key(|&j| (ts[j], j));
                match cand {
                    Some(j) if ts[j] - ts[i] <= window => {
                        times.push(ts[j]);
                        used.push(j);
                    }
                    _ => break,
                }
            }
            if times.len() > best.0 {
                best = (times.len(), times);
            }
        }
        best
    }

    #[test]
    fn matches_the_obvious_reference_on_random_users() {
        // A small deterministic generator (no rand dependency here).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let step_sets: [&[u16]; 4] = [&[0, 1, 2, 3], &[0, 0, 1], &[1, 0, 1, 0], &[2]];
        for _ in 0..3000 {
            let n = rnd(14) as usize;
            let mut rows: Vec<(i64, u16)> = (0..n).map(|_| (rnd(40) as i64, rnd(4) as u16)).collect();
            rows.sort_unstable();
            let ts: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let nm: Vec<u16> = rows.iter().map(|r| r.1).collect();
            let window = rnd(25) as i64;
            let period = Period {
                from: rnd(10) as i64,
                to: 10 + rnd(40) as i64,
            };
            for steps in step_sets {
                let mut dup = [false; MAX_STEPS];
                for k in 1..steps.len() {
                    dup[k] = steps[..k].contains(&steps[k]);
                }
                let mut path = [0i64; MAX_STEPS];
                let d = user_path(&ts, &nm, steps, &dup[..steps.len()], window, period, &mut path);
                let (rd, rpath) = reference(&ts, &nm, steps, window, period);
                assert_eq!(d, rd, "{rows:?} {steps:?} w={window} {period:?}");
                assert_eq!(&path[..d], &rpath[..], "{rows:?} {steps:?} w={window} {period:?}");
            }
        }
    }
}
