//! Saved funnels (table `saved_funnels`, owned by analytics): a funnel's steps, window and
//! breakdown kept under a name so it is run again by name.

use serde::Serialize;

use crate::conn::{Conn, Param, Row, Sql};
use crate::Result;

/// A funnel definition kept under a name; serialized as the API and the CLI show it
/// (`{name, steps, window_hours, breakdown_by, created_at}`, the funnel report's names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SavedFunnel {
    /// Its name (unique).
    pub name: String,
    /// The event names of its steps, in order.
    pub steps: Vec<String>,
    /// The conversion window, ms (serialized as `window_hours`).
    #[serde(rename = "window_hours", serialize_with = "as_hours")]
    pub window_ms: i64,
    /// The breakdown key (a profile trait or a step-1 event property), if any
    /// (serialized as `breakdown_by`).
    #[serde(rename = "breakdown_by")]
    pub breakdown: Option<String>,
    /// When it was saved (ms).
    pub created_at: i64,
}

fn as_hours<S: serde::Serializer>(ms: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(*ms as f64 / 3_600_000.0)
}

const COLUMNS: &str = "name, steps, window_ms, breakdown, created_at";

fn row_of(r: &Row) -> Result<SavedFunnel> {
    let steps = r.text(1)?;
    Ok(SavedFunnel {
        name: r.text(0)?,
        steps: serde_json::from_str(&steps)
            .map_err(|e| crate::Error::Corrupt(format!("saved funnel steps {steps:?}: {e}")))?,
        window_ms: r.i64(2)?,
        breakdown: r.opt_text(3)?,
        created_at: r.i64(4)?,
    })
}

/// Stores `f` unless a funnel of its name exists; returns whether it was stored.
pub fn insert(conn: &mut dyn Conn, f: &SavedFunnel) -> Result<bool> {
    let steps = serde_json::to_string(&f.steps).map_err(|e| crate::Error::Corrupt(e.to_string()))?;
    let n = conn.execute(
        "INSERT INTO saved_funnels (name, steps, window_ms, breakdown, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        &[
            Param::Text(&f.name),
            Param::Text(&steps),
            Param::I64(f.window_ms),
            Param::OptText(f.breakdown.as_deref()),
            Param::I64(f.created_at),
        ],
    )?;
    Ok(n > 0)
}

/// Every saved funnel, by name.
pub fn list(conn: &mut dyn Conn) -> Result<Vec<SavedFunnel>> {
    conn.query(&format!("SELECT {COLUMNS} FROM saved_funnels ORDER BY name"), &[])?
        .iter()
        .map(row_of)
        .collect()
}

/// The saved funnel named `name`, if any.
pub fn get(conn: &mut dyn Conn, name: &str) -> Result<Option<SavedFunnel>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM saved_funnels WHERE name = $1"),
        &[Param::Text(name)],
    )?
    .first()
    .map(row_of)
    .transpose()
}

/// Deletes the saved funnel named `name`; returns whether there was one.
pub fn delete(conn: &mut dyn Conn, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM saved_funnels WHERE name = $1", &[Param::Text(name)])? > 0)
}
