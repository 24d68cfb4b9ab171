//! Reading request bodies within bounds: one shared budget of in-flight body bytes for the
//! whole server ([`BodyBudget`]), a per-request size limit and an idle timeout per read.
//!
//! Every handler that keeps a body in memory reads it here, after whatever credential the
//! headers carry has been checked. The bytes a body occupies (its buffer's capacity) are
//! taken from the budget before they are allocated and given back when the request is
//! done ([`HeldBody`] is dropped). A body that does not fit in what is left of the budget
//! is refused with a 503 `body_budget_exhausted` (and `Retry-After`); a client that sends
//! nothing for the idle timeout gets a 408 `body_timeout`. Either way the connection is
//! closed after the answer, so a refused client cannot keep it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap};
use flywheel_core::ErrorCode;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The most of a refused body read (and thrown away, never kept) before answering, so a
/// client that is still sending reads our answer instead of a reset connection.
const DRAIN_CAP: usize = 64 * 1024 * 1024;

/// Default of [`BodyBudget::new`]'s `max_inflight_bytes`: 64 MiB.
pub const DEFAULT_MAX_INFLIGHT_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Default of [`BodyBudget::new`]'s `idle_timeout`: 10 s.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server-wide budget of body bytes held in memory at once, and the idle timeout of
/// every body read. Cheap to clone (one shared semaphore).
#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
    idle: Duration,
    /// The most bytes held at once since [`BodyBudget::take_peak`] last asked.
    peak: Arc<AtomicUsize>,
}

impl Default for BodyBudget {
    fn default() -> Self {
        BodyBudget::new(DEFAULT_MAX_INFLIGHT_BODY_BYTES, DEFAULT_BODY_IDLE_TIMEOUT)
    }
}

/// A body read into memory, holding its share of the budget until dropped.
#[derive(Debug)]
pub struct HeldBody {
    /// The body.
    pub bytes: Vec<u8>,
    permit: Option<OwnedSemaphorePermit>,
    budget: BodyBudget,
}

impl HeldBody {
    /// Takes `n` more bytes of the budget for memory derived from the body (a gunzipped
    /// copy), or refuses with the same 503 as an over-budget body.
    pub fn hold_more(&mut self, n: usize) -> Result<(), ApiError> {
        let more = self.budget.take(n)?;
        merge(&mut self.permit, more);
        Ok(())
    }
}

impl BodyBudget {
    /// A budget of `max_inflight_bytes` (clamped to what a semaphore can count) whose
    /// reads wait at most `idle_timeout` for the next piece of a body.
    pub fn new(max_inflight_bytes: usize, idle_timeout: Duration) -> Self {
        let total = max_inflight_bytes.min(Semaphore::MAX_PERMITS);
        BodyBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
            idle: idle_timeout,
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Body bytes held in memory right now.
    pub fn in_use(&self) -> usize {
        self.total - self.bytes.available_permits()
    }

    /// The most bytes held at once since the last call (at least what is held now).
    pub fn take_peak(&self) -> usize {
        self.peak.swap(self.in_use(), Ordering::Relaxed)
    }

    /// The budget's size.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Takes `n` bytes of the budget without waiting.
    fn take(&self, n: usize) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        if n == 0 {
            return Ok(None);
        }
        let count = u32::try_from(n).map_err(|_| self.exhausted())?;
        let permit = self
            .bytes
            .clone()
            .try_acquire_many_owned(count)
            .map_err(|_| self.exhausted())?;
        self.peak.fetch_max(self.in_use(), Ordering::Relaxed);
        Ok(Some(permit))
    }

    fn exhausted(&self) -> ApiError {
        ApiError::new(
            ErrorCode::BodyBudgetExhausted,
            format!(
                "the server is reading as many request bodies as it holds at once ({} bytes); retry shortly",
                self.total
            ),
        )
    }

    /// Reads `body` into memory: at most `limit` bytes (more is `too_large`, answered
    /// once the client has sent the rest or [`DRAIN_CAP`] bytes, none of them kept),
    /// within the budget and the idle timeout. Every refusal closes the connection.
    pub async fn read(
        &self,
        headers: &HeaderMap,
        body: Body,
        limit: usize,
        too_large: impl Fn() -> ApiError,
    ) -> Result<HeldBody, ApiError> {
        let mut body = body;
        let mut held = HeldBody {
            bytes: Vec::new(),
            permit: None,
            budget: self.clone(),
        };
        if let Some(n) = declared_length(headers) {
            if n > limit as u64 {
                return Err(self.drain(body, 0, too_large()).await);
            }
            // `n` fits in `limit`, so in usize.
            let n = n as usize;
            match self.take(n) {
                Ok(permit) => held.permit = permit,
                Err(e) => return Err(self.drain(body, 0, e).await),
            }
            held.bytes.reserve_exact(n);
        }
        loop {
            let data = match self.next_data(&mut body).await {
                Ok(Some(data)) => data,
                Ok(None) => break,
                Err(e) => return Err(e),
            };
            let len = held.bytes.len() + data.len();
            if len > limit {
                drop(held);
                return Err(self.drain(body, len, too_large()).await);
            }
            if len > held.bytes.capacity() {
                let want = len.next_power_of_two().min(limit);
                let more = want.saturating_sub(held.permit.as_ref().map_or(0, |p| p.num_permits()));
                match self.take(more) {
                    Ok(permit) => merge(&mut held.permit, permit),
                    Err(e) => {
                        drop(held);
                        return Err(self.drain(body, len, e).await);
                    }
                }
                held.bytes.reserve_exact(want - held.bytes.len());
            }
            held.bytes.extend_from_slice(&data);
        }
        Ok(held)
    }

    /// The next data frame of `body`, `None` at its end; a read that waits longer than
    /// the idle timeout is a 408, a broken body a 400.
    async fn next_data(&self, body: &mut Body) -> Result<Option<axum::body::Bytes>, ApiError> {
        loop {
            match tokio::time::timeout(self.idle, body.frame()).await {
                Err(_) => {
                    return Err(ApiError::new(
                        ErrorCode::BodyTimeout,
                        format!(
                            "the request body stalled: nothing arrived for {} s",
                            self.idle.as_secs_f64()
                        ),
                    )
                    .closing())
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidBody,
                        format!("the request body could not be read: {e}"),
                    )
                    .closing())
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Reads and drops the rest of `body` (up to [`DRAIN_CAP`] in all, `seen` already
    /// read), then hands back `error`, marked to close the connection.
    async fn drain(&self, mut body: Body, mut seen: usize, error: ApiError) -> ApiError {
        while seen <= DRAIN_CAP {
            match self.next_data(&mut body).await {
                Ok(Some(data)) => seen += data.len(),
                Ok(None) | Err(_) => break,
            }
        }
        error.closing()
    }
}

fn merge(into: &mut Option<OwnedSemaphorePermit>, more: Option<OwnedSemaphorePermit>) {
    match (into.as_mut(), more) {
        (Some(p), Some(m)) => p.merge(m),
        (None, m) => *into = m,
        (_, None) => {}
    }
}

/// The body length the client declared, if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn too_large() -> ApiError {
        ApiError::new(ErrorCode::BodyTooLarge, "too large")
    }

    fn sized(n: usize) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, n.to_string().parse().unwrap());
        h
    }

    #[tokio::test]
    async fn a_body_holds_its_bytes_until_dropped() {
        let budget = BodyBudget::new(1000, Duration::from_secs(1));
        let held = budget
            .read(&sized(600), Body::from(vec![b'x'; 600]), 800, too_large)
            .await
            .unwrap();
        assert_eq!(held.bytes.len(), 600);
        assert_eq!(budget.in_use(), 600);
        // A second one does not fit: refused, and nothing more is held.
        let e = budget
            .read(&sized(600), Body::from(vec![b'x'; 600]), 800, too_large)
            .await
            .unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.code.as_str(), e.close),
            (503, "body_budget_exhausted", true)
        );
        assert_eq!(budget.in_use(), 600);
        drop(held);
        assert_eq!(budget.in_use(), 0);
    }

    #[tokio::test]
    async fn an_undeclared_body_is_counted_as_it_grows() {
        let budget = BodyBudget::new(1 << 20, Duration::from_secs(1));
        let held = budget
            .read(&HeaderMap::new(), Body::from(vec![b'x'; 3000]), 10_000, too_large)
            .await
            .unwrap();
        assert_eq!(held.bytes.len(), 3000);
        assert!(budget.in_use() >= held.bytes.capacity(), "{}", budget.in_use());
        let e = budget
            .read(&HeaderMap::new(), Body::from(vec![b'x'; 3000]), 2000, too_large)
            .await
            .unwrap_err();
        assert_eq!((e.code, e.close), (ErrorCode::BodyTooLarge, true));
        let e = budget
            .read(&sized(3000), Body::from(vec![b'x'; 3000]), 2000, too_large)
            .await
            .unwrap_err();
        assert_eq!((e.code, e.close), (ErrorCode::BodyTooLarge, true));
        drop(held);
        assert_eq!(budget.in_use(), 0);
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let budget = BodyBudget::new(1 << 20, Duration::from_millis(50));
        let e = budget
            .read(&HeaderMap::new(), Body::new(Stalled(false)), 1000, too_large)
            .await
            .unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.code.as_str(), e.close),
            (408, "body_timeout", true)
        );
        assert_eq!(budget.in_use(), 0);
    }

    /// A body that sends a few bytes and then nothing, never ending.
    struct Stalled(bool);

    impl axum::body::HttpBody for Stalled {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            if self.0 {
                return std::task::Poll::Pending;
            }
            self.0 = true;
            let data = axum::body::Bytes::from_static(b"{\"a\"");
            std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
        }
    }
}
