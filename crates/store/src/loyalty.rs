//! What the loyalty programme reads and writes (R7.1–R7.6): the append-only points
//! ledger (`loyalty_entries`, one row per credit or debit, unique per source key), the
//! lot uses that say which earn lots each debit consumed (`loyalty_lot_uses`), birthday
//! perks granted once per user per year (`loyalty_birthdays`) and members' tiers
//! (`loyalty_tiers`); what a member spent and did is read by [`crate::member_activity`].
//! Balances and lot remainders are always derived from these rows, never stored. Callers
//! run these inside one write transaction ([`crate::Store::write_with`]). Parameters are
//! named in ascending order of first use (SQLite).

use crate::column_enum::column_enum;
use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

column_enum! {
    /// What a ledger entry does to the balance (`loyalty_entries.kind`).
    pub enum EntryKind("ledger entry kind") {
        /// A credit; opens a lot.
        Earn = "earn",
        /// Points spent (redeemed).
        Spend = "spend",
        /// What was left of a lot when it expired.
        Expire = "expire",
        /// Points taken back from a refunded or cancelled order.
        Clawback = "clawback",
    }
}

column_enum! {
    /// Where a ledger entry comes from (`loyalty_entries.source`).
    pub enum EntrySource("ledger entry source") {
        /// A paid order (earn) or its refund (claw-back).
        Order = "order",
        /// A daily check-in.
        Checkin = "checkin",
        /// A product review.
        Review = "review",
        /// A share.
        Share = "share",
        /// Points spent by the member.
        Redeem = "redeem",
        /// Points exchanged for a coupon.
        Exchange = "exchange",
        /// What was left of a lot when it expired.
        Expiry = "expiry",
        /// A campaign's award (a journey's points step).
        Campaign = "campaign",
    }
}

/// A stored ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    /// Entry id (increasing in insertion order).
    pub id: i64,
    /// Whose ledger.
    pub user_id: String,
    /// Points: positive for `earn`, negative for `spend`, `expire`, `clawback`.
    pub delta: i64,
    /// What it does to the balance.
    pub kind: EntryKind,
    /// Where it comes from.
    pub source: EntrySource,
    /// Idempotency key, unique over the whole ledger.
    pub source_key: String,
    /// An earn entry's lot expires at (ms, exclusive).
    pub lot_expires_at: Option<i64>,
    /// A check-in's consecutive-day count.
    pub streak: Option<i64>,
    /// A claw-back's points that could not be taken back.
    pub shortfall: Option<i64>,
    /// When written (ms).
    pub at: i64,
}

const COLUMNS: &str = "id, user_id, delta, kind, source, source_key, lot_expires_at, streak, shortfall, at";

fn entry_of(r: &Row) -> Result<EntryRow> {
    Ok(EntryRow {
        id: r.i64(0)?,
        user_id: r.text(1)?,
        delta: r.i64(2)?,
        kind: r.text(3)?.parse()?,
        source: r.text(4)?.parse()?,
        source_key: r.text(5)?,
        lot_expires_at: r.opt_i64(6)?,
        streak: r.opt_i64(7)?,
        shortfall: r.opt_i64(8)?,
        at: r.i64(9)?,
    })
}

/// An earn lot with what is left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LotRow {
    /// The earn entry's id.
    pub id: i64,
    /// Whose lot.
    pub user_id: String,
    /// The earn entry's source.
    pub source: EntrySource,
    /// Points earned.
    pub points: i64,
    /// Points not yet consumed by a debit.
    pub left: i64,
    /// Expires at (ms, exclusive).
    pub expires_at: i64,
}

const LOTS: &str = "SELECT e.id, e.user_id, e.source, e.delta, \
     e.delta - CAST(COALESCE(SUM(u.points), 0) AS BIGINT), COALESCE(e.lot_expires_at, 0) \
     FROM loyalty_entries e LEFT JOIN loyalty_lot_uses u ON u.lot_id = e.id";
const LOTS_TAIL: &str = "GROUP BY e.id, e.user_id, e.source, e.delta, e.lot_expires_at \
     HAVING e.delta - CAST(COALESCE(SUM(u.points), 0) AS BIGINT) > 0";

fn lot_of(r: &Row) -> Result<LotRow> {
    Ok(LotRow {
        id: r.i64(0)?,
        user_id: r.text(1)?,
        source: r.text(2)?.parse()?,
        points: r.i64(3)?,
        left: r.i64(4)?,
        expires_at: r.i64(5)?,
    })
}

/// Appends an entry (its `id` is ignored); `None` when its source key is taken.
pub fn insert_entry(conn: &mut dyn Conn, e: &EntryRow) -> Result<Option<i64>> {
    conn.query(
        "INSERT INTO loyalty_entries (user_id, delta, kind, source, source_key, lot_expires_at, \
         streak, shortfall, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (source_key) DO NOTHING RETURNING id",
        &[
            Param::Text(&e.user_id),
            Param::I64(e.delta),
            Param::Text(e.kind.as_str()),
            Param::Text(e.source.as_str()),
            Param::Text(&e.source_key),
            Param::OptI64(e.lot_expires_at),
            Param::OptI64(e.streak),
            Param::OptI64(e.shortfall),
            Param::I64(e.at),
        ],
    )?
    .first()
    .map(|r| r.i64(0))
    .transpose()
}

/// The entry written under a source key.
pub fn entry_by_key(conn: &mut dyn Conn, source_key: &str) -> Result<Option<EntryRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM loyalty_entries WHERE source_key = $1"),
        &[Param::Text(source_key)],
    )?
    .first()
    .map(entry_of)
    .transpose()
}

/// A user's entries, newest first, with ids below `before` (all when `None`).
pub fn entries(conn: &mut dyn Conn, user_id: &str, before: Option<i64>, limit: i64) -> Result<Vec<EntryRow>> {
    conn.query(
        &format!(
            "SELECT {COLUMNS} FROM loyalty_entries WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ),
        &[
            Param::Text(user_id),
            Param::I64(before.unwrap_or(i64::MAX)),
            Param::I64(limit),
        ],
    )?
    .iter()
    .map(entry_of)
    .collect()
}

/// A user's balance: the sum of every entry's delta.
pub fn balance(conn: &mut dyn Conn, user_id: &str) -> Result<i64> {
    conn.query(
        "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM loyalty_entries WHERE user_id = $1",
        &[Param::Text(user_id)],
    )?
    .first()
    .map_or(Ok(0), |r| r.i64(0))
}

/// A user's lots with points left, first to expire first.
pub fn lots(conn: &mut dyn Conn, user_id: &str) -> Result<Vec<LotRow>> {
    conn.query(
        &format!("{LOTS} WHERE e.user_id = $1 AND e.kind = $2 {LOTS_TAIL} ORDER BY 6, 1"),
        &[Param::Text(user_id), Param::Text(EntryKind::Earn.as_str())],
    )?
    .iter()
    .map(lot_of)
    .collect()
}

/// Lots of any user with points left that expire at or before `now`, at most `limit`.
pub fn due_lots(conn: &mut dyn Conn, now: i64, limit: i64) -> Result<Vec<LotRow>> {
    conn.query(
        &format!("{LOTS} WHERE e.kind = $1 AND e.lot_expires_at <= $2 {LOTS_TAIL} ORDER BY 6, 1 LIMIT $3"),
        &[
            Param::Text(EntryKind::Earn.as_str()),
            Param::I64(now),
            Param::I64(limit),
        ],
    )?
    .iter()
    .map(lot_of)
    .collect()
}

/// Records that debit `entry_id` consumed `points` of lot `lot_id`.
pub fn use_lot(conn: &mut dyn Conn, entry_id: i64, lot_id: i64, points: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO loyalty_lot_uses (entry_id, lot_id, points) VALUES ($1, $2, $3)",
        &[Param::I64(entry_id), Param::I64(lot_id), Param::I64(points)],
    )?;
    Ok(())
}

/// Points of lot `lot_id` consumed by debits of `kind` (e.g. `expire`).
pub fn lot_used_by(conn: &mut dyn Conn, lot_id: i64, kind: EntryKind) -> Result<i64> {
    conn.query(
        "SELECT CAST(COALESCE(SUM(u.points), 0) AS BIGINT) FROM loyalty_lot_uses u \
         JOIN loyalty_entries e ON e.id = u.entry_id WHERE u.lot_id = $1 AND e.kind = $2",
        &[Param::I64(lot_id), Param::Text(kind.as_str())],
    )?
    .first()
    .map_or(Ok(0), |r| r.i64(0))
}

/// How many entries of `source` a user got with `from <= at < until`.
pub fn count_between(
    conn: &mut dyn Conn,
    user_id: &str,
    source: EntrySource,
    from: i64,
    until: i64,
) -> Result<i64> {
    conn.query(
        "SELECT COUNT(*) FROM loyalty_entries WHERE user_id = $1 AND source = $2 AND at >= $3 AND at < $4",
        &[
            Param::Text(user_id),
            Param::Text(source.as_str()),
            Param::I64(from),
            Param::I64(until),
        ],
    )?
    .first()
    .map_or(Ok(0), |r| r.i64(0))
}

/// A granted birthday perk: `(tier, value in fen, granted at ms)`.
pub type BirthdayRow = (String, i64, i64);

/// Records a user's birthday perk for `year`; false when that year's is already recorded.
pub fn insert_birthday(
    conn: &mut dyn Conn,
    user_id: &str,
    year: i64,
    tier: &str,
    value: i64,
    at: i64,
) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO loyalty_birthdays (user_id, year, tier, value, granted_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, year) DO NOTHING",
        &[
            Param::Text(user_id),
            Param::I64(year),
            Param::Text(tier),
            Param::I64(value),
            Param::I64(at),
        ],
    )? == 1)
}

/// The birthday perk recorded for a user and year.
pub fn birthday(conn: &mut dyn Conn, user_id: &str, year: i64) -> Result<Option<BirthdayRow>> {
    conn.query(
        "SELECT tier, value, granted_at FROM loyalty_birthdays WHERE user_id = $1 AND year = $2",
        &[Param::Text(user_id), Param::I64(year)],
    )?
    .first()
    .map(|r| Ok((r.text(0)?, r.i64(1)?, r.i64(2)?)))
    .transpose()
}

/// A user's tier as last evaluated: `(tier, since ms)`.
pub fn current_tier(conn: &mut dyn Conn, user_id: &str) -> Result<Option<(String, i64)>> {
    conn.query(
        "SELECT tier, since FROM loyalty_tiers WHERE user_id = $1",
        &[Param::Text(user_id)],
    )?
    .first()
    .map(|r| Ok((r.text(0)?, r.i64(1)?)))
    .transpose()
}

/// Records a user's tier; `since` moves only when the tier changes.
pub fn set_tier(conn: &mut dyn Conn, user_id: &str, tier: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO loyalty_tiers (user_id, tier, since, evaluated_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (user_id) DO UPDATE SET \
           since = CASE WHEN loyalty_tiers.tier = excluded.tier THEN loyalty_tiers.since ELSE excluded.since END, \
           tier = excluded.tier, evaluated_at = excluded.evaluated_at",
        &[Param::Text(user_id), Param::Text(tier), Param::I64(now)],
    )?;
    Ok(())
}

/// Every user with a recorded tier.
pub fn tiered_users(conn: &mut dyn Conn) -> Result<Vec<String>> {
    conn.query("SELECT user_id FROM loyalty_tiers ORDER BY user_id", &[])?
        .iter()
        .map(|r| r.text(0))
        .collect()
}
