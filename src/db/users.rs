//! The `users_user` table: the custom e-mail user model.

use std::collections::HashSet;

use crate::db::read::{Both, Param};
use crate::db::time::DjangoDateTime;
use crate::db::{Db, Tx};
use crate::{on_pool, on_tx};

/// A row of `users_user`.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct User {
    pub id: i64,
    pub password: String,
    pub last_login: Option<DjangoDateTime>,
    pub is_superuser: bool,
    pub first_name: String,
    pub last_name: String,
    pub is_staff: bool,
    pub is_active: bool,
    pub date_joined: DjangoDateTime,
    pub email: String,
    pub avatar: Option<String>,
    pub phone: Option<String>,
    pub country: Option<String>,
    pub token: Option<String>,
}

/// The columns of [`User`], unqualified (no table joined to them has
/// columns of these names).
pub(crate) const COLUMNS: &str =
    "id, password, last_login, is_superuser, first_name, last_name, is_staff, is_active, \
                       date_joined, email, avatar, phone, country, token";

/// `users_user.email`: the model's `EmailField(max_length=254)`.
pub const EMAIL_MAX_LENGTH: usize = 254;

/// Django's `BaseUserManager.normalize_email`: the domain part is lowercased.
pub fn normalize_email(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => email.to_string(),
    }
}

/// Finds a user by e-mail exactly as stored (Django's `get_by_natural_key`).
pub async fn by_email(db: &Db, email: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users_user WHERE email = $1");
    on_pool!(db, |pool| sqlx::query_as(&db.sql(&sql))
        .bind(email)
        .fetch_optional(pool)
        .await)
}

/// A user row and every `app_label.codename` they hold (see `perms`).
pub type UserWithPermissions = (User, HashSet<String>);

/// A user with the permissions they hold, in one query: what every
/// logged-in request needs.
pub async fn by_id_with_permissions(
    db: &Db,
    id: i64,
) -> Result<Option<UserWithPermissions>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, {} AS permission_names FROM users_user WHERE id = $1",
        crate::db::perms::permission_names_expression(db, "$1")
    );
    let row: Option<Both<User, PermissionNames>> =
        db.read_optional(&sql, &[Param::Int(id)]).await?;
    Ok(row.map(|Both(user, names)| (user, names.into_set())))
}

/// The `permission_names` column a query adds beside a user's columns
/// (`perms::permission_names_expression`).
#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct PermissionNames {
    permission_names: Option<String>,
}

impl PermissionNames {
    pub(crate) fn into_set(self) -> HashSet<String> {
        crate::db::perms::split_permission_names(self.permission_names.as_deref())
    }
}

pub async fn by_id(db: &Db, id: i64) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users_user WHERE id = $1");
    on_pool!(db, |pool| sqlx::query_as(&db.sql(&sql))
        .bind(id)
        .fetch_optional(pool)
        .await)
}

/// What a new user starts with; names and profile fields start empty, as
/// Django's `create_user` leaves them.
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub token: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("a user with that e-mail already exists")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Inserts a user and returns its id.
pub async fn insert(tx: &mut Tx<'_>, user: &NewUser<'_>) -> Result<i64, CreateUserError> {
    let sql = "INSERT INTO users_user (password, last_login, is_superuser, first_name, last_name, is_staff, \
               is_active, date_joined, email, avatar, phone, country, token) \
               VALUES ($1, NULL, $2, '', '', $3, $4, $5, $6, NULL, NULL, NULL, $7) RETURNING id";
    let backend = tx.backend();
    let inserted = on_tx!(tx, |conn| {
        sqlx::query_scalar(&backend.sql(sql))
            .bind(user.password_hash)
            .bind(user.is_superuser)
            .bind(user.is_staff)
            .bind(user.is_active)
            .bind(DjangoDateTime::now())
            .bind(user.email)
            .bind(user.token)
            .fetch_one(conn)
            .await
    });
    match inserted {
        Ok(id) => Ok(id),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(CreateUserError::EmailTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// Stores a new password hash. Returns false when the user does not exist.
pub async fn set_password(db: &Db, id: i64, password_hash: &str) -> Result<bool, sqlx::Error> {
    let affected = on_pool!(db, |pool| {
        sqlx::query(&db.sql("UPDATE users_user SET password = $1 WHERE id = $2"))
            .bind(password_hash)
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(affected == 1)
}

/// Every stored password column, for `check`'s census of hash algorithms.
pub async fn all_password_hashes(db: &Db) -> Result<Vec<(String, String)>, sqlx::Error> {
    on_pool!(db, |pool| sqlx::query_as(
        "SELECT email, password FROM users_user ORDER BY id"
    )
    .fetch_all(pool)
    .await)
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalize_email_lowercases_the_domain_only() {
        assert_eq!(
            super::normalize_email(" Ivan.Petrov@Mail.RU "),
            "Ivan.Petrov@mail.ru"
        );
        assert_eq!(super::normalize_email("no-at-sign"), "no-at-sign");
    }
}

/// `update_last_login`, run at every login.
pub async fn touch_last_login(db: &Db, id: i64) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query(&db.sql("UPDATE users_user SET last_login = $1 WHERE id = $2"))
            .bind(DjangoDateTime::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })
}

/// Activates the user holding an e-mail verification token and clears the
/// token, so a link works once. False for an unknown or used token.
pub async fn activate_by_token(db: &Db, token: &str) -> Result<bool, sqlx::Error> {
    if token.is_empty() {
        return Ok(false);
    }
    let affected = on_pool!(db, |pool| {
        sqlx::query(&db.sql("UPDATE users_user SET is_active = $1, token = NULL WHERE token = $2"))
            .bind(true)
            .bind(token)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(affected > 0)
}

/// Finds a user by e-mail regardless of case (the reference's `email__iexact`
/// for password resets).
pub async fn by_email_ignoring_case(db: &Db, email: &str) -> Result<Option<User>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM users_user WHERE UPPER(email) = UPPER($1) ORDER BY id LIMIT 1"
    );
    on_pool!(db, |pool| sqlx::query_as(&db.sql(&sql))
        .bind(email)
        .fetch_optional(pool)
        .await)
}

/// Stores a new password hash inside a transaction (with the letter that
/// announces it), only while the stored one is still `replacing`. Returns
/// whether it did.
pub async fn set_password_in(
    tx: &mut Tx<'_>,
    id: i64,
    password_hash: &str,
    replacing: &str,
) -> Result<bool, sqlx::Error> {
    let backend = tx.backend();
    let affected = on_tx!(tx, |conn| {
        sqlx::query(
            &backend.sql("UPDATE users_user SET password = $1 WHERE id = $2 AND password = $3"),
        )
        .bind(password_hash)
        .bind(id)
        .bind(replacing)
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
    })?;
    Ok(affected == 1)
}

/// The profile form's fields; `avatar` is set only when a new file came.
pub struct ProfileUpdate {
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub country: Option<String>,
    pub avatar: Option<String>,
}

pub async fn update_profile(db: &Db, id: i64, update: &ProfileUpdate) -> Result<(), sqlx::Error> {
    on_pool!(db, |pool| {
        sqlx::query(&db.sql(
            "UPDATE users_user SET first_name = $1, last_name = $2, phone = $3, country = $4, \
             avatar = COALESCE($5, avatar) WHERE id = $6",
        ))
        .bind(&update.first_name)
        .bind(&update.last_name)
        .bind(&update.phone)
        .bind(&update.country)
        .bind(&update.avatar)
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ())
    })
}
