//! Test support for crates built on the store (feature `testing`): the stores a
//! behavioural test runs on — SQLite in a fresh temporary directory, and PostgreSQL in a
//! fresh schema of `FLYWHEEL_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`)
//! when it answers. With `CI=true` an unreachable PostgreSQL fails the test instead of
//! being skipped.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Store, StoreConfig, Synchronous};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this process and call, prefixed `t<pid>_` (scripts/test drops such
/// schemas). Process ids come back in later runs, and Redis keys and temporary
/// directories outlive a run, so the clock's low bits are part of the name too.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t{}_{}_{nanos:x}_{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh SQLite store in a new temporary directory.
pub async fn sqlite(name: &str) -> Store {
    let dir = fresh_dir(&format!("flywheel-{}", unique(name)));
    open(StoreConfig::from_url(None, &dir, Synchronous::Normal)).await
}

/// An empty directory `name` under the system temporary directory. Names built from a
/// process id come back when the id is reused, so whatever an earlier, dead process left
/// under the same name is removed first (a live process never shares our id).
pub fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(name);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("clearing the stale test directory {}: {e}", dir.display()),
    }
    dir
}

async fn open(config: crate::Result<StoreConfig>) -> Store {
    match config {
        Ok(c) => match Store::open(c).await {
            Ok(s) => s,
            Err(e) => panic!("opening a test store: {e}"),
        },
        Err(e) => panic!("test store configuration: {e}"),
    }
}

/// The stores to run a test on: SQLite always, PostgreSQL when reachable (required with `CI=true`).
pub async fn stores(name: &str) -> Vec<Store> {
    let mut out = vec![sqlite(name).await];
    let base = std::env::var("FLYWHEEL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let url = format!("{base}?schema={}", unique(name));
    let config = match StoreConfig::from_url(Some(&url), std::path::Path::new("."), Synchronous::Normal) {
        Ok(c) => c,
        Err(e) => panic!("test store configuration: {e}"),
    };
    match Store::open(config).await {
        Ok(s) => out.push(s),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED postgres backend for {name}: {e}")
        }
        Err(e) => panic!("PostgreSQL is required when CI=true: {e}"),
    }
    out
}
