//! `POST /v1/{track,identify,page,screen,group,alias,batch,import}`: the Segment HTTP
//! Tracking API. Validate, resolve the write key, hand to the pipeline, answer
//! `{"success": true}` once the batch is durable. Each message passes the trust
//! boundary of its own key's scope ([`flywheel_ingest::trust`]), whichever way the key
//! came (HTTP Basic, the batch's `writeKey`, the item's).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use flywheel_core::EventKind;
use flywheel_ingest::request::{decode_body, parse_batch, parse_single};
use flywheel_ingest::trust::{self, Withheld};
use flywheel_ingest::ParsedRequest;
use serde_json::{json, Value};

use crate::auth::{basic_write_key, CheckedKey};
use crate::error::ApiError;
use crate::AppState;

/// The most of an oversize body read (and thrown away) before answering, so the client
/// has finished sending and reads our 400 instead of a reset connection.
const DRAIN_CAP: usize = 64 * 1024 * 1024;

/// Reads the (possibly gzipped) body within the batch limit. An oversize body is read to
/// its end (up to [`DRAIN_CAP`]) and dropped before the refusal is answered.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    use http_body_util::BodyExt;
    let limit = state.limits.max_batch_bytes;
    let gzip = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let mut body = body;
    let mut raw = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                raw.extend_from_slice(&data);
            } else if seen > DRAIN_CAP {
                break;
            }
        }
    }
    if seen > limit {
        return Err(flywheel_ingest::Error::BatchTooLarge { limit }.into());
    }
    Ok(decode_body(&raw, gzip, limit)?)
}

async fn accept(
    state: &AppState,
    headers: &HeaderMap,
    parsed: ParsedRequest,
) -> Result<Json<Value>, ApiError> {
    let header_key = basic_write_key(headers)?;
    let request_key = header_key.or(parsed.write_key);
    let mut batch = Vec::with_capacity(parsed.items.len());
    let mut checked: Option<(String, CheckedKey)> = None; // (secret, key) of the last item
    let mut withheld = Withheld::default();
    for (index, (event, item_key)) in parsed.items.into_iter().enumerate() {
        let secret = request_key.as_deref().or(item_key.as_deref()).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_write_key",
                "send the write key as HTTP Basic user name or as \"writeKey\" in the body",
            )
        })?;
        let key = match &checked {
            Some((s, key)) if s == secret => key.clone(),
            _ => {
                let key = state.write_keys.check(secret).await?;
                checked = Some((secret.to_string(), key.clone()));
                key
            }
        };
        let message_id = event.message_id.clone();
        let (stored, w) = trust::materialise(event, key.id, key.scope, index)?;
        if !w.is_empty() {
            tracing::debug!(
                %message_id,
                traits = w.traits,
                commerce_facts = w.commerce_facts,
                "client write key: withheld what it may not change"
            );
            withheld.traits += w.traits;
            withheld.commerce_facts += w.commerce_facts;
        }
        batch.push(stored);
    }
    state.pipeline.submit(batch).await?;
    state.pipeline.stats().record_withheld(withheld);
    Ok(Json(json!({"success": true})))
}

/// `POST /v1/{track,identify,page,screen,group,alias}`: one message, its type given by the route.
pub async fn single(
    kind: EventKind,
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(&state, &headers, body).await?;
    let parsed = parse_single(&bytes, kind, &state.limits, Utc::now())?;
    accept(&state, &headers, parsed).await
}

/// `POST /v1/batch` and `POST /v1/import`.
pub async fn batch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(&state, &headers, body).await?;
    let parsed = parse_batch(&bytes, &state.limits, Utc::now())?;
    accept(&state, &headers, parsed).await
}
