//! Database access: one module per table family, each with plain async
//! functions over [`Db`], which is an SQLite, a PostgreSQL or a MySQL
//! (MariaDB) pool.
//!
//! Queries are written once with `$N` placeholders (SQLite reads them as
//! numbered parameters; [`Backend::sql`] turns them into MySQL's `?`) and
//! run on any pool through [`on_pool!`].

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::config::DatabaseUrl;

pub mod catalog;
mod mysql;
pub mod outbox;
pub mod perms;
mod placeholders;
pub mod read;
pub mod schema;
pub mod sessions;
mod sqlite_row;
pub mod throttle;
pub mod time;
pub mod users;

/// A pooled PostgreSQL or MySQL connection idle longer than this is pinged before
/// it is lent.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// How long a page waits for a PostgreSQL or MySQL connection, and for the answer
/// to one of its reads (`read.rs`): past it the page is a 503. A read is a
/// lookup by key or an index scan of a page's rows (milliseconds); a
/// network that swallows everything would otherwise hold the request for
/// as long as TCP keeps trying.
pub(crate) const PATIENCE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy)]
enum Access {
    ReadWrite,
    ReadOnly,
}

/// A connection pool to the site's database.
#[derive(Clone, Debug)]
pub enum Db {
    /// The sqlx pool for writes, and the connections of the read path.
    Sqlite(SqlitePool, std::sync::Arc<read::SqliteReader>),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// Which kind of database a pool or transaction talks to, for the few
/// places whose SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    /// A query written with `$N` placeholders in the form this back end
    /// reads. For MySQL each `$N` becomes `?`, bound in text order: the
    /// query must use `$1`, `$2`, … each once and in order, as the binds
    /// that follow it come (the read path, `read.rs`, binds any order).
    pub fn sql(self, sql: &str) -> Cow<'_, str> {
        match self {
            Backend::Sqlite | Backend::Postgres => Cow::Borrowed(sql),
            Backend::MySql => {
                let (marked, order) = placeholders::to_question_marks(sql);
                assert!(
                    order.iter().copied().eq(1..=order.len()),
                    "placeholders out of order for MySQL: {sql}"
                );
                Cow::Owned(marked)
            }
        }
    }

    /// An integer expression as a 64-bit integer (PostgreSQL's `integer`
    /// columns and SUM's results would decode as other types).
    pub fn bigint(self, expr: &str) -> String {
        match self {
            Backend::Sqlite | Backend::Postgres => format!("CAST({expr} AS BIGINT)"),
            Backend::MySql => format!("CAST({expr} AS SIGNED)"),
        }
    }

    /// A decimal text parameter as the price column's number, exactly.
    pub fn decimal(self, parameter: &str) -> String {
        match self {
            Backend::Sqlite | Backend::Postgres => format!("CAST({parameter} AS NUMERIC)"),
            Backend::MySql => format!("CAST({parameter} AS DECIMAL(10,2))"),
        }
    }
}

/// Runs the same body against whichever pool `db` holds; the body is
/// compiled once for each back end, so it must use types both support.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool, _) => $body,
            $crate::db::Db::Postgres($pool) => $body,
            $crate::db::Db::MySql($pool) => $body,
        }
    };
}
pub use on_pool;

/// How many connections of one pool are open, and how many of them busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub name: &'static str,
    /// Running a query or held by a transaction.
    pub in_use: usize,
    /// Open and waiting for one.
    pub idle: usize,
    /// The most it opens, if it has a bound.
    pub max: Option<usize>,
}

/// A transaction on any back end, for changes that must land together
/// (a new user and the letter that confirms it). `'c` is the connection's:
/// `'static` for one taken from the pool, shorter on a connection held for
/// a MySQL named lock (`mysql::NamedLock::begin`).
pub enum Tx<'c> {
    Sqlite(sqlx::Transaction<'c, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'c, sqlx::Postgres>),
    MySql(sqlx::Transaction<'c, sqlx::MySql>),
}

/// Runs the same body against the connection of whichever transaction `tx`
/// holds, as [`on_pool!`] does for pools.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(transaction) => {
                let $conn = &mut **transaction;
                $body
            }
            $crate::db::Tx::Postgres(transaction) => {
                let $conn = &mut **transaction;
                $body
            }
            $crate::db::Tx::MySql(transaction) => {
                let $conn = &mut **transaction;
                $body
            }
        }
    };
}
pub use on_tx;

impl Tx<'_> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
            Tx::MySql(tx) => tx.commit().await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
            Tx::MySql(_) => Backend::MySql,
        }
    }
}

/// A pool of connections to a database server (PostgreSQL, MySQL).
fn server_pool<DB: sqlx::Database>(
    options: sqlx::pool::PoolOptions<DB>,
) -> sqlx::pool::PoolOptions<DB> {
    options
        .max_connections(10)
        // sqlx pings a connection (a round trip) before lending it and
        // again when it comes back: with the ping before, a page of three
        // queries made nine round trips. Only a connection idle long enough
        // to have been cut is pinged before it is lent; one that breaks in
        // use is closed by the ping on its return.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        // A database that is down answers a page with 503 in about this
        // long, rather than holding every request.
        .acquire_timeout(PATIENCE)
}

impl Db {
    /// Opens a pool to serve or change the site. An SQLite file is created
    /// when missing and switched to WAL; foreign keys are enforced as Django
    /// enforces them.
    pub async fn connect(url: &DatabaseUrl) -> Result<Db, sqlx::Error> {
        Db::open(url, Access::ReadWrite).await
    }

    /// Opens a pool that only looks: on SQLite the file must exist and is
    /// opened read-only, its journal mode left as it is (`check` changes
    /// nothing).
    pub async fn connect_read_only(url: &DatabaseUrl) -> Result<Db, sqlx::Error> {
        Db::open(url, Access::ReadOnly).await
    }

    async fn open(url: &DatabaseUrl, access: Access) -> Result<Db, sqlx::Error> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                let mut options = SqliteConnectOptions::new()
                    .filename(path)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                options = match access {
                    // WAL lets readers (this server, Django beside it) go on
                    // while one connection writes.
                    Access::ReadWrite => options
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal),
                    Access::ReadOnly => options.read_only(true),
                };
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .connect_with(options)
                    .await?;
                let read_only = matches!(access, Access::ReadOnly);
                Ok(Db::Sqlite(
                    pool,
                    std::sync::Arc::new(read::SqliteReader::new(path, read_only)),
                ))
            }
            DatabaseUrl::Postgres(url) => {
                // Every query here is a prepared statement whose best plan
                // does not depend on its parameters (lookups by key, index
                // scans in order under a LIMIT); left to choose, PostgreSQL
                // kept planning each execution afresh, and planning the
                // list's query took four times as long as running it.
                let options = sqlx::postgres::PgConnectOptions::from_str(url)?
                    .options([("plan_cache_mode", "force_generic_plan")]);
                let pool = server_pool(PgPoolOptions::new())
                    .connect_with(options)
                    .await?;
                Ok(Db::Postgres(pool))
            }
            DatabaseUrl::MySql(url) => {
                let pool = server_pool(MySqlPoolOptions::new())
                    .after_connect(|conn, _| Box::pin(mysql::prepare_session(conn)))
                    .connect_with(mysql::connect_options(url))
                    .await?;
                Ok(Db::MySql(pool))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(..) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
            Db::MySql(_) => Backend::MySql,
        }
    }

    /// [`Backend::sql`] for this pool's back end.
    pub fn sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        self.backend().sql(sql)
    }

    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool, _) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Db::MySql(pool) => Tx::MySql(pool.begin().await?),
        })
    }

    /// A transaction that writes: on SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`), so writers take turns from their first
    /// statement and each sees what the one before committed.
    pub async fn begin_write(&self) -> Result<Tx<'static>, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool, _) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Db::MySql(pool) => Tx::MySql(pool.begin().await?),
        })
    }

    /// One round trip that proves the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(pool, _) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Db::MySql(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    /// The connections of each pool, for the metrics: `main` (sqlx's:
    /// every query on PostgreSQL and MySQL, writes on SQLite) and, on SQLite, `read`
    /// (the read path's own connections, `read.rs`, which has no maximum).
    pub fn pool_use(&self) -> Vec<PoolUse> {
        fn sqlx_pool<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> PoolUse {
            let open = pool.size() as usize;
            let idle = pool.num_idle().min(open);
            PoolUse {
                name: "main",
                in_use: open - idle,
                idle,
                max: Some(pool.options().get_max_connections() as usize),
            }
        }
        match self {
            Db::Sqlite(pool, reader) => {
                let (in_use, idle) = reader.connections();
                vec![
                    sqlx_pool(pool),
                    PoolUse {
                        name: "read",
                        in_use,
                        idle,
                        max: None,
                    },
                ]
            }
            Db::Postgres(pool) => vec![sqlx_pool(pool)],
            Db::MySql(pool) => vec![sqlx_pool(pool)],
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgresql",
            Db::MySql(_) => "mysql",
        }
    }

    /// Closes every connection, SQLite's write-ahead log folded back into
    /// the file first (a copy of the file alone is then the whole
    /// database). The fold is asked for explicitly: SQLite folds it itself
    /// only when the last connection closes, and pool connections closing
    /// at once each see another still open.
    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool, reader) => {
                reader.close();
                if let Ok(mut conn) = pool.acquire().await {
                    // Partial while another process (Django beside it)
                    // reads: the rest is folded by whoever closes last.
                    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                        .execute(&mut *conn)
                        .await
                    {
                        tracing::debug!("cannot fold the write-ahead log: {e}");
                    }
                }
                pool.close().await
            }
            Db::Postgres(pool) => pool.close().await,
            Db::MySql(pool) => pool.close().await,
        }
    }
}
