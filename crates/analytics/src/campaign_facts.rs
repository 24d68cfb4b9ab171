//! The campaign metrics' facts from the store ([`flywheel_store::analytics`]): the
//! message log, touches, costs, journey statuses and holdouts; and guardrail alerts and
//! spend entries into it. The statements (and the status strings of other contexts'
//! tables) live in the store; this module turns its typed rows into the metrics' facts.

use std::collections::HashMap;

use chrono_tz::Tz;

use flywheel_store::analytics::{alerts as stored_alerts, campaigns, spend, touches};
use flywheel_store::conn::Conn;
use flywheel_store::journeys::JourneyStatus;
use flywheel_store::Result;

pub use flywheel_store::analytics::alerts::Alert;
pub use flywheel_store::analytics::spend::{Spend, SpendEntry};

use crate::attribution::Touch;
use crate::campaign::{CostFact, CostKind, MessageFact};
use crate::kpi::Period;
use crate::spread::share_in;
use crate::uplift::Arm;

/// Messages created in `period` (the metrics) and the touches of every message handed to
/// a provider since `touch_from` (attribution looks back before the period).
pub fn messages(
    conn: &mut dyn Conn,
    period: Period,
    touch_from: i64,
) -> Result<(Vec<MessageFact>, Vec<Touch>)> {
    let rows = campaigns::messages(conn, touch_from.min(period.from), period.to)?;
    let mut facts = Vec::new();
    let mut touches = Vec::new();
    for m in rows {
        if m.delivery.is_sent() {
            touches.push(Touch {
                user: m.person.clone(),
                at: m.created_at,
                campaign: m.campaign.clone(),
                channel: m.channel.clone(),
            });
        }
        if period.contains(m.created_at) {
            facts.push(MessageFact {
                user: m.person,
                campaign: m.campaign,
                channel: m.channel,
                journey: m.journey,
                delivery: m.delivery,
                opened: m.opened,
                clicked: m.clicked,
                converted: m.converted,
            });
        }
    }
    Ok((facts, touches))
}

/// Touches from events carrying `context.campaign.name` (utm_campaign) in `[from, to)`;
/// the channel is `context.campaign.source` (utm_source), else `utm`. The store keeps an
/// event's campaign in columns written at ingest ([`touches`] says why), so no event
/// body is parsed here.
pub fn event_touches(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<Touch>> {
    Ok(touches::event_touches(conn, from, to)?
        .into_iter()
        .map(|t| Touch {
            user: t.person,
            at: t.at,
            campaign: t.campaign,
            channel: t.source.unwrap_or_else(|| "utm".to_string()),
        })
        .collect())
}

/// Costs in `period`: ad spend entered per channel (an entry over a period of days: the
/// share of its days in `period`, [`crate::spread::share_in`], shop-local days in `tz`),
/// discounts of orders that redeemed a coupon a journey issued, and points journeys
/// awarded valued at `point_value_fen` each; coupon and points costs go to the campaign of
/// the run that caused them.
pub fn costs(conn: &mut dyn Conn, period: Period, point_value_fen: i64, tz: Tz) -> Result<Vec<CostFact>> {
    let (from, to) = (period.from, period.to);
    let mut out: Vec<CostFact> = campaigns::ad_spend(conn, from, to)?
        .into_iter()
        .map(|a| CostFact {
            amount: share_in(a.amount, a.at, a.until, period, tz),
            campaign: a.campaign,
            channel: a.channel,
            kind: CostKind::Ad,
        })
        .collect();
    let runs = campaigns::run_campaigns(conn)?;
    let of_run = |kind: CostKind, amount: i64, run: &str| {
        runs.get(run).map(|campaign| CostFact {
            campaign: campaign.clone(),
            channel: String::new(),
            kind,
            amount,
        })
    };
    for d in campaigns::journey_coupon_discounts(conn, from, to)? {
        out.extend(of_run(CostKind::Coupon, d.amount, &d.run_id));
    }
    for p in campaigns::journey_points(conn, from, to)? {
        out.extend(of_run(
            CostKind::Points,
            p.amount.saturating_mul(point_value_fen),
            &p.run_id,
        ));
    }
    Ok(out)
}

/// Each journey's status.
pub fn journey_status(conn: &mut dyn Conn) -> Result<HashMap<String, JourneyStatus>> {
    campaigns::journey_statuses(conn)
}

/// The treated and holdout arms of `journey` among users who entered in `period`:
/// distinct users, and those with a converted run.
pub fn holdout_arms(conn: &mut dyn Conn, journey: &str, period: Period) -> Result<(Arm, Arm)> {
    let (treated, holdout) = campaigns::holdout_arms(conn, journey, period.from, period.to)?;
    Ok((
        Arm::new(treated.users, treated.converted),
        Arm::new(holdout.users, holdout.converted),
    ))
}

/// Stores one spend entry, written at `now`; returns its id.
pub fn add_cost(conn: &mut dyn Conn, s: &Spend, now: i64) -> Result<i64> {
    spend::add(conn, s, now)
}

/// The spend entries dated in `period` or covering days in it, oldest first.
pub fn spend_entries(conn: &mut dyn Conn, period: Period) -> Result<Vec<SpendEntry>> {
    spend::between(conn, period.from, period.to)
}

/// Deletes spend entry `id` with an audit entry (actor `admin`, action `spend_deleted`),
/// at `now`; returns what was deleted, `None` when there was no such entry. Call it inside
/// one write transaction.
pub fn delete_cost(conn: &mut dyn Conn, id: i64, now: i64) -> Result<Option<SpendEntry>> {
    spend::delete(conn, id, now)
}

/// The last alert of `campaign` for `rule`, if any (ms).
pub fn last_alert(conn: &mut dyn Conn, campaign: &str, rule: &str) -> Result<Option<i64>> {
    stored_alerts::last_at(conn, campaign, rule)
}

/// Records a guardrail alert and its audit entry (actor `guardrail`); call it inside one
/// write transaction so both land or neither.
pub fn record_alert(c: &mut dyn Conn, a: &Alert) -> Result<()> {
    record_alert_by(c, "guardrail", a)
}

/// Records an alert and its audit entry by `actor` (`guardrail`, `benchmark`).
pub fn record_alert_by(c: &mut dyn Conn, actor: &str, a: &Alert) -> Result<()> {
    stored_alerts::record(c, actor, a)
}

/// The latest `limit` alerts, newest first.
pub fn alerts(conn: &mut dyn Conn, limit: i64) -> Result<Vec<Alert>> {
    stored_alerts::latest(conn, limit)
}

/// The alerts raised in `period`, oldest first.
pub fn alerts_in(conn: &mut dyn Conn, period: Period) -> Result<Vec<Alert>> {
    stored_alerts::between(conn, period.from, period.to)
}
