//! Shared test setup: every test runs on SQLite in a temporary directory and on
//! PostgreSQL in a fresh schema (FLYWHEEL_TEST_PG; required when CI=true).
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use flywheel_core::time::{parse_timestamp, to_millis};
use flywheel_core::{FixedClock, Timestamp};
use flywheel_loyalty::{Loyalty, LoyaltyConfig};
use flywheel_store::{Store, StoreConfig, Synchronous};

static COUNTER: AtomicUsize = AtomicUsize::new(0);
pub const DAY: i64 = 86_400_000;

fn unique(name: &str) -> String {
    format!(
        "t{}_{}_{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The stores to run on: SQLite always, PostgreSQL when reachable.
pub async fn stores(name: &str) -> Vec<Store> {
    let dir = std::env::temp_dir().join(format!("flywheel-loyalty-{}", unique(name)));
    let mut out = vec![
        Store::open(StoreConfig::from_url(None, &dir, Synchronous::Normal).unwrap())
            .await
            .unwrap(),
    ];
    let base = std::env::var("FLYWHEEL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let url = format!("{base}?schema={}", unique(name));
    match Store::open(
        StoreConfig::from_url(Some(&url), std::path::Path::new("."), Synchronous::Normal).unwrap(),
    )
    .await
    {
        Ok(s) => out.push(s),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED postgres backend for {name}: {e}")
        }
        Err(e) => panic!("PostgreSQL is required when CI=true: {e}"),
    }
    out
}

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
