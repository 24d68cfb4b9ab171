//! Validating one Segment message into an [`Event`].
//!
//! Rules (Segment HTTP Tracking API, see `docs/ingest.md`):
//! * `type` is one of track/identify/page/screen/group/alias (implied by the endpoint
//!   for single-message calls);
//! * every message has `userId` or `anonymousId` (strings; numbers are accepted and
//!   read as their exact JSON text, see [`crate::exact`]), at most 255 bytes;
//! * `track` needs a non-empty `event`; `group` needs `groupId`; `alias` needs
//!   `userId` and `previousId`;
//! * `context`, `properties`, `traits`, `integrations` are objects when present; a
//!   batch's top-level `context`/`integrations` apply to every item (the item's own
//!   keys win);
//! * timestamps are ISO-8601. The client clock reading is `originalTimestamp`, else
//!   `timestamp`; with `sentAt` (the item's, else the batch's) the stored timestamp is
//!   `receivedAt - (sentAt - originalTimestamp)` (Segment's clock-skew correction),
//!   without it the reading as sent, without either `receivedAt`;
//! * a corrected timestamp more than 24 h after `receivedAt` is refused as absurd, and so
//!   is one before 2000-01-01 on the live tracking API ([`TimeBounds::Live`]); a bulk
//!   import of history ([`TimeBounds::Import`]) has no lower bound unless it sets one;
//! * a page/screen's top-level `category` is kept as `properties.category`, and a
//!   top-level `channel` (RudderStack) as `context.channel`;
//! * a missing `messageId` is generated (unique per server process), so such
//!   messages are never deduplicated.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Duration, SubsecRound, Utc};
use flywheel_core::time::parse_timestamp;
use flywheel_core::ErrorCode;
use flywheel_core::{Event, EventKind, Identity, Timestamp};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// The longest event, page or group name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 1024;

/// What a message inherits from its request.
#[derive(Debug, Clone, Default)]
pub struct Envelope<'a> {
    /// Position in the batch (for error messages).
    pub index: usize,
    /// The call type implied by the endpoint (`/v1/track` → track), if any.
    pub kind: Option<EventKind>,
    /// When the server received the request.
    pub received_at: Option<Timestamp>,
    /// The batch's `sentAt`.
    pub sent_at: Option<Timestamp>,
    /// The batch's `context`.
    pub context: Option<&'a Map<String, Value>>,
    /// The batch's `integrations`.
    pub integrations: Option<&'a Map<String, Value>>,
    /// Which timestamps are plausible.
    pub bounds: TimeBounds,
}

/// The earliest plausible timestamp on the live tracking API: 2000-01-01T00:00:00Z.
pub const LIVE_NOT_BEFORE_MS: i64 = 946_684_800_000;

/// Which timestamps a message may carry (at most 24 h after receipt, always).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeBounds {
    /// The live tracking API: an SDK's clock before 2000-01-01 is broken, not history.
    #[default]
    Live,
    /// A bulk import of the shop's history: any past time, or none before `not_before`.
    Import {
        /// The import's floor (`flywheel import --not-before`), if it sets one.
        not_before: Option<Timestamp>,
    },
}

impl TimeBounds {
    /// The earliest timestamp accepted, if any.
    pub fn not_before(self) -> Option<Timestamp> {
        match self {
            TimeBounds::Live => Some(flywheel_core::time::from_millis(LIVE_NOT_BEFORE_MS)),
            TimeBounds::Import { not_before } => not_before,
        }
    }
}

/// A validated message and the `writeKey` it carried, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The event.
    pub event: Event,
    /// The item's own `writeKey`.
    pub write_key: Option<String>,
}

static GENERATED: AtomicU64 = AtomicU64::new(0);

fn generated_message_id(received: Timestamp) -> String {
    let n = GENERATED.fetch_add(1, Ordering::Relaxed);
    format!(
        "fw-{:x}-{:x}-{n:x}",
        received.timestamp_micros(),
        std::process::id()
    )
}

/// Validates one message (taking it, so its objects move into the event uncopied).
pub fn parse(value: Value, env: &Envelope<'_>) -> Result<Parsed> {
    let i = env.index;
    let Value::Object(mut m) = value else {
        return Err(Error::invalid(
            i,
            ErrorCode::InvalidMessage,
            "a message must be a JSON object",
        ));
    };
    // Stored precision is milliseconds; keep every timestamp at it so reads equal writes.
    let received_at = env.received_at.unwrap_or_else(Utc::now).trunc_subsecs(3);
    let kind = match m.get("type") {
        Some(Value::String(t)) => EventKind::parse(t).ok_or_else(|| {
            Error::invalid(
                i,
                ErrorCode::UnknownType,
                format!("unknown type {t:?}: use track, identify, page, screen, group or alias"),
            )
        })?,
        Some(Value::Null) | None => env.kind.ok_or_else(|| {
            Error::invalid(i, ErrorCode::MissingType, "\"type\" is required in a batch item")
        })?,
        Some(_) => {
            return Err(Error::invalid(
                i,
                ErrorCode::WrongType,
                "\"type\" must be a string",
            ))
        }
    };
    // An endpoint's kind wins over a stray "type" (as Segment does for /v1/track etc.).
    let kind = env.kind.unwrap_or(kind);

    let user_id = id_field(&m, "userId", i)?;
    let anonymous_id = id_field(&m, "anonymousId", i)?;
    if let Some(u) = &user_id {
        Identity::user(u).map_err(|e| Error::invalid(i, ErrorCode::InvalidId, e.to_string()))?;
    }
    if let Some(a) = &anonymous_id {
        Identity::anonymous(a).map_err(|e| Error::invalid(i, ErrorCode::InvalidId, e.to_string()))?;
    }
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(Error::invalid(
            i,
            ErrorCode::MissingId,
            "either \"userId\" or \"anonymousId\" is required",
        ));
    }
    let event = name_field(&m, "event", i)?;
    let name = name_field(&m, "name", i)?;
    let group_id = id_field(&m, "groupId", i)?;
    let previous_id = id_field(&m, "previousId", i)?;
    match kind {
        EventKind::Track if event.is_none() => {
            return Err(Error::invalid(
                i,
                ErrorCode::MissingEvent,
                "a track call needs a non-empty \"event\" name",
            ));
        }
        EventKind::Group if group_id.is_none() => {
            return Err(Error::invalid(
                i,
                ErrorCode::MissingGroupId,
                "a group call needs \"groupId\"",
            ));
        }
        EventKind::Alias if previous_id.is_none() || user_id.is_none() => {
            return Err(Error::invalid(
                i,
                ErrorCode::MissingId,
                "an alias call needs \"userId\" and \"previousId\"",
            ));
        }
        _ => {}
    }
    if let Some(p) = &previous_id {
        Identity::user(p).map_err(|e| Error::invalid(i, ErrorCode::InvalidId, format!("previousId: {e}")))?;
    }

    let message_id = match m.get("messageId") {
        None | Some(Value::Null) => generated_message_id(received_at),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 => s.clone(),
        Some(Value::String(_)) => {
            return Err(Error::invalid(
                i,
                ErrorCode::InvalidMessageId,
                "\"messageId\" must be 1 to 255 bytes",
            ));
        }
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(Error::invalid(
                i,
                ErrorCode::WrongType,
                "\"messageId\" must be a string",
            ))
        }
    };

    let original_timestamp = time_field(&m, "originalTimestamp", i)?.or(time_field(&m, "timestamp", i)?);
    let sent_at = time_field(&m, "sentAt", i)?.or(env.sent_at);
    let timestamp = match (original_timestamp, sent_at) {
        (Some(orig), Some(sent)) => received_at - (sent - orig),
        (Some(orig), None) => orig,
        (None, _) => received_at,
    };
    check_plausible(timestamp, received_at, env.bounds, i)?;

    let mut context = object_field(&mut m, "context", i)?;
    if let Some(batch) = env.context {
        for (k, v) in batch {
            context.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut integrations = object_field(&mut m, "integrations", i)?;
    if let Some(batch) = env.integrations {
        for (k, v) in batch {
            integrations.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut properties = object_field(&mut m, "properties", i)?;
    // Segment SDKs send a page/screen `category` beside `name`; keep it as a property.
    if matches!(kind, EventKind::Page | EventKind::Screen) {
        if let Some(c) = name_field(&m, "category", i)? {
            properties.entry("category").or_insert(Value::String(c));
        }
    }
    // RudderStack SDKs send `channel` ("server", "web", ...); keep it in the context.
    if let Some(ch) = name_field(&m, "channel", i)? {
        context.entry("channel").or_insert(Value::String(ch));
    }
    let event = Event {
        message_id,
        kind,
        user_id,
        anonymous_id,
        event,
        name,
        group_id,
        previous_id,
        timestamp,
        original_timestamp,
        sent_at,
        received_at,
        context,
        properties,
        traits: object_field(&mut m, "traits", i)?,
        integrations,
    };
    let write_key = match m.get("writeKey") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    Ok(Parsed { event, write_key })
}

fn check_plausible(t: Timestamp, received_at: Timestamp, bounds: TimeBounds, i: usize) -> Result<()> {
    if let Some(floor) = bounds.not_before().filter(|floor| t < *floor) {
        let whose = match bounds {
            TimeBounds::Live => "",
            TimeBounds::Import { .. } => " (the import's --not-before)",
        };
        return Err(Error::invalid(
            i,
            ErrorCode::TimestampOutOfRange,
            format!(
                "timestamp {} is before {}{whose}",
                flywheel_core::time::format_timestamp(t),
                flywheel_core::time::format_timestamp(floor)
            ),
        ));
    }
    if t > received_at + Duration::hours(24) {
        return Err(Error::invalid(
            i,
            ErrorCode::TimestampOutOfRange,
            format!("timestamp {t} is more than 24 hours in the future"),
        ));
    }
    Ok(())
}

fn id_field(m: &Map<String, Value>, field: &str, i: usize) -> Result<Option<String>> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(Error::invalid(
            i,
            ErrorCode::WrongType,
            format!("\"{field}\" must be a string"),
        )),
    }
}

fn name_field(m: &Map<String, Value>, field: &str, i: usize) -> Result<Option<String>> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() > MAX_NAME_LEN => Err(Error::invalid(
            i,
            ErrorCode::InvalidName,
            format!("\"{field}\" is longer than {MAX_NAME_LEN} bytes"),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::invalid(
            i,
            ErrorCode::WrongType,
            format!("\"{field}\" must be a string"),
        )),
    }
}

fn time_field(m: &Map<String, Value>, field: &str, i: usize) -> Result<Option<Timestamp>> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_timestamp(s).map(|t| Some(t.trunc_subsecs(3))).map_err(|_| {
            Error::invalid(
                i,
                ErrorCode::InvalidTimestamp,
                format!("\"{field}\" is not ISO-8601: {s:?}"),
            )
        }),
        Some(_) => Err(Error::invalid(
            i,
            ErrorCode::WrongType,
            format!("\"{field}\" must be an ISO-8601 string"),
        )),
    }
}

/// Takes the object `field` out of the message (no copy).
fn object_field(m: &mut Map<String, Value>, field: &str, i: usize) -> Result<Map<String, Value>> {
    match m.remove(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(Error::invalid(
            i,
            ErrorCode::WrongType,
            format!("\"{field}\" must be an object"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(s: &str) -> Timestamp {
        parse_timestamp(s).unwrap()
    }

    fn env() -> Envelope<'static> {
        Envelope {
            received_at: Some(at("2024-11-11T04:00:10Z")),
            ..Default::default()
        }
    }

    fn code(r: Result<Parsed>) -> &'static str {
        r.err().map(|e| e.code().as_str()).unwrap_or("ok")
    }

    #[test]
    fn accepts_a_track_call() {
        let p = parse(
            json!({"type": "track", "userId": "u1", "event": "Product Viewed", "messageId": "m1",
                    "timestamp": "2024-11-11T04:00:00Z", "properties": {"price": 9.9}, "writeKey": "k"}),
            &env(),
        )
        .unwrap();
        assert_eq!(p.event.kind, EventKind::Track);
        assert_eq!(p.event.event.as_deref(), Some("Product Viewed"));
        assert_eq!(p.event.timestamp, at("2024-11-11T04:00:00Z"));
        assert_eq!(p.write_key.as_deref(), Some("k"));
    }

    #[test]
    fn corrects_clock_skew_from_sent_at() {
        // Client clock is 1 hour fast: it says it sent at 05:00:05, we received at 04:00:10.
        let p = parse(
            json!({"type": "track", "userId": "u1", "event": "E",
                    "originalTimestamp": "2024-11-11T05:00:00Z", "sentAt": "2024-11-11T05:00:05Z"}),
            &env(),
        )
        .unwrap();
        assert_eq!(p.event.timestamp, at("2024-11-11T04:00:05Z"));
        assert_eq!(p.event.original_timestamp, Some(at("2024-11-11T05:00:00Z")));
        // Batch-level sentAt applies to items without their own.
        let sent = at("2024-11-11T05:00:05Z");
        let e = Envelope {
            sent_at: Some(sent),
            ..env()
        };
        let p = parse(
            json!({"type": "track", "userId": "u", "event": "E", "timestamp": "2024-11-11T05:00:00Z"}),
            &e,
        )
        .unwrap();
        assert_eq!(p.event.timestamp, at("2024-11-11T04:00:05Z"));
        // Nothing sent: received time.
        let p = parse(json!({"type": "identify", "userId": "u"}), &env()).unwrap();
        assert_eq!(p.event.timestamp, at("2024-11-11T04:00:10Z"));
    }

    #[test]
    fn refuses_bad_messages_with_codes() {
        let e = env();
        assert_eq!(code(parse(json!([1]), &e)), "invalid_message");
        assert_eq!(
            code(parse(json!({"type": "track", "event": "E"}), &e)),
            "missing_id"
        );
        assert_eq!(
            code(parse(json!({"type": "track", "userId": "u"}), &e)),
            "missing_event"
        );
        assert_eq!(
            code(parse(json!({"type": "track", "userId": "u", "event": 5}), &e)),
            "wrong_type"
        );
        assert_eq!(
            code(parse(json!({"type": "bogus", "userId": "u"}), &e)),
            "unknown_type"
        );
        assert_eq!(code(parse(json!({"userId": "u"}), &e)), "missing_type");
        assert_eq!(
            code(parse(json!({"type": "group", "userId": "u"}), &e)),
            "missing_group_id"
        );
        assert_eq!(
            code(parse(json!({"type": "alias", "userId": "u"}), &e)),
            "missing_id"
        );
        assert_eq!(
            code(parse(json!({"type": "identify", "userId": {"a": 1}}), &e)),
            "wrong_type"
        );
        assert_eq!(
            code(parse(
                json!({"type": "identify", "userId": "u", "traits": [1]}),
                &e
            )),
            "wrong_type"
        );
        assert_eq!(
            code(parse(
                json!({"type": "identify", "userId": "u", "timestamp": "last tuesday"}),
                &e
            )),
            "invalid_timestamp"
        );
        assert_eq!(
            code(parse(
                json!({"type": "identify", "userId": "u", "timestamp": "1970-01-01T00:00:00Z"}),
                &e
            )),
            "timestamp_out_of_range"
        );
        assert_eq!(
            code(parse(
                json!({"type": "identify", "userId": "u", "timestamp": "2099-01-01T00:00:00Z"}),
                &e
            )),
            "timestamp_out_of_range"
        );
        assert_eq!(
            code(parse(json!({"type": "identify", "userId": "x".repeat(300)}), &e)),
            "invalid_id"
        );
    }

    #[test]
    fn history_is_plausible_on_import_only() {
        let old = json!({"type": "identify", "userId": "u", "timestamp": "1997-01-01T00:00:00Z"});
        // The live tracking API refuses it, as before.
        assert_eq!(code(parse(old.clone(), &env())), "timestamp_out_of_range");
        let epoch = json!({"type": "identify", "userId": "u", "timestamp": "1970-01-01T00:00:00Z"});
        assert_eq!(code(parse(epoch.clone(), &env())), "timestamp_out_of_range");
        let just_in = json!({"type": "identify", "userId": "u", "timestamp": "2000-01-01T00:00:00Z"});
        assert_eq!(code(parse(just_in, &env())), "ok");
        // An import without a floor takes any past time.
        let import = Envelope {
            bounds: TimeBounds::Import { not_before: None },
            ..env()
        };
        let p = parse(old.clone(), &import).unwrap();
        assert_eq!(p.event.timestamp, at("1997-01-01T00:00:00Z"));
        assert_eq!(code(parse(epoch.clone(), &import)), "ok");
        // ... but never the future.
        let future = json!({"type": "identify", "userId": "u", "timestamp": "2099-01-01T00:00:00Z"});
        assert_eq!(code(parse(future, &import)), "timestamp_out_of_range");
        // With a floor: the floor itself is in, a millisecond before is out.
        let floored = Envelope {
            bounds: TimeBounds::Import {
                not_before: Some(at("1997-01-01T00:00:00Z")),
            },
            ..env()
        };
        assert_eq!(code(parse(old, &floored)), "ok");
        let before = json!({"type": "identify", "userId": "u", "timestamp": "1996-12-31T23:59:59.999Z"});
        let e = parse(before, &floored).unwrap_err();
        assert_eq!(e.code().as_str(), "timestamp_out_of_range");
        assert!(e.to_string().contains("--not-before"), "{e}");
        assert_eq!(code(parse(epoch, &floored)), "timestamp_out_of_range");
    }

    #[test]
    fn numeric_ids_are_read_as_text_and_missing_message_ids_generated() {
        let a = parse(json!({"type": "identify", "userId": 42}), &env()).unwrap();
        let b = parse(json!({"type": "identify", "userId": 42}), &env()).unwrap();
        assert_eq!(a.event.user_id.as_deref(), Some("42"));
        assert_ne!(a.event.message_id, b.event.message_id);
    }

    #[test]
    fn batch_context_applies_but_item_wins() {
        let ctx: Map<String, Value> = json!({"ip": "1.2.3.4", "locale": "zh-CN"})
            .as_object()
            .unwrap()
            .clone();
        let e = Envelope {
            context: Some(&ctx),
            ..env()
        };
        let p = parse(
            json!({"type": "identify", "userId": "u", "context": {"locale": "en"}}),
            &e,
        )
        .unwrap();
        assert_eq!(p.event.context["ip"], "1.2.3.4");
        assert_eq!(p.event.context["locale"], "en");
    }

    #[test]
    fn keeps_page_category_and_channel() {
        let p = parse(
            json!({"type": "page", "userId": "u", "name": "Home", "category": "商品", "channel": "server"}),
            &env(),
        )
        .unwrap();
        assert_eq!(p.event.properties["category"], "商品");
        assert_eq!(p.event.context["channel"], "server");
    }

    #[test]
    fn endpoint_kind_wins() {
        let e = Envelope {
            kind: Some(EventKind::Page),
            ..env()
        };
        let p = parse(json!({"type": "track", "anonymousId": "a", "name": "Home"}), &e).unwrap();
        assert_eq!(p.event.kind, EventKind::Page);
    }
}
