//! Spend entered per channel (table `channel_costs`, owned by analytics): ad spend,
//! channel partnerships, once or over a period of days; deleting an entry leaves an
//! audit entry.

use crate::conn::Sql;
use flywheel_core::time::from_millis;
use flywheel_core::Fen;
use serde::Serialize;

use crate::analytics::audit::{self, NewAuditEntry};
use crate::conn::{Conn, Param, Row};
use crate::Result;

/// Spend entered on a channel (R11.1: ad spend, channel partnerships …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spend {
    /// The channel (`douyin`, `baidu`, …).
    pub channel: String,
    /// The campaign it paid for, if one.
    pub campaign: Option<String>,
    /// When it was spent (ms); for a period, the start of its first shop-local day.
    pub at: i64,
    /// For a spend over a period: the start of the shop-local day after its last day
    /// (exclusive end, ms); the reports spread the amount evenly over the days. `None`:
    /// a one-off spend at `at`.
    pub until: Option<i64>,
    /// Amount, fen.
    pub amount: i64,
    /// A note.
    pub note: Option<String>,
}

/// A stored spend entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpendEntry {
    /// Its id.
    pub id: i64,
    /// The spend.
    #[serde(flatten)]
    pub spend: Spend,
    /// When it was entered (ms).
    pub created_at: i64,
}

const COLUMNS: &str = "id, channel, campaign, spent_at, amount, note, created_at, spent_until";

/// Entries overlapping `[$1, $2)`: a one-off spend dated in it, or a period that
/// intersects it. (`$1` comes first: SQLite numbers `$N` parameters in order of appearance.)
pub(crate) const OVERLAPS: &str = "(spent_until IS NULL AND spent_at >= $1 OR spent_until > $1) \
     AND spent_at < $2";

fn row_of(r: &Row) -> Result<SpendEntry> {
    Ok(SpendEntry {
        id: r.i64(0)?,
        spend: Spend {
            channel: r.text(1)?,
            campaign: r.opt_text(2)?,
            at: r.i64(3)?,
            amount: r.i64(4)?,
            note: r.opt_text(5)?,
            until: r.opt_i64(7)?,
        },
        created_at: r.i64(6)?,
    })
}

/// Stores one spend entry, written at `now`; returns its id.
pub fn add(conn: &mut dyn Conn, s: &Spend, now: i64) -> Result<i64> {
    conn.query(
        "INSERT INTO channel_costs (channel, campaign, spent_at, amount, note, created_at, spent_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[
            Param::Text(&s.channel),
            Param::OptText(s.campaign.as_deref()),
            Param::I64(s.at),
            Param::I64(s.amount),
            Param::OptText(s.note.as_deref()),
            Param::I64(now),
            Param::OptI64(s.until),
        ],
    )?
    .first()
    .map(|r| r.i64(0))
    .unwrap_or(Ok(0))
}

/// The spend entries dated in `[from, to)` or covering a period that overlaps it, oldest
/// first.
pub fn between(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<SpendEntry>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM channel_costs WHERE {OVERLAPS} ORDER BY spent_at, id"),
        &[Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(row_of)
    .collect()
}

/// Deletes spend entry `id` with an audit entry (actor `admin`, action `spend_deleted`,
/// the entry's amount, date and campaign as detail), at `now`; returns what was deleted,
/// `None` when there was no such entry. Call it inside one write transaction.
pub fn delete(conn: &mut dyn Conn, id: i64, now: i64) -> Result<Option<SpendEntry>> {
    let Some(entry) = conn
        .query(
            &format!("SELECT {COLUMNS} FROM channel_costs WHERE id = $1"),
            &[Param::I64(id)],
        )?
        .first()
        .map(row_of)
        .transpose()?
    else {
        return Ok(None);
    };
    conn.execute("DELETE FROM channel_costs WHERE id = $1", &[Param::I64(id)])?;
    audit::append(
        conn,
        &NewAuditEntry {
            at: now,
            actor: "admin",
            action: "spend_deleted",
            subject: &entry.spend.channel,
            detail: &format!(
                "entry {id}: {} 元 on {}{} (campaign {})",
                Fen(entry.spend.amount).to_yuan_string(),
                from_millis(entry.spend.at).to_rfc3339(),
                entry
                    .spend
                    .until
                    .map(|u| format!(" until {}", from_millis(u).to_rfc3339()))
                    .unwrap_or_default(),
                entry.spend.campaign.as_deref().unwrap_or("-")
            ),
        },
    )?;
    Ok(Some(entry))
}
