//! The connection to Redis (`--redis redis://…`), where the counters every process must
//! share live: frequency-cap reservations and rate limits (flash-sale stock keeps its own
//! connection). Redis is not a system of record here: what it holds is either rebuilt
//! from the store or is allowed to be forgotten.
//!
//! Rule: a call to Redis never hangs a request and a Redis restart never needs a
//! Flywheel restart. Every call has a deadline ([`CALL_TIMEOUT`]); a connection that broke
//! (refused, dropped, timed out) is dropped and opened again by the next call, at most
//! once per [`RECONNECT_EVERY`] while Redis stays away, so an outage costs callers a fast
//! error, not a connection attempt each. What a caller does with that error (fail open,
//! fall back to the store) is its own rule.

use std::future::Future;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, RedisResult};

/// How long one call (connecting included) may take before it counts as failed.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// How often a lost connection is tried again while Redis stays unreachable.
pub const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// A shared, self-healing connection to one Redis server, with the key prefix of this
/// installation.
pub struct RedisLink {
    client: redis::Client,
    prefix: String,
    conn: RwLock<Option<MultiplexedConnection>>,
    connecting: tokio::sync::Mutex<()>,
    last_failure: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink").field("prefix", &self.prefix).finish()
    }
}

fn timed_out() -> RedisError {
    RedisError::from((ErrorKind::IoError, "redis did not answer in time"))
}

/// Whether `e` means the connection is unusable (as opposed to a refusal of one command).
fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error()
}

impl RedisLink {
    /// A link to `url` whose keys start with `prefix:`; checks the server answers now
    /// (a wrong URL is refused at start rather than at the first request).
    pub async fn connect(url: &str, prefix: &str) -> RedisResult<RedisLink> {
        let link = RedisLink {
            client: redis::Client::open(url)?,
            prefix: prefix.to_owned(),
            conn: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            last_failure: Mutex::new(None),
        };
        let () = link
            .call(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await.map(drop) })
            .await?;
        Ok(link)
    }

    /// `prefix:` followed by `rest`: every key this installation writes.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// Runs `f` on the connection (opened first if needed) within [`CALL_TIMEOUT`]; a
    /// failure that breaks the connection drops it so the next call opens a new one.
    pub async fn call<T, F, Fut>(&self, f: F) -> RedisResult<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let conn = self.connection().await?;
        let out = tokio::time::timeout(CALL_TIMEOUT, f(conn))
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        if let Err(e) = &out {
            if breaks_connection(e) {
                self.drop_connection();
            }
        }
        out
    }

    fn cached(&self) -> Option<MultiplexedConnection> {
        self.conn.read().ok().and_then(|c| c.clone())
    }

    fn drop_connection(&self) {
        if let Ok(mut c) = self.conn.write() {
            *c = None;
        }
        if let Ok(mut at) = self.last_failure.lock() {
            *at = Some(Instant::now());
        }
    }

    async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(c) = self.cached() {
            return Ok(c);
        }
        let recent = self
            .last_failure
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at.elapsed() < RECONNECT_EVERY);
        if recent {
            return Err(RedisError::from((
                ErrorKind::IoError,
                "redis is unreachable (trying again every second)",
            )));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(CALL_TIMEOUT)
            .set_response_timeout(CALL_TIMEOUT);
        let opened = tokio::time::timeout(
            CALL_TIMEOUT,
            self.client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .unwrap_or_else(|_| Err(timed_out()));
        match opened {
            Ok(c) => {
                if let Ok(mut slot) = self.conn.write() {
                    *slot = Some(c.clone());
                }
                Ok(c)
            }
            Err(e) => {
                self.drop_connection();
                Err(e)
            }
        }
    }
}
