//! Campaign alerts (table `campaign_alerts`, owned by analytics): guardrail trips and
//! missed benchmarks, each recorded with its audit entry in one transaction.

use crate::conn::Sql;
use serde::{Deserialize, Serialize};

use crate::analytics::audit::{self, NewAuditEntry};
use crate::conn::{Conn, Param, Row};
use crate::Result;

/// A campaign alert as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

const COLUMNS: &str = "at, campaign, rule, detail, action";

fn row_of(r: &Row) -> Result<Alert> {
    Ok(Alert {
        at: r.i64(0)?,
        campaign: r.text(1)?,
        rule: r.text(2)?,
        detail: r.text(3)?,
        action: r.text(4)?,
    })
}

/// When `campaign` was last alerted for `rule` (ms), if ever.
pub fn last_at(conn: &mut dyn Conn, campaign: &str, rule: &str) -> Result<Option<i64>> {
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

/// Records `alert` and its audit entry by `actor` (`guardrail`, `benchmark`, a workflow):
/// call it inside one write transaction so both land or neither.
pub fn record(conn: &mut dyn Conn, actor: &str, alert: &Alert) -> Result<()> {
    conn.execute(
        "INSERT INTO campaign_alerts (at, campaign, rule, detail, action) VALUES ($1, $2, $3, $4, $5)",
        &[
            Param::I64(alert.at),
            Param::Text(&alert.campaign),
            Param::Text(&alert.rule),
            Param::Text(&alert.detail),
            Param::Text(&alert.action),
        ],
    )?;
    audit::append(
        conn,
        &NewAuditEntry {
            at: alert.at,
            actor,
            action: &alert.action,
            subject: &alert.campaign,
            detail: &format!("{}: {}", alert.rule, alert.detail),
        },
    )
}

/// The latest `limit` alerts, newest first.
pub fn latest(conn: &mut dyn Conn, limit: i64) -> Result<Vec<Alert>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM campaign_alerts ORDER BY at DESC, id DESC LIMIT $1"),
        &[Param::I64(limit)],
    )?
    .iter()
    .map(row_of)
    .collect()
}

/// The alerts raised in `[from, to)`, oldest first.
pub fn between(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<Alert>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM campaign_alerts WHERE at >= $1 AND at < $2 ORDER BY at, id"),
        &[Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(row_of)
    .collect()
}
