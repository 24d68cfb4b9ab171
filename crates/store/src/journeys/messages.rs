//! The message log (`messages`): every message a journey sent, suppressed, skipped,
//! deferred or failed, and what happened after (delivery, open, click, conversion).

use crate::column_enum::column_enum;
use crate::conn::Sql;
use serde::Serialize;

use crate::conn::{Conn, Param, Row};
use crate::Result;

column_enum! {
    /// What became of a message.
    pub enum MessageStatus("message status") {
        /// Being sent (not handed to a provider yet).
        Sending = "sending",
        /// Handed to the provider.
        Sent = "sent",
        /// Delivery confirmed.
        Delivered = "delivered",
        /// The provider could not deliver it, or sending it failed.
        Failed = "failed",
        /// The recipient's server or carrier bounced it.
        Bounced = "bounced",
        /// The provider refused it.
        Rejected = "rejected",
        /// Not sent: consent or the global suppression.
        Suppressed = "suppressed",
        /// Not sent: a frequency cap.
        Skipped = "skipped",
        /// Waiting for quiet hours or a cap to pass.
        Deferred = "deferred",
    }
}

/// One message: sent, suppressed, skipped, failed… and what happened after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRow {
    /// Message id (the effect key's digest; also the email's Message-ID).
    pub id: String,
    /// The shop's user id.
    pub user_id: String,
    /// Journey.
    pub journey: Option<String>,
    /// Run.
    pub run_id: Option<String>,
    /// Step id.
    pub step: Option<String>,
    /// Channel used (or first wanted, when suppressed).
    pub channel: String,
    /// `marketing` or `transactional`.
    pub category: String,
    /// Campaign for attribution.
    pub campaign: Option<String>,
    /// What became of it.
    pub status: MessageStatus,
    /// Why (suppression, cap, provider error).
    pub reason: Option<String>,
    /// Address used.
    pub address: Option<String>,
    /// Subject or title.
    pub subject: Option<String>,
    /// Logged (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// Delivery confirmed (ms).
    pub delivered_at: Option<i64>,
    /// First open (ms).
    pub opened_at: Option<i64>,
    /// First click (ms).
    pub clicked_at: Option<i64>,
    /// The run's goal reached after this message (ms).
    pub converted_at: Option<i64>,
}

/// Columns of [`MessageRow`], in the order [`message_of`] reads them.
const MESSAGE_COLUMNS: &str =
    "id, user_id, journey, run_id, step, channel, category, campaign, status, reason, \
     address, subject, created_at, updated_at, delivered_at, opened_at, clicked_at, converted_at";

fn message_of(r: &Row) -> Result<MessageRow> {
    Ok(MessageRow {
        id: r.text(0)?,
        user_id: r.text(1)?,
        journey: r.opt_text(2)?,
        run_id: r.opt_text(3)?,
        step: r.opt_text(4)?,
        channel: r.text(5)?,
        category: r.text(6)?,
        campaign: r.opt_text(7)?,
        status: r.text(8)?.parse()?,
        reason: r.opt_text(9)?,
        address: r.opt_text(10)?,
        subject: r.opt_text(11)?,
        created_at: r.i64(12)?,
        updated_at: r.i64(13)?,
        delivered_at: r.opt_i64(14)?,
        opened_at: r.opt_i64(15)?,
        clicked_at: r.opt_i64(16)?,
        converted_at: r.opt_i64(17)?,
    })
}

/// Logs a message or updates its status (same id: status, reason, address, subject
/// change; a deferred message takes the time it finally goes out, which caps count).
pub fn log_message(conn: &mut dyn Conn, m: &MessageRow) -> Result<()> {
    let mut params = message_params(m).to_vec();
    params.push(Param::Text(MessageStatus::Deferred.as_str()));
    conn.execute(
        "INSERT INTO messages (id, user_id, journey, run_id, step, channel, category, campaign, status, reason, \
         address, subject, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, reason = excluded.reason, \
         channel = excluded.channel, address = excluded.address, subject = excluded.subject, updated_at = excluded.updated_at, \
         created_at = CASE WHEN messages.status = $15 THEN excluded.created_at ELSE messages.created_at END",
        &params,
    )?;
    Ok(())
}

/// The 14 columns every message insert writes, in the order of [`log_message`]'s SQL.
fn message_params(m: &MessageRow) -> [Param<'_>; 14] {
    [
        Param::Text(&m.id),
        Param::Text(&m.user_id),
        Param::OptText(m.journey.as_deref()),
        Param::OptText(m.run_id.as_deref()),
        Param::OptText(m.step.as_deref()),
        Param::Text(&m.channel),
        Param::Text(&m.category),
        Param::OptText(m.campaign.as_deref()),
        Param::Text(m.status.as_str()),
        Param::OptText(m.reason.as_deref()),
        Param::OptText(m.address.as_deref()),
        Param::OptText(m.subject.as_deref()),
        Param::I64(m.created_at),
        Param::I64(m.updated_at),
    ]
}

/// Records a message as it ended up — every time field included — for a history made
/// outside the engine (the demo's past broadcast campaigns); an id already logged is
/// left as it is.
pub fn record_history(conn: &mut dyn Conn, m: &MessageRow) -> Result<()> {
    conn.execute(
        "INSERT INTO messages (id, user_id, journey, run_id, step, channel, category, campaign, status, reason, \
         address, subject, created_at, updated_at, delivered_at, opened_at, clicked_at, converted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (id) DO NOTHING",
        &[
            message_params(m).as_slice(),
            &[
                Param::OptI64(m.delivered_at),
                Param::OptI64(m.opened_at),
                Param::OptI64(m.clicked_at),
                Param::OptI64(m.converted_at),
            ],
        ]
        .concat(),
    )?;
    Ok(())
}

/// A message by id.
pub fn message(conn: &mut dyn Conn, id: &str) -> Result<Option<MessageRow>> {
    conn.query(
        &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"),
        &[Param::Text(id)],
    )?
    .first()
    .map(message_of)
    .transpose()
}

/// What a delivery report changes on a message; [`MessageChange::is_empty`] when nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageChange {
    /// The new status, when it moves.
    pub status: Option<MessageStatus>,
    /// The failure's reason (only with a failure status).
    pub reason: Option<String>,
    /// Set `delivered_at`.
    pub delivered: bool,
    /// Set `opened_at`.
    pub opened: bool,
    /// Set `clicked_at`.
    pub clicked: bool,
}

impl MessageChange {
    /// Whether the report changes nothing.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && !self.delivered && !self.opened && !self.clicked
    }
}

/// Writes `change` on message `id` at `at` (ms); an empty change writes nothing. First
/// times (delivered, opened, clicked) are kept.
pub fn apply_change(conn: &mut dyn Conn, id: &str, change: &MessageChange, at: i64) -> Result<()> {
    if change.is_empty() {
        return Ok(());
    }
    let mut sets = vec!["updated_at = $1".to_string()];
    let mut params = vec![Param::I64(at)];
    if let Some(status) = change.status {
        params.push(Param::Text(status.as_str()));
        sets.push(format!("status = ${}", params.len()));
        if change.reason.is_some() {
            params.push(Param::OptText(change.reason.as_deref()));
            sets.push(format!("reason = ${}", params.len()));
        }
    }
    for (set, column) in [
        (change.delivered, "delivered_at"),
        (change.opened, "opened_at"),
        (change.clicked, "clicked_at"),
    ] {
        if set {
            sets.push(format!("{column} = COALESCE({column}, $1)"));
        }
    }
    params.push(Param::Text(id));
    let sql = format!(
        "UPDATE messages SET {} WHERE id = ${}",
        sets.join(", "),
        params.len()
    );
    conn.execute(&sql, &params)?;
    Ok(())
}

/// Which messages to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFilter {
    /// Of a user.
    User,
    /// Of a journey.
    Journey,
    /// Of a run.
    Run,
}

/// Messages of a user, a journey or a run, newest first.
pub fn messages(
    conn: &mut dyn Conn,
    filter: MessageFilter,
    value: &str,
    limit: i64,
) -> Result<Vec<MessageRow>> {
    let col = match filter {
        MessageFilter::User => "user_id",
        MessageFilter::Journey => "journey",
        MessageFilter::Run => "run_id",
    };
    conn.query(
        &format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE {col} = $1 ORDER BY created_at DESC, id LIMIT $2"
        ),
        &[Param::Text(value), Param::I64(limit)],
    )?
    .iter()
    .map(message_of)
    .collect()
}

/// Marketing messages sent to a user since `since` (`sending`, `sent` or `delivered`):
/// (message id, channel, sent at), for frequency caps.
pub fn sent_since(conn: &mut dyn Conn, user: &str, since: i64) -> Result<Vec<(String, String, i64)>> {
    conn.query(
        "SELECT id, channel, created_at FROM messages WHERE user_id = $1 AND created_at >= $2 \
         AND category = 'marketing' AND status IN ($3, $4, $5)",
        &[
            Param::Text(user),
            Param::I64(since),
            Param::Text(MessageStatus::Sending.as_str()),
            Param::Text(MessageStatus::Sent.as_str()),
            Param::Text(MessageStatus::Delivered.as_str()),
        ],
    )?
    .iter()
    .map(|r| Ok((r.text(0)?, r.text(1)?, r.i64(2)?)))
    .collect()
}

/// A journey's messages per status, in the order of the stored text.
pub fn status_counts(conn: &mut dyn Conn, journey: &str) -> Result<Vec<(MessageStatus, i64)>> {
    conn.query(
        "SELECT status, COUNT(*) FROM messages WHERE journey = $1 GROUP BY status ORDER BY status",
        &[Param::Text(journey)],
    )?
    .iter()
    .map(status_count_of)
    .collect()
}

/// Every message per status (journeys' and others'), in the order of the stored text.
pub fn all_status_counts(conn: &mut dyn Conn) -> Result<Vec<(MessageStatus, i64)>> {
    conn.query(
        "SELECT status, COUNT(*) FROM messages GROUP BY status ORDER BY status",
        &[],
    )?
    .iter()
    .map(status_count_of)
    .collect()
}

fn status_count_of(r: &Row) -> Result<(MessageStatus, i64)> {
    Ok((r.text(0)?.parse()?, r.i64(1)?))
}

/// Credits a run's conversion at `now` to its messages that went out (`sent` or
/// `delivered`) and carry no conversion yet.
pub fn credit_conversion(conn: &mut dyn Conn, run_id: &str, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE messages SET converted_at = $1 WHERE run_id = $2 AND converted_at IS NULL \
         AND status IN ($3, $4)",
        &[
            Param::I64(now),
            Param::Text(run_id),
            Param::Text(MessageStatus::Sent.as_str()),
            Param::Text(MessageStatus::Delivered.as_str()),
        ],
    )?;
    Ok(())
}
