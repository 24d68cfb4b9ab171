//! The engine's state: one dense row per profile with its [`Facts`], the [`Index`]
//! over their computed traits, the tag/segment [`Registry`], and the schedule of
//! when each row next changes by time alone.
//!
//! Everything here is synchronous and single-writer (the engine holds it behind a
//! lock). Arriving data touches a few rows: their columns are recomputed, their
//! memberships re-evaluated row by row, and each change becomes a [`Transition`].
//! Time is handled by the schedule: every row knows the first instant at which one of
//! its windowed values or `within`/`before` conditions flips
//! ([`State::next_change`]), so a tick only revisits the rows whose instant has come;
//! shop-local midnight (day counts, age) and a new RFM scoring revisit every row.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::ops::Range;

use flywheel_store::{ApplyOutcome, NewEvent};
use roaring::RoaringBitmap;

use crate::config::AudienceConfig;
use crate::counter::CounterId;
use crate::definitions::Transition;
use crate::engine::defs::{DefKind, Entry, Registry};
use crate::engine::fold::{adjustment_parts, fold_event, order_fact};
use crate::engine::ids::{OrderOwners, ProfileIds};
use crate::facts::Facts;
use crate::index::{EvalCtx, Index};
use crate::packed::FactTable;
use crate::rfm::score::RfmScore;
use crate::traits::{compute, ComputeCtx, Measure};
use crate::window::{days, Windowing};
use flywheel_store::transitions::Cause;

mod saved;

pub(crate) use saved::Installed;
pub use saved::Part;

/// RFM scores are relative to every buyer, so a change of orders re-scores everyone; the
/// writer spends at most 1 / RESCORE_SHARE of its time on it (a small shop re-scores on the
/// next tick, a million buyers every few seconds).
const RESCORE_SHARE: u32 = 10;

/// Transitions kept for `GET /api/v1/audience/transitions`.
const RECENT_TRANSITIONS: usize = 10_000;

/// A pending refund/cancel whose order has not arrived: `(messageId, cancel, amount)`.
type Adjustment = (String, bool, Option<i64>);

/// The engine state.
#[derive(Debug)]
pub struct State {
    /// Settings.
    pub config: AudienceConfig,
    /// Window arithmetic in the shop timezone.
    pub windowing: Windowing,
    /// Row ↔ profile id (empty for a merged-away row), and each row's first user id.
    pub ids: ProfileIds,
    /// Row → facts, encoded (see [`crate::packed`]).
    pub facts: FactTable,
    /// The columns and bitmaps.
    pub index: Index,
    /// Tags and segments.
    pub registry: Registry,
    /// Row → RFM scores (buyers only).
    pub rfm: Vec<Option<RfmScore>>,
    /// Orders changed since the last RFM scoring.
    pub rfm_dirty: bool,
    /// Every event name received (`event("…")` refuses others but the standard ones).
    pub events_seen: HashSet<String>,
    /// Profile traits kept in facts: those the catalogue reads and the `traits.NAME` of
    /// rules (grows as rules name new ones; see [`State::want_traits`]).
    pub trait_keys: HashSet<String>,
    /// Column keys and windows of the `within`/`before` conditions in use.
    time_keys: Vec<(String, crate::dsl::ast::Duration)>,
    /// Maintained measures with their column keys.
    measures: Vec<(Measure, String)>,
    order_owner: OrderOwners,
    pub(crate) pending_adjustments: HashMap<String, Vec<Adjustment>>,
    schedule: BinaryHeap<Reverse<(i64, u32)>>,
    scheduled: Vec<i64>,
    day: i32,
    /// When the last RFM scoring ended and how long it took.
    last_rescore: Option<(std::time::Instant, std::time::Duration)>,
    seq: u64,
    recent: VecDeque<Transition>,
    /// Message ids already counted by a new counter's backfill, with when it ran.
    backfilled: HashMap<CounterId, (i64, HashSet<String>)>,
    /// The position in the shared event log the state stands at: the highest event
    /// `seq` folded in (see [`flywheel_store::batch_log`]).
    pub position: i64,
}

impl State {
    /// An empty state at `now`.
    pub fn new(config: AudienceConfig, now: i64) -> State {
        let windowing = Windowing {
            mode: config.window_mode,
            tz: config.timezone,
        };
        let day = windowing.local_day(now);
        let mut s = State {
            config,
            windowing,
            ids: ProfileIds::default(),
            facts: FactTable::default(),
            index: Index::new(),
            registry: Registry::default(),
            rfm: Vec::new(),
            rfm_dirty: true,
            events_seen: HashSet::new(),
            trait_keys: crate::traits::catalogue_trait_keys().map(str::to_owned).collect(),
            time_keys: Vec::new(),
            measures: Vec::new(),
            order_owner: OrderOwners::default(),
            pending_adjustments: HashMap::new(),
            schedule: BinaryHeap::new(),
            scheduled: Vec::new(),
            day,
            last_rescore: None,
            seq: 0,
            recent: VecDeque::new(),
            backfilled: HashMap::new(),
            position: 0,
        };
        s.refresh_needs();
        s
    }

    /// Evaluation context at `now`.
    pub fn eval_ctx(&self, now: i64) -> EvalCtx<'_> {
        EvalCtx {
            now,
            windowing: &self.windowing,
        }
    }

    /// The row of profile `id`, allocated when new.
    pub fn row_of(&mut self, id: &str) -> u32 {
        if let Some(r) = self.ids.row(id) {
            return r;
        }
        let row = self.index.grow(1);
        self.ids.push(id);
        self.facts.push_empty();
        self.rfm.push(None);
        self.scheduled.push(i64::MAX);
        row
    }

    /// Re-derives which columns are maintained after the registry changed; builds new ones.
    pub fn refresh_needs(&mut self) {
        let needs = self.registry.needs();
        self.want_traits(needs.measures.iter().filter_map(raw_trait_key).map(str::to_owned));
        self.time_keys = needs.time_windows.iter().map(|(m, d)| (m.key(), *d)).collect();
        let mut measures: BTreeSet<Measure> = crate::index::base_measures().into_iter().collect();
        measures.extend(needs.measures);
        self.measures = measures
            .into_iter()
            .filter(|m| !m.is_rfm())
            .map(|m| {
                let key = m.key();
                (m, key)
            })
            .collect();
    }

    /// Maintains these measures too (an ad-hoc expression's raw traits, until the next
    /// definition change); true when one was not maintained before.
    pub fn want_measures(&mut self, wanted: impl IntoIterator<Item = Measure>) -> bool {
        let mut added = false;
        for m in wanted {
            if !self.measures.iter().any(|(have, _)| *have == m) {
                let key = m.key();
                self.measures.push((m, key));
                added = true;
            }
        }
        added
    }

    /// Keeps these profile traits from now on; returns those not kept before.
    pub fn want_traits(&mut self, keys: impl IntoIterator<Item = String>) -> Vec<String> {
        keys.into_iter()
            .filter(|k| self.trait_keys.insert(k.clone()))
            .collect()
    }

    /// Recomputes every maintained column of every row (start-up, new columns) at `now`.
    pub fn refresh_all(&mut self, now: i64) {
        for row in 0..self.index.rows() {
            if self.index.alive().contains(row) {
                self.refresh_row(row, now);
            }
        }
        self.day = self.windowing.local_day(now);
    }

    /// Recomputes the columns of one row at `now` and schedules its next change.
    pub fn refresh_row(&mut self, row: u32, now: i64) {
        if row as usize >= self.facts.len() {
            return;
        }
        let f = self.facts.get(row);
        self.refresh_row_with(row, f, now);
    }

    /// [`State::refresh_row`] of `row` whose stored facts are `f` (already decoded).
    fn refresh_row_with(&mut self, row: u32, mut f: Facts, now: i64) {
        if !f.counters.is_empty() {
            let before = f.counters.clone();
            for c in f.counters.values_mut() {
                c.prune(&self.windowing, now);
            }
            if f.counters != before {
                self.facts.put(row, &f);
            }
        }
        let f = &f;
        let ctx = ComputeCtx {
            now,
            windowing: &self.windowing,
            config: &self.config,
        };
        for (m, key) in &self.measures {
            self.index.set_value(key, row, &compute(m, f, &ctx));
        }
        for (id, spec) in self.registry.counters() {
            let n = f.counters.get(id).map_or(0, |c| c.count(&self.windowing, now));
            self.index
                .set_value(&spec.key(), row, &crate::traits::TraitValue::Num(Some(n)));
        }
        if let Some(at) = self.next_change_of(row, f, now) {
            if at < self.scheduled[row as usize] || self.scheduled[row as usize] <= now {
                self.scheduled[row as usize] = at;
                self.schedule.push(Reverse((at, row)));
            }
        }
    }

    /// The first instant after `now` at which a value or condition of `row` flips by time alone.
    pub fn next_change(&self, row: u32, now: i64) -> Option<i64> {
        if row as usize >= self.facts.len() {
            return None;
        }
        self.next_change_of(row, &self.facts.get(row), now)
    }

    /// [`State::next_change`] of `row` whose facts are `f`.
    fn next_change_of(&self, row: u32, f: &Facts, now: i64) -> Option<i64> {
        let lc = &self.config.lifecycle;
        let mut windows: Vec<_> = self.measures.iter().filter_map(|(m, _)| m.window()).collect();
        windows.push(days(lc.high_value_days));
        windows.sort_unstable_by_key(|d| (d.amount, d.unit as u8));
        windows.dedup();
        let mut next = f.next_change(&self.windowing, now, &windows);
        let mut consider = |t: i64| {
            if t > now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if let Some(t) = f.last_active {
            consider(self.windowing.leaves_at(t, days(lc.dormant_after_days)));
            consider(self.windowing.leaves_at(t, days(lc.lost_after_days)));
        }
        for (key, d) in &self.time_keys {
            if let Some(v) = self.index.num_column(key).and_then(|c| c.get(row)) {
                consider(self.windowing.leaves_at(v, *d));
            }
        }
        next
    }

    /// Folds the committed events `events[range]` (with `outcome`) in; returns the transitions.
    pub fn apply_batch(
        &mut self,
        events: &[NewEvent],
        range: Range<usize>,
        outcome: &ApplyOutcome,
        now: i64,
    ) -> Vec<Transition> {
        let mut touched: BTreeSet<u32> = BTreeSet::new();
        let mut out = Vec::new();
        for (loser, winner) in &outcome.merges {
            out.extend(self.merged_away(&loser.0, now));
            if let Some((w, gained)) = self.merge(&loser.0, &winner.0) {
                touched.insert(w);
                for tag in gained {
                    out.push(self.transition((DefKind::Tag, &tag), w, true, now, Cause::Merge));
                }
            }
        }
        let expire_before = now - 60_000;
        self.backfilled.retain(|_, (at, _)| *at > expire_before);
        // The facts of the rows this batch folds into, decoded once and stored at the end
        // (or before an order or a refund, which read and write the stored facts).
        let mut open: HashMap<u32, Facts> = HashMap::new();
        for (i, e) in events.get(range).unwrap_or_default().iter().enumerate() {
            let Some(Some(pid)) = outcome.profiles.get(i) else {
                continue;
            };
            if !outcome.stored.get(i).copied().unwrap_or(false) {
                continue;
            }
            let row = self.row_of(&pid.0);
            touched.insert(row);
            let ev = e.event();
            if let Some(name) = ev.event.as_deref().or(ev.name.as_deref()) {
                if !self.events_seen.contains(name) {
                    self.events_seen.insert(name.to_owned());
                }
            }
            if self.ids.user_id(row).is_none() && ev.user_id.is_some() {
                self.ids.set_user_id(row, ev.user_id.as_deref());
            }
            let counters: Vec<_> = if self.backfilled.is_empty() {
                self.registry.counters().to_vec()
            } else {
                self.registry
                    .counters()
                    .iter()
                    .filter(|(id, _)| {
                        !self
                            .backfilled
                            .get(id)
                            .is_some_and(|(_, s)| s.contains(&ev.message_id))
                    })
                    .cloned()
                    .collect()
            };
            let f = match open.entry(row) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(self.facts.get(row)),
            };
            fold_event(
                f,
                ev,
                e.is_system_write(),
                &self.config,
                &counters,
                &self.trait_keys,
            );
            if e.order.is_some() || e.adjustment.is_some() {
                for (r, f) in open.drain() {
                    self.facts.put(r, &f);
                }
            }
            if let Some(o) = &e.order {
                self.add_order(row, order_fact(o));
            }
            if let Some(a) = &e.adjustment {
                if let Some(owner) = self.adjust(&a.order_id, adjustment_parts(a)) {
                    touched.insert(owner);
                }
            }
        }
        for (r, f) in &open {
            self.facts.put(*r, f);
        }
        let rows: Vec<u32> = touched.into_iter().collect();
        for &r in &rows {
            match open.remove(&r) {
                Some(f) => self.refresh_row_with(r, f, now),
                None => self.refresh_row(r, now),
            }
        }
        out.extend(self.evaluate_rows(&rows, now, Cause::Event));
        out
    }

    /// Adds an order to `row` (first completion of an order id wins).
    pub fn add_order(&mut self, row: u32, mut fact: crate::facts::OrderFact) {
        if self.owner_of(&fact.order_id).is_some() {
            return;
        }
        if fact.total == 0 && !self.config.count_zero_value_orders {
            // `[audience] count_zero_value_orders = false`: a 0 元 order is no purchase.
            fact.cancelled = true;
        }
        let id = fact.order_id.clone();
        let pending = self.pending_adjustments.remove(&id).unwrap_or_default();
        let added = self.facts.edit(row, |f| {
            let added = f.add_order(fact);
            if added {
                for (m, cancel, amount) in pending {
                    if let Some(o) = f.order_mut(&id) {
                        o.adjust(&m, cancel, amount);
                    }
                }
            }
            added
        });
        if added {
            self.order_owner.insert(&id, row);
            self.rfm_dirty = true;
        }
    }

    /// The row that placed order `order_id`.
    fn owner_of(&self, order_id: &str) -> Option<u32> {
        let facts = &self.facts;
        self.order_owner.get(order_id, |r| {
            facts.get(r).orders.iter().any(|o| o.order_id == order_id)
        })
    }

    /// Applies a refund or cancellation; returns the owning row when the order is known.
    pub fn adjust(&mut self, order_id: &str, (m, cancel, amount): Adjustment) -> Option<u32> {
        let Some(row) = self.owner_of(order_id) else {
            self.pending_adjustments
                .entry(order_id.to_owned())
                .or_default()
                .push((m, cancel, amount));
            return None;
        };
        let found = self.facts.edit(row, |f| {
            f.order_mut(order_id)
                .map(|o| o.adjust(&m, cancel, amount))
                .is_some()
        });
        if found {
            self.rfm_dirty = true;
        }
        Some(row)
    }

    /// The exits of a profile about to be merged into another one: it leaves every segment
    /// and tag it is in (the one it merges into gains them by its own evaluation).
    fn merged_away(&mut self, loser: &str, now: i64) -> Vec<Transition> {
        let Some(lrow) = self.ids.row(loser) else {
            return Vec::new();
        };
        let was_in: Vec<(DefKind, String)> = self
            .registry
            .entries()
            .iter()
            .filter(|e| self.members(e.kind, &e.name).is_some_and(|b| b.contains(lrow)))
            .map(|e| (e.kind, e.name.clone()))
            .collect();
        was_in
            .into_iter()
            .map(|(kind, name)| self.transition((kind, &name), lrow, false, now, Cause::Merge))
            .collect()
    }

    /// Moves the facts and manual tags of `loser` into `winner` (as the store does);
    /// returns the winner's row and the manual tags it gained.
    fn merge(&mut self, loser: &str, winner: &str) -> Option<(u32, Vec<String>)> {
        let lrow = self.ids.remove(loser)?;
        let manual: Vec<String> = self
            .registry
            .entries()
            .iter()
            .filter(|e| e.kind == DefKind::Tag && e.plan.is_none())
            .filter(|e| self.index.tag(&e.name).is_some_and(|b| b.contains(lrow)))
            .map(|e| e.name.clone())
            .collect();
        let taken = self.facts.take(lrow);
        self.index.kill(lrow);
        self.rfm[lrow as usize] = None;
        let wrow = self.row_of(winner);
        for o in &taken.orders {
            self.order_owner.moved(&o.order_id, lrow, wrow);
        }
        if self.ids.user_id(wrow).is_none() {
            let user = self.ids.user_id(lrow).map(str::to_owned);
            self.ids.set_user_id(wrow, user.as_deref());
        }
        self.ids.set_user_id(lrow, None);
        self.facts.edit(wrow, |f| f.merge(taken));
        self.rfm_dirty = true;
        let gained = manual
            .into_iter()
            .filter(|t| self.index.tag_mut(t).insert(wrow))
            .collect();
        Some((wrow, gained))
    }

    /// Records that a backfill of counter `id` counted these messages (so their live copies are not counted twice).
    pub fn note_backfill(&mut self, id: CounterId, at: i64, messages: HashSet<String>) {
        self.backfilled.insert(id, (at, messages));
    }

    fn members(&self, kind: DefKind, name: &str) -> Option<&RoaringBitmap> {
        match kind {
            DefKind::Tag => self.index.tag(name),
            DefKind::Segment => self.index.segment(name),
        }
    }

    /// The profile ids of a definition's members.
    pub fn member_ids(&self, kind: DefKind, name: &str) -> Vec<String> {
        self.members(kind, name)
            .map(|b| {
                b.iter()
                    .map(|row| self.ids.id(row))
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Replaces the members of a definition.
    pub fn put_members(&mut self, kind: DefKind, name: &str, members: RoaringBitmap) {
        match kind {
            DefKind::Tag => self.index.put_tag(name, members),
            DefKind::Segment => self.index.put_segment(name, members),
        }
    }

    /// Records a membership change (kept for the transitions endpoint) and returns it.
    pub fn transition(
        &mut self,
        (kind, name): (DefKind, &str),
        row: u32,
        entered: bool,
        now: i64,
        cause: Cause,
    ) -> Transition {
        self.seq += 1;
        let t = Transition {
            seq: self.seq,
            kind: kind.as_str(),
            name: name.to_owned(),
            profile_id: self.ids.id(row).to_owned(),
            entered,
            at: now,
            cause,
        };
        if self.recent.len() == RECENT_TRANSITIONS {
            self.recent.pop_front();
        }
        self.recent.push_back(t.clone());
        t
    }

    /// Puts `row` on (`on`) or takes it off the manual tag `tag`; the `manual`
    /// transition when that changed its membership.
    pub fn set_manual_tag(&mut self, tag: &str, row: u32, on: bool, now: i64) -> Option<Transition> {
        let bm = self.index.tag_mut(tag);
        let changed = if on { bm.insert(row) } else { bm.remove(row) };
        changed.then(|| self.transition((DefKind::Tag, tag), row, on, now, Cause::Manual))
    }

    /// Applies membership flips `(row, entered)` of one definition and records them.
    fn flip(
        &mut self,
        kind: DefKind,
        name: &str,
        flips: &[(u32, bool)],
        now: i64,
        cause: Cause,
    ) -> Vec<Transition> {
        if flips.is_empty() {
            return Vec::new();
        }
        let mut members = self.members(kind, name).cloned().unwrap_or_default();
        for &(row, entered) in flips {
            if entered {
                members.insert(row);
            } else {
                members.remove(row);
            }
        }
        self.put_members(kind, name, members);
        flips
            .iter()
            .map(|&(row, entered)| self.transition((kind, name), row, entered, now, cause))
            .collect()
    }

    /// Re-evaluates every rule on `rows` (in dependency order).
    pub fn evaluate_rows(&mut self, rows: &[u32], now: i64, cause: Cause) -> Vec<Transition> {
        let mut out = Vec::new();
        for i in 0..self.registry.entries().len() {
            let e = &self.registry.entries()[i];
            let Some(plan) = &e.plan else { continue };
            let ctx = self.eval_ctx(now);
            let members = self.members(e.kind, &e.name);
            let flips: Vec<(u32, bool)> = rows
                .iter()
                .filter_map(|&row| {
                    let now_in = self.index.row_matches(plan, row, &ctx);
                    (now_in != members.is_some_and(|m| m.contains(row))).then_some((row, now_in))
                })
                .collect();
            let (kind, name) = (e.kind, e.name.clone());
            out.extend(self.flip(kind, &name, &flips, now, cause));
        }
        out
    }

    /// Re-evaluates whole rules that `pick` selects (after every row changed); with
    /// `announce` false the new members are taken silently (a new definition).
    pub fn evaluate_all(
        &mut self,
        now: i64,
        pick: impl Fn(&Entry) -> bool,
        announce: bool,
        cause: Cause,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        for i in 0..self.registry.entries().len() {
            let e = &self.registry.entries()[i];
            let Some(plan) = e.plan.as_ref().filter(|_| pick(e)) else {
                continue;
            };
            let new = self.index.eval(plan, &self.eval_ctx(now));
            let (kind, name) = (e.kind, e.name.clone());
            if announce {
                let old = self.members(kind, &name).cloned().unwrap_or_default();
                for row in &new - &old {
                    out.push(self.transition((kind, &name), row, true, now, cause));
                }
                for row in &old - &new {
                    out.push(self.transition((kind, &name), row, false, now, cause));
                }
            }
            self.put_members(kind, &name, new);
        }
        out
    }

    /// Moves time to `now`: rows whose windows rolled over, shop-local midnight, RFM
    /// re-scoring; returns the transitions time alone caused.
    pub fn tick(&mut self, now: i64) -> Vec<Transition> {
        if self.index.bucket_asked() {
            tracing::debug!("audience column bucketed for the queries that read it");
        }
        let mut out = Vec::new();
        let today = self.windowing.local_day(now);
        if today != self.day {
            self.refresh_all(now);
            out.extend(self.evaluate_all(now, |_| true, true, Cause::Time));
        }
        let mut due = BTreeSet::new();
        while let Some(Reverse((at, row))) = self.schedule.peek().copied() {
            if at > now {
                break;
            }
            self.schedule.pop();
            if self.scheduled.get(row as usize) == Some(&at) {
                self.scheduled[row as usize] = i64::MAX;
                due.insert(row);
            }
        }
        let due: Vec<u32> = due
            .into_iter()
            .filter(|r| self.index.alive().contains(*r))
            .collect();
        for &r in &due {
            self.refresh_row(r, now);
        }
        out.extend(self.evaluate_rows(&due, now, Cause::Time));
        let due = self
            .last_rescore
            .is_none_or(|(at, took)| at.elapsed() >= took * RESCORE_SHARE);
        if self.rfm_dirty && due {
            let started = std::time::Instant::now();
            crate::engine::rfm::rescore(self, now);
            self.last_rescore = Some((std::time::Instant::now(), started.elapsed()));
            if self.registry.entries().iter().any(uses_rfm) {
                out.extend(self.evaluate_all(now, |_| true, true, Cause::Time));
            }
        }
        out
    }

    /// Transitions after `seq` (at most `limit`).
    pub fn transitions_after(&self, seq: u64, limit: usize) -> Vec<Transition> {
        self.recent
            .iter()
            .filter(|t| t.seq > seq)
            .take(limit)
            .cloned()
            .collect()
    }
}

/// Whether a rule reads an RFM measure (re-evaluated in full after re-scoring).
fn uses_rfm(e: &Entry) -> bool {
    e.plan.as_ref().is_some_and(|p| {
        p.leaves().iter().any(|l| match l {
            crate::plan::Leaf::Num { measure, .. } | crate::plan::Leaf::Cat { measure, .. } => {
                measure.is_rfm()
            }
            _ => false,
        })
    })
}

/// The profile trait a measure reads directly (`traits.NAME`).
pub fn raw_trait_key(m: &Measure) -> Option<&str> {
    match m {
        Measure::Raw(k) | Measure::RawNumber(k) => Some(k),
        _ => None,
    }
}

/// The measures (columns) a rule reads, RFM scores aside (the engine keeps those).
pub fn plan_measures(plan: &crate::plan::Plan) -> Vec<Measure> {
    use crate::plan::Leaf;
    plan.leaves()
        .into_iter()
        .filter_map(|l| match l {
            Leaf::Num { measure, .. }
            | Leaf::Cat { measure, .. }
            | Leaf::IsSet { measure, .. }
            | Leaf::Contains { measure, .. } => (!measure.is_rfm()).then(|| measure.clone()),
            _ => None,
        })
        .collect()
}

/// The raw-trait measures (`traits.NAME`) a rule reads.
pub fn plan_raw_measures(plan: &crate::plan::Plan) -> Vec<Measure> {
    plan_measures(plan)
        .into_iter()
        .filter(|m| raw_trait_key(m).is_some())
        .collect()
}

/// The `traits.NAME` keys a rule reads.
pub fn plan_trait_keys(plan: &crate::plan::Plan) -> Vec<String> {
    plan_raw_measures(plan)
        .iter()
        .filter_map(raw_trait_key)
        .map(str::to_owned)
        .collect()
}
