//! What the referral program (裂變) reads and writes: its settings, one invite code per
//! inviter, and one referral per invitee with its state and rewards. Parameters are
//! named in ascending order of first use (SQLite).

use crate::column_enum::column_enum;
use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

column_enum! {
    /// The state of a referral (`referrals.state`).
    pub enum ReferralState("referral state") {
        /// No paid order yet.
        Pending = "pending",
        /// Claimed by the first paid order; its rewards are being issued.
        Rewarding = "rewarding",
        /// Both sides rewarded.
        Rewarded = "rewarded",
        /// Flagged by the anti-abuse checks: not rewarded.
        Held = "held",
        /// The first order was refunded: the rewards were taken back.
        ClawedBack = "clawed_back",
    }
}

/// A stored referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralRow {
    /// The invited user (one referral each).
    pub invitee: String,
    /// Who invited them.
    pub inviter: String,
    /// The invitee's device, if told.
    pub device_id: Option<String>,
    /// The invitee's IP address, if told.
    pub ip: Option<String>,
    /// Anti-abuse flags, comma-separated (`same_device`, `same_ip`).
    pub flags: String,
    /// Its state.
    pub state: ReferralState,
    /// The first paid order that earned the rewards.
    pub order_id: Option<String>,
    /// The rewards granted (JSON).
    pub rewards: Option<String>,
    /// Created (ms).
    pub created_at: i64,
}

const COLUMNS: &str = "invitee, inviter, device_id, ip, flags, state, order_id, rewards, created_at";

fn referral_of(r: &Row) -> Result<ReferralRow> {
    Ok(ReferralRow {
        invitee: r.text(0)?,
        inviter: r.text(1)?,
        device_id: r.opt_text(2)?,
        ip: r.opt_text(3)?,
        flags: r.text(4)?,
        state: r.text(5)?.parse()?,
        order_id: r.opt_text(6)?,
        rewards: r.opt_text(7)?,
        created_at: r.i64(8)?,
    })
}

/// The program settings (JSON), if set.
pub fn program(conn: &mut dyn Conn) -> Result<Option<String>> {
    conn.query("SELECT body FROM referral_program WHERE id = 'default'", &[])?
        .first()
        .map(|r| r.text(0))
        .transpose()
}

/// Sets the program settings.
pub fn set_program(conn: &mut dyn Conn, body: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO referral_program (id, body, updated_at) VALUES ('default', $1, $2) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        &[Param::Text(body), Param::I64(now)],
    )?;
    Ok(())
}

/// The invite code of `user`, if any.
pub fn code_of(conn: &mut dyn Conn, user: &str) -> Result<Option<String>> {
    conn.query(
        "SELECT code FROM referral_codes WHERE user_id = $1",
        &[Param::Text(user)],
    )?
    .first()
    .map(|r| r.text(0))
    .transpose()
}

/// The inviter owning `code`, if any.
pub fn inviter_of(conn: &mut dyn Conn, code: &str) -> Result<Option<String>> {
    conn.query(
        "SELECT user_id FROM referral_codes WHERE code = $1",
        &[Param::Text(code)],
    )?
    .first()
    .map(|r| r.text(0))
    .transpose()
}

/// Stores a code for `user`; false when the user or the code already has one.
pub fn insert_code(conn: &mut dyn Conn, user: &str, code: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO referral_codes (user_id, code, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[Param::Text(user), Param::Text(code), Param::I64(now)],
    )? == 1)
}

/// Stores a referral; false when the invitee already has one.
pub fn insert_referral(conn: &mut dyn Conn, r: &ReferralRow) -> Result<bool> {
    Ok(conn.execute(
        &format!("INSERT INTO referrals ({COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT (invitee) DO NOTHING"),
        &[
            Param::Text(&r.invitee),
            Param::Text(&r.inviter),
            Param::OptText(r.device_id.as_deref()),
            Param::OptText(r.ip.as_deref()),
            Param::Text(&r.flags),
            Param::Text(r.state.as_str()),
            Param::OptText(r.order_id.as_deref()),
            Param::OptText(r.rewards.as_deref()),
            Param::I64(r.created_at),
        ],
    )? == 1)
}

/// Which of `users` were invited (have a referral as invitee), in any state.
pub fn invitees_among(conn: &mut dyn Conn, users: &[&str]) -> Result<std::collections::HashSet<String>> {
    conn.select_in("SELECT invitee FROM referrals", "invitee", users)?
        .iter()
        .map(|r| r.text(0))
        .collect()
}

/// One referral by invitee.
pub fn referral(conn: &mut dyn Conn, invitee: &str) -> Result<Option<ReferralRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM referrals WHERE invitee = $1"),
        &[Param::Text(invitee)],
    )?
    .first()
    .map(referral_of)
    .transpose()
}

/// An inviter's referrals, newest first.
pub fn referrals_of(conn: &mut dyn Conn, inviter: &str) -> Result<Vec<ReferralRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM referrals WHERE inviter = $1 ORDER BY created_at DESC, invitee"),
        &[Param::Text(inviter)],
    )?
    .iter()
    .map(referral_of)
    .collect()
}

/// How many referrals `inviter` made at or after `since` (ms).
pub fn count_since(conn: &mut dyn Conn, inviter: &str, since: i64) -> Result<i64> {
    conn.query(
        "SELECT COUNT(*) FROM referrals WHERE inviter = $1 AND created_at >= $2",
        &[Param::Text(inviter), Param::I64(since)],
    )?
    .first()
    .map_or(Ok(0), |r| r.i64(0))
}

/// Whether another referral of `inviter` came from this device or IP.
pub fn seen_device_or_ip(
    conn: &mut dyn Conn,
    inviter: &str,
    device: Option<&str>,
    ip: Option<&str>,
) -> Result<(bool, bool)> {
    let rows = conn.query(
        "SELECT \
           COALESCE(SUM(CASE WHEN device_id IS NOT NULL AND device_id = $1 THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN ip IS NOT NULL AND ip = $2 THEN 1 ELSE 0 END), 0) \
         FROM referrals WHERE inviter = $3",
        &[Param::OptText(device), Param::OptText(ip), Param::Text(inviter)],
    )?;
    let r = rows.first();
    Ok((
        r.map_or(Ok(0), |r| r.i64(0))? > 0,
        r.map_or(Ok(0), |r| r.i64(1))? > 0,
    ))
}

/// Moves a referral from state `from` to `to`, with its order and rewards; false when it is no longer in `from`.
pub fn transition(
    conn: &mut dyn Conn,
    invitee: &str,
    from: ReferralState,
    to: ReferralState,
    order_id: Option<&str>,
    rewards: Option<&str>,
    now: i64,
) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE referrals SET state = $1, order_id = $2, rewards = $3, updated_at = $4 WHERE invitee = $5 AND state = $6",
        &[
            Param::Text(to.as_str()),
            Param::OptText(order_id),
            Param::OptText(rewards),
            Param::I64(now),
            Param::Text(invitee),
            Param::Text(from.as_str()),
        ],
    )? == 1)
}
