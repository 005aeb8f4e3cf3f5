//! Who is locked out, as stored: failed logins by lock key
//! (`unchained_login_failure`) and the password-reset requests of the last
//! hour (`unchained_password_reset`). Every instance on the database shares
//! them. The rules (limits, cool-off, which keys a login has) are the
//! caller's (`web::throttle`); these functions count atomically, so requests
//! racing each other cannot slip past a limit.

use std::time::Duration;

use crate::db::time::DjangoDateTime;
use crate::db::{Backend, Db, Tx};
use crate::{on_pool, on_tx};

/// One lock key: the attributes that are not part of it are empty.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LockKey {
    pub username: String,
    pub ip_address: String,
}

impl std::fmt::Display for LockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            ("username", &self.username),
            ("ip_address", &self.ip_address),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
        f.write_str(&parts.join(" "))
    }
}

/// A row of `unchained_login_failure`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginFailures {
    #[sqlx(flatten)]
    pub key: LockKey,
    pub failures: i32,
    pub first_failure_at: DjangoDateTime,
    pub last_failure_at: DjangoDateTime,
}

const FAILURE_COLUMNS: &str = "username, ip_address, failures, first_failure_at, last_failure_at";

/// The time `duration` before `time`.
pub fn before(time: DjangoDateTime, duration: Duration) -> DjangoDateTime {
    DjangoDateTime(time.0 - chrono_duration(duration))
}

/// The time `duration` after `time`.
pub fn after(time: DjangoDateTime, duration: Duration) -> DjangoDateTime {
    DjangoDateTime(time.0 + chrono_duration(duration))
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).expect("durations of settings fit")
}

/// The failures of these keys whose last one is at or after `since` (the
/// older ones no longer count).
pub async fn failures_of(
    db: &Db,
    keys: &[LockKey],
    since: DjangoDateTime,
) -> Result<Vec<LoginFailures>, sqlx::Error> {
    let sql = format!(
        "SELECT {FAILURE_COLUMNS} FROM unchained_login_failure \
         WHERE username = $1 AND ip_address = $2 AND last_failure_at >= $3"
    );
    let mut rows = Vec::new();
    for key in keys {
        let row: Option<LoginFailures> = on_pool!(db, |pool| sqlx::query_as(&db.sql(&sql))
            .bind(&key.username)
            .bind(&key.ip_address)
            .bind(since)
            .fetch_optional(pool)
            .await)?;
        rows.extend(row);
    }
    Ok(rows)
}

/// Counts a failed login for a key at `now`, in one statement: a key whose
/// last failure is before `since` starts from one again. Returns the key's
/// failures now. Rows that stopped counting are deleted on the way.
pub async fn record_failure(
    db: &Db,
    key: &LockKey,
    now: DjangoDateTime,
    since: DjangoDateTime,
) -> Result<i32, sqlx::Error> {
    let failures = match db.backend() {
        Backend::Sqlite | Backend::Postgres => {
            let sql = "INSERT INTO unchained_login_failure (username, ip_address, failures, \
                       first_failure_at, last_failure_at) VALUES ($1, $2, 1, $3, $3) \
                       ON CONFLICT (username, ip_address) DO UPDATE SET \
                       failures = CASE WHEN unchained_login_failure.last_failure_at < $4 THEN 1 \
                                  ELSE unchained_login_failure.failures + 1 END, \
                       first_failure_at = CASE WHEN unchained_login_failure.last_failure_at < $4 THEN $3 \
                                  ELSE unchained_login_failure.first_failure_at END, \
                       last_failure_at = $3 \
                       RETURNING failures";
            on_pool!(db, |pool| sqlx::query_scalar(sql)
                .bind(&key.username)
                .bind(&key.ip_address)
                .bind(now)
                .bind(since)
                .fetch_one(pool)
                .await)?
        }
        // No RETURNING after an upsert: the count is read back in the same
        // transaction, while the upsert's row lock keeps others off it.
        // MySQL assigns left to right, so last_failure_at is still the old
        // one where the first two assignments read it.
        Backend::MySql => {
            let mut tx = db.begin().await?;
            let failures = on_tx!(&mut tx, |conn| {
                sqlx::query(
                    "INSERT INTO unchained_login_failure (username, ip_address, failures, \
                     first_failure_at, last_failure_at) VALUES (?, ?, 1, ?, ?) \
                     ON DUPLICATE KEY UPDATE \
                     failures = IF(last_failure_at < ?, 1, failures + 1), \
                     first_failure_at = IF(last_failure_at < ?, VALUES(first_failure_at), first_failure_at), \
                     last_failure_at = VALUES(last_failure_at)",
                )
                .bind(&key.username)
                .bind(&key.ip_address)
                .bind(now)
                .bind(now)
                .bind(since)
                .bind(since)
                .execute(&mut *conn)
                .await?;
                sqlx::query_scalar(
                    "SELECT failures FROM unchained_login_failure \
                     WHERE username = ? AND ip_address = ?",
                )
                .bind(&key.username)
                .bind(&key.ip_address)
                .fetch_one(&mut *conn)
                .await
            })?;
            tx.commit().await?;
            failures
        }
    };
    on_pool!(db, |pool| sqlx::query(&db.sql(
        "DELETE FROM unchained_login_failure WHERE last_failure_at < $1"
    ))
    .bind(since)
    .execute(pool)
    .await
    .map(|_| ()))?;
    Ok(failures)
}

/// Forgets the failures of these keys (a login succeeded).
pub async fn clear(db: &Db, keys: &[LockKey]) -> Result<(), sqlx::Error> {
    for key in keys {
        on_pool!(db, |pool| sqlx::query(&db.sql(
            "DELETE FROM unchained_login_failure WHERE username = $1 AND ip_address = $2"
        ))
        .bind(&key.username)
        .bind(&key.ip_address)
        .execute(pool)
        .await
        .map(|_| ()))?;
    }
    Ok(())
}

/// Every key whose failures still count (last one at or after `since`),
/// the latest first.
pub async fn current_failures(
    db: &Db,
    since: DjangoDateTime,
) -> Result<Vec<LoginFailures>, sqlx::Error> {
    let sql = format!(
        "SELECT {FAILURE_COLUMNS} FROM unchained_login_failure \
         WHERE last_failure_at >= $1 ORDER BY last_failure_at DESC, username, ip_address"
    );
    on_pool!(db, |pool| sqlx::query_as(&db.sql(&sql))
        .bind(since)
        .fetch_all(pool)
        .await)
}

/// Which failures `lift` forgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lift {
    /// Every key.
    All,
    /// The keys whose username is this one (when given) and whose client
    /// address is this one (when given).
    Matching {
        username: Option<String>,
        ip_address: Option<String>,
    },
}

/// Deletes failures, so the keys they locked log in again. Returns how
/// many keys it forgot.
pub async fn lift(db: &Db, which: &Lift) -> Result<u64, sqlx::Error> {
    let (username, ip_address) = match which {
        Lift::All => (None, None),
        Lift::Matching {
            username,
            ip_address,
        } => (username.as_deref(), ip_address.as_deref()),
    };
    let filters: Vec<(&str, &str)> = [("username", username), ("ip_address", ip_address)]
        .into_iter()
        .filter_map(|(column, value)| Some((column, value?)))
        .collect();
    let mut sql = "DELETE FROM unchained_login_failure".to_string();
    for (i, (column, _)) in filters.iter().enumerate() {
        let joint = if i == 0 { "WHERE" } else { "AND" };
        sql.push_str(&format!(" {joint} {column} = ${}", i + 1));
    }
    on_pool!(db, |pool| {
        let sql = db.sql(&sql);
        let mut query = sqlx::query(&sql);
        for (_, value) in &filters {
            query = query.bind(*value);
        }
        query.execute(pool).await.map(|done| done.rows_affected())
    })
}

/// A password-reset request to count: the address asked for (lowercased)
/// and the client that asked.
pub struct ResetRequest<'a> {
    pub email: &'a str,
    pub client: &'a str,
}

/// At most this many requests within `window` for one address, and for one
/// client (`None`: no limit).
pub struct ResetLimits {
    pub per_email: Option<u32>,
    pub per_client: Option<u32>,
    pub window: Duration,
}

/// Records a password-reset request at `now` if neither its address nor
/// its client has had its limit of requests within the window; otherwise
/// records nothing and returns when the fuller of the two has room again.
/// Requests are counted one at a time (the write lock is taken first on
/// SQLite, an advisory lock on PostgreSQL, a named lock on MySQL), so
/// racing requests cannot pass a limit together.
pub async fn reserve_reset(
    db: &Db,
    request: &ResetRequest<'_>,
    limits: &ResetLimits,
    now: DjangoDateTime,
) -> Result<Result<(), DjangoDateTime>, sqlx::Error> {
    match db {
        // MySQL's advisory locks belong to a session, not to a transaction:
        // the count and insert run on the lock's connection, one pooled
        // connection a request (a second one each could wait on the first
        // of other requests' until none is left).
        Db::MySql(pool) => {
            let mut lock = crate::db::mysql::NamedLock::acquire(
                pool,
                "unchained_password_reset",
                crate::db::PATIENCE,
            )
            .await?;
            let reserved = reserve_reset_in(lock.begin().await?, request, limits, now).await;
            if let Err(e) = lock.release().await {
                tracing::warn!(
                    "the password-reset lock was released by closing its connection: {e}"
                );
            }
            reserved
        }
        _ => reserve_reset_in(db.begin().await?, request, limits, now).await,
    }
}

/// [`reserve_reset`]'s count and insert in `tx`, with no other request
/// counting at once: the write lock on SQLite, an advisory lock on
/// PostgreSQL, and on MySQL the caller's named lock.
async fn reserve_reset_in(
    mut tx: Tx<'_>,
    request: &ResetRequest<'_>,
    limits: &ResetLimits,
    now: DjangoDateTime,
) -> Result<Result<(), DjangoDateTime>, sqlx::Error> {
    let since = before(now, limits.window);
    // The n-th latest request within the window, if there is one: the
    // limit is reached until it leaves the window. An unlimited count
    // looks past every row.
    let nth_latest_sql = |column: &str| {
        format!(
            "SELECT requested_at FROM unchained_password_reset \
             WHERE {column} = $1 AND requested_at >= $2 \
             ORDER BY requested_at DESC LIMIT 1 OFFSET $3"
        )
    };
    let (by_email, by_client) = (nth_latest_sql("email"), nth_latest_sql("client"));
    let offset = |limit: Option<u32>| limit.map_or(i64::MAX, |n| i64::from(n) - 1);
    let (email_offset, client_offset) = (offset(limits.per_email), offset(limits.per_client));
    let backend = tx.backend();
    if backend == Backend::Postgres {
        // `query`, not `raw_sql`: a handler's future holding raw_sql's
        // execute could not be proven `Send`.
        on_tx!(&mut tx, |conn| sqlx::query(
            "SELECT pg_advisory_xact_lock(8240534)"
        )
        .execute(conn)
        .await
        .map(|_| ()))?;
    }
    // A write first: on SQLite it takes the write lock (waiting its turn)
    // before anything is read.
    on_tx!(&mut tx, |conn| sqlx::query(&backend.sql(
        "DELETE FROM unchained_password_reset WHERE requested_at < $1"
    ))
    .bind(since)
    .execute(conn)
    .await
    .map(|_| ()))?;
    let email_full = nth_latest(&mut tx, &by_email, request.email, since, email_offset).await?;
    let client_full = nth_latest(&mut tx, &by_client, request.client, since, client_offset).await?;
    if let Some(at) = email_full.max(client_full) {
        tx.commit().await?;
        return Ok(Err(after(at, limits.window)));
    }
    on_tx!(&mut tx, |conn| sqlx::query(&backend.sql(
        "INSERT INTO unchained_password_reset (email, client, requested_at) VALUES ($1, $2, $3)"
    ))
    .bind(request.email)
    .bind(request.client)
    .bind(now)
    .execute(conn)
    .await
    .map(|_| ()))?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// The time of the request an n-th-latest query finds, for one address or
/// one client.
async fn nth_latest(
    tx: &mut Tx<'_>,
    sql: &str,
    value: &str,
    since: DjangoDateTime,
    offset: i64,
) -> Result<Option<DjangoDateTime>, sqlx::Error> {
    let backend = tx.backend();
    on_tx!(tx, |conn| sqlx::query_scalar(&backend.sql(sql))
        .bind(value)
        .bind(since)
        .bind(offset)
        .fetch_optional(conn)
        .await)
}
