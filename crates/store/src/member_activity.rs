//! What a member did over a tier's evaluation period (R7.2: tiers by spend and activity,
//! "根據用戶消費金額、活躍度"): the person behind a shop user id, their customer events in
//! quarter-hour slots (sign-ins marked), their reviews and their counted orders. The
//! loyalty programme turns these into growth (成長值) and shop-local days.
//!
//! One person, one row (DESIGN.md): a user id stands for its whole profile — every user id
//! and anonymous id merged into it, as [`crate::activity`] resolves them — so a visit made
//! logged out before signing in counts for the member. Only customer events count
//! ([`crate::activity::CUSTOMER_EVENT`]): the system's own writes (CLV traits, set-trait
//! steps, imported attributes) are never activity.

use crate::conn::Sql;
use crate::conn::{placeholders, Conn, Param};
use crate::Result;

/// The identities a member's activity is read under: every user id and anonymous id of
/// the profile holding `user:<user_id>` (just the user id when it has no profile yet).
/// Listed once so each read seeks the events and orders of those ids by index (unlike
/// the reports' [`crate::person`], which resolve every row of a period).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberIds {
    /// User ids of the profile.
    pub user_ids: Vec<String>,
    /// Anonymous ids of the profile.
    pub anonymous_ids: Vec<String>,
}

/// The ids of the person behind shop user id `user_id`.
pub fn member_ids(conn: &mut dyn Conn, user_id: &str) -> Result<MemberIds> {
    let key = format!("user:{user_id}");
    let mut p = MemberIds {
        user_ids: Vec::new(),
        anonymous_ids: Vec::new(),
    };
    for r in conn.query(
        "SELECT id FROM identities WHERE profile_id = \
         (SELECT profile_id FROM identities WHERE id = $1) ORDER BY id",
        &[Param::Text(&key)],
    )? {
        let id = r.text(0)?;
        if let Some(u) = id.strip_prefix("user:") {
            p.user_ids.push(u.to_owned());
        } else if let Some(a) = id.strip_prefix("anon:") {
            p.anonymous_ids.push(a.to_owned());
        }
    }
    if !p.user_ids.iter().any(|u| u == user_id) {
        p.user_ids.push(user_id.to_owned());
    }
    Ok(p)
}

/// The SQL predicate selecting `person`'s rows of a table with `user_id` and
/// `anonymous_id` (anonymous rows only when they carry no user id), its placeholders
/// numbered from `first`, and the parameters to bind after the ones before it.
fn person_filter(person: &MemberIds, first: usize) -> (String, Vec<Param<'_>>) {
    let mut sql = format!("(user_id IN ({})", placeholders(first, person.user_ids.len()));
    if !person.anonymous_ids.is_empty() {
        sql.push_str(&format!(
            " OR (user_id IS NULL AND anonymous_id IN ({}))",
            placeholders(first + person.user_ids.len(), person.anonymous_ids.len())
        ));
    }
    sql.push(')');
    let params = person
        .user_ids
        .iter()
        .chain(&person.anonymous_ids)
        .map(|s| Param::Text(s))
        .collect();
    (sql, params)
}

/// Length of a [`Slot`], ms. Every timezone's offset is a whole number of quarter hours,
/// so a slot lies inside one shop-local day whatever the shop's timezone.
pub const SLOT_MS: i64 = 15 * 60 * 1000;

/// A quarter hour in which the member had at least one customer event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Its start (ms, a multiple of [`SLOT_MS`]).
    pub start: i64,
    /// Whether one of those events was a sign-in.
    pub signed_in: bool,
}

/// A member's activity over a period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberActivity {
    /// The quarter hours with a customer event, in time order.
    pub slots: Vec<Slot>,
    /// Review events (each stored event once).
    pub reviews: i64,
    /// Orders placed in the period that count: paid, not cancelled, not fully refunded
    /// (zero-value orders included).
    pub orders: i64,
}

/// `(sql, params)` for `name IN (...)` over `names` from placeholder `first`, or a
/// predicate that never holds when `names` is empty.
fn names_in(names: &[String], first: usize) -> (String, Vec<Param<'_>>) {
    if names.is_empty() {
        return ("1 = 0".to_owned(), Vec::new());
    }
    (
        format!("name IN ({})", placeholders(first, names.len())),
        names.iter().map(|n| Param::Text(n)).collect(),
    )
}

/// What `person` did with `from < time <= until` (the window of
/// [`net_spend`]): their customer events by quarter hour, the track
/// events named in `sign_ins` marking a slot as a sign-in, the track events named in
/// `reviews` counted, and their counted orders.
pub fn member_activity(
    conn: &mut dyn Conn,
    person: &MemberIds,
    from: i64,
    until: i64,
    sign_ins: &[String],
    reviews: &[String],
) -> Result<MemberActivity> {
    let (sign_in_sql, mut params) = names_in(sign_ins, 2);
    let (review_sql, review_params) = names_in(reviews, 2 + params.len());
    params.extend(review_params);
    let next = 2 + params.len();
    let (who, who_params) = person_filter(person, next + 2);
    let sql = format!(
        "SELECT CAST(ts / {SLOT_MS} AS BIGINT), \
         CAST(MAX(CASE WHEN kind = $1 AND {sign_in_sql} THEN 1 ELSE 0 END) AS BIGINT), \
         CAST(SUM(CASE WHEN kind = $1 AND {review_sql} THEN 1 ELSE 0 END) AS BIGINT) \
         FROM events e WHERE ts > ${next} AND ts <= ${} AND {} AND {who} \
         GROUP BY 1 ORDER BY 1",
        next + 1,
        crate::activity::CUSTOMER_EVENT,
    );
    let mut all = vec![Param::Text(flywheel_core::EventKind::Track.as_str())];
    all.extend(params);
    all.extend([Param::I64(from), Param::I64(until)]);
    all.extend(who_params);
    let mut out = MemberActivity::default();
    for r in conn.query(&sql, &all)? {
        out.slots.push(Slot {
            start: r.i64(0)? * SLOT_MS,
            signed_in: r.i64(1)? > 0,
        });
        out.reviews += r.i64(2)?;
    }
    out.orders = counted_orders(conn, person, from, until)?;
    Ok(out)
}

/// `person`'s orders placed with `from < placed_at <= until` that count: completed or
/// partly refunded (cancelled, fully refunded and still-pending orders do not).
fn counted_orders(conn: &mut dyn Conn, person: &MemberIds, from: i64, until: i64) -> Result<i64> {
    use flywheel_core::OrderStatus;
    let (who, who_params) = person_filter(person, 5);
    let mut params = vec![
        Param::I64(from),
        Param::I64(until),
        Param::Text(OrderStatus::Completed.as_str()),
        Param::Text(OrderStatus::PartiallyRefunded.as_str()),
    ];
    params.extend(who_params);
    conn.query(
        &format!(
            "SELECT COUNT(*) FROM orders WHERE placed_at > $1 AND placed_at <= $2 \
             AND status IN ($3, $4) AND {who}"
        ),
        &params,
    )?
    .first()
    .map_or(Ok(0), |r| r.i64(0))
}

/// `person`'s net spend (total − refunded, fen) of orders placed with `from < placed_at
/// <= until`; cancelled orders and orders still pending their completion count 0.
pub fn net_spend(conn: &mut dyn Conn, person: &MemberIds, from: i64, until: i64) -> Result<i64> {
    use flywheel_core::OrderStatus;
    let (who, who_params) = person_filter(person, 5);
    let mut params = vec![
        Param::I64(from),
        Param::I64(until),
        Param::Text(OrderStatus::Cancelled.as_str()),
        Param::Text(OrderStatus::Pending.as_str()),
    ];
    params.extend(who_params);
    conn.query(
        &format!(
            "SELECT CAST(COALESCE(SUM(total - refunded), 0) AS BIGINT) FROM orders \
             WHERE placed_at > $1 AND placed_at <= $2 AND status NOT IN ($3, $4) AND {who}"
        ),
        &params,
    )?
    .first()
    .map_or(Ok(0), |r| r.i64(0))
}
