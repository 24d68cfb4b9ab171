//! The track event names the store has received, for refusing a report step that names
//! an event never seen (with a "did you mean" from these names).

use crate::conn::{Conn, Param, Sql};
use crate::Result;

/// Whether any track event named `name` was ever stored (index `events_name`).
pub fn seen(conn: &mut dyn Conn, name: &str) -> Result<bool> {
    Ok(!conn
        .query(
            "SELECT 1 FROM events WHERE name = $1 AND kind = 'track' LIMIT 1",
            &[Param::Text(name)],
        )?
        .is_empty())
}

/// Every distinct track event name stored, sorted.
pub fn track_names(conn: &mut dyn Conn) -> Result<Vec<String>> {
    conn.query(
        "SELECT DISTINCT name FROM events WHERE kind = 'track' AND name IS NOT NULL ORDER BY name",
        &[],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}
