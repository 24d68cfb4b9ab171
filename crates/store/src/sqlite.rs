//! The embedded backend: one SQLite file in WAL mode under `--data-dir`.
//!
//! Writers serialise through `BEGIN IMMEDIATE` (with a busy timeout); readers run
//! concurrently on their own connections, as WAL allows.

use std::path::{Path, PathBuf};

use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::conn::{Cell, Conn, Dialect, Param, Row};
use crate::identity_cache::IdentityCache;
use crate::{Error, Result};

/// How hard SQLite syncs to disk on commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `NORMAL`: in WAL mode a commit survives a crash or SIGKILL of the process; the
    /// last commits may be lost on power failure. The default.
    #[default]
    Normal,
    /// `FULL`: every commit is fsynced; also survives power failure, slower.
    Full,
}

/// Options of the SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file.
    pub path: PathBuf,
    /// Sync level.
    pub synchronous: Synchronous,
}

/// How often opening retries a BUSY answer (about 10 s of backoff in all).
const OPEN_RETRIES: u32 = 60;

/// Opens a connection with Flywheel's pragmas, creating the file and its directory.
pub fn open(opts: &SqliteOptions) -> Result<Box<dyn Conn>> {
    if let Some(dir) = opts.path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Open(format!("{}: {e}", dir.display())))?;
        }
    }
    let conn = rusqlite::Connection::open(&opts.path).map_err(|e| open_error(&opts.path, e))?;
    // Before any pragma: switching a new file to WAL takes an exclusive lock, and a
    // connection opening at the same moment (another process, the checkpointer) must wait.
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| open_error(&opts.path, e))?;
    let sync = match opts.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    let pragmas = format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0; \
         PRAGMA mmap_size = 268435456;"
    );
    // Where waiting could deadlock (a new file being switched to WAL by another
    // connection) SQLite answers BUSY without calling the busy handler; retry then.
    let mut attempt = 0u32;
    loop {
        match conn.execute_batch(&pragmas) {
            Ok(()) => break,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && attempt < OPEN_RETRIES =>
            {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(5 * u64::from(attempt)));
            }
            Err(e) => return Err(open_error(&opts.path, e)),
        }
    }
    conn.set_prepared_statement_cache_capacity(256);
    Ok(Box::new(SqliteConn {
        conn,
        cache: IdentityCache::default(),
        data_version: None,
    }))
}

fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::Open(format!("sqlite {}: {e}", path.display()))
}

/// A SQLite connection, with the identity cache used when it is the writer.
pub struct SqliteConn {
    conn: rusqlite::Connection,
    cache: IdentityCache,
    /// `PRAGMA data_version` at this connection's last write transaction.
    data_version: Option<i64>,
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::I64(v) => ToSqlOutput::from(*v),
            Param::OptI64(Some(v)) => ToSqlOutput::from(*v),
            Param::Text(v) => ToSqlOutput::from(*v),
            Param::OptText(Some(v)) => ToSqlOutput::from(*v),
            Param::OptI64(None) | Param::OptText(None) => ToSqlOutput::from(rusqlite::types::Null),
        })
    }
}

fn cell(v: ValueRef<'_>) -> Cell {
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::I64(i),
        ValueRef::Real(f) => Cell::I64(f as i64),
        ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

/// Runs a prepared statement, appending its result rows to `out`.
fn run_into(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: &[Param<'_>],
    out: &mut Vec<Row>,
) -> Result<()> {
    let n = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    while let Some(r) = rows.next()? {
        let mut cells = Vec::with_capacity(n);
        for i in 0..n {
            cells.push(cell(r.get_ref(i)?));
        }
        out.push(Row(cells));
    }
    Ok(())
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Database(e.to_string())
    }
}

impl Conn for SqliteConn {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut out = Vec::new();
        run_into(&mut stmt, params, &mut out)?;
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn begin_write(&mut self) -> Result<()> {
        self.batch("BEGIN IMMEDIATE")?;
        // Another connection committed since our last write: what we cached may be stale.
        let version: i64 = self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if self.data_version != Some(version) {
            self.cache.clear();
            self.data_version = Some(version);
        }
        Ok(())
    }

    fn rollback(&mut self) {
        self.cache.clear();
        let _ = self.batch("ROLLBACK");
    }

    fn identity_cache(&mut self) -> Option<&mut IdentityCache> {
        Some(&mut self.cache)
    }

    fn begin_read(&mut self) -> Result<()> {
        self.batch("BEGIN DEFERRED")
    }

    fn insert_rows(&mut self, head: &str, cols: usize, tail: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        // `ON CONFLICT (…) DO NOTHING` makes SQLite keep a statement journal per row (the
        // statement "may abort"); `INSERT OR IGNORE` does the same for Flywheel's rows
        // (validated: no NULLs into NOT NULL columns, no CHECKs) without one.
        let sql = match (head.strip_prefix("INSERT INTO "), tail.split_once(" DO NOTHING")) {
            (Some(table), Some((conflict, rest))) if conflict.starts_with("ON CONFLICT") => format!(
                "INSERT OR IGNORE INTO {table} VALUES ({}) {rest}",
                crate::conn::placeholders(1, cols)
            ),
            _ => format!("{head} VALUES ({}) {tail}", crate::conn::placeholders(1, cols)),
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut out = Vec::new();
        for row in params.chunks(cols) {
            run_into(&mut stmt, row, &mut out)?;
        }
        Ok(out)
    }

    fn select_in(&mut self, select: &str, column: &str, keys: &[&str]) -> Result<Vec<Row>> {
        let sql = format!("{select} WHERE {column} = $1");
        let mut out = Vec::new();
        for k in keys {
            out.extend(self.query(&sql, &[Param::Text(k)])?);
        }
        Ok(out)
    }
}
