//! Settings from the environment, with the names of the original Django settings.
//!
//! Every value is read once at start-up. A bad value stops the program with a
//! single line that names the variable and says what is wrong with it.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::django::hashers::{Hashers, DEFAULT_PASSWORD_HASHERS};
use crate::django::releases::Release;

mod mysql_url;
mod security;

pub use mysql_url::{MySqlServer, MySqlSslMode, MySqlUrl};
pub use security::SecuritySettings;

/// Django's `check_secret_key` thresholds (security.W009 and W025): a key
/// below them is used, with Django's warning.
const SECRET_KEY_MIN_LENGTH: usize = 50;
const SECRET_KEY_MIN_UNIQUE_CHARACTERS: usize = 5;
const SECRET_KEY_INSECURE_PREFIX: &str = "django-insecure-";
const GENERATED_KEY_FILE: &str = "secret_key.txt";

/// A value that must never reach a log or an error page: `Debug` prints
/// stars. It reads as the `str` it holds.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Secret {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

/// A configuration error: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(variable: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            variable: variable.to_string(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Where the database lives, parsed from a dj-database-url style `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
    MySql(MySqlUrl),
}

/// Never prints a password.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            DatabaseUrl::Postgres(url) => f
                .debug_tuple("Postgres")
                .field(&without_password(url))
                .finish(),
            DatabaseUrl::MySql(url) => f.debug_tuple("MySql").field(url).finish(),
        }
    }
}

/// A URL with the password of its user information replaced by stars, to
/// show in errors and logs. The user information is taken to end at the
/// last `@`: a password with an unencoded `/`, `?` or `#` (which end the
/// authority of a well-formed URL) is still hidden, and an `@` further on
/// hides more than the password, never less.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, after)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:********@{after}"),
        None => url.to_string(),
    }
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let shown = without_password(url);
        let bad =
            |problem: &str| ConfigError::new("DATABASE_URL", format!("{problem} (got {shown:?})"));
        if let Some(rest) = url.strip_prefix("sqlite://") {
            // dj-database-url: sqlite:///relative.db, sqlite:////absolute/path.db;
            // `sqlite://`, `sqlite://:memory:` and `sqlite:///:memory:` are
            // in-memory databases there.
            if matches!(rest, "" | ":memory:" | "/:memory:") {
                return Err(bad(
                    "an in-memory SQLite database is refused: each connection would get an \
                     empty database of its own, and Django could not share it",
                ));
            }
            let path = rest
                .strip_prefix('/')
                .ok_or_else(|| bad("use sqlite:///relative/path or sqlite:////absolute/path"))?;
            if path.is_empty() {
                return Err(bad("the SQLite file name is missing"));
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        for scheme in ["postgres://", "postgresql://", "pgsql://"] {
            if let Some(rest) = url.strip_prefix(scheme) {
                // The name is the path, or libpq's `dbname` parameter; the
                // host may be a socket folder, percent-encoded
                // (`%2Fvar%2Frun%2Fpostgresql`) or in `?host=`; other
                // parameters (`sslmode`, …) go to the driver as libpq's.
                let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
                let path_name = before_query.split_once('/').map_or("", |(_, name)| name);
                let query_name = query
                    .split('&')
                    .any(|pair| pair.strip_prefix("dbname=").is_some_and(|n| !n.is_empty()));
                if path_name.is_empty() && !query_name {
                    return Err(bad("the PostgreSQL database name is missing"));
                }
                return Ok(DatabaseUrl::Postgres(format!("postgres://{rest}")));
            }
        }
        for scheme in mysql_url::SCHEMES {
            if let Some(rest) = url.strip_prefix(scheme) {
                return MySqlUrl::parse(rest)
                    .map(DatabaseUrl::MySql)
                    .map_err(|problem| bad(&problem));
            }
        }
        Err(bad(
            "expected sqlite:///path, postgres://user:pass@host:port/name or \
             mysql://user:pass@host:port/name",
        ))
    }

    /// The folder a generated secret key is kept in: beside the SQLite file,
    /// or the working directory for a database server.
    fn key_dir(&self) -> PathBuf {
        match self {
            DatabaseUrl::Sqlite(path) => match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                _ => PathBuf::from("."),
            },
            DatabaseUrl::Postgres(_) | DatabaseUrl::MySql(_) => PathBuf::from("."),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailBackend {
    Smtp,
    Console,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub backend: EmailBackend,
    pub host: String,
    pub port: u16,
    pub host_user: String,
    pub host_password: Secret,
    pub use_ssl: bool,
    pub use_tls: bool,
    pub default_from: String,
    /// `EMAIL_RETRY_SECONDS`: the wait before the first retry of a letter
    /// that could not be sent; it doubles with each failure, up to an hour.
    pub retry_base: Duration,
}

impl EmailSettings {
    /// Which back end sends the letters this instance queues, as stored with
    /// each letter in the outbox: only an instance configured alike sends
    /// it (a console or file instance on the shared database never takes
    /// letters an SMTP instance queued).
    pub fn outbox_backend(&self) -> String {
        match &self.backend {
            EmailBackend::Smtp => format!("smtp://{}:{}", self.host, self.port),
            EmailBackend::Console => "console".to_string(),
            EmailBackend::File(path) => format!("file:{}", path.display()),
        }
    }
}

/// The longest wait between two attempts at one letter.
pub const EMAIL_RETRY_CAP: Duration = Duration::from_secs(3600);

/// Where the secret key came from, so start-up can say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretKeySource {
    Environment,
    File(PathBuf),
    Generated(PathBuf),
}

#[derive(Clone)]
pub struct Settings {
    pub secret_key: Secret,
    pub secret_key_source: SecretKeySource,
    pub secret_key_fallbacks: Vec<Secret>,
    pub database: DatabaseUrl,
    pub debug: bool,
    pub allowed_hosts: Vec<String>,
    pub email: EmailSettings,
    pub media_root: PathBuf,
    pub static_root: PathBuf,
    /// Where datetimes are shown (stored in UTC, as Django's USE_TZ).
    pub time_zone: chrono_tz::Tz,
    pub password_hashers: Vec<String>,
    /// `DJANGO_VERSION`: the release the site runs, whose hasher work
    /// factors new hashes get.
    pub django_release: Release,
    /// Django 4.2's `CSRF_COOKIE_MASKED`: a new CSRF cookie holds the masked
    /// 64-character token rather than the secret (refused on 5.0+).
    pub csrf_cookie_masked: bool,
    pub bind: SocketAddr,
    /// `SESSION_ENGINE`, `SESSION_COOKIE_*`, `SESSION_EXPIRE_AT_BROWSER_CLOSE`,
    /// `SESSION_SAVE_EVERY_REQUEST`.
    pub session: SessionSettings,
    /// `CSRF_COOKIE_*`, `CSRF_HEADER_NAME`, `CSRF_USE_SESSIONS`,
    /// `CSRF_TRUSTED_ORIGINS`.
    pub csrf: CsrfSettings,
    /// `LOGIN_URL`, `LOGIN_REDIRECT_URL`, `LOGOUT_REDIRECT_URL`.
    pub auth_urls: AuthUrls,
    /// `LOG_FORMAT`, `ACCESS_LOG`.
    pub logging: Logging,
    /// `SECURE_PROXY_SSL_HEADER`: (header name, value meaning HTTPS).
    pub secure_proxy_ssl_header: Option<(String, String)>,
    /// `HASHING_THREADS`, `HASHING_QUEUE`, `HASHING_WAIT_SECONDS`.
    pub hashing: HashingLimits,
    /// django-axes' `AXES_*` settings and the password-reset limits.
    pub throttling: Throttling,
    /// `PASSWORD_RESET_CONFIRM`: the reset form mails a one-time link to a
    /// page whose button mails the new password (the original sets and mails
    /// it at once).
    pub password_reset_confirm: bool,
    /// Django's `PASSWORD_RESET_TIMEOUT`: how long a reset link works.
    pub password_reset_timeout: Duration,
    /// `HTTP_HEADER_TIMEOUT`, `HTTP_KEEPALIVE`, `HTTP_MAX_CONNECTIONS`,
    /// `GRACEFUL_TIMEOUT`.
    pub connections: ConnectionLimits,
    /// Django's `DATA_UPLOAD_*` and `FILE_UPLOAD_*` settings.
    pub uploads: UploadLimits,
    /// `SECURE_*` (`SecurityMiddleware`), `X_FRAME_OPTIONS`,
    /// `SILENCED_SYSTEM_CHECKS`.
    pub security: SecuritySettings,
    /// `HEALTH_LIVE_PATH`, `HEALTH_READY_PATH`.
    pub health: HealthPaths,
    /// `METRICS_PATH`, `METRICS_ADDRESS`.
    pub metrics: MetricsSettings,
}

/// How much of a form is held in memory, with Django's names, defaults and
/// meanings (`None` turns a limit off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLimits {
    /// `DATA_UPLOAD_MAX_MEMORY_SIZE`: bytes of fields (files not counted).
    pub data_max_memory: Option<usize>,
    /// `DATA_UPLOAD_MAX_NUMBER_FIELDS`.
    pub max_fields: Option<usize>,
    /// `DATA_UPLOAD_MAX_NUMBER_FILES`.
    pub max_files: Option<usize>,
    /// `FILE_UPLOAD_MAX_MEMORY_SIZE`: a body larger than this keeps its
    /// files in temporary files rather than in memory.
    pub file_max_memory: usize,
    /// `FILE_UPLOAD_TEMP_DIR`: where those files go (the system's
    /// temporary folder when unset).
    pub temp_dir: Option<PathBuf>,
}

impl Default for UploadLimits {
    /// Django's defaults.
    fn default() -> UploadLimits {
        UploadLimits {
            data_max_memory: Some(2_621_440),
            max_fields: Some(1000),
            max_files: Some(100),
            file_max_memory: 2_621_440,
            temp_dir: None,
        }
    }
}

impl UploadLimits {
    fn from_env(env: &Env) -> Result<UploadLimits, ConfigError> {
        let get = |name: &str| env.get(name).map(String::as_str);
        let defaults = UploadLimits::default();
        let limit = |name: &str, default: Option<usize>| match get(name).map(str::trim) {
            Some("None") => Ok(None),
            value => parse_in_range(
                name,
                value,
                default.unwrap_or(0) as u64,
                0..=u32::MAX as u64,
            )
            .map(|n| Some(n as usize)),
        };
        Ok(UploadLimits {
            data_max_memory: limit("DATA_UPLOAD_MAX_MEMORY_SIZE", defaults.data_max_memory)?,
            max_fields: limit("DATA_UPLOAD_MAX_NUMBER_FIELDS", defaults.max_fields)?,
            max_files: limit("DATA_UPLOAD_MAX_NUMBER_FILES", defaults.max_files)?,
            file_max_memory: parse_in_range(
                "FILE_UPLOAD_MAX_MEMORY_SIZE",
                get("FILE_UPLOAD_MAX_MEMORY_SIZE"),
                defaults.file_max_memory as u64,
                0..=u32::MAX as u64,
            )? as usize,
            temp_dir: match get("FILE_UPLOAD_TEMP_DIR") {
                None | Some("") => None,
                Some(dir) => Some(PathBuf::from(dir)),
            },
        })
    }
}

/// What a client connection may hold of the server (`web::server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request head must be whole this long after its first byte (or,
    /// for a connection's first request, after the connection opened).
    pub header_timeout: Duration,
    /// An idle connection between requests is closed after this long.
    pub keepalive: Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// After SIGTERM, how long requests under way may take to finish.
    pub grace: Duration,
}

impl ConnectionLimits {
    /// A head within 10 s (slow clients send theirs in well under a
    /// second); 75 s of keep-alive, longer than the 60 s a proxy in front
    /// keeps its idle connections, so the proxy never sends a request on a
    /// connection this end is closing; 1,000 connections at once and 30 s
    /// of grace, as gunicorn's `worker_connections` and `graceful_timeout`.
    fn from_env(env: &Env) -> Result<ConnectionLimits, ConfigError> {
        let get = |name: &str| env.get(name).map(String::as_str);
        let seconds = |name: &str, default: u64| {
            parse_in_range(name, get(name), default, 1..=3600).map(Duration::from_secs)
        };
        Ok(ConnectionLimits {
            header_timeout: seconds("HTTP_HEADER_TIMEOUT", 10)?,
            keepalive: seconds("HTTP_KEEPALIVE", 75)?,
            max_connections: parse_in_range(
                "HTTP_MAX_CONNECTIONS",
                get("HTTP_MAX_CONNECTIONS"),
                1000,
                1..=1_000_000,
            )? as usize,
            grace: seconds("GRACEFUL_TIMEOUT", 30)?,
        })
    }
}

/// What Django's `response.set_cookie` is given for one of its cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSettings {
    pub name: String,
    /// `None`: a host-only cookie.
    pub domain: Option<String>,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
    /// `Lax`, `Strict` or `None` as the setting writes it (Django sends
    /// the text as given); `None` here for Django's `False`: no attribute.
    pub same_site: Option<String>,
}

impl CookieSettings {
    /// Reads `<PREFIX>_NAME`, `_DOMAIN`, `_PATH`, `_SECURE`, `_HTTPONLY` and
    /// `_SAMESITE` with the given defaults for name and `HttpOnly`.
    fn from_env(
        env: &Env,
        prefix: &str,
        default_name: &str,
        default_http_only: bool,
    ) -> Result<CookieSettings, ConfigError> {
        let var = |suffix: &str| format!("{prefix}_{suffix}");
        let get = |suffix: &str| env.get(&var(suffix)).map(String::as_str);
        let name = non_empty(&var("NAME"), get("NAME"), default_name)?.to_string();
        // A cookie name is an RFC 6265 token: no separators, spaces or
        // controls (Python's `http.cookies` refuses them too).
        if !name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        {
            return Err(ConfigError::new(
                &var("NAME"),
                format!("{name:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"),
            ));
        }
        let domain = match get("DOMAIN").map(str::trim) {
            None | Some("" | "None") => None,
            Some(domain) => Some(domain.to_string()),
        };
        let path = non_empty(&var("PATH"), get("PATH"), "/")?.to_string();
        let same_site = match get("SAMESITE").map(str::trim) {
            None | Some("") => Some("Lax".to_string()),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "lax" | "strict" | "none" => Some(v.to_string()),
                "false" => None,
                _ => {
                    return Err(ConfigError::new(
                        &var("SAMESITE"),
                        format!("expected Lax, Strict, None or False, got {v:?}"),
                    ))
                }
            },
        };
        Ok(CookieSettings {
            name,
            domain,
            path,
            secure: parse_bool(&var("SECURE"), get("SECURE"), false)?,
            http_only: parse_bool(&var("HTTPONLY"), get("HTTPONLY"), default_http_only)?,
            same_site,
        })
    }
}

/// `SESSION_ENGINE`: where a session's data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEngine {
    /// `django.contrib.sessions.backends.db`: a `django_session` row, its
    /// key in the cookie.
    Database,
    /// `django.contrib.sessions.backends.signed_cookies`: the data itself,
    /// signed, in the cookie.
    SignedCookies,
}

/// `SessionMiddleware`'s settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    pub engine: SessionEngine,
    pub cookie: CookieSettings,
    /// `SESSION_COOKIE_AGE`, in seconds.
    pub age: i64,
    pub expire_at_browser_close: bool,
    pub save_every_request: bool,
}

impl SessionSettings {
    fn from_env(env: &Env) -> Result<SessionSettings, ConfigError> {
        let get = |name: &str| env.get(name).map(String::as_str);
        let engine = match get("SESSION_ENGINE").map(str::trim) {
            None | Some("" | "django.contrib.sessions.backends.db") => SessionEngine::Database,
            Some("django.contrib.sessions.backends.signed_cookies") => SessionEngine::SignedCookies,
            Some(other) => {
                return Err(ConfigError::new(
                    "SESSION_ENGINE",
                    format!(
                        "{other:?} is not supported: use django.contrib.sessions.backends.db or \
                         django.contrib.sessions.backends.signed_cookies (sessions kept in a \
                         cache or a file Django reads would stay valid there after a logout here)"
                    ),
                ))
            }
        };
        Ok(SessionSettings {
            engine,
            cookie: CookieSettings::from_env(env, "SESSION_COOKIE", "sessionid", true)?,
            age: parse_in_range(
                "SESSION_COOKIE_AGE",
                get("SESSION_COOKIE_AGE"),
                1_209_600,
                1..=100 * 365 * 86_400,
            )? as i64,
            expire_at_browser_close: parse_bool(
                "SESSION_EXPIRE_AT_BROWSER_CLOSE",
                get("SESSION_EXPIRE_AT_BROWSER_CLOSE"),
                false,
            )?,
            save_every_request: parse_bool(
                "SESSION_SAVE_EVERY_REQUEST",
                get("SESSION_SAVE_EVERY_REQUEST"),
                false,
            )?,
        })
    }
}

/// `CsrfViewMiddleware`'s settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfSettings {
    pub cookie: CookieSettings,
    /// `CSRF_COOKIE_AGE` in seconds; `None`: a cookie for the browser
    /// session.
    pub age: Option<i64>,
    /// `CSRF_HEADER_NAME`, the request header a token may come in.
    pub header: CsrfHeader,
    /// `CSRF_USE_SESSIONS`: the secret is kept in the session, not a cookie.
    pub use_sessions: bool,
    /// `CSRF_TRUSTED_ORIGINS`.
    pub trusted_origins: Vec<String>,
}

/// `CSRF_HEADER_NAME`, given as Django's `request.META` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfHeader {
    /// The HTTP header, lowercase (`x-csrftoken`).
    pub http_name: String,
    /// How Django names it in a rejection reason (`X-Csrftoken`).
    pub display_name: String,
}

impl CsrfSettings {
    fn from_env(env: &Env) -> Result<CsrfSettings, ConfigError> {
        let get = |name: &str| env.get(name).map(String::as_str);
        let age = match get("CSRF_COOKIE_AGE").map(str::trim) {
            Some("None") => None,
            value => {
                Some(
                    parse_in_range("CSRF_COOKIE_AGE", value, 31_449_600, 1..=100 * 365 * 86_400)?
                        as i64,
                )
            }
        };
        let meta_name = non_empty(
            "CSRF_HEADER_NAME",
            get("CSRF_HEADER_NAME").map(str::trim),
            "HTTP_X_CSRFTOKEN",
        )?;
        let header = crate::django::csrf::header_from_meta_name(meta_name)
            .map(|(http_name, display_name)| CsrfHeader {
                http_name,
                display_name,
            })
            .ok_or_else(|| {
                ConfigError::new(
                    "CSRF_HEADER_NAME",
                    format!(
                        "{meta_name:?} names no request header: Django reads headers from \
                         request.META, as HTTP_ and the header in capitals with underscores \
                         (HTTP_X_CSRFTOKEN for X-CSRFToken)"
                    ),
                )
            })?;
        let trusted_origins = parse_list(get("CSRF_TRUSTED_ORIGINS"));
        if let Some(bad) = trusted_origins.iter().find(|o| !o.contains("://")) {
            return Err(ConfigError::new(
                "CSRF_TRUSTED_ORIGINS",
                format!("{bad:?} must start with a scheme, such as https://"),
            ));
        }
        Ok(CsrfSettings {
            cookie: CookieSettings::from_env(env, "CSRF_COOKIE", "csrftoken", false)?,
            age,
            header,
            use_sessions: parse_bool("CSRF_USE_SESSIONS", get("CSRF_USE_SESSIONS"), false)?,
            trusted_origins,
        })
    }
}

/// `LOGIN_URL`, `LOGIN_REDIRECT_URL` and `LOGOUT_REDIRECT_URL` as given: a
/// path, a URL, or a URL name such as `users:login` (the web layer resolves
/// them as Django's `resolve_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUrls {
    pub login: String,
    pub login_redirect: String,
    pub logout_redirect: String,
}

impl AuthUrls {
    /// The reference project's values.
    fn from_env(env: &Env) -> Result<AuthUrls, ConfigError> {
        let get = |name: &str| env.get(name).map(|v| v.trim());
        let url = |name: &str, default: &str| -> Result<String, ConfigError> {
            match get(name) {
                None => Ok(default.to_string()),
                Some("" | "None") => Err(ConfigError::new(
                    name,
                    "must name a page (Django would show its own template there, which \
                     this site does not have)",
                )),
                Some(v) => Ok(v.to_string()),
            }
        };
        Ok(AuthUrls {
            login: url("LOGIN_URL", "/users/login/")?,
            login_redirect: url("LOGIN_REDIRECT_URL", "/")?,
            logout_redirect: url("LOGOUT_REDIRECT_URL", "/")?,
        })
    }
}

/// How the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logging {
    /// `LOG_FORMAT`: `plain` lines or one JSON object a line.
    pub json: bool,
    /// `ACCESS_LOG`: one line per request.
    pub access_log: bool,
}

impl Logging {
    fn from_env(env: &Env) -> Result<Logging, ConfigError> {
        let get = |name: &str| env.get(name).map(String::as_str);
        let json = match get("LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if v.is_empty() || v == "plain" => false,
            Some(v) if v == "json" => true,
            Some(v) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("expected plain or json, got {v:?}"),
                ))
            }
        };
        Ok(Logging {
            json,
            access_log: parse_bool("ACCESS_LOG", get("ACCESS_LOG"), true)?,
        })
    }
}

/// Where a load balancer or an orchestrator asks whether the server lives
/// and is ready; `None` turns an answer off (an empty value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPaths {
    /// `HEALTH_LIVE_PATH`: answers while the process runs.
    pub live: Option<String>,
    /// `HEALTH_READY_PATH`: answers 200 only while the database, its
    /// schema and the outbox worker are fine.
    pub ready: Option<String>,
}

impl HealthPaths {
    fn from_env(env: &Env) -> Result<HealthPaths, ConfigError> {
        Ok(HealthPaths {
            live: own_path(env, "HEALTH_LIVE_PATH", Some("/-/live"))?,
            ready: own_path(env, "HEALTH_READY_PATH", Some("/-/ready"))?,
        })
    }
}

/// A path the server answers itself (`HEALTH_*_PATH`, `METRICS_PATH`), as
/// a route takes it: no query, fragment, escapes, spaces or the router's
/// `{}` captures. An empty value turns the answer off. (That it hides no
/// page of the site is checked when the site is built.)
fn own_path(env: &Env, name: &str, default: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(value) = env.get(name).map(|v| v.trim()).or(default) else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    let plain = value.starts_with('/')
        && !value.starts_with("//")
        && value.len() <= 200
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#' | '%' | '\\' | '{' | '}'));
    if !plain {
        return Err(ConfigError::new(
            name,
            format!(
                "{value:?} is not a plain path: expected one starting with / (no query, \
                 fragment, escapes, braces or spaces), or empty to turn it off"
            ),
        ));
    }
    Ok(Some(value.to_string()))
}

/// Where the Prometheus metrics are served; both off by default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricsSettings {
    /// `METRICS_PATH`: a path of the site's own listener (`/metrics`).
    pub path: Option<String>,
    /// `METRICS_ADDRESS`: a listener of their own (`127.0.0.1:9100`),
    /// answering `/metrics` only.
    pub address: Option<SocketAddr>,
}

impl MetricsSettings {
    /// Whether anything serves the metrics (else none are gathered).
    pub fn enabled(&self) -> bool {
        self.path.is_some() || self.address.is_some()
    }

    fn from_env(env: &Env) -> Result<MetricsSettings, ConfigError> {
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let path = own_path(env, "METRICS_PATH", None)?;
        let address = match get("METRICS_ADDRESS") {
            None => None,
            Some(address) => Some(address.parse::<SocketAddr>().map_err(|_| {
                ConfigError::new(
                    "METRICS_ADDRESS",
                    format!("{address:?}: expected host:port, such as 127.0.0.1:9100, or empty for none"),
                )
            })?),
        };
        Ok(MetricsSettings { path, address })
    }
}

/// Which attributes of a login form one lock key (django-axes'
/// `AXES_LOCKOUT_PARAMETERS` item): failures are counted, and logins
/// refused, per distinct value of these together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutParameter {
    pub username: bool,
    pub ip_address: bool,
}

/// An address or network (`10.0.0.0/8`) of `AXES_IPWARE_PROXY_TRUSTED_IPS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    fn parse(text: &str) -> Option<TrustedProxy> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = address.parse::<IpAddr>().ok()?.to_canonical();
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= bits)?,
            None => bits,
        };
        Some(TrustedProxy { network, prefix })
    }

    /// Whether `address` is this proxy, or in this network.
    pub fn contains(&self, address: IpAddr) -> bool {
        let masked = |bits: u128, width: u32| {
            let shift = width - u32::from(self.prefix);
            if shift >= 128 {
                0
            } else {
                bits >> shift
            }
        };
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                masked(u32::from(net).into(), 32) == masked(u32::from(a).into(), 32)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                masked(u128::from(net), 128) == masked(u128::from(a), 128)
            }
            _ => false,
        }
    }
}

/// Login lockouts (django-axes' settings, with defaults a person never
/// meets by mistake) and the password-reset limits (`web::throttle`).
#[derive(Debug, Clone, PartialEq)]
pub struct Throttling {
    /// `AXES_ENABLED`.
    pub enabled: bool,
    /// `AXES_FAILURE_LIMIT`: the failure that reaches it locks the key.
    pub failure_limit: u32,
    /// `AXES_COOLOFF_TIME`: a lockout lasts this long after its last
    /// failure, and older failures no longer count.
    pub cooloff: Duration,
    /// `AXES_LOCKOUT_PARAMETERS`: a login is refused while any of these
    /// keys is locked.
    pub lockout_parameters: Vec<LockoutParameter>,
    /// `AXES_RESET_ON_SUCCESS`: a login forgets its keys' failures.
    pub reset_on_success: bool,
    /// `AXES_IPWARE_PROXY_TRUSTED_IPS`: only a peer among these is believed
    /// about `X-Forwarded-For`.
    pub trusted_proxies: Vec<TrustedProxy>,
    /// `PASSWORD_RESET_MAX_PER_EMAIL`: reset requests an hour for one
    /// address (`None`: no limit).
    pub reset_max_per_email: Option<u32>,
    /// `PASSWORD_RESET_MAX_PER_CLIENT`: reset requests an hour from one
    /// client address (`None`: no limit).
    pub reset_max_per_client: Option<u32>,
}

/// The window of the password-reset limits.
pub const PASSWORD_RESET_WINDOW: Duration = Duration::from_secs(3600);

impl Throttling {
    fn from_env(env: &Env) -> Result<Throttling, ConfigError> {
        let get = |name: &str| env.get(name).map(String::as_str);
        let cooloff = match get("AXES_COOLOFF_TIME").map(str::trim) {
            None | Some("") => Duration::from_secs(15 * 60),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|hours| hours.is_finite() && *hours > 0.0 && *hours <= 8760.0)
                .map(|hours| Duration::from_secs_f64(hours * 3600.0))
                .ok_or_else(|| {
                    ConfigError::new(
                        "AXES_COOLOFF_TIME",
                        format!("expected hours, a number above 0 and at most 8760 (0.25 is 15 minutes), got {v:?}"),
                    )
                })?,
        };
        let lockout_parameters = match get("AXES_LOCKOUT_PARAMETERS").map(str::trim) {
            None | Some("") => vec![LockoutParameter {
                username: true,
                ip_address: true,
            }],
            Some(v) => parse_lockout_parameters(v)?,
        };
        let trusted_proxies = parse_list(get("AXES_IPWARE_PROXY_TRUSTED_IPS"))
            .iter()
            .map(|p| {
                TrustedProxy::parse(p).ok_or_else(|| {
                    ConfigError::new(
                        "AXES_IPWARE_PROXY_TRUSTED_IPS",
                        format!("{p:?} is not an IP address or network (10.0.0.1, 10.0.0.0/8)"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limit = |name: &str, default: u64| -> Result<Option<u32>, ConfigError> {
            match get(name).map(str::trim) {
                Some("None") => Ok(None),
                value => Ok(Some(
                    parse_in_range(name, value, default, 1..=1_000_000)? as u32
                )),
            }
        };
        Ok(Throttling {
            enabled: parse_bool("AXES_ENABLED", get("AXES_ENABLED"), true)?,
            failure_limit: parse_in_range(
                "AXES_FAILURE_LIMIT",
                get("AXES_FAILURE_LIMIT"),
                10,
                1..=1_000_000,
            )? as u32,
            cooloff,
            lockout_parameters,
            reset_on_success: parse_bool(
                "AXES_RESET_ON_SUCCESS",
                get("AXES_RESET_ON_SUCCESS"),
                true,
            )?,
            trusted_proxies,
            reset_max_per_email: limit("PASSWORD_RESET_MAX_PER_EMAIL", 3)?,
            reset_max_per_client: limit("PASSWORD_RESET_MAX_PER_CLIENT", 20)?,
        })
    }
}

/// `AXES_LOCKOUT_PARAMETERS` as a variable: keys separated by commas, the
/// attributes of one key joined by `+` (axes' `["ip_address",
/// ["username", "ip_address"]]` is `ip_address,username+ip_address`).
fn parse_lockout_parameters(value: &str) -> Result<Vec<LockoutParameter>, ConfigError> {
    let bad = |problem: String| ConfigError::new("AXES_LOCKOUT_PARAMETERS", problem);
    let mut keys = Vec::new();
    for item in value.split(',') {
        let mut key = LockoutParameter {
            username: false,
            ip_address: false,
        };
        for attribute in item.split('+').map(str::trim) {
            match attribute {
                "username" => key.username = true,
                "ip_address" => key.ip_address = true,
                "" => return Err(bad(format!("an empty key in {value:?}"))),
                other => {
                    return Err(bad(format!(
                        "{other:?} is not supported: use username, ip_address, or both joined by + (username+ip_address)"
                    )))
                }
            }
        }
        keys.push(key);
    }
    Ok(keys)
}

/// How the password-hashing pool is sized (`web::hashing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    /// Hashes that run at once.
    pub threads: usize,
    /// Hashes that may wait for a thread.
    pub queue: usize,
    /// The longest a hash waits for a thread.
    pub wait: std::time::Duration,
}

impl HashingLimits {
    /// One thread fewer than the machine has cores (at least one), so pages
    /// always have a core; a queue of 32 and a wait of at most 3 s, so with
    /// 1,000,000-iteration hashes a login is hashed or refused within a few
    /// seconds.
    fn from_env(env: &Env) -> Result<HashingLimits, ConfigError> {
        let get = |name: &str| env.get(name).map(String::as_str);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(HashingLimits {
            threads: parse_in_range(
                "HASHING_THREADS",
                get("HASHING_THREADS"),
                cores.saturating_sub(1).max(1) as u64,
                1..=1024,
            )? as usize,
            queue: parse_in_range("HASHING_QUEUE", get("HASHING_QUEUE"), 32, 0..=100_000)? as usize,
            wait: std::time::Duration::from_secs(parse_in_range(
                "HASHING_WAIT_SECONDS",
                get("HASHING_WAIT_SECONDS"),
                3,
                1..=600,
            )?),
        })
    }
}

impl fmt::Debug for Settings {
    // Never print secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database", &self.database)
            .field("debug", &self.debug)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

/// The environment as a plain map, so parsing can be tested without touching
/// the process environment.
pub type Env = HashMap<String, String>;

/// The process environment, after loading an optional `.env` file (which
/// never overrides variables already set).
pub fn process_env() -> Env {
    let _ = dotenvy::dotenv();
    std::env::vars().collect()
}

impl Settings {
    /// Reads every setting. The secret key is resolved too: taken from
    /// `SECRET_KEY`, or read from (or generated into) the key file beside the
    /// database.
    pub fn from_env(env: &Env) -> Result<Settings, ConfigError> {
        let get = |name: &str| env.get(name).map(String::as_str);
        let database = DatabaseUrl::parse(get("DATABASE_URL").unwrap_or("sqlite:///db.sqlite3"))?;
        let (secret_key, secret_key_source) = resolve_secret_key(get("SECRET_KEY"), &database)?;
        let secret_key_fallbacks = parse_list(get("SECRET_KEY_FALLBACKS"));
        if secret_key_fallbacks.iter().any(|k| k.is_empty()) {
            return Err(ConfigError::new(
                "SECRET_KEY_FALLBACKS",
                "contains an empty key",
            ));
        }
        let debug = parse_bool("DEBUG", get("DEBUG"), false)?;
        let allowed_hosts = match get("ALLOWED_HOSTS") {
            Some(v) => parse_list(Some(v)),
            None => vec!["127.0.0.1".into(), "localhost".into(), "[::1]".into()],
        };
        let password_hashers = match get("PASSWORD_HASHERS") {
            Some(v) => parse_list(Some(v)),
            None => DEFAULT_PASSWORD_HASHERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let django_release = django_release(env)?;
        django_release
            .password_hashers(&password_hashers)
            .map_err(|e| ConfigError::new("PASSWORD_HASHERS", e.to_string()))?;
        let bind = get("BIND_ADDRESS")
            .unwrap_or("127.0.0.1:8000")
            .parse::<SocketAddr>()
            .map_err(|_| {
                ConfigError::new("BIND_ADDRESS", "expected host:port, such as 127.0.0.1:8000")
            })?;
        let time_zone = get("TIME_ZONE")
            .unwrap_or("Europe/Moscow")
            .parse::<chrono_tz::Tz>()
            .map_err(|_| {
                ConfigError::new(
                    "TIME_ZONE",
                    "expected an IANA time zone, such as Europe/Moscow",
                )
            })?;
        let secure_proxy_ssl_header = match get("SECURE_PROXY_SSL_HEADER") {
            None | Some("") => None,
            Some(v) => {
                let (name, value) = v.split_once(',').ok_or_else(|| {
                    ConfigError::new(
                        "SECURE_PROXY_SSL_HEADER",
                        "expected HEADER,value such as HTTP_X_FORWARDED_PROTO,https",
                    )
                })?;
                // Django names headers as in META: HTTP_X_FORWARDED_PROTO.
                let name = name
                    .trim()
                    .trim_start_matches("HTTP_")
                    .replace('_', "-")
                    .to_ascii_lowercase();
                Some((name, value.trim().to_string()))
            }
        };
        Ok(Settings {
            session: SessionSettings::from_env(env)?,
            csrf: CsrfSettings::from_env(env)?,
            auth_urls: AuthUrls::from_env(env)?,
            logging: Logging::from_env(env)?,
            secure_proxy_ssl_header,
            secret_key: Secret::new(secret_key),
            secret_key_source,
            secret_key_fallbacks: secret_key_fallbacks.into_iter().map(Secret::new).collect(),
            email: parse_email(env)?,
            database,
            debug,
            allowed_hosts,
            media_root: PathBuf::from(non_empty("MEDIA_ROOT", get("MEDIA_ROOT"), "media")?),
            static_root: PathBuf::from(non_empty("STATIC_ROOT", get("STATIC_ROOT"), "static")?),
            time_zone,
            password_hashers,
            django_release,
            csrf_cookie_masked: csrf_cookie_masked(env, django_release)?,
            bind,
            hashing: HashingLimits::from_env(env)?,
            throttling: Throttling::from_env(env)?,
            password_reset_confirm: parse_bool(
                "PASSWORD_RESET_CONFIRM",
                get("PASSWORD_RESET_CONFIRM"),
                false,
            )?,
            password_reset_timeout: Duration::from_secs(parse_in_range(
                "PASSWORD_RESET_TIMEOUT",
                get("PASSWORD_RESET_TIMEOUT"),
                // Django's default: three days.
                259_200,
                1..=365 * 86_400,
            )?),
            connections: ConnectionLimits::from_env(env)?,
            health: HealthPaths::from_env(env)?,
            uploads: UploadLimits::from_env(env)?,
            security: SecuritySettings::from_env(env)?,
            metrics: MetricsSettings::from_env(env)?,
        })
    }

    /// What `manage.py check --deploy` says of the keys: W009 for a weak
    /// `SECRET_KEY`, W025 for each weak fallback.
    pub fn secret_key_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !is_strong_secret_key(&self.secret_key) {
            warnings.push(weak_secret_key_warning("SECRET_KEY", "W009"));
        }
        for (index, key) in self.secret_key_fallbacks.iter().enumerate() {
            if !is_strong_secret_key(key) {
                warnings.push(weak_secret_key_warning(
                    &format!("SECRET_KEY_FALLBACKS[{index}]"),
                    "W025",
                ));
            }
        }
        warnings
    }

    pub fn hashers(&self) -> Hashers {
        self.django_release
            .password_hashers(&self.password_hashers)
            .expect("validated when the settings were read")
    }
}

/// `DJANGO_VERSION`: the Django release the site runs (5.2 when unset).
fn django_release(env: &Env) -> Result<Release, ConfigError> {
    match env.get("DJANGO_VERSION").map(|v| v.trim()) {
        None | Some("") => Ok(Release::Django5_2),
        Some(v) => Release::parse(v).ok_or_else(|| {
            let known: Vec<&str> = Release::ALL.iter().map(|r| r.name()).collect();
            ConfigError::new(
                "DJANGO_VERSION",
                format!("expected one of {}, got {v:?}", known.join(", ")),
            )
        }),
    }
}

/// `CSRF_COOKIE_MASKED`, a transitional setting of Django 4.2 only (default
/// False); Django 5.0 removed it, so under a later `DJANGO_VERSION` any
/// value is refused rather than silently doing nothing.
fn csrf_cookie_masked(env: &Env, release: Release) -> Result<bool, ConfigError> {
    let value = env.get("CSRF_COOKIE_MASKED").map(|v| v.trim());
    if value.is_some_and(|v| !v.is_empty()) && release >= Release::Django5_0 {
        return Err(ConfigError::new(
            "CSRF_COOKIE_MASKED",
            format!(
                "exists only in Django 4.2 (5.0 removed it; the cookie always holds the \
                 unmasked secret), and DJANGO_VERSION is {}: remove it",
                release.name()
            ),
        ));
    }
    parse_bool("CSRF_COOKIE_MASKED", value, false)
}

fn non_empty<'a>(
    name: &str,
    value: Option<&'a str>,
    default: &'a str,
) -> Result<&'a str, ConfigError> {
    match value {
        Some("") => Err(ConfigError::new(name, "must not be empty")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// A whole number within `range`; unset or empty means `default`.
fn parse_in_range(
    name: &str,
    value: Option<&str>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match value {
        None | Some("") => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ConfigError::new(
                    name,
                    format!(
                        "expected a whole number from {} to {}, got {v:?}",
                        range.start(),
                        range.end()
                    ),
                )
            }),
    }
}

fn parse_list(value: Option<&str>) -> Vec<String> {
    match value {
        Some(v) if !v.trim().is_empty() => v.split(',').map(|s| s.trim().to_string()).collect(),
        _ => Vec::new(),
    }
}

fn parse_bool(name: &str, value: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) => match v.as_str() {
            "" => Ok(default),
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new(
                name,
                format!("expected True or False, got {v:?}"),
            )),
        },
    }
}

fn parse_email(env: &Env) -> Result<EmailSettings, ConfigError> {
    let get = |name: &str| env.get(name).map(String::as_str);
    let host_user = get("EMAIL_HOST_USER").unwrap_or("").to_string();
    let backend = match get("EMAIL_BACKEND") {
        // Without an account to send from there is no SMTP to speak to, so a
        // development start prints letters instead of failing to send them.
        None | Some("") if host_user.is_empty() => EmailBackend::Console,
        None | Some("") => EmailBackend::Smtp,
        Some("smtp" | "django.core.mail.backends.smtp.EmailBackend") => EmailBackend::Smtp,
        Some("console" | "django.core.mail.backends.console.EmailBackend") => EmailBackend::Console,
        Some("file" | "django.core.mail.backends.filebased.EmailBackend") => {
            let path = get("EMAIL_FILE_PATH")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    ConfigError::new("EMAIL_FILE_PATH", "must be set for the file e-mail backend")
                })?;
            EmailBackend::File(PathBuf::from(path))
        }
        Some(other) => {
            return Err(ConfigError::new(
                "EMAIL_BACKEND",
                format!(
                "unknown back end {other:?}; use smtp, console or file (or Django's dotted names)"
            ),
            ))
        }
    };
    let use_ssl = parse_bool("EMAIL_USE_SSL", get("EMAIL_USE_SSL"), true)?;
    let use_tls = parse_bool("EMAIL_USE_TLS", get("EMAIL_USE_TLS"), false)?;
    let (use_ssl, use_tls) = match (get("EMAIL_USE_SSL"), use_tls) {
        // The original sets EMAIL_USE_SSL; asking only for STARTTLS turns it off.
        (None, true) => (false, true),
        _ => (use_ssl, use_tls),
    };
    if use_ssl && use_tls {
        return Err(ConfigError::new(
            "EMAIL_USE_TLS",
            "EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive, set only one of them",
        ));
    }
    let port = match get("EMAIL_PORT") {
        None | Some("") => 465,
        Some(v) => v
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                ConfigError::new("EMAIL_PORT", format!("expected a port number, got {v:?}"))
            })?,
    };
    let default_from = match get("DEFAULT_FROM_EMAIL") {
        Some(v) if !v.is_empty() => v.to_string(),
        _ if !host_user.is_empty() => host_user.clone(),
        _ => "webmaster@localhost".to_string(),
    };
    // Every letter would fail on a bad sender: say so at start-up instead.
    if default_from.parse::<lettre::message::Mailbox>().is_err() {
        let origin = if get("DEFAULT_FROM_EMAIL").is_some_and(|v| !v.is_empty()) {
            ""
        } else {
            " (taken from EMAIL_HOST_USER; set DEFAULT_FROM_EMAIL)"
        };
        return Err(ConfigError::new(
            "DEFAULT_FROM_EMAIL",
            format!("not an e-mail address: {default_from:?}{origin}"),
        ));
    }
    let retry_base = parse_in_range(
        "EMAIL_RETRY_SECONDS",
        get("EMAIL_RETRY_SECONDS"),
        30,
        1..=EMAIL_RETRY_CAP.as_secs(),
    )?;
    Ok(EmailSettings {
        backend,
        host: get("EMAIL_HOST").unwrap_or("smtp.mail.ru").to_string(),
        port,
        host_user,
        host_password: Secret::new(get("EMAIL_HOST_PASSWORD").unwrap_or("")),
        use_ssl,
        use_tls,
        default_from,
        retry_base: Duration::from_secs(retry_base),
    })
}

/// Django refuses only an empty key (`ImproperlyConfigured`); any other
/// is used, a weak one with a warning ([`Settings::secret_key_warnings`]).
fn validate_secret_key(key: &str, variable: &str) -> Result<(), ConfigError> {
    if key.is_empty() {
        return Err(ConfigError::new(
            variable,
            "must not be empty (The SECRET_KEY setting must not be empty.)",
        ));
    }
    Ok(())
}

/// Django's `_check_secret_key`: long enough, varied enough, and not one
/// `startproject` generated for development.
fn is_strong_secret_key(key: &str) -> bool {
    let unique: std::collections::HashSet<char> = key.chars().collect();
    unique.len() >= SECRET_KEY_MIN_UNIQUE_CHARACTERS
        && key.chars().count() >= SECRET_KEY_MIN_LENGTH
        && !key.starts_with(SECRET_KEY_INSECURE_PREFIX)
}

/// Django's `SECRET_KEY_WARNING_MSG` for one setting.
fn weak_secret_key_warning(setting: &str, id: &str) -> String {
    format!(
        "(security.{id}) Your {setting} has less than {SECRET_KEY_MIN_LENGTH} characters, less \
         than {SECRET_KEY_MIN_UNIQUE_CHARACTERS} unique characters, or it's prefixed with \
         '{SECRET_KEY_INSECURE_PREFIX}' indicating that it was generated automatically by \
         Django. Please generate a long and random value, otherwise many of Django's \
         security-critical features will be vulnerable to attack."
    )
}

fn resolve_secret_key(
    from_env: Option<&str>,
    database: &DatabaseUrl,
) -> Result<(String, SecretKeySource), ConfigError> {
    if let Some(key) = from_env {
        validate_secret_key(key, "SECRET_KEY")?;
        return Ok((key.to_string(), SecretKeySource::Environment));
    }
    let path = database.key_dir().join(GENERATED_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(contents) => {
            let key = contents.trim_end_matches(['\n', '\r']).to_string();
            validate_secret_key(&key, &format!("SECRET_KEY (from {})", path.display()))?;
            Ok((key, SecretKeySource::File(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate_secret_key();
            write_private_file(&path, &key).map_err(|e| {
                ConfigError::new(
                    "SECRET_KEY",
                    format!(
                        "is not set and {} could not be written: {e}",
                        path.display()
                    ),
                )
            })?;
            Ok((key, SecretKeySource::Generated(path)))
        }
        Err(e) => Err(ConfigError::new(
            "SECRET_KEY",
            format!("is not set and {} could not be read: {e}", path.display()),
        )),
    }
}

/// Django's `get_random_secret_key`: 50 characters from its alphabet.
fn generate_secret_key() -> String {
    const CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789!@#$%^&*(-_=+)";
    crate::django::crypto::get_random_string(50, CHARS)
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k3y-for-tests-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG";

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn debug_prints_no_secret() {
        let mut e = env(&[]);
        e.insert(
            "SECRET_KEY".into(),
            "the-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH".into(),
        );
        e.insert(
            "SECRET_KEY_FALLBACKS".into(),
            "an-old-key-that-is-now-only-a-fallback-0123456789abc".into(),
        );
        e.insert("EMAIL_HOST_USER".into(), "shop@example.com".into());
        e.insert("EMAIL_HOST_PASSWORD".into(), "smtp-pass-word".into());
        e.insert(
            "DATABASE_URL".into(),
            "postgres://shop:db-pass-word@db/shop".into(),
        );
        let s = Settings::from_env(&e).unwrap();
        let shown = format!(
            "{s:?} {:?} {:?} {:?} {:?}",
            s.email, s.secret_key, s.secret_key_fallbacks, s.database
        );
        for secret in [
            "the-key-0123",
            "an-old-key",
            "smtp-pass-word",
            "db-pass-word",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(&*s.email.host_password, "smtp-pass-word");
    }

    #[test]
    fn database_urls_in_dj_database_url_form() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:////abs/db.sqlite3").unwrap(),
            DatabaseUrl::Sqlite("/abs/db.sqlite3".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///rel.sqlite3").unwrap(),
            DatabaseUrl::Sqlite("rel.sqlite3".into())
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u:p@127.0.0.1:5432/shop").unwrap(),
            DatabaseUrl::Postgres("postgres://u:p@127.0.0.1:5432/shop".into())
        );
        for (url, kept) in [
            (
                "pgsql://u:p%40ss%2Fw@db:5432/shop",
                "postgres://u:p%40ss%2Fw@db:5432/shop",
            ),
            (
                "postgres://shop@%2Fvar%2Frun%2Fpostgresql/shop",
                "postgres://shop@%2Fvar%2Frun%2Fpostgresql/shop",
            ),
            (
                "postgres:///shop?host=/var/run/postgresql&sslmode=require",
                "postgres:///shop?host=/var/run/postgresql&sslmode=require",
            ),
            ("postgres://db/?dbname=shop", "postgres://db/?dbname=shop"),
        ] {
            assert_eq!(
                DatabaseUrl::parse(url).unwrap(),
                DatabaseUrl::Postgres(kept.into()),
                "{url}"
            );
        }
        for bad in [
            "mysql://x/",
            "oracle://x/y",
            "sqlite:///",
            "postgres://host",
            "postgres://host/",
            "postgres://host/?sslmode=require",
            "",
        ] {
            let err = DatabaseUrl::parse(bad).unwrap_err();
            assert_eq!(err.variable, "DATABASE_URL", "{bad}");
        }
        for memory in ["sqlite://", "sqlite://:memory:", "sqlite:///:memory:"] {
            let err = DatabaseUrl::parse(memory).unwrap_err();
            assert!(err.problem.contains("in-memory"), "{memory}: {err}");
        }
    }

    #[test]
    fn database_passwords_are_never_shown() {
        for url in [
            "postgres://shop:s3cr%40t:pw@db.internal",
            "mysql://shop:s3cr%40t:pw@db:port/x",
            "postgres://shop:s3cr%40t:pw@host:5432",
        ] {
            let err = DatabaseUrl::parse(url).unwrap_err().to_string();
            assert!(!err.contains("s3cr"), "{err}");
            assert!(err.contains("shop:********@"), "{err}");
        }
        // Characters that end a URL's authority, unencoded in the password.
        for url in [
            "postgres://shop:s3cr/t@db.internal/x",
            "postgres://shop:s3cr?t@db.internal",
            "postgres://shop:s3cr#t@db.internal",
            "postgres://shop:s3cr/t@db.internal/x?application_name=a@b",
        ] {
            let shown = without_password(url);
            assert!(!shown.contains("s3cr"), "{shown}");
            assert!(shown.starts_with("postgres://shop:********@"), "{shown}");
        }
        let url = DatabaseUrl::parse("postgres://shop:s3cret@db/x").unwrap();
        assert_eq!(
            format!("{url:?}"),
            "Postgres(\"postgres://shop:********@db/x\")"
        );
        let settings = Settings::from_env(&env(&[
            ("SECRET_KEY", KEY),
            ("DATABASE_URL", "postgres://shop:s3cret@db/x"),
        ]))
        .unwrap();
        assert!(!format!("{settings:?}").contains("s3cret"));
    }

    #[test]
    fn settings_defaults_and_errors() {
        let s = Settings::from_env(&env(&[("SECRET_KEY", KEY)])).unwrap();
        assert_eq!(s.database, DatabaseUrl::Sqlite("db.sqlite3".into()));
        assert_eq!(s.email.backend, EmailBackend::Console);
        assert_eq!(s.email.port, 465);
        assert!(s.email.use_ssl && !s.email.use_tls);
        assert_eq!(s.password_hashers.len(), DEFAULT_PASSWORD_HASHERS.len());
        assert_eq!(s.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(s.metrics, MetricsSettings::default());
        assert!(!s.metrics.enabled());
        let on = Settings::from_env(&env(&[
            ("SECRET_KEY", KEY),
            ("METRICS_PATH", " /-/metrics "),
            ("METRICS_ADDRESS", "127.0.0.1:9100"),
        ]))
        .unwrap();
        assert_eq!(on.metrics.path.as_deref(), Some("/-/metrics"));
        assert_eq!(on.metrics.address.unwrap().to_string(), "127.0.0.1:9100");
        assert!(on.metrics.enabled());
        let empty = Settings::from_env(&env(&[
            ("SECRET_KEY", KEY),
            ("METRICS_PATH", ""),
            ("METRICS_ADDRESS", ""),
        ]))
        .unwrap();
        assert!(!empty.metrics.enabled());

        let cases = [
            (("DEBUG", "maybe"), "DEBUG"),
            (("EMAIL_PORT", "smtp"), "EMAIL_PORT"),
            (("EMAIL_BACKEND", "carrier-pigeon"), "EMAIL_BACKEND"),
            (("EMAIL_BACKEND", "file"), "EMAIL_FILE_PATH"),
            (("PASSWORD_HASHERS", "no.such.Hasher"), "PASSWORD_HASHERS"),
            (("BIND_ADDRESS", "localhost"), "BIND_ADDRESS"),
            (("SECRET_KEY", ""), "SECRET_KEY"),
            (("SECRET_KEY_FALLBACKS", "a,,b"), "SECRET_KEY_FALLBACKS"),
            (("METRICS_PATH", "metrics"), "METRICS_PATH"),
            (("METRICS_PATH", "/metrics?x=1"), "METRICS_PATH"),
            (("METRICS_PATH", "/{pk}"), "METRICS_PATH"),
            (("METRICS_PATH", "/a b"), "METRICS_PATH"),
            (("METRICS_ADDRESS", "9100"), "METRICS_ADDRESS"),
            (("METRICS_ADDRESS", "localhost:9100"), "METRICS_ADDRESS"),
        ];
        for ((name, value), variable) in cases {
            let mut e = env(&[("SECRET_KEY", KEY)]);
            e.insert(name.into(), value.into());
            let err = Settings::from_env(&e).unwrap_err();
            assert_eq!(err.variable, variable, "{name}={value}");
        }
        let mut e = env(&[
            ("SECRET_KEY", KEY),
            ("EMAIL_USE_TLS", "1"),
            ("EMAIL_USE_SSL", "1"),
        ]);
        assert_eq!(
            Settings::from_env(&e).unwrap_err().variable,
            "EMAIL_USE_TLS"
        );
        e.remove("EMAIL_USE_SSL");
        let s = Settings::from_env(&e).unwrap();
        assert!(s.email.use_tls && !s.email.use_ssl);
    }

    #[test]
    fn any_key_django_runs_with_is_used_a_weak_one_with_its_warning() {
        // `openssl rand -base64 32`: 44 characters.
        let base64_key = "q1x9Zb0pTz4mV3kL8wYc2RfN6uHs5JdA7eGi0oKtBnM=";
        for (key, fallbacks, expected) in [
            (KEY, "", vec![]),
            (base64_key, "", vec!["W009 Your SECRET_KEY "]),
            ("x", "", vec!["W009 Your SECRET_KEY "]),
            (
                &format!("django-insecure-{}", &KEY[..40]),
                "",
                vec!["W009 Your SECRET_KEY "],
            ),
            (
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "",
                vec!["W009 "],
            ),
            (
                KEY,
                &format!("{KEY},short"),
                vec!["W025 Your SECRET_KEY_FALLBACKS[1] "],
            ),
        ] {
            let s = Settings::from_env(&env(&[
                ("SECRET_KEY", key),
                ("SECRET_KEY_FALLBACKS", fallbacks),
            ]))
            .unwrap_or_else(|e| panic!("{key:?} refused: {e}"));
            assert_eq!(&*s.secret_key, key);
            let warnings = s.secret_key_warnings();
            assert_eq!(warnings.len(), expected.len(), "{key:?}: {warnings:?}");
            for (warning, start) in warnings.iter().zip(expected) {
                let (id, rest) = start.split_once(' ').unwrap();
                assert!(
                    warning.starts_with(&format!("(security.{id}) {rest}"))
                        && warning.ends_with("will be vulnerable to attack."),
                    "{key:?}: {warning}"
                );
            }
        }
    }

    #[test]
    fn email_retry_seconds_and_from_address() {
        let s = Settings::from_env(&env(&[("SECRET_KEY", KEY)])).unwrap();
        assert_eq!(s.email.retry_base, Duration::from_secs(30));
        assert_eq!(s.email.default_from, "webmaster@localhost");
        let s = Settings::from_env(&env(&[
            ("SECRET_KEY", KEY),
            ("EMAIL_RETRY_SECONDS", " 1 "),
            ("DEFAULT_FROM_EMAIL", "Каталог <shop@example.com>"),
        ]))
        .unwrap();
        assert_eq!(s.email.retry_base, Duration::from_secs(1));
        assert_eq!(s.email.default_from, "Каталог <shop@example.com>");
        let s = Settings::from_env(&env(&[
            ("SECRET_KEY", KEY),
            ("EMAIL_RETRY_SECONDS", "3600"),
        ]))
        .unwrap();
        assert_eq!(s.email.retry_base, EMAIL_RETRY_CAP);
        for bad in ["0", "-5", "3601", "1.5", "soon"] {
            let err =
                Settings::from_env(&env(&[("SECRET_KEY", KEY), ("EMAIL_RETRY_SECONDS", bad)]))
                    .unwrap_err();
            assert_eq!(err.variable, "EMAIL_RETRY_SECONDS", "{bad}");
        }
        for bad in ["not an address", "a@b@c", "<>"] {
            let err = Settings::from_env(&env(&[("SECRET_KEY", KEY), ("DEFAULT_FROM_EMAIL", bad)]))
                .unwrap_err();
            assert_eq!(err.variable, "DEFAULT_FROM_EMAIL", "{bad}");
        }
    }

    #[test]
    fn throttling_defaults_and_errors() {
        let s = Settings::from_env(&env(&[("SECRET_KEY", KEY)])).unwrap();
        let t = &s.throttling;
        assert!(t.enabled && t.reset_on_success);
        assert_eq!(t.failure_limit, 10);
        assert_eq!(t.cooloff, Duration::from_secs(900));
        assert_eq!(
            t.lockout_parameters,
            [LockoutParameter {
                username: true,
                ip_address: true
            }]
        );
        assert!(t.trusted_proxies.is_empty());
        assert_eq!(
            (t.reset_max_per_email, t.reset_max_per_client),
            (Some(3), Some(20))
        );
        assert!(!s.password_reset_confirm);
        assert_eq!(s.password_reset_timeout, Duration::from_secs(259_200));

        let s = Settings::from_env(&env(&[
            ("SECRET_KEY", KEY),
            ("AXES_COOLOFF_TIME", "0.0003"),
            (
                "AXES_LOCKOUT_PARAMETERS",
                "ip_address, username + ip_address,username",
            ),
            (
                "AXES_IPWARE_PROXY_TRUSTED_IPS",
                "10.0.0.1, 172.16.0.0/12, ::1",
            ),
            ("PASSWORD_RESET_MAX_PER_EMAIL", "None"),
            ("AXES_ENABLED", "False"),
        ]))
        .unwrap();
        let t = &s.throttling;
        assert!(!t.enabled);
        assert!(
            (t.cooloff.as_secs_f64() - 1.08).abs() < 1e-6,
            "{:?}",
            t.cooloff
        );
        assert_eq!(t.lockout_parameters.len(), 3);
        assert!(!t.lockout_parameters[0].username && t.lockout_parameters[0].ip_address);
        assert!(t.lockout_parameters[1].username && t.lockout_parameters[1].ip_address);
        assert!(t.lockout_parameters[2].username && !t.lockout_parameters[2].ip_address);
        assert_eq!(t.reset_max_per_email, None);
        let trusted = |a: &str| {
            t.trusted_proxies
                .iter()
                .any(|p| p.contains(a.parse().unwrap()))
        };
        assert!(trusted("10.0.0.1") && !trusted("10.0.0.2"));
        assert!(trusted("172.31.255.255") && !trusted("172.32.0.0"));
        assert!(trusted("::1") && trusted("::ffff:10.0.0.1") && !trusted("::2"));

        for (name, value) in [
            ("AXES_ENABLED", "perhaps"),
            ("AXES_FAILURE_LIMIT", "0"),
            ("AXES_FAILURE_LIMIT", "3.5"),
            ("AXES_COOLOFF_TIME", "0"),
            ("AXES_COOLOFF_TIME", "-1"),
            ("AXES_COOLOFF_TIME", "NaN"),
            ("AXES_COOLOFF_TIME", "soon"),
            ("AXES_LOCKOUT_PARAMETERS", "user_agent"),
            ("AXES_LOCKOUT_PARAMETERS", "username,,ip_address"),
            ("AXES_RESET_ON_SUCCESS", "2"),
            ("AXES_IPWARE_PROXY_TRUSTED_IPS", "proxy.local"),
            ("AXES_IPWARE_PROXY_TRUSTED_IPS", "10.0.0.0/33"),
            ("PASSWORD_RESET_MAX_PER_EMAIL", "0"),
            ("PASSWORD_RESET_MAX_PER_CLIENT", "many"),
            ("PASSWORD_RESET_CONFIRM", "sure"),
            ("PASSWORD_RESET_TIMEOUT", "0"),
        ] {
            let err = Settings::from_env(&env(&[("SECRET_KEY", KEY), (name, value)])).unwrap_err();
            assert_eq!(err.variable, name, "{name}={value}");
        }
    }

    /// What DJANGO_VERSION decides among the settings: the legacy hashers
    /// (4.2/5.0 only, crypt refused) and 4.2's CSRF_COOKIE_MASKED.
    #[test]
    fn settings_that_exist_only_in_some_releases() {
        let sha1 = "django.contrib.auth.hashers.PBKDF2PasswordHasher,\
                    django.contrib.auth.hashers.SHA1PasswordHasher";
        let read = |pairs: &[(&str, &str)]| {
            let mut e = env(&[("SECRET_KEY", KEY)]);
            e.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            Settings::from_env(&e)
        };
        for (version, ok) in [("4.2", true), ("5.0", true), ("5.1", false), ("6.1", false)] {
            let got = read(&[("DJANGO_VERSION", version), ("PASSWORD_HASHERS", sha1)]);
            match got {
                Ok(s) => {
                    assert!(ok, "{version}");
                    assert_eq!(
                        s.hashers().params().pbkdf2_iterations,
                        s.django_release.hasher_params().pbkdf2_iterations
                    );
                }
                Err(e) => {
                    assert!(!ok, "{version}: {e}");
                    assert_eq!(e.variable, "PASSWORD_HASHERS");
                    assert!(e.problem.contains(&format!("Django {version}")), "{e}");
                }
            }
        }
        let crypt = read(&[
            ("DJANGO_VERSION", "4.2"),
            (
                "PASSWORD_HASHERS",
                "django.contrib.auth.hashers.CryptPasswordHasher",
            ),
        ])
        .unwrap_err();
        assert_eq!(crypt.variable, "PASSWORD_HASHERS");
        assert!(crypt.problem.contains("crypt(3)"), "{crypt}");

        assert!(!read(&[]).unwrap().csrf_cookie_masked);
        assert!(
            !read(&[("DJANGO_VERSION", "4.2")])
                .unwrap()
                .csrf_cookie_masked
        );
        let masked = read(&[("DJANGO_VERSION", "4.2"), ("CSRF_COOKIE_MASKED", "True")]);
        assert!(masked.unwrap().csrf_cookie_masked);
        for version in ["5.0", "5.2", "6.1"] {
            for value in ["True", "False"] {
                let err = read(&[("DJANGO_VERSION", version), ("CSRF_COOKIE_MASKED", value)])
                    .unwrap_err();
                assert_eq!(err.variable, "CSRF_COOKIE_MASKED");
                assert!(err.problem.contains("only in Django 4.2"), "{err}");
                assert!(err.problem.contains(version), "{err}");
            }
        }
        let err = read(&[("DJANGO_VERSION", "4.2"), ("CSRF_COOKIE_MASKED", "maybe")]).unwrap_err();
        assert_eq!(err.variable, "CSRF_COOKIE_MASKED");
    }

    #[test]
    fn generated_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:///{}/db.sqlite3", dir.path().display());
        let e = env(&[("DATABASE_URL", &url)]);
        let first = Settings::from_env(&e).unwrap();
        let path = dir.path().join(GENERATED_KEY_FILE);
        assert_eq!(
            first.secret_key_source,
            SecretKeySource::Generated(path.clone())
        );
        assert_eq!(first.secret_key.len(), 50);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let second = Settings::from_env(&e).unwrap();
        assert_eq!(second.secret_key, first.secret_key);
        assert_eq!(second.secret_key_source, SecretKeySource::File(path));
    }
}
