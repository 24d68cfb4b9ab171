//! Customer activity versus the system's own writes (DESIGN.md, "Rules of the house":
//! the system's own writes are never customer activity; docs/analytics.md, "Activity").
//!
//! An event stored with [`crate::NewEvent::system_write`] (predicted-CLV traits, a
//! journey's set-trait step, imported customer attributes) updates the profile's traits
//! and `last_seen`, but not `first_active`/`last_active`, and every activity-based read
//! (visitors, retention, funnels, `last_active` in segments) leaves it out.

use crate::conn::Sql;
use crate::conn::{Conn, Param};
use crate::Result;

/// The predicate an activity read adds for an `events` row aliased `e`.
pub const CUSTOMER_EVENT: &str = "e.system_write = 0";

/// Migration 023's backfill: the profiles whose `last_seen` was moved by a system write
/// stored before the flag existed get `first_active`/`last_active` from their customer
/// events (every other profile's activity equals its first/last seen).
pub(crate) fn backfill(conn: &mut dyn Conn) -> Result<()> {
    let touched: Vec<String> = conn
        .query(
            "SELECT DISTINCT i.profile_id FROM events e JOIN identities i ON i.id = 'user:' || e.user_id \
             WHERE e.system_write = 1",
            &[],
        )?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<_>>()?;
    for profile in &touched {
        let (first, last) = customer_span(conn, profile)?;
        conn.execute(
            "UPDATE profiles SET first_active = $1, last_active = $2 WHERE id = $3",
            &[Param::OptI64(first), Param::OptI64(last), Param::Text(profile)],
        )?;
    }
    if !touched.is_empty() {
        tracing::info!(
            profiles = touched.len(),
            "activity: recomputed last_active without system writes"
        );
    }
    Ok(())
}

/// The first and last customer event of `profile` (by its user ids, and by its anonymous
/// ids for events without a user id).
fn customer_span(conn: &mut dyn Conn, profile: &str) -> Result<(Option<i64>, Option<i64>)> {
    let mut first: Option<i64> = None;
    let mut last: Option<i64> = None;
    for sql in [
        "SELECT MIN(e.ts), MAX(e.ts) FROM identities i JOIN events e ON e.user_id = substr(i.id, 6) \
         WHERE i.profile_id = $1 AND i.id LIKE 'user:%' AND e.system_write = 0",
        "SELECT MIN(e.ts), MAX(e.ts) FROM identities i JOIN events e ON e.anonymous_id = substr(i.id, 6) \
         WHERE i.profile_id = $1 AND i.id LIKE 'anon:%' AND e.user_id IS NULL AND e.system_write = 0",
    ] {
        for r in conn.query(sql, &[Param::Text(profile)])? {
            if let Some(t) = r.opt_i64(0)? {
                first = Some(first.map_or(t, |f| f.min(t)));
            }
            if let Some(t) = r.opt_i64(1)? {
                last = Some(last.map_or(t, |l| l.max(t)));
            }
        }
    }
    Ok((first, last))
}
