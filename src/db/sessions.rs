//! The `django_session` table.

use crate::db::read::{Both, Param};
use crate::db::time::DjangoDateTime;
use crate::db::users::{self, PermissionNames, User, UserWithPermissions};
use crate::db::Db;
use crate::on_pool;

/// Deletes expired sessions, as `manage.py clearsessions`. Returns how many.
pub async fn clear_expired(db: &Db) -> Result<u64, sqlx::Error> {
    let affected = on_pool!(db, |pool| {
        sqlx::query(&db.sql("DELETE FROM django_session WHERE expire_date < $1"))
            .bind(DjangoDateTime::now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(affected)
}

/// The stored data of a session that has not expired.
pub async fn load(db: &Db, key: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = db
        .read_optional(
            "SELECT session_data FROM django_session WHERE session_key = $1 AND expire_date > $2",
            &[Param::Text(key), Param::Time(DjangoDateTime::now())],
        )
        .await?;
    Ok(row.map(|(data,)| data))
}

/// A session row that has not expired, read with the user `user_id` and
/// the permissions they hold: a logged-in page's first two reads in one
/// round trip, for a caller who knows whose session the row held when it
/// last read it. `None` when the row is gone or expired, or the user is.
pub async fn load_with_user(
    db: &Db,
    key: &str,
    user_id: i64,
) -> Result<Option<(String, UserWithPermissions)>, sqlx::Error> {
    #[derive(sqlx::FromRow, serde::Deserialize)]
    struct Data {
        session_data: String,
    }
    let sql = format!(
        "SELECT session_data, {}, {} AS permission_names \
         FROM django_session JOIN users_user ON users_user.id = $3 \
         WHERE session_key = $1 AND expire_date > $2",
        users::COLUMNS,
        crate::db::perms::permission_names_expression(db, "$3"),
    );
    let row: Option<Both<Data, Both<User, PermissionNames>>> = db
        .read_optional(
            &sql,
            &[
                Param::Text(key),
                Param::Time(DjangoDateTime::now()),
                Param::Int(user_id),
            ],
        )
        .await?;
    Ok(row.map(|Both(data, Both(user, names))| (data.session_data, (user, names.into_set()))))
}

/// Inserts a new session row. Returns false when the key is taken (the
/// caller draws another, as Django's `create` does).
pub async fn insert(
    db: &Db,
    key: &str,
    data: &str,
    expire: DjangoDateTime,
) -> Result<bool, sqlx::Error> {
    let inserted = on_pool!(db, |pool| {
        sqlx::query(&db.sql(
            "INSERT INTO django_session (session_key, session_data, expire_date) VALUES ($1, $2, $3)",
        ))
            .bind(key)
            .bind(data)
            .bind(expire)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Rewrites a session row. Returns false when it is gone (deleted by a
/// logout elsewhere meanwhile).
pub async fn update(
    db: &Db,
    key: &str,
    data: &str,
    expire: DjangoDateTime,
) -> Result<bool, sqlx::Error> {
    let affected = on_pool!(db, |pool| {
        sqlx::query(&db.sql(
            "UPDATE django_session SET session_data = $1, expire_date = $2 WHERE session_key = $3",
        ))
        .bind(data)
        .bind(expire)
        .bind(key)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(affected == 1)
}

pub async fn delete(db: &Db, key: &str) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query(&db.sql("DELETE FROM django_session WHERE session_key = $1"))
            .bind(key)
            .execute(pool)
            .await
            .map(|_| ())
    })
}
