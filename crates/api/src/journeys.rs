//! Journeys over HTTP (issue 6): definitions and their lifecycle, dry runs, per-step
//! counts, runs, the message log and consent under `/api/v1` (admin token); and the
//! public endpoints messages link to — open pixel, click redirect, unsubscribe (RFC 8058
//! one-click) — and providers' delivery-status callbacks (signed).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use flywheel_core::ErrorCode;
use flywheel_journeys::db::{MessageFilter, MessageRow, RunRow, Status};
use flywheel_journeys::manage::{DryRunPath, JourneyInfo, JourneyStats, Preview};
use flywheel_journeys::Journey;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Admin, AdminBody, CallbackBody, Params};
use crate::AppState;

fn definition(body: &AdminBody) -> Result<Journey, ApiError> {
    let text = std::str::from_utf8(&body.0)
        .map_err(|_| ApiError::new(ErrorCode::InvalidJson, "body is not UTF-8"))?;
    Journey::parse(text).map_err(|e| ApiError::new(ErrorCode::InvalidJourney, e.to_string()))
}

/// `GET /api/v1/journeys`: every journey with its current version and status.
pub async fn list(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "journeys": s.journeys.list().await? })))
}

async fn save(s: &AppState, j: &Journey) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (version, created) = s.journeys.save(j).await?;
    let info = s.journeys.get(&j.name).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "version": version, "created": created, "journey": info })),
    ))
}

/// `POST /api/v1/journeys`: saves a definition (JSON, or YAML) — a new journey starts as a draft; a
/// changed definition becomes a new version (running users finish on theirs).
pub async fn create(
    State(s): State<Arc<AppState>>,
    body: AdminBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    save(&s, &definition(&body)?).await
}

/// `GET /api/v1/journeys/{name}`.
pub async fn get(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<JourneyInfo>, ApiError> {
    Ok(Json(s.journeys.get(&name).await?))
}

/// `PUT /api/v1/journeys/{name}`: like POST; the body's name must be the path's.
pub async fn put(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: AdminBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let j = definition(&body)?;
    if j.name != name {
        return Err(ApiError::new(
            ErrorCode::NameMismatch,
            format!("the definition is named {:?}, the path {name:?}", j.name),
        ));
    }
    save(&s, &j).await
}

/// `DELETE /api/v1/journeys/{name}`: only without runs in progress (409 otherwise).
pub async fn delete(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.journeys.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(s: &AppState, name: &str, status: Status) -> Result<Json<JourneyInfo>, ApiError> {
    Ok(Json(s.journeys.set_status(name, status).await?))
}

/// `POST /api/v1/journeys/{name}/start`: entries begin (or resume after a pause).
pub async fn start(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<JourneyInfo>, ApiError> {
    set_status(&s, &name, Status::Active).await
}

/// `POST /api/v1/journeys/{name}/pause`: no entries; runs hold where they are.
pub async fn pause(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<JourneyInfo>, ApiError> {
    set_status(&s, &name, Status::Paused).await
}

/// `POST /api/v1/journeys/{name}/stop`: no entries; every run in progress ends.
pub async fn stop(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<JourneyInfo>, ApiError> {
    set_status(&s, &name, Status::Stopped).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRun {
    /// User ids to walk through.
    users: Vec<String>,
    /// An unsaved definition (else the stored one).
    #[serde(default)]
    definition: Option<Value>,
}

/// `POST /api/v1/journeys/{name}/dry-run`: `{"users": [...], "definition"?}` — the
/// path each user would take now, sending nothing (waits for events taken as timing out).
pub async fn dry_run(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: AdminBody,
) -> Result<Json<Vec<DryRunPath>>, ApiError> {
    let req: DryRun = body.json()?;
    if req.users.is_empty() || req.users.len() > 1_000 {
        return Err(ApiError::new(ErrorCode::InvalidUsers, "give 1 to 1000 user ids"));
    }
    let j = match req.definition {
        Some(d) => serde_json::from_value::<Journey>(d)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJourney, e.to_string()))?,
        None => s.journeys.get(&name).await?.definition,
    };
    Ok(Json(s.journeys.dry_run(&j, &req.users).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    /// The user to render for.
    user_id: String,
    /// The send step.
    step: String,
    /// An unsaved definition (else the stored one).
    #[serde(default)]
    definition: Option<Value>,
}

/// `POST /api/v1/journeys/{name}/preview`: `{"user_id", "step", "definition"?}` — a send
/// step's message rendered for that user, not sent.
pub async fn preview(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: AdminBody,
) -> Result<Json<Preview>, ApiError> {
    let req: PreviewRequest = body.json()?;
    let j = match req.definition {
        Some(d) => serde_json::from_value::<Journey>(d)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJourney, e.to_string()))?,
        None => s.journeys.get(&name).await?.definition,
    };
    Ok(Json(s.journeys.preview(&j, &req.step, &req.user_id).await?))
}

/// `GET /api/v1/journeys/{name}/stats`: visits per step, runs per state, messages per status.
pub async fn stats(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<JourneyStats>, ApiError> {
    Ok(Json(s.journeys.journey_stats(&name).await?))
}

/// Paging for runs and messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Most recent first, at most this many (1–1000, default 100).
    limit: Option<i64>,
    /// Messages of this user.
    user_id: Option<String>,
    /// Messages of this journey.
    journey: Option<String>,
    /// Messages of this run.
    run_id: Option<String>,
}

impl ListQuery {
    fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(100),
            Some(n) if (1..=1000).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::new(
                ErrorCode::InvalidLimit,
                format!("limit {n} must be between 1 and 1000"),
            )),
        }
    }
}

/// `GET /api/v1/journeys/{name}/runs?limit=`: runs, newest first.
pub async fn runs(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(name): Path<String>,
    Params(q): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let runs: Vec<RunRow> = s
        .journeys
        .runs(Some(&name), q.user_id.as_deref(), q.limit()?)
        .await?;
    Ok(Json(json!({ "runs": runs })))
}

/// `GET /api/v1/messages?user_id=|journey=|run_id=&limit=`: the message log — sent,
/// suppressed and why, skipped, deferred, failed, delivered, opened, clicked, converted.
pub async fn messages(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Params(q): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit()?;
    let (filter, value) = match (&q.user_id, &q.journey, &q.run_id) {
        (Some(u), None, None) => (MessageFilter::User, u),
        (None, Some(j), None) => (MessageFilter::Journey, j),
        (None, None, Some(r)) => (MessageFilter::Run, r),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "give exactly one of user_id, journey, run_id",
            ))
        }
    };
    let rows: Vec<MessageRow> = s.journeys.messages(filter, value, limit).await?;
    Ok(Json(json!({ "messages": rows })))
}

/// `GET /api/v1/consent/{user_id}`: per-channel subscription and the global suppression.
pub async fn consent(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(s.journeys.consent(&user).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentChange {
    /// `email`, `sms`, `push`, `wechat`, `webhook`, or `*` for the global suppression.
    channel: String,
    /// `subscribed`, `unsubscribed`, `unknown`; for `*`: `suppressed` or `none`.
    state: String,
    /// Where the answer came from (default `api`).
    #[serde(default)]
    source: Option<String>,
}

/// `PUT /api/v1/consent/{user_id}`: `{"channel", "state", "source"?}`.
pub async fn set_consent(
    State(s): State<Arc<AppState>>,
    Path(user): Path<String>,
    body: AdminBody,
) -> Result<Json<Value>, ApiError> {
    let c: ConsentChange = body.json()?;
    s.journeys
        .set_consent(&user, &c.channel, &c.state, c.source.as_deref().unwrap_or("api"))
        .await?;
    Ok(Json(s.journeys.consent(&user).await?))
}

/// A 1×1 transparent GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
    0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `GET /t/o/{token}`: the open pixel — records `Email Opened` (first open kept on the
/// message) and answers a GIF whatever the token (mail clients show nothing either way).
pub async fn open_pixel(State(s): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    if let Err(e) = s.journeys.opened(&token).await {
        tracing::debug!(error = %e, "open pixel not recorded");
    }
    (
        [
            (header::CONTENT_TYPE, "image/gif"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PIXEL,
    )
        .into_response()
}

/// `GET /t/c/{token}`: a tracked link — records `Link Clicked` and redirects (303 See Other) to
/// the destination sealed in the token; a forged token is 404.
pub async fn click(State(s): State<Arc<AppState>>, Path(token): Path<String>) -> Result<Response, ApiError> {
    let url = s.journeys.clicked(&token).await?;
    Ok(Redirect::to(&url).into_response())
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"zh\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">{body}</body></html>"
    ))
}

/// `GET /unsubscribe/{token}`: a confirmation page (a GET never unsubscribes: link
/// scanners fetch links).
pub async fn unsubscribe_page(Path(token): Path<String>) -> Html<String> {
    let token = token.replace(['"', '<', '>', '&'], "");
    page(
        "退訂 Unsubscribe",
        &format!(
            "<h1>退訂 Unsubscribe</h1><p>確認不再接收此類消息？ Stop receiving these messages?</p>\
             <form method=\"post\" action=\"/unsubscribe/{token}\"><button type=\"submit\">確認退訂 Unsubscribe</button></form>"
        ),
    )
}

/// `POST /unsubscribe/{token}`: unsubscribes (the RFC 8058 one-click POST with body
/// `List-Unsubscribe=One-Click`, or the confirmation form).
pub async fn unsubscribe(
    State(s): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Html<String>, ApiError> {
    let (_, channel) = s.journeys.unsubscribe(&token).await?;
    Ok(page(
        "已退訂 Unsubscribed",
        &format!("<h1>已退訂 Unsubscribed</h1><p>您將不再收到 {} 營銷消息。 You will no longer receive marketing messages on this channel.</p>", channel.as_str()),
    ))
}

/// `POST /v1/channels/{channel}/status`: a provider reports what became of a message,
/// `{"message_id", "status": delivered|failed|bounced|rejected|opened|clicked, "reason"?}`,
/// signed with that provider's secret in `X-Flywheel-Signature` (401 when it does not
/// verify). Nothing is written unless the signature, the body and the message's channel
/// check out; a replay of an applied callback is 409 `callback_replayed`; the body is at
/// most [`crate::extract::MAX_CALLBACK_BODY`] bytes (413).
pub async fn delivery_status(
    State(s): State<Arc<AppState>>,
    Path(channel): Path<String>,
    h: HeaderMap,
    CallbackBody(body): CallbackBody,
) -> Result<Json<MessageRow>, ApiError> {
    let signature = h
        .get(flywheel_channels::webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Ok(Json(
        s.journeys
            .delivery_status(&channel, &signature, &body.bytes)
            .await?,
    ))
}
