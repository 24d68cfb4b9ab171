//! Rate buckets in Redis (`--redis`), shared by every api process: one key per caller
//! under `<prefix>:rate:…` holding its next theoretical arrival, read and moved by one
//! Lua script on Redis's own clock (`TIME`), so the processes' clocks never matter and
//! no two requests interleave. A key expires once its bucket has filled up again.

use std::sync::{Arc, LazyLock};

use flywheel_store::redis_link::RedisLink;
use redis::{RedisResult, Script};

use super::{Rate, Verdict};

/// KEYS[1]: the caller's bucket. ARGV: interval (µs), tolerance (µs). Answers 0 when
/// let through, else the microseconds to wait.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then return math.max(1, tat - now - tolerance) end
local nxt = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1000)
return 0
",
    )
});

/// Buckets in Redis, through a shared link.
#[derive(Debug, Clone)]
pub struct RedisRates {
    link: Arc<RedisLink>,
}

impl RedisRates {
    /// Buckets over `link` (keys under its prefix).
    pub fn new(link: Arc<RedisLink>) -> Self {
        RedisRates { link }
    }

    /// Counts one request of `key` at `rate`; an error when Redis cannot be reached.
    pub async fn take(&self, key: &str, rate: Rate) -> RedisResult<Verdict> {
        let mut inv = TAKE.prepare_invoke();
        inv.key(self.link.key(&format!("rate:{key}")))
            .arg(rate.interval_us)
            .arg(rate.tolerance_us);
        let wait_us: i64 = self
            .link
            .call(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(if wait_us > 0 {
            Verdict::Limited { wait_us }
        } else {
            Verdict::Allowed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Buckets, RateLimitConfig, RateLimits};
    use super::*;

    /// A link under a prefix of its own, or None (with the reason printed) when nothing
    /// answers on 127.0.0.1:6379 outside CI.
    async fn link(prefix: &str) -> Option<Arc<RedisLink>> {
        match RedisLink::connect("redis://127.0.0.1:6379", prefix).await {
            Ok(l) => Some(Arc::new(l)),
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "Redis is required when CI=true: {e}"
                );
                eprintln!("SKIPPED redis rate limits: nothing on 127.0.0.1:6379 ({e})");
                None
            }
        }
    }

    fn prefix(test: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("fwtest-{test}-{}-{nanos}", std::process::id())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_instances_share_one_allowance() {
        let p = prefix("rate-share");
        let (Some(a), Some(b)) = (link(&p).await, link(&p).await) else {
            return;
        };
        // One a minute, 5 at once: whatever the timing, 40 requests split over two
        // processes get exactly 5 through (the sixth would need another 12 s).
        let config = RateLimitConfig {
            tracking_per_second: 0,
            tracking_burst: 1,
            admin_per_minute: 1,
            admin_burst: 5,
        };
        let a = RateLimits::new(config, Buckets::Redis(RedisRates::new(a)));
        let b = RateLimits::new(config, Buckets::Redis(RedisRates::new(b)));
        let tasks: Vec<_> = (0..40u32)
            .map(|i| {
                let limits = if i.is_multiple_of(2) { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    let token = super::super::AdminCaller::Token("t1".into());
                    limits.admin(token).await
                })
            })
            .collect();
        let mut passed = 0;
        let mut retry_after = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => passed += 1,
                Err(e) => retry_after.push(e.retry_after.unwrap()),
            }
        }
        assert_eq!(passed, 5);
        assert_eq!(retry_after.len(), 35);
        assert!(
            retry_after.iter().all(|s| (1..=60).contains(s)),
            "{retry_after:?}"
        );
        let refused = a.stats().admin_limited.load(std::sync::atomic::Ordering::Relaxed)
            + b.stats().admin_limited.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(refused, 35);
        // Another caller has its own allowance.
        let ip = super::super::AdminCaller::Address(Some([10, 0, 0, 1].into()));
        assert!(a.admin(ip).await.is_ok());
    }

    /// A stand-in for Redis that answers `+OK` to every command until the returned task
    /// is aborted, which closes its connections: Redis going away under a running server.
    async fn vanishing_redis() -> (String, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut s, _)) = listener.accept().await {
                conns.spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let text = String::from_utf8_lossy(&buf[..n]);
                        let commands = text.split("\r\n").filter(|l| l.starts_with('*')).count();
                        if s.write_all("+OK\r\n".repeat(commands).as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (url, task)
    }

    #[tokio::test]
    async fn redis_going_away_lets_requests_through_counted_and_never_fails_them() {
        assert!(
            RedisLink::connect("redis://127.0.0.1:1", "fwtest-down")
                .await
                .is_err(),
            "an address nothing answers on is refused at start"
        );
        let (url, redis) = vanishing_redis().await;
        let link = Arc::new(RedisLink::connect(&url, "fwtest-vanish").await.unwrap());
        let config = RateLimitConfig {
            tracking_per_second: 1,
            tracking_burst: 1,
            ..RateLimitConfig::default()
        };
        let limits = RateLimits::new(config, Buckets::Redis(RedisRates::new(link)));
        redis.abort();
        let _ = redis.await;
        for _ in 0..5 {
            assert!(limits.tracking("key_a").await.is_ok(), "fail open");
        }
        let s = limits.stats();
        assert_eq!(s.unavailable.load(std::sync::atomic::Ordering::Relaxed), 5);
        assert_eq!(s.tracking_limited.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
}
