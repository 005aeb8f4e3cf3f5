//! The site served on a random loopback port against a fresh database, and
//! a browser to drive it: what the page tests (accounts, catalog) share.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::multipart;

use super::smtp::{trust_test_ca_in_this_process, Mode, SmtpServer, SMTP_PASSWORD, SMTP_USER};
use super::{backends, free_port, TestDb, SECRET_KEY};
use unchained::db::users::{self, NewUser, User};
use unchained::db::Db;
use unchained::django::hashers::Hashers;
use unchained::mail::MailerHandle;

/// The site's sender address.
pub const FROM: &str = "Каталог <shop@example.com>";
/// A password every validator accepts.
pub const GOOD_PASSWORD: &str = "Correct-Horse-42";

/// A 1×1 transparent PNG.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52, 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89, 0, 0, 0, 0x0A, 0x49, 0x44, 0x41, 0x54,
    0x78, 0x9C, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0D, 0x0A, 0x2D, 0xB4, 0, 0, 0, 0, 0x49, 0x45, 0x4E,
    0x44, 0xAE, 0x42, 0x60, 0x82,
];

// ---------------------------------------------------------------------------
// Parts of a multipart form

/// A file input holding these bytes, sent as a PNG.
pub fn file(name: &str, bytes: &[u8]) -> multipart::Part {
    multipart::Part::bytes(bytes.to_vec())
        .file_name(name.to_string())
        .mime_str("image/png")
        .unwrap()
}

/// A file input holding a real 1×1 PNG.
pub fn png(name: &str) -> multipart::Part {
    file(name, PNG_1X1)
}

/// What a browser sends for a file input left empty.
pub fn no_file() -> multipart::Part {
    multipart::Part::bytes(Vec::new())
        .file_name("")
        .mime_str("application/octet-stream")
        .unwrap()
}

/// A stored upload name Django made because `{stem}{ext}` was taken:
/// `{stem}_` and seven random letters or digits, then `{ext}`.
pub fn assert_django_alternative_name(stored: &str, stem: &str, ext: &str, what: &str) {
    let suffix = stored
        .strip_prefix(&format!("{stem}_"))
        .and_then(|s| s.strip_suffix(ext))
        .unwrap_or_else(|| panic!("{what}: {stored}"));
    assert!(
        suffix.len() == 7 && suffix.chars().all(|c| c.is_ascii_alphanumeric()),
        "{what}: {stored}"
    );
}

// ---------------------------------------------------------------------------
// The application

/// Where the site's letters go.
pub enum Mail {
    /// The real SMTP server on this port (running or not), in this mode.
    Smtp(Mode, u16),
    /// Django's file back end, into a folder of the test's own.
    File,
}

pub struct App {
    pub base: String,
    /// `http://` and `METRICS_ADDRESS`'s listener, when it is set.
    pub metrics_base: Option<String>,
    pub t: TestDb,
    pub db: Db,
    pub hashers: Hashers,
    pub mailer: MailerHandle,
    stop: tokio::sync::oneshot::Sender<()>,
    /// The running application (finished only when it stopped).
    pub server: tokio::task::JoinHandle<()>,
    pub backend: &'static str,
}

/// Builds the settings from a Django-style environment, migrates a fresh
/// database, starts the mail worker (retrying after 1 s) and serves the
/// site on a random loopback port.
pub async fn spawn_app(backend: &'static str, mail: Mail) -> App {
    spawn_app_with(backend, mail, &[]).await
}

/// [`spawn_app`] with more settings.
pub async fn spawn_app_with(backend: &'static str, mail: Mail, settings: &[(&str, &str)]) -> App {
    let t = TestDb::new(backend).await;
    let mut env: unchained::config::Env = t.settings_env().into_iter().collect();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    set("EMAIL_RETRY_SECONDS", "1".into());
    set("DEFAULT_FROM_EMAIL", FROM.into());
    match mail {
        Mail::Smtp(mode, port) => {
            // Before the worker starts: it reads SSL_CERT_FILE.
            trust_test_ca_in_this_process();
            set(
                "EMAIL_BACKEND",
                "django.core.mail.backends.smtp.EmailBackend".into(),
            );
            set("EMAIL_HOST", "127.0.0.1".into());
            set("EMAIL_PORT", port.to_string());
            set("EMAIL_HOST_USER", SMTP_USER.into());
            set("EMAIL_HOST_PASSWORD", SMTP_PASSWORD.into());
            set(
                "EMAIL_USE_SSL",
                if mode == Mode::Ssl { "True" } else { "False" }.into(),
            );
            set(
                "EMAIL_USE_TLS",
                if mode == Mode::StartTls {
                    "True"
                } else {
                    "False"
                }
                .into(),
            );
        }
        Mail::File => {
            set("EMAIL_BACKEND", "file".into());
            set("EMAIL_FILE_PATH", t.path("sent-mail").display().to_string());
        }
    }
    for (name, value) in settings {
        set(name, value.to_string());
    }
    set("BIND_ADDRESS", "127.0.0.1:0".into());
    let settings = unchained::config::Settings::from_env(&env).expect("settings");
    let db = t.db().await;
    unchained::db::schema::migrate(&db)
        .await
        .unwrap_or_else(|e| panic!("{backend}: migrate: {e:?}"));
    // The application `serve` runs, on a free loopback port.
    let application = unchained::web::Application::build(db.clone(), settings)
        .await
        .expect("the site starts");
    let address = application.address();
    let metrics_base = application
        .metrics_address()
        .map(|address| format!("http://{address}"));
    let hashers = application.state().hashers.clone();
    let mailer = application.state().mailer.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stopped.await;
    }));
    App {
        base: format!("http://{address}"),
        metrics_base,
        t,
        db,
        hashers,
        mailer,
        stop,
        server,
        backend,
    }
}

/// Runs a test once per back end (given its name), each time against a
/// fresh site whose letters go to the file back end, and stops the site
/// afterwards.
pub async fn on_each_backend(test: impl AsyncFn(&App, &'static str)) {
    for backend in backends() {
        let app = spawn_app(backend, Mail::File).await;
        test(&app, backend).await;
        app.stop().await;
    }
}

/// A fresh site sending over SMTP in this mode, and the SMTP server it
/// sends to (already listening).
pub async fn spawn_app_with_smtp(backend: &'static str, mode: Mode) -> (App, SmtpServer) {
    let port = free_port();
    let app = spawn_app(backend, Mail::Smtp(mode, port)).await;
    let smtp = SmtpServer::start(mode, port, &app.t.path("smtp"));
    (app, smtp)
}

impl App {
    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// Stops the site as SIGTERM does: the mail worker and the database
    /// are closed when the requests under way have finished.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }

    pub async fn user(&self, email: &str) -> Option<User> {
        users::by_email(&self.db, email).await.unwrap()
    }

    /// One `i64` from a query (`SELECT COUNT(*) …`).
    pub async fn count(&self, sql: &str) -> i64 {
        unchained::on_pool!(&self.db, |pool| sqlx::query_scalar::<_, i64>(
            &(&self.db).sql(sql)
        )
        .fetch_one(pool)
        .await)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The text column of every row a query returns.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        unchained::on_pool!(&self.db, |pool| sqlx::query_scalar::<_, String>(
            &(&self.db).sql(sql)
        )
        .fetch_all(pool)
        .await)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn media_root(&self) -> PathBuf {
        self.t.path("media")
    }

    /// Every file under MEDIA_ROOT, sorted.
    pub fn media_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.media_root(), &mut files);
        files.sort();
        files
    }

    /// The site's hash of a password (a blocking thread does the work).
    pub async fn make_password(&self, password: &str) -> String {
        let hashers = self.hashers.clone();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || hashers.make_password(&password))
            .await
            .unwrap()
    }

    /// A user as `createsuperuser`-like code would store one (no letter).
    pub async fn create_user(&self, email: &str, password: &str, active: bool) -> i64 {
        let hash = self.make_password(password).await;
        self.insert_user(email, &hash, active, None).await
    }

    pub async fn insert_user(
        &self,
        email: &str,
        password_hash: &str,
        active: bool,
        token: Option<&str>,
    ) -> i64 {
        self.insert(&NewUser {
            email,
            password_hash,
            is_active: active,
            is_staff: false,
            is_superuser: false,
            token,
        })
        .await
    }

    /// Any user row, through the library.
    pub async fn insert(&self, user: &NewUser<'_>) -> i64 {
        let mut tx = self.db.begin().await.unwrap();
        let id = users::insert(&mut tx, user).await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    /// A new active user with `GOOD_PASSWORD`, and a browser logged in as them.
    pub async fn new_user_logged_in(&self, email: &str) -> Browser {
        self.create_user(email, GOOD_PASSWORD, true).await;
        self.logged_in(email, GOOD_PASSWORD).await
    }

    /// Stores a session row with this data (as Django encodes it, expiring
    /// in two weeks) and returns its key.
    pub async fn store_session(&self, data: &serde_json::Map<String, serde_json::Value>) -> String {
        let key = unchained::django::sessions::new_session_key();
        let expire =
            unchained::db::time::DjangoDateTime(chrono::Utc::now() + chrono::Duration::days(14));
        assert!(unchained::db::sessions::insert(
            &self.db,
            &key,
            &unchained::django::sessions::encode(data, SECRET_KEY),
            expire,
        )
        .await
        .unwrap());
        key
    }

    /// A browser logged in as this user through the login page (checked).
    pub async fn logged_in(&self, email: &str, password: &str) -> Browser {
        let browser = self.browser();
        let r = browser
            .submit(
                "/users/login/",
                &[("username", email), ("password", password)],
            )
            .await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (302, Some("/")),
            "{}: login as {email}: {}",
            self.backend,
            r.body
        );
        browser
    }
}

// ---------------------------------------------------------------------------
// The browser

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn assert_page(&self, status: u16, what: &str) -> &Self {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        assert!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/html")),
            "{what}: not an HTML page: {:?}",
            self.headers
        );
        assert!(
            self.body.contains("</html>"),
            "{what}: not a whole page: {}",
            self.body
        );
        self
    }

    pub fn assert_contains(&self, needle: &str, what: &str) -> &Self {
        assert!(
            self.body.contains(needle),
            "{what}: {needle:?} is not in the page: {}",
            self.body
        );
        self
    }

    pub fn assert_lacks(&self, needle: &str, what: &str) -> &Self {
        assert!(
            !self.body.contains(needle),
            "{what}: {needle:?} should not be in the page: {}",
            self.body
        );
        self
    }

    /// Bad input the server could not even parse: a whole page, 200 (a
    /// form with errors) or 400, never a 500.
    pub fn assert_form_or_400_page(&self, what: &str) -> &Self {
        assert!(
            self.status == 200 || self.status == 400,
            "{what}: {} {}",
            self.status,
            self.body
        );
        self.assert_page(self.status, what)
    }

    pub fn assert_redirect(&self, to: &str, what: &str) -> &Self {
        assert_eq!(
            (self.status, self.location.as_deref()),
            (302, Some(to)),
            "{what}: {}",
            self.body
        );
        self
    }
}

/// A reqwest client with a cookie jar and no automatic redirects.
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser::with_client(base, |builder| builder)
    }

    /// A browser whose client is configured further: another loopback
    /// source address (`local_address`, so the server sees another peer),
    /// headers sent with every request.
    pub fn with_client(
        base: &str,
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Browser {
        let jar = Arc::new(Jar::default());
        let builder = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120));
        let client = configure(builder).build().unwrap();
        Browser {
            client,
            jar,
            base: base.to_string(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn read(response: reqwest::Response) -> Resp {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let body = response.text().await.unwrap();
        Resp {
            status,
            location,
            headers,
            body,
        }
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Resp {
        Browser::read(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.client.get(self.url(path))).await
    }

    /// A POST to this path, to add headers and a body to, then send.
    pub fn post_request(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    /// POSTs a body as it is, with this content type (no token added).
    pub async fn post_raw(&self, path: &str, content_type: &str, body: String) -> Resp {
        self.send(
            self.post_request(path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    /// GETs a file and checks it is served whole: 200 and exactly these bytes.
    pub async fn assert_serves(&self, path: &str, bytes: &[u8], what: &str) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{what}: GET {path}");
        assert_eq!(response.bytes().await.unwrap().as_ref(), bytes, "{what}");
    }

    /// The form token of a page (GETs it: the CSRF cookie comes along).
    pub async fn token(&self, page: &str) -> String {
        let r = self.get(page).await;
        assert_eq!(r.status, 200, "GET {page}: {}", r.body);
        csrf_token(&r.body).unwrap_or_else(|| panic!("no CSRF token on {page}: {}", r.body))
    }

    /// POSTs URL-encoded fields as they are (no token added).
    pub async fn post<K: AsRef<str>, V: AsRef<str>>(&self, path: &str, fields: &[(K, V)]) -> Resp {
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        self.send(self.client.post(self.url(path)).form(&fields))
            .await
    }

    /// What a user does: opens the page, fills the form in, sends it.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let token = self.token(path).await;
        let mut all = vec![("csrfmiddlewaretoken", token.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    /// A multipart form with the page's token.
    pub async fn submit_multipart(&self, path: &str, form: multipart::Form) -> Resp {
        let token = self.token(path).await;
        self.post_multipart(path, form.text("csrfmiddlewaretoken", token))
            .await
    }

    /// POSTs a multipart form as it is (no token added).
    pub async fn post_multipart(&self, path: &str, form: multipart::Form) -> Resp {
        self.send(self.client.post(self.url(path)).multipart(form))
            .await
    }

    pub async fn logout(&self) -> Resp {
        let token = self.token("/users/profile/").await;
        self.post("/users/logout/", &[("csrfmiddlewaretoken", token.as_str())])
            .await
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = reqwest::Url::parse(&self.base).unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().unwrap().split("; ").find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        let url = reqwest::Url::parse(&self.base).unwrap();
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &url);
    }
}

/// The first form token in a page.
pub fn csrf_token(html: &str) -> Option<String> {
    let marker = "name=\"csrfmiddlewaretoken\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(html[start..end].to_string())
}
