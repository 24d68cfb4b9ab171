//! Segment and tag transitions, durable and in order (migration 020): the log of every
//! `entered`/`exited` of a profile in a segment or tag, numbered by `seq` in commit
//! order, and the membership it leads to.
//!
//! The rule this module keeps: a membership change is logged exactly once. [`append`]
//! writes each transition's membership change and its log row in the caller's
//! transaction and skips a transition that changes nothing (entering what the profile is
//! already in, leaving what it is not in), so replaying, retrying or reconciling the same
//! change never logs it twice. Readers of the log (segment-triggered journeys) keep their
//! position under their own key ([`cursor`], [`set_cursor`]) and move it in the
//! transaction that deals with what they read, exactly as the readers of the event log do
//! ([`crate::log_cursor`]). Old rows every reader has passed are pruned ([`prune`]).

use crate::conn::Sql;
use std::collections::BTreeSet;

use serde::Serialize;

use crate::conn::{Conn, Param, Row};
use crate::{log_cursor, Error, Result};

#[cfg(test)]
mod tests;

/// What a transition is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A saved segment.
    Segment,
    /// A tag (rule or manual).
    Tag,
}

impl Kind {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Segment => "segment",
            Kind::Tag => "tag",
        }
    }

    fn parse(s: &str) -> Result<Kind> {
        match s {
            "segment" => Ok(Kind::Segment),
            "tag" => Ok(Kind::Tag),
            other => Err(Error::Corrupt(format!("transition kind {other:?}"))),
        }
    }
}

/// Which way the membership changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The profile entered the segment (got the tag).
    Entered,
    /// The profile left the segment (lost the tag).
    Exited,
}

impl Change {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Entered => "entered",
            Change::Exited => "exited",
        }
    }

    fn parse(s: &str) -> Result<Change> {
        match s {
            "entered" => Ok(Change::Entered),
            "exited" => Ok(Change::Exited),
            other => Err(Error::Corrupt(format!("transition change {other:?}"))),
        }
    }
}

/// What caused a transition (the bus's cause, stored as its text).
pub use flywheel_core::bus::TransitionCause as Cause;

fn parse_cause(s: &str) -> Result<Cause> {
    Cause::parse(s).ok_or_else(|| Error::Corrupt(format!("transition cause {s:?}")))
}

/// A transition to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransition {
    /// Segment or tag.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// The profile.
    pub profile_id: String,
    /// Entered or exited.
    pub change: Change,
    /// When it was detected (ms).
    pub at: i64,
    /// Why.
    pub cause: Cause,
}

/// A logged transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransitionRow {
    /// Its position in the log (increasing in commit order).
    pub seq: i64,
    /// Segment or tag.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// The profile.
    pub profile_id: String,
    /// Entered or exited.
    pub change: Change,
    /// When it was detected (ms).
    pub at: i64,
    /// Why.
    pub cause: Cause,
}

fn row_of(r: &Row) -> Result<TransitionRow> {
    Ok(TransitionRow {
        seq: r.i64(0)?,
        kind: Kind::parse(&r.text(1)?)?,
        name: r.text(2)?,
        profile_id: r.text(3)?,
        change: Change::parse(&r.text(4)?)?,
        at: r.i64(5)?,
        cause: parse_cause(&r.text(6)?)?,
    })
}

/// Applies each transition's membership change and logs those that changed something,
/// in order, in the caller's transaction; returns how many were logged.
pub fn append(conn: &mut dyn Conn, batch: &[NewTransition]) -> Result<usize> {
    let mut logged = 0;
    for t in batch {
        let key = [
            Param::Text(t.kind.as_str()),
            Param::Text(&t.name),
            Param::Text(&t.profile_id),
        ];
        let changed = match t.change {
            Change::Entered => conn.execute(
                "INSERT INTO audience_members (kind, name, profile_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind, name, profile_id) DO NOTHING",
                &key,
            )?,
            Change::Exited => conn.execute(
                "DELETE FROM audience_members WHERE kind = $1 AND name = $2 AND profile_id = $3",
                &key,
            )?,
        };
        if changed == 0 {
            continue;
        }
        conn.execute(
            "INSERT INTO audience_transitions (kind, name, profile_id, change, at, cause) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                Param::Text(t.kind.as_str()),
                Param::Text(&t.name),
                Param::Text(&t.profile_id),
                Param::Text(t.change.as_str()),
                Param::I64(t.at),
                Param::Text(t.cause.as_str()),
            ],
        )?;
        logged += 1;
    }
    Ok(logged)
}

/// At most `limit` logged transitions after `seq`, in order.
pub fn after(conn: &mut dyn Conn, seq: i64, limit: i64) -> Result<Vec<TransitionRow>> {
    conn.query(
        "SELECT seq, kind, name, profile_id, change, at, cause FROM audience_transitions \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[Param::I64(seq), Param::I64(limit)],
    )?
    .iter()
    .map(row_of)
    .collect()
}

/// The highest `seq` logged (0 when none ever was).
pub fn last_seq(conn: &mut dyn Conn) -> Result<i64> {
    // The log may have been pruned empty: the sequence itself still knows.
    let logged = conn
        .query("SELECT MAX(seq) FROM audience_transitions", &[])?
        .first()
        .map(|r| r.opt_i64(0))
        .transpose()?
        .flatten();
    match logged {
        Some(seq) => Ok(seq),
        None => Ok(get_setting(conn, PRUNED_THROUGH)?.unwrap_or(0)),
    }
}

/// The settings key prefix of the readers' positions in the log.
const CURSOR_PREFIX: &str = "transitions_cursor:";

/// The settings key of the last `seq` pruned (so [`last_seq`] survives an emptied log).
const PRUNED_THROUGH: &str = "transitions_pruned_through";

fn get_setting(conn: &mut dyn Conn, key: &str) -> Result<Option<i64>> {
    log_cursor::get(conn, key)
}

/// The position of the reader `consumer` (e.g. `journeys`): the last `seq` it dealt with.
pub fn cursor(conn: &mut dyn Conn, consumer: &str) -> Result<Option<i64>> {
    log_cursor::get(conn, &format!("{CURSOR_PREFIX}{consumer}"))
}

/// Moves the reader `consumer` to `seq` (in the transaction that dealt with what it read).
pub fn set_cursor(conn: &mut dyn Conn, consumer: &str, seq: i64) -> Result<()> {
    log_cursor::set(conn, &format!("{CURSOR_PREFIX}{consumer}"), seq)
}

/// How many logged transitions the reader `consumer` has yet to look at (0 before it
/// first started).
pub fn lag(conn: &mut dyn Conn, consumer: &str) -> Result<i64> {
    let at = cursor(conn, consumer)?;
    Ok(match at {
        Some(at) => (last_seq(conn)? - at).max(0),
        None => 0,
    })
}

/// Every reader's position.
fn cursors(conn: &mut dyn Conn) -> Result<Vec<i64>> {
    conn.query(
        "SELECT value FROM settings WHERE key LIKE $1",
        &[Param::Text(&format!("{CURSOR_PREFIX}%"))],
    )?
    .iter()
    .map(|r| {
        let t = r.text(0)?;
        t.parse::<i64>()
            .map_err(|_| Error::Corrupt(format!("transitions cursor {t:?}")))
    })
    .collect()
}

/// Deletes logged transitions older than `before` (ms) that every reader has passed;
/// returns how many. The membership is not touched.
pub fn prune(conn: &mut dyn Conn, before: i64) -> Result<u64> {
    let passed = cursors(conn)?.into_iter().min();
    let last = last_seq(conn)?;
    let through = passed.map_or(last, |p| p.min(last));
    let bound = conn
        .query(
            "SELECT MAX(seq) FROM audience_transitions WHERE seq <= $1 AND at < $2",
            &[Param::I64(through), Param::I64(before)],
        )?
        .first()
        .map(|r| r.opt_i64(0))
        .transpose()?
        .flatten();
    let Some(bound) = bound else { return Ok(0) };
    let n = conn.execute(
        "DELETE FROM audience_transitions WHERE seq <= $1",
        &[Param::I64(bound)],
    )?;
    if bound == last {
        log_cursor::set(conn, PRUNED_THROUGH, bound)?;
    }
    Ok(n)
}

/// The segments and tags whose membership is stored.
pub fn tracked(conn: &mut dyn Conn) -> Result<BTreeSet<(Kind, String)>> {
    conn.query("SELECT kind, name FROM audience_tracked", &[])?
        .iter()
        .map(|r| Ok((Kind::parse(&r.text(0)?)?, r.text(1)?)))
        .collect()
}

/// The stored members of one segment or tag.
pub fn members(conn: &mut dyn Conn, kind: Kind, name: &str) -> Result<BTreeSet<String>> {
    conn.query(
        "SELECT profile_id FROM audience_members WHERE kind = $1 AND name = $2",
        &[Param::Text(kind.as_str()), Param::Text(name)],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// Stores `members` as the whole membership of a segment or tag without logging anything
/// (a new definition takes its first members silently) and tracks it from now on.
pub fn seed(conn: &mut dyn Conn, kind: Kind, name: &str, members: &[String]) -> Result<()> {
    forget(conn, kind, name)?;
    conn.execute(
        "INSERT INTO audience_tracked (kind, name) VALUES ($1, $2)",
        &[Param::Text(kind.as_str()), Param::Text(name)],
    )?;
    let params: Vec<Param> = members
        .iter()
        .flat_map(|p| {
            [
                Param::Text(kind.as_str()),
                Param::Text(name),
                Param::Text(p.as_str()),
            ]
        })
        .collect();
    if !params.is_empty() {
        conn.insert_rows(
            "INSERT INTO audience_members (kind, name, profile_id)",
            3,
            "ON CONFLICT (kind, name, profile_id) DO NOTHING",
            &params,
        )?;
    }
    Ok(())
}

/// [`seed`] unless the segment or tag is tracked already; returns whether it seeded. The
/// process that created a definition seeds it this way whether or not it keeps the log
/// (the process that keeps it may have found the definition, and logged its first
/// changes, before).
pub fn seed_untracked(conn: &mut dyn Conn, kind: Kind, name: &str, members: &[String]) -> Result<bool> {
    if tracked(conn)?.contains(&(kind, name.to_owned())) {
        return Ok(false);
    }
    seed(conn, kind, name, members)?;
    Ok(true)
}

/// Drops the stored membership of a deleted segment or tag and stops tracking it (its
/// logged transitions stay until pruned).
pub fn forget(conn: &mut dyn Conn, kind: Kind, name: &str) -> Result<()> {
    let key = [Param::Text(kind.as_str()), Param::Text(name)];
    conn.execute("DELETE FROM audience_members WHERE kind = $1 AND name = $2", &key)?;
    conn.execute("DELETE FROM audience_tracked WHERE kind = $1 AND name = $2", &key)?;
    Ok(())
}
