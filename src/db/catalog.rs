//! The catalog tables: `catalog_category`, `catalog_product` and
//! `catalog_version`.
//!
//! Prices never pass through floating point here: they are bound as decimal
//! text and cast to the column's numeric type by the database (Django binds
//! `str(Decimal)` on SQLite too), and read back as text with two places.

use crate::db::read::{Both, Param};
use crate::db::time::DjangoDateTime;
use crate::db::{Backend, Db, Tx};
use crate::{on_pool, on_tx};

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct Category {
    pub id: i64,
    pub name: String,
}

/// A product with its category's name and its owner's e-mail, which every
/// page that shows a product needs (Django's `select_related`).
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub image: Option<String>,
    pub category_id: Option<i64>,
    pub category_name: Option<String>,
    /// Exact decimal text with two places, such as `13119.00`.
    pub price: String,
    pub created_at: DjangoDateTime,
    pub updated_at: DjangoDateTime,
    pub is_moderated: bool,
    pub owner_id: Option<i64>,
    pub owner_email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
pub struct Version {
    pub id: i64,
    pub product_id: i64,
    pub version_number: i64,
    pub version_name: String,
    pub is_current: bool,
}

/// The price column as text with two places on either back end.
fn price_text(db: &Db) -> &'static str {
    match db {
        // SQLite keeps a NUMERIC value as an integer or a real (as Django
        // leaves it); printf gives the two places Django's converter shows.
        Db::Sqlite(..) => "printf('%.2f', p.price)",
        Db::Postgres(_) => "p.price::text",
        Db::MySql(_) => "CAST(p.price AS CHAR)",
    }
}

/// The category and owner every product read joins (Django's `select_related`).
const PRODUCT_JOINS: &str = "LEFT JOIN catalog_category c ON c.id = p.category_id \
     LEFT JOIN users_user u ON u.id = p.owner_id";

/// The columns of [`Product`] from the product `p` and its joins, plus
/// `extra` ones.
fn product_columns(db: &Db, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        "p.id AS id, p.name, p.description, p.image, p.category_id, c.name AS category_name, \
         {} AS price, p.created_at AS created_at, p.updated_at, p.is_moderated, p.owner_id, u.email AS owner_email{extra}",
        price_text(db)
    )
}

/// The columns of [`Product`], plus `extra` ones, from the product and its
/// joined category and owner.
fn product_select(db: &Db, extra: &str) -> String {
    format!(
        "SELECT {} FROM catalog_product p {PRODUCT_JOINS}",
        product_columns(db, extra)
    )
}

/// Which products a list shows: all of them, or the published ones plus
/// the viewer's own.
#[derive(Debug, Clone, Copy)]
pub enum Visibility {
    All,
    PublishedOrOwnedBy(i64),
}

impl Visibility {
    /// The parts the list is the union of, each a filter that one index of
    /// `schema/unchained/product_list_*.sql` reads in order; `$1` is the
    /// owner's id when there is one. MySQL has no partial indexes: its
    /// indexes begin with the columns compared for equality.
    fn parts(self, backend: Backend) -> &'static [&'static str] {
        match (self, backend) {
            (Visibility::All, _) => &[""],
            (Visibility::PublishedOrOwnedBy(_), Backend::Sqlite | Backend::Postgres) => &[
                " WHERE is_moderated",
                " WHERE owner_id = $1 AND NOT is_moderated",
            ],
            (Visibility::PublishedOrOwnedBy(_), Backend::MySql) => &[
                " WHERE is_moderated = TRUE",
                " WHERE owner_id = $1 AND is_moderated = FALSE",
            ],
        }
    }

    /// How many products the list has, from the counts the database's
    /// triggers keep (`unchained_product_count`): no scan of the catalog.
    fn count_sql(self, backend: Backend) -> String {
        let (sum, owners) = match self {
            Visibility::All => ("published + unpublished", "= -1"),
            Visibility::PublishedOrOwnedBy(_) => (
                "CASE WHEN owner_id = -1 THEN published ELSE unpublished END",
                "IN (-1, $1)",
            ),
        };
        format!(
            "SELECT {} FROM unchained_product_count WHERE owner_id {owners}",
            backend.bigint(&format!("coalesce(sum({sum}), 0)"))
        )
    }

    fn params(self) -> Vec<Param<'static>> {
        match self {
            Visibility::All => Vec::new(),
            Visibility::PublishedOrOwnedBy(owner) => vec![Param::Int(owner)],
        }
    }
}

/// Folds each owner's rows of `unchained_product_count` into one. On
/// PostgreSQL the triggers only add rows (see schema/unchained/postgres.sql),
/// so between folds a count is the sum of a few; SQLite's triggers keep one
/// row per owner already. Safe beside other servers folding at once: a row
/// is folded by whichever deletes it. Returns the rows folded away.
pub async fn fold_product_counts(db: &Db) -> Result<u64, sqlx::Error> {
    let Db::Postgres(pool) = db else {
        return Ok(0);
    };
    let folded: i64 = sqlx::query_scalar(
        "WITH owners AS ( \
             SELECT owner_id FROM unchained_product_count GROUP BY owner_id HAVING count(*) > 1), \
         folded AS ( \
             DELETE FROM unchained_product_count c USING owners WHERE c.owner_id = owners.owner_id \
             RETURNING c.owner_id, c.published, c.unpublished), \
         sums AS ( \
             INSERT INTO unchained_product_count (owner_id, published, unpublished) \
             SELECT owner_id, sum(published), sum(unpublished) FROM folded GROUP BY owner_id \
             RETURNING 1) \
         SELECT (SELECT count(*) FROM folded) - (SELECT count(*) FROM sums)",
    )
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(folded).unwrap_or(0))
}

pub async fn count_visible(db: &Db, visibility: Visibility) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = db
        .read_optional(&visibility.count_sql(db.backend()), &visibility.params())
        .await?
        .unwrap_or((0,));
    Ok(count)
}

/// Up to this offset a page is read newest first with its total in the
/// same query; further in, the total comes first and a page in the older
/// half is read oldest first, so no page reads more than half the list.
const NEWEST_FIRST_ROWS: i64 = 1000;

/// One page of the list, newest first (`-created_at, -pk`), and how many
/// products the whole list has (0 when the page is past the end). Each
/// part of the list is read in index order up to the page's end, so a
/// page costs what its position costs, not what the catalog holds.
pub async fn page_visible(
    db: &Db,
    visibility: Visibility,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Product>, i64), sqlx::Error> {
    #[derive(sqlx::FromRow, serde::Deserialize)]
    struct Total {
        total: i64,
    }
    let (newest_first, total, limit, offset) = if offset < NEWEST_FIRST_ROWS {
        (true, None, limit, offset)
    } else {
        let total = count_visible(db, visibility).await?;
        let end = offset.saturating_add(limit).min(total);
        if offset >= total {
            return Ok((Vec::new(), total));
        } else if offset > total / 2 {
            (false, Some(total), end - offset, total - end)
        } else {
            (true, Some(total), limit, offset)
        }
    };
    let order = if newest_first { "DESC" } else { "ASC" };
    let mut params = visibility.params();
    let first = params.len() + 1;
    // The keys of each part in its index's order, up to the page's end
    // (`$first`), one after another: PostgreSQL and MySQL merge them.
    let each_part_up_to_the_page = |parts: &[&str]| -> String {
        parts
            .iter()
            .enumerate()
            .map(|(i, filter)| {
                format!(
                    "SELECT * FROM (SELECT id, created_at FROM catalog_product{filter} \
                     ORDER BY created_at {order}, id {order} LIMIT ${first}) AS part{i}"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    };
    let columns = product_columns(
        db,
        &format!("({}) AS total", visibility.count_sql(db.backend())),
    );
    let sql = match db {
        // SQLite merges the parts of a compound select as they come, each
        // read in its index's order, and joins only the rows it takes; the
        // PostgreSQL form below would make it copy and sort them first.
        Db::Sqlite(..) => {
            let parts: Vec<String> = visibility
                .parts(Backend::Sqlite)
                .iter()
                .map(|filter| {
                    format!("SELECT {columns} FROM catalog_product p {PRODUCT_JOINS}{filter}")
                })
                .collect();
            format!(
                "{} ORDER BY created_at {order}, id {order} LIMIT ${} OFFSET ${}",
                parts.join(" UNION ALL "),
                first + 1,
                first + 2,
            )
        }
        // MySQL reads each part in index order up to its LIMIT, sorts only
        // those keys and skips the OFFSET before the join: joined after the
        // OFFSET (as below for PostgreSQL) it would read the product, its
        // category and its owner for every row before the page too. One
        // part skips the OFFSET itself, straight off its index.
        Db::MySql(_) => {
            let keys = match visibility.parts(Backend::MySql) {
                [filter] => format!(
                    "SELECT id, created_at FROM catalog_product{filter} \
                     ORDER BY created_at {order}, id {order} LIMIT ${} OFFSET ${}",
                    first + 1,
                    first + 2,
                ),
                parts => format!(
                    "SELECT id, created_at FROM ({}) AS parts \
                     ORDER BY created_at {order}, id {order} LIMIT ${} OFFSET ${}",
                    each_part_up_to_the_page(parts),
                    first + 1,
                    first + 2,
                ),
            };
            format!(
                "SELECT {columns} FROM ({keys}) AS k JOIN catalog_product p ON p.id = k.id {PRODUCT_JOINS} \
                 ORDER BY k.created_at {order}, k.id {order}"
            )
        }
        // PostgreSQL merges the parts (Merge Append) only when each is a bare
        // index read, so the join comes after the merge.
        Db::Postgres(_) => format!(
            "SELECT {columns} FROM ({}) AS k JOIN catalog_product p ON p.id = k.id {PRODUCT_JOINS} \
             ORDER BY k.created_at {order}, k.id {order} LIMIT ${} OFFSET ${}",
            each_part_up_to_the_page(visibility.parts(Backend::Postgres)),
            first + 1,
            first + 2,
        ),
    };
    params.extend([
        Param::Int(offset.saturating_add(limit)),
        Param::Int(limit),
        Param::Int(offset),
    ]);
    let rows: Vec<Both<Product, Total>> = db.read_all(&sql, &params).await?;
    let total = total.unwrap_or_else(|| rows.first().map_or(0, |Both(_, t)| t.total));
    let mut products: Vec<Product> = rows.into_iter().map(|Both(product, _)| product).collect();
    if !newest_first {
        products.reverse();
    }
    Ok((products, total))
}

pub async fn product(db: &Db, id: i64) -> Result<Option<Product>, sqlx::Error> {
    let sql = format!("{} WHERE p.id = $1", product_select(db, ""));
    db.read_optional(&sql, &[Param::Int(id)]).await
}

/// A product and its current version (the first, as
/// `versions.filter(is_current=True).first()`), in one query.
pub async fn product_with_current_version(
    db: &Db,
    id: i64,
) -> Result<Option<(Product, Option<Version>)>, sqlx::Error> {
    #[derive(sqlx::FromRow, serde::Deserialize)]
    struct CurrentVersion {
        version_id: Option<i64>,
        version_number: Option<i64>,
        version_name: Option<String>,
    }
    let sql = format!(
        "{} LEFT JOIN catalog_version v ON v.id = (SELECT id FROM catalog_version \
         WHERE product_id = p.id AND is_current ORDER BY id LIMIT 1) WHERE p.id = $1",
        product_select(
            db,
            &format!(
                "v.id AS version_id, {} AS version_number, v.version_name AS version_name",
                db.backend().bigint("v.version_number")
            )
        )
    );
    let row: Option<Both<Product, CurrentVersion>> =
        db.read_optional(&sql, &[Param::Int(id)]).await?;
    Ok(row.map(|Both(product, current)| {
        let version = match (
            current.version_id,
            current.version_number,
            current.version_name,
        ) {
            (Some(id), Some(version_number), Some(version_name)) => Some(Version {
                id,
                product_id: product.id,
                version_number,
                version_name,
                is_current: true,
            }),
            _ => None,
        };
        (product, version)
    }))
}

pub async fn categories(db: &Db) -> Result<Vec<Category>, sqlx::Error> {
    db.read_all("SELECT id, name FROM catalog_category ORDER BY id", &[])
        .await
}

/// A product's versions in the order Django's inline formset lists them.
pub async fn versions(db: &Db, product_id: i64) -> Result<Vec<Version>, sqlx::Error> {
    // `version_number` is `integer` on PostgreSQL: read it as a bigint.
    let sql = format!(
        "SELECT id, product_id, {} AS version_number, version_name, is_current \
         FROM catalog_version WHERE product_id = $1 ORDER BY id",
        db.backend().bigint("version_number")
    );
    db.read_all(&sql, &[Param::Int(product_id)]).await
}

/// The owner form's fields; `price` is decimal text.
#[derive(Debug, Clone)]
pub struct OwnerFields {
    pub name: String,
    pub description: String,
    pub category_id: Option<i64>,
    pub price: String,
}

/// What happens to the image column on a save.
#[derive(Debug, Clone)]
pub enum ImageChange {
    Keep,
    /// Cleared with the form's clear box: Django stores an empty string.
    Clear,
    Set(String),
}

/// Inserts a product as `auto_now_add`/`auto_now` would stamp it; it starts
/// unpublished. Returns its id.
pub async fn insert_product(
    db: &Db,
    fields: &OwnerFields,
    image: Option<&str>,
    owner_id: i64,
) -> Result<i64, sqlx::Error> {
    let now = DjangoDateTime::now();
    let sql = format!(
        "INSERT INTO catalog_product \
         (name, description, image, category_id, price, created_at, updated_at, is_moderated, owner_id) \
         VALUES ($1, $2, $3, $4, {}, $6, $7, FALSE, $8) RETURNING id",
        db.backend().decimal("$5")
    );
    on_pool!(db, |pool| sqlx::query_scalar(&db.sql(&sql))
        .bind(&fields.name)
        .bind(&fields.description)
        .bind(image)
        .bind(fields.category_id)
        .bind(&fields.price)
        .bind(now)
        .bind(now)
        .bind(owner_id)
        .fetch_one(pool)
        .await)
}

/// Saves the owner form (inside the transaction that also saves versions).
pub async fn update_owner_fields(
    tx: &mut Tx<'_>,
    id: i64,
    fields: &OwnerFields,
    image: &ImageChange,
) -> Result<(), sqlx::Error> {
    let now = DjangoDateTime::now();
    let new_image = match image {
        ImageChange::Keep => None,
        ImageChange::Clear => Some(""),
        ImageChange::Set(path) => Some(path.as_str()),
    };
    let backend = tx.backend();
    let sql = format!(
        "UPDATE catalog_product SET name = $1, description = $2, category_id = $3, \
         price = {}, updated_at = $5{} WHERE id = ${}",
        backend.decimal("$4"),
        if new_image.is_some() {
            ", image = $6"
        } else {
            ""
        },
        if new_image.is_some() { 7 } else { 6 },
    );
    let sql = backend.sql(&sql);
    on_tx!(tx, |conn| {
        let mut query = sqlx::query(&sql)
            .bind(&fields.name)
            .bind(&fields.description)
            .bind(fields.category_id)
            .bind(&fields.price)
            .bind(now);
        if let Some(image) = new_image {
            query = query.bind(image);
        }
        query.bind(id).execute(conn).await.map(|_| ())
    })?;
    Ok(())
}

/// The moderator form's fields.
#[derive(Debug, Clone)]
pub struct ModeratorFields {
    pub is_moderated: bool,
    pub description: String,
    pub category_id: Option<i64>,
}

pub async fn update_moderator_fields(
    db: &Db,
    id: i64,
    fields: &ModeratorFields,
) -> Result<(), sqlx::Error> {
    let sql = "UPDATE catalog_product SET is_moderated = $1, description = $2, category_id = $3, \
               updated_at = $4 WHERE id = $5";
    on_pool!(db, |pool| sqlx::query(&db.sql(sql))
        .bind(fields.is_moderated)
        .bind(&fields.description)
        .bind(fields.category_id)
        .bind(DjangoDateTime::now())
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Deletes a product and, as Django's collector does before it, its versions.
pub async fn delete_product(db: &Db, id: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let backend = tx.backend();
    on_tx!(&mut tx, |conn| {
        sqlx::query(&backend.sql("DELETE FROM catalog_version WHERE product_id = $1"))
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(&backend.sql("DELETE FROM catalog_product WHERE id = $1"))
            .bind(id)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    })?;
    tx.commit().await
}

/// A version's editable fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFields {
    pub version_number: i64,
    pub version_name: String,
    pub is_current: bool,
}

/// What one formset submit does to a product's versions.
#[derive(Debug, Clone, Default)]
pub struct VersionChanges {
    pub delete: Vec<i64>,
    pub update: Vec<(i64, VersionFields)>,
    pub create: Vec<VersionFields>,
}

/// Applies the changes (only to this product's rows) and returns how many
/// versions are current afterwards, so the caller can refuse more than one.
/// Saves of one product's versions take turns (the product's row locked on
/// PostgreSQL and MySQL; on SQLite the transaction must come from
/// [`Db::begin_write`]), so the count sees every earlier save's versions.
pub async fn apply_version_changes(
    tx: &mut Tx<'_>,
    product_id: i64,
    changes: &VersionChanges,
) -> Result<i64, sqlx::Error> {
    let backend = tx.backend();
    on_tx!(tx, |conn| {
        if backend != Backend::Sqlite {
            sqlx::query(&backend.sql("SELECT 1 FROM catalog_product WHERE id = $1 FOR UPDATE"))
                .bind(product_id)
                .execute(&mut *conn)
                .await?;
        }
        for id in &changes.delete {
            sqlx::query(
                &backend.sql("DELETE FROM catalog_version WHERE id = $1 AND product_id = $2"),
            )
            .bind(id)
            .bind(product_id)
            .execute(&mut *conn)
            .await?;
        }
        for (id, fields) in &changes.update {
            sqlx::query(&backend.sql(
                "UPDATE catalog_version SET version_number = $1, version_name = $2, is_current = $3 \
                 WHERE id = $4 AND product_id = $5",
            ))
            .bind(fields.version_number)
            .bind(&fields.version_name)
            .bind(fields.is_current)
            .bind(id)
            .bind(product_id)
            .execute(&mut *conn)
            .await?;
        }
        for fields in &changes.create {
            sqlx::query(&backend.sql(
                "INSERT INTO catalog_version (product_id, version_number, version_name, is_current) \
                 VALUES ($1, $2, $3, $4)",
            ))
            .bind(product_id)
            .bind(fields.version_number)
            .bind(&fields.version_name)
            .bind(fields.is_current)
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query_scalar(
            &backend
                .sql("SELECT COUNT(*) FROM catalog_version WHERE product_id = $1 AND is_current"),
        )
        .bind(product_id)
        .fetch_one(&mut *conn)
        .await
    })
}
