//! WAL checkpoints off the write path (SQLite).
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, on
//! the writer's thread, and ends with an fsync of the database file: every ingest
//! batch queued behind it waits on the disk. Instead, connections open with
//! `wal_autocheckpoint = 0` and this thread runs a `PASSIVE` checkpoint (which never
//! blocks writers or readers) every second on a connection of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::sqlite::SqliteOptions;

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_secs(1);

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
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(INTERVAL);
                    if let Err(e) = conn.batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
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
