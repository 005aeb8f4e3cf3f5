//! What connecting to MySQL or MariaDB takes beyond sqlx's defaults: the
//! options of a `DATABASE_URL`, the session Django's connections have, and
//! named locks (`GET_LOCK`), MySQL's advisory locks.

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool};
use sqlx::pool::PoolConnection;
use sqlx::MySql;

use crate::config::{MySqlServer, MySqlSslMode, MySqlUrl};

pub(super) fn connect_options(url: &MySqlUrl) -> MySqlConnectOptions {
    let mut options = MySqlConnectOptions::new()
        .username(&url.user)
        .database(&url.database)
        .charset(&url.charset);
    if let Some(password) = &url.password {
        options = options.password(password);
    }
    options = match &url.server {
        MySqlServer::Tcp { host, port } => options.host(host).port(*port),
        MySqlServer::Socket(path) => options.socket(path),
    };
    if let Some(mode) = url.ssl_mode {
        use sqlx::mysql::MySqlSslMode as Mode;
        options = options.ssl_mode(match mode {
            MySqlSslMode::Disabled => Mode::Disabled,
            MySqlSslMode::Preferred => Mode::Preferred,
            MySqlSslMode::Required => Mode::Required,
            MySqlSslMode::VerifyCa => Mode::VerifyCa,
            MySqlSslMode::VerifyIdentity => Mode::VerifyIdentity,
        });
    }
    if let Some(ca) = &url.ssl_ca {
        options = options.ssl_ca(ca);
    }
    options
}

/// Django's MySQL connections read committed data (its default
/// `isolation_level` since 3.0), not InnoDB's repeatable read: a
/// transaction sees what others committed after it began, as on PostgreSQL.
/// GROUP_CONCAT stops at 1,024 bytes by default, which a user's
/// permission names (`perms::permission_names_expression`) can pass.
pub(super) async fn prepare_session(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .execute(&mut *conn)
        .await?;
    sqlx::query("SET SESSION group_concat_max_len = 16777216")
        .execute(conn)
        .await
        .map(drop)
}

/// A named lock (`GET_LOCK`) held by a connection of its own until
/// [`release`](NamedLock::release). Lock names are the server's, shared by
/// its databases: the name taken is a digest of the database's name and
/// the one given. MySQL ties such a lock to the session,
/// not to a transaction: a lock dropped without release closes its
/// connection rather than return it to the pool still holding the lock.
pub(crate) struct NamedLock {
    conn: Option<PoolConnection<MySql>>,
}

impl NamedLock {
    /// Waits up to `patience` for the lock; a timeout is an I/O error (a
    /// 503 to a page).
    pub(crate) async fn acquire(
        pool: &MySqlPool,
        name: &str,
        patience: Duration,
    ) -> Result<NamedLock, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        let got: Option<i64> =
            sqlx::query_scalar("SELECT GET_LOCK(SHA1(CONCAT(DATABASE(), '/', ?)), ?)")
                .bind(name)
                .bind(patience.as_secs_f64())
                .fetch_one(&mut *conn)
                .await?;
        if got != Some(1) {
            return Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the lock {name} was held too long by another connection"),
            )));
        }
        Ok(NamedLock { conn: Some(conn) })
    }

    /// A transaction on the lock's own connection: what it changes is
    /// committed before the lock is released.
    pub(crate) async fn begin(&mut self) -> Result<super::Tx<'_>, sqlx::Error> {
        let conn = self.conn.as_mut().expect("held until released");
        Ok(super::Tx::MySql(
            sqlx::Connection::begin(&mut **conn).await?,
        ))
    }

    pub(crate) async fn release(mut self) -> Result<(), sqlx::Error> {
        let Some(mut conn) = self.conn.take() else {
            return Ok(());
        };
        let released = sqlx::query("DO RELEASE_ALL_LOCKS()")
            .execute(&mut *conn)
            .await;
        if released.is_err() {
            drop(conn.detach());
        }
        released.map(drop)
    }
}

impl Drop for NamedLock {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Closing the session releases its locks.
            drop(conn.detach());
        }
    }
}
