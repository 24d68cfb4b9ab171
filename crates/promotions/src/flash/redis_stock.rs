//! Flash-sale stock on Redis, for many processes selling one sale: each operation is
//! one Lua script, which Redis runs atomically, so a take checks and decrements the
//! stock and the buyer's count with no interleaving at all.

use flywheel_core::ErrorCode;
use redis::aio::MultiplexedConnection;
use redis::Script;

use super::stock::{StockBackend, Take};
use crate::{Error, Result};

const TAKE: &str = r"
local left = tonumber(redis.call('GET', KEYS[1]) or '-1')
local qty = tonumber(ARGV[2])
if left < qty then return 0 end
local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if mine + qty > tonumber(ARGV[3]) then return -1 end
redis.call('DECRBY', KEYS[1], qty)
redis.call('HINCRBY', KEYS[2], ARGV[1], qty)
return 1
";

const GIVE_BACK: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('INCRBY', KEYS[1], ARGV[2])
local mine = redis.call('HINCRBY', KEYS[2], ARGV[1], -tonumber(ARGV[2]))
if mine <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
return 1
";

const OPEN: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
";

/// Stock counters in Redis under `<prefix>:flash:<sale>:stock` and `…:users`.
#[derive(Clone)]
pub struct RedisStock {
    conn: MultiplexedConnection,
    prefix: String,
}

fn redis_error(e: redis::RedisError) -> Error {
    Error::Conflict {
        code: ErrorCode::StockUnavailable,
        message: format!("redis: {e}"),
    }
}

impl RedisStock {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379`); keys start with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStock> {
        let client = redis::Client::open(url).map_err(redis_error)?;
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(redis_error)?;
        Ok(RedisStock {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn keys(&self, sale_id: &str) -> (String, String) {
        let base = format!("{}:flash:{sale_id}", self.prefix);
        (format!("{base}:stock"), format!("{base}:users"))
    }
}

impl StockBackend for RedisStock {
    async fn open(&self, sale_id: &str, stock: i64, held: &[(String, i64)]) -> Result<()> {
        let (k, u) = self.keys(sale_id);
        let left = stock - held.iter().map(|(_, q)| q).sum::<i64>();
        let script = Script::new(OPEN);
        let mut inv = script.key(k);
        inv.key(u).arg(left);
        for (user, q) in held {
            inv.arg(user).arg(*q);
        }
        let _: i64 = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn take(&self, sale_id: &str, user: &str, quantity: i64, limit: i64) -> Result<Take> {
        let (k, u) = self.keys(sale_id);
        let r: i64 = Script::new(TAKE)
            .key(k)
            .key(u)
            .arg(user)
            .arg(quantity)
            .arg(limit)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(match r {
            1 => Take::Taken,
            -1 => Take::LimitReached,
            _ => Take::SoldOut,
        })
    }

    async fn give_back(&self, sale_id: &str, user: &str, quantity: i64) -> Result<()> {
        let (k, u) = self.keys(sale_id);
        let _: i64 = Script::new(GIVE_BACK)
            .key(k)
            .key(u)
            .arg(user)
            .arg(quantity)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn remaining(&self, sale_id: &str) -> Result<i64> {
        let (k, _) = self.keys(sale_id);
        let left: Option<i64> = redis::cmd("GET")
            .arg(k)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(left.unwrap_or(0))
    }
}
