//! Journey definitions by version (`journeys`) and each journey's current version and
//! status (`journey_status`). Saving a changed definition adds a version; running users
//! stay on theirs.

use crate::column_enum::column_enum;
use crate::conn::Sql;
use serde::Serialize;

use super::runs::RunState;
use crate::conn::{Conn, Param, Row};
use crate::Result;

column_enum! {
    /// A journey's lifecycle.
    pub enum JourneyStatus("journey status") {
        /// Saved, not started: no entries.
        Draft = "draft",
        /// Entering and advancing users.
        Active = "active",
        /// No entries; runs hold where they are until started again.
        Paused = "paused",
        /// No entries; every run was ended.
        Stopped = "stopped",
    }
}

/// A journey's current version and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JourneyRow {
    /// Name.
    pub name: String,
    /// The version new entries use.
    pub version: i64,
    /// Status.
    pub status: JourneyStatus,
    /// Last change (ms).
    pub updated_at: i64,
    /// The definition text of `version`.
    #[serde(skip)]
    pub definition: String,
}

/// The columns [`journey_of`] reads, in its order.
const JOURNEY_SELECT: &str = "SELECT s.name, s.version, s.status, s.updated_at, j.definition \
     FROM journey_status s JOIN journeys j ON j.name = s.name AND j.version = s.version";

fn journey_of(r: &Row) -> Result<JourneyRow> {
    Ok(JourneyRow {
        name: r.text(0)?,
        version: r.i64(1)?,
        status: r.text(2)?.parse()?,
        updated_at: r.i64(3)?,
        definition: r.text(4)?,
    })
}

/// Every journey, by name.
pub fn journeys(conn: &mut dyn Conn) -> Result<Vec<JourneyRow>> {
    conn.query(&format!("{JOURNEY_SELECT} ORDER BY s.name"), &[])?
        .iter()
        .map(journey_of)
        .collect()
}

/// Each journey's `(name, version, status, updated_at)`, by name: compared, in the
/// transaction that acts on journeys, with what a process has cached, so a journey
/// started, paused or changed through another process is never acted on from a stale
/// copy.
pub fn fingerprint(conn: &mut dyn Conn) -> Result<Vec<(String, i64, JourneyStatus, i64)>> {
    conn.query(
        "SELECT s.name, s.version, s.status, s.updated_at \
         FROM journey_status s JOIN journeys j ON j.name = s.name AND j.version = s.version ORDER BY s.name",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.i64(1)?, r.text(2)?.parse()?, r.i64(3)?)))
    .collect()
}

/// One journey.
pub fn journey(conn: &mut dyn Conn, name: &str) -> Result<Option<JourneyRow>> {
    conn.query(
        &format!("{JOURNEY_SELECT} WHERE s.name = $1"),
        &[Param::Text(name)],
    )?
    .first()
    .map(journey_of)
    .transpose()
}

/// The definition text of one version.
pub fn version(conn: &mut dyn Conn, name: &str, version: i64) -> Result<Option<String>> {
    conn.query(
        "SELECT definition FROM journeys WHERE name = $1 AND version = $2",
        &[Param::Text(name), Param::I64(version)],
    )?
    .first()
    .map(|r| r.text(0))
    .transpose()
}

/// Saves a definition: a new version when it differs from the current one (running
/// users stay on theirs). Returns (version, created). A new journey starts as a draft.
pub fn save(conn: &mut dyn Conn, name: &str, definition: &str, now: i64) -> Result<(i64, bool)> {
    let current = journey(conn, name)?;
    if let Some(j) = &current {
        if j.definition == definition {
            return Ok((j.version, false));
        }
    }
    let next = current.as_ref().map_or(1, |j| j.version + 1);
    conn.execute(
        "INSERT INTO journeys (name, version, definition, created_at) VALUES ($1, $2, $3, $4)",
        &[
            Param::Text(name),
            Param::I64(next),
            Param::Text(definition),
            Param::I64(now),
        ],
    )?;
    if current.is_some() {
        conn.execute(
            "UPDATE journey_status SET version = $1, updated_at = $2 WHERE name = $3",
            &[Param::I64(next), Param::I64(now), Param::Text(name)],
        )?;
    } else {
        conn.execute(
            "INSERT INTO journey_status (name, version, status, updated_at) VALUES ($1, $2, $3, $4)",
            &[
                Param::Text(name),
                Param::I64(next),
                Param::Text(JourneyStatus::Draft.as_str()),
                Param::I64(now),
            ],
        )?;
    }
    Ok((next, true))
}

/// Sets a journey's status; false when there is no such journey. Stopping ends every
/// run in progress in the journey (state `stopped`) and removes its timers.
pub fn set_status(conn: &mut dyn Conn, name: &str, status: JourneyStatus, now: i64) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE journey_status SET status = $1, updated_at = $2 WHERE name = $3",
        &[Param::Text(status.as_str()), Param::I64(now), Param::Text(name)],
    )? == 1;
    if changed && status == JourneyStatus::Stopped {
        conn.execute(
            "DELETE FROM journey_timers WHERE key IN (SELECT id FROM journey_runs WHERE journey = $1 \
             AND state IN ($2, $3))",
            &[
                Param::Text(name),
                Param::Text(RunState::Active.as_str()),
                Param::Text(RunState::Waiting.as_str()),
            ],
        )?;
        conn.execute(
            "UPDATE journey_runs SET state = $1, wait_event = NULL, ended_at = $2, updated_at = $2 \
             WHERE journey = $3 AND state IN ($4, $5)",
            &[
                Param::Text(RunState::Stopped.as_str()),
                Param::I64(now),
                Param::Text(name),
                Param::Text(RunState::Active.as_str()),
                Param::Text(RunState::Waiting.as_str()),
            ],
        )?;
    }
    Ok(changed)
}

/// Deletes a journey that has no run in progress; false when absent or busy.
pub fn delete(conn: &mut dyn Conn, name: &str) -> Result<bool> {
    if super::runs::active_runs(conn, name)? > 0 {
        return Ok(false);
    }
    conn.execute("DELETE FROM journeys WHERE name = $1", &[Param::Text(name)])?;
    Ok(conn.execute("DELETE FROM journey_status WHERE name = $1", &[Param::Text(name)])? == 1)
}
