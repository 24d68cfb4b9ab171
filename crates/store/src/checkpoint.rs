//! WAL checkpoints off the write path (SQLite).
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, on
//! the writer's thread, and ends with an fsync of the database file: every ingest
//! batch queued behind it waits on the disk. Instead, connections open with
//! `wal_autocheckpoint = 0` and this thread runs a `PASSIVE` checkpoint (which never
//! blocks writers or readers) every second on a connection of its own.
//!
//! Under sustained writes a passive checkpoint never finds the moment to start the WAL
//! over, and the file grows without bound (36 GB firing a million journey timers). Once
//! it passes [`WAL_LIMIT`], each tick also tries a `TRUNCATE` checkpoint that does not
//! wait: when no writer holds the lock and no reader an older snapshot at that instant,
//! it copies the few frames the passive pass left and empties the file; otherwise it
//! gives up at once (a waiting truncation would hold every new writer: 100–300 ms of
//! ingest latency under load).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::sqlite::SqliteOptions;

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_secs(1);

/// The WAL size above which the checkpoint also truncates it.
pub const WAL_LIMIT: u64 = 512 * 1024 * 1024;

/// The background checkpointer; stops when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts checkpointing the database of `opts`.
    pub fn start(opts: &SqliteOptions) -> Checkpointer {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, opts) = (stop.clone(), opts.clone());
        let spawned = std::thread::Builder::new()
            .name("flywheel-checkpoint".into())
            .spawn(move || {
                let conn = match crate::sqlite::open(&opts) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "checkpointer cannot open the database");
                        return;
                    }
                };
                let mut conn = conn;
                // A truncating checkpoint holds new writers while it waits: it must not
                // wait at all. Busy, it gives up and tries again on the next tick.
                if let Err(e) = conn.batch("PRAGMA busy_timeout = 0") {
                    tracing::warn!(error = %e, "checkpointer busy timeout not set");
                }
                let wal = {
                    let mut p = opts.path.clone().into_os_string();
                    p.push("-wal");
                    std::path::PathBuf::from(p)
                };
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(INTERVAL);
                    if let Err(e) = conn.batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_LIMIT) {
                        // BUSY is the expected answer under load: not worth a warning.
                        let _ = conn.batch("PRAGMA wal_checkpoint(TRUNCATE)");
                    }
                }
                // A last full pass so a clean shutdown leaves a small WAL.
                let _ = conn.batch("PRAGMA wal_checkpoint(TRUNCATE)");
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the checkpointer");
        }
        Checkpointer { stop }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
