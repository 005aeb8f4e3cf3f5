//! The read path of every page: one query, either back end, rows mapped to
//! the same struct.
//!
//! On SQLite, sqlx runs each query on a worker thread of its connection and
//! hands the rows back through channels; on a page of two or three small
//! queries those thread hand-offs cost more than SQLite's own work. So
//! reads here run on the calling thread through rusqlite connections of
//! their own (WAL mode: they never wait for a writer; each read takes
//! microseconds), mapped with serde; writes stay on sqlx. On PostgreSQL and
//! MySQL the same reads go through sqlx, which is already asynchronous
//! there.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;
use sqlx::mysql::MySqlRow;
use sqlx::postgres::PgRow;

use crate::db::placeholders::to_question_marks;
use crate::db::sqlite_row::{self, RowError};
use crate::db::time::DjangoDateTime;
use crate::db::Db;

/// A value bound to `$1`, `$2`, … of a read.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Int(i64),
    Text(&'a str),
    Time(DjangoDateTime),
}

/// What a row of a read maps to. Any struct that is `sqlx::FromRow` (for
/// PostgreSQL and MySQL) and serde's `Deserialize` (for SQLite), with field
/// names for column names, is one; so is [`Both`] of two such.
pub trait ReadRow: Sized + Send + Unpin {
    fn from_sqlite(row: &rusqlite::Row, columns: &[String]) -> Result<Self, RowError>;
    fn from_postgres(row: &PgRow) -> Result<Self, sqlx::Error>;
    fn from_mysql(row: &MySqlRow) -> Result<Self, sqlx::Error>;
}

impl<T> ReadRow for T
where
    T: DeserializeOwned
        + for<'r> sqlx::FromRow<'r, PgRow>
        + for<'r> sqlx::FromRow<'r, MySqlRow>
        + Send
        + Unpin,
{
    fn from_sqlite(row: &rusqlite::Row, columns: &[String]) -> Result<Self, RowError> {
        sqlite_row::from_row(row, columns)
    }

    fn from_postgres(row: &PgRow) -> Result<Self, sqlx::Error> {
        <T as sqlx::FromRow<PgRow>>::from_row(row)
    }

    fn from_mysql(row: &MySqlRow) -> Result<Self, sqlx::Error> {
        <T as sqlx::FromRow<MySqlRow>>::from_row(row)
    }
}

/// One row read as two structs, each taking the columns its fields name: a
/// struct and the few columns a query adds to it (a product and the list's
/// total). serde's `flatten` does the same but buffers the whole row first,
/// which cost more than the query.
pub struct Both<A, B>(pub A, pub B);

impl<A: ReadRow, B: ReadRow> ReadRow for Both<A, B> {
    fn from_sqlite(row: &rusqlite::Row, columns: &[String]) -> Result<Self, RowError> {
        Ok(Both(
            A::from_sqlite(row, columns)?,
            B::from_sqlite(row, columns)?,
        ))
    }

    fn from_postgres(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Both(A::from_postgres(row)?, B::from_postgres(row)?))
    }

    fn from_mysql(row: &MySqlRow) -> Result<Self, sqlx::Error> {
        Ok(Both(A::from_mysql(row)?, B::from_mysql(row)?))
    }
}

/// Idle read connections to one SQLite file.
pub struct SqliteReader {
    path: PathBuf,
    /// Opened with SQLite's read-only flag (for `check`, which must not
    /// touch the file).
    read_only: bool,
    idle: Mutex<Vec<rusqlite::Connection>>,
    /// Connections running a read now (the metrics' "in use").
    busy: AtomicUsize,
}

/// Counts a connection busy while it lives.
struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Connections kept idle; more are opened under load and closed after.
const IDLE_READERS: usize = 8;
/// Prepared statements kept per connection (every page's reads fit).
const STATEMENT_CACHE: usize = 64;

impl SqliteReader {
    pub fn new(path: &Path, read_only: bool) -> SqliteReader {
        SqliteReader {
            path: path.to_path_buf(),
            read_only,
            idle: Mutex::new(Vec::new()),
            busy: AtomicUsize::new(0),
        }
    }

    /// Connections running a read, and idle ones.
    pub fn connections(&self) -> (usize, usize) {
        let idle = self.lock().len();
        (self.busy.load(Ordering::Relaxed), idle)
    }

    /// Closes the idle connections (at shut-down).
    pub fn close(&self) {
        self.lock().clear();
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let access = if self.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            access | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // Only reads go through here, whatever a caller's SQL says.
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn with<R>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<R>,
    ) -> rusqlite::Result<R> {
        self.busy.fetch_add(1, Ordering::Relaxed);
        let _busy = Busy(&self.busy);
        let pooled = self.lock().pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn);
        let mut idle = self.lock();
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<rusqlite::Connection>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn query<T: ReadRow>(
        &self,
        sql: &str,
        params: &[Param<'_>],
        limit: Option<usize>,
    ) -> Result<Vec<T>, sqlx::Error> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            for (i, param) in params.iter().enumerate() {
                // `$N` are named parameters to SQLite: bind them by name, so
                // their order in the text does not matter.
                let Some(index) = statement.parameter_index(&format!("${}", i + 1))? else {
                    continue;
                };
                match param {
                    Param::Int(value) => statement.raw_bind_parameter(index, value)?,
                    Param::Text(value) => statement.raw_bind_parameter(index, value)?,
                    Param::Time(value) => {
                        statement.raw_bind_parameter(index, value.to_sqlite_text())?
                    }
                }
            }
            let columns: Vec<String> = statement
                .column_names()
                .into_iter()
                .map(String::from)
                .collect();
            let mut rows = statement.raw_query();
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let value = T::from_sqlite(row, &columns)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                out.push(value);
                if limit.is_some_and(|limit| out.len() >= limit) {
                    break;
                }
            }
            Ok(out)
        })
        .map_err(|e| sqlx::Error::Protocol(format!("SQLite read failed: {e}")))
    }
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader")
            .field("path", &self.path)
            .finish()
    }
}

fn bind_pg<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    params: &[Param<'q>],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for param in params {
        query = match *param {
            Param::Int(value) => query.bind(value),
            Param::Text(value) => query.bind(value),
            Param::Time(value) => query.bind(value),
        };
    }
    query
}

/// A MySQL read's parameters bound to its `?` in text order (a number
/// used twice is bound twice), from [`to_question_marks`]'s `order`.
fn bind_mysql<'q>(
    mut query: sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>,
    params: &[Param<'q>],
    order: &[usize],
) -> Result<sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments>, sqlx::Error> {
    for &number in order {
        let param = number
            .checked_sub(1)
            .and_then(|i| params.get(i))
            .ok_or_else(|| sqlx::Error::Protocol(format!("no parameter ${number}")))?;
        query = match *param {
            Param::Int(value) => query.bind(value),
            Param::Text(value) => query.bind(value),
            Param::Time(value) => query.bind(value),
        };
    }
    Ok(query)
}

/// A PostgreSQL or MySQL read, or an I/O error (a 503 to the page) when the
/// database has not answered within [`PATIENCE`](crate::db::PATIENCE).
async fn within_patience<T>(
    read: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(crate::db::PATIENCE, read)
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the database did not answer in time",
            )))
        })
}

impl Db {
    /// Every row of a read.
    pub async fn read_all<T: ReadRow>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Vec<T>, sqlx::Error> {
        match self {
            Db::Sqlite(_, reader) => reader.query(sql, params, None),
            Db::Postgres(pool) => {
                within_patience(bind_pg(sqlx::query(sql), params).fetch_all(pool))
                    .await?
                    .iter()
                    .map(T::from_postgres)
                    .collect()
            }
            Db::MySql(pool) => {
                let (sql, order) = to_question_marks(sql);
                let query = bind_mysql(sqlx::query(&sql), params, &order)?;
                within_patience(query.fetch_all(pool))
                    .await?
                    .iter()
                    .map(T::from_mysql)
                    .collect()
            }
        }
    }

    /// The first row of a read, if any.
    pub async fn read_optional<T: ReadRow>(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<T>, sqlx::Error> {
        match self {
            Db::Sqlite(_, reader) => Ok(reader.query(sql, params, Some(1))?.pop()),
            Db::Postgres(pool) => {
                within_patience(bind_pg(sqlx::query(sql), params).fetch_optional(pool))
                    .await?
                    .as_ref()
                    .map(T::from_postgres)
                    .transpose()
            }
            Db::MySql(pool) => {
                let (sql, order) = to_question_marks(sql);
                let query = bind_mysql(sqlx::query(&sql), params, &order)?;
                within_patience(query.fetch_optional(pool))
                    .await?
                    .as_ref()
                    .map(T::from_mysql)
                    .transpose()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;

    #[tokio::test]
    async fn parameters_bind_by_number_and_rows_map_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DatabaseUrl::Sqlite(dir.path().join("t.sqlite3")))
            .await
            .unwrap();
        // `$2` before `$1` in the text still gets the second value.
        let row: Option<(String, i64)> = db
            .read_optional("SELECT $2, $1", &[Param::Int(7), Param::Text("x")])
            .await
            .unwrap();
        assert_eq!(row, Some(("x".to_string(), 7)));

        #[derive(serde::Deserialize, sqlx::FromRow, Debug, PartialEq)]
        struct Flags {
            on: bool,
            at: DjangoDateTime,
        }
        let at = DjangoDateTime::now();
        let misnamed = db
            .read_all::<Flags>("SELECT 1 AS on_, $1 AS at", &[Param::Time(at)])
            .await;
        assert!(misnamed.is_err(), "a field no column fills is an error");
        let rows: Vec<Flags> = db
            .read_all(
                "SELECT 1 AS \"on\", $1 AS at UNION ALL SELECT 0, $1",
                &[Param::Time(at)],
            )
            .await
            .unwrap();
        assert_eq!(rows, vec![Flags { on: true, at }, Flags { on: false, at }]);
        // Two structs from one row, each taking its own columns.
        #[derive(serde::Deserialize, sqlx::FromRow, Debug, PartialEq)]
        struct Total {
            total: i64,
        }
        let both: Option<Both<Flags, Total>> = db
            .read_optional(
                "SELECT 0 AS \"on\", 12 AS total, $1 AS at",
                &[Param::Time(at)],
            )
            .await
            .unwrap();
        let Both(flags, total) = both.unwrap();
        assert_eq!(flags, Flags { on: false, at });
        assert_eq!(total, Total { total: 12 });
        assert!(
            db.read_optional::<Both<Flags, Total>>(
                "SELECT 1 AS \"on\", $1 AS at",
                &[Param::Time(at)]
            )
            .await
            .is_err(),
            "a field of the second that no column fills is an error"
        );
        // Writes are refused on the read path.
        assert!(db
            .read_all::<(i64,)>("CREATE TABLE t (x integer)", &[])
            .await
            .is_err());
        db.close().await;
    }
}
