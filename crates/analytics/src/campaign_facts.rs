//! Reading what the campaign metrics need from the store: the message log, touches,
//! costs, journey statuses and holdouts; and writing guardrail alerts and the audit log.

use std::collections::HashMap;

use flywheel_store::conn::{Conn, Param};
use flywheel_store::Result;
use serde::Serialize;

use crate::attribution::Touch;
use crate::campaign::{CostFact, CostKind, MessageFact};
use crate::kpi::Period;
use crate::uplift::Arm;

/// Messages created in `period` (the metrics) and the touches of every message handed to
/// a provider since `touch_from` (attribution looks back before the period).
pub fn messages(
    conn: &mut dyn Conn,
    period: Period,
    touch_from: i64,
) -> Result<(Vec<MessageFact>, Vec<Touch>)> {
    let rows = conn.query(
        "SELECT user_id, created_at, COALESCE(campaign, journey, ''), journey, channel, status, \
         opened_at, clicked_at, converted_at FROM messages WHERE created_at >= $1 AND created_at < $2",
        &[Param::I64(touch_from.min(period.from)), Param::I64(period.to)],
    )?;
    let mut facts = Vec::new();
    let mut touches = Vec::new();
    for r in &rows {
        let user = r.text(0)?;
        let created = r.i64(1)?;
        let status = r.text(5)?;
        let campaign = r.text(2)?;
        let channel = r.text(4)?;
        if !matches!(
            status.as_str(),
            "failed" | "suppressed" | "skipped" | "queued" | "pending"
        ) {
            touches.push(Touch {
                user: user.clone(),
                at: created,
                campaign: campaign.clone(),
                channel: channel.clone(),
            });
        }
        if period.contains(created) {
            facts.push(MessageFact {
                user,
                campaign,
                channel,
                journey: r.opt_text(3)?,
                status,
                opened: r.opt_i64(6)?.is_some(),
                clicked: r.opt_i64(7)?.is_some(),
                converted: r.opt_i64(8)?.is_some(),
            });
        }
    }
    Ok((facts, touches))
}

/// Touches from events carrying `context.campaign.name` (utm_campaign) in `[from, to)`;
/// the channel is `context.campaign.source` (utm_source), else `utm`.
pub fn event_touches(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<Touch>> {
    let rows = conn.query(
        // The predicate is the partial index `events_campaign_ts` (migration 012), word for word.
        "SELECT user_id, ts, body FROM events WHERE body LIKE '%\"campaign\"%' \
         AND user_id IS NOT NULL AND ts >= $1 AND ts < $2",
        &[Param::I64(from), Param::I64(to)],
    )?;
    let mut out = Vec::new();
    for r in &rows {
        let body: serde_json::Value = match serde_json::from_str(&r.text(2)?) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let c = &body["context"]["campaign"];
        let Some(name) = c["name"].as_str().filter(|n| !n.is_empty()) else {
            continue;
        };
        out.push(Touch {
            user: r.text(0)?,
            at: r.i64(1)?,
            campaign: name.to_string(),
            channel: c["source"].as_str().unwrap_or("utm").to_string(),
        });
    }
    Ok(out)
}

/// The campaign of each journey run that sent a message (its first message's campaign).
fn run_campaigns(conn: &mut dyn Conn) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for r in conn.query(
        "SELECT run_id, COALESCE(campaign, journey, '') FROM messages WHERE run_id IS NOT NULL ORDER BY created_at",
        &[],
    )? {
        out.entry(r.text(0)?).or_insert(r.text(1)?);
    }
    for r in conn.query("SELECT id, journey FROM journey_runs", &[])? {
        out.entry(r.text(0)?).or_insert(r.text(1)?);
    }
    Ok(out)
}

/// Costs in `period`: ad spend entered per channel, discounts of orders that redeemed a
/// coupon a journey issued (actor `journey:RUN/STEP`), and points journeys awarded
/// (source key `campaign:RUN/STEP`) valued at `point_value_fen` each.
pub fn costs(conn: &mut dyn Conn, period: Period, point_value_fen: i64) -> Result<Vec<CostFact>> {
    let range = [Param::I64(period.from), Param::I64(period.to)];
    let mut out = Vec::new();
    for r in conn.query(
        "SELECT COALESCE(campaign, channel), channel, amount FROM channel_costs WHERE spent_at >= $1 AND spent_at < $2",
        &range,
    )? {
        out.push(CostFact {
            campaign: r.text(0)?,
            channel: r.text(1)?,
            kind: CostKind::Ad,
            amount: r.i64(2)?,
        });
    }
    let runs = run_campaigns(conn)?;
    let run_of = |key: &str| key.split('/').next().and_then(|run| runs.get(run)).cloned();
    for r in conn.query(
        "SELECT a.actor, o.discount FROM coupons c \
         JOIN coupon_audit a ON a.coupon_id = c.id AND a.action = 'issued' \
         JOIN orders o ON o.order_id = c.order_id \
         WHERE c.state = 'redeemed' AND a.actor LIKE 'journey:%' AND o.placed_at >= $1 AND o.placed_at < $2",
        &range,
    )? {
        let actor = r.text(0)?;
        if let Some(campaign) = run_of(actor.trim_start_matches("journey:")) {
            out.push(CostFact {
                campaign,
                channel: String::new(),
                kind: CostKind::Coupon,
                amount: r.i64(1)?,
            });
        }
    }
    for r in conn.query(
        "SELECT source_key, delta FROM loyalty_entries WHERE source = 'campaign' AND at >= $1 AND at < $2",
        &range,
    )? {
        let key = r.text(0)?;
        if let Some(campaign) = run_of(key.trim_start_matches("campaign:")) {
            out.push(CostFact {
                campaign,
                channel: String::new(),
                kind: CostKind::Points,
                amount: r.i64(1)?.saturating_mul(point_value_fen),
            });
        }
    }
    Ok(out)
}

/// Each journey's status (`active`, `paused`, `draft`, `stopped`).
pub fn journey_status(conn: &mut dyn Conn) -> Result<HashMap<String, String>> {
    conn.query("SELECT name, status FROM journey_status", &[])?
        .iter()
        .map(|r| Ok((r.text(0)?, r.text(1)?)))
        .collect()
}

/// The treated and holdout arms of `journey` among users who entered in `period`:
/// distinct users, and those with a converted run.
pub fn holdout_arms(conn: &mut dyn Conn, journey: &str, period: Period) -> Result<(Arm, Arm)> {
    let rows = conn.query(
        "SELECT CASE WHEN state = 'holdout' THEN 1 ELSE 0 END AS arm, COUNT(DISTINCT user_id), \
         COUNT(DISTINCT CASE WHEN converted_at IS NOT NULL THEN user_id END) \
         FROM journey_runs WHERE journey = $1 AND entered_at >= $2 AND entered_at < $3 GROUP BY arm",
        &[
            Param::Text(journey),
            Param::I64(period.from),
            Param::I64(period.to),
        ],
    )?;
    let (mut treated, mut holdout) = (Arm::new(0, 0), Arm::new(0, 0));
    for r in &rows {
        let arm = Arm::new(r.i64(1)?, r.i64(2)?);
        if r.i64(0)? != 0 {
            holdout = arm;
        } else {
            treated = arm;
        }
    }
    Ok((treated, holdout))
}

/// Spend entered on a channel (R11.1: ad spend, channel partnerships …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spend {
    /// The channel (`douyin`, `baidu`, …).
    pub channel: String,
    /// The campaign it paid for, if one.
    pub campaign: Option<String>,
    /// When it was spent (ms).
    pub at: i64,
    /// Amount, fen.
    pub amount: i64,
    /// A note.
    pub note: Option<String>,
}

/// A stored spend entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpendEntry {
    /// Its id.
    pub id: i64,
    /// The spend.
    #[serde(flatten)]
    pub spend: Spend,
    /// When it was entered (ms).
    pub created_at: i64,
}

/// Stores one spend entry, written at `now`; returns its id.
pub fn add_cost(conn: &mut dyn Conn, s: &Spend, now: i64) -> Result<i64> {
    conn.query(
        "INSERT INTO channel_costs (channel, campaign, spent_at, amount, note, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING id",
        &[
            Param::Text(&s.channel),
            Param::OptText(s.campaign.as_deref()),
            Param::I64(s.at),
            Param::I64(s.amount),
            Param::OptText(s.note.as_deref()),
            Param::I64(now),
        ],
    )?
    .first()
    .map(|r| r.i64(0))
    .unwrap_or(Ok(0))
}

const SPEND_COLUMNS: &str = "id, channel, campaign, spent_at, amount, note, created_at";

fn spend_of(r: &flywheel_store::conn::Row) -> Result<SpendEntry> {
    Ok(SpendEntry {
        id: r.i64(0)?,
        spend: Spend {
            channel: r.text(1)?,
            campaign: r.opt_text(2)?,
            at: r.i64(3)?,
            amount: r.i64(4)?,
            note: r.opt_text(5)?,
        },
        created_at: r.i64(6)?,
    })
}

/// The spend entries dated in `period`, oldest first.
pub fn spend_entries(conn: &mut dyn Conn, period: Period) -> Result<Vec<SpendEntry>> {
    conn.query(
        &format!("SELECT {SPEND_COLUMNS} FROM channel_costs WHERE spent_at >= $1 AND spent_at < $2 ORDER BY spent_at, id"),
        &[Param::I64(period.from), Param::I64(period.to)],
    )?
    .iter()
    .map(spend_of)
    .collect()
}

/// Deletes spend entry `id` with an audit entry (actor `admin`, action `spend_deleted`),
/// at `now`; returns what was deleted, `None` when there was no such entry. Call it inside
/// one write transaction.
pub fn delete_cost(conn: &mut dyn Conn, id: i64, now: i64) -> Result<Option<SpendEntry>> {
    let Some(entry) = conn
        .query(
            &format!("SELECT {SPEND_COLUMNS} FROM channel_costs WHERE id = $1"),
            &[Param::I64(id)],
        )?
        .first()
        .map(spend_of)
        .transpose()?
    else {
        return Ok(None);
    };
    conn.execute("DELETE FROM channel_costs WHERE id = $1", &[Param::I64(id)])?;
    let s = &entry.spend;
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, 'admin', 'spend_deleted', $2, $3)",
        &[
            Param::I64(now),
            Param::Text(&s.channel),
            Param::Text(&format!(
                "entry {id}: {} 元 on {} (campaign {})",
                flywheel_core::Fen(s.amount).to_yuan_string(),
                flywheel_core::time::from_millis(s.at).to_rfc3339(),
                s.campaign.as_deref().unwrap_or("-")
            )),
        ],
    )?;
    Ok(Some(entry))
}

/// A guardrail alert as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Alert {
    /// When (ms).
    pub at: i64,
    /// The campaign.
    pub campaign: String,
    /// The rule (`roi_below_1`, `cvr_below_expected`).
    pub rule: String,
    /// What was seen.
    pub detail: String,
    /// What was done (`paused`, `alerted`).
    pub action: String,
}

/// The last alert of `campaign` for `rule`, if any (ms).
pub fn last_alert(conn: &mut dyn Conn, campaign: &str, rule: &str) -> Result<Option<i64>> {
    Ok(conn
        .query(
            "SELECT MAX(at) FROM campaign_alerts WHERE campaign = $1 AND rule = $2",
            &[Param::Text(campaign), Param::Text(rule)],
        )?
        .first()
        .map(|r| r.opt_i64(0))
        .transpose()?
        .flatten())
}

/// Records a guardrail alert and its audit entry (actor `guardrail`); call it inside one
/// write transaction so both land or neither.
pub fn record_alert(c: &mut dyn Conn, a: &Alert) -> Result<()> {
    record_alert_by(c, "guardrail", a)
}

/// Records an alert and its audit entry by `actor` (`guardrail`, `benchmark`).
pub fn record_alert_by(c: &mut dyn Conn, actor: &str, a: &Alert) -> Result<()> {
    {
        c.execute(
            "INSERT INTO campaign_alerts (at, campaign, rule, detail, action) VALUES ($1, $2, $3, $4, $5)",
            &[
                Param::I64(a.at),
                Param::Text(&a.campaign),
                Param::Text(&a.rule),
                Param::Text(&a.detail),
                Param::Text(&a.action),
            ],
        )?;
        c.execute(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
            &[
                Param::I64(a.at),
                Param::Text(actor),
                Param::Text(&a.action),
                Param::Text(&a.campaign),
                Param::Text(&format!("{}: {}", a.rule, a.detail)),
            ],
        )?;
        Ok(())
    }
}

/// The latest `limit` alerts, newest first.
pub fn alerts(conn: &mut dyn Conn, limit: i64) -> Result<Vec<Alert>> {
    conn.query(
        "SELECT at, campaign, rule, detail, action FROM campaign_alerts ORDER BY at DESC, id DESC LIMIT $1",
        &[Param::I64(limit)],
    )?
    .iter()
    .map(alert_of)
    .collect()
}

/// The alerts raised in `period`, oldest first.
pub fn alerts_in(conn: &mut dyn Conn, period: Period) -> Result<Vec<Alert>> {
    conn.query(
        "SELECT at, campaign, rule, detail, action FROM campaign_alerts WHERE at >= $1 AND at < $2 ORDER BY at, id",
        &[Param::I64(period.from), Param::I64(period.to)],
    )?
    .iter()
    .map(alert_of)
    .collect()
}

/// An alert from a row of `at, campaign, rule, detail, action`.
fn alert_of(r: &flywheel_store::conn::Row) -> Result<Alert> {
    Ok(Alert {
        at: r.i64(0)?,
        campaign: r.text(1)?,
        rule: r.text(2)?,
        detail: r.text(3)?,
        action: r.text(4)?,
    })
}
