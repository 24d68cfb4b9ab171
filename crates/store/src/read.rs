//! Read queries: profiles, a profile's timeline, orders, counts.

use crate::conn::Sql;
use std::collections::BTreeMap;

use flywheel_core::time::from_millis;
use flywheel_core::{Event, Fen, Identity, OrderLine, OrderStatus, Profile, ProfileId, ProfileSummary};
use serde_json::{Map, Value};

use crate::conn::{placeholders, Conn, Param};
use crate::{Error, EventPage, ProfilePage, Result, StoredEvent, StoredOrder};

/// The profile an identity belongs to, if it was ever seen.
pub fn profile_id_of(conn: &mut dyn Conn, identity: &Identity) -> Result<Option<ProfileId>> {
    let rows = conn.query(
        "SELECT profile_id FROM identities WHERE id = $1",
        &[Param::Text(&identity.key())],
    )?;
    rows.first().map(|r| r.text(0).map(ProfileId)).transpose()
}

/// Every identity of a profile.
fn identities_of(conn: &mut dyn Conn, profile: &ProfileId) -> Result<Vec<Identity>> {
    let rows = conn.query(
        "SELECT id FROM identities WHERE profile_id = $1 ORDER BY id",
        &[Param::Text(&profile.0)],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let key = r.text(0)?;
        out.push(Identity::from_key(&key).ok_or_else(|| Error::Corrupt(format!("identity key {key:?}")))?);
    }
    Ok(out)
}

/// The whole profile.
pub fn profile(conn: &mut dyn Conn, id: &ProfileId) -> Result<Option<Profile>> {
    let rows = conn.query(
        "SELECT first_seen, last_seen, event_count, first_active, last_active FROM profiles WHERE id = $1",
        &[Param::Text(&id.0)],
    )?;
    let Some(row) = rows.first() else { return Ok(None) };
    let (first_seen, last_seen, event_count) = (row.i64(0)?, row.i64(1)?, row.i64(2)?);
    let (first_active, last_active) = (row.opt_i64(3)?, row.opt_i64(4)?);
    let mut user_ids = Vec::new();
    let mut anonymous_ids = Vec::new();
    for i in identities_of(conn, id)? {
        match i {
            Identity::User(v) => user_ids.push(v),
            Identity::Anonymous(v) => anonymous_ids.push(v),
        }
    }
    let mut traits = Map::new();
    for r in conn.query(
        "SELECT key, value FROM profile_traits WHERE profile_id = $1 ORDER BY key",
        &[Param::Text(&id.0)],
    )? {
        let value: Value = serde_json::from_str(&r.text(1)?)?;
        traits.insert(r.text(0)?, value);
    }
    Ok(Some(Profile {
        id: id.clone(),
        user_ids,
        anonymous_ids,
        traits,
        first_seen: from_millis(first_seen),
        last_seen: from_millis(last_seen),
        first_active: first_active.map(from_millis),
        last_active: last_active.map(from_millis),
        event_count,
    }))
}

/// `(user_id IN (...) OR anonymous_id IN (...))` over a profile's identities, with params from `$first`.
fn owner_filter<'a>(idents: &'a [Identity], first: usize, params: &mut Vec<Param<'a>>) -> String {
    let users: Vec<&str> = idents
        .iter()
        .filter(|i| matches!(i, Identity::User(_)))
        .map(Identity::value)
        .collect();
    let anons: Vec<&str> = idents
        .iter()
        .filter(|i| matches!(i, Identity::Anonymous(_)))
        .map(Identity::value)
        .collect();
    let mut parts = Vec::new();
    let mut next = first;
    if !users.is_empty() {
        parts.push(format!("user_id IN ({})", placeholders(next, users.len())));
        next += users.len();
        params.extend(users.into_iter().map(Param::Text));
    }
    if !anons.is_empty() {
        parts.push(format!("anonymous_id IN ({})", placeholders(next, anons.len())));
        params.extend(anons.into_iter().map(Param::Text));
    }
    if parts.is_empty() {
        "1 = 0".to_string()
    } else {
        format!("({})", parts.join(" OR "))
    }
}

/// An opaque position in a timeline: `<timestamp ms>.<seq>`.
fn parse_event_cursor(cursor: &str) -> Result<(i64, i64)> {
    let bad = || Error::BadCursor(cursor.to_string());
    let (ts, seq) = cursor.split_once('.').ok_or_else(bad)?;
    Ok((ts.parse().map_err(|_| bad())?, seq.parse().map_err(|_| bad())?))
}

/// A profile's events, newest first, `limit` at a time, continuing after `cursor`.
pub fn profile_events(
    conn: &mut dyn Conn,
    id: &ProfileId,
    cursor: Option<&str>,
    limit: usize,
) -> Result<EventPage> {
    let after = cursor.map(parse_event_cursor).transpose()?;
    let idents = identities_of(conn, id)?;
    let mut params = Vec::new();
    let owner = owner_filter(&idents, 1, &mut params);
    let mut sql = format!("SELECT seq, ts, body FROM events WHERE {owner}");
    if let Some((ts, seq)) = after {
        let n = params.len();
        sql.push_str(&format!(
            " AND (ts < ${} OR (ts = ${} AND seq < ${}))",
            n + 1,
            n + 2,
            n + 3
        ));
        params.extend([Param::I64(ts), Param::I64(ts), Param::I64(seq)]);
    }
    sql.push_str(&format!(" ORDER BY ts DESC, seq DESC LIMIT {}", limit + 1));
    let rows = conn.query(&sql, &params)?;
    let mut events = Vec::with_capacity(rows.len().min(limit));
    let mut next_cursor = None;
    for (i, r) in rows.iter().enumerate() {
        if i == limit {
            let last: &StoredEvent = &events[limit - 1];
            next_cursor = Some(format!(
                "{}.{}",
                last.event.timestamp.timestamp_millis(),
                last.seq
            ));
            break;
        }
        let event: Event = serde_json::from_str(&r.text(2)?)?;
        events.push(StoredEvent {
            seq: r.i64(0)?,
            event,
        });
    }
    Ok(EventPage { events, next_cursor })
}

/// Profiles in id order, `limit` at a time, after `cursor` (the last id seen).
pub fn list_profiles(conn: &mut dyn Conn, cursor: Option<&str>, limit: usize) -> Result<ProfilePage> {
    let sql = format!(
        "SELECT id, first_seen, last_seen, event_count FROM profiles WHERE id > $1 ORDER BY id LIMIT {}",
        limit + 1
    );
    let rows = conn.query(&sql, &[Param::Text(cursor.unwrap_or(""))])?;
    let mut profiles = Vec::with_capacity(rows.len().min(limit));
    for r in rows.iter().take(limit) {
        profiles.push(ProfileSummary {
            id: ProfileId(r.text(0)?),
            first_seen: from_millis(r.i64(1)?),
            last_seen: from_millis(r.i64(2)?),
            event_count: r.i64(3)?,
        });
    }
    let next_cursor = if rows.len() > limit {
        profiles.last().map(|p| p.id.0.clone())
    } else {
        None
    };
    Ok(ProfilePage {
        profiles,
        next_cursor,
    })
}

/// A profile's orders, newest first, with their lines.
pub fn orders_of(conn: &mut dyn Conn, id: &ProfileId) -> Result<Vec<StoredOrder>> {
    let idents = identities_of(conn, id)?;
    let mut params = Vec::new();
    let owner = owner_filter(&idents, 1, &mut params);
    let sql = format!(
        "SELECT order_id, user_id, anonymous_id, currency, total, revenue, discount, shipping, tax, coupon, \
         placed_at, refunded, status FROM orders WHERE {owner} ORDER BY placed_at DESC, order_id"
    );
    let rows = conn.query(&sql, &params)?;
    let mut orders = BTreeMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let status = r.text(12)?;
        out.push(StoredOrder {
            order_id: r.text(0)?,
            user_id: r.opt_text(1)?,
            anonymous_id: r.opt_text(2)?,
            currency: r.text(3)?,
            total: Fen(r.i64(4)?),
            revenue: Fen(r.i64(5)?),
            discount: Fen(r.i64(6)?),
            shipping: Fen(r.i64(7)?),
            tax: Fen(r.i64(8)?),
            coupon: r.opt_text(9)?,
            placed_at: from_millis(r.i64(10)?),
            refunded: Fen(r.i64(11)?),
            status: OrderStatus::parse(&status)
                .ok_or_else(|| Error::Corrupt(format!("order status {status:?}")))?,
            lines: Vec::new(),
        });
    }
    for (i, o) in out.iter().enumerate() {
        orders.insert(o.order_id.clone(), i);
    }
    for (order_id, idx) in orders {
        let lines = conn.query(
            "SELECT product_id, sku, name, category, brand, price, quantity FROM order_lines \
             WHERE order_id = $1 ORDER BY line_no",
            &[Param::Text(&order_id)],
        )?;
        for l in lines {
            out[idx].lines.push(OrderLine {
                product_id: l.opt_text(0)?,
                sku: l.opt_text(1)?,
                name: l.opt_text(2)?,
                category: l.opt_text(3)?,
                brand: l.opt_text(4)?,
                price: Fen(l.i64(5)?),
                quantity: l.i64(6)?,
            });
        }
    }
    Ok(out)
}

/// Every user id that appears in the event log, sorted (the demo's marketing history
/// picks its audiences from them).
pub fn user_ids_in_log(conn: &mut dyn Conn) -> Result<Vec<String>> {
    conn.query(
        "SELECT DISTINCT user_id FROM events WHERE user_id IS NOT NULL ORDER BY user_id",
        &[],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// Number of rows in a table the store owns.
pub fn count(conn: &mut dyn Conn, table: crate::Table) -> Result<i64> {
    let rows = conn.query(&format!("SELECT COUNT(*) FROM {}", table.name()), &[])?;
    rows.first().map(|r| r.i64(0)).unwrap_or(Ok(0))
}
