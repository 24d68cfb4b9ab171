//! What the funnel report reads: the steps' track events, profile trait values for a
//! breakdown by trait, and the stored bodies of step-1 events for a breakdown by event
//! property.

use crate::analytics::activity::{named_of, NamedEvent, NAMED_COLUMNS};
use crate::conn::Sql;
use crate::conn::{placeholders, Conn, Param, Row};
use crate::Result;

/// Track events of known users named one of `steps` in `[from, to)`.
pub fn step_events(conn: &mut dyn Conn, steps: &[String], from: i64, to: i64) -> Result<Vec<NamedEvent>> {
    let sql = format!(
        "SELECT {NAMED_COLUMNS} FROM events WHERE kind = 'track' AND user_id IS NOT NULL \
         AND ts >= $1 AND ts < $2 AND name IN ({})",
        placeholders(3, steps.len())
    );
    let mut params = vec![Param::I64(from), Param::I64(to)];
    params.extend(steps.iter().map(|s| Param::Text(s)));
    conn.query(&sql, &params)?.iter().map(named_of).collect()
}

/// A user's stored value of one profile trait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitValue {
    /// The user id.
    pub user_id: String,
    /// The value as stored (JSON text).
    pub value: String,
}

/// Each user id's stored value of profile trait `key` (every user id of a profile
/// carries its profile's value).
pub fn trait_values(conn: &mut dyn Conn, key: &str) -> Result<Vec<TraitValue>> {
    conn.query(
        "SELECT substr(i.id, 6), t.value FROM profile_traits t JOIN identities i ON i.profile_id = t.profile_id \
         WHERE t.key = $1 AND i.id LIKE 'user:%'",
        &[Param::Text(key)],
    )?
    .iter()
    .map(|r| {
        Ok(TraitValue {
            user_id: r.text(0)?,
            value: r.text(1)?,
        })
    })
    .collect()
}

/// A stored event body of a known user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBody {
    /// The user id.
    pub user_id: String,
    /// When (ms).
    pub at: i64,
    /// The event as stored (JSON text).
    pub body: String,
}

const BODY_COLUMNS: &str = "user_id, ts, body";

fn body_of(r: &Row) -> Result<EventBody> {
    Ok(EventBody {
        user_id: r.text(0)?,
        at: r.i64(1)?,
        body: r.text(2)?,
    })
}

/// Track events of known users named `step` in `[from, to)`, oldest first.
pub fn step_bodies(conn: &mut dyn Conn, step: &str, from: i64, to: i64) -> Result<Vec<EventBody>> {
    conn.query(
        &format!(
            "SELECT {BODY_COLUMNS} FROM events WHERE kind = 'track' AND user_id IS NOT NULL \
             AND name = $1 AND ts >= $2 AND ts < $3 ORDER BY ts"
        ),
        &[Param::Text(step), Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(body_of)
    .collect()
}
