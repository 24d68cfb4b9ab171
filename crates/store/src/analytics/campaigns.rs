//! What the campaign metrics read from other contexts' tables: the message log
//! (journeys), the campaign of each journey run, the costs journeys caused (coupon
//! discounts, points) and the holdout arms of a journey. The status and state strings of
//! those tables (message status, coupon state, run state, audit actions, ledger sources)
//! stay in this module; callers get typed values.

use crate::conn::Sql;
use std::collections::HashMap;

use crate::conn::{Conn, Param, Row};
use crate::journeys::{JourneyStatus, MessageStatus};
use crate::person::RECIPIENT_PERSON;
use crate::Result;

/// How far a message got, from its status in the message log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Not handed to a provider (`failed`, `suppressed`, `skipped`).
    NotSent,
    /// Handed to a provider, which reported it bounced or rejected.
    Undelivered,
    /// Handed to a provider and not reported undelivered (counts as delivered).
    Delivered,
}

impl Delivery {
    /// The delivery of a message with `status`. A message still `sending` or `deferred`
    /// counts as handed on, as it always has in these metrics.
    pub fn of_status(status: MessageStatus) -> Delivery {
        match status {
            MessageStatus::Failed | MessageStatus::Suppressed | MessageStatus::Skipped => Delivery::NotSent,
            MessageStatus::Bounced | MessageStatus::Rejected => Delivery::Undelivered,
            MessageStatus::Sending
            | MessageStatus::Sent
            | MessageStatus::Delivered
            | MessageStatus::Deferred => Delivery::Delivered,
        }
    }

    /// Whether it was handed to a provider.
    pub fn is_sent(self) -> bool {
        self != Delivery::NotSent
    }
}

/// One message of the log, as the campaign metrics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// The recipient's person (the profile of its user id, [`crate::person`]).
    pub person: String,
    /// When it was created (ms).
    pub created_at: i64,
    /// The send's campaign, else its journey's name, else `""`.
    pub campaign: String,
    /// The journey that sent it.
    pub journey: Option<String>,
    /// The channel.
    pub channel: String,
    /// How far it got.
    pub delivery: Delivery,
    /// Opened (pixel).
    pub opened: bool,
    /// Clicked (tracked link).
    pub clicked: bool,
    /// The journey's goal was reached after it.
    pub converted: bool,
}

fn message_of(r: &Row) -> Result<MessageRow> {
    Ok(MessageRow {
        person: r.text(0)?,
        created_at: r.i64(1)?,
        campaign: r.text(2)?,
        journey: r.opt_text(3)?,
        channel: r.text(4)?,
        delivery: Delivery::of_status(r.text(5)?.parse()?),
        opened: r.opt_i64(6)?.is_some(),
        clicked: r.opt_i64(7)?.is_some(),
        converted: r.opt_i64(8)?.is_some(),
    })
}

/// Messages created in `[from, to)`.
pub fn messages(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<MessageRow>> {
    conn.query(
        &format!(
            "SELECT {RECIPIENT_PERSON}, m.created_at, COALESCE(m.campaign, m.journey, ''), m.journey, m.channel, \
             m.status, m.opened_at, m.clicked_at, m.converted_at FROM messages m \
             WHERE m.created_at >= $1 AND m.created_at < $2"
        ),
        &[Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(message_of)
    .collect()
}

/// The campaign of each journey run: its first message's campaign (else journey name),
/// and for runs that sent nothing, the journey's name.
pub fn run_campaigns(conn: &mut dyn Conn) -> Result<HashMap<String, String>> {
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

/// Ad spend entered for a period overlapping `[from, to)`: for the campaign it names,
/// else for its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdSpend {
    /// The campaign (the channel's name when the entry names no campaign).
    pub campaign: String,
    /// The channel.
    pub channel: String,
    /// Amount, fen (the whole entry's, for a period).
    pub amount: i64,
    /// When it was spent; for a period, the start of its first day (ms).
    pub at: i64,
    /// For a period, the start of the day after its last (exclusive, ms).
    pub until: Option<i64>,
}

/// The spend entries dated in `[from, to)` or covering a period that overlaps it (the
/// caller takes the period's share).
pub fn ad_spend(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<AdSpend>> {
    conn.query(
        &format!(
            "SELECT COALESCE(campaign, channel), channel, amount, spent_at, spent_until FROM channel_costs WHERE {}",
            crate::analytics::spend::OVERLAPS
        ),
        &[Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(|r| {
        Ok(AdSpend {
            campaign: r.text(0)?,
            channel: r.text(1)?,
            amount: r.i64(2)?,
            at: r.i64(3)?,
            until: r.opt_i64(4)?,
        })
    })
    .collect()
}

/// An amount a journey run caused (a discount, points).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCost {
    /// The journey run that caused it.
    pub run_id: String,
    /// The amount (fen for discounts, points for points).
    pub amount: i64,
}

/// The run id of a journeys' step key `RUN/STEP` behind `prefix` (`journey:`, `campaign:`).
fn run_of(key: &str, prefix: &str) -> String {
    let key = key.trim_start_matches(prefix);
    key.split('/').next().unwrap_or(key).to_string()
}

/// Discounts of orders placed in `[from, to)` that redeemed a coupon a journey issued
/// (the coupon's `issued` audit entry has actor `journey:RUN/STEP`).
pub fn journey_coupon_discounts(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<RunCost>> {
    conn.query(
        "SELECT a.actor, o.discount FROM coupons c \
         JOIN coupon_audit a ON a.coupon_id = c.id AND a.action = 'issued' \
         JOIN orders o ON o.order_id = c.order_id \
         WHERE c.state = 'redeemed' AND a.actor LIKE 'journey:%' AND o.placed_at >= $1 AND o.placed_at < $2",
        &[Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(|r| {
        Ok(RunCost {
            run_id: run_of(&r.text(0)?, "journey:"),
            amount: r.i64(1)?,
        })
    })
    .collect()
}

/// Points journeys awarded in `[from, to)` (ledger source `campaign`, key
/// `campaign:RUN/STEP`).
pub fn journey_points(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<RunCost>> {
    conn.query(
        "SELECT source_key, delta FROM loyalty_entries WHERE source = 'campaign' AND at >= $1 AND at < $2",
        &[Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(|r| {
        Ok(RunCost {
            run_id: run_of(&r.text(0)?, "campaign:"),
            amount: r.i64(1)?,
        })
    })
    .collect()
}

/// Each journey's name and status.
pub fn journey_statuses(conn: &mut dyn Conn) -> Result<HashMap<String, JourneyStatus>> {
    conn.query("SELECT name, status FROM journey_status", &[])?
        .iter()
        .map(|r| Ok((r.text(0)?, r.text(1)?.parse()?)))
        .collect()
}

/// One arm of a journey's experiment: distinct persons, and those with a converted run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArmCounts {
    /// Distinct persons who entered.
    pub users: i64,
    /// Distinct persons with a converted run.
    pub converted: i64,
}

/// The treated and holdout arms of `journey` among persons who entered in `[from, to)`.
pub fn holdout_arms(
    conn: &mut dyn Conn,
    journey: &str,
    from: i64,
    to: i64,
) -> Result<(ArmCounts, ArmCounts)> {
    let rows = conn.query(
        &format!(
            "SELECT arm, COUNT(DISTINCT p), COUNT(DISTINCT CASE WHEN converted THEN p END) FROM \
             (SELECT CASE WHEN m.state = 'holdout' THEN 1 ELSE 0 END AS arm, {RECIPIENT_PERSON} AS p, \
             m.converted_at IS NOT NULL AS converted FROM journey_runs m \
             WHERE m.journey = $1 AND m.entered_at >= $2 AND m.entered_at < $3) x GROUP BY arm"
        ),
        &[Param::Text(journey), Param::I64(from), Param::I64(to)],
    )?;
    let (mut treated, mut holdout) = (ArmCounts::default(), ArmCounts::default());
    for r in &rows {
        let arm = ArmCounts {
            users: r.i64(1)?,
            converted: r.i64(2)?,
        };
        if r.i64(0)? != 0 {
            holdout = arm;
        } else {
            treated = arm;
        }
    }
    Ok((treated, holdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_says_how_far_a_message_got() {
        use MessageStatus as S;
        for s in [S::Failed, S::Suppressed, S::Skipped] {
            assert_eq!(Delivery::of_status(s), Delivery::NotSent, "{s}");
        }
        for s in [S::Bounced, S::Rejected] {
            assert_eq!(Delivery::of_status(s), Delivery::Undelivered, "{s}");
        }
        for s in [S::Sending, S::Sent, S::Delivered, S::Deferred] {
            assert_eq!(Delivery::of_status(s), Delivery::Delivered, "{s}");
        }
        assert!(Delivery::Undelivered.is_sent() && !Delivery::NotSent.is_sent());
    }

    #[test]
    fn a_step_key_names_its_run() {
        assert_eq!(run_of("journey:r1/s2", "journey:"), "r1");
        assert_eq!(run_of("campaign:r1", "campaign:"), "r1");
    }
}
