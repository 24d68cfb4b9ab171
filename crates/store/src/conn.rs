//! The one seam between the store's SQL and its two drivers.
//!
//! Every statement in this crate is written once, in the dialect shared by SQLite
//! and PostgreSQL: `$1, $2, ...` placeholders numbered in order of first use (SQLite
//! binds them positionally in that order), `ON CONFLICT`, `RETURNING`, row-value
//! comparison and `CASE` instead of `min()/LEAST()`. Values cross the seam as
//! [`Param`] and come back as [`Cell`]s, so the write and read logic above this
//! module has no idea which database it talks to.

use crate::{Error, Result};

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Param<'a> {
    /// A 64-bit integer.
    I64(i64),
    /// A nullable 64-bit integer.
    OptI64(Option<i64>),
    /// Text.
    Text(&'a str),
    /// Nullable text.
    OptText(Option<&'a str>),
}

/// A value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// An integer.
    I64(i64),
    /// Text.
    Text(String),
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Cell>);

impl Row {
    /// Integer column `i`.
    pub fn i64(&self, i: usize) -> Result<i64> {
        match self.0.get(i) {
            Some(Cell::I64(v)) => Ok(*v),
            other => Err(Error::Corrupt(format!(
                "column {i}: expected integer, found {other:?}"
            ))),
        }
    }

    /// Nullable integer column `i`.
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>> {
        match self.0.get(i) {
            Some(Cell::Null) => Ok(None),
            _ => self.i64(i).map(Some),
        }
    }

    /// Text column `i`.
    pub fn text(&self, i: usize) -> Result<String> {
        match self.0.get(i) {
            Some(Cell::Text(v)) => Ok(v.clone()),
            other => Err(Error::Corrupt(format!(
                "column {i}: expected text, found {other:?}"
            ))),
        }
    }

    /// Nullable text column `i`.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.0.get(i) {
            Some(Cell::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
}

/// Which database a connection speaks, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3 (bundled).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Proof that a call comes from inside the store: only this crate can make one, so only
/// this crate can send SQL through a [`Conn`] (every other crate reaches the database
/// through the store's typed functions).
///
/// ```compile_fail
/// // Outside the store no one can make the proof…
/// let _ = flywheel_store::conn::Internal(());
/// ```
///
/// ```compile_fail
/// // …nor call the SQL methods (they belong to a trait private to the store).
/// fn raw(c: &mut dyn flywheel_store::conn::Conn) {
///     let _ = c.query("SELECT 1", &[]);
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Internal(());

/// A synchronous database connection. Other crates hold one (`Store::read_with`,
/// `Store::write_with`) only to hand it to the store's typed functions: its SQL methods
/// need an [`Internal`] proof, and the store calls them through the crate-private
/// [`Sql`] trait.
pub trait Conn: Send {
    /// Which database this is.
    fn dialect(&self) -> Dialect;
    /// Runs one statement, returning the number of rows changed.
    #[doc(hidden)]
    fn execute_sql(&mut self, _: Internal, sql: &str, params: &[Param<'_>]) -> Result<u64>;
    /// Runs one query, returning all rows.
    #[doc(hidden)]
    fn query_sql(&mut self, _: Internal, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>>;
    /// Runs statements without parameters (migrations, `BEGIN`, ...).
    #[doc(hidden)]
    fn batch_sql(&mut self, _: Internal, sql: &str) -> Result<()>;
    /// Starts a write transaction that serialises with every other writer.
    fn begin_write(&mut self) -> Result<()>;
    /// Starts a read-only view.
    fn begin_read(&mut self) -> Result<()> {
        self.batch_sql(INTERNAL, "BEGIN")
    }
    /// Commits.
    fn commit(&mut self) -> Result<()> {
        self.batch_sql(INTERNAL, "COMMIT")
    }
    /// The writer's identity cache, where the backend keeps one (see [`crate::identity_cache`]).
    fn identity_cache(&mut self) -> Option<&mut crate::identity_cache::IdentityCache> {
        None
    }

    /// Rolls back (errors are ignored: the connection is discarded when it is broken).
    fn rollback(&mut self) {
        let _ = self.batch_sql(INTERNAL, "ROLLBACK");
    }

    /// Inserts rows of `cols` values each (`params` holds them row after row):
    /// `{head} VALUES (…) {tail}`. Returns the rows `tail`'s `RETURNING` yields.
    ///
    /// The default sends multi-row statements (few round trips: right for a server);
    /// SQLite overrides it with one cached single-row statement (no parsing per call).
    #[doc(hidden)]
    fn insert_rows_sql(
        &mut self,
        _: Internal,
        head: &str,
        cols: usize,
        tail: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        for chunk in params.chunks(cols * CHUNK_ROWS) {
            let sql = format!("{head} VALUES {} {tail}", values_list(chunk.len() / cols, cols));
            out.extend(self.query_sql(INTERNAL, &sql, chunk)?);
        }
        Ok(out)
    }

    /// Rows of `{select} WHERE {column} IN (keys…)`; the default sends `IN` lists,
    /// SQLite overrides it with one cached `= $1` statement per key.
    #[doc(hidden)]
    fn select_in_sql(&mut self, _: Internal, select: &str, column: &str, keys: &[&str]) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(CHUNK_ROWS) {
            let sql = format!("{select} WHERE {column} IN ({})", placeholders(1, chunk.len()));
            let params: Vec<Param> = chunk.iter().map(|k| Param::Text(k)).collect();
            out.extend(self.query_sql(INTERNAL, &sql, &params)?);
        }
        Ok(out)
    }
}

/// The store's own proof (see [`Internal`]).
pub(crate) const INTERNAL: Internal = Internal(());

/// The SQL methods of a [`Conn`], callable only inside the store.
pub(crate) trait Sql {
    /// Runs one statement, returning the number of rows changed.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64>;
    /// Runs one query, returning all rows.
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>>;
    /// Runs statements without parameters.
    fn batch(&mut self, sql: &str) -> Result<()>;
    /// See [`Conn::insert_rows_sql`].
    fn insert_rows(&mut self, head: &str, cols: usize, tail: &str, params: &[Param<'_>]) -> Result<Vec<Row>>;
    /// See [`Conn::select_in_sql`].
    fn select_in(&mut self, select: &str, column: &str, keys: &[&str]) -> Result<Vec<Row>>;
}

impl<C: Conn + ?Sized> Sql for C {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        self.execute_sql(INTERNAL, sql, params)
    }

    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.query_sql(INTERNAL, sql, params)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        self.batch_sql(INTERNAL, sql)
    }

    fn insert_rows(&mut self, head: &str, cols: usize, tail: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        self.insert_rows_sql(INTERNAL, head, cols, tail, params)
    }

    fn select_in(&mut self, select: &str, column: &str, keys: &[&str]) -> Result<Vec<Row>> {
        self.select_in_sql(INTERNAL, select, column, keys)
    }
}

/// Rows per multi-row statement (stays under SQLite's and PostgreSQL's parameter limits).
pub const CHUNK_ROWS: usize = 500;

/// Runs `f` inside a write transaction, committing on success and rolling back on error.
pub fn in_write_tx<T>(conn: &mut dyn Conn, f: impl FnOnce(&mut dyn Conn) -> Result<T>) -> Result<T> {
    conn.begin_write()?;
    match f(conn) {
        Ok(v) => match conn.commit() {
            Ok(()) => Ok(v),
            Err(e) => {
                conn.rollback();
                Err(e)
            }
        },
        Err(e) => {
            conn.rollback();
            Err(e)
        }
    }
}

/// `$first, $first+1, ... ` for `n` placeholders, e.g. `($3, $4, $5)` parts of a VALUES list.
pub fn placeholders(first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&(first + i).to_string());
    }
    s
}

/// A multi-row `VALUES` list of `rows` tuples of `cols` placeholders each.
pub fn values_list(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        s.push_str(&placeholders(r * cols + 1, cols));
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_values_lists() {
        assert_eq!(placeholders(3, 2), "$3, $4");
        assert_eq!(values_list(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
