//! WAL checkpoints off the write path, and the bound on the WAL's size (SQLite).
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold, on
//! the writer's thread, and ends with an fsync of the database file: every ingest
//! batch queued behind it waits on the disk. Instead, connections open with
//! `wal_autocheckpoint = 0` and this thread runs a `PASSIVE` checkpoint (which never
//! blocks writers or readers) every second on a connection of its own.
//!
//! A passive checkpoint copies pages back into the database but never lets the WAL
//! start over while a writer keeps appending: under sustained ingest the writer is
//! always ahead of it, so the file only grew (4.1 GB beside a 435 MB database after
//! the default demo). So the thread also measures the WAL file ten times a second, and once it passes the
//! [`WalLimit`]'s trigger runs a `TRUNCATE` checkpoint on the *writer's* connection,
//! taken from the writer pool: no write transaction of this process is open then, the
//! passive pass has already copied nearly everything, and the checkpoint waits for
//! readers at most [`TRUNCATE_BUSY`] (retried after a backoff when a reader is still in
//! an older snapshot). `journal_size_limit` (the trigger) also trims the file whenever
//! SQLite restarts the WAL by itself. [`Checkpointer::close`] stops the thread; the
//! store then truncates the WAL once more so a graceful stop leaves none.

use crate::conn::Sql;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::conn::Conn;
use crate::pool::Pool;
use crate::sqlite::SqliteOptions;
use crate::{Error, Result, Store};

/// How often the WAL is checkpointed passively.
const INTERVAL: Duration = Duration::from_secs(1);

/// How often the WAL file is measured: at full ingest speed it grows by about 90 MB a
/// second, so measuring only once a second let it overshoot the trigger by that much.
const MEASURE: Duration = Duration::from_millis(100);

/// How long a truncating checkpoint under load waits for writers and readers before it
/// gives up (writers of this process wait for it meanwhile).
pub const TRUNCATE_BUSY: Duration = Duration::from_millis(250);

/// After a truncation a reader kept from finishing, the wait before the next try: it
/// doubles up to [`MAX_BACKOFF`] while readers keep it from finishing (once a second
/// while the WAL is over its whole bound), so a long reader costs writers at most
/// [`TRUNCATE_BUSY`] every few seconds.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait between two tries of a truncation readers keep from finishing.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// The writer connections' usual busy timeout, restored after a truncating checkpoint.
pub const WRITER_BUSY: Duration = Duration::from_secs(30);

/// How large the SQLite WAL may grow.
///
/// The bound is [`WalLimit::bytes`] or the database file's size, whichever is larger;
/// the checkpointer truncates the WAL once it passes a quarter of the bound, so a WAL
/// that keeps growing while a reader delays the truncation stays inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalLimit {
    /// The bound in bytes before the database's own size is considered (default 1 GiB).
    pub bytes: u64,
}

impl WalLimit {
    /// The default bound: 1 GiB.
    pub const DEFAULT_BYTES: u64 = 1 << 30;

    /// The bound for a database file of `db_bytes`.
    pub fn bound(self, db_bytes: u64) -> u64 {
        self.bytes.max(db_bytes)
    }

    /// The WAL size past which the checkpointer truncates, for a database of `db_bytes`.
    pub fn trigger(self, db_bytes: u64) -> u64 {
        self.bound(db_bytes) / 4
    }
}

impl Default for WalLimit {
    fn default() -> Self {
        WalLimit {
            bytes: Self::DEFAULT_BYTES,
        }
    }
}

/// The `-wal` file beside the database `db`.
pub fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push("-wal");
    PathBuf::from(name)
}

/// The length of a file, 0 when it does not exist.
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// What a truncating checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    /// Whether a writer or reader kept it from finishing (the WAL was not truncated).
    pub busy: bool,
    /// Frames in the WAL when it ran.
    pub frames: i64,
}

/// Runs `PRAGMA wal_checkpoint(TRUNCATE)` on `conn`, waiting at most `busy` for other
/// connections, then restores the usual busy timeout.
pub fn truncate(conn: &mut dyn Conn, busy: Duration) -> Result<Truncation> {
    conn.batch(&format!("PRAGMA busy_timeout = {}", busy.as_millis()))?;
    let out = conn.query("PRAGMA wal_checkpoint(TRUNCATE)", &[]);
    conn.batch(&format!("PRAGMA busy_timeout = {}", WRITER_BUSY.as_millis()))?;
    let row = out?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Database("wal_checkpoint answered no row".into()))?;
    Ok(Truncation {
        busy: row.i64(0)? != 0,
        frames: row.i64(1)?,
    })
}

impl Store {
    /// Checkpoints the SQLite WAL into the database and truncates it now, waiting up to a
    /// minute for readers (benchmarks between phases; the checkpointer does it on its own
    /// in a running server). Nothing to do on PostgreSQL.
    pub async fn checkpoint_wal(&self) -> Result<Truncation> {
        if self.wal_bytes().is_none() {
            return Ok(Truncation {
                busy: false,
                frames: 0,
            });
        }
        self.write(|c| truncate(c, Duration::from_secs(60))).await
    }

    /// Writes a consistent copy of the SQLite database to `path` (`VACUUM INTO`), e.g. a
    /// benchmark's snapshot to start later phases from. PostgreSQL has its own tools
    /// (`pg_dump`): refused there.
    pub async fn snapshot_into(&self, path: &Path) -> Result<()> {
        if self.wal_bytes().is_none() {
            return Err(Error::Database("a snapshot copy needs an SQLite store".into()));
        }
        let target = path.display().to_string().replace('\'', "''");
        self.read_with(move |c| c.batch(&format!("VACUUM INTO '{target}'")))
            .await
    }

    /// Truncates a WAL that a previous run left past the trigger (a crash, a kill, or
    /// a version that did not bound it), before anything else writes.
    pub(crate) async fn truncate_left_wal(&self, o: &SqliteOptions) -> Result<()> {
        let wal = self.wal_bytes().unwrap_or(0);
        if wal <= o.wal_limit.trigger(file_len(&o.path)) {
            return Ok(());
        }
        tracing::info!(wal_bytes = wal, "checkpointing the WAL left by the previous run");
        let t = self.write(|c| truncate(c, WRITER_BUSY)).await?;
        if t.busy {
            tracing::warn!(
                wal_bytes = wal,
                "the WAL left by the previous run could not be truncated: another process is reading it"
            );
        }
        Ok(())
    }

    /// Where SQLite's WAL and its checkpointer stand; `None` on PostgreSQL.
    pub fn wal_health(&self) -> Option<WalHealth> {
        self.checkpointer_handle.as_ref().map(|c| c.health())
    }

    /// The size of SQLite's WAL file in bytes (0 when there is none); `None` on PostgreSQL.
    pub fn wal_bytes(&self) -> Option<u64> {
        self.sqlite_path.as_deref().map(|p| file_len(&wal_path(p)))
    }

    /// Closes the store gracefully: stops the background checkpointer and (SQLite)
    /// checkpoints the whole WAL into the database and truncates it to 0 bytes, waiting
    /// for readers still running. Writes after this still work, but are left in the WAL
    /// until the next start. Call it once the server has stopped; a no-op on PostgreSQL.
    pub async fn close(&self) -> Result<()> {
        let Some(checkpointer) = self.checkpointer_handle.clone() else {
            return Ok(());
        };
        let before = self.wal_bytes().unwrap_or(0);
        tokio::task::spawn_blocking(move || checkpointer.close())
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let t = self.write(|c| truncate(c, WRITER_BUSY)).await?;
        if t.busy {
            tracing::warn!(
                wal_bytes = self.wal_bytes().unwrap_or(0),
                "the WAL was not truncated at close: a reader was still running"
            );
        } else {
            tracing::info!(wal_bytes_before = before, "WAL checkpointed and truncated");
        }
        Ok(())
    }
}

/// The background checkpointer; stops when closed or dropped.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    db: PathBuf,
    limit: WalLimit,
}

/// Where the SQLite WAL stands, for the process's health (`/metrics`, `/readyz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalHealth {
    /// The WAL file's size in bytes.
    pub bytes: u64,
    /// The size past which the checkpointer truncates it.
    pub trigger: u64,
    /// The size it must never pass ([`WalLimit::bound`]).
    pub bound: u64,
    /// Whether the checkpointer thread still runs (false once closed, or if it could
    /// not start or open the database).
    pub checkpointer_running: bool,
}

impl Checkpointer {
    /// Starts checkpointing the database of `opts`; truncations use a connection of `writer`.
    pub fn start(opts: &SqliteOptions, writer: Weak<Pool>) -> Checkpointer {
        let stop = Arc::new(AtomicBool::new(false));
        let (db, limit) = (opts.path.clone(), opts.wal_limit);
        let (flag, opts) = (stop.clone(), opts.clone());
        let spawned = std::thread::Builder::new()
            .name("flywheel-checkpoint".into())
            .spawn(move || run(&opts, &writer, &flag));
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the checkpointer");
                None
            }
        };
        Checkpointer {
            stop,
            thread: Mutex::new(thread),
            db,
            limit,
        }
    }

    /// Where the WAL stands now.
    pub fn health(&self) -> WalHealth {
        let db = file_len(&self.db);
        let running = self
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|t| !t.is_finished());
        WalHealth {
            bytes: file_len(&wal_path(&self.db)),
            trigger: self.limit.trigger(db),
            bound: self.limit.bound(db),
            checkpointer_running: running,
        }
    }

    /// Stops the thread and waits for its current round to end.
    pub fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.get_mut().ok().and_then(|t| t.as_ref()) {
            t.thread().unpark();
        }
    }
}

fn run(opts: &SqliteOptions, writer: &Weak<Pool>, stop: &AtomicBool) {
    let mut conn = match crate::sqlite::open(opts) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "checkpointer cannot open the database");
            return;
        }
    };
    let wal = wal_path(&opts.path);
    let mut over_bound_warned = false;
    let mut last_passive = std::time::Instant::now();
    // The last truncation readers kept from finishing, and the wait before the next.
    let mut last_busy: Option<(std::time::Instant, Duration)> = None;
    loop {
        std::thread::park_timeout(MEASURE);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (size, db) = (file_len(&wal), file_len(&opts.path));
        let over = size > opts.wal_limit.trigger(db);
        if last_passive.elapsed() >= INTERVAL || (over && last_busy.is_none()) {
            last_passive = std::time::Instant::now();
            if let Err(e) = conn.batch("PRAGMA wal_checkpoint(PASSIVE)") {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
        if !over {
            over_bound_warned = false;
            last_busy = None;
            continue;
        }
        let over_bound = size > opts.wal_limit.bound(db);
        if let Some((at, wait)) = last_busy {
            let wait = if over_bound { wait.min(FIRST_BACKOFF) } else { wait };
            if at.elapsed() < wait {
                continue;
            }
        }
        let Some(pool) = writer.upgrade() else { return };
        let done = pool.with(|c| truncate(c, TRUNCATE_BUSY));
        last_busy = match &done {
            Ok(t) if t.busy => Some((
                std::time::Instant::now(),
                last_busy.map_or(FIRST_BACKOFF, |(_, w)| (w * 2).min(MAX_BACKOFF)),
            )),
            _ => None,
        };
        match done {
            Ok(t) if !t.busy => {
                tracing::debug!(wal_bytes = size, frames = t.frames, "WAL truncated");
            }
            Ok(_) if over_bound && !over_bound_warned => {
                over_bound_warned = true;
                tracing::warn!(
                    wal_bytes = size,
                    bound_bytes = opts.wal_limit.bound(db),
                    "the WAL is over its bound: a reader has held one snapshot for longer than a checkpoint can wait; retrying"
                );
            }
            Ok(_) => tracing::debug!(wal_bytes = size, "WAL truncation waited for a reader; retrying"),
            Err(e) => tracing::warn!(error = %e, "truncating the WAL failed"),
        }
    }
}
