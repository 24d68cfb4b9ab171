//! Delivery-status callbacks (issue 14): what a provider's report may change on a
//! message, and how a report is read.
//!
//! **Order.** A message moves forward only. Reports apply to messages that were handed
//! to a provider (`sent`, `delivered`, or a failure); a message that never left
//! (`sending`, `deferred`, `suppressed`, `skipped`) is not changed by any report.
//!
//! - `sent` → `delivered` on `delivered`, and on `opened`/`clicked` (engagement proves
//!   delivery);
//! - `sent` → `failed` | `bounced` | `rejected` on that report, with its reason;
//! - a failure never overwrites `delivered`, nor a message already opened or clicked: the
//!   message reached the user, a late bounce does not unsay it;
//! - failures are terminal: the first one stays (with its reason), and a later
//!   `delivered` does not revive the message;
//! - `opened` and `clicked` keep their first time whatever the status (a click also
//!   counts as an open); `delivered_at` keeps the first delivery.
//!
//! A report that would change nothing changes nothing — not even `updated_at`.
//!
//! **Size.** `message_id` longer than [`MAX_MESSAGE_ID_BYTES`] is refused (no message has
//! such an id); `reason` is cut to [`MAX_REASON_CHARS`] characters on a character
//! boundary. The HTTP route bounds the whole body.

use flywheel_core::ErrorCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::db::{MessageRow, MessageStatus};
use crate::{Error, Result};

/// How far a callback's signed timestamp may be from the server's clock (seconds).
pub const TOLERANCE_SECS: u64 = 300;

/// The longest `message_id` a callback may carry, in bytes.
pub const MAX_MESSAGE_ID_BYTES: usize = 256;

/// How much of a provider's `reason` is kept, in characters.
pub const MAX_REASON_CHARS: usize = 1_000;

/// What a provider reports about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// It reached the recipient.
    Delivered,
    /// The recipient opened it.
    Opened,
    /// The recipient clicked a link in it.
    Clicked,
    /// The provider could not deliver it.
    Failed,
    /// The recipient's server or carrier bounced it.
    Bounced,
    /// The provider refused it.
    Rejected,
}

impl Report {
    /// The report named `s` (`delivered`, `opened`, `clicked`, `failed`, `bounced`,
    /// `rejected`).
    pub fn parse(s: &str) -> Option<Report> {
        Some(match s {
            "delivered" => Report::Delivered,
            "opened" => Report::Opened,
            "clicked" => Report::Clicked,
            "failed" => Report::Failed,
            "bounced" => Report::Bounced,
            "rejected" => Report::Rejected,
            _ => return None,
        })
    }

    /// Its name, which is also the status a failure leaves on the message.
    pub fn as_str(self) -> &'static str {
        match self {
            Report::Delivered => "delivered",
            Report::Opened => "opened",
            Report::Clicked => "clicked",
            Report::Failed => "failed",
            Report::Bounced => "bounced",
            Report::Rejected => "rejected",
        }
    }

    /// The status a failure report leaves on the message (`None`: not a failure).
    fn failure_status(self) -> Option<MessageStatus> {
        match self {
            Report::Failed => Some(MessageStatus::Failed),
            Report::Bounced => Some(MessageStatus::Bounced),
            Report::Rejected => Some(MessageStatus::Rejected),
            Report::Delivered | Report::Opened | Report::Clicked => None,
        }
    }
}

/// Where a message stands for delivery reports, read from its stored status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Never handed to a provider (`sending`, `deferred`, `suppressed`, `skipped`).
    NotSent,
    /// Handed to the provider, no report yet.
    Sent,
    /// Confirmed delivered.
    Delivered,
    /// A terminal failure (`failed`, `bounced`, `rejected`).
    Failed,
}

fn stage(status: MessageStatus) -> Stage {
    match status {
        MessageStatus::Sent => Stage::Sent,
        MessageStatus::Delivered => Stage::Delivered,
        MessageStatus::Failed | MessageStatus::Bounced | MessageStatus::Rejected => Stage::Failed,
        MessageStatus::Sending
        | MessageStatus::Deferred
        | MessageStatus::Suppressed
        | MessageStatus::Skipped => Stage::NotSent,
    }
}

/// What a report changes on a message; [`Change::is_empty`] when nothing.
pub use crate::db::MessageChange as Change;

/// What `report` (with the provider's `reason`) changes on `message`, by the order in
/// the module documentation: the one place that order is decided.
pub fn change(message: &MessageRow, report: Report, reason: Option<&str>) -> Change {
    let stage = stage(message.status);
    let engaged = message.opened_at.is_some() || message.clicked_at.is_some();
    let mut c = Change::default();
    match (stage, report) {
        (Stage::NotSent, _) => {}
        (Stage::Sent, Report::Delivered | Report::Opened | Report::Clicked) => {
            c.status = Some(MessageStatus::Delivered);
            c.delivered = message.delivered_at.is_none();
        }
        (Stage::Sent, r) if r.failure_status().is_some() && !engaged => {
            c.status = r.failure_status();
            c.reason = reason.map(limit_reason);
        }
        _ => {}
    }
    if stage != Stage::NotSent {
        let clicked = report == Report::Clicked;
        c.opened = (clicked || report == Report::Opened) && message.opened_at.is_none();
        c.clicked = clicked && message.clicked_at.is_none();
    }
    c
}

/// `reason` cut to [`MAX_REASON_CHARS`] characters.
pub fn limit_reason(reason: &str) -> String {
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((end, _)) => reason[..end].to_string(),
        None => reason.to_string(),
    }
}

/// A callback's body: `{"message_id", "status", "reason"?}` (other fields are ignored).
#[derive(Debug, Clone, Deserialize)]
struct Body {
    message_id: String,
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// A callback body, read and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The message id Flywheel sent.
    pub message_id: String,
    /// What became of it.
    pub report: Report,
    /// Provider detail, at most [`MAX_REASON_CHARS`] characters.
    pub reason: Option<String>,
}

impl StatusReport {
    /// Reads a callback body; anything but `{"message_id", "status", "reason"?}` with a
    /// known status and a `message_id` of at most [`MAX_MESSAGE_ID_BYTES`] is refused.
    pub fn parse(body: &[u8]) -> Result<StatusReport> {
        let b: Body = serde_json::from_slice(body)
            .map_err(|e| Error::refused(ErrorCode::InvalidDeliveryReport, format!("delivery report: {e}")))?;
        if b.message_id.is_empty() || b.message_id.len() > MAX_MESSAGE_ID_BYTES {
            return Err(Error::refused(
                ErrorCode::InvalidDeliveryReport,
                format!("message_id must be 1 to {MAX_MESSAGE_ID_BYTES} bytes"),
            ));
        }
        let report = Report::parse(&b.status).ok_or_else(|| {
            Error::refused(
                ErrorCode::InvalidDeliveryReport,
                format!(
                    "unknown delivery status {:?}: use delivered, opened, clicked, failed, bounced or rejected",
                    limit_reason_to(&b.status, 40)
                ),
            )
        })?;
        Ok(StatusReport {
            message_id: b.message_id,
            report,
            reason: b.reason.as_deref().map(limit_reason),
        })
    }
}

fn limit_reason_to(s: &str, chars: usize) -> &str {
    match s.char_indices().nth(chars) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// The key a callback is remembered by to refuse replays: a digest of the channel, the
/// signed timestamp and the body — exactly what its signature covers.
pub fn replay_key(channel: &str, signed_at: i64, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(channel.as_bytes());
    h.update(b"\n");
    h.update(signed_at.to_string().as_bytes());
    h.update(b".");
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::MessageStatus as S;

    fn msg(status: MessageStatus) -> MessageRow {
        MessageRow {
            id: "m1".into(),
            user_id: "u".into(),
            journey: None,
            run_id: None,
            step: None,
            channel: "sms".into(),
            category: "marketing".into(),
            campaign: None,
            status,
            reason: None,
            address: None,
            subject: None,
            created_at: 0,
            updated_at: 0,
            delivered_at: None,
            opened_at: None,
            clicked_at: None,
            converted_at: None,
        }
    }

    /// Applies a change the way the store does, to walk sequences of reports.
    fn apply(m: &mut MessageRow, r: Report, reason: Option<&str>, at: i64) {
        let c = change(m, r, reason);
        if let Some(s) = c.status {
            m.status = s;
            if r.failure_status().is_some() {
                m.reason = c.reason.clone();
            }
        }
        if c.delivered {
            m.delivered_at = Some(at);
        }
        if c.opened {
            m.opened_at = Some(at);
        }
        if c.clicked {
            m.clicked_at = Some(at);
        }
    }

    #[test]
    fn sent_moves_to_delivered_or_a_failure() {
        let d = change(&msg(S::Sent), Report::Delivered, None);
        assert_eq!((d.status, d.delivered), (Some(S::Delivered), true));
        for r in [Report::Failed, Report::Bounced, Report::Rejected] {
            let c = change(&msg(S::Sent), r, Some("550 no such user"));
            assert_eq!(c.status.map(S::as_str), Some(r.as_str()));
            assert_eq!(c.reason.as_deref(), Some("550 no such user"));
        }
    }

    #[test]
    fn failures_never_overwrite_delivered_or_engagement() {
        for r in [Report::Failed, Report::Bounced, Report::Rejected] {
            assert!(change(&msg(S::Delivered), r, Some("late")).is_empty(), "{r:?}");
            let mut opened = msg(S::Sent);
            opened.opened_at = Some(5);
            assert!(change(&opened, r, None).is_empty(), "{r:?} after an open");
            let mut clicked = msg(S::Sent);
            clicked.clicked_at = Some(5);
            assert!(change(&clicked, r, None).is_empty(), "{r:?} after a click");
        }
    }

    #[test]
    fn failures_are_terminal_and_the_first_one_stays() {
        for first in [S::Failed, S::Bounced, S::Rejected] {
            for r in [
                Report::Delivered,
                Report::Failed,
                Report::Bounced,
                Report::Rejected,
            ] {
                let c = change(&msg(first), r, Some("other"));
                assert!(c.is_empty(), "{r:?} after {first}: {c:?}");
            }
        }
    }

    #[test]
    fn engagement_proves_delivery_and_keeps_first_times() {
        let c = change(&msg(S::Sent), Report::Clicked, None);
        assert_eq!(
            c,
            Change {
                status: Some(S::Delivered),
                reason: None,
                delivered: true,
                opened: true,
                clicked: true
            }
        );
        let mut m = msg(S::Delivered);
        m.delivered_at = Some(1);
        m.opened_at = Some(2);
        assert!(change(&m, Report::Opened, None).is_empty());
        assert!(change(&m, Report::Delivered, None).is_empty());
        let c = change(&m, Report::Clicked, None);
        assert_eq!((c.status, c.opened, c.clicked), (None, false, true));
        // A bounced message still records what the user did, without leaving its status.
        let c = change(&msg(S::Bounced), Report::Opened, None);
        assert_eq!((c.status, c.opened), (None, true));
    }

    #[test]
    fn messages_that_never_left_are_not_changed() {
        for status in [S::Sending, S::Deferred, S::Suppressed, S::Skipped] {
            for r in [
                Report::Delivered,
                Report::Opened,
                Report::Clicked,
                Report::Bounced,
            ] {
                assert!(change(&msg(status), r, None).is_empty(), "{r:?} on {status}");
            }
        }
    }

    #[test]
    fn any_order_of_reports_ends_the_same_as_the_first_decisive_one() {
        // Every permutation of delivered/bounced/opened: once delivered or engaged, the
        // message stays delivered; bounced first stays bounced.
        let reports = [Report::Delivered, Report::Bounced, Report::Opened];
        let perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        for p in perms {
            let mut m = msg(S::Sent);
            for (at, i) in p.iter().enumerate() {
                apply(&mut m, reports[*i], Some("bounce"), at as i64 + 1);
            }
            let expected = if reports[p[0]] == Report::Bounced {
                S::Bounced
            } else {
                S::Delivered
            };
            assert_eq!(m.status, expected, "{p:?}");
            assert_eq!(m.reason.is_some(), expected == S::Bounced, "{p:?}");
            assert!(m.opened_at.is_some(), "{p:?}: the open is recorded either way");
        }
    }

    #[test]
    fn reports_are_read_with_bounded_fields() {
        let r =
            StatusReport::parse(br#"{"message_id":"m1","status":"bounced","reason":"x","extra":1}"#).unwrap();
        assert_eq!(r.report, Report::Bounced);
        let long = "退".repeat(MAX_REASON_CHARS + 5);
        let body = serde_json::json!({"message_id": "m1", "status": "failed", "reason": long}).to_string();
        let r = StatusReport::parse(body.as_bytes()).unwrap();
        let kept = r.reason.unwrap();
        assert_eq!(kept.chars().count(), MAX_REASON_CHARS);
        assert!(kept.chars().all(|c| c == '退'));
        let id = "m".repeat(MAX_MESSAGE_ID_BYTES + 1);
        let body = serde_json::json!({"message_id": id, "status": "delivered"}).to_string();
        assert!(matches!(
            StatusReport::parse(body.as_bytes()),
            Err(Error::Refused {
                code: ErrorCode::InvalidDeliveryReport,
                ..
            })
        ));
        assert!(StatusReport::parse(br#"{"message_id":"","status":"delivered"}"#).is_err());
        assert!(StatusReport::parse(br#"{"message_id":"m1","status":"sent"}"#).is_err());
        assert!(StatusReport::parse(b"not json").is_err());
    }

    #[test]
    fn replay_keys_cover_channel_timestamp_and_body() {
        let k = replay_key("sms", 1, b"{}");
        assert_eq!(k.len(), 64);
        assert_eq!(k, replay_key("sms", 1, b"{}"));
        assert_ne!(k, replay_key("push", 1, b"{}"));
        assert_ne!(k, replay_key("sms", 2, b"{}"));
        assert_ne!(k, replay_key("sms", 1, b"{ }"));
    }
}
