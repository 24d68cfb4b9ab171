//! Stock counters of flash sales, behind one trait: [`MemoryStock`] (in-process, the
//! embedded default) and `RedisStock` (atomic Lua on Redis, shared by many processes).
//! A take checks the remaining stock and the buyer's limit and decrements both in one
//! atomic step, so no interleaving of concurrent buyers can oversell.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::Result;

/// The answer to a take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The units are the buyer's (until paid or released).
    Taken,
    /// Fewer units are left than asked for.
    SoldOut,
    /// The buyer would exceed the per-user limit.
    LimitReached,
}

/// Where the stock of flash sales is counted.
pub trait StockBackend: Send + Sync + 'static {
    /// Sets a sale's counters: `stock` units of which the buyers in `held` hold some
    /// (start-up and new sales). A backend that already knows the sale keeps its counts.
    fn open(
        &self,
        sale_id: &str,
        stock: i64,
        held: &[(String, i64)],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Takes `quantity` units for `user`, at most `limit` per user, atomically.
    fn take(
        &self,
        sale_id: &str,
        user: &str,
        quantity: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Take>> + Send;
    /// Gives units back (an unpaid hold lapsed, or the durable record failed).
    fn give_back(&self, sale_id: &str, user: &str, quantity: i64) -> impl Future<Output = Result<()>> + Send;
    /// Units left.
    fn remaining(&self, sale_id: &str) -> impl Future<Output = Result<i64>> + Send;
}

#[derive(Debug, Default)]
struct Counters {
    remaining: i64,
    per_user: HashMap<String, i64>,
}

/// In-process counters (embedded mode); the store keeps the durable record.
#[derive(Debug, Default)]
pub struct MemoryStock {
    sales: Mutex<HashMap<String, Counters>>,
}

impl MemoryStock {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Counters>) -> T) -> T {
        let mut sales = self.sales.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut sales)
    }
}

impl StockBackend for MemoryStock {
    async fn open(&self, sale_id: &str, stock: i64, held: &[(String, i64)]) -> Result<()> {
        self.with(|sales| {
            let mut c = Counters {
                remaining: stock,
                per_user: HashMap::new(),
            };
            for (user, q) in held {
                c.remaining -= q;
                *c.per_user.entry(user.clone()).or_default() += q;
            }
            sales.entry(sale_id.to_owned()).or_insert(c);
        });
        Ok(())
    }

    async fn take(&self, sale_id: &str, user: &str, quantity: i64, limit: i64) -> Result<Take> {
        Ok(self.with(|sales| {
            let Some(c) = sales.get_mut(sale_id) else {
                return Take::SoldOut;
            };
            if c.remaining < quantity {
                return Take::SoldOut;
            }
            let mine = c.per_user.entry(user.to_owned()).or_default();
            if *mine + quantity > limit {
                return Take::LimitReached;
            }
            *mine += quantity;
            c.remaining -= quantity;
            Take::Taken
        }))
    }

    async fn give_back(&self, sale_id: &str, user: &str, quantity: i64) -> Result<()> {
        self.with(|sales| {
            if let Some(c) = sales.get_mut(sale_id) {
                c.remaining += quantity;
                if let Some(mine) = c.per_user.get_mut(user) {
                    *mine = (*mine - quantity).max(0);
                }
            }
        });
        Ok(())
    }

    async fn remaining(&self, sale_id: &str) -> Result<i64> {
        Ok(self.with(|sales| sales.get(sale_id).map_or(0, |c| c.remaining)))
    }
}

/// Either backend, chosen at start (`--redis` or not).
pub enum AnyStock {
    /// In-process.
    Memory(MemoryStock),
    /// Redis.
    Redis(super::RedisStock),
}

impl StockBackend for AnyStock {
    async fn open(&self, sale_id: &str, stock: i64, held: &[(String, i64)]) -> Result<()> {
        match self {
            AnyStock::Memory(m) => m.open(sale_id, stock, held).await,
            AnyStock::Redis(r) => r.open(sale_id, stock, held).await,
        }
    }

    async fn take(&self, sale_id: &str, user: &str, quantity: i64, limit: i64) -> Result<Take> {
        match self {
            AnyStock::Memory(m) => m.take(sale_id, user, quantity, limit).await,
            AnyStock::Redis(r) => r.take(sale_id, user, quantity, limit).await,
        }
    }

    async fn give_back(&self, sale_id: &str, user: &str, quantity: i64) -> Result<()> {
        match self {
            AnyStock::Memory(m) => m.give_back(sale_id, user, quantity).await,
            AnyStock::Redis(r) => r.give_back(sale_id, user, quantity).await,
        }
    }

    async fn remaining(&self, sale_id: &str) -> Result<i64> {
        match self {
            AnyStock::Memory(m) => m.remaining(sale_id).await,
            AnyStock::Redis(r) => r.remaining(sale_id).await,
        }
    }
}
