//! HTTP webhook providers: signed JSON POSTs with retries (issue 6 §4).
//!
//! Every request carries `Content-Type: application/json` and the header
//! [`SIGNATURE_HEADER`] `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! Signing the timestamp with the body lets a receiver reject replays older than its
//! tolerance ([`verify`]); the scheme is the one Stripe and Svix use, so receivers can
//! reuse their verification code.
//!
//! A send is a series of [`Attempt`]s: transport errors, 408, 429 and 5xx answers are
//! retried after an exponentially growing delay ([`RetryPolicy`]); any other 4xx fails
//! at once (retrying a rejected payload cannot help); 2xx delivers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The request header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Flywheel-Signature";

/// Why a signature did not verify, or a provider could not be set up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The header is not `t=<seconds>,v1=<hex>`.
    #[error("signature header is not of the form t=<unix seconds>,v1=<hex>")]
    MalformedSignature,
    /// The timestamp is further from now than the tolerance (a replay or a skewed clock).
    #[error("signature timestamp {timestamp} is outside the tolerance of {tolerance_secs} s")]
    StaleSignature {
        /// The signed timestamp.
        timestamp: i64,
        /// The accepted distance from now.
        tolerance_secs: u64,
    },
    /// The HMAC does not match the body and secret.
    #[error("signature does not match the body")]
    BadSignature,
    /// The provider URL is not http(s).
    #[error("webhook URL {0:?} must start with http:// or https://")]
    BadUrl(String),
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = crate::hmac_sha256(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The [`SIGNATURE_HEADER`] value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Checks a [`SIGNATURE_HEADER`] value against `body`, accepting timestamps within
/// `tolerance` of `now` (unix seconds). The comparison is constant-time.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, tolerance: Duration) -> Result<(), Error> {
    verify_timestamp(secret, header, body, now, tolerance).map(|_| ())
}

/// Like [`verify`], and answers the signed timestamp (unix seconds): a receiver that
/// refuses replays keeps what it applied until `timestamp + tolerance`, after which the
/// signature no longer verifies anyway.
pub fn verify_timestamp(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<i64, Error> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(hex::decode(v).map_err(|_| Error::MalformedSignature)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Error::MalformedSignature)?;
    if signatures.is_empty() {
        return Err(Error::MalformedSignature);
    }
    if timestamp.abs_diff(now) > tolerance.as_secs() {
        return Err(Error::StaleSignature {
            timestamp,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    // Several v1 entries allow a receiver to accept during secret rotation.
    let ok = signatures
        .iter()
        .any(|sig| mac(secret, timestamp, body).verify_slice(sig).is_ok());
    if ok {
        Ok(timestamp)
    } else {
        Err(Error::BadSignature)
    }
}

/// How often and how patiently a failed send is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait before the second attempt, in milliseconds.
    pub initial_delay_ms: u64,
    /// The longest wait between attempts, in milliseconds.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting 1 s, 2 s, 4 s, 8 s between them (capped at 60 s).
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay_ms: 1_000,
            max_delay_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based), or `None` when it was
    /// the last: `initial × 2^(attempt-1)`, capped at `max_delay_ms`.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts.max(1) {
            return None;
        }
        let factor = 1u64.checked_shl(attempt.saturating_sub(1)).unwrap_or(u64::MAX);
        let ms = self
            .initial_delay_ms
            .saturating_mul(factor)
            .min(self.max_delay_ms);
        Some(Duration::from_millis(ms))
    }
}

/// What one HTTP attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx answer.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// Worth retrying: a transport error, 408, 429 or 5xx.
    Retryable {
        /// The status, or 0 for a transport error.
        status: u16,
        /// What went wrong.
        error: String,
    },
    /// Not worth retrying: any other answer.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The start of the response body.
        error: String,
    },
}

/// The end of a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted it.
    Delivered {
        /// Attempts it took.
        attempts: u32,
        /// The final HTTP status.
        status: u16,
    },
    /// Retries ran out or the provider rejected it; the message is marked failed.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: String,
    },
}

/// An HTTP endpoint that takes signed JSON messages (an SMS, push or WeChat gateway).
#[derive(Debug, Clone)]
pub struct WebhookProvider {
    url: String,
    secret: Vec<u8>,
    retry: RetryPolicy,
    agent: ureq::Agent,
}

/// The longest a provider may take to answer one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a rejection body is kept for the message log.
const ERROR_BODY_LIMIT: usize = 512;

impl WebhookProvider {
    /// A provider at `url` signing with `secret`.
    pub fn new(url: &str, secret: &[u8], retry: RetryPolicy) -> Result<Self, Error> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::BadUrl(url.to_string()));
        }
        Ok(Self {
            url: url.to_string(),
            secret: secret.to_vec(),
            retry,
            agent: ureq::AgentBuilder::new().timeout(ATTEMPT_TIMEOUT).build(),
        })
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// One signed POST of `body`, signed at the current time.
    pub fn attempt(&self, body: &serde_json::Value) -> Attempt {
        self.attempt_keyed(body, None)
    }

    /// One signed POST carrying an `Idempotency-Key` header: a retry of the same message
    /// (after a timeout or a crash) carries the same key, so a provider that honours it
    /// delivers once.
    pub fn attempt_keyed(&self, body: &serde_json::Value, idempotency_key: Option<&str>) -> Attempt {
        let bytes = body.to_string();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let signature = sign(&self.secret, now, bytes.as_bytes());
        let result = self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/json")
            .set(SIGNATURE_HEADER, &signature);
        let result = match idempotency_key {
            Some(key) => result.set("Idempotency-Key", key),
            None => result,
        }
        .send_string(&bytes);
        match result {
            Ok(r) => Attempt::Delivered { status: r.status() },
            Err(ureq::Error::Status(status, r)) => {
                let mut error = r.into_string().unwrap_or_default();
                error.truncate(floor_char_boundary(&error, ERROR_BODY_LIMIT));
                let error = format!("HTTP {status}: {error}");
                if matches!(status, 408 | 429) || status >= 500 {
                    Attempt::Retryable { status, error }
                } else {
                    Attempt::Rejected { status, error }
                }
            }
            Err(e) => Attempt::Retryable {
                status: 0,
                error: e.to_string(),
            },
        }
    }

    /// Sends `body`, retrying per the policy and waiting with `sleep` between attempts
    /// (a worker thread passes `std::thread::sleep`; tests pass a recorder).
    pub fn send(&self, body: &serde_json::Value, mut sleep: impl FnMut(Duration)) -> Outcome {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match self.attempt(body) {
                Attempt::Delivered { status } => return Outcome::Delivered { attempts, status },
                Attempt::Rejected { error, .. } => return Outcome::Failed { attempts, error },
                Attempt::Retryable { error, .. } => error,
            };
            match self.retry.delay_after(attempts) {
                Some(wait) => sleep(wait),
                None => return Outcome::Failed { attempts, error },
            }
        }
    }
}

/// The largest index ≤ `limit` on a char boundary of `s`.
fn floor_char_boundary(s: &str, limit: usize) -> usize {
    if limit >= s.len() {
        return s.len();
    }
    (0..=limit).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_and_rejects_tampering_replay_and_garbage() {
        let secret = b"whsec_test";
        let body = br#"{"to":"13800000000","text":"\u60a8\u597d"}"#;
        let header = sign(secret, 1_700_000_000, body);
        let tol = Duration::from_secs(300);
        assert_eq!(verify(secret, &header, body, 1_700_000_100, tol), Ok(()));
        assert_eq!(
            verify(secret, &header, b"{}", 1_700_000_100, tol),
            Err(Error::BadSignature)
        );
        assert_eq!(
            verify(b"other", &header, body, 1_700_000_100, tol),
            Err(Error::BadSignature)
        );
        assert!(matches!(
            verify(secret, &header, body, 1_700_000_301, tol),
            Err(Error::StaleSignature { .. })
        ));
        assert_eq!(
            verify(secret, "v1=abcd", body, 1_700_000_000, tol),
            Err(Error::MalformedSignature)
        );
        assert_eq!(
            verify(secret, "t=1700000000,v1=zz", body, 1_700_000_000, tol),
            Err(Error::MalformedSignature)
        );
        // Rotation: an old and a new signature side by side.
        let rotated = format!("{header},v1={}", "00".repeat(32));
        assert_eq!(verify(secret, &rotated, body, 1_700_000_000, tol), Ok(()));
        assert_eq!(
            verify_timestamp(secret, &header, body, 1_700_000_100, tol),
            Ok(1_700_000_000)
        );
    }

    #[test]
    fn signature_matches_an_independent_hmac_sha256() {
        let header = sign(b"key", 0, b"The quick brown fox jumps over the lazy dog");
        // HMAC-SHA256("key", "0.The quick brown fox jumps over the lazy dog") computed
        // with Python's hmac module.
        assert_eq!(
            header,
            "t=0,v1=8511f28f7a1949f0c42772b447d68b2daf760f5f0439a20a17e3b4e7cd395763"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops_after_the_last_attempt() {
        let p = RetryPolicy {
            max_attempts: 6,
            initial_delay_ms: 1_000,
            max_delay_ms: 5_000,
        };
        let delays: Vec<_> = (1..=6).map(|a| p.delay_after(a)).collect();
        assert_eq!(
            delays,
            vec![
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(4)),
                Some(Duration::from_secs(5)),
                Some(Duration::from_secs(5)),
                None
            ]
        );
        let huge = RetryPolicy {
            max_attempts: u32::MAX,
            ..p
        };
        assert_eq!(huge.delay_after(200), Some(Duration::from_secs(5)));
    }

    #[test]
    fn provider_urls_must_be_http() {
        assert!(matches!(
            WebhookProvider::new("ftp://x", b"s", RetryPolicy::default()),
            Err(Error::BadUrl(_))
        ));
    }
}
