//! The audit log of automatic and administrative actions analytics takes (guardrail
//! pauses and alerts, benchmark alerts, deleted spend entries): append-only, in order.

use crate::conn::Sql;
use serde::Serialize;

use crate::conn::{Conn, Param, Row};
use crate::Result;

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Its position in the log.
    pub seq: i64,
    /// When (ms).
    pub at: i64,
    /// Who acted (`guardrail`, `benchmark`, `admin`, a workflow's name).
    pub actor: String,
    /// What was done (`paused`, `alerted`, `spend_deleted`).
    pub action: String,
    /// What it was done to (a campaign, a channel).
    pub subject: String,
    /// Details.
    pub detail: String,
}

/// An entry to append (its `seq` is assigned by the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewAuditEntry<'a> {
    /// When (ms).
    pub at: i64,
    /// Who acted.
    pub actor: &'a str,
    /// What was done.
    pub action: &'a str,
    /// What it was done to.
    pub subject: &'a str,
    /// Details.
    pub detail: &'a str,
}

const COLUMNS: &str = "seq, at, actor, action, subject, detail";

fn row_of(r: &Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.i64(0)?,
        at: r.i64(1)?,
        actor: r.text(2)?,
        action: r.text(3)?,
        subject: r.text(4)?,
        detail: r.text(5)?,
    })
}

/// Appends `entry`; call it in the transaction of the action it records.
pub fn append(conn: &mut dyn Conn, entry: &NewAuditEntry<'_>) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        &[
            Param::I64(entry.at),
            Param::Text(entry.actor),
            Param::Text(entry.action),
            Param::Text(entry.subject),
            Param::Text(entry.detail),
        ],
    )?;
    Ok(())
}

/// Every entry, oldest first.
pub fn entries(conn: &mut dyn Conn) -> Result<Vec<AuditEntry>> {
    conn.query(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"), &[])?
        .iter()
        .map(row_of)
        .collect()
}
