//! What the funnel report reads: the steps' track events, profile trait values for a
//! breakdown by trait, and the stored bodies of step-1 events for a breakdown by event
//! property. Every row is keyed by its person ([`crate::person`]): a step taken while
//! logged out counts for the person who later signed in.

use crate::activity::CUSTOMER_EVENT;
use crate::analytics::activity::{named_columns, named_of, NamedEvent};
use crate::conn::Sql;
use crate::conn::{placeholders, Conn, Param, Row};
use crate::person::EVENT_PERSON;
use crate::Result;

/// Customer track events named one of `steps` in `[from, to)`, of every person
/// (anonymous ones included).
pub fn step_events(conn: &mut dyn Conn, steps: &[String], from: i64, to: i64) -> Result<Vec<NamedEvent>> {
    let sql = format!(
        "SELECT {} FROM events e WHERE e.kind = 'track' AND {CUSTOMER_EVENT} \
         AND e.ts >= $1 AND e.ts < $2 AND e.name IN ({})",
        named_columns(),
        placeholders(3, steps.len())
    );
    let mut params = vec![Param::I64(from), Param::I64(to)];
    params.extend(steps.iter().map(|s| Param::Text(s)));
    conn.query(&sql, &params)?.iter().map(named_of).collect()
}

/// A person's stored value of one profile trait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraitValue {
    /// The person (profile id).
    pub person: String,
    /// The value as stored (JSON text).
    pub value: String,
}

/// Each person's stored value of profile trait `key`.
pub fn trait_values(conn: &mut dyn Conn, key: &str) -> Result<Vec<TraitValue>> {
    conn.query(
        "SELECT profile_id, value FROM profile_traits WHERE key = $1",
        &[Param::Text(key)],
    )?
    .iter()
    .map(|r| {
        Ok(TraitValue {
            person: r.text(0)?,
            value: r.text(1)?,
        })
    })
    .collect()
}

/// A stored event body of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBody {
    /// The person (profile id).
    pub person: String,
    /// When (ms).
    pub at: i64,
    /// The event as stored (JSON text).
    pub body: String,
}

fn body_of(r: &Row) -> Result<EventBody> {
    Ok(EventBody {
        person: r.text(0)?,
        at: r.i64(1)?,
        body: r.text(2)?,
    })
}

/// Customer track events named `step` in `[from, to)` with their person, oldest first.
pub fn step_bodies(conn: &mut dyn Conn, step: &str, from: i64, to: i64) -> Result<Vec<EventBody>> {
    conn.query(
        &format!(
            "SELECT {EVENT_PERSON}, e.ts, e.body FROM events e WHERE e.kind = 'track' AND {CUSTOMER_EVENT} \
             AND e.name = $1 AND e.ts >= $2 AND e.ts < $3 ORDER BY e.ts, e.seq"
        ),
        &[Param::Text(step), Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(body_of)
    .collect()
}
