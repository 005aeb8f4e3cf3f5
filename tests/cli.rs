//! The command line against real databases: migrate, check, serve, users,
//! groups and bad input, on SQLite and on PostgreSQL.

mod common;

use common::{backends, free_port, text, TestDb};
use unchained::on_pool;

#[tokio::test]
async fn migrate_is_complete_and_idempotent() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        let first = t.run(&["migrate"]);
        assert!(first.status.success(), "{backend}: {}", text(&first));
        assert!(
            text(&first).contains("Applying users.0001_initial... OK"),
            "{backend}: {}",
            text(&first)
        );

        let second = t.run(&["migrate"]);
        assert!(second.status.success(), "{backend}: {}", text(&second));
        assert!(
            text(&second).contains("No migrations to apply."),
            "{backend}: {}",
            text(&second)
        );

        let db = t.db().await;
        let rows = unchained::db::schema::django_rows();
        let (migrations, permissions): (i64, i64) = on_pool!(&db, |pool| {
            sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM django_migrations), (SELECT COUNT(*) FROM auth_permission)"
        )
        .fetch_one(pool)
        .await
        .unwrap()
        });
        assert_eq!(migrations as usize, rows.migrations.len(), "{backend}");
        assert_eq!(permissions as usize, rows.permissions.len(), "{backend}");

        let check = t.run(&["check"]);
        assert!(check.status.success(), "{backend}: {}", text(&check));
        assert!(
            text(&check).contains("safe to switch"),
            "{backend}: {}",
            text(&check)
        );
    }
}

#[tokio::test]
async fn migrations_started_at_once_on_an_empty_database_take_turns() {
    // Two servers of one site starting together on a new database: each runs
    // migrate, and the later must find the tables the earlier made.
    for backend in backends() {
        let t = TestDb::new(backend).await;
        let children: Vec<_> = (0..3)
            .map(|_| {
                t.command(&["migrate"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        for output in &outputs {
            assert!(output.status.success(), "{backend}: {}", text(output));
        }
        let applied = outputs
            .iter()
            .filter(|o| text(o).contains("Applying users.0001_initial... OK"))
            .count();
        assert_eq!(applied, 1, "{backend}: exactly one of them made the tables");
        let check = t.run(&["check"]);
        assert!(check.status.success(), "{backend}: {}", text(&check));
    }
}

#[tokio::test]
async fn check_names_a_dropped_column_and_migrate_refuses() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        assert!(t.run(&["migrate"]).status.success());
        let db = t.db().await;
        common::exec(&db, "ALTER TABLE users_user DROP COLUMN phone").await;
        db.close().await;

        let check = t.run(&["check"]);
        assert_eq!(check.status.code(), Some(1), "{backend}: {}", text(&check));
        assert!(
            text(&check).contains("column users_user.phone is missing"),
            "{backend}: {}",
            text(&check)
        );

        let migrate = t.run(&["migrate"]);
        assert!(!migrate.status.success(), "{backend}: {}", text(&migrate));
        assert!(
            text(&migrate).contains("users_user.phone"),
            "{backend}: {}",
            text(&migrate)
        );

        let serve = t.run(&["serve", "--bind", "127.0.0.1:0"]);
        assert!(
            !serve.status.success(),
            "{backend}: serve must refuse a broken schema"
        );
        assert!(
            text(&serve).contains("users_user.phone"),
            "{backend}: {}",
            text(&serve)
        );
    }
}

#[tokio::test]
async fn check_reports_unapplied_migrations_and_unsupported_hashes() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        assert!(t.run(&["migrate"]).status.success());
        let db = t.db().await;
        common::exec(&db, "DELETE FROM django_migrations WHERE app = 'catalog'").await;
        common::exec(
            &db,
            "INSERT INTO users_user (password, is_superuser, first_name, last_name, is_staff, is_active, \
             date_joined, email) VALUES ('crypt$$abcd', false, '', '', false, true, '2020-01-01 00:00:00', 'old@example.com')",
        )
        .await;
        db.close().await;
        let check = t.run(&["check"]);
        let out = text(&check);
        assert_eq!(check.status.code(), Some(1), "{backend}: {out}");
        assert!(
            out.contains("migration catalog.0001_initial is not applied"),
            "{backend}: {out}"
        );
        assert!(out.contains("\"crypt\""), "{backend}: {out}");
    }
}

#[tokio::test]
async fn serve_migrates_an_empty_database_and_answers() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        let port = free_port();
        let mut child = t
            .command(&["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_for_status(port, "/no-such-page/", "127.0.0.1").await;
        // As Django's DisallowedHost: a Host outside ALLOWED_HOSTS is refused.
        let foreign = wait_for_status(port, "/users/login/", "evil.test").await;
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(status, Some(404), "{backend}");
        assert_eq!(foreign, Some(400), "{backend}");
        assert!(
            t.run(&["check"]).status.success(),
            "{backend}: serve left the database migrated"
        );
    }
}

/// The address is checked as the model field checks it (Django's
/// `validate_email`, then `max_length=254`), as given.
#[tokio::test]
async fn createsuperuser_checks_the_address_as_django() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        assert!(t.run(&["migrate"]).status.success());
        let create = |email: &str| {
            t.command(&["createsuperuser", "--noinput", "--email", email])
                .env("DJANGO_SUPERUSER_PASSWORD", "correct horse battery")
                .output()
                .unwrap()
        };
        let long = format!("{}@example.com", "a".repeat(250));
        for (email, errors) in [
            ("ivan@example", vec!["Enter a valid email address."]),
            (" ivan@example.com", vec!["Enter a valid email address."]),
            ("иван@example.com", vec!["Enter a valid email address."]),
            (
                long.as_str(),
                vec!["Ensure this value has at most 254 characters (it has 262)."],
            ),
        ] {
            let out = create(email);
            assert!(!out.status.success(), "{backend} {email:?}: {}", text(&out));
            for error in errors {
                assert!(
                    text(&out).contains(error),
                    "{backend} {email:?}: {}",
                    text(&out)
                );
            }
        }
        // Django's validator allows `localhost` and quoted local parts.
        for email in ["admin@localhost", "\"admin\\ one\"@example.com"] {
            let out = create(email);
            assert!(out.status.success(), "{backend} {email:?}: {}", text(&out));
        }
    }
}

#[tokio::test]
async fn superuser_password_and_groups() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        assert!(t.run(&["migrate"]).status.success());

        let mut create = t.command(&[
            "createsuperuser",
            "--noinput",
            "--email",
            "Admin@Example.COM",
        ]);
        create.env("DJANGO_SUPERUSER_PASSWORD", "correct horse battery");
        let out = create.output().unwrap();
        assert!(out.status.success(), "{backend}: {}", text(&out));
        let again = t
            .command(&[
                "createsuperuser",
                "--noinput",
                "--email",
                "Admin@example.com",
            ])
            .env("DJANGO_SUPERUSER_PASSWORD", "x")
            .output()
            .unwrap();
        assert!(
            !again.status.success() && text(&again).contains("already taken"),
            "{backend}: {}",
            text(&again)
        );

        let db = t.db().await;
        let admin = unchained::db::users::by_email(&db, "Admin@example.com")
            .await
            .unwrap()
            .expect("domain lowercased");
        assert!(admin.is_superuser && admin.is_staff && admin.is_active);
        assert!(
            admin.password.starts_with("pbkdf2_sha256$1000000$"),
            "{}",
            admin.password
        );

        let change = t.run_with_input(
            &["changepassword", "Admin@example.com"],
            "new secret 1\nnew secret 1\n",
        );
        assert!(change.status.success(), "{backend}: {}", text(&change));
        let changed = unchained::db::users::by_id(&db, admin.id)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(changed.password, admin.password);
        let hashers = unchained::django::hashers::Hashers::default();
        assert!(
            hashers
                .check_password("new secret 1", &changed.password)
                .valid
        );

        let weak = t.run_with_input(
            &["changepassword", "Admin@example.com"],
            "12345678\n12345678\n",
        );
        assert!(!weak.status.success(), "{backend}: {}", text(&weak));
        assert!(
            text(&weak).contains("только из цифр"),
            "{backend}: {}",
            text(&weak)
        );
        let unchanged = unchained::db::users::by_id(&db, admin.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            unchanged.password, changed.password,
            "a refused password changes nothing"
        );
        let mismatch = t.run_with_input(&["changepassword", "Admin@example.com"], "one\ntwo\n");
        assert!(
            !mismatch.status.success() && text(&mismatch).contains("didn't match"),
            "{}",
            text(&mismatch)
        );

        let mut user = t.command(&[
            "createsuperuser",
            "--noinput",
            "--email",
            "moder@example.com",
        ]);
        assert!(user
            .env("DJANGO_SUPERUSER_PASSWORD", "pw-pw-pw-pw")
            .output()
            .unwrap()
            .status
            .success());
        let moderator = unchained::db::users::by_email(&db, "moder@example.com")
            .await
            .unwrap()
            .unwrap();
        on_pool!(&db, |pool| sqlx::query(
            &(&db).sql("UPDATE users_user SET is_superuser = $1 WHERE id = $2")
        )
        .bind(false)
        .bind(moderator.id)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        .unwrap());

        assert!(t.run(&["setup-moderators"]).status.success());
        assert!(
            t.run(&["setup-moderators"]).status.success(),
            "twice is harmless"
        );
        let add = t.run(&["group", "add-user", "moderators", "moder@example.com"]);
        assert!(add.status.success(), "{}", text(&add));
        let held = unchained::db::perms::user_permission_names(&db, moderator.id)
            .await
            .unwrap();
        let want: std::collections::HashSet<String> = unchained::db::perms::MODERATOR_PERMISSIONS
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(held, want, "{backend}");

        assert!(t.run(&["group", "create", "editors"]).status.success());
        let typo = t.run(&[
            "group",
            "grant",
            "editors",
            "catalog.change_product",
            "catalog.no_such_perm",
        ]);
        assert!(
            !typo.status.success() && text(&typo).contains("catalog.no_such_perm"),
            "{}",
            text(&typo)
        );
        let list = t.run(&["group", "list"]);
        assert!(
            text(&list).contains("editors: -"),
            "a failed grant grants nothing: {}",
            text(&list)
        );
        assert!(t
            .run(&["group", "grant", "editors", "catalog.change_product"])
            .status
            .success());
        assert!(t
            .run(&["group", "add-user", "editors", "moder@example.com"])
            .status
            .success());
        let held = unchained::db::perms::user_permission_names(&db, moderator.id)
            .await
            .unwrap();
        assert!(
            held.contains("catalog.change_product") && held.len() == 4,
            "{held:?}"
        );
        let missing = t.run(&["group", "add-user", "nobody", "moder@example.com"]);
        assert!(!missing.status.success() && text(&missing).contains("'nobody' does not exist"));
    }
}

#[tokio::test]
async fn clearsessions_removes_only_expired_ones() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        assert!(t.run(&["migrate"]).status.success());
        let db = t.db().await;
        let past =
            unchained::db::time::DjangoDateTime(chrono::Utc::now() - chrono::Duration::days(1));
        let future =
            unchained::db::time::DjangoDateTime(chrono::Utc::now() + chrono::Duration::days(1));
        for (key, expiry) in [
            ("expiredexpiredexpiredexpired0001", past),
            ("liveliveliveliveliveliveliv00001", future),
        ] {
            on_pool!(&db, |pool| {
                sqlx::query(&(&db).sql("INSERT INTO django_session (session_key, session_data, expire_date) VALUES ($1, 'x', $2)"))
                .bind(key)
                .bind(expiry)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
                .unwrap()
            });
        }
        let out = t.run(&["clearsessions"]);
        assert!(
            text(&out).contains("Removed 1 expired"),
            "{backend}: {}",
            text(&out)
        );
        let left: Vec<String> = on_pool!(&db, |pool| sqlx::query_scalar(
            "SELECT session_key FROM django_session"
        )
        .fetch_all(pool)
        .await
        .unwrap());
        assert_eq!(left, vec!["liveliveliveliveliveliveliv00001".to_string()]);
    }
}

#[tokio::test]
async fn bad_configuration_gets_one_line() {
    let t = TestDb::new("sqlite").await;
    let cases: [(&str, &str, &str); 10] = [
        ("DATABASE_URL", "oracle://x/y", "DATABASE_URL"),
        // A cache would keep sessions Django can still see after a logout
        // here: refused, naming the engines that work.
        (
            "SESSION_ENGINE",
            "django.contrib.sessions.backends.cache",
            "signed_cookies",
        ),
        (
            "SESSION_COOKIE_SAMESITE",
            "sometimes",
            "SESSION_COOKIE_SAMESITE",
        ),
        ("CSRF_COOKIE_NAME", "csrf token", "CSRF_COOKIE_NAME"),
        ("CSRF_HEADER_NAME", "X_CSRFTOKEN", "CSRF_HEADER_NAME"),
        ("LOGOUT_REDIRECT_URL", "", "LOGOUT_REDIRECT_URL"),
        ("SECRET_KEY", "", "SECRET_KEY"),
        ("DEBUG", "perhaps", "DEBUG"),
        ("EMAIL_PORT", "-1", "EMAIL_PORT"),
        (
            "PASSWORD_HASHERS",
            "django.contrib.auth.hashers.NoSuchHasher",
            "PASSWORD_HASHERS",
        ),
    ];
    for (name, value, variable) in cases {
        let out = t.command(&["check"]).env(name, value).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{name}={value}: {stderr}");
        assert!(
            stderr.contains(variable) && !stderr.contains("panicked"),
            "{name}={value}: {stderr}"
        );
    }
    let out = t
        .command(&["check"])
        .env("DATABASE_URL", "postgres://nobody:x@127.0.0.1:1/none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("cannot open the database")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("nobody:x"),
        "never print the database password: {stderr}"
    );
    // Django runs with any key but an empty one: a short key is used, with
    // Django's warning (security.W009).
    t.run(&["migrate"]);
    let out = t
        .command(&["check"])
        .env("SECRET_KEY", "q1x9Zb0pTz4mV3kL8wYc2RfN6uHs5JdA7eGi0oKtBnM=")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("WARNING: (security.W009) Your SECRET_KEY has less than 50 characters"),
        "{}",
        text(&out)
    );
    // A URL name the site does not have stops `serve` with one line, as
    // Django's `NoReverseMatch` would at the first anonymous visit.
    let out = t
        .command(&["serve", "--bind", "127.0.0.1:0"])
        .env("LOGIN_URL", "accounts:signin")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("configuration error: LOGIN_URL: \"accounts:signin\" is neither")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    let out = t.run(&["group", "grant"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap usage error: {}",
        text(&out)
    );
}

/// Polls until the server answers (at most ~30 s), returning the status code.
async fn wait_for_status(port: u16, path: &str, host: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..300 {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut response = String::new();
            stream.read_to_string(&mut response).await.ok()?;
            return response.split_whitespace().nth(1)?.parse().ok();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

/// User input written to the log (the contact form, as the original prints
/// it) is quoted with its control characters escaped: a newline in it
/// cannot forge a log line of its own.
#[tokio::test]
async fn user_input_cannot_forge_log_lines() {
    let t = TestDb::new("sqlite").await;
    let port = free_port();
    let log = t.path("serve.log");
    let mut child = t
        .command(&["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    assert_eq!(
        wait_for_status(port, "/contacts/", "127.0.0.1").await,
        Some(200)
    );
    let browser = common::app::Browser::new(&format!("http://127.0.0.1:{port}"));
    let forged = "2026-12-01T00:00:00Z  WARN unchained: FORGED";
    browser
        .submit(
            "/contacts/",
            &[
                ("name", "Иван\r\nx"),
                ("phone", "+7\u{1b}[31m"),
                ("message", &format!("hello\n{forged}\nbye")),
            ],
        )
        .await
        .assert_page(200, "the contact form");
    // SIGTERM: the log's writer thread writes what is queued first.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(child.wait().unwrap().success());
    let written = std::fs::read_to_string(&log).unwrap();
    let line = written
        .lines()
        .find(|l| l.contains("contact message"))
        .unwrap_or_else(|| panic!("the message is logged:\n{written}"));
    assert!(
        line.contains(r"hello\n2026-12-01T00:00:00Z  WARN unchained: FORGED\nbye"),
        "{line}"
    );
    assert!(
        line.contains(r"\u{1b}[31m") && line.contains(r"Иван\r\nx"),
        "{line}"
    );
    assert!(
        !written.lines().any(|l| l.starts_with(forged)),
        "a forged line:\n{written}"
    );
}

/// `DATABASE_URL` in the forms dj-database-url reads and sites use: a
/// password with escaped characters, the Unix socket as an encoded host and
/// as `?host=`, libpq options; a refused password is never printed.
#[tokio::test]
async fn postgres_urls_in_the_forms_sites_use() {
    use sqlx::Connection;
    if !backends().contains(&"postgres") {
        return;
    }
    let t = TestDb::new("postgres").await;
    let (base, name) = t.url.rsplit_once('/').unwrap();
    let (base, name) = (base.to_string(), name.to_string());
    let port = base.rsplit_once(':').unwrap().1.to_string();
    // The test server keeps its socket in its data folder (scripts/postgres.sh).
    let socket_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pgdata");
    assert!(
        socket_dir.join(format!(".s.PGSQL.{port}")).exists(),
        "the test server's socket in {}",
        socket_dir.display()
    );
    let role = format!("shop_{}", &name[name.len() - 8..]);
    let password = "p@ss/w:rd%?#";
    let mut admin = sqlx::PgConnection::connect(&t.url).await.unwrap();
    for sql in [
        format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"),
        format!("ALTER DATABASE {name} OWNER TO {role}"),
        format!("ALTER SCHEMA public OWNER TO {role}"),
    ] {
        sqlx::raw_sql(&sql).execute(&mut admin).await.unwrap();
    }
    let escaped = "p%40ss%2Fw%3Ard%25%3F%23";
    let encoded_dir = socket_dir.display().to_string().replace('/', "%2F");
    for url in [
        format!("postgresql://{role}:{escaped}@127.0.0.1:{port}/{name}?sslmode=disable&application_name=shop"),
        format!("pgsql://{role}:{escaped}@{encoded_dir}:{port}/{name}"),
        format!(
            "postgres:///{name}?host={}&port={port}&user={role}&password={escaped}",
            socket_dir.display()
        ),
    ] {
        let out = t.command(&["migrate"]).env("DATABASE_URL", &url).output().unwrap();
        assert!(out.status.success(), "{url}: {}", text(&out));
    }
    // (The test server trusts loopback, so the password itself is not
    // checked: what is shown is that its escaped characters do not break
    // the URL apart.) A login the server refuses names no password.
    let wrong = format!("postgres://nobody_{role}:not-{escaped}@127.0.0.1:{port}/{name}");
    let out = t
        .command(&["check"])
        .env("DATABASE_URL", &wrong)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        !text(&out).contains("not-p") && text(&out).contains("cannot open the database"),
        "{}",
        text(&out)
    );
    admin.close().await.unwrap();
    drop(t);
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {role}"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// A database a newer Django wrote: `check` warns that a login here would
/// lower its PBKDF2 hashes, unless `DJANGO_VERSION` names that release.
#[tokio::test]
async fn check_names_hashes_stronger_than_the_release_makes() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        assert!(t.run(&["migrate"]).status.success());
        let db = t.db().await;
        common::exec(
            &db,
            "INSERT INTO users_user (password, is_superuser, first_name, last_name, is_staff, is_active, \
             date_joined, email) VALUES ('pbkdf2_sha256$1500000$c2FsdHNhbHRzYWx0$aGFzaA==', false, '', '', \
             false, true, '2020-01-01 00:00:00', 'new@example.com')",
        )
        .await;
        db.close().await;
        let out = text(&t.run(&["check"]));
        assert!(
            out.contains("WARNING: 1 password hash(es) have more PBKDF2 iterations (up to 1500000) than Django 5.2 makes (1000000)")
                && out.contains("OK: this"),
            "{backend}: {out}"
        );
        let out = t
            .command(&["check"])
            .env("DJANGO_VERSION", "6.1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{backend}: {}", text(&out));
        assert!(
            !text(&out).contains("PBKDF2 iterations"),
            "{backend}: {}",
            text(&out)
        );
        let out = t
            .command(&["check"])
            .env("DJANGO_VERSION", "7.0")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{backend}: {}", text(&out));
    }
}
