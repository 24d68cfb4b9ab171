//! Extractors whose refusals are our JSON errors ([`ApiError`]) instead of axum's plain
//! text: the admin token ([`Admin`]), query strings ([`Params`]) and size-limited admin
//! bodies ([`AdminBody`]).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use std::sync::Arc;

use crate::audience::MAX_ADMIN_BODY;
use crate::error::ApiError;
use crate::AppState;

/// Proof that the request carries the admin token (`Authorization: Bearer <token>`); a
/// missing or wrong one is a 401 `unauthorized`. Every `/api/v1` admin handler without a
/// body takes it; one with a body takes [`AdminBody`], which checks the token too.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        state.admin.check(&parts.headers).map(|()| Admin)
    }
}

/// A deserialised query string; a malformed one is a 400 `invalid_query`.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|e: QueryRejection| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// An admin request body of at most [`MAX_ADMIN_BODY`] bytes, from a request carrying
/// the admin token: beyond the limit a 413 `body_too_large` (answered before reading the
/// body when `Content-Length` says so), without the token a 401 `unauthorized`. The
/// token is checked once the body is read, so the refused client's connection stays
/// usable (a server that answers without reading the body must close it). Handlers
/// taking it need no [`Admin`].
#[derive(Debug)]
pub struct AdminBody(pub Bytes);

impl FromRequest<Arc<AppState>> for AdminBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let body = limited_body(req, state, MAX_ADMIN_BODY, "1 MiB").await?;
        state.admin.check(&headers)?;
        Ok(AdminBody(body))
    }
}

/// The most a provider's delivery-status callback body may hold: a report is a message
/// id, a status and a reason of at most 1,000 characters.
pub const MAX_CALLBACK_BODY: usize = 64 * 1024;

/// A provider callback's body of at most [`MAX_CALLBACK_BODY`] bytes (413
/// `body_too_large` beyond); its signature is checked by the service.
#[derive(Debug)]
pub struct CallbackBody(pub Bytes);

impl FromRequest<Arc<AppState>> for CallbackBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        limited_body(req, state, MAX_CALLBACK_BODY, "64 KiB")
            .await
            .map(CallbackBody)
    }
}

/// Reads a body of at most `limit` bytes (the route's `DefaultBodyLimit` must say the
/// same); a declared length over the limit is refused before any of the body is read.
async fn limited_body(
    req: Request,
    state: &Arc<AppState>,
    limit: usize,
    human: &str,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes ({human})"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    Bytes::from_request(req, state)
        .await
        .map_err(|e: BytesRejection| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            status => ApiError::new(status, "invalid_body", e.body_text()),
        })
}

impl AdminBody {
    /// The body as JSON of type `T`; anything else is a 400 `invalid_json`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.0)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))
    }
}
