//! Per-channel consent (`consents`): one row per user and channel, and the row of channel
//! [`GLOBAL`] for the global suppression list.

use crate::column_enum::column_enum;
use crate::conn::Sql;
use crate::conn::{Conn, Param, Row};
use crate::Result;

/// The channel of the row holding a user's global suppression.
pub const GLOBAL: &str = "*";

column_enum! {
    /// A consent row's state: a channel's answer, or the global suppression.
    pub enum ConsentState("consent state") {
        /// Opted in to the channel.
        Subscribed = "subscribed",
        /// Opted out of the channel.
        Unsubscribed = "unsubscribed",
        /// Never answered for the channel.
        Unknown = "unknown",
        /// On the global suppression list (channel [`GLOBAL`]).
        Suppressed = "suppressed",
        /// Taken off the global suppression list (channel [`GLOBAL`]).
        Cleared = "none",
    }
}

impl ConsentState {
    /// Whether this state belongs on the [`GLOBAL`] row (else on a channel's).
    pub fn is_global(self) -> bool {
        matches!(self, ConsentState::Suppressed | ConsentState::Cleared)
    }
}

/// One consent row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// The channel, or [`GLOBAL`].
    pub channel: String,
    /// Its state.
    pub state: ConsentState,
    /// Who set it (`api`, `unsubscribe_link`, `hard_bounce`…).
    pub source: String,
    /// When (ms).
    pub updated_at: i64,
}

/// Columns of [`ConsentRow`], in the order [`consent_of`] reads them.
const CONSENT_COLUMNS: &str = "channel, state, source, updated_at";

fn consent_of(r: &Row) -> Result<ConsentRow> {
    Ok(ConsentRow {
        channel: r.text(0)?,
        state: r.text(1)?.parse()?,
        source: r.text(2)?,
        updated_at: r.i64(3)?,
    })
}

/// A user's consent rows, by channel ([`GLOBAL`] first).
pub fn consents(conn: &mut dyn Conn, user: &str) -> Result<Vec<ConsentRow>> {
    conn.query(
        &format!("SELECT {CONSENT_COLUMNS} FROM consents WHERE user_id = $1 ORDER BY channel"),
        &[Param::Text(user)],
    )?
    .iter()
    .map(consent_of)
    .collect()
}

/// Sets a user's consent for one channel (or [`GLOBAL`]).
pub fn set_consent(
    conn: &mut dyn Conn,
    user: &str,
    channel: &str,
    state: ConsentState,
    source: &str,
    now: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO consents (user_id, channel, state, source, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (user_id, channel) DO UPDATE SET state = excluded.state, source = excluded.source, \
         updated_at = excluded.updated_at",
        &[
            Param::Text(user),
            Param::Text(channel),
            Param::Text(state.as_str()),
            Param::Text(source),
            Param::I64(now),
        ],
    )?;
    Ok(())
}
