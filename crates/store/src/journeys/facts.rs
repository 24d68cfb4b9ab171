//! What the journey engine reads from other contexts' tables: who a profile's user is,
//! a user's stored traits and recent activity (sends), and who a date trigger concerns
//! (date traits, coupons about to expire, last sign-ins, first orders).

use crate::conn::Sql;
use flywheel_core::Identity;
use serde_json::{Map, Value};

use crate::conn::{Conn, Param, Row};
use crate::Result;

/// The profile of the shop's user `user` and its stored traits (`None` and no traits
/// for a user never seen).
pub fn profile_of_user(conn: &mut dyn Conn, user: &str) -> Result<(Option<String>, Map<String, Value>)> {
    let Some(p) = crate::read::profile_id_of(conn, &Identity::User(user.to_string()))? else {
        return Ok((None, Map::new()));
    };
    let traits = crate::read::profile(conn, &p)?
        .map(|p| p.traits)
        .unwrap_or_default();
    Ok((Some(p.0), traits))
}

/// The shop's user id of a profile (the first, when several were merged).
pub fn user_of_profile(conn: &mut dyn Conn, profile: &str) -> Result<Option<String>> {
    let rows = conn.query(
        "SELECT id FROM identities WHERE profile_id = $1 ORDER BY id",
        &[Param::Text(profile)],
    )?;
    for r in rows {
        if let Some(Identity::User(u)) = Identity::from_key(&r.text(0)?) {
            return Ok(Some(u));
        }
    }
    Ok(None)
}

/// Times (ms) of the user's latest events since `since`, newest first, at most 2,000:
/// what the user's most active hour is read from (customer events only).
pub fn activity_since(conn: &mut dyn Conn, user: &str, since: i64) -> Result<Vec<i64>> {
    conn.query(
        "SELECT ts FROM events WHERE user_id = $1 AND ts >= $2 AND system_write = 0 ORDER BY ts DESC LIMIT 2000",
        &[Param::Text(user), Param::I64(since)],
    )?
    .iter()
    .map(|r| r.i64(0))
    .collect()
}

/// A customer track event: its name, time (ms) and stored body (JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    /// The event's name.
    pub name: String,
    /// When (ms).
    pub at: i64,
    /// The stored event (JSON).
    pub body: String,
}

/// The user's customer track events named in `names` (system writes left out), oldest
/// first, at most 5,000 (the newest): what a journey reads a cart from.
pub fn tracked_of(conn: &mut dyn Conn, user: &str, names: &[&str]) -> Result<Vec<Tracked>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = vec![
        Param::Text(user),
        Param::Text(flywheel_core::EventKind::Track.as_str()),
    ];
    params.extend(names.iter().map(|n| Param::Text(n)));
    let mut rows = conn
        .query(
            &format!(
                "SELECT name, ts, body FROM events WHERE user_id = $1 AND kind = $2 AND name IN ({}) \
                 AND system_write = 0 ORDER BY ts DESC, seq DESC LIMIT 5000",
                crate::conn::placeholders(3, names.len())
            ),
            &params,
        )?
        .iter()
        .map(|r| {
            Ok(Tracked {
                name: r.text(0)?,
                at: r.i64(1)?,
                body: r.text(2)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    rows.reverse();
    Ok(rows)
}

/// A profile's stored trait value.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileTrait {
    /// The profile.
    pub profile_id: String,
    /// The value (JSON).
    pub value: Value,
}

/// Every profile's value of trait `key` (a value that is not JSON reads as null).
pub fn trait_values(conn: &mut dyn Conn, key: &str) -> Result<Vec<ProfileTrait>> {
    fn of(r: &Row) -> Result<ProfileTrait> {
        Ok(ProfileTrait {
            profile_id: r.text(0)?,
            value: serde_json::from_str(&r.text(1)?).unwrap_or_default(),
        })
    }
    conn.query(
        "SELECT profile_id, value FROM profile_traits WHERE key = $1",
        &[Param::Text(key)],
    )?
    .iter()
    .map(of)
    .collect()
}

/// An issued, unused coupon and its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedCoupon {
    /// The owner's user id.
    pub owner: String,
    /// The coupon id.
    pub coupon_id: String,
}

/// Issued coupons with an owner expiring strictly between `from` and `until` (ms), by
/// owner and id.
pub fn coupons_expiring(conn: &mut dyn Conn, from: i64, until: i64) -> Result<Vec<OwnedCoupon>> {
    fn of(r: &Row) -> Result<OwnedCoupon> {
        Ok(OwnedCoupon {
            owner: r.text(0)?,
            coupon_id: r.text(1)?,
        })
    }
    conn.query(
        "SELECT owner, id FROM coupons WHERE state = 'issued' AND owner IS NOT NULL \
         AND valid_until > $1 AND valid_until < $2 ORDER BY owner, id",
        &[Param::I64(from), Param::I64(until)],
    )?
    .iter()
    .map(of)
    .collect()
}

/// A user and the time (ms) of a fact about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAt {
    /// The shop's user id.
    pub user_id: String,
    /// When (ms).
    pub at: i64,
}

fn user_at(r: &Row) -> Result<UserAt> {
    Ok(UserAt {
        user_id: r.text(0)?,
        at: r.i64(1)?,
    })
}

/// Every user's last sign-in (`Signed In`, `Signed Up` or `Logged In` track event).
pub fn last_sign_ins(conn: &mut dyn Conn) -> Result<Vec<UserAt>> {
    conn.query(
        "SELECT user_id, MAX(ts) FROM events WHERE user_id IS NOT NULL AND kind = $1 \
         AND name IN ('Signed In', 'Signed Up', 'Logged In') GROUP BY user_id",
        &[Param::Text(flywheel_core::EventKind::Track.as_str())],
    )?
    .iter()
    .map(user_at)
    .collect()
}

/// Every user's first order not cancelled (when it was placed).
pub fn first_orders(conn: &mut dyn Conn) -> Result<Vec<UserAt>> {
    conn.query(
        "SELECT user_id, MIN(placed_at) FROM orders WHERE user_id IS NOT NULL AND status <> $1 GROUP BY user_id",
        &[Param::Text(flywheel_core::OrderStatus::Cancelled.as_str())],
    )?
    .iter()
    .map(user_at)
    .collect()
}
