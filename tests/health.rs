//! Liveness and readiness answers (`HEALTH_LIVE_PATH`, `HEALTH_READY_PATH`):
//! where they are, that a balancer may ask them by address and without
//! cookies, that readiness names the part that fails (the schema, the
//! outbox worker, the database), and that no setting lets them hide a page.
//! Each test runs on SQLite, and on PostgreSQL when `UNCHAINED_TEST_POSTGRES`
//! is set. The database going away under a running server is in
//! tests/outage.rs.

mod common;

use common::app::{spawn_app_with, App, Mail, Resp};
use common::{backends, exec, TestDb};

const ALL_READY: &str = "database: ok\nschema: ok\noutbox worker: ok\n";

impl App {
    /// A request as a load balancer sends it: by address, no cookies.
    async fn probe(&self, path: &str) -> Resp {
        let browser = self.browser();
        let request = browser
            .client
            .get(browser.url(path))
            .header("host", "10.1.2.3:8000");
        browser.send(request).await
    }
}

#[tokio::test]
async fn live_and_ready_answer_at_their_default_paths() {
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &[]).await;
        let live = app.probe("/-/live").await;
        assert_eq!(
            (live.status, live.body.as_str()),
            (200, "ok\n"),
            "{backend}"
        );
        let ready = app.probe("/-/ready").await;
        assert_eq!(
            (ready.status, ready.body.as_str()),
            (200, ALL_READY),
            "{backend}"
        );
        for r in [&live, &ready] {
            assert_eq!(
                r.headers.get("cache-control").unwrap(),
                "no-store",
                "{backend}"
            );
            assert_eq!(
                r.headers.get("content-type").unwrap(),
                "text/plain; charset=utf-8",
                "{backend}"
            );
            // No session, no CSRF cookie: nothing is written per probe.
            assert!(r.headers.get("set-cookie").is_none(), "{backend}");
        }
        // HEAD, as some balancers ask.
        let browser = app.browser();
        let head = browser
            .send(browser.client.head(browser.url("/-/ready")))
            .await;
        assert_eq!(head.status, 200, "{backend}");
        // The site's pages still refuse that Host.
        assert_eq!(app.probe("/users/login/").await.status, 400, "{backend}");
        app.stop().await;
    }
}

#[tokio::test]
async fn the_paths_are_settings_and_an_empty_one_turns_an_answer_off() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[("HEALTH_LIVE_PATH", ""), ("HEALTH_READY_PATH", "/lb/ready")],
        )
        .await;
        assert_eq!(app.probe("/lb/ready").await.status, 200, "{backend}");
        for gone in ["/-/live", "/-/ready"] {
            // The site's own 404 page (so it goes through the pipeline).
            let r = app.browser().get(gone).await;
            assert_eq!(r.status, 404, "{backend} {gone}");
            assert!(r.body.contains("<html"), "{backend} {gone}: {}", r.body);
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn readiness_names_a_schema_that_changed_under_it() {
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &[]).await;
        // As a later migration of Django's might: a table this backend
        // reads is gone.
        exec(&app.db, "DROP TABLE catalog_version").await;
        let r = app.probe("/-/ready").await;
        assert_eq!(r.status, 503, "{backend}: {}", r.body);
        let lines: Vec<&str> = r.body.lines().collect();
        assert_eq!(lines[0], "database: ok", "{backend}");
        assert!(
            lines[1].starts_with("schema: ") && lines[1].contains("unchained check"),
            "{backend}: {}",
            r.body
        );
        assert_eq!(lines[2], "outbox worker: ok", "{backend}");
        // Liveness does not depend on the database.
        assert_eq!(app.probe("/-/live").await.status, 200, "{backend}");
        app.stop().await;
    }
}

#[tokio::test]
async fn readiness_fails_when_the_outbox_worker_stopped_or_the_pool_closed() {
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &[]).await;
        assert_eq!(app.probe("/-/ready").await.status, 200, "{backend}");
        app.mailer.shutdown().await;
        let r = app.probe("/-/ready").await;
        assert_eq!(r.status, 503, "{backend}");
        assert!(
            r.body.ends_with("outbox worker: stopped\n"),
            "{backend}: {}",
            r.body
        );
        app.db.close().await;
        let r = app.probe("/-/ready").await;
        assert_eq!(r.status, 503, "{backend}");
        assert!(
            r.body
                .starts_with("database: does not answer\nschema: not checked"),
            "{backend}: {}",
            r.body
        );
        app.stop().await;
    }
}

/// A path the site answers is refused at start-up, naming the setting; so
/// are one that is not a plain path and one another setting names.
#[tokio::test]
async fn a_path_of_the_site_is_refused() {
    let t = TestDb::new("sqlite").await;
    assert!(t.run(&["migrate"]).status.success());
    for (name, value, says) in [
        ("HEALTH_LIVE_PATH", "/users/login/", "is a path of"),
        ("HEALTH_READY_PATH", "/", "is a path of"),
        ("HEALTH_READY_PATH", "/products/7/", "is a path of"),
        ("HEALTH_LIVE_PATH", "/static/css/site.css", "is a path of"),
        ("HEALTH_LIVE_PATH", "/media/avatars/a.png", "is a path of"),
        ("HEALTH_LIVE_PATH", "/ready?x=1", "not a plain path"),
        ("HEALTH_LIVE_PATH", "ready", "not a plain path"),
        ("HEALTH_READY_PATH", "/-/live", "already"),
        ("METRICS_PATH", "/-/ready", "already"),
        ("HEALTH_LIVE_PATH", "/media", "is a path of"),
    ] {
        let out = t
            .command(&["serve", "--bind", "127.0.0.1:0"])
            .env(name, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}={value} was accepted");
        assert!(
            stderr.contains(name) && stderr.contains(says),
            "{name}={value}: {stderr}"
        );
    }
}
