//! The SQLite WAL stays bounded: a reader holding an old snapshot lets it grow past the
//! bound, the checkpointer truncates it once the reader ends, and a graceful close leaves
//! none. PostgreSQL has no WAL file of ours: it reports none and closes as a no-op.

use std::time::{Duration, Instant};

use flywheel_core::time::parse_timestamp;
use flywheel_core::{Event, EventKind};
use flywheel_store::{NewEvent, Store, StoreConfig, Synchronous, Table, WalLimit};
use serde_json::{json, Map};

/// The smallest bound the binary accepts; the database stays smaller than it here.
const LIMIT: WalLimit = WalLimit { bytes: 1 << 20 };

/// How long the checkpointer may take to catch up before the test gives up (a liveness
/// deadline for a slow machine, not a measurement).
const PATIENCE: Duration = Duration::from_secs(120);

fn event(i: usize) -> NewEvent {
    let at = parse_timestamp("2024-01-01T00:00:00Z").unwrap();
    let mut properties = Map::new();
    properties.insert("note".into(), json!("商品詳情 ".repeat(100)));
    NewEvent::new(
        Event {
            message_id: format!("m{i}"),
            kind: EventKind::Track,
            user_id: Some(format!("u{}", i % 50)),
            anonymous_id: None,
            event: Some("Product Viewed".into()),
            name: None,
            group_id: None,
            previous_id: None,
            timestamp: at,
            original_timestamp: None,
            sent_at: None,
            received_at: at,
            context: Map::new(),
            properties,
            traits: Map::new(),
            integrations: Map::new(),
        },
        None,
    )
}

async fn write(store: &Store, from: usize, batches: usize) {
    for b in 0..batches {
        let start = from + b * 100;
        store
            .apply((start..start + 100).map(event).collect())
            .await
            .unwrap();
    }
}

fn db_bytes(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join("flywheel.db")).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_truncated_after_a_reader_and_at_close() {
    let dir = std::env::temp_dir().join(format!("flywheel-store-wal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = StoreConfig::from_url(None, &dir, Synchronous::Normal)
        .unwrap()
        .with_wal_limit(LIMIT);
    let store = Store::open(config).await.unwrap();

    // A reader takes a snapshot and keeps it while 6,000 events (about 10 MB of WAL) go in.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let reader = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .read_with(move |c| {
                    c.begin_read()?;
                    let seen = flywheel_store::read::count(c, flywheel_store::Table::Events)?;
                    let _ = started_tx.send(seen);
                    let _ = release_rx.recv();
                    let again = flywheel_store::read::count(c, flywheel_store::Table::Events)?;
                    c.rollback();
                    Ok((seen, again))
                })
                .await
        }
    });
    let seen = started_rx.await.unwrap();
    write(&store, 0, 60).await;
    let held = store.wal_bytes().unwrap();
    assert!(
        held > LIMIT.bound(db_bytes(&dir)),
        "with a snapshot held the WAL cannot start over: {held} bytes"
    );
    release_tx.send(()).unwrap();
    let (first, again) = reader.await.unwrap().unwrap();
    assert_eq!(
        (first, again),
        (seen, seen),
        "the reader kept its snapshot throughout"
    );

    // Once the reader is gone the checkpointer truncates it, and it stays bounded under
    // more writes.
    let deadline = Instant::now() + PATIENCE;
    let mut next = 6_000;
    loop {
        let wal = store.wal_bytes().unwrap();
        if wal <= LIMIT.bound(db_bytes(&dir)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the WAL was never truncated after the reader ended: {wal} bytes"
        );
        write(&store, next, 1).await;
        next += 100;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        store.wal_bytes().unwrap() < held,
        "the WAL file shrank back, not only stopped growing"
    );
    assert_eq!(store.count(Table::Events).await.unwrap(), next as i64);

    // A graceful close leaves an empty WAL, and nothing is lost.
    store.close().await.unwrap();
    assert_eq!(store.wal_bytes(), Some(0), "no WAL after a graceful close");
    drop(store);
    let reopened = Store::open(
        StoreConfig::from_url(None, &dir, Synchronous::Normal)
            .unwrap()
            .with_wal_limit(LIMIT),
    )
    .await
    .unwrap();
    assert_eq!(reopened.count(Table::Events).await.unwrap(), next as i64);
    reopened.close().await.unwrap();
    drop(reopened);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_has_no_wal_file_to_bound() {
    let base = std::env::var("FLYWHEEL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let url = format!("{base}?schema=t{}_wal", std::process::id());
    let config = StoreConfig::from_url(Some(&url), std::path::Path::new("."), Synchronous::Normal)
        .unwrap()
        .with_wal_limit(LIMIT);
    let store = match Store::open(config).await {
        Ok(s) => s,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED postgres backend: {e}");
            return;
        }
        Err(e) => panic!("PostgreSQL is required when CI=true: {e}"),
    };
    assert_eq!(store.wal_bytes(), None);
    assert_eq!(store.wal_health(), None);
    write(&store, 0, 1).await;
    store.close().await.unwrap();
    assert_eq!(
        store.count(Table::Events).await.unwrap(),
        100,
        "the store still answers after close"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_health_reports_the_bound_and_the_checkpointer() {
    let dir = std::env::temp_dir().join(format!("flywheel-store-walhealth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = StoreConfig::from_url(None, &dir, Synchronous::Normal)
        .unwrap()
        .with_wal_limit(LIMIT);
    let store = Store::open(config).await.unwrap();
    write(&store, 0, 1).await;
    let h = store.wal_health().expect("SQLite has a WAL");
    assert!(h.checkpointer_running, "{h:?}");
    assert_eq!(h.bound, LIMIT.bound(db_bytes(&dir)), "{h:?}");
    assert_eq!(h.trigger, h.bound / 4, "{h:?}");
    store.close().await.unwrap();
    let closed = store.wal_health().expect("still SQLite");
    assert!(!closed.checkpointer_running, "{closed:?}");
    assert_eq!(closed.bytes, 0, "{closed:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
