//! Django's `SecurityMiddleware` and `XFrameOptionsMiddleware` settings:
//! the headers each one turns on or off (the defaults are Django's), HSTS
//! over HTTPS only (as `SECURE_PROXY_SSL_HEADER` tells), the SSL redirect
//! with `SECURE_SSL_HOST` and `SECURE_REDIRECT_EXEMPT`; and `unchained
//! check --deploy`. Each test runs on SQLite, and on PostgreSQL when
//! `UNCHAINED_TEST_POSTGRES` is set. (The compat suite compares the same
//! with a real Django: compat-tests/tests/test_deploy.py.)

mod common;

use common::app::{spawn_app_with, App, Mail, Resp};
use common::{backends, text, TestDb};

const HTTPS: (&str, &str) = ("x-forwarded-proto", "https");
const PROXY: (&str, &str) = ("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO,https");

fn header<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

/// The security headers of a response, in a fixed order.
fn security_headers(r: &Resp) -> [Option<&str>; 6] {
    [
        "strict-transport-security",
        "x-content-type-options",
        "referrer-policy",
        "cross-origin-opener-policy",
        "x-frame-options",
        "vary",
    ]
    .map(|name| header(r, name))
}

impl App {
    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let browser = self.browser();
        let mut request = browser.client.get(browser.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        browser.send(request).await
    }

    fn port(&self) -> &str {
        self.base.rsplit(':').next().unwrap()
    }
}

#[tokio::test]
async fn djangos_defaults_send_djangos_headers_and_no_hsts() {
    for backend in backends() {
        let app = spawn_app_with(backend, Mail::File, &[PROXY]).await;
        for headers in [&[][..], &[HTTPS][..]] {
            let r = app.get_with("/users/login/", headers).await;
            assert_eq!(r.status, 200, "{backend}");
            assert_eq!(
                security_headers(&r),
                [
                    None,
                    Some("nosniff"),
                    Some("same-origin"),
                    Some("same-origin"),
                    Some("DENY"),
                    Some("Cookie")
                ],
                "{backend} {headers:?}"
            );
        }
        // Files too pass SecurityMiddleware (not the page middleware).
        let r = app.get_with("/static/css/site.css", &[]).await;
        assert_eq!(r.status, 200, "{backend}");
        assert_eq!(
            security_headers(&r),
            [
                None,
                Some("nosniff"),
                Some("same-origin"),
                Some("same-origin"),
                None,
                None
            ],
            "{backend}"
        );
        // A refused Host still gets them.
        let r = app.get_with("/", &[("host", "evil.example")]).await;
        assert_eq!(r.status, 400, "{backend}");
        assert_eq!(header(&r, "x-frame-options"), Some("DENY"), "{backend}");
        assert_eq!(header(&r, "referrer-policy"), Some("same-origin"));
        app.stop().await;
    }
}

#[tokio::test]
async fn each_header_follows_its_setting() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                ("SECURE_CONTENT_TYPE_NOSNIFF", "False"),
                ("SECURE_REFERRER_POLICY", "no-referrer, strict-origin"),
                ("SECURE_CROSS_ORIGIN_OPENER_POLICY", "None"),
                ("X_FRAME_OPTIONS", "sameorigin"),
            ],
        )
        .await;
        let r = app.get_with("/users/login/", &[]).await;
        assert_eq!(r.status, 200, "{backend}");
        assert_eq!(
            security_headers(&r),
            [
                None,
                None,
                Some("no-referrer,strict-origin"),
                None,
                Some("SAMEORIGIN"),
                Some("Cookie")
            ],
            "{backend}"
        );
        app.stop().await;

        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                ("SECURE_REFERRER_POLICY", ""),
                ("SECURE_CROSS_ORIGIN_OPENER_POLICY", "unsafe-none"),
                ("X_FRAME_OPTIONS", "None"),
            ],
        )
        .await;
        let r = app.get_with("/users/login/", &[]).await;
        assert_eq!(
            security_headers(&r),
            [
                None,
                Some("nosniff"),
                None,
                Some("unsafe-none"),
                None,
                Some("Cookie")
            ],
            "{backend}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn hsts_is_sent_over_https_only() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                PROXY,
                ("SECURE_HSTS_SECONDS", "600"),
                ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "True"),
            ],
        )
        .await;
        for (headers, expected) in [
            (&[][..], None),
            (&[HTTPS][..], Some("max-age=600; includeSubDomains")),
            (&[("x-forwarded-proto", "http")][..], None),
            (&[("x-forwarded-proto", "HTTPS")][..], None),
        ] {
            for path in [
                "/users/login/",
                "/",
                "/static/css/site.css",
                "/no/such/page/",
            ] {
                let r = app.get_with(path, headers).await;
                assert_eq!(
                    header(&r, "strict-transport-security"),
                    expected,
                    "{backend} {path} {headers:?}: {}",
                    r.status
                );
            }
        }
        app.stop().await;

        // Without SECURE_PROXY_SSL_HEADER no request is secure: the proxy's
        // header is not believed.
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                ("SECURE_HSTS_SECONDS", "600"),
                ("SECURE_HSTS_PRELOAD", "True"),
            ],
        )
        .await;
        let r = app.get_with("/users/login/", &[HTTPS]).await;
        assert_eq!(r.status, 200, "{backend}");
        assert_eq!(header(&r, "strict-transport-security"), None, "{backend}");
        app.stop().await;
    }
}

#[tokio::test]
async fn plain_http_is_sent_to_https_except_exempt_paths() {
    for backend in backends() {
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                PROXY,
                ("SECURE_SSL_REDIRECT", "True"),
                ("SECURE_HSTS_SECONDS", "60"),
                ("SECURE_REDIRECT_EXEMPT", r"^users/login/$, ^health\b"),
            ],
        )
        .await;
        let port = app.port().to_string();
        let r = app.get_with("/products/?page=2&q=a%20b", &[]).await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (
                301,
                Some(format!("https://127.0.0.1:{port}/products/?page=2&q=a%20b").as_str())
            ),
            "{backend}"
        );
        assert_eq!(r.body, "", "{backend}");
        assert_eq!(header(&r, "content-type"), Some("text/html; charset=utf-8"));
        // SecurityMiddleware's headers, not the pages' (nor HSTS: not secure).
        assert_eq!(
            security_headers(&r),
            [
                None,
                Some("nosniff"),
                Some("same-origin"),
                Some("same-origin"),
                None,
                None
            ],
            "{backend}"
        );
        // The host as sent, with its port; the path as Django escapes it.
        let r = app
            .get_with(
                "/users/%D0%BA%D1%82%D0%BE/a;b/",
                &[("host", "localhost:8000")],
            )
            .await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (
                301,
                Some("https://localhost:8000/users/%D0%BA%D1%82%D0%BE/a%3Bb/")
            ),
            "{backend}"
        );
        // A host outside ALLOWED_HOSTS is refused, not redirected to.
        let r = app.get_with("/", &[("host", "evil.example")]).await;
        assert_eq!((r.status, r.location.as_deref()), (400, None), "{backend}");
        // Any method; files too.
        let browser = app.browser();
        let r = browser
            .post(
                "/users/register/",
                &[("email", "someone@example.com"), ("password1", "x")],
            )
            .await;
        assert_eq!(r.status, 301, "{backend}");
        let r = app.get_with("/static/css/site.css", &[]).await;
        assert_eq!(
            r.location,
            Some(format!("https://127.0.0.1:{port}/static/css/site.css")),
            "{backend}"
        );
        // Exempt paths stay on HTTP (searched without the leading slash).
        let r = app.get_with("/users/login/", &[]).await;
        assert_eq!(r.status, 200, "{backend}");
        let r = app.get_with("/health/x", &[]).await;
        assert_eq!(r.status, 404, "{backend}: exempt, then not found");
        let r = app.get_with("/healthz", &[]).await;
        assert_eq!(r.status, 301, "{backend}: no word boundary after health");
        let r = app.get_with("/users/login/x", &[]).await;
        assert_eq!(r.status, 301, "{backend}");
        // Over HTTPS nothing is redirected, and HSTS comes along.
        let r = app.get_with("/products/?page=2", &[HTTPS]).await;
        assert_ne!(r.status, 301, "{backend}");
        assert_eq!(header(&r, "strict-transport-security"), Some("max-age=60"));
        app.stop().await;

        // SECURE_SSL_HOST: every redirect goes there, whatever the Host.
        let app = spawn_app_with(
            backend,
            Mail::File,
            &[
                ("SECURE_SSL_REDIRECT", "True"),
                ("SECURE_SSL_HOST", "secure.shop.example"),
            ],
        )
        .await;
        for host in [None, Some("evil.example")] {
            let headers: Vec<(&str, &str)> = host.map(|h| ("host", h)).into_iter().collect();
            let r = app.get_with("/users/login/?next=/x", &headers).await;
            assert_eq!(
                (r.status, r.location.as_deref()),
                (
                    301,
                    Some("https://secure.shop.example/users/login/?next=/x")
                ),
                "{backend} {host:?}"
            );
        }
        // Without SECURE_PROXY_SSL_HEADER, even the proxy's HTTPS is plain.
        let r = app.get_with("/users/login/", &[HTTPS]).await;
        assert_eq!(r.status, 301, "{backend}");
        app.stop().await;
    }
}

#[test]
fn check_deploy_prints_djangos_warnings_without_the_database() {
    // Only the settings are read: no back end is needed.
    let t = settings_only();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = t.command(args);
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let out = run(&["check", "--deploy"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(
        stderr
            .starts_with("System check identified some issues:\n\nWARNINGS:\n?: (security.W004) "),
        "{stderr}"
    );
    let ids: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("?: (")?.split_once(')').map(|(id, _)| id))
        .collect();
    assert_eq!(
        ids,
        [
            "security.W004",
            "security.W008",
            "security.W012",
            "security.W016"
        ]
    );
    assert!(stderr.ends_with("\n\nSystem check identified 4 issues (0 silenced).\n"));
    assert!(!t.path("db.sqlite3").exists() && !t.path("secret_key.txt").exists());

    let out = run(&["check", "--deploy", "--fail-level", "WARNING"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("SystemCheckError: System check identified some issues:"));

    let secure = [
        ("SECURE_HSTS_SECONDS", "31536000"),
        ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "True"),
        ("SECURE_HSTS_PRELOAD", "True"),
        ("SECURE_SSL_REDIRECT", "True"),
        ("SESSION_COOKIE_SECURE", "True"),
        ("CSRF_COOKIE_SECURE", "True"),
    ];
    let out = run(&["check", "--deploy", "--fail-level", "WARNING"], &secure);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        (text(&out).as_str(), out.stderr.is_empty()),
        ("System check identified no issues (0 silenced).\n", true)
    );

    let mut debug = secure.to_vec();
    debug.extend([("DEBUG", "True"), ("ALLOWED_HOSTS", "")]);
    let out = run(&["check", "--deploy"], &debug);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let output = text(&out);
    assert!(
        output.contains(
            "?: (security.W018) You should not have DEBUG set to True in deployment.\n\
             ?: (security.W020) ALLOWED_HOSTS must not be empty in deployment.\n"
        ),
        "{output}"
    );

    // A bad value: one line naming the variable, exit status 2.
    let out = run(&["check", "--deploy"], &[("SECURE_HSTS_SECONDS", "a year")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let output = text(&out);
    assert_eq!(output.lines().count(), 1, "{output}");
    assert!(
        output.starts_with("unchained: configuration error: SECURE_HSTS_SECONDS: "),
        "{output}"
    );

    // --fail-level belongs to --deploy.
    let out = run(&["check", "--fail-level", "WARNING"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// A scratch folder with an SQLite URL whose file is never made.
fn settings_only() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    TestDb {
        url: format!("sqlite:///{}", dir.path().join("db.sqlite3").display()),
        dir,
    }
}
