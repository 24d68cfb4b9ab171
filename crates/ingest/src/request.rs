//! Reading a tracking request body: gzip, size limits, single message or batch.
//!
//! Limits default to Segment's: 32 KB per message and 500 KB per request; the batch
//! limit may be raised to 4 MB (RudderStack's) so RudderStack SDKs work unchanged. A
//! gzip body is limited by its decompressed size. A request is accepted whole or
//! refused whole: one bad item refuses the batch, naming the item.

use std::io::Read;

use flywheel_core::time::parse_timestamp;
use flywheel_core::ErrorCode;
use flywheel_core::{Event, EventKind, Timestamp};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::exact::exact_ids;
use crate::message::{self, Envelope};
use crate::{Error, Result};

/// Segment's per-message limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 32 * 1024;
/// Segment's per-request limit.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 500 * 1024;
/// The largest batch limit that may be configured (RudderStack's).
pub const MAX_BATCH_BYTES_CEILING: usize = 4 * 1024 * 1024;

/// Size limits of the tracking API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single message, bytes.
    pub max_message_bytes: usize,
    /// Largest request body (after gunzip), bytes.
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
        }
    }
}

/// The messages of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    /// The request-level `writeKey` from the body, if any.
    pub write_key: Option<String>,
    /// Each event with its own `writeKey`, if it carried one.
    pub items: Vec<(Event, Option<String>)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchBody<'a> {
    #[serde(borrow)]
    batch: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    integrations: Option<Value>,
    #[serde(default)]
    sent_at: Option<Value>,
    #[serde(default)]
    write_key: Option<Value>,
}

/// Gunzips `body` if `gzip`, refusing more than `limit` bytes of output.
pub fn decode_body(body: &[u8], gzip: bool, limit: usize) -> Result<Vec<u8>> {
    if body.len() > limit && !gzip {
        return Err(Error::BatchTooLarge { limit });
    }
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::with_capacity(body.len() * 4);
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::InvalidGzip(e.to_string()))?;
    if out.len() > limit {
        return Err(Error::BatchTooLarge { limit });
    }
    Ok(out)
}

fn text(body: &[u8]) -> Result<&str> {
    std::str::from_utf8(body).map_err(|e| Error::InvalidUtf8(e.valid_up_to()))
}

fn object<'v>(v: &'v Option<Value>, field: &str) -> Result<Option<&'v Map<String, Value>>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(Error::invalid(
            0,
            ErrorCode::WrongType,
            format!("batch \"{field}\" must be an object"),
        )),
    }
}

/// Parses a single-message call (`/v1/track`, `/v1/identify`, ...); the endpoint gives the type.
pub fn parse_single(
    body: &[u8],
    kind: EventKind,
    limits: &Limits,
    received_at: Timestamp,
) -> Result<ParsedRequest> {
    if body.len() > limits.max_message_bytes {
        return Err(Error::MessageTooLarge {
            index: 0,
            size: body.len(),
            limit: limits.max_message_bytes,
        });
    }
    let body = text(body)?;
    let mut value: Value = serde_json::from_str(body).map_err(|e| Error::InvalidJson(e.to_string()))?;
    exact_ids(body, &mut value);
    let env = Envelope {
        index: 0,
        kind: Some(kind),
        received_at: Some(received_at),
        ..Default::default()
    };
    let parsed = message::parse(value, &env)?;
    Ok(ParsedRequest {
        write_key: parsed.write_key.clone(),
        items: vec![(parsed.event, parsed.write_key)],
    })
}

/// Parses a `/v1/batch` (or `/v1/import`) body.
pub fn parse_batch(body: &[u8], limits: &Limits, received_at: Timestamp) -> Result<ParsedRequest> {
    if body.len() > limits.max_batch_bytes {
        return Err(Error::BatchTooLarge {
            limit: limits.max_batch_bytes,
        });
    }
    let b: BatchBody = serde_json::from_str(text(body)?).map_err(|e| Error::InvalidJson(e.to_string()))?;
    let items = b
        .batch
        .ok_or_else(|| Error::invalid(0, ErrorCode::MissingBatch, "body needs a \"batch\" array"))?;
    if items.is_empty() {
        return Err(Error::EmptyBatch);
    }
    let sent_at = match &b.sent_at {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_timestamp(s).map_err(|_| {
            Error::invalid(
                0,
                ErrorCode::InvalidTimestamp,
                format!("batch \"sentAt\" is not ISO-8601: {s:?}"),
            )
        })?),
        Some(_) => {
            return Err(Error::invalid(
                0,
                ErrorCode::WrongType,
                "batch \"sentAt\" must be a string",
            ))
        }
    };
    let write_key = match &b.write_key {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let context = object(&b.context, "context")?;
    let integrations = object(&b.integrations, "integrations")?;
    let mut out = Vec::with_capacity(items.len());
    for (index, raw) in items.iter().enumerate() {
        let size = raw.get().len();
        if size > limits.max_message_bytes {
            return Err(Error::MessageTooLarge {
                index,
                size,
                limit: limits.max_message_bytes,
            });
        }
        let mut value: Value =
            serde_json::from_str(raw.get()).map_err(|e| Error::InvalidJson(e.to_string()))?;
        exact_ids(raw.get(), &mut value);
        let env = Envelope {
            index,
            kind: None,
            received_at: Some(received_at),
            sent_at,
            context,
            integrations,
            bounds: message::TimeBounds::Live,
        };
        let parsed = message::parse(value, &env)?;
        out.push((parsed.event, parsed.write_key));
    }
    Ok(ParsedRequest {
        write_key,
        items: out,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn now() -> Timestamp {
        parse_timestamp("2024-11-11T04:00:00Z").unwrap()
    }

    #[test]
    fn parses_a_batch_with_shared_context() {
        let body = br#"{"batch":[{"type":"identify","userId":"u","traits":{"name":"Li"}},
            {"type":"track","anonymousId":"a","event":"Product Viewed"}],
            "context":{"library":{"name":"test"}},"writeKey":"wk_1","sentAt":"2024-11-11T04:00:00Z"}"#;
        let r = parse_batch(body, &Limits::default(), now()).unwrap();
        assert_eq!(r.items.len(), 2);
        assert_eq!(r.write_key.as_deref(), Some("wk_1"));
        assert_eq!(r.items[1].0.context["library"]["name"], "test");
    }

    #[test]
    fn refuses_bad_bodies() {
        let l = Limits::default();
        let code = |r: Result<ParsedRequest>| r.err().map(|e| e.code().as_str()).unwrap_or("ok");
        assert_eq!(code(parse_batch(b"{not json", &l, now())), "invalid_json");
        assert_eq!(code(parse_batch(b"{\"batch\":[]}", &l, now())), "empty_batch");
        assert_eq!(code(parse_batch(b"{}", &l, now())), "missing_batch");
        assert_eq!(
            code(parse_batch(
                b"{\"batch\":[{\"type\":\"identify\",\"userId\":\"\xff\"}]}",
                &l,
                now()
            )),
            "invalid_utf8"
        );
        let big = format!(
            "{{\"batch\":[{{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\",\"properties\":{{\"x\":\"{}\"}}}}]}}",
            "y".repeat(33 * 1024)
        );
        assert_eq!(code(parse_batch(big.as_bytes(), &l, now())), "message_too_large");
        let huge = vec![b' '; 501 * 1024];
        assert_eq!(code(parse_batch(&huge, &l, now())), "batch_too_large");
        assert_eq!(
            code(parse_single(big.as_bytes(), EventKind::Track, &l, now())),
            "message_too_large"
        );
        // One bad item refuses the whole batch, naming it.
        let e = parse_batch(
            br#"{"batch":[{"type":"identify","userId":"u"},{"type":"track","userId":"u"}]}"#,
            &l,
            now(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("message 1:"), "{e}");
    }

    #[test]
    fn numeric_ids_keep_their_exact_text() {
        let l = Limits::default();
        let body = br#"{"batch":[{"type":"identify","userId":123456789012345678901234},
            {"type":"identify","userId":123456789012345678901235,"anonymousId":1e3}]}"#;
        let r = parse_batch(body, &l, now()).unwrap();
        let ids: Vec<_> = r.items.iter().map(|(e, _)| e.user_id.clone().unwrap()).collect();
        assert_eq!(ids, ["123456789012345678901234", "123456789012345678901235"]);
        assert_eq!(r.items[1].0.anonymous_id.as_deref(), Some("1e3"));
        let r = parse_single(
            br#"{"userId": 99999999999999999999999, "messageId": 12345678901234567890123.0}"#,
            EventKind::Identify,
            &l,
            now(),
        )
        .unwrap();
        assert_eq!(r.items[0].0.user_id.as_deref(), Some("99999999999999999999999"));
        assert_eq!(r.items[0].0.message_id, "12345678901234567890123.0");
    }

    #[test]
    fn gunzips_within_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b' '; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decode_body(&gz, true, 20_000).unwrap().len(), 10_000);
        assert!(matches!(
            decode_body(&gz, true, 5_000),
            Err(Error::BatchTooLarge { .. })
        ));
        assert!(matches!(
            decode_body(b"not gzip", true, 5_000),
            Err(Error::InvalidGzip(_))
        ));
    }
}
