//! Extractors whose refusals are our JSON errors ([`ApiError`]) instead of axum's plain
//! text: the admin token ([`Admin`]), query strings ([`Params`]), size-limited admin
//! bodies ([`AdminBody`]) and other bounded bodies ([`BoundedBody`]).

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use flywheel_core::ErrorCode;
use serde::de::DeserializeOwned;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;

use crate::audience::MAX_ADMIN_BODY;
use crate::body::HeldBody;
use crate::error::ApiError;
use crate::rate_limit::AdminCaller;
use crate::AppState;

/// Proof that the request carries the admin token (`Authorization: Bearer <token>`); a
/// missing or wrong one is a 401 `unauthorized`. Every `/api/v1` admin handler without a
/// body takes it; one with a body takes [`AdminBody`], which checks the token too. Both
/// count the request against the admin rate first ([`admin_rate`]).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let checked = state.admin.check(&parts.headers);
        admin_rate(state, checked.is_ok(), &parts.extensions).await?;
        checked.map(|()| Admin)
    }
}

/// Counts an admin request against its caller's rate: the admin token when `valid`, else
/// the client's address — so a flood of wrong tokens is slowed down (429 before its 401)
/// without using up the shop's own allowance.
async fn admin_rate(
    state: &AppState,
    valid: bool,
    extensions: &axum::http::Extensions,
) -> Result<(), ApiError> {
    let caller = if valid {
        AdminCaller::Token(state.admin.id().to_owned())
    } else {
        let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        AdminCaller::Address(peer)
    };
    state.rate_limits.admin(caller).await
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
            .map_err(|e: QueryRejection| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))
    }
}

/// An admin request body of at most [`MAX_ADMIN_BODY`] bytes, from a request carrying
/// the admin token. The token is checked first: without it a 401 `unauthorized` is
/// answered before any of the body is read, and the connection is closed. Beyond the
/// limit a 413 `body_too_large`; the body is read within the server's body budget and
/// idle timeout ([`crate::body`]). Handlers taking it need no [`Admin`].
#[derive(Debug)]
pub struct AdminBody(pub Bytes);

impl FromRequest<Arc<AppState>> for AdminBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let checked = state.admin.check(req.headers());
        admin_rate(state, checked.is_ok(), req.extensions())
            .await
            .map_err(ApiError::closing)?;
        checked.map_err(ApiError::closing)?;
        let (parts, body) = req.into_parts();
        let mut held = state
            .bodies
            .read(&parts.headers, body, MAX_ADMIN_BODY, too_large)
            .await?;
        // The admin is authenticated: once read, the body no longer counts in the budget.
        Ok(AdminBody(Bytes::from(std::mem::take(&mut held.bytes))))
    }
}

/// The most a provider's delivery-status callback body may hold: a report is a message
/// id, a status and a reason of at most 1,000 characters.
pub const MAX_CALLBACK_BODY: usize = 64 * 1024;

/// A provider's delivery-status callback body of at most [`MAX_CALLBACK_BODY`] bytes
/// (413 `body_too_large` beyond), read within the server's body budget; its signature
/// is checked by the service.
#[derive(Debug)]
pub struct CallbackBody(pub HeldBody);

impl FromRequest<Arc<AppState>> for CallbackBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let too_large = || {
            ApiError::new(
                ErrorCode::BodyTooLarge,
                format!("the request body is larger than {MAX_CALLBACK_BODY} bytes (64 KiB)"),
            )
        };
        let held = state
            .bodies
            .read(&parts.headers, body, MAX_CALLBACK_BODY, too_large)
            .await?;
        Ok(CallbackBody(held))
    }
}

impl AdminBody {
    /// The body as JSON of type `T`; anything else is a 400 `invalid_json`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.0)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("request body: {e}")))
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::BodyTooLarge,
        format!("the request body is larger than {MAX_ADMIN_BODY} bytes (1 MiB)"),
    )
}
