//! Extractors whose refusals are our JSON errors ([`ApiError`]) instead of axum's plain
//! text: query strings ([`Params`]) and size-limited admin bodies ([`AdminBody`]).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

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

/// An admin request body, read up to the route's limit; beyond it a 413 `body_too_large`.
#[derive(Debug)]
pub struct AdminBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for AdminBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(AdminBody)
            .map_err(|e: BytesRejection| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is larger than 1 MiB",
                ),
                status => ApiError::new(status, "invalid_body", e.body_text()),
            })
    }
}
