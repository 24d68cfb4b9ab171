//! The limits every process of one installation must count together — frequency-cap
//! reservations of marketing sends and request rates of the HTTP edges — in Redis when
//! `--redis` is given, else in this process (exact for the embedded mode's one process).
//! Flash-sale stock opens its own Redis connection ([`crate::serve`]).

use std::sync::Arc;

use anyhow::Result;
use flywheel_api::rate_limit::{Buckets, MemoryRates, RateLimits, RedisRates};
use flywheel_journeys::caps::{CapReservations, RedisCapReservations};
use flywheel_store::redis_link::RedisLink;

use crate::config::ServerSettings;

/// Cap reservations (None: the journey engine keeps them in-process) and rate limits.
pub struct SharedLimits {
    /// For the journey engine's `Services::caps`.
    pub caps: Option<Arc<dyn CapReservations>>,
    /// For the HTTP handlers.
    pub rates: Arc<RateLimits>,
}

/// Opens the shared limits under the server settings; an unreachable `--redis` at start
/// is bad input (later outages are survived: see the two modules).
pub async fn open(server: &ServerSettings) -> Result<SharedLimits> {
    let Some(url) = server.redis.as_deref() else {
        return Ok(SharedLimits {
            caps: None,
            rates: RateLimits::new(server.rate_limits, Buckets::Memory(MemoryRates::default())),
        });
    };
    let link = RedisLink::connect(url, &server.redis_prefix)
        .await
        .map_err(|e| crate::BadInput(format!("--redis {url}: {e}")))?;
    let link = Arc::new(link);
    Ok(SharedLimits {
        caps: Some(Arc::new(RedisCapReservations::new(link.clone()))),
        rates: RateLimits::new(server.rate_limits, Buckets::Redis(RedisRates::new(link))),
    })
}
