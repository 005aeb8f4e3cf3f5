//! Groups and permissions: `auth_group`, `auth_permission` and the tables
//! that tie them to users. Deciding what a set of permissions allows is the
//! job of `crate::django::perms`; this module only loads and stores.
//!
//! Django's own auth tables have `integer` keys on PostgreSQL (this app's
//! have `bigint`), so their ids are cast to read them as `i64` everywhere.

use std::collections::HashSet;

use crate::django::perms::UserPerms;

use crate::db::read::Param;
use crate::db::Db;
use crate::on_pool;

/// The permissions of the moderator role (DESIGN.md).
pub const MODERATOR_PERMISSIONS: [&str; 3] = [
    "catalog.can_publish_product",
    "catalog.can_change_description",
    "catalog.can_change_category",
];

/// An SQL expression giving every `app_label.codename` the user `user_id`
/// (an SQL expression) holds directly or through a group, one per line
/// (a name held both ways comes twice; empty lines when none): Django's
/// `_get_user_permissions` and `_get_group_permissions` in one round trip,
/// embeddable in the query that loads the user. Two plain joins rather
/// than `IN (... UNION ...)`, which made SQLite build two temporary tables
/// on every logged-in request.
pub fn permission_names_expression(db: &Db, user_id: &str) -> String {
    let aggregate = match db {
        Db::Sqlite(..) => "group_concat(ct.app_label || '.' || p.codename, char(10))",
        Db::Postgres(_) => "string_agg(ct.app_label || '.' || p.codename, chr(10))",
        // Up to group_concat_max_len bytes, which `db::mysql` raises.
        Db::MySql(_) => "group_concat(concat(ct.app_label, '.', p.codename) SEPARATOR '\\n')",
    };
    let direct = format!(
        "coalesce((SELECT {aggregate} FROM users_user_user_permissions up \
                   JOIN auth_permission p ON p.id = up.permission_id \
                   JOIN django_content_type ct ON ct.id = p.content_type_id \
                   WHERE up.user_id = {user_id}), '')"
    );
    let through_groups = format!(
        "coalesce((SELECT {aggregate} FROM users_user_groups ug \
                   JOIN auth_group_permissions gp ON gp.group_id = ug.group_id \
                   JOIN auth_permission p ON p.id = gp.permission_id \
                   JOIN django_content_type ct ON ct.id = p.content_type_id \
                   WHERE ug.user_id = {user_id}), '')"
    );
    match db {
        Db::Sqlite(..) => format!("({direct} || char(10) || {through_groups})"),
        Db::Postgres(_) => format!("({direct} || chr(10) || {through_groups})"),
        Db::MySql(_) => format!("concat({direct}, '\\n', {through_groups})"),
    }
}

/// The names [`permission_names_expression`] joined, as a set.
pub fn split_permission_names(joined: Option<&str>) -> HashSet<String> {
    joined
        .unwrap_or("")
        .lines()
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every `app_label.codename` a user holds directly or through a group.
pub async fn user_permission_names(db: &Db, user_id: i64) -> Result<HashSet<String>, sqlx::Error> {
    let sql = format!("SELECT {}", permission_names_expression(db, "$1"));
    let joined: Option<(Option<String>,)> = db.read_optional(&sql, &[Param::Int(user_id)]).await?;
    Ok(split_permission_names(
        joined.and_then(|(names,)| names).as_deref(),
    ))
}

/// What the permission core needs to decide for a user: flags and held
/// permissions. `None` when the user does not exist.
pub async fn user_perms(db: &Db, user_id: i64) -> Result<Option<UserPerms>, sqlx::Error> {
    let flags: Option<(bool, bool)> = on_pool!(db, |pool| {
        sqlx::query_as(&db.sql("SELECT is_active, is_superuser FROM users_user WHERE id = $1"))
            .bind(user_id)
            .fetch_optional(pool)
            .await
    })?;
    let Some((is_active, is_superuser)) = flags else {
        return Ok(None);
    };
    Ok(Some(UserPerms {
        is_active,
        is_superuser,
        perms: user_permission_names(db, user_id).await?,
    }))
}

/// The id of a permission named `app_label.codename`.
pub async fn permission_id(db: &Db, name: &str) -> Result<Option<i64>, sqlx::Error> {
    let Some((app_label, codename)) = name.split_once('.') else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {} FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id \
         WHERE ct.app_label = $1 AND p.codename = $2",
        db.backend().bigint("p.id")
    );
    on_pool!(db, |pool| sqlx::query_scalar(&db.sql(&sql))
        .bind(app_label)
        .bind(codename)
        .fetch_optional(pool)
        .await)
}

pub async fn group_id(db: &Db, name: &str) -> Result<Option<i64>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM auth_group WHERE name = $1",
        db.backend().bigint("id")
    );
    on_pool!(db, |pool| {
        sqlx::query_scalar(&db.sql(&sql))
            .bind(name)
            .fetch_optional(pool)
            .await
    })
}

/// Creates a group unless it exists. Returns its id and whether it was created.
pub async fn ensure_group(db: &Db, name: &str) -> Result<(i64, bool), sqlx::Error> {
    if let Some(id) = group_id(db, name).await? {
        return Ok((id, false));
    }
    let sql = format!(
        "INSERT INTO auth_group (name) VALUES ($1) RETURNING {}",
        db.backend().bigint("id")
    );
    let id = on_pool!(db, |pool| {
        sqlx::query_scalar(&db.sql(&sql))
            .bind(name)
            .fetch_one(pool)
            .await
    })?;
    Ok((id, true))
}

/// Grants a permission to a group. Returns false when it already had it.
pub async fn grant_to_group(
    db: &Db,
    group_id: i64,
    permission_id: i64,
) -> Result<bool, sqlx::Error> {
    link(
        db,
        "auth_group_permissions",
        ("group_id", group_id),
        ("permission_id", permission_id),
    )
    .await
}

/// Puts a user in a group. Returns false when the user was already in it.
pub async fn add_user_to_group(db: &Db, user_id: i64, group_id: i64) -> Result<bool, sqlx::Error> {
    link(
        db,
        "users_user_groups",
        ("user_id", user_id),
        ("group_id", group_id),
    )
    .await
}

/// Adds a row to a many-to-many table unless the pair is there already.
/// Returns whether it was added.
async fn link(
    db: &Db,
    table: &str,
    (a, a_id): (&str, i64),
    (b, b_id): (&str, i64),
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "INSERT INTO {table} ({a}, {b}) SELECT $1, $2 FROM (SELECT 1 AS one) AS one \
         WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {a} = $3 AND {b} = $4)"
    );
    let affected = on_pool!(db, |pool| {
        sqlx::query(&db.sql(&sql))
            .bind(a_id)
            .bind(b_id)
            .bind(a_id)
            .bind(b_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(affected == 1)
}

/// Every group with the `app_label.codename` of each of its permissions.
pub async fn groups_with_permissions(db: &Db) -> Result<Vec<(String, Vec<String>)>, sqlx::Error> {
    let sql = "SELECT g.name, ct.app_label, p.codename FROM auth_group g \
               LEFT JOIN auth_group_permissions gp ON gp.group_id = g.id \
               LEFT JOIN auth_permission p ON p.id = gp.permission_id \
               LEFT JOIN django_content_type ct ON ct.id = p.content_type_id \
               ORDER BY g.name, ct.app_label, p.codename";
    let rows: Vec<(String, Option<String>, Option<String>)> =
        on_pool!(db, |pool| sqlx::query_as(sql).fetch_all(pool).await)?;
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (group, app, codename) in rows {
        if groups
            .last()
            .map(|(name, _)| name != &group)
            .unwrap_or(true)
        {
            groups.push((group, Vec::new()));
        }
        if let (Some(app), Some(codename)) = (app, codename) {
            groups
                .last_mut()
                .expect("pushed above")
                .1
                .push(format!("{app}.{codename}"));
        }
    }
    Ok(groups)
}
