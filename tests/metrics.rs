//! The Prometheus metrics, on SQLite and PostgreSQL: off by default; at
//! `METRICS_PATH` of the site (outside `ALLOWED_HOSTS`) or on a listener of
//! their own (`METRICS_ADDRESS`); request counts and histograms that rise
//! by exactly what was sent, by route template; the pools, the hashing
//! pool's refusals, database errors, the outbox and the process's memory;
//! a path a page answers is refused at start-up.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::app::{spawn_app_with, App, Mail, GOOD_PASSWORD};
use common::{backends, exec, free_port, text, TestDb};
use unchained::db::outbox;
use unchained::mail::Email;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One scrape: `name{labels}` → value, every sample checked to belong to
/// a family with its HELP and TYPE lines.
struct Scrape {
    samples: BTreeMap<String, f64>,
    text: String,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut helped = Vec::new();
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP name text");
                assert!(!help.is_empty(), "{line}");
                helped.push(name.to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                assert!(
                    helped.last() == Some(&name.to_string()),
                    "HELP before TYPE: {line}"
                );
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "one TYPE line per family: {line}"
                );
            } else {
                assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
                let (series, value) = line.rsplit_once(' ').expect("series value");
                let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
                let name = series.split('{').next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| {
                        name.strip_suffix(suffix).filter(|base| {
                            types.get(*base).map(String::as_str) == Some("histogram")
                        })
                    })
                    .unwrap_or(name);
                assert!(types.contains_key(family), "a sample of no family: {line}");
                assert!(
                    !family.ends_with("_total") || types[family] == "counter",
                    "{line}"
                );
                assert!(
                    samples.insert(series.to_string(), value).is_none(),
                    "a series twice: {line}"
                );
            }
        }
        Scrape {
            samples,
            text: text.to_string(),
        }
    }

    fn get(&self, series: &str) -> Option<f64> {
        self.samples.get(series).copied()
    }

    fn value(&self, series: &str) -> f64 {
        self.get(series)
            .unwrap_or_else(|| panic!("no {series} in\n{}", self.text))
    }

    /// A request series' count, 0 when it has not appeared yet.
    fn requests(&self, route: &str, method: &str, status: u16) -> f64 {
        self.get(&format!(
            "unchained_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
        ))
        .unwrap_or(0.0)
    }

    /// Checks every duration histogram: buckets cumulative in `le` order,
    /// ending with `+Inf` equal to `_count` and to the request counter.
    /// Returns how many series it checked.
    fn check_histograms(&self) -> usize {
        let mut checked = 0;
        for (series, &total) in &self.samples {
            let Some(labels) = series.strip_prefix("unchained_http_requests_total") else {
                continue;
            };
            let inner = &labels[1..labels.len() - 1];
            let name = "unchained_http_request_duration_seconds";
            let les = [
                "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
                "2.5", "5", "10", "+Inf",
            ];
            let mut previous = 0.0;
            for le in les {
                let bucket = self.value(&format!("{name}_bucket{{{inner},le=\"{le}\"}}"));
                assert!(
                    bucket >= previous,
                    "{series}: le={le} {bucket} < {previous}"
                );
                previous = bucket;
            }
            assert_eq!(previous, total, "{series}: +Inf bucket");
            assert_eq!(
                self.value(&format!("{name}_count{labels}")),
                total,
                "{series}"
            );
            let sum = self.value(&format!("{name}_sum{labels}"));
            assert!(sum >= 0.0 && sum < total * 60.0, "{series}: sum {sum}");
            checked += 1;
        }
        checked
    }
}

async fn scrape_at(url: &str) -> Scrape {
    let response = reqwest::get(url).await.expect("metrics answer");
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        CONTENT_TYPE
    );
    Scrape::parse(&response.text().await.unwrap())
}

async fn scrape(app: &App) -> Scrape {
    scrape_at(&format!("{}/metrics", app.base)).await
}

async fn status_of(url: &str) -> u16 {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .expect("an answer")
        .status()
        .as_u16()
}

#[tokio::test]
async fn off_by_default() {
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &[]).await;
        app.browser()
            .get("/contacts/")
            .await
            .assert_page(200, backend);
        assert_eq!(status_of(&format!("{}/metrics", app.base)).await, 404);
        assert!(app.metrics_base.is_none());
        app.stop().await;
        // Nothing is gathered either: the access-log layer has no table.
        let t = TestDb::new(backend).await;
        let application = build(&t, &[]).await;
        assert!(application.state().requests.is_none(), "{backend}");
        application.run_until(async {}).await;
    }
}

/// The application `serve` runs, on a migrated database, not yet serving.
async fn build(t: &TestDb, settings: &[(&str, &str)]) -> unchained::web::Application {
    let db = t.db().await;
    unchained::db::schema::migrate(&db).await.unwrap();
    let mut env: unchained::config::Env = t.settings_env().into_iter().collect();
    env.insert("BIND_ADDRESS".into(), "127.0.0.1:0".into());
    for (name, value) in settings {
        env.insert(name.to_string(), value.to_string());
    }
    let settings = unchained::config::Settings::from_env(&env).unwrap();
    unchained::web::Application::build(db, settings)
        .await
        .expect("the site starts")
}

/// Letters go to a folder that cannot be made: they stay queued.
const NO_FOLDER: &str = "/dev/null/sent-mail";

#[tokio::test]
async fn requests_pools_hashing_outbox_and_memory_at_the_sites_path() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                ("EMAIL_FILE_PATH", NO_FOLDER),
                ("METRICS_PATH", "/metrics"),
                ("HASHING_THREADS", "1"),
                ("HASHING_QUEUE", "0"),
            ],
        )
        .await;
        let before = scrape(&app).await;

        // Requests by route template, method and status.
        let browser = app.browser();
        for _ in 0..3 {
            browser.get("/contacts/").await.assert_page(200, backend);
        }
        // The list, logged in, reads the database (SQLite: on the read path).
        let member = app.new_user_logged_in("member@example.com").await;
        member.get("/").await.assert_page(200, backend);
        // Closed to an anonymous visitor: sent to the login page.
        for pk in [999_001, 999_002] {
            let r = browser.get(&format!("/products/{pk}/")).await;
            assert_eq!(r.status, 302, "{backend}");
        }
        for path in ["/no/such/page/", "/nor/this/", "/products/"] {
            assert_eq!(browser.get(path).await.status, 404, "{backend} {path}");
        }
        let r = browser.get("/static/does-not-exist.css").await;
        assert_eq!(r.status, 404, "{backend}");
        // Outside ALLOWED_HOSTS: the site refuses, the metrics answer.
        let foreign = reqwest::Client::new()
            .get(format!("{}/metrics", app.base))
            .header("host", "metrics.internal:9999")
            .send()
            .await
            .unwrap();
        assert_eq!(foreign.status(), 200, "{backend}");
        let foreign_page = reqwest::Client::new()
            .get(format!("{}/contacts/", app.base))
            .header("host", "metrics.internal:9999")
            .send()
            .await
            .unwrap();
        assert_eq!(foreign_page.status(), 400, "{backend}");

        let after = scrape(&app).await;
        let rise = |route: &str, method: &str, status: u16| {
            after.requests(route, method, status) - before.requests(route, method, status)
        };
        assert_eq!(rise("/contacts/", "GET", 200), 3.0, "{backend}");
        assert_eq!(rise("/contacts/", "GET", 400), 1.0, "{backend}");
        assert_eq!(rise("/", "GET", 200), 1.0, "{backend}");
        assert_eq!(rise("/products/{pk}/", "GET", 302), 2.0, "{backend}");
        assert_eq!(rise("unmatched", "GET", 404), 3.0, "{backend}");
        assert_eq!(rise("/static/{*path}", "GET", 404), 1.0, "{backend}");
        // The first scrape and the foreign one (this one is counted after it answers).
        assert_eq!(rise("/metrics", "GET", 200), 2.0, "{backend}");
        assert!(
            !after.text.contains("999001") && !after.text.contains("/no/such"),
            "{backend}: raw paths are never labels"
        );
        assert!(after.check_histograms() >= 6, "{backend}");
        // The first scrape is counted once it has answered: nothing before it.
        assert_eq!(before.check_histograms(), 0, "{backend}");

        // The pools.
        let max = if backend == "sqlite" { 8.0 } else { 10.0 };
        assert_eq!(
            after.value("unchained_db_connections_max{pool=\"main\"}"),
            max
        );
        let open = after.value("unchained_db_connections{pool=\"main\",state=\"in_use\"}")
            + after.value("unchained_db_connections{pool=\"main\",state=\"idle\"}");
        assert!((1.0..=max).contains(&open), "{backend}: {open} open");
        if backend == "sqlite" {
            // The list's reads went through the read path's connections.
            assert_eq!(
                after.value("unchained_db_connections{pool=\"read\",state=\"in_use\"}"),
                0.0
            );
            assert!(after.value("unchained_db_connections{pool=\"read\",state=\"idle\"}") >= 1.0);
        } else {
            assert!(after
                .get("unchained_db_connections{pool=\"read\",state=\"idle\"}")
                .is_none());
        }

        // The hashing pool: one thread, no queue; logins at once.
        assert_eq!(after.value("unchained_hashing_threads"), 1.0);
        assert_eq!(after.value("unchained_hashing_queue_limit"), 0.0);
        app.create_user("hash@example.com", GOOD_PASSWORD, true)
            .await;
        let mut logins = Vec::new();
        for _ in 0..6 {
            let browser = app.browser();
            logins.push(tokio::spawn(async move {
                browser
                    .submit(
                        "/users/login/",
                        &[("username", "hash@example.com"), ("password", "wrong-one")],
                    )
                    .await
                    .status
            }));
        }
        let mut statuses = Vec::new();
        for login in logins {
            statuses.push(login.await.unwrap());
        }
        let refused = statuses.iter().filter(|&&s| s == 503).count() as f64;
        assert!(
            refused >= 1.0 && statuses.iter().all(|&s| s == 200 || s == 503),
            "{backend}: {statuses:?}"
        );
        let hashed = scrape(&app).await;
        assert_eq!(
            hashed.value("unchained_hashing_refused_total")
                - after.value("unchained_hashing_refused_total"),
            refused,
            "{backend}"
        );
        assert_eq!(hashed.value("unchained_hashing_running"), 0.0);
        assert_eq!(hashed.value("unchained_hashing_queued"), 0.0);
        assert_eq!(
            rise_between(&after, &hashed, "/users/login/", "POST", 503),
            refused
        );

        // The outbox: a letter that cannot be sent waits, and ages.
        assert_eq!(after.value("unchained_outbox_waiting"), 0.0, "{backend}");
        assert_eq!(after.value("unchained_outbox_oldest_waiting_seconds"), 0.0);
        let letter = Email::new("ivan@example.com", "Тема", "Текст").unwrap();
        let mut tx = app.db.begin().await.unwrap();
        let id = outbox::enqueue(&mut tx, &letter, &format!("file:{NO_FOLDER}"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        app.mailer.notify();
        let started = Instant::now();
        while outbox::by_id(&app.db, id).await.unwrap().unwrap().attempts == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{backend}: never tried"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let queued = scrape(&app).await;
        let attempts = outbox::by_id(&app.db, id).await.unwrap().unwrap().attempts;
        assert_eq!(queued.value("unchained_outbox_waiting"), 1.0, "{backend}");
        let age = queued.value("unchained_outbox_oldest_waiting_seconds");
        assert!(age > 0.0 && age < 120.0, "{backend}: age {age}");
        let failed = queued.value("unchained_mail_failed_total");
        assert!(
            failed >= 1.0 && failed <= attempts as f64,
            "{backend}: {failed} failed, {attempts} attempts"
        );
        assert_eq!(queued.value("unchained_mail_sent_total"), 0.0);

        // Database errors that failed a request: a table gone.
        let errors = queued.value("unchained_db_errors_total{kind=\"query\"}");
        exec(
            &app.db,
            "ALTER TABLE catalog_product RENAME TO catalog_product_gone",
        )
        .await;
        let mut broken = 0.0;
        for _ in 0..2 {
            let r = member.get("/").await;
            assert_eq!(r.status, 500, "{backend}");
            broken += 1.0;
        }
        let failing = scrape(&app).await;
        assert_eq!(
            failing.value("unchained_db_errors_total{kind=\"query\"}") - errors,
            broken,
            "{backend}"
        );
        assert_eq!(rise_between(&queued, &failing, "/", "GET", 500), broken);
        exec(
            &app.db,
            "ALTER TABLE catalog_product_gone RENAME TO catalog_product",
        )
        .await;

        // The process's memory.
        let resident = failing.value("process_resident_memory_bytes");
        assert!(
            resident > 4.0 * 1024.0 * 1024.0 && resident < 4.0 * 1024.0 * 1024.0 * 1024.0,
            "{backend}: {resident}"
        );
        assert!(failing.value("process_virtual_memory_bytes") >= resident);
        app.stop().await;
    }
}

fn rise_between(before: &Scrape, after: &Scrape, route: &str, method: &str, status: u16) -> f64 {
    after.requests(route, method, status) - before.requests(route, method, status)
}

#[tokio::test]
async fn a_listener_of_their_own() {
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &[("METRICS_ADDRESS", "127.0.0.1:0")]).await;
        let metrics = app.metrics_base.clone().expect("METRICS_ADDRESS is bound");
        assert_ne!(metrics, app.base);
        // Only /metrics there; the site does not answer it.
        assert_eq!(status_of(&format!("{metrics}/")).await, 404);
        assert_eq!(status_of(&format!("{metrics}/contacts/")).await, 404);
        assert_eq!(status_of(&format!("{}/metrics", app.base)).await, 404);
        let before = scrape_at(&format!("{metrics}/metrics")).await;

        let browser = app.browser();
        browser.get("/contacts/").await.assert_page(200, backend);
        browser.get("/users/login/").await.assert_page(200, backend);
        assert_eq!(browser.get("/nowhere/").await.status, 404);
        let letter = Email::new("olga@example.com", "Тема", "Текст").unwrap();
        let mut tx = app.db.begin().await.unwrap();
        let file_backend = format!("file:{}", app.t.path("sent-mail").display());
        let id = outbox::enqueue(&mut tx, &letter, &file_backend)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        app.mailer.notify();
        let started = Instant::now();
        while outbox::by_id(&app.db, id)
            .await
            .unwrap()
            .unwrap()
            .sent_at
            .is_none()
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{backend}: never sent"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let after = scrape_at(&format!("{metrics}/metrics")).await;
        for (route, rise) in [
            ("/contacts/", 1.0),
            ("/users/login/", 1.0),
            ("unmatched", 1.0),
        ] {
            assert_eq!(
                rise_between(
                    &before,
                    &after,
                    route,
                    "GET",
                    if route == "unmatched" { 404 } else { 200 }
                ),
                rise,
                "{backend} {route}"
            );
        }
        // The listener's own scrapes are not requests of the site.
        assert_eq!(after.requests("/metrics", "GET", 200), 0.0);
        after.check_histograms();
        assert_eq!(after.value("unchained_mail_sent_total"), 1.0, "{backend}");
        assert_eq!(after.value("unchained_mail_failed_total"), 0.0);
        assert_eq!(after.value("unchained_outbox_waiting"), 0.0);
        assert_eq!(after.value("unchained_outbox_oldest_waiting_seconds"), 0.0);
        assert!(after.value("process_resident_memory_bytes") > 0.0);
        app.stop().await;
        // Stopped with the site.
        assert!(
            reqwest::get(format!("{metrics}/metrics")).await.is_err(),
            "{backend}: the metrics listener outlived the site"
        );
    }
}

/// `serve` refuses a metrics path that a page, `/static/` or `/media/`
/// answers, and a bad address, with one line naming the variable.
#[tokio::test]
async fn a_path_of_the_site_is_refused_at_start_up() {
    for backend in backends() {
        let t = TestDb::new(backend).await;
        for (name, value) in [
            ("METRICS_PATH", "/users/login/"),
            ("METRICS_PATH", "/products/12/"),
            ("METRICS_PATH", "/static/metrics"),
            ("METRICS_PATH", "/media"),
            ("METRICS_PATH", "metrics"),
            ("METRICS_ADDRESS", "anywhere"),
        ] {
            let mut child = t
                .command(&["serve", "--bind", &format!("127.0.0.1:{}", free_port())])
                .env(name, value)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let started = Instant::now();
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if started.elapsed() > Duration::from_secs(60) {
                    let _ = child.kill();
                    panic!("{backend}: serve with {name}={value} did not stop");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let output = child.wait_with_output().unwrap();
            let said = text(&output);
            assert!(!status.success(), "{backend} {name}={value}: {said}");
            let lines: Vec<&str> = said.lines().filter(|l| l.contains(name)).collect();
            assert_eq!(lines.len(), 1, "{backend} {name}={value}: {said}");
        }
        // A path of its own starts.
        let app = build(&t, &[("METRICS_PATH", "/-/metrics")]).await;
        assert!(app.state().requests.is_some());
        let base = format!("http://{}", app.address());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let scraped = scrape_at(&format!("{base}/-/metrics")).await;
        assert!(scraped.get("unchained_hashing_threads").is_some());
        assert_eq!(status_of(&format!("{base}/metrics")).await, 404);
        let _ = stop.send(());
        server.await.unwrap();
    }
}
