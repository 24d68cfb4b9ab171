//! Ledger entries and what the ledger operations answer.

use flywheel_core::time::from_millis;
use flywheel_core::Timestamp;
use flywheel_store::loyalty::EntryRow;
use serde::Serialize;

use crate::Result;

pub(crate) const DAY_MS: i64 = 86_400_000;

/// What an entry does to the balance, and where it comes from (the ledger's kind and
/// source columns).
pub use flywheel_store::loyalty::{EntryKind, EntrySource};

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Entry id (increasing).
    pub id: i64,
    /// Whose ledger.
    pub user_id: String,
    /// Points: positive for `earn`, negative (or 0 for a claw-back with nothing left) otherwise.
    pub points: i64,
    /// What it does.
    pub kind: EntryKind,
    /// `order`, `checkin`, `review`, `share`, `redeem` (a spend), `exchange` (points for a
    /// coupon), `expiry`, `campaign`.
    pub source: EntrySource,
    /// Its idempotency key.
    pub source_key: String,
    /// An earn entry's lot stops being usable at this instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lot_expires_at: Option<Timestamp>,
    /// A check-in's consecutive-day count (1 after a missed day).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streak: Option<i64>,
    /// A claw-back's points that could not be taken back (already spent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortfall: Option<i64>,
    /// When written.
    pub at: Timestamp,
}

impl Entry {
    pub(crate) fn of(r: EntryRow) -> Result<Entry> {
        Ok(Entry {
            kind: r.kind,
            id: r.id,
            user_id: r.user_id,
            points: r.delta,
            source: r.source,
            source_key: r.source_key,
            lot_expires_at: r.lot_expires_at.map(from_millis),
            streak: r.streak,
            shortfall: r.shortfall,
            at: from_millis(r.at),
        })
    }
}

/// The result of a ledger operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Posted {
    /// The entry written (or first written, on a repeat); `None` when the operation was
    /// worth 0 points (an order under 1 元, a claw-back of an order that earned nothing).
    pub entry: Option<Entry>,
    /// The user's balance afterwards.
    pub balance: i64,
    /// Whether this was a repeat of an earlier operation (nothing new written).
    pub repeated: bool,
}

/// An earn lot with points left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lot {
    /// The earn entry that opened it.
    pub entry_id: i64,
    /// Its source.
    pub source: EntrySource,
    /// Points earned.
    pub points: i64,
    /// Points left.
    pub left: i64,
    /// Unusable from this instant.
    pub expires_at: Timestamp,
}

/// A user's points: balance, usable lots and a page of entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// The user.
    pub user_id: String,
    /// Usable points now (lots past their expiry count 0 even before their `expire`
    /// entry is written).
    pub balance: i64,
    /// Usable lots, first to expire first.
    pub lots: Vec<Lot>,
    /// Entries, newest first.
    pub entries: Vec<Entry>,
    /// Pass back to continue the entries; absent on the last page.
    pub next_cursor: Option<String>,
}

pub(crate) fn earn_row(
    user: &str,
    source: EntrySource,
    key: String,
    points: i64,
    expires: i64,
    streak: Option<i64>,
    now: i64,
) -> EntryRow {
    EntryRow {
        lot_expires_at: Some(expires),
        streak,
        ..debit_row(user, EntryKind::Earn, source, key, points, None, now)
    }
}

pub(crate) fn debit_row(
    user: &str,
    kind: EntryKind,
    source: EntrySource,
    key: String,
    delta: i64,
    shortfall: Option<i64>,
    now: i64,
) -> EntryRow {
    EntryRow {
        id: 0,
        user_id: user.to_owned(),
        delta,
        kind,
        source,
        source_key: key,
        lot_expires_at: None,
        streak: None,
        shortfall,
        at: now,
    }
}
