//! The embedded backend: one SQLite file in WAL mode under `--data-dir`.
//!
//! Writers serialise through `BEGIN IMMEDIATE` (with a busy timeout); readers run
//! concurrently on their own connections, as WAL allows.

use crate::conn::{Internal, Sql};
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
    /// How large the WAL may grow before it is truncated ([`crate::WalLimit`]).
    pub wal_limit: crate::WalLimit,
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
    // Checkpoints run on a thread of their own (`checkpoint.rs`); whenever the WAL starts
    // over, SQLite trims the file back to the size at which that thread would truncate it.
    let limit = opts.wal_limit.trigger(0);
    let pragmas = format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0; \
         PRAGMA journal_size_limit = {limit}; PRAGMA mmap_size = 268435456;"
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

/// The position, in `INSERT INTO t (a, b, c)`, of the column named by `RETURNING col`.
fn returned_column(head: &str, returning: &str) -> Option<usize> {
    let col = returning.strip_prefix("RETURNING ")?.trim();
    let cols = head.split_once('(')?.1.trim_end().strip_suffix(')')?;
    cols.split(',').position(|c| c.trim() == col)
}

/// A bound value as it would read back.
fn param_cell(p: &Param<'_>) -> Cell {
    match p {
        Param::I64(v) | Param::OptI64(Some(v)) => Cell::I64(*v),
        Param::Text(v) | Param::OptText(Some(v)) => Cell::Text((*v).to_string()),
        Param::OptI64(None) | Param::OptText(None) => Cell::Null,
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

    fn execute_sql(&mut self, _: Internal, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn query_sql(&mut self, _: Internal, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut out = Vec::new();
        run_into(&mut stmt, params, &mut out)?;
        Ok(out)
    }

    fn batch_sql(&mut self, _: Internal, sql: &str) -> Result<()> {
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

    fn insert_rows_sql(
        &mut self,
        _: Internal,
        head: &str,
        cols: usize,
        tail: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>> {
        let values = format!("VALUES ({})", crate::conn::placeholders(1, cols));
        // `ON CONFLICT (…) DO NOTHING [RETURNING col]` becomes `INSERT OR IGNORE` (no statement
        // journal per row; Flywheel's rows are validated: no NULLs into NOT NULL columns, no
        // CHECKs), and `RETURNING` of an inserted column is answered from the bound value when
        // the row went in: SQLite builds and drops a temporary B-tree per statement for
        // RETURNING, which cost more than the insert itself (bench/ingest, issue 3 notes).
        let ignore = head
            .strip_prefix("INSERT INTO ")
            .zip(tail.split_once(" DO NOTHING"));
        if let Some((table, (_, rest))) = ignore.filter(|(_, (c, _))| c.starts_with("ON CONFLICT")) {
            let returned = match rest.trim() {
                "" => None,
                r => Some(
                    returned_column(head, r)
                        .ok_or_else(|| Error::Database(format!("cannot answer {r:?} without RETURNING")))?,
                ),
            };
            let mut stmt = self
                .conn
                .prepare_cached(&format!("INSERT OR IGNORE INTO {table} {values}"))?;
            let mut out = Vec::new();
            for row in params.chunks(cols) {
                let inserted = stmt.execute(rusqlite::params_from_iter(row.iter()))? == 1;
                if let (true, Some(i)) = (inserted, returned) {
                    out.push(Row(vec![param_cell(&row[i])]));
                }
            }
            return Ok(out);
        }
        let mut stmt = self.conn.prepare_cached(&format!("{head} {values} {tail}"))?;
        let mut out = Vec::new();
        for row in params.chunks(cols) {
            run_into(&mut stmt, row, &mut out)?;
        }
        Ok(out)
    }

    fn select_in_sql(&mut self, _: Internal, select: &str, column: &str, keys: &[&str]) -> Result<Vec<Row>> {
        let sql = format!("{select} WHERE {column} = $1");
        let mut out = Vec::new();
        for k in keys {
            out.extend(self.query(&sql, &[Param::Text(k)])?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_returned_column() {
        let head = "INSERT INTO events (message_id, kind, name)";
        assert_eq!(returned_column(head, "RETURNING message_id"), Some(0));
        assert_eq!(returned_column(head, "RETURNING name"), Some(2));
        assert_eq!(returned_column(head, "RETURNING seq"), None);
    }

    #[test]
    fn reports_only_rows_that_went_in() {
        let dir = std::env::temp_dir().join(format!("flywheel-sqlite-unit-{}", std::process::id()));
        let mut c = open(&SqliteOptions {
            path: dir.join("t.db"),
            synchronous: Synchronous::Normal,
            wal_limit: crate::WalLimit::default(),
        })
        .unwrap();
        c.batch("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL); DELETE FROM t")
            .unwrap();
        let params = [Param::Text("a"), Param::I64(1), Param::Text("b"), Param::I64(2)];
        let rows = c
            .insert_rows(
                "INSERT INTO t (k, v)",
                2,
                "ON CONFLICT (k) DO NOTHING RETURNING k",
                &params,
            )
            .unwrap();
        assert_eq!(rows.len(), 2);
        let again = [Param::Text("b"), Param::I64(3), Param::Text("c"), Param::I64(4)];
        let rows = c
            .insert_rows(
                "INSERT INTO t (k, v)",
                2,
                "ON CONFLICT (k) DO NOTHING RETURNING k",
                &again,
            )
            .unwrap();
        assert_eq!(rows, vec![Row(vec![Cell::Text("c".into())])]);
        assert_eq!(
            c.query("SELECT v FROM t WHERE k = $1", &[Param::Text("b")])
                .unwrap()[0],
            Row(vec![Cell::I64(2)])
        );
    }
}
