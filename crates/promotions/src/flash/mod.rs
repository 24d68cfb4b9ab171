//! Flash sales (秒殺): limited stock, a time window, a per-user limit, zero oversell
//! under any concurrency, and unpaid orders that give their stock back after a hold time.
//!
//! The stock is counted by a [`StockBackend`] (in-process for the embedded mode, Redis
//! for many processes); every successful take is recorded durably in the store as a
//! `held` order before it is answered, so a restart rebuilds the counters from the
//! store and never sells a unit twice. A sold-out answer touches no store at all, which
//! is what lets a sale absorb a crowd.

mod redis_stock;
mod sale;
mod stock;

pub use redis_stock::RedisStock;
pub use sale::{FlashOrder, FlashSale, FlashSales};
pub use stock::{AnyStock, MemoryStock, StockBackend, Take};
