//! Request rates on the HTTP edges (`[limits]` in the settings file): per write key on
//! the tracking API, per caller on the admin API — the admin token once it is valid, the
//! client's address for a request without a valid token (so guessing tokens is slowed
//! down and never uses up the shop's own allowance). Over the rate: `429 rate_limited`
//! with `Retry-After` (whole seconds until the next request is let through), and nothing
//! of the request is read or stored.
//!
//! The rate is a token bucket kept as one number per caller — the GCRA form: the
//! "theoretical arrival time" of the next request. `burst` requests may come at once,
//! after which they are let through at the sustained rate. With `--redis` the buckets
//! live in Redis ([`RedisRates`], one atomic script on Redis's clock), so every api
//! process counts against the same allowance; otherwise in the process
//! ([`MemoryRates`]), which is exact for the embedded mode's one process.
//!
//! **Redis unreachable: fail open.** The request is let through, counted in
//! `flywheel_rate_limit_unavailable_total`, and a warning is logged (at most one a
//! minute): a rate limit protects the service from a flood, and refusing every event of
//! every shop while a counter is down would do more harm than the flood it guards
//! against. Ingest's own queue still answers 503 when it is really overloaded.

mod memory;
mod redis;

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use flywheel_core::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub use self::redis::RedisRates;
pub use memory::MemoryRates;

/// Default of [`RateLimitConfig::tracking_per_second`].
pub const DEFAULT_TRACKING_PER_SECOND: u32 = 5_000;
/// Default of [`RateLimitConfig::tracking_burst`].
pub const DEFAULT_TRACKING_BURST: u32 = 10_000;
/// Default of [`RateLimitConfig::admin_per_minute`].
pub const DEFAULT_ADMIN_PER_MINUTE: u32 = 600_000;
/// Default of [`RateLimitConfig::admin_burst`].
pub const DEFAULT_ADMIN_BURST: u32 = 20_000;

/// `[limits]`: request rates on the HTTP edges. A rate of 0 turns that limit off. The
/// defaults are far above what a shop sends in normal use — an SDK batching events sends
/// a few requests a second; the ingest target of 50,000 events/s is 500 batches of 100
/// (or 5,000 single events) a second; a flash sale's crowd of 10,000 buyers reaches the
/// admin API through the shop's backend within a second or two — so they only stop a
/// runaway client or script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Tracking API requests (`/v1/track`, `identify`, `page`, `screen`, `group`,
    /// `alias`, `batch`, `import`) per second per write key, sustained (default 5,000).
    pub tracking_per_second: u32,
    /// Tracking requests one write key may send at once before the sustained rate
    /// applies (default 10,000).
    pub tracking_burst: u32,
    /// Admin API requests per minute per caller, sustained (default 600,000: 10,000 a
    /// second).
    pub admin_per_minute: u32,
    /// Admin requests one caller may send at once before the sustained rate applies
    /// (default 20,000: a flash sale's crowd goes through the shop's backend).
    pub admin_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            tracking_per_second: DEFAULT_TRACKING_PER_SECOND,
            tracking_burst: DEFAULT_TRACKING_BURST,
            admin_per_minute: DEFAULT_ADMIN_PER_MINUTE,
            admin_burst: DEFAULT_ADMIN_BURST,
        }
    }
}

/// One sustained rate with its burst, as the buckets use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Microseconds between two requests at the sustained rate.
    pub interval_us: i64,
    /// How far ahead of the sustained rate a caller may be (µs): `burst - 1` intervals.
    pub tolerance_us: i64,
}

impl Rate {
    /// `n` requests per `period_us`, `burst` at once; None when `n` is 0 (no limit).
    pub fn per(n: u32, period_us: i64, burst: u32) -> Option<Rate> {
        if n == 0 {
            return None;
        }
        let interval_us = (period_us / i64::from(n)).max(1);
        Some(Rate {
            interval_us,
            tolerance_us: interval_us * i64::from(burst.max(1) - 1),
        })
    }
}

/// What a bucket answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let through (and counted).
    Allowed,
    /// Over the rate: the next request is let through after this many microseconds.
    Limited { wait_us: i64 },
}

/// Where the buckets are kept.
pub enum Buckets {
    /// In this process.
    Memory(MemoryRates),
    /// In Redis, shared by every process.
    Redis(RedisRates),
}

impl Buckets {
    async fn take(&self, key: &str, rate: Rate) -> Result<Verdict, String> {
        match self {
            Buckets::Memory(m) => Ok(m.take(key, rate)),
            Buckets::Redis(r) => r.take(key, rate).await.map_err(|e| e.to_string()),
        }
    }
}

/// Who an admin request is counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCaller {
    /// A request with the valid admin token (named by [`crate::auth::AdminToken::id`]).
    Token(String),
    /// A request without a valid token, from this address (unknown: one shared bucket).
    Address(Option<IpAddr>),
}

/// Which edge refused, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The tracking API.
    Tracking,
    /// The admin API.
    Admin,
}

/// Counts for `/metrics`.
#[derive(Debug, Default)]
pub struct RateStats {
    /// Tracking requests refused with 429.
    pub tracking_limited: AtomicU64,
    /// Admin requests refused with 429.
    pub admin_limited: AtomicU64,
    /// Requests let through unchecked because the shared buckets were unreachable.
    pub unavailable: AtomicU64,
}

/// The limits of one server: the configured rates over their buckets.
pub struct RateLimits {
    tracking: Option<Rate>,
    admin: Option<Rate>,
    buckets: Buckets,
    stats: RateStats,
    warned_at_ms: AtomicI64,
}

/// The least time between two warnings that the shared buckets are unreachable.
const WARN_EVERY_MS: i64 = 60_000;

impl RateLimits {
    /// `config`'s rates over `buckets`.
    pub fn new(config: RateLimitConfig, buckets: Buckets) -> Arc<RateLimits> {
        Arc::new(RateLimits {
            tracking: Rate::per(config.tracking_per_second, 1_000_000, config.tracking_burst),
            admin: Rate::per(config.admin_per_minute, 60_000_000, config.admin_burst),
            buckets,
            stats: RateStats::default(),
            warned_at_ms: AtomicI64::new(0),
        })
    }

    /// The counts for `/metrics`.
    pub fn stats(&self) -> &RateStats {
        &self.stats
    }

    /// Counts a tracking request of write key `key_id` (its id, not its secret); over the
    /// rate, a 429.
    pub async fn tracking(&self, key_id: &str) -> Result<(), ApiError> {
        let Some(rate) = self.tracking else {
            return Ok(());
        };
        self.take(&format!("tracking:{key_id}"), rate, Edge::Tracking)
            .await
    }

    /// Counts an admin request of `caller`; over the rate, a 429.
    pub async fn admin(&self, caller: AdminCaller) -> Result<(), ApiError> {
        let Some(rate) = self.admin else {
            return Ok(());
        };
        let key = match caller {
            AdminCaller::Token(id) => format!("admin:token:{id}"),
            AdminCaller::Address(Some(ip)) => format!("admin:ip:{ip}"),
            AdminCaller::Address(None) => "admin:ip:unknown".to_owned(),
        };
        self.take(&key, rate, Edge::Admin).await
    }

    async fn take(&self, key: &str, rate: Rate, edge: Edge) -> Result<(), ApiError> {
        match self.buckets.take(key, rate).await {
            Ok(Verdict::Allowed) => Ok(()),
            Ok(Verdict::Limited { wait_us }) => {
                let counter = match edge {
                    Edge::Tracking => &self.stats.tracking_limited,
                    Edge::Admin => &self.stats.admin_limited,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                Err(limited(edge, wait_us))
            }
            Err(error) => {
                self.stats.unavailable.fetch_add(1, Ordering::Relaxed);
                self.warn(&error);
                Ok(())
            }
        }
    }

    fn warn(&self, error: &str) {
        let now = chrono::Utc::now().timestamp_millis();
        let last = self.warned_at_ms.load(Ordering::Relaxed);
        if now - last >= WARN_EVERY_MS
            && self
                .warned_at_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%error, "rate limits unavailable: requests are let through unchecked");
        }
    }
}

/// The 429 of `edge`, with `Retry-After` rounded up to whole seconds (at least 1).
fn limited(edge: Edge, wait_us: i64) -> ApiError {
    let secs = u64::try_from((wait_us + 999_999) / 1_000_000).unwrap_or(1).max(1);
    let whose = match edge {
        Edge::Tracking => "this write key",
        Edge::Admin => "this admin caller",
    };
    ApiError::new(
        ErrorCode::RateLimited,
        format!("too many requests for {whose}: retry in {secs} s ([limits] in the settings file)"),
    )
    .retry_after(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_retry_after() {
        let r = Rate::per(10, 1_000_000, 3).unwrap();
        assert_eq!((r.interval_us, r.tolerance_us), (100_000, 200_000));
        assert_eq!(Rate::per(0, 1_000_000, 3), None);
        assert_eq!(Rate::per(60, 60_000_000, 0).unwrap().tolerance_us, 0);
        assert_eq!(limited(Edge::Tracking, 1).retry_after, Some(1));
        assert_eq!(limited(Edge::Admin, 1_000_001).retry_after, Some(2));
        assert_eq!(limited(Edge::Admin, 2_000_000).retry_after, Some(2));
        assert_eq!(limited(Edge::Admin, 0).code, ErrorCode::RateLimited);
    }

    #[tokio::test]
    async fn over_the_rate_is_429_counted_per_edge_and_zero_means_no_limit() {
        let config = RateLimitConfig {
            tracking_per_second: 1,
            tracking_burst: 2,
            admin_per_minute: 0,
            admin_burst: 1,
        };
        let limits = RateLimits::new(config, Buckets::Memory(MemoryRates::default()));
        assert!(limits.tracking("key_a").await.is_ok());
        assert!(limits.tracking("key_a").await.is_ok());
        let e = limits.tracking("key_a").await.unwrap_err();
        assert_eq!((e.code, e.status().as_u16()), (ErrorCode::RateLimited, 429));
        assert_eq!(e.retry_after, Some(1));
        assert!(limits.tracking("key_b").await.is_ok(), "each key has its own");
        for _ in 0..100 {
            assert!(limits.admin(AdminCaller::Token("t".into())).await.is_ok());
        }
        assert_eq!(limits.stats().tracking_limited.load(Ordering::Relaxed), 1);
        assert_eq!(limits.stats().admin_limited.load(Ordering::Relaxed), 0);
    }
}
