//! Acknowledged means durable: SIGKILL right after the last acknowledgement, restart,
//! and every acknowledged event is there exactly once. SIGTERM drains in-flight work.

mod common;

use common::{Backend, Site};
use serde_json::json;

const EVENTS: usize = 3000;

fn batch(from: usize, n: usize) -> serde_json::Value {
    json!({"batch": (from..from + n).map(|i| json!({
        "type": "track", "userId": format!("d{}", i % 7), "event": "Product Viewed",
        "messageId": format!("dur-{i}"), "properties": {"i": i}})).collect::<Vec<_>>()})
}

fn total_events(s: &common::Server) -> i64 {
    (0..7)
        .map(|u| {
            s.get(&format!("/api/v1/profiles/d{u}")).body["event_count"]
                .as_i64()
                .unwrap_or(0)
        })
        .sum()
}

fn survives_sigkill(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    // Four concurrent senders, 100 events a batch.
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (s, key) = (&s, &key);
            scope.spawn(move || {
                let mut i = t * 100;
                while i < EVENTS {
                    assert_eq!(s.post("/v1/batch", Some(key), &batch(i, 100)).status, 200);
                    i += 400;
                }
            });
        }
    });
    s.kill();
    let s = site.serve(&[]);
    assert_eq!(total_events(&s), EVENTS as i64);
    // Re-sending everything after the restart stores nothing twice.
    for i in (0..EVENTS).step_by(100) {
        assert_eq!(s.post("/v1/batch", Some(&key), &batch(i, 100)).status, 200);
    }
    assert_eq!(total_events(&s), EVENTS as i64);
    let timeline = s.get("/api/v1/profiles/d0/events?limit=1000").body;
    assert_eq!(timeline["events"].as_array().unwrap().len(), EVENTS.div_ceil(7));
}
on_each_backend!(acknowledged_events_survive_sigkill, survives_sigkill);

fn drains_on_sigterm(site: Site) {
    let key = site.write_key();
    let s = site.serve(&[]);
    let acked = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            for i in (0..EVENTS).step_by(100) {
                let r = std::panic::catch_unwind(|| s.post("/v1/batch", Some(&key), &batch(i, 100)).status);
                match r {
                    Ok(200) => {
                        acked.fetch_add(100, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(150));
        let pid = s.pid();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let _ = sender.join();
    });
    let status = s.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let s = site.serve(&[]);
    let stored = total_events(&s);
    let acked = acked.load(std::sync::atomic::Ordering::SeqCst) as i64;
    assert!(stored >= acked, "acknowledged {acked} but found {stored}");
}
on_each_backend!(sigterm_finishes_acknowledged_work, drains_on_sigterm);

/// The SQLite WAL: its size is on `/metrics` while serving, and a graceful stop leaves
/// it empty (checkpointed into the database), with every acknowledged event there after
/// the restart. PostgreSQL has no WAL file of ours: no gauge.
fn wal_is_truncated_on_sigterm(site: Site) {
    let key = site.write_key();
    let s = site.serve(&["--sqlite-wal-limit", "1048576"]);
    for i in (0..EVENTS).step_by(100) {
        assert_eq!(s.post("/v1/batch", Some(&key), &batch(i, 100)).status, 200);
    }
    let metrics = s.get("/metrics").body;
    let metrics = metrics.as_str().unwrap_or_default();
    let gauge = metrics
        .lines()
        .find_map(|l| l.strip_prefix("flywheel_store_wal_bytes "))
        .map(|v| v.parse::<u64>().expect("a byte count"));
    let wal = site.data_dir.join("flywheel.db-wal");
    if site.store.is_some() {
        assert_eq!(gauge, None, "no WAL gauge on PostgreSQL");
    } else {
        assert!(
            gauge.is_some(),
            "flywheel_store_wal_bytes on /metrics:\n{metrics}"
        );
    }
    let status = s.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    if site.store.is_none() {
        let left = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert_eq!(left, 0, "a graceful stop leaves no WAL");
    }
    let s = site.serve(&[]);
    assert_eq!(total_events(&s), EVENTS as i64);
}
on_each_backend!(sigterm_leaves_no_wal, wal_is_truncated_on_sigterm);
