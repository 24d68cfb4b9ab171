//! The shared log of committed ingest batches, which every process of a deployment folds
//! in the same order (the audience engine of each `api` and `worker` process).
//!
//! **Order.** Every write transaction takes the store's writer lock (one SQLite writer;
//! on PostgreSQL a transaction-scoped advisory lock held until after the commit is
//! visible), so batches commit one at a time and event `seq`s are handed out in commit
//! order: once a reader sees the batch ending at `seq` N, every batch ending below N is
//! visible too, and no batch ending at or below N can appear later. A reader that keeps
//! the highest `last_seq` it has folded therefore never skips a batch nor reads one
//! twice. Numbers may be missing (a rolled-back transaction used them); the order has
//! no holes that fill later.
//!
//! **Content.** A batch row holds the identity merges the batch made, in the order
//! applied, and the profile each stored event was resolved to, so a process that did
//! not ingest the batch reproduces exactly the engine state of the one that did.

use serde::{Deserialize, Serialize};

use flywheel_core::{Event, ProfileId};

use crate::conn::{Conn, Param, Sql};
use crate::{Error, Result};

/// What a batch row stores besides its range.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Body {
    /// `(loser, winner)` in the order applied.
    merges: Vec<(String, String)>,
    /// Per stored event in `seq` order: its profile.
    profiles: Vec<String>,
}

/// One stored event of a batch.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    /// Its position in the event log.
    pub seq: i64,
    /// The event as stored.
    pub event: Event,
    /// The system's own write (not customer activity).
    pub system_write: bool,
    /// The write key it came with, if any.
    pub source: Option<String>,
    /// The profile it was resolved to when stored (`None`: it named no identity).
    pub profile: Option<ProfileId>,
}

/// One committed ingest batch, as every process folds it.
#[derive(Debug, Clone)]
pub struct LoggedBatch {
    /// The highest event `seq` of the batch: the log position after folding it.
    pub last_seq: i64,
    /// Identity merges `(loser, winner)` the batch made, in the order applied.
    pub merges: Vec<(ProfileId, ProfileId)>,
    /// The events it stored, in `seq` order.
    pub events: Vec<LoggedEvent>,
}

/// Records the batch just stored by the caller's write transaction: the events stored
/// after `before` (the highest `seq` before the insert), their profiles by `messageId`,
/// and the merges; returns the position after it (`None`: nothing was stored). Called
/// inside the writer's transaction, so nothing else is inserted in between.
pub(crate) fn record(
    conn: &mut dyn Conn,
    before: i64,
    profile_of: &std::collections::HashMap<&str, &ProfileId>,
    merges: &[(ProfileId, ProfileId)],
    at: i64,
) -> Result<Option<i64>> {
    let rows = conn.query(
        "SELECT seq, message_id FROM events WHERE seq > $1 ORDER BY seq",
        &[Param::I64(before)],
    )?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(None);
    };
    let (first_seq, last_seq) = (first.i64(0)?, last.i64(0)?);
    let mut body = Body {
        merges: merges.iter().map(|(l, w)| (l.0.clone(), w.0.clone())).collect(),
        profiles: Vec::with_capacity(rows.len()),
    };
    for r in &rows {
        // An event without an identity has no profile: logged as "" and skipped by folds.
        let id = r.text(1)?;
        body.profiles.push(
            profile_of
                .get(id.as_str())
                .map(|p| p.0.clone())
                .unwrap_or_default(),
        );
    }
    let body = serde_json::to_string(&body).map_err(|e| Error::Corrupt(e.to_string()))?;
    conn.execute(
        "INSERT INTO event_batches (last_seq, first_seq, events, at, body) VALUES ($1, $2, $3, $4, $5)",
        &[
            Param::I64(last_seq),
            Param::I64(first_seq),
            Param::I64(rows.len() as i64),
            Param::I64(at),
            Param::Text(&body),
        ],
    )?;
    Ok(Some(last_seq))
}

/// The highest event `seq` stored (0 when none): the log position that a rebuild from
/// the store in the same read transaction stands at.
pub fn head(conn: &mut dyn Conn) -> Result<i64> {
    crate::log_cursor::last_seq(conn)
}

/// The batches after `position`, in order, until about `max_events` events are read (at
/// least one batch when there is one).
pub fn after(conn: &mut dyn Conn, position: i64, max_events: i64) -> Result<Vec<LoggedBatch>> {
    let rows = conn.query(
        "SELECT last_seq, first_seq, events, body FROM event_batches WHERE last_seq > $1 ORDER BY last_seq LIMIT 1000",
        &[Param::I64(position)],
    )?;
    let mut out = Vec::new();
    let mut total = 0i64;
    for r in rows {
        if total >= max_events && !out.is_empty() {
            break;
        }
        let (last_seq, first_seq, count) = (r.i64(0)?, r.i64(1)?, r.i64(2)?);
        let body: Body = serde_json::from_str(&r.text(3)?)
            .map_err(|e| Error::Corrupt(format!("event batch {last_seq}: {e}")))?;
        let events = conn.query(
            "SELECT seq, body, system_write, source FROM events WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
            &[Param::I64(first_seq), Param::I64(last_seq)],
        )?;
        if events.len() != body.profiles.len() {
            return Err(Error::Corrupt(format!(
                "event batch {last_seq}: {} events stored, {} profiles logged",
                events.len(),
                body.profiles.len()
            )));
        }
        let mut logged = Vec::with_capacity(events.len());
        for (e, profile) in events.into_iter().zip(body.profiles) {
            let seq = e.i64(0)?;
            let event: Event = serde_json::from_str(&e.text(1)?)
                .map_err(|err| Error::Corrupt(format!("event {seq}: {err}")))?;
            logged.push(LoggedEvent {
                seq,
                event,
                system_write: e.i64(2)? != 0,
                source: e.opt_text(3)?,
                profile: (!profile.is_empty()).then_some(ProfileId(profile)),
            });
        }
        total += count;
        out.push(LoggedBatch {
            last_seq,
            merges: body
                .merges
                .into_iter()
                .map(|(l, w)| (ProfileId(l), ProfileId(w)))
                .collect(),
            events: logged,
        });
    }
    Ok(out)
}

/// Deletes batch rows recorded before `before` (ms); returns how many. A process whose
/// position is older than the oldest kept batch rebuilds from the store instead.
pub fn prune(conn: &mut dyn Conn, before: i64) -> Result<u64> {
    conn.execute("DELETE FROM event_batches WHERE at < $1", &[Param::I64(before)])
}

/// The oldest position the log can still be followed from: the `last_seq` before the
/// oldest kept batch (`None` when no batch is kept).
pub fn oldest_followable(conn: &mut dyn Conn) -> Result<Option<i64>> {
    conn.query("SELECT MIN(first_seq) FROM event_batches", &[])?
        .first()
        .map(|r| r.opt_i64(0))
        .transpose()
        .map(|o| o.flatten().map(|first| first - 1))
}
