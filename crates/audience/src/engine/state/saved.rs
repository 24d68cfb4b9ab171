//! The parts of the [`State`] that are handed over whole: a saved state's rows, columns
//! and schedule taken at load, the room given back after a bulk build, and the parts the
//! engine benchmark measures one by one.

use std::cmp::Reverse;
use std::collections::HashMap;

use super::{Adjustment, State};
use crate::engine::ids::{OrderOwners, ProfileIds};
use crate::index::Index;
use crate::packed::FactTable;
use crate::rfm::score::RfmScore;

/// A part of the state whose memory the engine benchmark reports on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Profile ids, the id → row map and user ids.
    Ids,
    /// Per-profile facts.
    Facts,
    /// Order id → owner row (and pending adjustments).
    Orders,
    /// Columns and bitmaps.
    Index,
    /// The time schedule and RFM scores.
    Schedule,
}

impl State {
    /// The parts [`State::drop_part`] can drop, with their names (benchmark reporting).
    pub const PARTS: [(&'static str, Part); 5] = [
        ("ids", Part::Ids),
        ("facts", Part::Facts),
        ("orders", Part::Orders),
        ("index", Part::Index),
        ("schedule", Part::Schedule),
    ];

    /// Frees one part (the state is unusable after; for measuring memory only).
    pub fn drop_part(&mut self, part: Part) {
        match part {
            Part::Ids => self.ids = Default::default(),
            Part::Facts => self.facts = Default::default(),
            Part::Orders => {
                self.order_owner = Default::default();
                self.pending_adjustments = Default::default();
            }
            Part::Index => self.index = Default::default(),
            Part::Schedule => {
                self.schedule = Default::default();
                self.scheduled = Default::default();
                self.rfm = Default::default();
            }
        }
    }

    /// Gives back the room kept for growth (after a rebuild or a load).
    pub fn shrink_to_fit(&mut self) {
        self.index.shrink_to_fit();
        self.facts.shrink_to_fit();
        self.ids.shrink_to_fit();
        self.rfm.shrink_to_fit();
        self.scheduled.shrink_to_fit();
    }

    /// What a saved state keeps per row besides facts and columns: RFM scores, when
    /// each row next changes by time alone, and the shop-local day of the columns.
    pub(crate) fn saved_rows(&self) -> (&[Option<RfmScore>], &[i64], i32) {
        (&self.rfm, &self.scheduled, self.day)
    }

    /// Brings a loaded state to `now` as a rebuild would find it — the rows whose instant
    /// came since it was saved, a new shop-local day, RFM — without transitions: the
    /// start's reconciliation logs what differs from the stored membership, as after a
    /// rebuild.
    pub(crate) fn catch_up_time(&mut self, now: i64) {
        let _ = self.tick(now);
        self.recent.clear();
    }

    /// Takes a saved state (see [`crate::engine::persist`]) as it was when saved: its
    /// rows, columns, memberships and schedule. What time changed since is done by the
    /// next [`State::tick`]: the rows whose instant has come, a new shop-local day, RFM.
    pub(crate) fn install_saved(&mut self, saved: Installed) {
        self.ids = saved.ids;
        self.facts = saved.facts;
        self.order_owner = saved.owners;
        self.pending_adjustments = saved.pending;
        self.index = saved.index;
        self.rfm = saved.rfm;
        self.schedule = saved
            .scheduled
            .iter()
            .enumerate()
            .filter(|(_, t)| **t != i64::MAX)
            .map(|(row, t)| Reverse((*t, row as u32)))
            .collect();
        self.scheduled = saved.scheduled;
        self.day = saved.day;
        self.rfm_dirty = saved.rfm_dirty;
    }
}

/// A saved state's parts, as [`State::install_saved`] takes them.
pub(crate) struct Installed {
    pub ids: ProfileIds,
    pub facts: FactTable,
    pub owners: OrderOwners,
    pub pending: HashMap<String, Vec<Adjustment>>,
    pub index: Index,
    pub rfm: Vec<Option<RfmScore>>,
    pub scheduled: Vec<i64>,
    pub day: i32,
    pub rfm_dirty: bool,
}
