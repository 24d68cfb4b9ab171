//! What group buys (拼團) read and write: deals, groups (`open`, `full`, `expired`) with
//! their member count, and members. A join is a conditional increment of the count
//! (`members < size`) plus a unique member row, so concurrent joins never exceed the
//! size. Parameters are named in ascending order of first use (SQLite).

use crate::column_enum::column_enum;
use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

column_enum! {
    /// The state of a group buy (`group_buys.state`).
    pub enum GroupState("group state") {
        /// Joinable until `expires_at`.
        Open = "open",
        /// Every place taken: the orders are confirmed.
        Full = "full",
        /// The deadline passed before it filled: cancelled.
        Expired = "expired",
    }
}

/// A stored group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// Group id.
    pub id: String,
    /// Its deal.
    pub deal_id: String,
    /// Who opened it.
    pub leader: String,
    /// Members needed.
    pub size: i64,
    /// Members so far (the leader included).
    pub members: i64,
    /// Its state.
    pub state: GroupState,
    /// An open group expires at (ms).
    pub expires_at: i64,
}

const COLUMNS: &str = "id, deal_id, leader, size, members, state, expires_at";

fn group_of(r: &Row) -> Result<GroupRow> {
    Ok(GroupRow {
        id: r.text(0)?,
        deal_id: r.text(1)?,
        leader: r.text(2)?,
        size: r.i64(3)?,
        members: r.i64(4)?,
        state: r.text(5)?.parse()?,
        expires_at: r.i64(6)?,
    })
}

/// Stores a deal; false when the id is taken.
pub fn insert_deal(conn: &mut dyn Conn, id: &str, body: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO group_deals (id, body, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        &[Param::Text(id), Param::Text(body), Param::I64(now)],
    )? == 1)
}

/// One deal's JSON body.
pub fn deal(conn: &mut dyn Conn, id: &str) -> Result<Option<String>> {
    conn.query("SELECT body FROM group_deals WHERE id = $1", &[Param::Text(id)])?
        .first()
        .map(|r| r.text(0))
        .transpose()
}

/// Every deal's JSON body, oldest first.
pub fn deals(conn: &mut dyn Conn) -> Result<Vec<String>> {
    conn.query("SELECT body FROM group_deals ORDER BY created_at, id", &[])?
        .iter()
        .map(|r| r.text(0))
        .collect()
}

/// Stores a new group with its leader as the first member.
pub fn open_group(conn: &mut dyn Conn, g: &GroupRow, now: i64) -> Result<()> {
    conn.execute(
        &format!("INSERT INTO group_buys ({COLUMNS}, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)"),
        &[
            Param::Text(&g.id),
            Param::Text(&g.deal_id),
            Param::Text(&g.leader),
            Param::I64(g.size),
            Param::I64(g.members),
            Param::Text(g.state.as_str()),
            Param::I64(g.expires_at),
            Param::I64(now),
        ],
    )?;
    add_member(conn, &g.id, &g.leader, now)?;
    Ok(())
}

/// Adds a member row; false when the user is already in the group.
pub fn add_member(conn: &mut dyn Conn, group_id: &str, user: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO group_members (group_id, user_id, joined_at) VALUES ($1, $2, $3) ON CONFLICT (group_id, user_id) DO NOTHING",
        &[Param::Text(group_id), Param::Text(user), Param::I64(now)],
    )? == 1)
}

/// Counts one more member of an open, unexpired group with room left; false otherwise.
pub fn count_join(conn: &mut dyn Conn, group_id: &str, now: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE group_buys SET members = members + 1, \
         state = CASE WHEN members + 1 >= size THEN $1 ELSE state END, updated_at = $2 \
         WHERE id = $3 AND state = $4 AND members < size AND expires_at > $2",
        &[
            Param::Text(GroupState::Full.as_str()),
            Param::I64(now),
            Param::Text(group_id),
            Param::Text(GroupState::Open.as_str()),
        ],
    )? == 1)
}

/// One group.
pub fn group(conn: &mut dyn Conn, id: &str) -> Result<Option<GroupRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM group_buys WHERE id = $1"),
        &[Param::Text(id)],
    )?
    .first()
    .map(group_of)
    .transpose()
}

/// A group's members, in joining order.
pub fn members(conn: &mut dyn Conn, group_id: &str) -> Result<Vec<String>> {
    conn.query(
        "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY joined_at, user_id",
        &[Param::Text(group_id)],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// Marks open groups past their deadline expired; returns them.
pub fn expire_due(conn: &mut dyn Conn, now: i64) -> Result<Vec<GroupRow>> {
    let due: Vec<GroupRow> = conn
        .query(
            &format!("SELECT {COLUMNS} FROM group_buys WHERE state = $1 AND expires_at <= $2"),
            &[Param::Text(GroupState::Open.as_str()), Param::I64(now)],
        )?
        .iter()
        .map(group_of)
        .collect::<Result<_>>()?;
    for g in &due {
        conn.execute(
            "UPDATE group_buys SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
            &[
                Param::Text(GroupState::Expired.as_str()),
                Param::I64(now),
                Param::Text(&g.id),
                Param::Text(GroupState::Open.as_str()),
            ],
        )?;
    }
    Ok(due)
}
