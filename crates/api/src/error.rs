//! The API's error type: one place maps every failure to a status, a stable `code`
//! and a human `message`, and picks the log level (5xx as errors, 4xx at debug).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flywheel_core::ErrorCode;
use serde_json::json;

/// An error answered to a client: its status is its code's ([`ErrorCode::status`]), the
/// codes are listed in docs/errors.md.
#[derive(Debug)]
pub struct ApiError {
    /// Stable machine-readable code; it decides the HTTP status.
    pub code: ErrorCode,
    /// Human explanation.
    pub message: String,
    /// Close the connection after answering: the request's body was not read to its end
    /// (a refusal before or while reading it), so the connection cannot carry another.
    pub close: bool,
    /// Seconds the client should wait before trying again (`Retry-After`), when the
    /// refusal says when (a rate limit); a 503 without it says 1.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            close: false,
            retry_after: None,
        }
    }

    /// The HTTP status of this error's code.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The same error, answered with `Connection: close`.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// The same error, telling the client to wait `secs` seconds (`Retry-After`).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 404 for a missing thing.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{} not found", what.into()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Overload: the client retries; one line per refusal at warn, not an error.
            tracing::warn!(code = self.code.as_str(), message = %self.message, "request refused: busy");
        } else if status.is_server_error() {
            tracing::error!(code = self.code.as_str(), message = %self.message, "request failed");
        } else {
            tracing::debug!(code = self.code.as_str(), message = %self.message, "request refused");
        }
        let mut resp = (
            status,
            Json(json!({"success": false, "code": self.code, "message": self.message})),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(secs));
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        if self.close {
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

/// Maps each domain error to its code and message: the one place errors become HTTP
/// answers (a missing thing reads "… not found" in every context).
macro_rules! from_domain_error {
    ($($error:ty),+ $(,)?) => {
        $(impl From<$error> for ApiError {
            fn from(e: $error) -> Self {
                ApiError::new(e.code(), e.to_string())
            }
        })+
    };
}

from_domain_error!(
    flywheel_store::Error,
    flywheel_ingest::Error,
    flywheel_promotions::Error,
    flywheel_loyalty::Error,
    flywheel_audience::Error,
    flywheel_journeys::Error,
    flywheel_analytics::reports::Error,
);
