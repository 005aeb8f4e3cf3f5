//! The Django schema: `migrate` (create what is missing, record what Django's
//! migrate records) and the comparison `check` is built on.
//!
//! The DDL in `schema/` was dumped from databases that Django 5.2's own
//! `migrate` made, so it is Django's to the letter. The expected shape of each
//! table is not written down a second time: it is read back from a scratch
//! copy of that DDL (an in-memory SQLite database, or a throw-away PostgreSQL
//! schema inside a transaction that is rolled back) with the same
//! introspection that reads the real database. MySQL commits DDL at once,
//! so there is no scratch copy to roll back: its expected shape is read
//! from the DDL text, which is `SHOW CREATE TABLE`'s own form.
//!
//! This project also has tables of its own (`schema/unchained/`, such as the
//! mail outbox). They are not Django's: `migrate` creates them when missing,
//! and the comparison neither expects them nor reports them as extra.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use sqlx::{Connection, Executor, Row};

use crate::db::mysql::NamedLock;
use crate::db::time::DjangoDateTime;
use crate::db::Db;

const SQLITE_DDL: &str = include_str!("../../schema/sqlite/schema.sql");
const POSTGRES_DDL: &str = include_str!("../../schema/postgres/schema.sql");
const MYSQL_DDL: &str = include_str!("../../schema/mysql/schema.sql");
const DJANGO_ROWS: &str = include_str!("../../schema/rows.json");
const SQLITE_OWN_DDL: &str = include_str!("../../schema/unchained/sqlite.sql");
const POSTGRES_OWN_DDL: &str = include_str!("../../schema/unchained/postgres.sql");
const MYSQL_OWN_DDL: &str = include_str!("../../schema/unchained/mysql.sql");
const SQLITE_PRODUCT_LIST: &str = include_str!("../../schema/unchained/product_list_sqlite.sql");
const POSTGRES_PRODUCT_LIST: &str =
    include_str!("../../schema/unchained/product_list_postgres.sql");
const MYSQL_PRODUCT_LIST: &str = include_str!("../../schema/unchained/product_list_mysql.sql");

/// One DDL statement and the table it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub table: String,
    pub sql: String,
}

/// The rows Django's `migrate` writes besides the tables.
#[derive(Debug, Deserialize)]
pub struct DjangoRows {
    /// `(app, name)` in the order Django applies them.
    pub migrations: Vec<(String, String)>,
    /// `(app_label, model)` in Django's id order.
    pub content_types: Vec<(String, String)>,
    /// `(app_label, model, codename, name)`.
    pub permissions: Vec<(String, String, String, String)>,
}

pub fn django_rows() -> DjangoRows {
    serde_json::from_str(DJANGO_ROWS).expect("schema/rows.json is valid")
}

/// Splits a DDL file into statements and names the table of each.
pub fn parse_ddl(ddl: &str) -> Result<Vec<Statement>, String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in ddl.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with("--")) {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            let sql = current.trim().trim_end_matches(';').trim().to_string();
            let table = table_of(&sql)
                .ok_or_else(|| format!("cannot tell which table this statement is for: {sql}"))?;
            statements.push(Statement { table, sql });
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        return Err(format!("unterminated statement: {}", current.trim()));
    }
    Ok(statements)
}

fn table_of(sql: &str) -> Option<String> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let after = |i: usize| -> Option<String> {
        let mut i = i;
        while matches!(
            upper.get(i).map(String::as_str),
            Some("ONLY" | "IF" | "NOT" | "EXISTS")
        ) {
            i += 1;
        }
        let name = words.get(i)?.split('(').next()?;
        let name = name.trim_matches(['"', '`']);
        Some(
            name.strip_prefix("public.")
                .unwrap_or(name)
                .trim_matches('"')
                .to_string(),
        )
    };
    match (upper.first()?.as_str(), upper.get(1)?.as_str()) {
        ("CREATE", "TABLE") | ("ALTER", "TABLE") => after(2),
        ("CREATE", "INDEX") | ("CREATE", "UNIQUE") => {
            let on = upper.iter().position(|w| w == "ON")?;
            after(on + 1)
        }
        _ => None,
    }
}

fn ddl(db: &Db) -> Vec<Statement> {
    let text = match db {
        Db::Sqlite(..) => SQLITE_DDL,
        Db::Postgres(_) => POSTGRES_DDL,
        Db::MySql(_) => MYSQL_DDL,
    };
    parse_ddl(text).expect("the schema/ DDL parses")
}

/// This project's own DDL (written `IF NOT EXISTS`, so running it again is harmless).
fn own_ddl(db: &Db) -> Vec<Statement> {
    let text = match db {
        Db::Sqlite(..) => SQLITE_OWN_DDL,
        Db::Postgres(_) => POSTGRES_OWN_DDL,
        Db::MySql(_) => MYSQL_OWN_DDL,
    };
    parse_ddl(text).expect("the schema/unchained DDL parses")
}

/// The names of this project's own tables.
pub fn own_tables() -> BTreeSet<String> {
    parse_ddl(SQLITE_OWN_DDL)
        .expect("the schema/unchained DDL parses")
        .into_iter()
        .map(|s| s.table)
        .collect()
}

/// A column as the database describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub sql_type: String,
    pub not_null: bool,
    pub default: Option<String>,
}

/// Table name to its columns, in column order.
pub type Shape = BTreeMap<String, Vec<Column>>;

async fn sqlite_shape(conn: &mut sqlx::SqliteConnection) -> Result<Shape, sqlx::Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut shape = Shape::new();
    for table in tables {
        let rows = sqlx::query(&format!(
            "PRAGMA table_info(\"{}\")",
            table.replace('"', "\"\"")
        ))
        .fetch_all(&mut *conn)
        .await?;
        let mut columns = Vec::new();
        for row in rows {
            columns.push(Column {
                name: row.try_get("name")?,
                sql_type: row.try_get::<String, _>("type")?.to_ascii_lowercase(),
                not_null: row.try_get::<i64, _>("notnull")? != 0,
                default: row.try_get("dflt_value")?,
            });
        }
        shape.insert(table, columns);
    }
    Ok(shape)
}

async fn postgres_shape(
    conn: &mut sqlx::PgConnection,
    namespace: &str,
) -> Result<Shape, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.relname::text AS table_name, a.attname::text AS column_name, \
                format_type(a.atttypid, a.atttypmod) AS sql_type, a.attnotnull AS not_null, \
                pg_get_expr(d.adbin, d.adrelid) AS column_default \
         FROM pg_attribute a \
         JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY c.relname, a.attnum",
    )
    .bind(namespace)
    .fetch_all(&mut *conn)
    .await?;
    let mut shape = Shape::new();
    for row in rows {
        let default: Option<String> = row.try_get("column_default")?;
        shape
            .entry(row.try_get("table_name")?)
            .or_insert_with(Vec::new)
            .push(Column {
                name: row.try_get("column_name")?,
                sql_type: row.try_get("sql_type")?,
                not_null: row.try_get("not_null")?,
                // A serial's nextval() names its schema; identity columns have none.
                default: default.filter(|d| !d.starts_with("nextval(")),
            });
    }
    Ok(shape)
}

/// A MySQL column type as this comparison reads it: integer display
/// widths go (MySQL 8 no longer shows them), but for `tinyint(1)`, which
/// is how a boolean shows.
fn mysql_type(column_type: &str) -> String {
    let lower = column_type.to_ascii_lowercase();
    for integer in ["bigint", "int", "smallint", "mediumint"] {
        if let Some(rest) = lower.strip_prefix(&format!("{integer}(")) {
            if let Some((_, after)) = rest.split_once(')') {
                return format!("{integer}{after}");
            }
        }
    }
    lower
}

/// The columns of each `CREATE TABLE` in `SHOW CREATE TABLE`'s form: one
/// line a column, `` `name` type [unsigned] [NOT NULL] [DEFAULT x] ...``.
fn mysql_ddl_shape(ddl: &str) -> Shape {
    let mut shape = Shape::new();
    for statement in parse_ddl(ddl).expect("the MySQL DDL parses") {
        if !statement.sql.starts_with("CREATE TABLE") {
            continue;
        }
        let columns = statement
            .sql
            .lines()
            .skip(1)
            .filter_map(|line| {
                let line = line.trim().trim_end_matches(',');
                let (name, rest) = line.strip_prefix('`')?.split_once('`')?;
                let words: Vec<&str> = rest.split_whitespace().collect();
                let mut sql_type = words.first()?.to_string();
                if words.get(1) == Some(&"unsigned") {
                    sql_type.push_str(" unsigned");
                }
                let default = words
                    .iter()
                    .position(|w| *w == "DEFAULT")
                    .and_then(|i| words.get(i + 1))
                    .filter(|value| **value != "NULL")
                    .map(|value| value.to_string());
                Some(Column {
                    name: name.to_string(),
                    sql_type: mysql_type(&sql_type),
                    not_null: rest.contains("NOT NULL"),
                    default,
                })
            })
            .collect();
        shape.insert(statement.table, columns);
    }
    shape
}

async fn mysql_shape(pool: &sqlx::MySqlPool) -> Result<Shape, sqlx::Error> {
    let rows: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
                CAST(IS_NULLABLE AS CHAR), CAST(COLUMN_DEFAULT AS CHAR) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         ORDER BY TABLE_NAME, ORDINAL_POSITION",
    )
    .fetch_all(pool)
    .await?;
    let mut shape = Shape::new();
    for (table, name, column_type, nullable, default) in rows {
        shape.entry(table).or_insert_with(Vec::new).push(Column {
            name,
            sql_type: mysql_type(&column_type),
            not_null: nullable == "NO",
            // MariaDB shows a default of NULL as the text NULL.
            default: default.filter(|d| d != "NULL"),
        });
    }
    Ok(shape)
}

/// The shape of the live database.
pub async fn actual_shape(db: &Db) -> Result<Shape, sqlx::Error> {
    match db {
        Db::Sqlite(pool, _) => sqlite_shape(&mut *pool.acquire().await?).await,
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            let namespace: String = sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(&mut *conn)
                .await?;
            postgres_shape(&mut conn, &namespace).await
        }
        Db::MySql(pool) => mysql_shape(pool).await,
    }
}

/// The shape Django's migrate gives, read back from a scratch copy of the DDL
/// once per back end and process: it depends on the DDL alone, and readiness
/// asks for it again every half minute.
pub async fn expected_shape(db: &Db) -> Result<Shape, sqlx::Error> {
    static SQLITE: tokio::sync::OnceCell<Shape> = tokio::sync::OnceCell::const_new();
    static POSTGRES: tokio::sync::OnceCell<Shape> = tokio::sync::OnceCell::const_new();
    let cell = match db {
        Db::Sqlite(..) => &SQLITE,
        Db::Postgres(_) => &POSTGRES,
        Db::MySql(_) => return Ok(mysql_ddl_shape(MYSQL_DDL)),
    };
    cell.get_or_try_init(|| read_expected_shape(db))
        .await
        .cloned()
}

async fn read_expected_shape(db: &Db) -> Result<Shape, sqlx::Error> {
    let statements = ddl(db);
    match db {
        Db::Sqlite(..) => {
            let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
            for statement in &statements {
                conn.execute(statement.sql.as_str()).await?;
            }
            sqlite_shape(&mut conn).await
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let namespace = format!("unchained_expected_{}", std::process::id());
            tx.execute(
                format!("CREATE SCHEMA {namespace}; SET LOCAL search_path TO {namespace}").as_str(),
            )
            .await?;
            for statement in &statements {
                tx.execute(statement.sql.as_str()).await?;
            }
            let shape = postgres_shape(&mut tx, &namespace).await;
            tx.rollback().await?;
            shape
        }
        Db::MySql(_) => Ok(mysql_ddl_shape(MYSQL_DDL)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Switching would break something.
    Error,
    /// Worth knowing, harmless to this backend.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    pub fn error(message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Error,
            message: message.into(),
        }
    }
    pub fn warning(message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            message: message.into(),
        }
    }
}

/// Every difference between the expected and the actual tables. Tables
/// missing altogether are reported separately from those that differ, since
/// `migrate` creates the first and refuses the second.
pub fn compare_shapes(expected: &Shape, actual: &Shape) -> (Vec<String>, Vec<Finding>) {
    let mut missing_tables = Vec::new();
    let mut findings = Vec::new();
    for (table, want) in expected {
        let Some(have) = actual.get(table) else {
            missing_tables.push(table.clone());
            continue;
        };
        for column in want {
            match have.iter().find(|c| c.name == column.name) {
                None => findings.push(Finding::error(format!(
                    "column {table}.{} is missing",
                    column.name
                ))),
                Some(found) => {
                    if found.sql_type != column.sql_type {
                        findings.push(Finding::error(format!(
                            "column {table}.{} has type {} where Django made {}",
                            column.name, found.sql_type, column.sql_type
                        )));
                    }
                    if found.not_null != column.not_null {
                        let null = |n: bool| if n { "NOT NULL" } else { "NULL" };
                        findings.push(Finding::error(format!(
                            "column {table}.{} is {} where Django made it {}",
                            column.name,
                            null(found.not_null),
                            null(column.not_null)
                        )));
                    }
                    if found.default != column.default {
                        findings.push(Finding::warning(format!(
                            "column {table}.{} has default {:?} where Django made {:?}",
                            column.name, found.default, column.default
                        )));
                    }
                }
            }
        }
        for extra in have
            .iter()
            .filter(|c| !want.iter().any(|w| w.name == c.name))
        {
            if extra.not_null && extra.default.is_none() {
                findings.push(Finding::error(format!(
                    "column {table}.{} is not Django's and is NOT NULL without a default, so inserts would fail",
                    extra.name
                )));
            } else {
                findings.push(Finding::warning(format!(
                    "column {table}.{} is not Django's; it is left alone",
                    extra.name
                )));
            }
        }
    }
    let own = own_tables();
    for table in actual
        .keys()
        .filter(|t| !expected.contains_key(*t) && !own.contains(*t))
    {
        findings.push(Finding::warning(format!(
            "table {table} is not part of this app; it is left alone"
        )));
    }
    (missing_tables, findings)
}

/// Migrations recorded in `django_migrations`, or none when the table is
/// missing from `actual` (the shape the caller has already read).
pub async fn applied_migrations(
    db: &Db,
    actual: &Shape,
) -> Result<BTreeSet<(String, String)>, sqlx::Error> {
    if !actual.contains_key("django_migrations") {
        return Ok(BTreeSet::new());
    }
    let rows: Vec<(String, String)> = crate::on_pool!(db, |pool| sqlx::query_as(
        "SELECT app, name FROM django_migrations"
    )
    .fetch_all(pool)
    .await)?;
    Ok(rows.into_iter().collect())
}

/// Schema findings (tables, columns, recorded migrations), without the data checks.
pub async fn schema_findings(db: &Db) -> Result<Vec<Finding>, sqlx::Error> {
    let actual = actual_shape(db).await?;
    let (missing, mut findings) = compare_shapes(&expected_shape(db).await?, &actual);
    for table in missing {
        findings.push(Finding::error(format!("table {table} is missing")));
    }
    let applied = applied_migrations(db, &actual).await?;
    let rows = django_rows();
    let expected: BTreeSet<_> = rows.migrations.iter().cloned().collect();
    for (app, name) in rows.migrations.iter().filter(|m| !applied.contains(*m)) {
        findings.push(Finding::error(format!(
            "migration {app}.{name} is not applied"
        )));
    }
    for (app, name) in applied.iter().filter(|m| !expected.contains(*m)) {
        findings.push(Finding::warning(format!(
            "migration {app}.{name} is recorded but unknown to this backend"
        )));
    }
    if let Db::MySql(pool) = db {
        findings.extend(mysql_character_sets(pool, &actual).await?);
    }
    findings.sort_by(|a, b| a.severity.cmp(&b.severity));
    Ok(findings)
}

/// Django's tables on MySQL whose character set is not `utf8mb4`, which
/// Django connects with: text outside it (emoji, and any character past
/// three bytes in `utf8mb3`) cannot be stored there.
async fn mysql_character_sets(
    pool: &sqlx::MySqlPool,
    actual: &Shape,
) -> Result<Vec<Finding>, sqlx::Error> {
    let tables: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(TABLE_COLLATION AS CHAR) \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
    )
    .fetch_all(pool)
    .await?;
    let django = mysql_ddl_shape(MYSQL_DDL);
    Ok(tables
        .into_iter()
        .filter(|(table, _)| django.contains_key(table) && actual.contains_key(table))
        .filter_map(|(table, collation)| {
            let collation = collation.unwrap_or_default();
            (!collation.starts_with("utf8mb4_")).then(|| {
                Finding::warning(format!(
                    "table {table} has the collation {collation:?}, not one of utf8mb4: \
                     text outside its character set cannot be stored"
                ))
            })
        })
        .collect())
}

/// What `migrate` did.
#[derive(Debug, Default)]
pub struct MigrateReport {
    pub created_tables: Vec<String>,
    pub recorded_migrations: Vec<String>,
    pub added_content_types: u64,
    pub added_permissions: u64,
    /// Columns added to this project's own tables, as `table.column`.
    pub added_columns: Vec<String>,
    /// The product list's indexes and count triggers were (re)made.
    pub made_product_list: bool,
}

impl MigrateReport {
    pub fn changed_nothing(&self) -> bool {
        self.created_tables.is_empty()
            && self.recorded_migrations.is_empty()
            && self.added_content_types == 0
            && self.added_permissions == 0
            && self.added_columns.is_empty()
            && !self.made_product_list
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the existing tables differ from Django's:\n{}", .0.iter().map(|f| format!("  - {}", f.message)).collect::<Vec<_>>().join("\n"))]
    Mismatch(Vec<Finding>),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Does what Django's `manage.py migrate` does for this app: creates the
/// missing tables and records the migrations, content types and permissions,
/// all in one transaction. Running it twice changes nothing the second time.
/// An existing table that differs from Django's is never touched: migrate
/// refuses and lists the differences.
pub async fn migrate(db: &Db) -> Result<MigrateReport, MigrateError> {
    // MySQL commits each CREATE TABLE at once, so there the transaction
    // below only holds the rows; a named lock keeps two servers apart.
    let lock = match db {
        Db::MySql(pool) => Some(NamedLock::acquire(pool, MIGRATE_LOCK, MIGRATE_PATIENCE).await?),
        _ => None,
    };
    let migrated = create_and_record(db).await;
    if let Some(lock) = lock {
        lock.release().await?;
    }
    let (actual, mut report) = migrated?;
    report.added_columns = add_own_columns(db, &actual).await?;
    report.made_product_list = ensure_product_list(db).await?;
    Ok(report)
}

/// What holds off a second server's `migrate`, and its product-list
/// script, on MySQL.
const MIGRATE_LOCK: &str = "unchained_migrate";
/// How long `migrate` waits for another server's to finish.
const MIGRATE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(300);

/// `migrate`'s tables and rows; returns the shape it found them in.
async fn create_and_record(db: &Db) -> Result<(Shape, MigrateReport), MigrateError> {
    crate::on_pool!(db, |pool| {
        // The lock comes before the plan: a second server starting on the
        // same empty database waits, then finds the tables made.
        let mut tx = match db {
            Db::Sqlite(..) => pool.begin_with("BEGIN IMMEDIATE").await?,
            Db::Postgres(_) | Db::MySql(_) => pool.begin_with("BEGIN").await?,
        };
        if matches!(db, Db::Postgres(_)) {
            sqlx::raw_sql("SELECT pg_advisory_xact_lock(8240533)")
                .execute(&mut *tx)
                .await?;
        }
        let actual = actual_shape(db).await?;
        let (missing, findings) = compare_shapes(&expected_shape(db).await?, &actual);
        let errors: Vec<Finding> = findings
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        if !errors.is_empty() {
            return Err(MigrateError::Mismatch(errors));
        }
        let own_missing = missing_own_tables(&actual);
        let statements: Vec<Statement> = ddl(db)
            .into_iter()
            .filter(|s| missing.contains(&s.table))
            .chain(
                own_ddl(db)
                    .into_iter()
                    .filter(|s| own_missing.contains(&s.table)),
            )
            .collect();
        let applied = applied_migrations(db, &actual).await?;
        let rows = django_rows();
        let mut report = MigrateReport {
            created_tables: missing.into_iter().chain(own_missing).collect(),
            ..MigrateReport::default()
        };
        // CREATE TABLE statements come first in the dumps; indexes and
        // constraints follow, so file order is creation-safe.
        for statement in &statements {
            sqlx::raw_sql(&creatable(&statement.sql))
                .execute(&mut *tx)
                .await?;
        }
        let now = DjangoDateTime::now();
        for (app, name) in rows.migrations.iter().filter(|m| !applied.contains(*m)) {
            sqlx::query(
                &db.sql("INSERT INTO django_migrations (app, name, applied) VALUES ($1, $2, $3)"),
            )
            .bind(app)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            report.recorded_migrations.push(format!("{app}.{name}"));
        }
        for (app_label, model) in &rows.content_types {
            report.added_content_types += sqlx::query(&db.sql(
                "INSERT INTO django_content_type (app_label, model) SELECT $1, $2 FROM (SELECT 1 AS one) AS one \
                 WHERE NOT EXISTS (SELECT 1 FROM django_content_type WHERE app_label = $3 AND model = $4)",
            ))
            .bind(app_label)
            .bind(model)
            .bind(app_label)
            .bind(model)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        for (app_label, model, codename, name) in &rows.permissions {
            report.added_permissions += sqlx::query(&db.sql(
                "INSERT INTO auth_permission (name, content_type_id, codename) \
                 SELECT $1, ct.id, $2 FROM django_content_type ct \
                 WHERE ct.app_label = $3 AND ct.model = $4 AND NOT EXISTS ( \
                     SELECT 1 FROM auth_permission p WHERE p.content_type_id = ct.id AND p.codename = $5)",
            ))
            .bind(name)
            .bind(codename)
            .bind(app_label)
            .bind(model)
            .bind(codename)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok((actual, report))
    })
}

/// A statement of a `schema/` dump as `migrate` runs it. MySQL's dump
/// names the character set and collation its tables got from the database;
/// Django names none, so tables take the database's own (`check` then
/// compares them, `mysql_findings`).
fn creatable(sql: &str) -> Cow<'_, str> {
    match sql.find(") ENGINE=InnoDB DEFAULT CHARSET=") {
        Some(at) => Cow::Owned(format!("{}) ENGINE=InnoDB", &sql[..at])),
        None => Cow::Borrowed(sql),
    }
}

/// Columns added to this project's own tables after they were first made,
/// with their SQL type on SQLite, PostgreSQL and MySQL (as
/// `schema/unchained/` declares them): added to a table an older version
/// made.
const OWN_ADDED_COLUMNS: [(&str, &str, [&str; 3]); 2] = [
    (
        "unchained_outbox",
        "backend",
        [
            "varchar(300) NULL",
            "character varying(300)",
            "varchar(300) DEFAULT NULL",
        ],
    ),
    (
        "unchained_outbox",
        "failed_at",
        [
            "datetime NULL",
            "timestamp with time zone",
            "datetime(6) DEFAULT NULL",
        ],
    ),
];

/// Adds the columns of [`OWN_ADDED_COLUMNS`] that an existing own table
/// lacks. Returns them as `table.column`.
async fn add_own_columns(db: &Db, actual: &Shape) -> Result<Vec<String>, sqlx::Error> {
    let mut added = Vec::new();
    for (table, column, [sqlite_type, postgres_type, mysql_type]) in OWN_ADDED_COLUMNS {
        let sql_type = match db {
            Db::Sqlite(..) => sqlite_type,
            Db::Postgres(_) => postgres_type,
            Db::MySql(_) => mysql_type,
        };
        let lacks = actual
            .get(table)
            .is_some_and(|columns| !columns.iter().any(|c| c.name == column));
        if lacks {
            let sql = format!("ALTER TABLE {table} ADD COLUMN {column} {sql_type}");
            let altered = crate::on_pool!(db, |pool| sqlx::raw_sql(&sql)
                .execute(pool)
                .await
                .map(|_| ()));
            if let Err(e) = altered {
                // Another server starting at the same moment may have added it.
                let now = actual_shape(db).await?;
                if !now
                    .get(table)
                    .is_some_and(|c| c.iter().any(|c| c.name == column))
                {
                    return Err(e);
                }
            }
            added.push(format!("{table}.{column}"));
        }
    }
    Ok(added)
}

fn missing_own_tables(actual: &Shape) -> Vec<String> {
    own_tables()
        .into_iter()
        .filter(|t| !actual.contains_key(t))
        .collect()
}

/// Creates this project's own tables when missing (as `migrate` does), for a
/// database that Django migrated: `serve` calls it before starting the mail
/// worker; and adds the columns a table made by an older version lacks.
/// Returns the tables created and the columns added.
pub async fn ensure_own_tables(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    let actual = actual_shape(db).await?;
    let missing = missing_own_tables(&actual);
    let added = add_own_columns(db, &actual).await?;
    if missing.is_empty() {
        return Ok(added);
    }
    let statements = own_ddl(db);
    crate::on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        if matches!(db, Db::Postgres(_)) {
            sqlx::raw_sql("SELECT pg_advisory_xact_lock(8240533)")
                .execute(&mut *tx)
                .await?;
        }
        for statement in statements.iter().filter(|s| missing.contains(&s.table)) {
            sqlx::raw_sql(&statement.sql).execute(&mut *tx).await?;
        }
        tx.commit().await
    })?;
    Ok(missing.into_iter().chain(added).collect())
}

fn product_list_script(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(..) => SQLITE_PRODUCT_LIST,
        Db::Postgres(_) => POSTGRES_PRODUCT_LIST,
        Db::MySql(_) => MYSQL_PRODUCT_LIST,
    }
}

/// The indexes and triggers a product-list script creates, by name.
fn product_list_objects(script: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in script.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let name = match words.as_slice() {
            ["CREATE", "INDEX", "IF", "NOT", "EXISTS", name, ..] => name,
            ["CREATE", "TRIGGER", name, ..] => name,
            _ => continue,
        };
        names.insert(name.trim_matches(['"', '`']).to_string());
    }
    names
}

/// The names of the indexes and triggers on catalog_product.
const SQLITE_PRODUCT_OBJECTS: &str =
    "SELECT name FROM sqlite_master WHERE tbl_name = 'catalog_product' AND type IN ('index', 'trigger')";
const POSTGRES_PRODUCT_OBJECTS: &str = "SELECT indexname::text FROM pg_indexes \
     WHERE schemaname = current_schema() AND tablename = 'catalog_product' \
     UNION ALL \
     SELECT t.tgname::text FROM pg_trigger t \
     JOIN pg_class c ON c.oid = t.tgrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = current_schema() AND c.relname = 'catalog_product' AND NOT t.tgisinternal";
const MYSQL_PRODUCT_OBJECTS: &str =
    "SELECT CAST(INDEX_NAME AS CHAR) FROM information_schema.STATISTICS \
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'catalog_product' \
     UNION ALL \
     SELECT CAST(TRIGGER_NAME AS CHAR) FROM information_schema.TRIGGERS \
     WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'catalog_product'";

/// The product counts made afresh on MySQL, where the script cannot hold
/// writers off itself: [`ensure_product_list`] runs it under `LOCK TABLES`.
/// (A table under `LOCK TABLES` may be named once a statement.)
const MYSQL_PRODUCT_RECOUNT: &str = "DELETE FROM unchained_product_count; \
     INSERT INTO unchained_product_count (owner_id, published, unpublished) \
     SELECT -1, coalesce(sum(is_moderated <> 0), 0), coalesce(sum(is_moderated = 0), 0) \
     FROM catalog_product; \
     INSERT INTO unchained_product_count (owner_id, published, unpublished) \
     SELECT coalesce(owner_id, 0), sum(is_moderated <> 0), sum(is_moderated = 0) \
     FROM catalog_product GROUP BY coalesce(owner_id, 0)";

/// Makes the product list's indexes and count triggers on a database that
/// lacks any of them (a new one, one Django migrated, or one where a Django
/// migration rebuilt catalog_product and so dropped them), and counts the
/// products afresh, with writers to catalog_product held off meanwhile.
/// Returns whether it had anything to do.
pub async fn ensure_product_list(db: &Db) -> Result<bool, sqlx::Error> {
    let script = product_list_script(db);
    let wanted = product_list_objects(script);
    let present: Vec<String> = match db {
        Db::Sqlite(pool, _) => {
            sqlx::query_scalar(SQLITE_PRODUCT_OBJECTS)
                .fetch_all(pool)
                .await?
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar(POSTGRES_PRODUCT_OBJECTS)
                .fetch_all(pool)
                .await?
        }
        Db::MySql(pool) => {
            sqlx::query_scalar(MYSQL_PRODUCT_OBJECTS)
                .fetch_all(pool)
                .await?
        }
    };
    if wanted.iter().all(|name| present.contains(name)) {
        return Ok(false);
    }
    match db {
        Db::Sqlite(pool, _) => {
            let mut conn = pool.acquire().await?;
            // IMMEDIATE: the write lock first, so the count sees every write.
            sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            match sqlx::raw_sql(script).execute(&mut *conn).await {
                Ok(_) => sqlx::raw_sql("COMMIT").execute(&mut *conn).await?,
                Err(e) => {
                    sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
                    return Err(e);
                }
            };
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::raw_sql(
                "SELECT pg_advisory_xact_lock(8240533); \
                 LOCK TABLE catalog_product IN SHARE ROW EXCLUSIVE MODE",
            )
            .execute(&mut *tx)
            .await?;
            // Another server may have made them while this one waited.
            let present: Vec<String> = sqlx::query_scalar(POSTGRES_PRODUCT_OBJECTS)
                .fetch_all(&mut *tx)
                .await?;
            if !wanted.iter().all(|name| present.contains(name)) {
                sqlx::raw_sql(script).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        Db::MySql(pool) => {
            let lock = NamedLock::acquire(pool, MIGRATE_LOCK, MIGRATE_PATIENCE).await?;
            let made = make_mysql_product_list(pool, script, &wanted).await;
            lock.release().await?;
            made?;
        }
    }
    Ok(true)
}

/// The product list's objects on MySQL (another server may have made them
/// while this one waited for the lock), then the counts, with writers to
/// catalog_product waiting on `LOCK TABLES` meanwhile.
async fn make_mysql_product_list(
    pool: &sqlx::MySqlPool,
    script: &str,
    wanted: &BTreeSet<String>,
) -> Result<(), sqlx::Error> {
    let present: Vec<String> = sqlx::query_scalar(MYSQL_PRODUCT_OBJECTS)
        .fetch_all(pool)
        .await?;
    if wanted.iter().all(|name| present.contains(name)) {
        return Ok(());
    }
    sqlx::raw_sql(script).execute(pool).await?;
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql("LOCK TABLES catalog_product READ, unchained_product_count WRITE")
        .execute(&mut *conn)
        .await?;
    let counted = sqlx::raw_sql(MYSQL_PRODUCT_RECOUNT)
        .execute(&mut *conn)
        .await;
    let unlocked = sqlx::raw_sql("UNLOCK TABLES").execute(&mut *conn).await;
    if unlocked.is_err() {
        // Its session ends, and with it the table locks.
        drop(conn.detach());
    }
    counted?;
    unlocked.map(drop)
}

/// True when the database holds no tables at all (a fresh file or database).
pub async fn is_empty(db: &Db) -> Result<bool, sqlx::Error> {
    Ok(actual_shape(db).await?.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_names_its_table() {
        for (name, text) in [
            ("sqlite", SQLITE_DDL),
            ("postgres", POSTGRES_DDL),
            ("mysql", MYSQL_DDL),
        ] {
            let statements = parse_ddl(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let tables: BTreeSet<_> = statements.iter().map(|s| s.table.as_str()).collect();
            for table in [
                "users_user",
                "catalog_product",
                "catalog_version",
                "django_session",
                "auth_permission",
            ] {
                assert!(tables.contains(table), "{name} DDL lacks {table}");
            }
            // The first statement for each table creates it.
            let mut seen = BTreeSet::new();
            for s in &statements {
                if seen.insert(s.table.clone()) {
                    assert!(
                        s.sql.to_ascii_uppercase().starts_with("CREATE TABLE"),
                        "{name}: {}",
                        s.sql
                    );
                }
            }
        }
    }

    #[test]
    fn the_product_list_makes_the_same_indexes_and_row_triggers_on_every_back_end() {
        let sqlite = product_list_objects(SQLITE_PRODUCT_LIST);
        let mut postgres = product_list_objects(POSTGRES_PRODUCT_LIST);
        // TRUNCATE, which fires no row trigger, exists on PostgreSQL only.
        assert!(postgres.remove("unchained_product_truncated"));
        assert_eq!(sqlite, postgres);
        assert_eq!(sqlite, product_list_objects(MYSQL_PRODUCT_LIST));
        assert_eq!(sqlite.len(), 6, "{sqlite:?}");
        assert!(sqlite
            .iter()
            .all(|name| name.starts_with("unchained_product_")));
    }

    #[test]
    fn own_tables_are_created_first_and_named_alike_on_every_back_end() {
        let sqlite = parse_ddl(SQLITE_OWN_DDL).unwrap();
        let postgres = parse_ddl(POSTGRES_OWN_DDL).unwrap();
        let mysql = parse_ddl(MYSQL_OWN_DDL).unwrap();
        let tables =
            |s: &[Statement]| -> BTreeSet<String> { s.iter().map(|s| s.table.clone()).collect() };
        assert_eq!(tables(&sqlite), tables(&postgres));
        assert_eq!(tables(&sqlite), tables(&mysql));
        assert_eq!(
            own_tables(),
            [
                "unchained_login_failure",
                "unchained_outbox",
                "unchained_password_reset",
                "unchained_product_count"
            ]
            .map(String::from)
            .into()
        );
        for s in sqlite.iter().chain(&postgres).chain(&mysql) {
            assert!(s.sql.contains("IF NOT EXISTS"), "{}", s.sql);
        }
        // The columns the MySQL tables declare are those of the others.
        let names = |shape: &Shape| -> BTreeMap<String, Vec<String>> {
            shape
                .iter()
                .map(|(t, c)| (t.clone(), c.iter().map(|c| c.name.clone()).collect()))
                .collect()
        };
        let mysql_shape = mysql_ddl_shape(MYSQL_OWN_DDL);
        assert_eq!(mysql_shape.len(), 4);
        assert_eq!(
            names(&mysql_shape)["unchained_outbox"],
            [
                "id",
                "recipient",
                "subject",
                "body",
                "created_at",
                "attempts",
                "next_attempt_at",
                "sent_at",
                "last_error",
                "backend",
                "failed_at"
            ]
        );
        // None of them is Django's.
        let django: BTreeSet<_> = parse_ddl(SQLITE_DDL)
            .unwrap()
            .into_iter()
            .map(|s| s.table)
            .collect();
        assert!(own_tables().is_disjoint(&django));
        assert!(sqlite[0].sql.starts_with("CREATE TABLE"));
        assert!(postgres[0].sql.starts_with("CREATE TABLE"));
    }

    #[test]
    fn mysql_columns_are_read_from_show_create_table_form() {
        let shape = mysql_ddl_shape(MYSQL_DDL);
        assert_eq!(shape.len(), 13);
        let column = |table: &str, name: &str| {
            shape[table]
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("{table}.{name}"))
                .clone()
        };
        assert_eq!(
            column("users_user", "email"),
            super::Column {
                name: "email".into(),
                sql_type: "varchar(254)".into(),
                not_null: true,
                default: None
            }
        );
        assert_eq!(column("users_user", "is_active").sql_type, "tinyint(1)");
        assert_eq!(column("users_user", "id").sql_type, "bigint");
        assert_eq!(column("auth_group", "id").sql_type, "int");
        let number = column("catalog_version", "version_number");
        assert_eq!(
            (number.sql_type.as_str(), number.not_null),
            ("int unsigned", true)
        );
        let phone = column("users_user", "phone");
        assert!(!phone.not_null && phone.default.is_none(), "{phone:?}");
        assert_eq!(column("catalog_product", "price").sql_type, "decimal(10,2)");
        // MySQL 8 leaves integer display widths out; MariaDB shows them.
        assert_eq!(mysql_type("INT(10) UNSIGNED"), "int unsigned");
        assert_eq!(mysql_type("bigint(20)"), "bigint");
        assert_eq!(mysql_type("tinyint(1)"), "tinyint(1)");
        // As migrate runs a dumped statement: the database's charset.
        let created = creatable("CREATE TABLE `t` (\n  `id` int(11)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci");
        assert_eq!(
            created,
            "CREATE TABLE `t` (\n  `id` int(11)\n) ENGINE=InnoDB"
        );
    }

    #[test]
    fn table_names_are_read_from_each_statement_kind() {
        assert_eq!(
            table_of("CREATE TABLE \"a_b\" (\"id\" integer)").as_deref(),
            Some("a_b")
        );
        assert_eq!(
            table_of("CREATE UNIQUE INDEX \"x\" ON \"t\" (\"c\")").as_deref(),
            Some("t")
        );
        assert_eq!(
            table_of("ALTER TABLE ONLY public.t ADD CONSTRAINT k PRIMARY KEY (id)").as_deref(),
            Some("t")
        );
        assert_eq!(
            table_of("CREATE INDEX i ON public.t USING btree (c)").as_deref(),
            Some("t")
        );
        assert_eq!(table_of("SELECT 1"), None);
    }

    #[test]
    fn rows_hold_the_custom_permissions() {
        let rows = django_rows();
        for codename in [
            "can_publish_product",
            "can_change_description",
            "can_change_category",
        ] {
            assert!(rows
                .permissions
                .iter()
                .any(|p| p.0 == "catalog" && p.1 == "product" && p.2 == codename));
        }
        assert!(rows
            .migrations
            .contains(&("users".into(), "0001_initial".into())));
    }

    fn column(name: &str, sql_type: &str, not_null: bool) -> Column {
        Column {
            name: name.into(),
            sql_type: sql_type.into(),
            not_null,
            default: None,
        }
    }

    #[test]
    fn shape_differences_are_named() {
        let expected: Shape = [
            (
                "t".to_string(),
                vec![
                    column("id", "integer", true),
                    column("phone", "varchar(35)", false),
                ],
            ),
            ("gone".to_string(), vec![column("id", "integer", true)]),
        ]
        .into();
        let actual: Shape = [
            (
                "t".to_string(),
                vec![
                    column("id", "bigint", true),
                    column("extra", "text", true),
                    column("loose", "text", false),
                ],
            ),
            ("other".to_string(), vec![column("id", "integer", true)]),
            (
                "unchained_outbox".to_string(),
                vec![column("id", "integer", true)],
            ),
        ]
        .into();
        let (missing, findings) = compare_shapes(&expected, &actual);
        assert_eq!(missing, vec!["gone".to_string()]);
        let messages: Vec<_> = findings
            .iter()
            .map(|f| (f.severity, f.message.as_str()))
            .collect();
        assert!(messages.contains(&(Severity::Error, "column t.phone is missing")));
        assert!(messages.contains(&(
            Severity::Error,
            "column t.id has type bigint where Django made integer"
        )));
        assert!(messages
            .iter()
            .any(|(s, m)| *s == Severity::Error && m.starts_with("column t.extra")));
        assert!(messages
            .iter()
            .any(|(s, m)| *s == Severity::Warning && m.starts_with("column t.loose")));
        assert!(messages
            .iter()
            .any(|(s, m)| *s == Severity::Warning && m.starts_with("table other")));
        // This project's own tables are neither expected nor extra.
        assert!(!messages.iter().any(|(_, m)| m.contains("unchained_outbox")));
    }
}
