//! `POST /v1/{track,identify,page,screen,group,alias,batch,import}`: the Segment HTTP
//! Tracking API. Validate, resolve the write key, hand to the pipeline, answer
//! `{"success": true}` once the batch is durable. A write key in the `Authorization`
//! header is checked before the body is read; bodies are read within the server's body
//! budget ([`crate::body`]). Each message passes the trust boundary of its own key's
//! scope ([`flywheel_ingest::trust`]), whichever way the key came (HTTP Basic, the
//! batch's `writeKey`, the item's). Each request counts once against the rate of every
//! key it uses ([`crate::rate_limit`]); over it, nothing of the request is stored.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::Utc;
use flywheel_core::ErrorCode;
use flywheel_core::EventKind;
use flywheel_ingest::request::{decode_body, parse_batch, parse_single};
use flywheel_ingest::trust::{self, Withheld};
use flywheel_ingest::ParsedRequest;
use serde_json::{json, Value};

use crate::auth::{basic_write_key, CheckedKey};
use crate::body::HeldBody;
use crate::error::ApiError;
use crate::AppState;

/// A write key sent in the `Authorization` header, checked and counted against its
/// rate before any of the body is read: `(secret, key)`. A malformed, unknown or revoked
/// one is a 401, a key over its rate a 429, both closing the connection (its body is
/// never read). Without the header the key must come in the body (`writeKey`), which is
/// then read within the server's body budget.
async fn header_key(state: &AppState, headers: &HeaderMap) -> Result<Option<(String, CheckedKey)>, ApiError> {
    let Some(secret) = basic_write_key(headers).map_err(ApiError::closing)? else {
        return Ok(None);
    };
    let key = state.write_keys.check(&secret).await.map_err(ApiError::closing)?;
    state
        .rate_limits
        .tracking(&key.id)
        .await
        .map_err(ApiError::closing)?;
    Ok(Some((secret, key)))
}

/// Reads the (possibly gzipped) body within the batch limit and the server's body
/// budget; an oversize body is a 400 `batch_too_large`.
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<HeldBody, ApiError> {
    let limit = state.limits.max_batch_bytes;
    let gzip = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let too_large = || ApiError::from(flywheel_ingest::Error::BatchTooLarge { limit });
    let mut held = state.bodies.read(headers, body, limit, too_large).await?;
    if gzip {
        let decoded = decode_body(&held.bytes, true, limit)?;
        held.hold_more(decoded.capacity())?;
        held.bytes = decoded;
    }
    Ok(held)
}

async fn accept(
    state: &AppState,
    header_key: Option<(String, CheckedKey)>,
    parsed: ParsedRequest,
) -> Result<Json<Value>, ApiError> {
    let request_key = header_key.as_ref().map(|(s, _)| s.clone()).or(parsed.write_key);
    let mut batch = Vec::with_capacity(parsed.items.len());
    // Keys counted against their rate: the header's already, each key of the body once.
    let mut counted: Vec<String> = header_key.iter().map(|(_, k)| k.id.clone()).collect();
    let mut checked = header_key; // (secret, key) of the last item
    let mut withheld = Withheld::default();
    for (index, (event, item_key)) in parsed.items.into_iter().enumerate() {
        let secret = request_key.as_deref().or(item_key.as_deref()).ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingWriteKey,
                "send the write key as HTTP Basic user name or as \"writeKey\" in the body",
            )
        })?;
        let key = match &checked {
            Some((s, key)) if s == secret => key.clone(),
            _ => {
                let key = state.write_keys.check(secret).await?;
                if !counted.contains(&key.id) {
                    state.rate_limits.tracking(&key.id).await?;
                    counted.push(key.id.clone());
                }
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
    let key = header_key(&state, &headers).await?;
    let held = read_body(&state, &headers, body).await?;
    let parsed = parse_single(&held.bytes, kind, &state.limits, Utc::now())?;
    accept(&state, key, parsed).await
}

/// `POST /v1/batch` and `POST /v1/import`.
pub async fn batch(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let key = header_key(&state, &headers).await?;
    let held = read_body(&state, &headers, body).await?;
    let parsed = parse_batch(&held.bytes, &state.limits, Utc::now())?;
    accept(&state, key, parsed).await
}
