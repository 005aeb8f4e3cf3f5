//! Criterion micro-benchmarks of the pieces every request pays for: the
//! compatibility core (PBKDF2 verify, session decode, CSRF unmask), the
//! product list's template render, counting a request for the metrics,
//! and the product list's query on a catalog of 100,000 products (SQLite, and PostgreSQL when
//! `UNCHAINED_TEST_POSTGRES` is set).
//!
//! ```sh
//! cargo bench --bench core -- --quick
//! ```
//!
//! Under `cargo test --all-targets` Criterion runs each benchmark once (its
//! test mode); the whole run then takes a few seconds, most of it filling
//! the catalogs (about a second each).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{Map, Value as Json};

use unchained::config::DatabaseUrl;
use unchained::db::catalog::{self, Product, Visibility};
use unchained::db::time::DjangoDateTime;
use unchained::db::users::User;
use unchained::db::{schema, Db};
use unchained::django::perms::UserPerms;
use unchained::django::{csrf, hashers::Hashers, sessions};
use unchained::web::catalog::list_context;
use unchained::web::csrf::Csrf;
use unchained::web::templates::{RequestContext, Templates};

const SECRET_KEY: &str = "bench-secret-key-with-enough-entropy-0123456789-abcdefghij";

/// `ListView.paginate_by` of the product list.
const PAGE_SIZE: i64 = 9;

// 1. PBKDF2 ------------------------------------------------------------------

fn pbkdf2(c: &mut Criterion) {
    // Django 5.2's defaults: pbkdf2_sha256 first, 1,000,000 iterations.
    let hashers = Hashers::default();
    assert_eq!(hashers.params().pbkdf2_iterations, 1_000_000);
    let encoded = hashers.make_password("correct horse battery staple");
    assert!(encoded.starts_with("pbkdf2_sha256$1000000$"), "{encoded}");
    assert!(
        hashers
            .check_password("correct horse battery staple", &encoded)
            .valid
    );

    let mut group = c.benchmark_group("hashers");
    group.sample_size(10);
    group.bench_function("check_password/pbkdf2_sha256_1M", |b| {
        b.iter(|| {
            hashers.check_password(
                black_box("correct horse battery staple"),
                black_box(&encoded),
            )
        })
    });
    group.finish();
}

// 2. Session decode ----------------------------------------------------------

fn session(c: &mut Criterion) {
    // What a login stores: the user's id, back end and session auth hash.
    let password = Hashers::default()
        .make_password_with_salt("secret", "bench0salt0bench0salt0")
        .expect("a valid salt");
    let mut map = Map::new();
    map.insert(sessions::SESSION_KEY.into(), Json::from("42"));
    map.insert(
        sessions::BACKEND_SESSION_KEY.into(),
        Json::from(sessions::MODEL_BACKEND),
    );
    map.insert(
        sessions::HASH_SESSION_KEY.into(),
        Json::from(sessions::session_auth_hash(&password, SECRET_KEY)),
    );
    // The django_session.session_data column.
    let session_data = sessions::encode(&map, SECRET_KEY);
    let no_fallbacks: &[&str] = &[];
    assert_eq!(
        sessions::decode(&session_data, SECRET_KEY, no_fallbacks).as_ref(),
        Some(&map)
    );

    c.bench_function("sessions/decode", |b| {
        b.iter(|| sessions::decode(black_box(&session_data), SECRET_KEY, no_fallbacks))
    });
}

// 3. CSRF unmask -------------------------------------------------------------

fn csrf_unmask(c: &mut Criterion) {
    let secret = csrf::new_secret();
    let token = csrf::mask_cipher_secret(&secret);
    assert_eq!(token.len(), csrf::CSRF_TOKEN_LENGTH);
    assert_eq!(csrf::unmask_cipher_token(&token), secret);

    c.bench_function("csrf/unmask_cipher_token", |b| {
        b.iter(|| csrf::unmask_cipher_token(black_box(&token)))
    });
}

// 4. The list's render -------------------------------------------------------

/// The list page as `web::catalog::home` renders it, for a logged-in user
/// without permissions.
fn render_list(
    templates: &Templates,
    products: &[Product],
    perms: &Arc<UserPerms>,
    number: i64,
    count: i64,
) -> String {
    let ctx = RequestContext {
        user: Some(Arc::new(viewer())),
        csrf: Csrf::default(),
        path: "/".into(),
        perms: Arc::clone(perms),
    };
    ctx.render_with(
        templates,
        "catalog/product_list.html",
        list_context(products.to_vec(), number, count),
    )
    .expect("the product list renders")
}

fn viewer() -> User {
    User {
        id: 1,
        password: String::new(),
        last_login: None,
        is_superuser: false,
        first_name: String::new(),
        last_name: String::new(),
        is_staff: false,
        is_active: true,
        date_joined: DjangoDateTime(chrono::DateTime::from_timestamp(1_735_689_600, 0).unwrap()),
        email: "viewer@example.com".into(),
        avatar: None,
        phone: None,
        country: None,
        token: None,
    }
}

fn sample_products() -> Vec<Product> {
    let at = |s: i64| {
        DjangoDateTime(chrono::DateTime::from_timestamp(1_735_689_600 + s, 123_000).unwrap())
    };
    (1..=PAGE_SIZE)
        .map(|i| Product {
            id: 1000 - i,
            name: format!("Смартфон модель {i}"),
            description: Some(format!(
                "Описание товара номер {i}: экран 6,1\", память 128 ГБ, <b>без</b> «рамок» & с NFC."
            )),
            image: (i % 3 != 0).then(|| format!("products/photo {i}.jpg")),
            category_id: (i % 4 != 0).then_some(i % 3 + 1),
            category_name: (i % 4 != 0).then(|| format!("Категория {}", i % 3 + 1)),
            price: format!("{}.{:02}", 1000 * i + 99, i * 7 % 100),
            created_at: at(-i * 60),
            updated_at: at(-i * 30),
            is_moderated: i % 5 != 0,
            owner_id: (i % 7 != 0).then_some(i % 3 + 1),
            owner_email: (i % 7 != 0).then(|| format!("owner{}@example.com", i % 3 + 1)),
        })
        .collect()
}

fn render(c: &mut Criterion) {
    let templates = Templates::load(chrono_tz::Europe::Moscow).expect("templates parse");
    let products = sample_products();
    let perms = Arc::new(UserPerms {
        is_active: true,
        ..UserPerms::default()
    });
    // Page 2 of 40 products: pagination links both ways.
    let html = render_list(&templates, &products, &perms, 2, 40);
    assert_eq!(html.matches("class=\"product-card\"").count(), 9, "{html}");
    assert!(html.contains("rel=\"prev\"") && html.contains("rel=\"next\""));

    c.bench_function("render/product_list_9_products", |b| {
        b.iter(|| render_list(&templates, black_box(&products), &perms, 2, 40))
    });
}

// 5. The list query ----------------------------------------------------------

const USERS: i64 = 10;
const PRODUCTS: i64 = 100_000;

async fn exec(db: &Db, sql: &str) {
    unchained::on_pool!(db, |pool| sqlx::raw_sql(sql)
        .execute(pool)
        .await
        .map(|_| ()))
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn scalar(db: &Db, sql: &str) -> i64 {
    unchained::on_pool!(db, |pool| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await)
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Ten users, three categories and 100,000 products as Django
/// would write them (one statement each), then ANALYZE. Returns the first
/// user's id: the viewer, who owns a tenth of the products.
async fn fill(db: &Db, postgres: bool) -> i64 {
    let products = PRODUCTS;
    let (users, categories, insert) = if postgres {
        (
            format!(
                "INSERT INTO users_user (password, last_login, is_superuser, first_name, last_name, \
                 is_staff, is_active, date_joined, email, avatar, phone, country, token) \
                 SELECT '!', NULL, false, '', '', false, true, now(), 'user' || i || '@example.com', \
                 '', '', '', NULL FROM generate_series(1, {USERS}) AS i"
            ),
            "INSERT INTO catalog_category (name, description) \
             SELECT 'Категория ' || i, '' FROM generate_series(1, 3) AS i"
                .to_string(),
            // Three products a second, a third published, owners in turn.
            format!(
                "INSERT INTO catalog_product (name, description, image, price, created_at, updated_at, \
             is_moderated, category_id, owner_id) \
             SELECT 'Продукт ' || i, 'Описание ' || i, '', (i % 5000) + 10, \
             timestamptz '2024-01-01 00:00:00+00' + (i / 3) * interval '1 second', now(), i % 3 = 0, \
             (SELECT min(id) FROM catalog_category) + i % 3, (SELECT min(id) FROM users_user) + i % {USERS} \
             FROM generate_series(1, {products}) AS i"
            ),
        )
    } else {
        (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {USERS}) \
                 INSERT INTO users_user (password, last_login, is_superuser, first_name, last_name, \
                 is_staff, is_active, date_joined, email, avatar, phone, country, token) \
                 SELECT '!', NULL, 0, '', '', 0, 1, datetime('now'), 'user' || i || '@example.com', \
                 '', '', '', NULL FROM n"
            ),
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) \
             INSERT INTO catalog_category (name, description) SELECT 'Категория ' || i, '' FROM n"
                .to_string(),
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {products}) \
             INSERT INTO catalog_product (name, description, image, price, created_at, updated_at, \
             is_moderated, category_id, owner_id) \
             SELECT 'Продукт ' || i, 'Описание ' || i, '', (i % 5000) + 10, \
             datetime('2024-01-01', '+' || (i / 3) || ' seconds'), datetime('2024-01-01'), i % 3 = 0, \
             (SELECT min(id) FROM catalog_category) + i % 3, (SELECT min(id) FROM users_user) + i % {USERS} \
             FROM n"
            ),
        )
    };
    exec(db, &users).await;
    exec(db, &categories).await;
    exec(db, &insert).await;
    catalog::fold_product_counts(db).await.expect("fold counts");
    exec(db, "ANALYZE").await;
    assert_eq!(
        scalar(db, "SELECT count(*) FROM catalog_product").await,
        products
    );
    scalar(db, "SELECT min(id) FROM users_user").await
}

/// `?page=last` as `home` serves it: the count, then the last page.
async fn last_page(db: &Db, visibility: Visibility) -> (Vec<Product>, i64) {
    let count = catalog::count_visible(db, visibility).await.unwrap();
    let pages = ((count + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    catalog::page_visible(db, visibility, PAGE_SIZE, (pages - 1) * PAGE_SIZE)
        .await
        .unwrap()
}

fn list_query_on(c: &mut Criterion, rt: &tokio::runtime::Runtime, db: &Db, backend: &str) {
    let started = std::time::Instant::now();
    let owner = rt.block_on(fill(db, backend == "postgresql"));
    eprintln!(
        "{backend}: {} products inserted and analysed in {:.1?}",
        PRODUCTS,
        started.elapsed()
    );
    let visibility = Visibility::PublishedOrOwnedBy(owner);
    // Sanity: full pages where expected, and the count the triggers keep.
    let (first, count) = rt
        .block_on(catalog::page_visible(db, visibility, PAGE_SIZE, 0))
        .unwrap();
    assert_eq!(first.len(), PAGE_SIZE as usize);
    assert!(count > 4500, "{backend}: only {count} visible products");
    let (page_500, _) = rt
        .block_on(catalog::page_visible(db, visibility, PAGE_SIZE, 4491))
        .unwrap();
    assert_eq!(page_500.len(), PAGE_SIZE as usize);
    let (last, _) = rt.block_on(last_page(db, visibility));
    assert!(!last.is_empty());

    let mut group = c.benchmark_group(format!("list_query/{backend}"));
    group.bench_function("page_1", |b| {
        b.to_async(rt)
            .iter(|| catalog::page_visible(db, black_box(visibility), PAGE_SIZE, 0))
    });
    group.bench_function("page_500", |b| {
        b.to_async(rt)
            .iter(|| catalog::page_visible(db, black_box(visibility), PAGE_SIZE, 4491))
    });
    group.bench_function("page_last", |b| {
        b.to_async(rt).iter(|| last_page(db, black_box(visibility)))
    });
    group.finish();
}

fn list_query(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    // SQLite, in a temporary folder.
    {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = DatabaseUrl::Sqlite(dir.path().join("bench.sqlite3"));
        let db = rt.block_on(async {
            let db = Db::connect(&url).await.expect("open SQLite");
            schema::migrate(&db).await.expect("migrate SQLite");
            db
        });
        list_query_on(c, &rt, &db, "sqlite");
        rt.block_on(db.close());
    }

    // PostgreSQL, in a database of its own, dropped at the end.
    let base = match std::env::var("UNCHAINED_TEST_POSTGRES") {
        Ok(base) if !base.is_empty() => base.trim_end_matches('/').to_string(),
        _ => {
            eprintln!("UNCHAINED_TEST_POSTGRES is not set: list_query/postgresql NOT run");
            return;
        }
    };
    let name = format!("bench_list_{}", std::process::id());
    let admin_sql = |sql: String| {
        let admin_url = format!("{base}/postgres");
        rt.block_on(async move {
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to PostgreSQL");
            sqlx::raw_sql(&sql)
                .execute(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            admin.close().await.ok();
        })
    };
    admin_sql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    admin_sql(format!("CREATE DATABASE {name}"));
    // Dropped even when a benchmark panics.
    struct DropDb<F: FnMut()>(F);
    impl<F: FnMut()> Drop for DropDb<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    let _drop = DropDb(|| admin_sql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")));
    let url = DatabaseUrl::parse(&format!("{base}/{name}")).expect("a PostgreSQL URL");
    let db = rt.block_on(async {
        let db = Db::connect(&url).await.expect("open PostgreSQL");
        schema::migrate(&db).await.expect("migrate PostgreSQL");
        db
    });
    list_query_on(c, &rt, &db, "postgresql");
    rt.block_on(db.close());
}

// 6. Metrics ----------------------------------------------------------------

/// What the access-log layer adds to a request when metrics are on: a
/// series already seen (a read lock, two atomic additions).
fn metrics_record(c: &mut Criterion) {
    use axum::http::Method;
    use unchained::web::metrics::RequestMetrics;
    let metrics = RequestMetrics::default();
    for route in ["/", "/products/{pk}/", "/users/login/", "/contacts/"] {
        for status in [200, 302, 404] {
            metrics.record(route, &Method::GET, status, Duration::from_micros(300));
        }
    }
    c.bench_function("metrics: count a request", |b| {
        b.iter(|| {
            metrics.record(
                black_box("/users/login/"),
                black_box(&Method::GET),
                black_box(200),
                black_box(Duration::from_micros(420)),
            )
        })
    });
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = pbkdf2, session, csrf_unmask, render, metrics_record, list_query
}
criterion_main!(benches);
