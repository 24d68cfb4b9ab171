//! The dead-letter list (migrations 018, 021): work a workflow gave up on after repeated
//! failures, so it could go on without losing it. One row per (workflow, item): the item
//! is the event `seq` (in decimal) for a workflow that follows the event log, `RUN/STEP`
//! for a journey step. A retry that succeeds, or a dismissal, deletes the row; a retry
//! that fails counts another attempt.

use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

/// A dead-lettered event of one workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRow {
    /// Its id (stable while listed).
    pub id: i64,
    /// The workflow that could not apply it (`order_rewards`, `journeys`).
    pub workflow: String,
    /// What failed, unique within the workflow: the event `seq` in decimal, or `RUN/STEP`.
    pub item: String,
    /// The event's position in the log (workflows that follow the log).
    pub seq: Option<i64>,
    /// The event's message id (workflows that follow the log).
    pub message_id: Option<String>,
    /// The user the event belongs to, if known.
    pub user_id: Option<String>,
    /// The last error.
    pub error: String,
    /// How many times applying it failed.
    pub attempts: i64,
    /// First failure (ms).
    pub first_failed_at: i64,
    /// Last failure (ms).
    pub last_failed_at: i64,
}

const COLUMNS: &str =
    "id, workflow, item, seq, message_id, user_id, error, attempts, first_failed_at, last_failed_at";

fn row_of(r: &Row) -> Result<DeadLetterRow> {
    Ok(DeadLetterRow {
        id: r.i64(0)?,
        workflow: r.text(1)?,
        item: r.text(2)?,
        seq: r.opt_i64(3)?,
        message_id: r.opt_text(4)?,
        user_id: r.opt_text(5)?,
        error: r.text(6)?,
        attempts: r.i64(7)?,
        first_failed_at: r.i64(8)?,
        last_failed_at: r.i64(9)?,
    })
}

/// Records `row` (its `id` is ignored) and returns its id; an item already listed for the
/// workflow keeps its id and first failure and takes the new error, attempts and time.
pub fn record(conn: &mut dyn Conn, row: &DeadLetterRow) -> Result<i64> {
    conn.query(
        "INSERT INTO dead_letters (workflow, item, seq, message_id, user_id, error, attempts, first_failed_at, last_failed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (workflow, item) DO UPDATE SET error = excluded.error, attempts = excluded.attempts, \
         last_failed_at = excluded.last_failed_at RETURNING id",
        &[
            Param::Text(&row.workflow),
            Param::Text(&row.item),
            Param::OptI64(row.seq),
            Param::OptText(row.message_id.as_deref()),
            Param::OptText(row.user_id.as_deref()),
            Param::Text(&row.error),
            Param::I64(row.attempts),
            Param::I64(row.first_failed_at),
            Param::I64(row.last_failed_at),
        ],
    )?
    .first()
    .map(|r| r.i64(0))
    .transpose()?
    .ok_or_else(|| crate::Error::Database("dead letter not recorded".into()))
}

/// Every listed event, of `workflow` only when given, oldest first.
pub fn list(conn: &mut dyn Conn, workflow: Option<&str>) -> Result<Vec<DeadLetterRow>> {
    let rows = match workflow {
        Some(w) => conn.query(
            &format!("SELECT {COLUMNS} FROM dead_letters WHERE workflow = $1 ORDER BY id"),
            &[Param::Text(w)],
        )?,
        None => conn.query(&format!("SELECT {COLUMNS} FROM dead_letters ORDER BY id"), &[])?,
    };
    rows.iter().map(row_of).collect()
}

/// One listed event.
pub fn get(conn: &mut dyn Conn, id: i64) -> Result<Option<DeadLetterRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM dead_letters WHERE id = $1"),
        &[Param::I64(id)],
    )?
    .first()
    .map(row_of)
    .transpose()
}

/// A retry of `id` failed again with `error` at `at` (ms): one more attempt.
pub fn failed_again(conn: &mut dyn Conn, id: i64, error: &str, at: i64) -> Result<()> {
    conn.execute(
        "UPDATE dead_letters SET attempts = attempts + 1, error = $1, last_failed_at = $2 WHERE id = $3",
        &[Param::Text(error), Param::I64(at), Param::I64(id)],
    )?;
    Ok(())
}

/// The item `item` of `workflow`, if listed.
pub fn of_item(conn: &mut dyn Conn, workflow: &str, item: &str) -> Result<Option<DeadLetterRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM dead_letters WHERE workflow = $1 AND item = $2"),
        &[Param::Text(workflow), Param::Text(item)],
    )?
    .first()
    .map(row_of)
    .transpose()
}

/// A retry of `id` succeeded, or it was dismissed: it leaves the list. False when it was
/// not listed.
pub fn remove(conn: &mut dyn Conn, id: i64) -> Result<bool> {
    Ok(conn.execute("DELETE FROM dead_letters WHERE id = $1", &[Param::I64(id)])? == 1)
}

/// How many events are listed per workflow.
pub fn counts(conn: &mut dyn Conn) -> Result<Vec<(String, i64)>> {
    conn.query(
        "SELECT workflow, COUNT(*) FROM dead_letters GROUP BY workflow ORDER BY workflow",
        &[],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.i64(1)?)))
    .collect()
}
