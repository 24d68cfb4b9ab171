//! What journeys keep in the store (migration 010): definitions by version and their
//! status, runs, the message log and consent. Every function takes a connection so the
//! engine composes them into one transaction. Parameters are numbered in ascending
//! order of first use (SQLite).

use flywheel_store::conn::{Conn, Param, Row};
use flywheel_store::Result;
use serde::Serialize;

/// A journey's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Saved, not started: no entries.
    Draft,
    /// Entering and advancing users.
    Active,
    /// No entries; runs hold where they are until started again.
    Paused,
    /// No entries; every run was ended.
    Stopped,
}

impl Status {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }

    /// Reads the stored text.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "draft" => Status::Draft,
            "active" => Status::Active,
            "paused" => Status::Paused,
            "stopped" => Status::Stopped,
            _ => return None,
        })
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
    pub status: Status,
    /// Last change (ms).
    pub updated_at: i64,
    /// The definition text of `version`.
    #[serde(skip)]
    pub definition: String,
}

fn journey_of(r: &Row) -> Result<JourneyRow> {
    let status = r.text(2)?;
    Ok(JourneyRow {
        name: r.text(0)?,
        version: r.i64(1)?,
        status: Status::parse(&status)
            .ok_or_else(|| flywheel_store::Error::Corrupt(format!("journey status {status:?}")))?,
        updated_at: r.i64(3)?,
        definition: r.text(4)?,
    })
}

const JOURNEY_SELECT: &str = "SELECT s.name, s.version, s.status, s.updated_at, j.definition \
     FROM journey_status s JOIN journeys j ON j.name = s.name AND j.version = s.version";

/// Every journey, by name.
pub fn journeys(conn: &mut dyn Conn) -> Result<Vec<JourneyRow>> {
    conn.query(&format!("{JOURNEY_SELECT} ORDER BY s.name"), &[])?
        .iter()
        .map(journey_of)
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
            "INSERT INTO journey_status (name, version, status, updated_at) VALUES ($1, $2, 'draft', $3)",
            &[Param::Text(name), Param::I64(next), Param::I64(now)],
        )?;
    }
    Ok((next, true))
}

/// Sets a journey's status; false when there is no such journey. Stopping ends every
/// run in the journey and removes its timers.
pub fn set_status(conn: &mut dyn Conn, name: &str, status: Status, now: i64) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE journey_status SET status = $1, updated_at = $2 WHERE name = $3",
        &[Param::Text(status.as_str()), Param::I64(now), Param::Text(name)],
    )? == 1;
    if changed && status == Status::Stopped {
        conn.execute(
            "DELETE FROM journey_timers WHERE key IN (SELECT id FROM journey_runs WHERE journey = $1 \
             AND state IN ('active', 'waiting'))",
            &[Param::Text(name)],
        )?;
        conn.execute(
            "UPDATE journey_runs SET state = 'stopped', wait_event = NULL, ended_at = $1, updated_at = $1 \
             WHERE journey = $2 AND state IN ('active', 'waiting')",
            &[Param::I64(now), Param::Text(name)],
        )?;
    }
    Ok(changed)
}

/// Deletes a journey that has no run in progress; false when absent or busy.
pub fn delete(conn: &mut dyn Conn, name: &str) -> Result<bool> {
    let busy = conn.query(
        "SELECT 1 FROM journey_runs WHERE journey = $1 AND state IN ('active', 'waiting') LIMIT 1",
        &[Param::Text(name)],
    )?;
    if !busy.is_empty() {
        return Ok(false);
    }
    conn.execute("DELETE FROM journeys WHERE name = $1", &[Param::Text(name)])?;
    Ok(conn.execute("DELETE FROM journey_status WHERE name = $1", &[Param::Text(name)])? == 1)
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
    /// `active`, `waiting`, `done`, `exited`, `holdout`, `converted`, `stopped`.
    pub state: String,
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

/// Columns of [`RunRow`], in order.
pub const RUN_COLUMNS: &str = "id, journey, version, user_id, run_key, step, state, wait_event, wait_until, \
     path, context, entered_at, ended_at, converted_at";

/// Reads a run row selected with [`RUN_COLUMNS`].
pub fn run_of(r: &Row) -> Result<RunRow> {
    Ok(RunRow {
        id: r.text(0)?,
        journey: r.text(1)?,
        version: r.i64(2)?,
        user_id: r.text(3)?,
        key: r.text(4)?,
        step: r.i64(5)?,
        state: r.text(6)?,
        wait_event: r.opt_text(7)?,
        wait_until: r.opt_i64(8)?,
        path: r.text(9)?,
        context: serde_json::from_str(&r.text(10)?)?,
        entered_at: r.i64(11)?,
        ended_at: r.opt_i64(12)?,
        converted_at: r.opt_i64(13)?,
    })
}

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
            Param::Text(&run.state),
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
        "SELECT DISTINCT journey, version FROM journey_runs WHERE state IN ('active', 'waiting')",
        &[],
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
         context = $6, updated_at = $7, ended_at = $8 WHERE id = $9 AND state IN ('active', 'waiting')",
        &[
            Param::I64(run.step),
            Param::Text(&run.state),
            Param::OptText(run.wait_event.as_deref()),
            Param::OptI64(run.wait_until),
            Param::Text(&run.path),
            Param::Text(&context),
            Param::I64(now),
            Param::OptI64(run.ended_at),
            Param::Text(&run.id),
        ],
    )? == 1)
}

/// Marks a run's goal reached (first time only); when `end` it also ends the run in state
/// `converted` if it is in progress. Returns whether this call recorded the conversion.
pub fn convert_run(conn: &mut dyn Conn, id: &str, end: bool, now: i64) -> Result<bool> {
    let first = conn.execute(
        "UPDATE journey_runs SET converted_at = $1, updated_at = $1 WHERE id = $2 AND converted_at IS NULL",
        &[Param::I64(now), Param::Text(id)],
    )? == 1;
    if first && end {
        let ended = conn.execute(
            "UPDATE journey_runs SET state = 'converted', wait_event = NULL, wait_until = NULL, ended_at = $1 \
             WHERE id = $2 AND state IN ('active', 'waiting')",
            &[Param::I64(now), Param::Text(id)],
        )?;
        if ended == 1 {
            conn.execute("DELETE FROM journey_timers WHERE key = $1", &[Param::Text(id)])?;
        }
    }
    Ok(first)
}

/// How the user's earlier runs of a journey (and key) stand, for the entry policy:
/// (any run ever, one in progress, latest entry).
pub fn entry_history(
    conn: &mut dyn Conn,
    journey: &str,
    user: &str,
    key: &str,
) -> Result<(bool, bool, Option<i64>)> {
    let rows = conn.query(
        "SELECT state, entered_at FROM journey_runs WHERE journey = $1 AND user_id = $2 AND run_key = $3",
        &[Param::Text(journey), Param::Text(user), Param::Text(key)],
    )?;
    let mut running = false;
    let mut latest: Option<i64> = None;
    for r in &rows {
        let state = r.text(0)?;
        running |= state == "active" || state == "waiting";
        let at = r.i64(1)?;
        latest = Some(latest.map_or(at, |l| l.max(at)));
    }
    Ok((!rows.is_empty(), running, latest))
}

/// Runs of a journey in progress.
pub fn active_runs(conn: &mut dyn Conn, journey: &str) -> Result<i64> {
    Ok(conn
        .query(
            "SELECT COUNT(*) FROM journey_runs WHERE journey = $1 AND state IN ('active', 'waiting')",
            &[Param::Text(journey)],
        )?
        .first()
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0))
}

/// Runs of `user` waiting for `event`.
pub fn waiting_for(conn: &mut dyn Conn, event: &str, user: &str) -> Result<Vec<RunRow>> {
    conn.query(
        &format!(
            "SELECT {RUN_COLUMNS} FROM journey_runs WHERE wait_event = $1 AND user_id = $2 AND state = 'waiting'"
        ),
        &[Param::Text(event), Param::Text(user)],
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

/// Runs of a user or of a journey, newest first.
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

/// Named counts (`step id → visits`, `state → runs`).
pub type Counts = Vec<(String, i64)>;

/// Per-step and per-state counts of a journey's runs: (visits per step id, runs per state).
pub fn run_counts(conn: &mut dyn Conn, journey: &str) -> Result<(Counts, Counts)> {
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
        .map(|r| Ok((r.text(0)?, r.i64(1)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok((steps.into_iter().collect(), states))
}

/// One message: sent, suppressed, skipped, failed… and what happened after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRow {
    /// Message id (the effect key's digest; also the email's Message-ID).
    pub id: String,
    /// The shop's user id.
    pub user_id: String,
    /// Journey.
    pub journey: Option<String>,
    /// Run.
    pub run_id: Option<String>,
    /// Step id.
    pub step: Option<String>,
    /// Channel used (or first wanted, when suppressed).
    pub channel: String,
    /// `marketing` or `transactional`.
    pub category: String,
    /// Campaign for attribution.
    pub campaign: Option<String>,
    /// `sending`, `sent`, `delivered`, `failed`, `suppressed`, `skipped`, `deferred`.
    pub status: String,
    /// Why (suppression, cap, provider error).
    pub reason: Option<String>,
    /// Address used.
    pub address: Option<String>,
    /// Subject or title.
    pub subject: Option<String>,
    /// Logged (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Delivery confirmed (ms).
    pub delivered_at: Option<i64>,
    /// First open (ms).
    pub opened_at: Option<i64>,
    /// First click (ms).
    pub clicked_at: Option<i64>,
    /// The run's goal reached after this message (ms).
    pub converted_at: Option<i64>,
}

const MESSAGE_COLUMNS: &str =
    "id, user_id, journey, run_id, step, channel, category, campaign, status, reason, \
     address, subject, created_at, updated_at, delivered_at, opened_at, clicked_at, converted_at";

fn message_of(r: &Row) -> Result<MessageRow> {
    Ok(MessageRow {
        id: r.text(0)?,
        user_id: r.text(1)?,
        journey: r.opt_text(2)?,
        run_id: r.opt_text(3)?,
        step: r.opt_text(4)?,
        channel: r.text(5)?,
        category: r.text(6)?,
        campaign: r.opt_text(7)?,
        status: r.text(8)?,
        reason: r.opt_text(9)?,
        address: r.opt_text(10)?,
        subject: r.opt_text(11)?,
        created_at: r.i64(12)?,
        updated_at: r.i64(13)?,
        delivered_at: r.opt_i64(14)?,
        opened_at: r.opt_i64(15)?,
        clicked_at: r.opt_i64(16)?,
        converted_at: r.opt_i64(17)?,
    })
}

/// Logs a message or updates its status (same id: status, reason, address, subject
/// change; a deferred message takes the time it finally goes out, which caps count).
pub fn log_message(conn: &mut dyn Conn, m: &MessageRow) -> Result<()> {
    conn.execute(
        "INSERT INTO messages (id, user_id, journey, run_id, step, channel, category, campaign, status, reason, \
         address, subject, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, reason = excluded.reason, \
         channel = excluded.channel, address = excluded.address, subject = excluded.subject, updated_at = excluded.updated_at, \
         created_at = CASE WHEN messages.status = 'deferred' THEN excluded.created_at ELSE messages.created_at END",
        &message_params(m),
    )?;
    Ok(())
}

/// The 14 columns every message insert writes, in the order of [`log_message`]'s SQL.
fn message_params(m: &MessageRow) -> [Param<'_>; 14] {
    [
        Param::Text(&m.id),
        Param::Text(&m.user_id),
        Param::OptText(m.journey.as_deref()),
        Param::OptText(m.run_id.as_deref()),
        Param::OptText(m.step.as_deref()),
        Param::Text(&m.channel),
        Param::Text(&m.category),
        Param::OptText(m.campaign.as_deref()),
        Param::Text(&m.status),
        Param::OptText(m.reason.as_deref()),
        Param::OptText(m.address.as_deref()),
        Param::OptText(m.subject.as_deref()),
        Param::I64(m.created_at),
        Param::I64(m.updated_at),
    ]
}

/// Records a message as it ended up — every time field included — for a history made
/// outside the engine (the demo's past broadcast campaigns); an id already logged is
/// left as it is.
pub fn record_history(conn: &mut dyn Conn, m: &MessageRow) -> Result<()> {
    conn.execute(
        "INSERT INTO messages (id, user_id, journey, run_id, step, channel, category, campaign, status, reason, \
         address, subject, created_at, updated_at, delivered_at, opened_at, clicked_at, converted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (id) DO NOTHING",
        &[
            message_params(m).as_slice(),
            &[
                Param::OptI64(m.delivered_at),
                Param::OptI64(m.opened_at),
                Param::OptI64(m.clicked_at),
                Param::OptI64(m.converted_at),
            ],
        ]
        .concat(),
    )?;
    Ok(())
}

/// A message by id.
pub fn message(conn: &mut dyn Conn, id: &str) -> Result<Option<MessageRow>> {
    conn.query(
        &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"),
        &[Param::Text(id)],
    )?
    .first()
    .map(message_of)
    .transpose()
}

/// Writes what a delivery report changes on message `id` at `at` (ms), as decided by
/// [`crate::callback::change`]; an empty change writes nothing. First times are kept.
pub fn apply_change(conn: &mut dyn Conn, id: &str, change: &crate::callback::Change, at: i64) -> Result<()> {
    if change.is_empty() {
        return Ok(());
    }
    let mut sets = vec!["updated_at = $1".to_string()];
    let mut params = vec![Param::I64(at)];
    if let Some(status) = change.status {
        params.push(Param::Text(status));
        sets.push(format!("status = ${}", params.len()));
        if change.reason.is_some() {
            params.push(Param::OptText(change.reason.as_deref()));
            sets.push(format!("reason = ${}", params.len()));
        }
    }
    for (set, column) in [
        (change.delivered, "delivered_at"),
        (change.opened, "opened_at"),
        (change.clicked, "clicked_at"),
    ] {
        if set {
            sets.push(format!("{column} = COALESCE({column}, $1)"));
        }
    }
    params.push(Param::Text(id));
    let sql = format!(
        "UPDATE messages SET {} WHERE id = ${}",
        sets.join(", "),
        params.len()
    );
    conn.execute(&sql, &params)?;
    Ok(())
}

/// Messages of a user, a journey or a run, newest first.
pub fn messages(
    conn: &mut dyn Conn,
    column: MessageFilter,
    value: &str,
    limit: i64,
) -> Result<Vec<MessageRow>> {
    let col = match column {
        MessageFilter::User => "user_id",
        MessageFilter::Journey => "journey",
        MessageFilter::Run => "run_id",
    };
    conn.query(
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE {col} = $1 ORDER BY created_at DESC, id LIMIT $2"
        ),
        &[Param::Text(value), Param::I64(limit)],
    )?
    .iter()
    .map(message_of)
    .collect()
}

/// Which messages to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFilter {
    /// Of a user.
    User,
    /// Of a journey.
    Journey,
    /// Of a run.
    Run,
}

/// Marketing messages sent to a user since `since`: (channel, sent at) for frequency caps.
pub fn sent_since(conn: &mut dyn Conn, user: &str, since: i64) -> Result<Vec<(String, i64)>> {
    conn.query(
        "SELECT channel, created_at FROM messages WHERE user_id = $1 AND created_at >= $2 \
         AND category = 'marketing' AND status IN ('sending', 'sent', 'delivered')",
        &[Param::Text(user), Param::I64(since)],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.i64(1)?)))
    .collect()
}

/// A user's consent rows: (channel or `*` for global suppression, state, source, updated).
pub fn consents(conn: &mut dyn Conn, user: &str) -> Result<Vec<(String, String, String, i64)>> {
    conn.query(
        "SELECT channel, state, source, updated_at FROM consents WHERE user_id = $1 ORDER BY channel",
        &[Param::Text(user)],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.i64(3)?)))
    .collect()
}

/// Sets a user's consent for one channel (`*`: global suppression, state `suppressed` or
/// `none` to lift it).
pub fn set_consent(
    conn: &mut dyn Conn,
    user: &str,
    channel: &str,
    state: &str,
    source: &str,
    now: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO consents (user_id, channel, state, source, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, channel) DO UPDATE SET state = excluded.state, source = excluded.source, \
         updated_at = excluded.updated_at",
        &[
            Param::Text(user),
            Param::Text(channel),
            Param::Text(state),
            Param::Text(source),
            Param::I64(now),
        ],
    )?;
    Ok(())
}

/// The settings key of the engine's position in the event log.
const EVENT_CURSOR: &str = "journeys_event_cursor";

/// The engine's position in the event log (events with a greater `seq` are not yet
/// looked at for triggers, awaited events and goals).
pub fn event_cursor(conn: &mut dyn Conn) -> Result<Option<i64>> {
    flywheel_store::log_cursor::get(conn, EVENT_CURSOR)
}

/// Moves the event cursor.
pub fn set_event_cursor(conn: &mut dyn Conn, seq: i64) -> Result<()> {
    flywheel_store::log_cursor::set(conn, EVENT_CURSOR, seq)
}

/// The profile of the shop's user `user` and its stored traits (`None` and no traits
/// for a user never seen).
pub fn profile_of_user(
    conn: &mut dyn Conn,
    user: &str,
) -> Result<(Option<String>, serde_json::Map<String, serde_json::Value>)> {
    let Some(p) =
        flywheel_store::read::profile_id_of(conn, &flywheel_core::Identity::User(user.to_string()))?
    else {
        return Ok((None, serde_json::Map::new()));
    };
    let traits = flywheel_store::read::profile(conn, &p)?
        .map(|p| p.traits)
        .unwrap_or_default();
    Ok((Some(p.0), traits))
}

/// A stored event for the trigger tail.
#[derive(Debug, Clone)]
pub struct TailEvent {
    /// Sequence number.
    pub seq: i64,
    /// Message id.
    pub message_id: String,
    /// Event name (track events).
    pub name: String,
    /// The shop's user id.
    pub user_id: String,
    /// The event JSON.
    pub body: String,
    /// Event time (ms).
    pub ts: i64,
    /// Sent with a client-scoped write key (a browser or app): its orders, refunds and
    /// cancellations are behaviour only.
    pub from_client: bool,
}

/// Track events with a user id after `after`, in order; `None` skips nothing but tells
/// the highest sequence number read (events without a user still move the cursor).
pub fn events_after(conn: &mut dyn Conn, after: i64, limit: i64) -> Result<(Vec<TailEvent>, i64)> {
    let rows = conn.query(
        "SELECT e.seq, e.message_id, e.name, e.user_id, e.body, e.ts, e.kind, k.scope FROM events e \
         LEFT JOIN write_keys k ON k.id = e.source WHERE e.seq > $1 ORDER BY e.seq LIMIT $2",
        &[Param::I64(after), Param::I64(limit)],
    )?;
    let mut last = after;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let seq = r.i64(0)?;
        last = last.max(seq);
        let (Some(name), Some(user)) = (r.opt_text(2)?, r.opt_text(3)?) else {
            continue;
        };
        if r.text(6)? != "track" {
            continue;
        }
        out.push(TailEvent {
            seq,
            message_id: r.text(1)?,
            name,
            user_id: user,
            body: r.text(4)?,
            ts: r.i64(5)?,
            from_client: r.opt_text(7)?.as_deref() == Some("client"),
        });
    }
    Ok((out, last))
}

/// The highest event sequence number stored (0 when none).
pub fn last_event_seq(conn: &mut dyn Conn) -> Result<i64> {
    flywheel_store::log_cursor::last_seq(conn)
}
