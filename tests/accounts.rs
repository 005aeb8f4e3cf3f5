//! The accounts pages driven as a browser drives them, against the real
//! site on a random loopback port and a real SMTP server (aiosmtpd with TLS
//! and a login required, `compat-tests/tools/smtp_server.py`): register,
//! read the letter, confirm, log in and out; reset a password; log in with
//! a hash Django made (and see it upgraded); survive an SMTP outage; and
//! answer every kind of bad input with a clear page and status. Each test
//! runs on SQLite, and on PostgreSQL when `UNCHAINED_TEST_POSTGRES` is set.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::multipart;
use serde_json::{Map, Value};

use common::app::{
    assert_django_alternative_name, csrf_token, file, no_file, on_each_backend, png, spawn_app,
    spawn_app_with_smtp, App, Browser, Mail, Resp, FROM, GOOD_PASSWORD, PNG_1X1,
};
use common::smtp::{python, Mode, SmtpServer, SMTP_USER};
use common::{backends, free_port, SECRET_KEY};
use unchained::db::outbox::{self, OutboxRow};
use unchained::db::users::User;

// ---------------------------------------------------------------------------
// What the accounts tests read besides the shared harness (tests/common/app.rs)

/// What a test checks did not change: every user row, the session keys, the
/// outbox and the uploaded files.
#[derive(Debug, PartialEq)]
struct Snapshot {
    users: Vec<String>,
    sessions: Vec<String>,
    outbox: i64,
    media: Vec<PathBuf>,
}

impl App {
    async fn users(&self) -> Vec<User> {
        unchained::on_pool!(&self.db, |pool| sqlx::query_as::<_, User>(
            "SELECT id, password, last_login, is_superuser, first_name, last_name, is_staff, \
             is_active, date_joined, email, avatar, phone, country, token FROM users_user ORDER BY id"
        )
        .fetch_all(pool)
        .await)
        .unwrap()
    }

    async fn session_keys(&self) -> Vec<String> {
        self.strings("SELECT session_key FROM django_session ORDER BY session_key")
            .await
    }

    async fn session_data(&self, key: &str) -> Option<Map<String, Value>> {
        let stored = unchained::db::sessions::load(&self.db, key)
            .await
            .unwrap()?;
        unchained::django::sessions::decode(&stored, SECRET_KEY, &[] as &[String])
    }

    async fn outbox(&self) -> Vec<OutboxRow> {
        let ids: Vec<i64> = unchained::on_pool!(&self.db, |pool| sqlx::query_scalar::<_, i64>(
            "SELECT id FROM unchained_outbox ORDER BY id"
        )
        .fetch_all(pool)
        .await)
        .unwrap();
        let mut rows = Vec::new();
        for id in ids {
            rows.push(outbox::by_id(&self.db, id).await.unwrap().unwrap());
        }
        rows
    }

    /// Checks nothing the snapshot covers changed since `before`.
    async fn assert_unchanged(&self, before: &Snapshot, what: &str) {
        assert_eq!(self.snapshot().await, *before, "{what}: something changed");
    }

    async fn snapshot(&self) -> Snapshot {
        Snapshot {
            users: self
                .users()
                .await
                .iter()
                .map(|u| format!("{u:?}"))
                .collect(),
            sessions: self.session_keys().await,
            outbox: self.count("SELECT COUNT(*) FROM unchained_outbox").await,
            media: self.media_files(),
        }
    }
}

/// The page with every form token replaced by a placeholder.
fn without_tokens(html: &str) -> String {
    let marker = "name=\"csrfmiddlewaretoken\" value=\"";
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find(marker) {
        let start = i + marker.len();
        out.push_str(&rest[..start]);
        out.push_str("TOKEN");
        let end = start + rest[start..].find('"').unwrap();
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The first `http://…` link in a text.
fn link_in(text: &str) -> String {
    let start = text.find("http://").expect("a link in the letter");
    text[start..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

/// The body of a letter.
fn body_of(message: &Value) -> String {
    message["body"].as_str().unwrap_or("").to_string()
}

/// The login form's fields.
fn login_form<'a>(email: &'a str, password: &'a str) -> [(&'a str, &'a str); 2] {
    [("username", email), ("password", password)]
}

/// The registration form's fields.
fn registration_form<'a>(
    email: &'a str,
    password1: &'a str,
    password2: &'a str,
) -> [(&'a str, &'a str); 3] {
    [
        ("email", email),
        ("password1", password1),
        ("password2", password2),
    ]
}

/// A fresh browser logging in with these credentials gets the one generic
/// error on the login page.
async fn assert_login_refused(app: &App, email: &str, password: &str, what: &str) {
    app.browser()
        .submit("/users/login/", &login_form(email, password))
        .await
        .assert_page(200, what)
        .assert_contains(LOGIN_ERROR, what);
}

/// Every password input of the page has no `value` (as Django's
/// `PasswordInput`): a password is never written back into a page.
fn assert_no_password_shown(body: &str, what: &str) {
    let inputs: Vec<&str> = body
        .split("<input ")
        .skip(1)
        .map(|rest| &rest[..rest.find('>').unwrap_or(rest.len())])
        .filter(|input| input.contains("type=\"password\""))
        .collect();
    assert!(!inputs.is_empty(), "{what}: no password input");
    for input in inputs {
        assert!(
            !input.contains("value="),
            "{what}: a password shown: <input {input}>"
        );
    }
}

const LOGIN_ERROR: &str = "Пожалуйста, введите правильные почта и пароль";
const REQUIRED: &str = "Обязательное поле.";
const BAD_EMAIL: &str = "Введите правильный адрес электронной почты.";
const EMAIL_TAKEN: &str = "Пользователь с таким Почта уже существует.";
/// Django's `max_length` message for the 1 MB address of the tests.
const TOO_LONG_EMAIL: &str =
    "Убедитесь, что это значение содержит не более 254 символов (сейчас 1048588).";
const CSRF_PAGE: &str = "CSRF verification failed";
const CONFIRM_FAILED: &str = "Ссылка недействительна";

// ---------------------------------------------------------------------------
// 1. Register, confirm, log in, log out

async fn full_flow(mode: Mode) {
    for backend in backends() {
        let what = format!("{backend} {mode:?}");
        let (app, smtp) = spawn_app_with_smtp(backend, mode).await;

        // Register: the domain is lowercased, as Django's normalize_email.
        let browser = app.browser();
        browser
            .get("/users/register/")
            .await
            .assert_page(200, &what)
            .assert_contains("name=\"password2\"", &what);
        let r = browser
            .submit(
                "/users/register/",
                &registration_form("Ivan.Petrov@Example.COM", GOOD_PASSWORD, GOOD_PASSWORD),
            )
            .await;
        // As the original's RegisterView: on to the login page.
        r.assert_redirect("/users/login/", &what);
        let email = "Ivan.Petrov@example.com";
        let user = app.user(email).await.expect("the user row");
        assert!(!user.is_active, "{what}: active before confirming");
        assert!(user.last_login.is_none());
        assert!(
            user.password.starts_with("pbkdf2_sha256$1000000$"),
            "{what}: {}",
            user.password
        );
        let token = user.token.clone().expect("a token");
        assert!(token.len() >= 32, "{what}: a short token {token:?}");

        // The letter, over real SMTP.
        let messages = smtp.wait_for(1, Duration::from_secs(30)).await;
        assert_eq!(messages.len(), 1, "{what}: {messages:?}");
        let letter = &messages[0];
        assert_eq!(letter["rcpt_tos"], serde_json::json!([email]), "{what}");
        assert_eq!(letter["to"], email, "{what}");
        assert_eq!(letter["from"], FROM, "{what}");
        assert_eq!(letter["login"], SMTP_USER, "{what}");
        assert_eq!(letter["subject"], "Подтверждение почты", "{what}");
        let link = link_in(&body_of(letter));
        assert_eq!(
            link,
            format!("{}/users/email-confirm/{token}/", app.base),
            "{what}"
        );

        // Not confirmed yet: the generic login error, nothing set.
        assert_login_refused(&app, email, GOOD_PASSWORD, &what).await;
        assert!(app.user(email).await.unwrap().last_login.is_none());

        // Follow the link: activated, token cleared; once only.
        let path = link.strip_prefix(&app.base).unwrap();
        browser
            .get(path)
            .await
            .assert_redirect("/users/login/", &what);
        let user = app.user(email).await.unwrap();
        assert!(user.is_active, "{what}");
        assert_eq!(user.token, None, "{what}");
        browser
            .get(path)
            .await
            .assert_page(404, &what)
            .assert_contains(CONFIRM_FAILED, &what);

        // Anonymous: the profile sends to the login page.
        browser
            .get("/users/profile/")
            .await
            .assert_redirect("/users/login/?next=/users/profile/", &what);

        // `next` to another site goes to `/`, in every spelling.
        for evil in ["https://evil.test/", "//evil.test/", "http:///evil.test/"] {
            let other = app.browser();
            let r = other
                .submit(
                    "/users/login/",
                    &[
                        ("username", email),
                        ("password", GOOD_PASSWORD),
                        ("next", evil),
                    ],
                )
                .await;
            r.assert_redirect("/", &format!("{what} next={evil}"));
        }

        // The login page carries a safe `next` through its form.
        let r = browser.get("/users/login/?next=/users/profile/").await;
        r.assert_page(200, &what).assert_contains(
            "<input type=\"hidden\" name=\"next\" value=\"/users/profile/\">",
            &what,
        );
        let token = csrf_token(&r.body).unwrap();
        let r = browser
            .post(
                "/users/login/",
                &[
                    ("csrfmiddlewaretoken", token.as_str()),
                    ("username", email),
                    ("password", GOOD_PASSWORD),
                    ("next", "/users/profile/"),
                ],
            )
            .await;
        r.assert_redirect("/users/profile/", &what);
        let session_key = browser.cookie("sessionid").expect("a session cookie");
        // Django's cookie: HttpOnly, SameSite=Lax, two weeks, whole site.
        let set_cookies: Vec<&str> = r
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        let session_cookie = set_cookies
            .iter()
            .find(|c| c.starts_with("sessionid="))
            .unwrap_or_else(|| panic!("{what}: no session cookie in {set_cookies:?}"));
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
            assert!(
                session_cookie.contains(attribute),
                "{what}: {attribute} missing from {session_cookie}"
            );
        }
        // Login rotates the CSRF secret.
        assert!(
            set_cookies.iter().any(|c| c.starts_with("csrftoken=")),
            "{what}: the CSRF secret was not rotated: {set_cookies:?}"
        );
        let r = browser.get("/users/profile/").await;
        r.assert_page(200, &what)
            .assert_contains(
                &format!("<a class=\"who\" href=\"/users/profile/\">{email}</a>"),
                &what,
            )
            .assert_contains("action=\"/users/logout/\"", &what);

        // The database: last_login set, the session row says who.
        let user = app.user(email).await.unwrap();
        assert!(user.last_login.is_some(), "{what}");
        let data = app
            .session_data(&session_key)
            .await
            .expect("the session row");
        assert_eq!(
            data.get("_auth_user_id"),
            Some(&Value::String(user.id.to_string())),
            "{what}: {data:?}"
        );
        assert_eq!(
            data.get("_auth_user_backend").and_then(Value::as_str),
            Some("django.contrib.auth.backends.ModelBackend")
        );

        // Logout is POST only.
        let r = browser.get("/users/logout/").await;
        assert_eq!(r.status, 405, "{what}: GET /users/logout/: {}", r.body);
        browser.get("/users/profile/").await.assert_page(200, &what);
        browser.logout().await.assert_redirect("/", &what);
        assert_eq!(browser.cookie("sessionid"), None, "{what}: cookie kept");
        assert!(
            !app.session_keys().await.contains(&session_key),
            "{what}: the session row survived logout"
        );
        browser
            .get("/users/profile/")
            .await
            .assert_redirect("/users/login/?next=/users/profile/", &what);
        // The old cookie, replayed, is nobody.
        let replay = app.browser();
        replay.set_cookie("sessionid", &session_key);
        replay
            .get("/users/profile/")
            .await
            .assert_redirect("/users/login/?next=/users/profile/", &what);

        // Exactly one letter went.
        assert_eq!(smtp.messages().len(), 1, "{what}");
        drop(smtp);
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_confirm_login_logout_over_implicit_tls() {
    full_flow(Mode::Ssl).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_confirm_login_logout_over_starttls() {
    full_flow(Mode::StartTls).await;
}

/// Django's LoginView also takes `next` from the query string of the POST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_honours_next_in_the_query_string() {
    on_each_backend(async |app, backend| {
        app.create_user("ivan@example.com", GOOD_PASSWORD, true)
            .await;
        let browser = app.browser();
        let token = browser.token("/users/login/?next=/users/profile/").await;
        let r = browser
            .post(
                "/users/login/?next=/users/profile/",
                &[
                    ("csrfmiddlewaretoken", token.as_str()),
                    ("username", "ivan@example.com"),
                    ("password", GOOD_PASSWORD),
                ],
            )
            .await;
        r.assert_redirect("/users/profile/", backend);
    })
    .await;
}

/// As RedirectURLMixin: `url_has_allowed_host_and_scheme(next,
/// {request.get_host()}, require_https=request.is_secure())`. The login
/// page carries only a safe `next` (LoginView's context holds
/// `get_redirect_url()`), the last of several, and logout honours one too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_is_followed_only_to_this_host() {
    on_each_backend(async |app, backend| {
        app.create_user("ivan@example.com", GOOD_PASSWORD, true)
            .await;
        let here = app.base.clone(); // http://127.0.0.1:PORT, the Host sent
        let browser = app.browser();
        for evil in [
            "//evil.test/",
            "https://evil.test/",
            "/\\evil.test",
            "\u{200b}/x",
        ] {
            let page = format!(
                "/users/login/?next={}",
                percent_encoding::utf8_percent_encode(evil, percent_encoding::NON_ALPHANUMERIC)
            );
            let r = browser.get(&page).await;
            r.assert_page(200, backend);
            assert!(
                !r.body.contains("name=\"next\""),
                "{backend}: {evil:?} carried"
            );
        }
        // The last `next` counts, as QueryDict.get.
        let r = browser
            .get("/users/login/?next=//evil.test/&next=/users/profile/")
            .await;
        r.assert_page(200, backend).assert_contains(
            "<input type=\"hidden\" name=\"next\" value=\"/users/profile/\">",
            backend,
        );
        // This very host, absolute, is safe; over plain HTTP `http` is.
        let absolute = format!("{here}/users/profile/");
        let r = browser
            .submit(
                "/users/login/",
                &[
                    ("username", "ivan@example.com"),
                    ("password", GOOD_PASSWORD),
                    ("next", absolute.as_str()),
                ],
            )
            .await;
        r.assert_redirect(&absolute, backend);

        // Logout: a safe `next`, else LOGOUT_REDIRECT_URL.
        for (next, target) in [("/products/", "/products/"), ("//evil.test/", "/")] {
            let browser = app.logged_in("ivan@example.com", GOOD_PASSWORD).await;
            let token = browser.token("/users/profile/").await;
            let r = browser
                .post(
                    "/users/logout/",
                    &[("csrfmiddlewaretoken", token.as_str()), ("next", next)],
                )
                .await;
            r.assert_redirect(target, &format!("{backend} logout next={next}"));
            browser
                .get("/users/profile/")
                .await
                .assert_redirect("/users/login/?next=/users/profile/", backend);
        }
    })
    .await;
}

/// Django's EmailField takes a local part of 65 characters (only the whole
/// is limited); no SMTP server need, and lettre does not. The account is
/// made as Django makes it; its letter is marked failed, not retried for
/// ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_whose_letter_can_never_be_sent_marks_it_failed() {
    on_each_backend(async |app, backend| {
        let email = format!("{}@example.com", "a".repeat(65));
        app.browser()
            .submit(
                "/users/register/",
                &registration_form(&email, GOOD_PASSWORD, GOOD_PASSWORD),
            )
            .await
            .assert_redirect("/users/login/", backend);
        assert!(app.user(&email).await.is_some(), "{backend}");
        let start = Instant::now();
        let failed = loop {
            let rows = app.outbox().await;
            assert_eq!(rows.len(), 1, "{backend}: {rows:?}");
            if rows[0].failed_at.is_some() {
                break rows[0].clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{backend}: the letter was not given up: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!((failed.attempts, failed.sent_at), (1, None), "{backend}");
        // EMAIL_RETRY_SECONDS is 1 here: a retried letter would have
        // counted more attempts by now.
        tokio::time::sleep(Duration::from_secs(3)).await;
        app.mailer.notify();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(app.outbox().await[0].attempts, 1, "{backend}");
    })
    .await;
}

// ---------------------------------------------------------------------------
// 2. Password reset

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_mails_a_new_password_and_tells_nobody_who_exists() {
    for backend in backends() {
        let (app, smtp) = spawn_app_with_smtp(backend, Mode::Ssl).await;
        let email = "ivan@example.com";
        let old_password = "Old-Password-17";
        app.create_user(email, old_password, true).await;
        let old_hash = app.user(email).await.unwrap().password;
        let before_reset = app.logged_in(email, old_password).await;
        before_reset
            .get("/users/profile/")
            .await
            .assert_page(200, backend);

        // The login page links to the reset page.
        app.browser()
            .get("/users/login/")
            .await
            .assert_contains("href=\"/users/password-reset/\"", backend);

        let browser = app.browser();
        browser
            .get("/users/password-reset/")
            .await
            .assert_page(200, backend)
            .assert_contains("name=\"email\"", backend);
        // The address in another case still finds the account (iexact).
        let known = browser
            .submit("/users/password-reset/", &[("email", "IVAN@Example.com")])
            .await;
        known.assert_redirect("/users/login/", backend);
        let messages = smtp.wait_for(1, Duration::from_secs(30)).await;
        let letter = &messages[0];
        assert_eq!(letter["to"], email, "{backend}");
        assert_eq!(letter["subject"], "Восстановление пароля", "{backend}");
        let body = body_of(letter);
        let new_password = body.trim_end().rsplit(' ').next().unwrap().to_string();
        assert!(
            new_password.chars().count() >= 12
                && new_password.chars().all(|c| c.is_ascii_alphanumeric()),
            "{backend}: {new_password:?} from {body:?}"
        );
        let user = app.user(email).await.unwrap();
        assert_ne!(user.password, old_hash, "{backend}");
        assert!(
            user.password.starts_with("pbkdf2_sha256$1000000$")
                && !user.password.contains(&new_password),
            "{backend}: {}",
            user.password
        );

        // The old password no longer works, the new one does, and the
        // session from before the reset is over.
        assert_login_refused(&app, email, old_password, backend).await;
        let after = app.logged_in(email, &new_password).await;
        after.get("/users/profile/").await.assert_page(200, backend);
        before_reset
            .get("/users/profile/")
            .await
            .assert_redirect("/users/login/?next=/users/profile/", backend);

        // An unknown address: the same answer, and no letter.
        let outbox_before = app.outbox().await.len();
        let password_before = app.user(email).await.unwrap().password;
        let unknown = browser
            .submit("/users/password-reset/", &[("email", "nobody@example.com")])
            .await;
        assert_eq!(
            (unknown.status, &unknown.location),
            (known.status, &known.location),
            "{backend}"
        );
        assert_eq!(app.outbox().await.len(), outbox_before, "{backend}");
        assert_eq!(app.user(email).await.unwrap().password, password_before);
        app.mailer.notify();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(smtp.messages().len(), 1, "{backend}: a second letter went");
        drop(smtp);
        app.stop().await;
    }
}

// ---------------------------------------------------------------------------
// 3. A hash Django made, upgraded at login

/// What a Python script prints (trimmed); it must succeed.
fn run_python(script: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn python_pbkdf2(password: &str, salt: &str, iterations: u32) -> String {
    let script = "import base64, hashlib, sys\n\
                  pw, salt, n = sys.argv[1], sys.argv[2], int(sys.argv[3])\n\
                  h = base64.b64encode(hashlib.pbkdf2_hmac('sha256', pw.encode(), salt.encode(), n)).decode()\n\
                  print(f'pbkdf2_sha256${n}${salt}${h}')";
    run_python(script, &[password, salt, &iterations.to_string()])
}

fn python_verifies(encoded: &str, password: &str) -> bool {
    let script = "import base64, hashlib, hmac, sys\n\
                  enc, pw = sys.argv[1], sys.argv[2]\n\
                  alg, n, salt, h = enc.split('$')\n\
                  mine = base64.b64encode(hashlib.pbkdf2_hmac('sha256', pw.encode(), salt.encode(), int(n))).decode()\n\
                  print('ok' if alg == 'pbkdf2_sha256' and hmac.compare_digest(mine, h) else 'bad')";
    run_python(script, &[encoded, password]) == "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_django_hash_logs_in_is_upgraded_and_ends_older_sessions() {
    let password = "Django-Made-99";
    let django_hash = python_pbkdf2(password, "NaClNaClNaCl2024", 260_000);
    assert!(django_hash.starts_with("pbkdf2_sha256$260000$NaClNaClNaCl2024$"));
    on_each_backend(async |app, backend| {
        let email = "old.user@example.com";
        let id = app.insert_user(email, &django_hash, true, None).await;

        // A session Django started before the switch, for the old hash.
        let mut data = Map::new();
        data.insert("_auth_user_id".into(), Value::String(id.to_string()));
        data.insert(
            "_auth_user_backend".into(),
            "django.contrib.auth.backends.ModelBackend".into(),
        );
        data.insert(
            "_auth_user_hash".into(),
            unchained::django::sessions::session_auth_hash(&django_hash, SECRET_KEY).into(),
        );
        let old_key = app.store_session(&data).await;
        let old_session = app.browser();
        old_session.set_cookie("sessionid", &old_key);
        old_session
            .get("/users/profile/")
            .await
            .assert_page(200, backend)
            .assert_contains(email, backend);

        // A wrong password changes nothing.
        assert_login_refused(app, email, "Django-Made-98", backend).await;
        assert_eq!(app.user(email).await.unwrap().password, django_hash);

        // The right one logs in and upgrades the hash.
        let browser = app.logged_in(email, password).await;
        let user = app.user(email).await.unwrap();
        assert!(
            user.password.starts_with("pbkdf2_sha256$1000000$"),
            "{backend}: not upgraded: {}",
            user.password
        );
        assert!(
            python_verifies(&user.password, password),
            "{backend}: Python does not verify {}",
            user.password
        );
        assert!(user.last_login.is_some());
        browser
            .get("/users/profile/")
            .await
            .assert_page(200, backend);

        // The session from before the upgrade is over, its row deleted.
        old_session
            .get("/users/profile/")
            .await
            .assert_redirect("/users/login/?next=/users/profile/", backend);
        assert!(
            !app.session_keys().await.contains(&old_key),
            "{backend}: the stale session row was kept"
        );

        // The upgraded hash keeps working.
        let again = app.logged_in(email, password).await;
        again.get("/users/profile/").await.assert_page(200, backend);
        assert_eq!(app.user(email).await.unwrap().password, user.password);
    })
    .await;
}

// ---------------------------------------------------------------------------
// 4. SMTP outage

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_survives_an_smtp_outage_and_the_letter_goes_once() {
    for backend in backends() {
        let port = free_port();
        let app = spawn_app(backend, Mail::Smtp(Mode::StartTls, port)).await;
        let email = "outage@example.com";
        let r = app
            .browser()
            .submit(
                "/users/register/",
                &registration_form(email, GOOD_PASSWORD, GOOD_PASSWORD),
            )
            .await;
        r.assert_redirect("/users/login/", backend);
        let user = app.user(email).await.expect("the user row");
        assert!(!user.is_active);

        // The worker tries, fails, and keeps the letter.
        let start = Instant::now();
        let failed = loop {
            let rows = app.outbox().await;
            assert_eq!(rows.len(), 1, "{backend}: {rows:?}");
            if rows[0].last_error.is_some() {
                break rows[0].clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{backend}: no failed attempt recorded: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(failed.recipient, email);
        assert_eq!(failed.sent_at, None, "{backend}");
        assert!(failed.attempts >= 1, "{backend}: {failed:?}");

        // The server comes up on that port: the letter arrives, once.
        let smtp = SmtpServer::start(Mode::StartTls, port, &app.t.path("smtp"));
        let messages = smtp.wait_for(1, Duration::from_secs(60)).await;
        for _ in 0..6 {
            app.mailer.notify();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let messages_later = smtp.messages();
        assert_eq!(messages_later.len(), 1, "{backend}: {messages_later:?}");
        assert_eq!(messages[0]["to"], email);
        let rows = app.outbox().await;
        assert_eq!(rows.len(), 1, "{backend}");
        assert!(rows[0].sent_at.is_some(), "{backend}: {:?}", rows[0]);

        // And its link still works.
        let link = link_in(&body_of(&messages[0]));
        let path = link.strip_prefix(&app.base).unwrap().to_string();
        app.browser()
            .get(&path)
            .await
            .assert_redirect("/users/login/", backend);
        assert!(app.user(email).await.unwrap().is_active);
        drop(smtp);
        app.stop().await;
    }
}

// ---------------------------------------------------------------------------
// 5. Bad input, page by page

/// A value of 1 MB.
fn megabyte() -> String {
    "a".repeat(1024 * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_refuses_bad_input_and_keeps_the_email() {
    on_each_backend(async |app, backend| {
        app.create_user("taken@example.com", GOOD_PASSWORD, true)
            .await;
        let before = app.snapshot().await;
        let browser = app.browser();
        let form = |email: &'static str, p1: &'static str, p2: &'static str| {
            registration_form(email, p1, p2).to_vec()
        };
        let with_good_passwords = |email| form(email, GOOD_PASSWORD, GOOD_PASSWORD);
        let cases: Vec<(&str, Vec<(&str, &str)>, &str)> = vec![
            ("no fields", vec![], REQUIRED),
            ("empty fields", form("", "", ""), REQUIRED),
            (
                "mismatched",
                form("new@example.com", GOOD_PASSWORD, "Correct-Horse-43"),
                "Введенные пароли не совпадают.",
            ),
            ("too short", form("new@example.com", "Kx9#mP", "Kx9#mP"), "Введённый пароль слишком короткий. Он должен состоять из как минимум 8 символов."),
            ("numeric", form("new@example.com", "8203948571", "8203948571"), "только из цифр"),
            ("common", form("new@example.com", "password", "password"), "распространён"),
            (
                "like the e-mail",
                form("ivanpetrov1@example.com", "ivanpetrov1", "ivanpetrov1"),
                "слишком похож",
            ),
            ("not an e-mail", with_good_passwords("not-an-email"), BAD_EMAIL),
            // (Django's validator allows `localhost`, exactly as written.)
            ("no domain dot", with_good_passwords("ivan@example"), BAD_EMAIL),
            ("LOCALHOST", with_good_passwords("ivan@LOCALHOST"), BAD_EMAIL),
            ("trailing dot", with_good_passwords("ivan@example.com."), BAD_EMAIL),
            ("spaces", with_good_passwords("iv an@example.com"), BAD_EMAIL),
            ("duplicate", with_good_passwords("taken@example.com"), EMAIL_TAKEN),
            (
                "duplicate, domain in capitals",
                with_good_passwords("taken@EXAMPLE.com"),
                EMAIL_TAKEN,
            ),
        ];
        for (case, fields, expected) in cases {
            let what = format!("{backend} register: {case}");
            let r = browser.submit("/users/register/", &fields).await;
            r.assert_page(200, &what)
                .assert_contains("<ul class=\"errors\">", &what)
                .assert_contains(expected, &what);
            // Entered e-mails are kept, passwords never echoed.
            if let Some((_, email)) = fields.iter().find(|(k, _)| *k == "email") {
                if !email.is_empty() {
                    r.assert_contains(&format!("value=\"{email}\""), &what);
                }
            }
            assert_no_password_shown(&r.body, &what);
        }
        // 1 MB e-mail, URL-encoded and multipart.
        let big = format!("{}@example.com", megabyte());
        let what = format!("{backend} register: 1 MB e-mail");
        let r = browser
            .submit(
                "/users/register/",
                &registration_form(&big, GOOD_PASSWORD, GOOD_PASSWORD),
            )
            .await;
        r.assert_page(200, &what)
            .assert_contains(TOO_LONG_EMAIL, &what);
        let r = browser
            .submit_multipart(
                "/users/register/",
                multipart::Form::new()
                    .text("email", big.clone())
                    .text("password1", GOOD_PASSWORD)
                    .text("password2", GOOD_PASSWORD),
            )
            .await;
        r.assert_page(200, &format!("{what} (multipart)"))
            .assert_contains(TOO_LONG_EMAIL, &what);
        // A 1 MB password that does not match: refused, not echoed.
        let r = browser
            .submit(
                "/users/register/",
                &registration_form("new@example.com", &megabyte(), GOOD_PASSWORD),
            )
            .await;
        r.assert_page(200, &format!("{backend} register: 1 MB password"))
            .assert_contains("Введенные пароли не совпадают.", backend);
        assert!(r.body.len() < 100_000, "{backend}: the password is echoed");

        // A JSON body is no form: the fields are missing.
        let token = browser.token("/users/register/").await;
        let r = browser
            .send(
                browser
                    .post_request("/users/register/")
                    .header("X-CSRFToken", token)
                    .header("content-type", "application/json")
                    .body(r#"{"email": "json@example.com", "password1": "x", "password2": "x"}"#),
            )
            .await;
        r.assert_page(200, &format!("{backend} register: JSON"))
            .assert_contains(REQUIRED, backend);
        // Broken percent-encoding and bytes that are not UTF-8.
        let token = browser.token("/users/register/").await;
        browser
            .post_raw(
                "/users/register/",
                "application/x-www-form-urlencoded",
                format!("csrfmiddlewaretoken={token}&email=%FF%FE%&password1=%&password2=%ZZ"),
            )
            .await
            .assert_form_or_400_page(&format!("{backend} register: bad encoding"));
        browser
            .post_raw(
                "/users/register/",
                "multipart/form-data; boundary=XX",
                format!(
                    "--XX\r\nContent-Disposition: form-data; name=\"csrfmiddlewaretoken\"\r\n\r\n{token}\r\n\
                     --XX\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n\u{0}\r\n--XX"
                ),
            )
            .await
            .assert_form_or_400_page(&format!("{backend} register: broken multipart"));

        app.assert_unchanged(&before, backend).await;
    })
    .await;
}

/// As AuthenticationForm's UsernameField: the address is stripped and
/// NFKC-normalised before it is looked up, and a failed login shows it
/// back as it was typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_reads_the_address_as_django() {
    on_each_backend(async |app, backend| {
        app.create_user("ivan@example.com", GOOD_PASSWORD, true)
            .await;
        let typed = " ｉｖａｎ@example.com ";
        let r = app
            .browser()
            .submit("/users/login/", &login_form(typed, "Correct-Horse-43"))
            .await;
        r.assert_page(200, backend)
            .assert_contains(LOGIN_ERROR, backend)
            .assert_contains(&format!("value=\"{typed}\""), backend);
        app.browser()
            .submit("/users/login/", &login_form(typed, GOOD_PASSWORD))
            .await
            .assert_redirect("/", backend);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refuses_bad_input_with_one_message() {
    on_each_backend(async |app, backend| {
        app.create_user("ivan@example.com", GOOD_PASSWORD, true)
            .await;
        app.create_user("sleepy@example.com", GOOD_PASSWORD, false)
            .await;
        let before = app.snapshot().await;
        let browser = app.browser();

        let r = browser.submit("/users/login/", &[]).await;
        r.assert_page(200, backend);
        assert_eq!(r.body.matches(REQUIRED).count(), 2, "{backend}: {}", r.body);
        let big = megabyte();
        let mut generic: Vec<(&str, String, String)> = vec![
            (
                "wrong password",
                "ivan@example.com".into(),
                "Correct-Horse-43".into(),
            ),
            (
                "unknown e-mail",
                "nobody@example.com".into(),
                GOOD_PASSWORD.into(),
            ),
            (
                "inactive user",
                "sleepy@example.com".into(),
                GOOD_PASSWORD.into(),
            ),
            (
                "other case",
                "IVAN@example.com".into(),
                GOOD_PASSWORD.into(),
            ),
            ("1 MB password", "ivan@example.com".into(), big.clone()),
            (
                "1 MB e-mail",
                format!("{big}@example.com"),
                GOOD_PASSWORD.into(),
            ),
        ];
        let other_case = generic
            .iter()
            .position(|(case, ..)| *case == "other case")
            .unwrap();
        let other_case = if backend == "mysql" {
            Some(generic.remove(other_case))
        } else {
            None
        };
        let mut pages = Vec::new();
        for (case, email, password) in &generic {
            let what = format!("{backend} login: {case}");
            let r = browser
                .submit("/users/login/", &login_form(email, password))
                .await;
            r.assert_page(200, &what)
                .assert_contains(LOGIN_ERROR, &what);
            assert_no_password_shown(&r.body, &what);
            assert_eq!(browser.cookie("sessionid"), None, "{what}: a session");
            pages.push(without_tokens(&r.body).replace(email.as_str(), "EMAIL"));
        }
        // Same page whichever was wrong (apart from the entered address).
        for (page, (case, _, _)) in pages.iter().zip(&generic).skip(1).take(2) {
            assert_eq!(page, &pages[0], "{backend}: {case} differs");
        }
        // Multipart, 1 MB.
        let r = browser
            .submit_multipart(
                "/users/login/",
                multipart::Form::new()
                    .text("username", "ivan@example.com")
                    .text("password", big.clone()),
            )
            .await;
        r.assert_page(200, &format!("{backend} login: multipart 1 MB"))
            .assert_contains(LOGIN_ERROR, backend);
        browser
            .get("/users/profile/")
            .await
            .assert_redirect("/users/login/?next=/users/profile/", backend);
        app.assert_unchanged(&before, backend).await;
        // MariaDB compares e-mail addresses under the database's collation,
        // case-insensitive (utf8mb4_general_ci): there, as Django's own
        // `email = %s` lookup does, the address in another case logs in.
        if let Some((_, email, password)) = other_case {
            app.browser()
                .submit("/users/login/", &login_form(&email, &password))
                .await
                .assert_redirect("/", "mysql login: other case");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_refuses_bad_input() {
    on_each_backend(async |app, backend| {
        app.create_user("ivan@example.com", GOOD_PASSWORD, true)
            .await;
        let before = app.snapshot().await;
        let browser = app.browser();
        let big = format!("{}@example.com", megabyte());
        for (case, fields, expected) in [
            ("no field", vec![], REQUIRED),
            ("empty", vec![("email", "")], REQUIRED),
            ("not an e-mail", vec![("email", "ivan")], BAD_EMAIL),
            ("1 MB", vec![("email", big.as_str())], TOO_LONG_EMAIL),
        ] {
            let what = format!("{backend} reset: {case}");
            let r = browser.submit("/users/password-reset/", &fields).await;
            r.assert_page(200, &what).assert_contains(expected, &what);
        }
        let r = browser
            .submit_multipart(
                "/users/password-reset/",
                multipart::Form::new().text("email", big.clone()),
            )
            .await;
        r.assert_page(200, &format!("{backend} reset: multipart 1 MB"))
            .assert_contains(TOO_LONG_EMAIL, backend);
        app.assert_unchanged(&before, backend).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_refuses_bad_input_and_stores_avatars_as_django() {
    on_each_backend(async |app, backend| {
        let email = "ivan@example.com";
        let browser = app.new_user_logged_in(email).await;
        let before = app.snapshot().await;

        let bad: Vec<(&str, multipart::Form, &str)> = vec![
            (
                "1 MB first name",
                multipart::Form::new()
                    .text("first_name", megabyte())
                    .text("last_name", "Петров"),
                "Убедитесь, что это значение содержит не более 150 символов (сейчас 1048576).",
            ),
            (
                "long phone",
                multipart::Form::new().text("phone", "1".repeat(36)),
                "Убедитесь, что это значение содержит не более 35 символов (сейчас 36).",
            ),
            (
                "long country",
                multipart::Form::new().text("country", "Я".repeat(51)),
                "Убедитесь, что это значение содержит не более 50 символов (сейчас 51).",
            ),
            (
                "text as avatar",
                multipart::Form::new()
                    .text("first_name", "Иван")
                    .part("avatar", file("me.png", b"not an image at all")),
                "Загрузите правильное изображение",
            ),
            (
                "truncated PNG",
                multipart::Form::new().part("avatar", file("me.png", &PNG_1X1[..20])),
                "Загрузите правильное изображение",
            ),
            (
                "6 MB avatar",
                multipart::Form::new().part("avatar", {
                    let mut big = PNG_1X1.to_vec();
                    big.resize(6 * 1024 * 1024, 0);
                    file("big.png", &big)
                }),
                "Файл слишком большой",
            ),
            (
                "an image with other errors",
                multipart::Form::new()
                    .text("phone", "1".repeat(36))
                    .part("avatar", png("me.png")),
                "Убедитесь, что это значение содержит не более 35 символов (сейчас 36).",
            ),
        ];
        for (case, form, expected) in bad {
            let what = format!("{backend} profile: {case}");
            let r = browser.submit_multipart("/users/profile/", form).await;
            r.assert_page(200, &what)
                .assert_contains(expected, &what)
                .assert_contains("<ul class=\"errors\">", &what);
            app.assert_unchanged(&before, &what).await;
        }
        // URL-encoded too.
        let r = browser
            .submit("/users/profile/", &[("first_name", megabyte().as_str())])
            .await;
        r.assert_page(200, &format!("{backend} profile: 1 MB URL-encoded"))
            .assert_contains(
                "Убедитесь, что это значение содержит не более 150 символов (сейчас 1048576).",
                backend,
            );
        app.assert_unchanged(&before, backend).await;

        // A real PNG: stored under MEDIA_ROOT/users/avatars/, the column as Django's.
        let r = browser
            .submit_multipart(
                "/users/profile/",
                multipart::Form::new()
                    .text("first_name", "Иван")
                    .text("last_name", "Петров")
                    .text("phone", "+7 999 123-45-67")
                    .text("country", "Россия")
                    .part("avatar", png("me.png")),
            )
            .await;
        r.assert_redirect("/users/profile/", &format!("{backend} avatar"));
        let user = app.user(email).await.unwrap();
        assert_eq!(
            user.avatar.as_deref(),
            Some("users/avatars/me.png"),
            "{backend}"
        );
        assert_eq!(
            (user.first_name.as_str(), user.last_name.as_str()),
            ("Иван", "Петров")
        );
        assert_eq!(user.phone.as_deref(), Some("+7 999 123-45-67"));
        assert_eq!(user.country.as_deref(), Some("Россия"));
        let stored = app.media_root().join("users/avatars/me.png");
        assert_eq!(std::fs::read(&stored).unwrap(), PNG_1X1, "{backend}");
        browser
            .get("/users/profile/")
            .await
            .assert_page(200, backend)
            .assert_contains("src=\"/media/users/avatars/me.png\"", backend)
            .assert_contains("value=\"Иван\"", backend);

        // The same name again: Django's `_` and seven random characters.
        let r = browser
            .submit_multipart(
                "/users/profile/",
                multipart::Form::new()
                    .text("first_name", "Иван")
                    .part("avatar", png("me.png")),
            )
            .await;
        r.assert_redirect("/users/profile/", backend);
        let second = app.user(email).await.unwrap().avatar.unwrap();
        assert_django_alternative_name(&second, "users/avatars/me", ".png", backend);
        assert!(stored.exists(), "{backend}: the first file is gone");
        assert!(app.media_root().join(&second).exists(), "{backend}");

        // A name that climbs out of the folder stays inside it.
        let r = browser
            .submit_multipart(
                "/users/profile/",
                multipart::Form::new().part("avatar", png("../../../escape me.png")),
            )
            .await;
        r.assert_redirect("/users/profile/", backend);
        let third = app.user(email).await.unwrap().avatar.unwrap();
        assert_eq!(third, "users/avatars/escape_me.png", "{backend}");
        for path in app.media_files() {
            assert!(
                path.starts_with(app.media_root().join("users/avatars")),
                "{backend}: {path:?}"
            );
        }
        // Saving without a file keeps the avatar; empty optional fields are NULL.
        let r = browser
            .submit_multipart(
                "/users/profile/",
                multipart::Form::new()
                    .text("first_name", "Иван")
                    .text("phone", "")
                    .part("avatar", no_file()),
            )
            .await;
        r.assert_redirect("/users/profile/", backend);
        let user = app.user(email).await.unwrap();
        assert_eq!(user.avatar.as_deref(), Some(third.as_str()), "{backend}");
        assert_eq!(user.phone, None, "{backend}");

        // An anonymous POST changes nothing and goes to the login page.
        let before = app.snapshot().await;
        let anonymous = app.browser();
        let token = anonymous.token("/users/login/").await;
        let r = anonymous
            .post(
                "/users/profile/",
                &[
                    ("csrfmiddlewaretoken", token.as_str()),
                    ("first_name", "Хакер"),
                ],
            )
            .await;
        r.assert_redirect("/users/login/?next=/users/profile/", backend);
        app.assert_unchanged(&before, backend).await;
    })
    .await;
}

/// Over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) of fields, under
/// the 10 MB body limit: refused, nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_field_bytes_are_refused() {
    on_each_backend(async |app, backend| {
        let browser = app.new_user_logged_in("ivan@example.com").await;
        let before = app.snapshot().await;
        let three_mb = "a".repeat(3 * 1024 * 1024);
        let r = browser
            .submit_multipart(
                "/users/profile/",
                multipart::Form::new().text("first_name", three_mb.clone()),
            )
            .await;
        // Django's RequestDataTooBig: a 400 page (DATA_UPLOAD_MAX_MEMORY_SIZE).
        r.assert_page(400, &format!("{backend}: 3 MB multipart field"));
        let r = app
            .browser()
            .submit("/users/password-reset/", &[("email", three_mb.as_str())])
            .await;
        r.assert_page(400, &format!("{backend}: 3 MB URL-encoded field"));
        // TooManyFieldsSent: more than DATA_UPLOAD_MAX_NUMBER_FIELDS (1000).
        let names: Vec<String> = (0..5000).map(|i| format!("f{i}")).collect();
        let fields: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
        let r = app
            .browser()
            .submit("/users/password-reset/", &fields)
            .await;
        r.assert_page(400, &format!("{backend}: 5,000 fields"));
        app.assert_unchanged(&before, backend).await;
        browser
            .get("/users/profile/")
            .await
            .assert_page(200, backend);
    })
    .await;
}

/// A request refused as too large got an answer, the 413 page (the
/// connection was not cut while the body was being sent).
async fn assert_page_not_a_cut_connection(
    sent: reqwest::Result<reqwest::Response>,
    status: u16,
    what: &str,
    request: &str,
) -> Resp {
    match sent {
        Ok(response) => {
            let page = Browser::read(response).await;
            page.assert_page(status, what);
            page
        }
        Err(e) => panic!(
            "{request}: no response, the connection was cut while the body was being sent: {e:?}"
        ),
    }
}

/// A body over 10 MB, sent whole as any browser sends it, gets the 413 page
/// (not a reset connection), and changes nothing; a form whose fields
/// alone are larger than DATA_UPLOAD_MAX_MEMORY_SIZE gets Django's 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_10_mb_get_a_413_page() {
    on_each_backend(async |app, backend| {
        let browser = app.new_user_logged_in("ivan@example.com").await;
        let before = app.snapshot().await;
        for megabytes in [11, 11, 11, 11, 11, 40] {
            let mut big = PNG_1X1.to_vec();
            big.resize(megabytes * 1024 * 1024, 0);
            let token = browser.token("/users/profile/").await;
            let sent = browser
                .post_request("/users/profile/")
                .multipart(
                    multipart::Form::new()
                        .text("csrfmiddlewaretoken", token)
                        .text("first_name", "Иван")
                        .part("avatar", file("big.png", &big)),
                )
                .send()
                .await;
            assert_page_not_a_cut_connection(
                sent,
                413,
                &format!("{backend}: {megabytes} MB upload"),
                &format!("{backend}: POST /users/profile/ with a {megabytes} MB avatar"),
            )
            .await;
        }
        let anonymous = app.browser();
        let token = anonymous.token("/users/register/").await;
        let big_email = format!("{}@example.com", "a".repeat(11 * 1024 * 1024));
        let sent = anonymous
            .post_request("/users/register/")
            .form(&[
                ("csrfmiddlewaretoken", token.as_str()),
                ("email", big_email.as_str()),
            ])
            .send()
            .await;
        assert_page_not_a_cut_connection(
            sent,
            400,
            &format!("{backend}: 11 MB form"),
            &format!("{backend}: POST /users/register/ with an 11 MB form"),
        )
        .await
        .assert_contains("DATA_UPLOAD_MAX_MEMORY_SIZE", backend);
        // Without a CSRF cookie the request is refused before its body is
        // kept, as Django does: the 403 page, even for a body over the limit.
        let stranger = app.browser();
        let response = stranger
            .post_request("/users/register/")
            .form(&[("email", big_email.as_str())])
            .send()
            .await
            .expect("an answer, not a cut connection");
        let r = Browser::read(response).await;
        r.assert_page(403, &format!("{backend}: 11 MB form without a CSRF cookie"))
            .assert_contains(CSRF_PAGE, backend);
        app.assert_unchanged(&before, backend).await;
        browser
            .get("/users/profile/")
            .await
            .assert_page(200, backend);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_failures_are_403_and_change_nothing() {
    on_each_backend(async |app, backend| {
        let email = "ivan@example.com";
        let logged_in = app.new_user_logged_in(email).await;
        let anonymous = app.browser();
        anonymous.get("/users/login/").await; // gets a CSRF cookie
        let before = app.snapshot().await;
        let wrong_token: String = "A".repeat(64);
        let forms: Vec<(&str, &Browser, Vec<(&str, &str)>)> = vec![
            (
                "/users/register/",
                &anonymous,
                registration_form("new@example.com", GOOD_PASSWORD, GOOD_PASSWORD).to_vec(),
            ),
            (
                "/users/login/",
                &anonymous,
                login_form(email, GOOD_PASSWORD).to_vec(),
            ),
            ("/users/password-reset/", &anonymous, vec![("email", email)]),
            ("/users/profile/", &logged_in, vec![("first_name", "Хакер")]),
            ("/users/logout/", &logged_in, vec![]),
        ];
        for (path, browser, fields) in &forms {
            // A token from another browser (another secret).
            let foreign = app.browser().token("/users/login/").await;
            // No cookie at all: a fresh browser with a token made elsewhere.
            let cookieless = app.browser();
            for (case, who, token) in [
                ("missing token", *browser, None),
                ("empty token", *browser, Some(String::new())),
                ("wrong token", *browser, Some(wrong_token.clone())),
                ("short token", *browser, Some("abc".to_string())),
                ("another browser's token", *browser, Some(foreign.clone())),
                ("no CSRF cookie", &cookieless, Some(foreign.clone())),
            ] {
                let what = format!("{backend} POST {path}: {case}");
                let mut all = fields.clone();
                if let Some(token) = &token {
                    all.push(("csrfmiddlewaretoken", token.as_str()));
                }
                let r = who.post(path, &all).await;
                r.assert_page(403, &what).assert_contains(CSRF_PAGE, &what);
                app.assert_unchanged(&before, &what).await;
            }
        }
        // Still logged in after all that.
        logged_in
            .get("/users/profile/")
            .await
            .assert_page(200, backend);
        anonymous
            .get("/users/profile/")
            .await
            .assert_redirect("/users/login/?next=/users/profile/", backend);
        // The X-CSRFToken header is accepted in place of the field.
        let token = anonymous.token("/users/password-reset/").await;
        let r = anonymous
            .send(
                anonymous
                    .post_request("/users/password-reset/")
                    .header("X-CSRFToken", token)
                    .form(&[("email", "nobody@example.com")]),
            )
            .await;
        r.assert_redirect("/users/login/", backend);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_session_cookies_are_anonymous_never_500() {
    on_each_backend(async |app, backend| {
        let email = "ivan@example.com";
        let real = app.new_user_logged_in(email).await;
        let key = real.cookie("sessionid").unwrap();
        let unknown = unchained::django::sessions::new_session_key();
        for (i, (case, value)) in [
            ("unknown key", unknown.as_str()),
            ("tampered key", format!("{key}x").as_str()),
            ("short key", "abc"),
            ("garbage", "%00%ff..%2F..;'\"<>"),
            ("signed-looking", "eyJhIjoiYiJ9:1tQb3X:Ta-mpered"),
        ]
        .into_iter()
        .enumerate()
        {
            let what = format!("{backend} sessionid: {case}");
            let browser = app.browser();
            browser.set_cookie("sessionid", value);
            browser
                .get("/users/profile/")
                .await
                .assert_redirect("/users/login/?next=/users/profile/", &what);
            browser
                .get("/users/login/")
                .await
                .assert_page(200, &what)
                .assert_contains("href=\"/users/register/\"", &what);
            // An address of its own each time: one address gets at most
            // PASSWORD_RESET_MAX_PER_EMAIL (3) resets an hour.
            let nobody = format!("nobody{i}@example.com");
            let r = browser
                .submit("/users/password-reset/", &[("email", nobody.as_str())])
                .await;
            r.assert_redirect("/users/login/", &what);
            // Logging in from there works and starts a new session.
            browser.set_cookie("sessionid", value);
            let r = browser
                .submit(
                    "/users/login/",
                    &[("username", email), ("password", GOOD_PASSWORD)],
                )
                .await;
            r.assert_redirect("/", &what);
            let new_key = browser.cookie("sessionid").unwrap();
            assert_ne!(new_key, value, "{what}");
            browser.get("/users/profile/").await.assert_page(200, &what);
            assert!(
                !app.session_keys().await.contains(&value.to_string()),
                "{what}: a row under the forged key"
            );
        }
        assert!(app.session_keys().await.contains(&key));

        // The row's data tampered with: anonymous, not a 500.
        common::exec(
            &app.db,
            &format!("UPDATE django_session SET session_data = 'x' || session_data WHERE session_key = '{key}'"),
        )
        .await;
        real.get("/users/profile/").await.assert_redirect(
            "/users/login/?next=/users/profile/",
            &format!("{backend}: tampered data"),
        );

        // An expired session: anonymous.
        let expiring = app.logged_in(email, GOOD_PASSWORD).await;
        let expiring_key = expiring.cookie("sessionid").unwrap();
        expiring
            .get("/users/profile/")
            .await
            .assert_page(200, backend);
        common::exec(
            &app.db,
            &format!("UPDATE django_session SET expire_date = '2000-01-01 00:00:00' WHERE session_key = '{expiring_key}'"),
        )
        .await;
        expiring.get("/users/profile/").await.assert_redirect(
            "/users/login/?next=/users/profile/",
            &format!("{backend}: expired"),
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_used_confirmation_tokens_get_a_404_page() {
    on_each_backend(async |app, backend| {
        let hashers = app.hashers.clone();
        let hash = tokio::task::spawn_blocking(move || hashers.make_password(GOOD_PASSWORD))
            .await
            .unwrap();
        let token = "0123456789abcdef0123456789abcdef";
        app.insert_user("new@example.com", &hash, false, Some(token))
            .await;
        let before = app.snapshot().await;
        let browser = app.browser();
        for path in [
            "/users/email-confirm/ffffffffffffffffffffffffffffffff/".to_string(),
            format!("/users/email-confirm/{}/", &token[..31]),
            format!("/users/email-confirm/{}/", token.to_uppercase()),
            format!("/users/email-confirm/{token}x/"),
            "/users/email-confirm/%27%20OR%201=1--/".to_string(),
            format!("/users/email-confirm/{}/", "a".repeat(10_000)),
        ]
        .into_iter()
        // Under MariaDB's case-insensitive collation the token in capitals
        // is the same token, to Django's `token=` lookup too.
        .filter(|path| {
            backend != "mysql" || *path != format!("/users/email-confirm/{}/", token.to_uppercase())
        }) {
            let what = format!("{backend} GET {}", &path[..path.len().min(80)]);
            let r = browser.get(&path).await;
            r.assert_page(404, &what)
                .assert_contains(CONFIRM_FAILED, &what);
        }
        // No token at all is no page.
        browser
            .get("/users/email-confirm//")
            .await
            .assert_page(404, backend);
        app.assert_unchanged(&before, backend).await;

        // The real one works once; then it is a used token.
        let path = format!("/users/email-confirm/{token}/");
        browser
            .get(&path)
            .await
            .assert_redirect("/users/login/", backend);
        let user = app.user("new@example.com").await.unwrap();
        assert!(user.is_active && user.token.is_none(), "{backend}");
        browser
            .get(&path)
            .await
            .assert_page(404, backend)
            .assert_contains(CONFIRM_FAILED, backend);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avatars_are_served_under_media() {
    on_each_backend(async |app, backend| {
        let email = "ivan@example.com";
        let browser = app.new_user_logged_in(email).await;
        let r = browser
            .submit_multipart(
                "/users/profile/",
                multipart::Form::new().part("avatar", png("me.png")),
            )
            .await;
        r.assert_redirect("/users/profile/", backend);
        let avatar = app.user(email).await.unwrap().avatar.unwrap();
        browser
            .assert_serves(&format!("/media/{avatar}"), PNG_1X1, backend)
            .await;
        // Nothing outside MEDIA_ROOT.
        let r = browser.get("/media/../Cargo.toml").await;
        assert_ne!(r.status, 200, "{backend}");
        let r = browser.get("/media/%2e%2e/db.sqlite3").await;
        assert_ne!(r.status, 200, "{backend}");
    })
    .await;
}

/// NUL characters: PostgreSQL refuses them in text, Django's forms refuse
/// them with a field error. Never a 500, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_are_refused_not_500() {
    on_each_backend(async |app, backend| {
        let email = "ivan@example.com";
        let browser = app.new_user_logged_in(email).await;
        let before = app.snapshot().await;
        let anonymous = app.browser();
        let cases: Vec<(&str, &Browser, &str, Vec<(&str, &str)>)> = vec![
            (
                "register e-mail",
                &anonymous,
                "/users/register/",
                registration_form("iv\0an@example.com", GOOD_PASSWORD, GOOD_PASSWORD).to_vec(),
            ),
            (
                "register password",
                &anonymous,
                "/users/register/",
                registration_form("new@example.com", "Correct\0Horse-42", "Correct\0Horse-42")
                    .to_vec(),
            ),
            (
                "login e-mail",
                &anonymous,
                "/users/login/",
                login_form("ivan\0@example.com", GOOD_PASSWORD).to_vec(),
            ),
            (
                "login password",
                &anonymous,
                "/users/login/",
                login_form(email, "Correct\0Horse-42").to_vec(),
            ),
            (
                "reset e-mail",
                &anonymous,
                "/users/password-reset/",
                vec![("email", "ivan\0@example.com")],
            ),
            (
                "profile name",
                &browser,
                "/users/profile/",
                vec![("first_name", "Ив\0ан"), ("country", "Рос\0сия")],
            ),
        ];
        for (case, who, path, fields) in cases {
            let what = format!("{backend} NUL in {case}");
            let r = who.submit(path, &fields).await;
            r.assert_page(200, &what)
                .assert_contains("<ul class=\"errors\">", &what);
            app.assert_unchanged(&before, &what).await;
        }
        let r = anonymous.get("/users/email-confirm/%00/").await;
        r.assert_page(404, &format!("{backend} NUL in the token"))
            .assert_contains(CONFIRM_FAILED, backend);
    })
    .await;
}

/// Against session fixation: a session that existed before the login (one
/// Django made for an anonymous visitor, here) gets a new key at login and
/// its old row is deleted; its data is kept, as `cycle_key` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_gives_the_session_a_new_key() {
    on_each_backend(async |app, backend| {
        let email = "ivan@example.com";
        app.create_user(email, GOOD_PASSWORD, true).await;
        let mut data = Map::new();
        data.insert("cart".into(), Value::String("три товара".into()));
        let old_key = app.store_session(&data).await;
        let browser = app.browser();
        browser.set_cookie("sessionid", &old_key);
        let r = browser
            .submit("/users/login/", &login_form(email, GOOD_PASSWORD))
            .await;
        r.assert_redirect("/", backend);
        let new_key = browser.cookie("sessionid").unwrap();
        assert_ne!(new_key, old_key, "{backend}: the key was kept");
        let keys = app.session_keys().await;
        assert!(!keys.contains(&old_key), "{backend}: the old row was kept");
        let data = app.session_data(&new_key).await.expect("the new row");
        assert_eq!(
            data.get("cart").and_then(Value::as_str),
            Some("три товара"),
            "{backend}: {data:?}"
        );
        browser
            .get("/users/profile/")
            .await
            .assert_page(200, backend);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_past_the_hashing_queue_get_a_503_page_and_pages_go_on() {
    // One hashing thread and no queue: of logins sent at once, one is
    // hashed at a time, the others wait at most a second, then are refused.
    let settings = [
        ("HASHING_THREADS", "1"),
        ("HASHING_QUEUE", "1"),
        ("HASHING_WAIT_SECONDS", "1"),
    ];
    for backend in backends() {
        let app = common::app::spawn_app_with(backend, Mail::File, &settings).await;
        let email = "ivan@example.com";
        app.create_user(email, GOOD_PASSWORD, true).await;
        let mut tokens = Vec::new();
        for _ in 0..12 {
            let browser = app.browser();
            let token = browser.token("/users/login/").await;
            tokens.push((browser, token));
        }
        let started = Instant::now();
        let mut logins = tokio::task::JoinSet::new();
        for (browser, token) in tokens {
            logins.spawn(async move {
                let form = [
                    ("csrfmiddlewaretoken", token.as_str()),
                    ("username", email),
                    ("password", GOOD_PASSWORD),
                ];
                browser.post("/users/login/", &form).await
            });
        }
        let answers = logins.join_all().await;
        let elapsed = started.elapsed();
        let logged_in = answers.iter().filter(|r| r.status == 302).count();
        let refused: Vec<&common::app::Resp> = answers.iter().filter(|r| r.status == 503).collect();
        assert_eq!(
            logged_in + refused.len(),
            12,
            "{backend}: {:?}",
            answers.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        assert!(logged_in >= 1, "{backend}: nobody logged in");
        assert!(!refused.is_empty(), "{backend}: nobody refused");
        for r in refused {
            r.assert_page(503, backend);
            assert_eq!(
                r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
                Some("5"),
                "{backend}"
            );
        }
        // Refusals come at once or after the wait, never after a long queue.
        assert!(elapsed < Duration::from_secs(30), "{backend}: {elapsed:?}");
        // Pages need no hashing: they answer meanwhile and afterwards.
        app.browser()
            .get("/users/login/")
            .await
            .assert_page(200, backend);
        app.stop().await;
    }
}
