//! Reading the facts the metrics need from the store: orders, and per-user signup and
//! activity days in the shop timezone.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use chrono_tz::Tz;
use flywheel_core::time::from_millis;
use flywheel_core::Fen;
use flywheel_store::conn::{Conn, Param};
use flywheel_store::Result;

use crate::kpi::{OrderFact, Period};
use crate::retention::{ActiveDays, Signups};

/// Every order with a user id, and each user's first non-cancelled order (ms). Pending
/// orders count as placed (the store keeps paid and pending alike under `Order Completed`).
pub fn orders(conn: &mut dyn Conn) -> Result<(Vec<OrderFact>, HashMap<String, i64>)> {
    let rows = conn.query(
        "SELECT user_id, placed_at, total, refunded, status FROM orders WHERE user_id IS NOT NULL",
        &[],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    let mut first: HashMap<String, i64> = HashMap::new();
    for r in &rows {
        let o = OrderFact {
            user: r.text(0)?,
            placed_at: r.i64(1)?,
            total: Fen(r.i64(2)?),
            refunded: Fen(r.i64(3)?),
            cancelled: r.text(4)? == "cancelled",
        };
        if !o.cancelled {
            let f = first.entry(o.user.clone()).or_insert(o.placed_at);
            *f = (*f).min(o.placed_at);
        }
        out.push(o);
    }
    Ok((out, first))
}

/// Distinct visitors (users or anonymous ids with any event) in `period`.
pub fn visitors(conn: &mut dyn Conn, period: Period) -> Result<i64> {
    Ok(conn
        .query(
            "SELECT COUNT(DISTINCT COALESCE(user_id, anonymous_id)) FROM events WHERE ts >= $1 AND ts < $2",
            &[Param::I64(period.from), Param::I64(period.to)],
        )?
        .first()
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0))
}

/// Each user's first event named one of `signup_events` (ms), all time.
pub fn signups(conn: &mut dyn Conn, signup_events: &[&str]) -> Result<HashMap<String, i64>> {
    let mut signups: HashMap<String, i64> = HashMap::new();
    for name in signup_events {
        for r in conn.query(
            "SELECT user_id, MIN(ts) FROM events WHERE kind = 'track' AND name = $1 AND user_id IS NOT NULL GROUP BY user_id",
            &[Param::Text(name)],
        )? {
            let (u, t) = (r.text(0)?, r.i64(1)?);
            let e = signups.entry(u).or_insert(t);
            *e = (*e).min(t);
        }
    }
    Ok(signups)
}

/// Signup day per user (the first of `signup_events`, shop-local) and every shop-local
/// day each user had any event, for signups in `period`.
pub fn cohorts(
    conn: &mut dyn Conn,
    signup_events: &[&str],
    period: Period,
    tz: Tz,
) -> Result<(Signups, ActiveDays)> {
    let day = |ms: i64| from_millis(ms).with_timezone(&tz).date_naive();
    let mut signups = signups(conn, signup_events)?;
    signups.retain(|_, t| period.contains(*t));
    let mut active: HashMap<String, BTreeSet<NaiveDate>> = HashMap::new();
    for r in conn.query(
        "SELECT user_id, ts FROM events WHERE user_id IS NOT NULL AND ts >= $1",
        &[Param::I64(period.from)],
    )? {
        let u = r.text(0)?;
        if signups.contains_key(&u) {
            active.entry(u).or_default().insert(day(r.i64(1)?));
        }
    }
    Ok((signups.into_iter().map(|(u, t)| (u, day(t))).collect(), active))
}
