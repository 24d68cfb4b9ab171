//! Shared test setup: every test runs on SQLite in a temporary directory and on
//! PostgreSQL in a fresh schema (FLYWHEEL_TEST_PG; required when CI=true).
#![allow(dead_code)]

use std::sync::Arc;

use flywheel_core::time::{parse_timestamp, to_millis};
use flywheel_core::{FixedClock, Timestamp};
use flywheel_loyalty::{Loyalty, LoyaltyConfig};
use flywheel_store::Store;

pub const DAY: i64 = 86_400_000;

/// The stores to run on: SQLite always, PostgreSQL when reachable.
pub use flywheel_store::testing::stores;

/// A timestamp from RFC 3339 text.
pub fn at(text: &str) -> Timestamp {
    parse_timestamp(text).unwrap()
}

/// Milliseconds of RFC 3339 text.
pub fn ms(text: &str) -> i64 {
    to_millis(at(text))
}

/// A programme with the default config and a clock standing at `now`.
pub fn loyalty(store: Store, now: &str) -> (Loyalty, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(at(now)));
    let l = Loyalty::new(store, clock.clone(), LoyaltyConfig::default()).unwrap();
    (l, clock)
}
