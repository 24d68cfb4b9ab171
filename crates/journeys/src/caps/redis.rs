//! Cap reservations in Redis (`--redis`), shared by every process: one set of message ids
//! per (user, cap, period) under `<prefix>:cap:…`, checked and joined by one Lua script,
//! which Redis runs atomically, so no interleaving of senders in any process can take
//! more slots than the limit. Each set expires a day after its period ends, counted from
//! the sender's clock (a relative TTL: the clocks of Redis and the processes may differ).

use std::sync::{Arc, LazyLock};

use flywheel_core::Timestamp;
use flywheel_store::redis_link::RedisLink;
use redis::Script;

use super::{CapReservations, CapSlot, Reserved};
use crate::ports::{PortError, PortFuture};

/// KEYS: the slots' sets. ARGV: holder, then per slot: limit, seconds to keep it, the
/// number of counted ids, the counted ids. Answers 0 when held, else the 1-based
/// index of the first full slot (then nothing was reserved).
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = ARGV[1]
local pos = 2
local expiry = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[pos])
  expiry[i] = ARGV[pos + 1]
  local n = tonumber(ARGV[pos + 2])
  pos = pos + 3
  for j = 0, n - 1 do redis.call('SADD', KEYS[i], ARGV[pos + j]) end
  pos = pos + n
  if n > 0 then redis.call('EXPIRE', KEYS[i], expiry[i]) end
  if redis.call('SISMEMBER', KEYS[i], holder) == 0 and redis.call('SCARD', KEYS[i]) >= limit then
    return i
  end
end
for i = 1, #KEYS do
  redis.call('SADD', KEYS[i], holder)
  redis.call('EXPIRE', KEYS[i], expiry[i])
end
return 0
",
    )
});

/// KEYS: the slots' sets. ARGV: the holder, removed from each.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end
return 0
",
    )
});

/// Reservations in Redis, through a shared link.
#[derive(Debug, Clone)]
pub struct RedisCapReservations {
    link: Arc<RedisLink>,
}

impl RedisCapReservations {
    /// Reservations over `link` (keys under its prefix).
    pub fn new(link: Arc<RedisLink>) -> Self {
        RedisCapReservations { link }
    }
}

fn outage(e: redis::RedisError) -> PortError {
    PortError::transient(format!("redis: {e}"))
}

impl CapReservations for RedisCapReservations {
    fn reserve<'a>(
        &'a self,
        holder: &'a str,
        slots: &'a [CapSlot],
        now: Timestamp,
    ) -> PortFuture<'a, Reserved> {
        Box::pin(async move {
            let mut inv = RESERVE.prepare_invoke();
            for s in slots {
                inv.key(self.link.key(&s.key));
            }
            inv.arg(holder);
            for s in slots {
                let ttl = (s.expires_at() - now.timestamp()).max(1);
                inv.arg(s.limit).arg(ttl).arg(s.counted.len());
                for id in &s.counted {
                    inv.arg(id);
                }
            }
            let full: usize = self
                .link
                .call(|mut c| async move { inv.invoke_async(&mut c).await })
                .await
                .map_err(outage)?;
            Ok(match full {
                0 => Reserved::Held,
                i => Reserved::Full(i - 1),
            })
        })
    }

    fn release<'a>(&'a self, holder: &'a str, slots: &'a [CapSlot]) -> PortFuture<'a, ()> {
        Box::pin(async move {
            let mut inv = RELEASE.prepare_invoke();
            for s in slots {
                inv.key(self.link.key(&s.key));
            }
            inv.arg(holder);
            let _: i64 = self
                .link
                .call(|mut c| async move { inv.invoke_async(&mut c).await })
                .await
                .map_err(outage)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::suite;

    /// A link under a prefix of its own, or None (with the reason printed) when nothing
    /// answers on 127.0.0.1:6379 outside CI.
    async fn link(test: &str) -> Option<(Arc<RedisLink>, String)> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let prefix = format!("fwtest-{test}-{}-{nanos}", std::process::id());
        match RedisLink::connect("redis://127.0.0.1:6379", &prefix).await {
            Ok(l) => Some((Arc::new(l), prefix)),
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "Redis is required when CI=true: {e}"
                );
                eprintln!("SKIPPED redis cap reservations: nothing on 127.0.0.1:6379 ({e})");
                None
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_instances_share_one_cap() {
        let Some((link_a, prefix)) = link("caps-share").await else {
            return;
        };
        // A second instance with its own connection, as a second process has.
        let link_b = Arc::new(
            RedisLink::connect("redis://127.0.0.1:6379", &prefix)
                .await
                .unwrap(),
        );
        let a = Arc::new(RedisCapReservations::new(link_a));
        let b = Arc::new(RedisCapReservations::new(link_b));
        suite::one_slot_many_senders(a, b, "share").await;
    }

    #[tokio::test]
    async fn a_retry_keeps_its_slot_and_a_release_frees_it() {
        let Some((l, _)) = link("caps-retry").await else {
            return;
        };
        suite::retry_release_and_counted(&RedisCapReservations::new(l), "retry").await;
    }

    #[tokio::test]
    async fn all_caps_or_none_and_sets_expire_after_their_period() {
        let Some((l, _)) = link("caps-all").await else {
            return;
        };
        let caps = RedisCapReservations::new(l.clone());
        suite::all_or_none(&caps, "all").await;
        // Kept a day past the period's end as the sender's clock counts, even when that
        // clock is days behind Redis's (an engine on a test clock).
        let sender_now = chrono::Utc::now() - chrono::Duration::days(30);
        let s = CapSlot {
            until: sender_now + chrono::Duration::hours(1),
            ..suite::slot("ttl", "one", 1, &[])
        };
        assert_eq!(
            caps.reserve("m", std::slice::from_ref(&s), sender_now)
                .await
                .unwrap(),
            Reserved::Held
        );
        let key = l.key(&s.key);
        let ttl: i64 = l
            .call(|mut c| async move { redis::cmd("TTL").arg(key).query_async(&mut c).await })
            .await
            .unwrap();
        let want = 3600 + crate::caps::RESERVATION_MARGIN_SECS;
        assert!((want - 5..=want).contains(&ttl), "TTL {ttl}, want {want}");
    }
}
