//! Written weekly and monthly reviews (table `reviews`, owned by analytics): one per
//! cadence and period, whichever process writes it first, with what sending it came to.
//! Sending is claimed try by try (a conditional update on the try count), so two
//! processes never send the same try twice.

use crate::conn::Sql;
use serde::Serialize;

use crate::conn::{Conn, Param, Row};
use crate::Result;

/// A stored review as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewEntry {
    /// Its id.
    pub id: i64,
    /// Weekly or monthly.
    pub cadence: String,
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
    /// When it was written (ms).
    pub created_at: i64,
    /// What the last sending came to (`email: sent to 2 of 2; webhook: HTTP 200`, an
    /// error), if it was sent.
    pub delivery: Option<String>,
    /// Times sending was tried.
    pub attempts: i64,
    /// When it went out to everyone (ms); `None` while still to send.
    pub sent_at: Option<i64>,
}

/// A review to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewReview<'a> {
    /// `weekly` or `monthly`.
    pub cadence: &'a str,
    /// First day (`YYYY-MM-DD`).
    pub from: &'a str,
    /// Last day (`YYYY-MM-DD`).
    pub to: &'a str,
    /// When it was written (ms).
    pub created_at: i64,
    /// The report as JSON.
    pub body: &'a str,
}

/// A stored review still to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsentReview {
    /// Its id.
    pub id: i64,
    /// Tries so far.
    pub attempts: i64,
    /// The report as written (JSON).
    pub body: String,
}

const COLUMNS: &str = "id, cadence, period_from, period_to, created_at, delivery, attempts, sent_at";

fn row_of(r: &Row) -> Result<ReviewEntry> {
    Ok(ReviewEntry {
        id: r.i64(0)?,
        cadence: r.text(1)?,
        from: r.text(2)?,
        to: r.text(3)?,
        created_at: r.i64(4)?,
        delivery: r.opt_text(5)?,
        attempts: r.i64(6)?,
        sent_at: r.opt_i64(7)?,
    })
}

/// Whether the `cadence` review of the period starting `from` was written.
pub fn exists(conn: &mut dyn Conn, cadence: &str, from: &str) -> Result<bool> {
    Ok(!conn
        .query(
            "SELECT id FROM reviews WHERE cadence = $1 AND period_from = $2",
            &[Param::Text(cadence), Param::Text(from)],
        )?
        .is_empty())
}

/// Stores `review` unless its cadence and period already have one; returns the new id,
/// `None` when one was already written (then nothing changes).
pub fn insert(conn: &mut dyn Conn, review: &NewReview<'_>) -> Result<Option<i64>> {
    conn.query(
        "INSERT INTO reviews (cadence, period_from, period_to, created_at, body) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (cadence, period_from) DO NOTHING RETURNING id",
        &[
            Param::Text(review.cadence),
            Param::Text(review.from),
            Param::Text(review.to),
            Param::I64(review.created_at),
            Param::Text(review.body),
        ],
    )?
    .first()
    .map(|r| r.i64(0))
    .transpose()
}

/// Counts a try at sending review `id` if it was tried `attempts` times and is not sent;
/// true when this caller won the try.
pub fn claim_send(conn: &mut dyn Conn, id: i64, attempts: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE reviews SET attempts = attempts + 1 WHERE id = $1 AND attempts = $2 AND sent_at IS NULL",
        &[Param::I64(id), Param::I64(attempts)],
    )? == 1)
}

/// Records what sending review `id` came to, and `sent_at` when it reached everyone.
pub fn record_delivery(conn: &mut dyn Conn, id: i64, delivery: &str, sent_at: Option<i64>) -> Result<()> {
    conn.execute(
        "UPDATE reviews SET delivery = $1, sent_at = $2 WHERE id = $3",
        &[Param::Text(delivery), Param::OptI64(sent_at), Param::I64(id)],
    )?;
    Ok(())
}

/// Reviews written since `since` (ms), tried fewer than `max_attempts` times and not
/// sent, oldest first.
pub fn unsent(conn: &mut dyn Conn, since: i64, max_attempts: i64) -> Result<Vec<UnsentReview>> {
    conn.query(
        "SELECT id, attempts, body FROM reviews WHERE sent_at IS NULL AND attempts < $1 AND created_at >= $2 \
         ORDER BY created_at, id",
        &[Param::I64(max_attempts), Param::I64(since)],
    )?
    .iter()
    .map(|r| {
        Ok(UnsentReview {
            id: r.i64(0)?,
            attempts: r.i64(1)?,
            body: r.text(2)?,
        })
    })
    .collect()
}

/// The stored reviews, newest period first, at most `limit`.
pub fn list(conn: &mut dyn Conn, limit: i64) -> Result<Vec<ReviewEntry>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM reviews ORDER BY period_to DESC, cadence DESC, id DESC LIMIT $1"),
        &[Param::I64(limit)],
    )?
    .iter()
    .map(row_of)
    .collect()
}

/// Stored review `id` with its report as written (JSON), if any.
pub fn get(conn: &mut dyn Conn, id: i64) -> Result<Option<(ReviewEntry, String)>> {
    conn.query(
        &format!("SELECT {COLUMNS}, body FROM reviews WHERE id = $1"),
        &[Param::I64(id)],
    )?
    .first()
    .map(|r| Ok((row_of(r)?, r.text(8)?)))
    .transpose()
}
