//! Reading the facts the metrics need from the store ([`flywheel_store::analytics`]):
//! orders, and per-person signup and activity days in the shop timezone. Every fact is
//! keyed by its person (a profile id, resolved by the current identities graph:
//! `flywheel_store::person`), so guest orders, anonymous activity and aliased ids count
//! for the one person they belong to.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use chrono_tz::Tz;
use flywheel_core::time::from_millis;
use flywheel_core::OrderStatus;
use flywheel_store::analytics::{activity, orders as stored_orders};
use flywheel_store::conn::Conn;
use flywheel_store::Result;

use crate::kpi::{OrderFact, Period};
use crate::retention::{ActiveDays, Signups};

/// Every order (guest orders included) by person, and each person's first purchase
/// ([`OrderFact::is_purchase`], ms). Pending orders count as placed (the store keeps paid and pending alike
/// under `Order Completed`). With `count_zero_value` false (`[audience]
/// count_zero_value_orders`), an order of 0 元 is left out as if cancelled.
pub fn orders(conn: &mut dyn Conn, count_zero_value: bool) -> Result<(Vec<OrderFact>, HashMap<String, i64>)> {
    let rows = stored_orders::all(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    let mut first: HashMap<String, i64> = HashMap::new();
    for r in rows {
        let o = OrderFact {
            user: r.person,
            placed_at: r.placed_at,
            total: r.total,
            refunded: r.refunded,
            cancelled: r.status == OrderStatus::Cancelled || (r.total.0 == 0 && !count_zero_value),
        };
        if o.is_purchase() {
            let f = first.entry(o.user.clone()).or_insert(o.placed_at);
            *f = (*f).min(o.placed_at);
        }
        out.push(o);
    }
    Ok((out, first))
}

/// Distinct visitors (persons with a customer event) in `period`.
pub fn visitors(conn: &mut dyn Conn, period: Period) -> Result<i64> {
    activity::visitor_count(conn, period.from, period.to)
}

/// Each person's first event named one of `signup_events` (ms), all time.
pub fn signups(conn: &mut dyn Conn, signup_events: &[&str]) -> Result<HashMap<String, i64>> {
    let mut signups: HashMap<String, i64> = HashMap::new();
    for name in signup_events {
        for s in activity::first_track_of(conn, name)? {
            let e = signups.entry(s.person).or_insert(s.at);
            *e = (*e).min(s.at);
        }
    }
    Ok(signups)
}

/// Signup day per person (the first of `signup_events`, shop-local) and every shop-local
/// day each person had a customer event, for signups in `period`.
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
    for e in activity::person_events_since(conn, period.from)? {
        if signups.contains_key(&e.person) {
            active.entry(e.person).or_default().insert(day(e.at));
        }
    }
    Ok((signups.into_iter().map(|(u, t)| (u, day(t))).collect(), active))
}
