//! The `django_session` table.

use crate::db::time::DjangoDateTime;
use crate::db::Db;
use crate::on_pool;

/// Deletes expired sessions, as `manage.py clearsessions`. Returns how many.
pub async fn clear_expired(db: &Db) -> Result<u64, sqlx::Error> {
    let affected = on_pool!(db, |pool| {
        sqlx::query("DELETE FROM django_session WHERE expire_date < $1")
            .bind(DjangoDateTime::now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
    })?;
    Ok(affected)
}
