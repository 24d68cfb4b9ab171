//! Journey runs (`journey_runs`): one user's (and business key's) walk through one
//! journey version. A run is in progress while `active` or `waiting`; writes that move a
//! run only apply while it is, so a run stopped or converted meanwhile is not revived.

use crate::column_enum::column_enum;
use crate::conn::Sql;
use serde::Serialize;

use crate::conn::{Conn, Param, Row};
use crate::Result;

column_enum! {
    /// Where a run stands.
    pub enum RunState("run state") {
        /// Walking (at a step with an effect, or about to be walked).
        Active = "active",
        /// Waiting for a time (and possibly for an event).
        Waiting = "waiting",
        /// Walked to the end.
        Done = "done",
        /// Left at an exit step (or its definition went missing).
        Exited = "exited",
        /// Held out by a split.
        Holdout = "holdout",
        /// Ended because the goal was reached.
        Converted = "converted",
        /// Ended because the journey was stopped.
        Stopped = "stopped",
    }
}

impl RunState {
    /// Whether a run in this state is in progress (`active` or `waiting`).
    pub fn in_progress(self) -> bool {
        matches!(self, RunState::Active | RunState::Waiting)
    }
}

/// A run: one user's (and business key's) walk through one journey version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRow {
    /// Run id.
    pub id: String,
    /// Journey.
    pub journey: String,
    /// Version it runs on.
    pub version: i64,
    /// The shop's user id.
    pub user_id: String,
    /// Business key (empty in unkeyed journeys).
    pub key: String,
    /// Index of the current step.
    pub step: i64,
    /// Where it stands.
    pub state: RunState,
    /// The awaited event, while waiting for one.
    pub wait_event: Option<String>,
    /// When the current wait ends (ms).
    pub wait_until: Option<i64>,
    /// Steps visited, `/`-separated ids.
    pub path: String,
    /// Trigger properties, profile id, coupon issued… (JSON).
    pub context: serde_json::Value,
    /// Entered (ms).
    pub entered_at: i64,
    /// Ended (ms).
    pub ended_at: Option<i64>,
    /// Goal reached (ms).
    pub converted_at: Option<i64>,
}

/// Columns of [`RunRow`], in the order [`run_of`] reads them.
const RUN_COLUMNS: &str = "id, journey, version, user_id, run_key, step, state, wait_event, wait_until, \
     path, context, entered_at, ended_at, converted_at";

fn run_of(r: &Row) -> Result<RunRow> {
    Ok(RunRow {
        id: r.text(0)?,
        journey: r.text(1)?,
        version: r.i64(2)?,
        user_id: r.text(3)?,
        key: r.text(4)?,
        step: r.i64(5)?,
        state: r.text(6)?.parse()?,
        wait_event: r.opt_text(7)?,
        wait_until: r.opt_i64(8)?,
        path: r.text(9)?,
        context: serde_json::from_str(&r.text(10)?)?,
        entered_at: r.i64(11)?,
        ended_at: r.opt_i64(12)?,
        converted_at: r.opt_i64(13)?,
    })
}

/// The in-progress states as parameters.
const ACTIVE: Param<'static> = Param::Text(RunState::Active.as_str());
const WAITING: Param<'static> = Param::Text(RunState::Waiting.as_str());

/// A run by id.
pub fn run(conn: &mut dyn Conn, id: &str) -> Result<Option<RunRow>> {
    conn.query(
        &format!("SELECT {RUN_COLUMNS} FROM journey_runs WHERE id = $1"),
        &[Param::Text(id)],
    )?
    .first()
    .map(run_of)
    .transpose()
}

/// Runs by id (missing ids are left out).
pub fn runs(conn: &mut dyn Conn, ids: &[&str]) -> Result<Vec<RunRow>> {
    conn.select_in(&format!("SELECT {RUN_COLUMNS} FROM journey_runs"), "id", ids)?
        .iter()
        .map(run_of)
        .collect()
}

/// Inserts a new run as it stands after its first walk; false when the id exists.
pub fn insert_run(conn: &mut dyn Conn, run: &RunRow, now: i64) -> Result<bool> {
    let context = run.context.to_string();
    Ok(conn.execute(
        "INSERT INTO journey_runs (id, journey, version, user_id, run_key, step, state, wait_event, wait_until, \
         path, context, entered_at, updated_at, ended_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13) ON CONFLICT (id) DO NOTHING",
        &[
            Param::Text(&run.id),
            Param::Text(&run.journey),
            Param::I64(run.version),
            Param::Text(&run.user_id),
            Param::Text(&run.key),
            Param::I64(run.step),
            Param::Text(run.state.as_str()),
            Param::OptText(run.wait_event.as_deref()),
            Param::OptI64(run.wait_until),
            Param::Text(&run.path),
            Param::Text(&context),
            Param::I64(now),
            Param::OptI64(run.ended_at),
        ],
    )? == 1)
}

/// (journey, version) of every run in progress: the versions the engine must know.
pub fn versions_in_progress(conn: &mut dyn Conn) -> Result<Vec<(String, i64)>> {
    conn.query(
        "SELECT DISTINCT journey, version FROM journey_runs WHERE state IN ($1, $2)",
        &[ACTIVE, WAITING],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.i64(1)?)))
    .collect()
}

/// Writes a run's position, state, wait and context — only while the stored run is in
/// progress, so a run stopped or converted meanwhile is not brought back. False when it
/// was not written.
pub fn update_run(conn: &mut dyn Conn, run: &RunRow, now: i64) -> Result<bool> {
    let context = run.context.to_string();
    Ok(conn.execute(
        "UPDATE journey_runs SET step = $1, state = $2, wait_event = $3, wait_until = $4, path = $5, \
         context = $6, updated_at = $7, ended_at = $8 WHERE id = $9 AND state IN ($10, $11)",
        &[
            Param::I64(run.step),
            Param::Text(run.state.as_str()),
            Param::OptText(run.wait_event.as_deref()),
            Param::OptI64(run.wait_until),
            Param::Text(&run.path),
            Param::Text(&context),
            Param::I64(now),
            Param::OptI64(run.ended_at),
            Param::Text(&run.id),
            ACTIVE,
            WAITING,
        ],
    )? == 1)
}

/// Marks a run's goal reached (first time only); when `end` it also ends the run in state
/// `converted` if it is in progress, and removes its timer. Returns whether this call
/// recorded the conversion.
pub fn convert_run(conn: &mut dyn Conn, id: &str, end: bool, now: i64) -> Result<bool> {
    let first = conn.execute(
        "UPDATE journey_runs SET converted_at = $1, updated_at = $1 WHERE id = $2 AND converted_at IS NULL",
        &[Param::I64(now), Param::Text(id)],
    )? == 1;
    if first && end {
        let ended = conn.execute(
            "UPDATE journey_runs SET state = $1, wait_event = NULL, wait_until = NULL, ended_at = $2 \
             WHERE id = $3 AND state IN ($4, $5)",
            &[
                Param::Text(RunState::Converted.as_str()),
                Param::I64(now),
                Param::Text(id),
                ACTIVE,
                WAITING,
            ],
        )?;
        if ended == 1 {
            crate::timers::complete(conn, id)?;
        }
    }
    Ok(first)
}

/// How the user's earlier runs of a journey (and key) stand, for the entry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryHistory {
    /// Any run ever.
    pub any: bool,
    /// One is in progress.
    pub running: bool,
    /// The latest entry (ms).
    pub latest: Option<i64>,
}

/// How the user's earlier runs of a journey (and key) stand.
pub fn entry_history(conn: &mut dyn Conn, journey: &str, user: &str, key: &str) -> Result<EntryHistory> {
    let mut h = EntryHistory::default();
    for r in conn.query(
        "SELECT state, entered_at FROM journey_runs WHERE journey = $1 AND user_id = $2 AND run_key = $3",
        &[Param::Text(journey), Param::Text(user), Param::Text(key)],
    )? {
        let state: RunState = r.text(0)?.parse()?;
        let at = r.i64(1)?;
        h.any = true;
        h.running |= state.in_progress();
        h.latest = Some(h.latest.map_or(at, |l| l.max(at)));
    }
    Ok(h)
}

/// Runs of a journey in progress.
pub fn active_runs(conn: &mut dyn Conn, journey: &str) -> Result<i64> {
    count(
        conn,
        "SELECT COUNT(*) FROM journey_runs WHERE journey = $1 AND state IN ($2, $3)",
        &[Param::Text(journey), ACTIVE, WAITING],
    )
}

/// Runs of a journey that reached its goal.
pub fn converted_runs(conn: &mut dyn Conn, journey: &str) -> Result<i64> {
    count(
        conn,
        "SELECT COUNT(*) FROM journey_runs WHERE journey = $1 AND converted_at IS NOT NULL",
        &[Param::Text(journey)],
    )
}

fn count(conn: &mut dyn Conn, sql: &str, params: &[Param<'_>]) -> Result<i64> {
    Ok(conn
        .query(sql, params)?
        .first()
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0))
}

/// Runs of `user` waiting for `event`.
pub fn waiting_for(conn: &mut dyn Conn, event: &str, user: &str) -> Result<Vec<RunRow>> {
    conn.query(
        &format!(
            "SELECT {RUN_COLUMNS} FROM journey_runs WHERE wait_event = $1 AND user_id = $2 AND state = $3"
        ),
        &[Param::Text(event), Param::Text(user), WAITING],
    )?
    .iter()
    .map(run_of)
    .collect()
}

/// Runs of `user` in `journey` that have not converted (goal checks).
pub fn unconverted(conn: &mut dyn Conn, journey: &str, user: &str) -> Result<Vec<RunRow>> {
    conn.query(
        &format!(
            "SELECT {RUN_COLUMNS} FROM journey_runs WHERE journey = $1 AND user_id = $2 AND converted_at IS NULL"
        ),
        &[Param::Text(journey), Param::Text(user)],
    )?
    .iter()
    .map(run_of)
    .collect()
}

/// Runs of a journey (when given), else of a user (when given), else all; newest first.
pub fn list_runs(
    conn: &mut dyn Conn,
    journey: Option<&str>,
    user: Option<&str>,
    limit: i64,
) -> Result<Vec<RunRow>> {
    let (filter, value) = match (journey, user) {
        (Some(j), _) => ("journey", j),
        (None, Some(u)) => ("user_id", u),
        (None, None) => ("'all'", "all"),
    };
    conn.query(
        &format!("SELECT {RUN_COLUMNS} FROM journey_runs WHERE {filter} = $1 ORDER BY entered_at DESC, id LIMIT $2"),
        &[Param::Text(value), Param::I64(limit)],
    )?
    .iter()
    .map(run_of)
    .collect()
}

/// Visits per step id, in step-id order.
pub type StepCounts = Vec<(String, i64)>;

/// Per-step and per-state counts of a journey's runs: (visits per step id, runs per
/// state in the order of their stored text).
pub fn run_counts(conn: &mut dyn Conn, journey: &str) -> Result<(StepCounts, Vec<(RunState, i64)>)> {
    let mut steps: std::collections::BTreeMap<String, i64> = Default::default();
    for r in conn.query(
        "SELECT path, COUNT(*) FROM journey_runs WHERE journey = $1 GROUP BY path",
        &[Param::Text(journey)],
    )? {
        let n = r.i64(1)?;
        for id in r.text(0)?.split('/').filter(|s| !s.is_empty()) {
            *steps.entry(id.to_string()).or_default() += n;
        }
    }
    let states = conn
        .query(
            "SELECT state, COUNT(*) FROM journey_runs WHERE journey = $1 GROUP BY state ORDER BY state",
            &[Param::Text(journey)],
        )?
        .iter()
        .map(|r| Ok((r.text(0)?.parse()?, r.i64(1)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok((steps.into_iter().collect(), states))
}

/// Runs per state across every journey, in the order of the stored text.
pub fn state_counts(conn: &mut dyn Conn) -> Result<Vec<(RunState, i64)>> {
    conn.query(
        "SELECT state, COUNT(*) FROM journey_runs GROUP BY state ORDER BY state",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?.parse()?, r.i64(1)?)))
    .collect()
}
