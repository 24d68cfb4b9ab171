//! The scale-out backend: PostgreSQL through the synchronous `postgres` client.
//!
//! Writers serialise identity resolution with a transaction-scoped advisory lock,
//! so any number of processes may ingest into one database. A `schema=NAME` query
//! parameter on the URL (ours, removed before connecting) selects and creates a
//! schema, which is how tests isolate their runs in one database.

use crate::conn::{Internal, Sql};
use std::collections::HashMap;

use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Statement};

use crate::conn::{Cell, Conn, Dialect, Param, Row};
use crate::{Error, Result};

/// Advisory-lock key taken by every write transaction ("flywheel" in ASCII), for the
/// default schema.
const WRITE_LOCK_KEY: i64 = 0x666c_7977_6865_656c;

/// The writers' lock key of a store: advisory locks belong to the whole database, so
/// stores in other schemas of it (another shop, a test run) take a key of their own
/// and do not wait for each other's writes.
fn write_lock_key(schema: Option<&str>) -> i64 {
    match schema {
        None => WRITE_LOCK_KEY,
        Some(name) => {
            // FNV-1a: stable across processes and versions.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in name.as_bytes() {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            WRITE_LOCK_KEY ^ i64::from_ne_bytes(h.to_ne_bytes())
        }
    }
}

/// Parsed PostgreSQL settings.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The connection URL without our own parameters.
    pub url: String,
    /// Schema to use (created if missing), from `schema=NAME`.
    pub schema: Option<String>,
}

impl PgOptions {
    /// Reads a `postgres://` URL, taking out `schema=NAME`.
    pub fn parse(url: &str) -> Result<PgOptions> {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, q),
            None => (url, ""),
        };
        let mut schema = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("schema", v)) => {
                    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Err(Error::Open(format!(
                            "schema {v:?}: use letters, digits and underscores only"
                        )));
                    }
                    schema = Some(v.to_string());
                }
                _ => rest.push(pair),
            }
        }
        let url = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok(PgOptions { url, schema })
    }
}

/// Opens a connection.
pub fn open(opts: &PgOptions) -> Result<Box<dyn Conn>> {
    Ok(Box::new(PgConn {
        client: connect(opts)?,
        statements: HashMap::new(),
        opts: opts.clone(),
        txid: None,
    }))
}

fn connect(opts: &PgOptions) -> Result<Client> {
    let mut client = Client::connect(&opts.url, NoTls).map_err(|e| Error::Open(format!("postgres: {e}")))?;
    if let Some(schema) = &opts.schema {
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
            ))
            .map_err(|e| Error::Open(format!("postgres schema {schema}: {e}")))?;
    }
    Ok(client)
}

/// A PostgreSQL connection with a prepared-statement cache.
pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
    opts: PgOptions,
    /// The id of the write transaction in progress, to learn whether it committed when
    /// the answer to its `COMMIT` is lost with the connection.
    txid: Option<i64>,
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        if e.is_closed() {
            Error::Connection(e.to_string())
        } else {
            match e.as_db_error() {
                Some(db) => Error::Database(format!("{}: {}", db.code().code(), db.message())),
                None => Error::Database(e.to_string()),
            }
        }
    }
}

impl PgConn {
    /// Whether transaction `txid`, whose `COMMIT` failed, committed after all (the
    /// connection broke after the server committed, before its answer arrived). Asked on
    /// a new connection, which replaces this one; an unanswerable question counts as no.
    fn committed_after_all(&mut self, txid: i64) -> bool {
        let Ok(mut fresh) = connect(&self.opts) else {
            return false;
        };
        let mut status = None;
        // A terminated backend may still be finishing its transaction: ask a few times.
        for _ in 0..50 {
            status = fresh
                .query_one("SELECT txid_status($1)::text", &[&txid])
                .ok()
                .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten());
            if status.as_deref() != Some("in progress") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.client = fresh;
        self.statements.clear();
        status.as_deref() == Some("committed")
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        if self.statements.len() > 512 {
            self.statements.clear();
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// A parameter bound as the type the server inferred for it: integers go to `SMALLINT`
/// and `INTEGER` columns (`events.system_write`) as the narrower type the driver needs.
fn boxed<'a>(p: &Param<'a>, ty: Option<&Type>) -> Result<Box<dyn ToSql + Sync + 'a>> {
    let narrow = |v: i64| -> Result<Box<dyn ToSql + Sync + 'a>> {
        let out_of_range = |_| Error::Database(format!("{v} does not fit a {ty:?} parameter"));
        Ok(match ty {
            Some(&Type::INT2) => Box::new(i16::try_from(v).map_err(out_of_range)?),
            Some(&Type::INT4) => Box::new(i32::try_from(v).map_err(out_of_range)?),
            _ => Box::new(v),
        })
    };
    Ok(match p {
        Param::I64(v) => narrow(*v)?,
        Param::OptI64(Some(v)) => narrow(*v)?,
        Param::OptI64(None) => Box::new(None::<i64>),
        Param::Text(v) => Box::new(*v),
        Param::OptText(v) => Box::new(*v),
    })
}

/// `params` bound for `stmt`.
fn bind<'a>(stmt: &Statement, params: &[Param<'a>]) -> Result<Vec<Box<dyn ToSql + Sync + 'a>>> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| boxed(p, stmt.params().get(i)))
        .collect()
}

fn read_row(row: &postgres::Row) -> Result<Row> {
    let mut cells = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let c = match *col.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Cell::I64),
            Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(|v| Cell::I64(v.into())),
            Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(|v| Cell::I64(v.into())),
            Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(|v| Cell::I64(v.into())),
            _ => row.try_get::<_, Option<String>>(i)?.map(Cell::Text),
        };
        cells.push(c.unwrap_or(Cell::Null));
    }
    Ok(Row(cells))
}

impl Conn for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute_sql(&mut self, _: Internal, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        let stmt = self.statement(sql)?;
        let values = bind(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
        Ok(self.client.execute(&stmt, &refs)?)
    }

    fn query_sql(&mut self, _: Internal, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let stmt = self.statement(sql)?;
        let values = bind(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
        self.client.query(&stmt, &refs)?.iter().map(read_row).collect()
    }

    fn batch_sql(&mut self, _: Internal, sql: &str) -> Result<()> {
        Ok(self.client.batch_execute(sql)?)
    }

    fn begin_write(&mut self) -> Result<()> {
        self.txid = None;
        let answers = self.client.simple_query(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({}), txid_current()",
            write_lock_key(self.opts.schema.as_deref())
        ))?;
        self.txid = answers.iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(1).and_then(|t| t.parse().ok()),
            _ => None,
        });
        Ok(())
    }

    /// Commits; when the connection breaks on the way, a write transaction that did
    /// commit is reported committed, so its caller does not redo (or report failed) work
    /// that is stored.
    fn commit(&mut self) -> Result<()> {
        let txid = self.txid.take();
        match self.batch("COMMIT") {
            Ok(()) => Ok(()),
            Err(e) => match txid {
                Some(id) if self.committed_after_all(id) => {
                    tracing::warn!(error = %e, "the connection broke on COMMIT, after the transaction committed");
                    Ok(())
                }
                _ => Err(e),
            },
        }
    }

    fn begin_read(&mut self) -> Result<()> {
        self.txid = None;
        self.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }

    fn rollback(&mut self) {
        self.txid = None;
        let _ = self.batch("ROLLBACK");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_schema_has_its_own_write_lock() {
        assert_eq!(write_lock_key(None), WRITE_LOCK_KEY);
        assert_ne!(write_lock_key(Some("shop_a")), write_lock_key(Some("shop_b")));
        assert_eq!(write_lock_key(Some("shop_a")), write_lock_key(Some("shop_a")));
    }

    #[test]
    fn takes_schema_out_of_url() {
        let o = PgOptions::parse("postgres://u@h/db?schema=t_1&sslmode=disable").unwrap();
        assert_eq!(o.url, "postgres://u@h/db?sslmode=disable");
        assert_eq!(o.schema.as_deref(), Some("t_1"));
        let o = PgOptions::parse("postgres://u@h/db").unwrap();
        assert_eq!(o.schema, None);
        assert!(PgOptions::parse("postgres://h/db?schema=a;drop").is_err());
    }
}
