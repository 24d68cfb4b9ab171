//! `/api/v1/dead-letters`: work a background workflow set aside after repeated failures
//! (the order rewards: points, referral rewards, claw-backs; journey steps: coupons,
//! points, perks, tags, traits), listed until a retry applies or resumes it, or it is
//! dismissed. Retrying and dismissing are the workflows' business: the binary hands them
//! in as a [`RetryDeadLetter`] port.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use flywheel_core::ErrorCode;
use flywheel_store::dead_letters::{self, DeadLetterRow};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::Admin;
use crate::AppState;

/// What retrying a dead letter came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Applied: it left the list.
    Applied,
    /// Resumed: it left the list and its workflow does it again in the background (a
    /// journey step; listed again if it keeps failing).
    Resumed,
    /// Failed again: it stays listed with one more attempt.
    Failed {
        /// The error.
        error: String,
        /// Attempts so far.
        attempts: i64,
    },
    /// No such dead letter.
    NotFound,
}

/// The future a [`RetryDeadLetter`] answers with.
pub type RetryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<RetryOutcome, flywheel_store::Error>> + Send + 'a>>;

/// The future [`RetryDeadLetter::dismiss`] answers with: whether it was listed.
pub type DismissFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, flywheel_store::Error>> + Send + 'a>>;

/// Applies a dead-lettered item again now, or dismisses it (the workers' workflows,
/// wired by the binary).
pub trait RetryDeadLetter: Send + Sync {
    /// Retries dead letter `id`: success removes it, a failure counts one more attempt.
    fn retry(&self, id: i64) -> RetryFuture<'_>;
    /// Dismisses dead letter `id`: it leaves the list without being applied (a journey
    /// run waiting at the step ends). False when it was not listed.
    fn dismiss(&self, id: i64) -> DismissFuture<'_>;
}

fn rfc3339(ms: i64) -> String {
    flywheel_core::time::from_millis(ms).to_rfc3339()
}

/// A dead letter as the API shows it.
pub fn to_json(d: &DeadLetterRow) -> Value {
    json!({
        "id": d.id,
        "workflow": d.workflow,
        "item": d.item,
        "seq": d.seq,
        "message_id": d.message_id,
        "user_id": d.user_id,
        "error": d.error,
        "attempts": d.attempts,
        "first_failed_at": rfc3339(d.first_failed_at),
        "last_failed_at": rfc3339(d.last_failed_at),
    })
}

/// `GET /api/v1/dead-letters`: every dead letter, oldest first.
pub async fn list(State(s): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, ApiError> {
    let rows = s.store.read_with(|c| dead_letters::list(c, None)).await?;
    Ok(Json(
        json!({"dead_letters": rows.iter().map(to_json).collect::<Vec<_>>()}),
    ))
}

/// `POST /api/v1/dead-letters/{id}/retry`: applies it again now; 200 when applied (it
/// leaves the list) or resumed (a journey step: it leaves the list and runs again in the
/// background), 409 `retry_failed` when it failed again (it stays, one more attempt).
pub async fn retry(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(ApiError::not_found(format!("dead letter {id:?}")));
    };
    match s.dead_letters.retry(id).await? {
        RetryOutcome::Applied => Ok(Json(json!({"id": id, "applied": true}))),
        RetryOutcome::Resumed => Ok(Json(json!({"id": id, "resumed": true}))),
        RetryOutcome::Failed { error, attempts } => Err(ApiError::new(
            ErrorCode::RetryFailed,
            format!("dead letter {id} failed again (attempt {attempts}): {error}"),
        )),
        RetryOutcome::NotFound => Err(ApiError::not_found(format!("dead letter {id}"))),
    }
}

/// `POST /api/v1/dead-letters/{id}/dismiss`: gives it up; 200 when it left the list (a
/// journey run waiting at the step ends), 404 when it was not listed.
pub async fn dismiss(
    State(s): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(ApiError::not_found(format!("dead letter {id:?}")));
    };
    if s.dead_letters.dismiss(id).await? {
        Ok(Json(json!({"id": id, "dismissed": true})))
    } else {
        Err(ApiError::not_found(format!("dead letter {id}")))
    }
}
