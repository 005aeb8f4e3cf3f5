//! The `unchained_outbox` table: letters waiting to be sent, and those sent.
//!
//! A letter is enqueued inside the transaction of the change that causes it,
//! so it is stored if and only if that change commits. The mail worker then
//! sends it with no transaction open: it claims the row first (a short
//! lease on `next_attempt_at`, taken by one atomic UPDATE), so two servers on
//! one database never send the same letter twice. A letter whose address
//! can never be sent is given up (`failed_at`) instead of retried.

use crate::db::time::DjangoDateTime;
use crate::db::{Db, Tx};
use crate::{on_pool, on_tx};

/// A plain-text letter to one address: what a row of the outbox holds.
/// The mail module checks its address (`Email::new`) and sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// A row of `unchained_outbox`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub created_at: DjangoDateTime,
    /// Failed attempts so far.
    pub attempts: i32,
    /// When the next attempt may be made (or, while a worker is sending it,
    /// when its claim lapses).
    pub next_attempt_at: DjangoDateTime,
    pub sent_at: Option<DjangoDateTime>,
    pub last_error: Option<String>,
    /// The e-mail back end that is to send it (`EmailSettings::outbox_backend`);
    /// `None` for letters queued before the column existed: any instance.
    pub backend: Option<String>,
    /// When the letter was given up, its address being one that can never
    /// be sent ([`AfterFailure::GiveUpAt`]); it is not tried again.
    pub failed_at: Option<DjangoDateTime>,
}

impl OutboxRow {
    pub fn email(&self) -> Email {
        Email {
            to: self.recipient.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
        }
    }
}

const COLUMNS: &str = "id, recipient, subject, body, created_at, attempts, next_attempt_at, \
     sent_at, last_error, backend, failed_at";

/// The letters an instance with this back end sends.
const FOR_BACKEND: &str = "(backend = $BACKEND OR backend IS NULL)";

/// Letters still to send: neither sent nor given up.
const UNSENT: &str = "sent_at IS NULL AND failed_at IS NULL";

/// Stores a letter in the caller's transaction, due at once, for an
/// instance with this e-mail back end to send. Returns its id.
pub async fn enqueue(tx: &mut Tx<'_>, email: &Email, backend: &str) -> Result<i64, sqlx::Error> {
    let now = DjangoDateTime::now();
    let sql = "INSERT INTO unchained_outbox (recipient, subject, body, created_at, attempts, \
               next_attempt_at, sent_at, last_error, backend) \
               VALUES ($1, $2, $3, $4, 0, $5, NULL, NULL, $6) RETURNING id";
    let dialect = tx.backend();
    on_tx!(tx, |conn| {
        sqlx::query_scalar(&dialect.sql(sql))
            .bind(&email.to)
            .bind(&email.subject)
            .bind(&email.body)
            .bind(now)
            .bind(now)
            .bind(backend)
            .fetch_one(conn)
            .await
    })
}

pub async fn by_id(db: &Db, id: i64) -> Result<Option<OutboxRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM unchained_outbox WHERE id = $1");
    on_pool!(db, |pool| sqlx::query_as(&db.sql(&sql))
        .bind(id)
        .fetch_optional(pool)
        .await)
}

/// Unsent letters for this back end whose time has come, oldest first
/// (never those given up).
pub async fn due(
    db: &Db,
    backend: &str,
    now: DjangoDateTime,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM unchained_outbox \
         WHERE {UNSENT} AND next_attempt_at <= $1 AND {} ORDER BY id LIMIT $3",
        FOR_BACKEND.replace("$BACKEND", "$2")
    );
    on_pool!(db, |pool| sqlx::query_as(&db.sql(&sql))
        .bind(now)
        .bind(backend)
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// The earliest time an unsent letter for this back end is due, if any is
/// waiting.
pub async fn next_due_at(db: &Db, backend: &str) -> Result<Option<DjangoDateTime>, sqlx::Error> {
    // ORDER BY/LIMIT rather than MIN(): the column keeps its declared type,
    // so it decodes as a datetime on SQLite too.
    let sql = format!(
        "SELECT next_attempt_at FROM unchained_outbox WHERE {UNSENT} AND {} \
         ORDER BY next_attempt_at LIMIT 1",
        FOR_BACKEND.replace("$BACKEND", "$1")
    );
    on_pool!(db, |pool| sqlx::query_scalar(&db.sql(&sql))
        .bind(backend)
        .fetch_optional(pool)
        .await)
}

/// Claims a due letter for sending: moves its `next_attempt_at` to
/// `lease_until` if it is still unsent and due at `now`. One statement, so of
/// two workers racing for a letter exactly one gets it (PostgreSQL re-checks
/// the condition on the row it waited for; SQLite has a single writer).
/// Returns whether this caller got it; never a letter for another back end.
pub async fn claim(
    db: &Db,
    backend: &str,
    id: i64,
    now: DjangoDateTime,
    lease_until: DjangoDateTime,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE unchained_outbox SET next_attempt_at = $1 \
         WHERE id = $2 AND {UNSENT} AND next_attempt_at <= $3 AND {}",
        FOR_BACKEND.replace("$BACKEND", "$4")
    );
    let affected = on_pool!(db, |pool| sqlx::query(&db.sql(&sql))
        .bind(lease_until)
        .bind(id)
        .bind(now)
        .bind(backend)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))?;
    Ok(affected == 1)
}

/// Records that a letter was sent.
pub async fn mark_sent(db: &Db, id: i64, sent_at: DjangoDateTime) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| sqlx::query(&db.sql(
        "UPDATE unchained_outbox SET sent_at = $1, last_error = NULL WHERE id = $2"
    ))
    .bind(sent_at)
    .bind(id)
    .execute(pool)
    .await
    .map(|_| ()))
}

/// What becomes of a letter after a failed attempt.
#[derive(Debug, Clone, Copy)]
pub enum AfterFailure {
    /// Tried again from this time on.
    RetryAt(DjangoDateTime),
    /// Its address is no address a back end can send to: given up at this
    /// time, and no worker takes it again.
    GiveUpAt(DjangoDateTime),
}

/// Records a failed attempt: counts it, keeps the error and either sets the
/// time of the next attempt or gives the letter up.
pub async fn mark_failed(
    db: &Db,
    id: i64,
    error: &str,
    after: AfterFailure,
) -> Result<(), sqlx::Error> {
    let (column, at) = match after {
        AfterFailure::RetryAt(at) => ("next_attempt_at", at),
        AfterFailure::GiveUpAt(at) => ("failed_at", at),
    };
    let sql = format!(
        "UPDATE unchained_outbox SET attempts = attempts + 1, last_error = $1, \
         {column} = $2 WHERE id = $3 AND sent_at IS NULL"
    );
    on_pool!(db, |pool| sqlx::query(&db.sql(&sql))
        .bind(error)
        .bind(at)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Letters waiting to be sent by an instance with this back end, and the
/// age in seconds of the oldest (since it was queued), for the metrics.
/// One query, on the rows of the partial index of unsent letters.
pub async fn waiting(db: &Db, backend: &str) -> Result<(i64, Option<f64>), sqlx::Error> {
    let filter = FOR_BACKEND.replace("$BACKEND", "$1");
    match db {
        Db::Sqlite(pool, _) => {
            // Stored as UTC text, which julianday() reads; 'now' is UTC.
            let sql = format!(
                "SELECT COUNT(*), (julianday('now') - julianday(MIN(created_at))) * 86400.0 \
                 FROM unchained_outbox WHERE {UNSENT} AND {filter}"
            );
            sqlx::query_as(&sql).bind(backend).fetch_one(pool).await
        }
        Db::Postgres(pool) => {
            let sql = format!(
                "SELECT COUNT(*), EXTRACT(EPOCH FROM (now() - MIN(created_at)))::float8 \
                 FROM unchained_outbox WHERE {UNSENT} AND {filter}"
            );
            sqlx::query_as(&sql).bind(backend).fetch_one(pool).await
        }
        Db::MySql(pool) => {
            // The stored times are UTC wall times, as UTC_TIMESTAMP is.
            let sql = format!(
                "SELECT COUNT(*), \
                 TIMESTAMPDIFF(MICROSECOND, MIN(created_at), UTC_TIMESTAMP(6)) / 1000000e0 \
                 FROM unchained_outbox WHERE {UNSENT} AND {filter}"
            );
            sqlx::query_as(&db.sql(&sql))
                .bind(backend)
                .fetch_one(pool)
                .await
        }
    }
}
