//! The API's error type: one place maps every failure to a status, a stable `code`
//! and a human `message`, and picks the log level (5xx as errors, 4xx at debug).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human explanation.
    pub message: String,
    /// Close the connection after answering: the request's body was not read to its end
    /// (a refusal before or while reading it), so the connection cannot carry another.
    pub close: bool,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            close: false,
        }
    }

    /// The same error, answered with `Connection: close`.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// 404 for a missing thing.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{} not found", what.into()),
        )
    }

    /// 400 for a bad query parameter.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // Overload: the client retries; one line per refusal at warn, not an error.
            tracing::warn!(code = self.code, message = %self.message, "request refused: busy");
        } else if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        } else {
            tracing::debug!(code = self.code, message = %self.message, "request refused");
        }
        let mut resp = (
            self.status,
            Json(json!({"success": false, "code": self.code, "message": self.message})),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
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

impl From<flywheel_ingest::Error> for ApiError {
    fn from(e: flywheel_ingest::Error) -> Self {
        use flywheel_ingest::Error as E;
        let status = match &e {
            E::Overloaded | E::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            E::Store(_) | E::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<flywheel_store::Error> for ApiError {
    fn from(e: flywheel_store::Error) -> Self {
        use flywheel_store::Error as E;
        match e {
            E::BadCursor(c) => ApiError::bad_request("invalid_cursor", format!("invalid cursor {c:?}")),
            E::NotFound(what) => ApiError::not_found(what),
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_error",
                other.to_string(),
            ),
        }
    }
}
