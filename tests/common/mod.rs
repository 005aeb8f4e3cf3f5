//! Test helpers: a fresh database on each back end, and the `unchained`
//! binary run against it.
#![allow(dead_code)] // each test file uses a different part of this module

pub mod app;
pub mod fuzz;
pub mod proxy;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;

pub const SECRET_KEY: &str = "test-secret-key-with-enough-entropy-0123456789-abcdefghij";

/// The back ends a test runs on. PostgreSQL needs `UNCHAINED_TEST_POSTGRES`
/// (a base URL such as postgres://user:pass@127.0.0.1:54329), MariaDB
/// `UNCHAINED_TEST_MYSQL` (mysql://user:pass@127.0.0.1:33069), which the
/// project's test script sets after starting its servers.
pub fn backends() -> Vec<&'static str> {
    let mut backends = vec!["sqlite"];
    for (variable, backend, name) in [
        ("UNCHAINED_TEST_POSTGRES", "postgres", "PostgreSQL"),
        ("UNCHAINED_TEST_MYSQL", "mysql", "MariaDB"),
    ] {
        match std::env::var(variable) {
            Ok(url) if !url.is_empty() => backends.push(backend),
            _ => eprintln!(
                "{variable} is not set: the {name} part of this test NOT run (scripts/test.sh sets it)"
            ),
        }
    }
    backends
}

/// A fresh, empty database and a scratch folder beside it.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
}

/// A PostgreSQL or MariaDB test database is dropped with its `TestDb`, so
/// test runs do not pile databases up on the server (on PostgreSQL,
/// connections still open are ended: `WITH (FORCE)`).
impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, name)) = self
            .url
            .rsplit_once('/')
            .filter(|_| !self.url.starts_with("sqlite"))
        else {
            return;
        };
        let mysql = self.url.starts_with("mysql");
        let (base, name) = (base.to_string(), name.to_string());
        let shown = name.clone();
        // A runtime of its own: Drop may run inside or outside one.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                if mysql {
                    let mut admin = sqlx::MySqlConnection::connect(&base).await.ok()?;
                    return sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name}"))
                        .execute(&mut admin)
                        .await
                        .ok()
                        .map(drop);
                }
                let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
                    .await
                    .ok()?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()
                    .map(drop)
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("note: could not drop the test database {shown}");
        }
    }
}

impl TestDb {
    pub async fn new(backend: &str) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            "sqlite" => format!("sqlite:///{}/db.sqlite3", dir.path().display()),
            "postgres" => {
                let base =
                    std::env::var("UNCHAINED_TEST_POSTGRES").expect("UNCHAINED_TEST_POSTGRES");
                let name = format!("t_{}", random_suffix());
                let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create database");
                format!("{base}/{name}")
            }
            "mysql" => {
                let base = std::env::var("UNCHAINED_TEST_MYSQL").expect("UNCHAINED_TEST_MYSQL");
                let name = format!("t_{}", random_suffix());
                let mut admin = sqlx::MySqlConnection::connect(&base)
                    .await
                    .expect("connect to MariaDB");
                // As scripts/mariadb.sh makes them, and Django's docs ask.
                sqlx::raw_sql(&format!(
                    "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
                ))
                .execute(&mut admin)
                .await
                .expect("create database");
                format!("{base}/{name}")
            }
            other => panic!("unknown back end {other}"),
        };
        TestDb { url, dir }
    }

    pub fn settings_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), self.url.clone()),
            ("SECRET_KEY".into(), SECRET_KEY.into()),
            (
                "MEDIA_ROOT".into(),
                self.dir.path().join("media").display().to_string(),
            ),
        ]
    }

    /// The command, with this database's settings and nothing from the
    /// developer's environment that could change the outcome.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_unchained"));
        command.args(args).current_dir(self.dir.path()).env_clear();
        command.env("PATH", std::env::var("PATH").unwrap_or_default());
        for (key, value) in self.settings_env() {
            command.env(key, value);
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run unchained")
    }

    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn unchained");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().expect("wait for unchained")
    }

    pub async fn db(&self) -> unchained::db::Db {
        let url = unchained::config::DatabaseUrl::parse(&self.url).unwrap();
        unchained::db::Db::connect(&url).await.expect("connect")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn random_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// Runs raw SQL (several statements allowed) on either back end.
pub async fn exec(db: &unchained::db::Db, sql: &str) {
    unchained::on_pool!(db, |pool| sqlx::raw_sql(sql)
        .execute(pool)
        .await
        .map(|_| ()))
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A port nothing listens on right now, on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `url` until it gives an HTTP answer (of any status: a site's
/// ALLOWED_HOSTS may refuse the loopback address), for at most 30 s, and
/// returns how long that took. Panics with `log()` (the server's output) when the time runs
/// out or `child` ends first.
pub async fn wait_until_up(child: &mut Child, url: &str, log: &dyn Fn() -> String) -> Duration {
    let started = Instant::now();
    let client = reqwest::Client::new();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited ({status}): {}", log());
        }
        if client.get(url).send().await.is_ok() {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Not left running past the test that started it.
    let _ = child.kill();
    let _ = child.wait();
    panic!("{url} did not answer within 30 s: {}", log());
}

/// A server process a test started: stopped when dropped, so a test that
/// panics leaves no server behind.
pub struct Server(pub Child);

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `unchained serve` on a free loopback port with these settings, its
/// standard error into `log`, once it answers. Returns it and its port.
pub async fn serve(t: &TestDb, settings: &[(&str, &str)], log: &Path) -> (Server, u16) {
    let port = free_port();
    let mut child = t
        .command(&["serve", "--bind", &format!("127.0.0.1:{port}")])
        .envs(settings.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("spawn unchained serve");
    let url = format!("http://127.0.0.1:{port}/users/login/");
    wait_until_up(&mut child, &url, &|| {
        std::fs::read_to_string(log).unwrap_or_default()
    })
    .await;
    (Server(child), port)
}
