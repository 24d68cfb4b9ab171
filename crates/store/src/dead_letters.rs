//! The dead-letter list (migration 018): work a workflow that follows the event log gave
//! up on after repeated failures of its own, so its cursor could move on without losing
//! it. One row per (workflow, event `seq`); a retry that succeeds deletes the row, one
//! that fails counts another attempt.

use crate::conn::{Conn, Param, Row};
use crate::Result;

/// A dead-lettered event of one workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRow {
    /// Its id (stable while listed).
    pub id: i64,
    /// The workflow that could not apply it (`order_rewards`).
    pub workflow: String,
    /// The event's position in the log.
    pub seq: i64,
    /// The event's message id.
    pub message_id: String,
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
    "id, workflow, seq, message_id, user_id, error, attempts, first_failed_at, last_failed_at";

fn row_of(r: &Row) -> Result<DeadLetterRow> {
    Ok(DeadLetterRow {
        id: r.i64(0)?,
        workflow: r.text(1)?,
        seq: r.i64(2)?,
        message_id: r.text(3)?,
        user_id: r.opt_text(4)?,
        error: r.text(5)?,
        attempts: r.i64(6)?,
        first_failed_at: r.i64(7)?,
        last_failed_at: r.i64(8)?,
    })
}

/// Records `row` (its `id` is ignored) and returns its id; an event already listed for the
/// workflow keeps its id and first failure and takes the new error, attempts and time.
pub fn record(conn: &mut dyn Conn, row: &DeadLetterRow) -> Result<i64> {
    conn.query(
        "INSERT INTO dead_letters (workflow, seq, message_id, user_id, error, attempts, first_failed_at, last_failed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (workflow, seq) DO UPDATE SET error = excluded.error, attempts = excluded.attempts, \
         last_failed_at = excluded.last_failed_at RETURNING id",
        &[
            Param::Text(&row.workflow),
            Param::I64(row.seq),
            Param::Text(&row.message_id),
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

/// A retry of `id` succeeded: it leaves the list. False when it was not listed.
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
