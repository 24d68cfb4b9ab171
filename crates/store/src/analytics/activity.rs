//! What customers did, as the shop reports read it from the event log: visitors,
//! sign-ups, activity times and event names. Every row is keyed by its person: the
//! resolved profile by the current identities graph ([`crate::person`]), so a person's
//! anonymous and signed-in events, and events from before a merge, count as one. Only
//! customer events count: the system's own writes are left out ([`crate::activity`]).

use crate::activity::CUSTOMER_EVENT;
use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::person::EVENT_PERSON;
use crate::Result;

/// One event of someone: who (their person, a profile id) and when (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The person (profile id).
    pub person: String,
    /// When (ms).
    pub at: i64,
}

fn seen_of(r: &Row) -> Result<Seen> {
    Ok(Seen {
        person: r.text(0)?,
        at: r.i64(1)?,
    })
}

/// One event of a person with its name (`""` for unnamed calls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedEvent {
    /// The person (profile id).
    pub person: String,
    /// When (ms).
    pub at: i64,
    /// The event's name (track event or page/screen name), `""` when it has none.
    pub name: String,
}

/// The columns [`named_of`] reads, over `events e`.
pub(crate) fn named_columns() -> String {
    format!("{EVENT_PERSON}, e.ts, COALESCE(e.name, '')")
}

/// A [`NamedEvent`] from a row of [`named_columns`].
pub(crate) fn named_of(r: &Row) -> Result<NamedEvent> {
    Ok(NamedEvent {
        person: r.text(0)?,
        at: r.i64(1)?,
        name: r.text(2)?,
    })
}

/// A person's last activity before a period's start and before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastActivity {
    /// The person (profile id).
    pub person: String,
    /// Their last customer event before the period's start (within the look-back), ms.
    pub before_from: Option<i64>,
    /// Their last customer event before the period's end, ms.
    pub before_to: Option<i64>,
}

/// Distinct visitors (persons with a customer event) in `[from, to)`.
pub fn visitor_count(conn: &mut dyn Conn, from: i64, to: i64) -> Result<i64> {
    Ok(conn
        .query(
            &format!(
                "SELECT COUNT(DISTINCT {EVENT_PERSON}) FROM events e \
                 WHERE e.ts >= $1 AND e.ts < $2 AND {CUSTOMER_EVENT}"
            ),
            &[Param::I64(from), Param::I64(to)],
        )?
        .first()
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0))
}

/// Every customer event in `[from, to)` as a visit: its person and when.
pub fn visits(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<Seen>> {
    conn.query(
        &format!(
            "SELECT {EVENT_PERSON}, e.ts FROM events e WHERE e.ts >= $1 AND e.ts < $2 AND {CUSTOMER_EVENT}"
        ),
        &[Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(seen_of)
    .collect()
}

/// Each person's first customer track event named `name` (ms), all time.
pub fn first_track_of(conn: &mut dyn Conn, name: &str) -> Result<Vec<Seen>> {
    conn.query(
        &format!(
            "SELECT p, MIN(ts) FROM (SELECT {EVENT_PERSON} AS p, e.ts FROM events e \
             WHERE e.kind = 'track' AND e.name = $1 AND {CUSTOMER_EVENT}) x GROUP BY p"
        ),
        &[Param::Text(name)],
    )?
    .iter()
    .map(seen_of)
    .collect()
}

/// Every customer event at or after `from`: its person and when.
pub fn person_events_since(conn: &mut dyn Conn, from: i64) -> Result<Vec<Seen>> {
    conn.query(
        &format!("SELECT {EVENT_PERSON}, e.ts FROM events e WHERE e.ts >= $1 AND {CUSTOMER_EVENT}"),
        &[Param::I64(from)],
    )?
    .iter()
    .map(seen_of)
    .collect()
}

/// Every customer event at or after `from`, with its person and name.
pub fn named_events_since(conn: &mut dyn Conn, from: i64) -> Result<Vec<NamedEvent>> {
    conn.query(
        &format!(
            "SELECT {} FROM events e WHERE e.ts >= $1 AND {CUSTOMER_EVENT}",
            named_columns()
        ),
        &[Param::I64(from)],
    )?
    .iter()
    .map(named_of)
    .collect()
}

/// Each person with a customer event in `[look_back_from, to)`: their last one before
/// `from` and their last one before `to`.
pub fn last_activity(
    conn: &mut dyn Conn,
    from: i64,
    look_back_from: i64,
    to: i64,
) -> Result<Vec<LastActivity>> {
    conn.query(
        &format!(
            "SELECT p, MAX(CASE WHEN ts < $1 THEN ts END), MAX(ts) FROM \
             (SELECT {EVENT_PERSON} AS p, e.ts FROM events e WHERE e.ts >= $2 AND e.ts < $3 AND {CUSTOMER_EVENT}) x \
             GROUP BY p"
        ),
        &[Param::I64(from), Param::I64(look_back_from), Param::I64(to)],
    )?
    .iter()
    .map(|r| {
        Ok(LastActivity {
            person: r.text(0)?,
            before_from: r.opt_i64(1)?,
            before_to: r.opt_i64(2)?,
        })
    })
    .collect()
}
