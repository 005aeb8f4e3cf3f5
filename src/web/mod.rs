//! The HTTP layer: the request pipeline, the router and the server. Pages
//! live in one module per group (`users`, later `catalog`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_cookies::{CookieManagerLayer, Cookies};

use crate::config::{ConfigError, Settings};
use crate::db::Db;
use crate::django::csrf::{OriginChecker, CSRF_FORM_FIELD};
use crate::django::hashers::Hashers;
use crate::django::perms::UserPerms;
use crate::mail::MailerHandle;

pub mod assets;
pub mod auth;
pub mod body;
pub mod catalog;
pub mod collectstatic;
pub mod cookies;
pub mod csrf;
/// Files compiled into the binary by build.rs.
pub mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
pub mod error;
pub mod form_data;
pub mod form_view;
pub mod hashing;
pub mod health;
pub mod host;
pub mod media;
pub mod metrics;
pub mod own_paths;
pub mod request_log;
pub mod security;
pub mod server;
pub mod session;
pub mod templates;
pub mod throttle;
pub mod urls;
pub mod users;

use error::AppError;
use templates::{RequestContext, Templates};

/// Shared by every request; built once at start-up. A handle: cloning it
/// (each layer and handler takes one, several times a request) is one
/// reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub templates: Arc<Templates>,
    pub hashers: Hashers,
    /// Where password hashes are computed (bounded: see `hashing`).
    pub hashing: hashing::HashingPool,
    pub origin_checker: Arc<OriginChecker>,
    /// Wakes the outbox worker after a commit that queued a letter.
    pub mailer: MailerHandle,
    /// `LOGIN_URL`, `LOGIN_REDIRECT_URL` and `LOGOUT_REDIRECT_URL`, resolved.
    pub urls: urls::AuthUrls,
    /// The headers of `SECURE_*` and `X_FRAME_OPTIONS`.
    pub security_headers: Arc<security::SecurityHeaders>,
    /// Readiness's last look at the schema.
    pub schema_verdict: health::SchemaVerdict,
    /// Session data decoded lately (see `session`).
    pub decoded_sessions: session::DecodedSessions,
    /// Requests counted for the metrics; `None` when no one serves them.
    pub requests: Option<metrics::RequestMetrics>,
}

/// Why the site could not be built.
#[derive(Debug)]
pub enum StartError {
    Templates(minijinja::Error),
    /// A setting only the web layer can judge (a URL name it does not have).
    Setting(ConfigError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Templates(e) => write!(f, "templates: {e:#}"),
            StartError::Setting(e) => write!(f, "configuration error: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Templates(e) => Some(e),
            StartError::Setting(e) => Some(e),
        }
    }
}

impl AppState {
    pub fn new(db: Db, settings: Settings, mailer: MailerHandle) -> Result<AppState, StartError> {
        let templates =
            Arc::new(Templates::load(settings.time_zone).map_err(StartError::Templates)?);
        Ok(AppState(Arc::new(Shared {
            templates,
            db,
            mailer,
            hashers: settings.hashers(),
            hashing: hashing::HashingPool::new(settings.hashing),
            origin_checker: Arc::new(OriginChecker::new(
                &settings.csrf.trusted_origins,
                // `_check_referer`'s good referer: the domain of whichever
                // cookie holds the secret.
                if settings.csrf.use_sessions {
                    settings.session.cookie.domain.as_deref()
                } else {
                    settings.csrf.cookie.domain.as_deref()
                },
            )),
            urls: urls::AuthUrls::resolve(&settings.auth_urls).map_err(StartError::Setting)?,
            security_headers: Arc::new(security::SecurityHeaders::new(&settings)),
            schema_verdict: health::SchemaVerdict::default(),
            decoded_sessions: session::DecodedSessions::default(),
            requests: settings
                .metrics
                .enabled()
                .then(metrics::RequestMetrics::default),
            settings: Arc::new(settings),
        })))
    }
}

/// The site's pages.
fn pages() -> Router<AppState> {
    Router::new()
        .merge(users::routes())
        .merge(catalog::routes())
}

pub fn router(state: AppState) -> Router {
    pages()
        .fallback(|| async { AppError::NotFound })
        .layer(middleware::from_fn_with_state(state.clone(), pipeline))
        .layer(CookieManagerLayer::new())
        // Files and health answers need no session, user or CSRF: they
        // skip the pipeline.
        .merge(assets::routes(&state))
        .merge(health::routes(&state.settings.health))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            // The panic hook (main.rs) has logged where, in the request's span.
            AppError::Internal("a handler panicked".into()).into_response()
        }))
        // SecurityMiddleware, first in Django's MIDDLEWARE: around all
        // (only the access log is further out).
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::middleware,
        ))
        // The metrics: no session, Host check or SSL redirect (Prometheus
        // asks by address, over plain HTTP); counted and logged as any
        // request.
        .merge(metrics::routes(state.settings.metrics.path.as_deref()))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_log::layer,
        ))
        .with_state(state)
}

/// What Django's middleware stack does around every view, in order: refuse
/// a Host outside ALLOWED_HOSTS, load the session and the user, check CSRF on unsafe methods (reading and
/// parsing the form once, as a step of its own), run the view, render error pages with navigation, then save the
/// session and send the cookies.
async fn pipeline(
    State(app): State<AppState>,
    cookies: Cookies,
    mut request: Request,
    next: Next,
) -> Response {
    // Django's DisallowedHost: a Host outside ALLOWED_HOSTS gets a 400.
    if host::validated_host(&app.settings, request.headers()).is_none() {
        let mut response = disallowed_host();
        app.security_headers
            .add_page_headers(response.headers_mut());
        return response;
    }
    let loaded = match session::load(&app, &cookies).await {
        Ok((session, read_with_session)) => auth::load_user(&app, &session, read_with_session)
            .await
            .map(|user| (session, user)),
        Err(e) => Err(e),
    };
    let (session, user) = match loaded {
        Ok(loaded) => loaded,
        // The session or the user could not be read (the database is
        // down): the error page, as an anonymous visitor sees it.
        Err(e) => {
            let ctx = RequestContext {
                user: None,
                csrf: csrf::Csrf::load(&app, &cookies, &session::Session::default()),
                path: request.uri().path().to_string(),
                perms: Arc::new(UserPerms::anonymous()),
            };
            let mut response = with_error_page(&app, &ctx, e.into_response());
            app.security_headers
                .add_page_headers(response.headers_mut());
            return response;
        }
    };
    let csrf = csrf::Csrf::load(&app, &cookies, &session);
    let (user, perms) = match user {
        Some((user, perms)) => (Some(user), perms),
        None => (None, Arc::new(UserPerms::anonymous())),
    };
    let ctx = RequestContext {
        user,
        csrf: csrf.clone(),
        path: request.uri().path().to_string(),
        perms,
    };
    request.extensions_mut().insert(session.clone());
    request.extensions_mut().insert(csrf.clone());
    request.extensions_mut().insert(ctx.clone());
    let response = match check_csrf_and_read_form(&app, &cookies, &session, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    };
    let response = with_error_page(&app, &ctx, response);
    // As Django's middleware order has it: the CSRF secret is stored (in
    // the session, with CSRF_USE_SESSIONS) before the session is saved.
    let mut response = response;
    let status = response.status().as_u16();
    csrf.store(&app, &cookies, &session, response.headers_mut());
    if let Err(e) = session::save(&app, &session, status, response.headers_mut()).await {
        return e.into_response();
    }
    if let Some(user) = &ctx.user {
        response
            .extensions_mut()
            .insert(request_log::AccessUser(user.id));
    }
    app.security_headers
        .add_page_headers(response.headers_mut());
    response
}

/// For an unsafe method, in Django's order: the request's origin and its
/// CSRF secret are checked first, before any of the body is kept (a refused
/// body is drained); then the body is read (bounded) and parsed into the
/// request's extensions for the handler, and the form's token (or the
/// header's) checked. Safe methods pass untouched.
async fn check_csrf_and_read_form(
    app: &AppState,
    cookies: &Cookies,
    session: &session::Session,
    request: Request,
) -> Result<Request, AppError> {
    if csrf::is_safe_method(request.method()) {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let secret = match csrf::check_before_body(app, cookies, session, &parts) {
        Ok(secret) => secret,
        Err(e) => {
            body::discard(body).await;
            return Err(e);
        }
    };
    let form = form_data::FormData::read(&parts.headers, body, &app.settings.uploads).await?;
    csrf::check_token(app, &parts, &secret, form.get(CSRF_FORM_FIELD))?;
    parts.extensions.insert(form);
    Ok(Request::from_parts(parts, axum::body::Body::empty()))
}

/// Django's answer to `DisallowedHost`: a Host outside `ALLOWED_HOSTS`.
fn disallowed_host() -> Response {
    AppError::BadRequest(
        "Недопустимый заголовок Host: адрес сайта не разрешён в ALLOWED_HOSTS.".into(),
    )
    .into_response()
}

/// An error response with its page rendered for this request (navigation,
/// the user); any other response as it is.
fn with_error_page(app: &AppState, ctx: &RequestContext, response: Response) -> Response {
    match response.extensions().get::<error::ErrorPage>().cloned() {
        Some(error) => error::render_error(
            &error,
            app.settings.debug,
            |name| app.templates.has(name),
            |name, context| ctx.render(app, name, context),
        )
        .unwrap_or(response),
        None => response,
    }
}

/// Django's `never_cache` (the login and logout views have it): no cache
/// may keep the page.
pub fn never_cache(mut response: Response) -> Response {
    use axum::http::header::{self, HeaderValue};
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=0, no-cache, no-store, must-revalidate, private"),
    );
    let now = crate::django::http_date::http_date(chrono::Utc::now());
    if let Ok(value) = HeaderValue::from_str(&now) {
        headers.insert(header::EXPIRES, value);
    }
    response
}

/// A `302 Found` redirect, as Django's `HttpResponseRedirect` answers.
pub fn redirect(location: &str) -> Response {
    (
        axum::http::StatusCode::FOUND,
        [(axum::http::header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// The site as `serve` runs it, built once for the command and the tests
/// alike: the listener bound, the mail worker started, the pages ready.
pub struct Application {
    state: AppState,
    listener: tokio::net::TcpListener,
    /// `METRICS_ADDRESS`'s listener.
    metrics_listener: Option<tokio::net::TcpListener>,
}

impl Application {
    /// Starts the outbox worker and binds `settings.bind` (port 0: any free
    /// port, see [`Application::address`]), and `METRICS_ADDRESS` if set.
    pub async fn build(db: Db, settings: Settings) -> std::io::Result<Application> {
        let mailer = crate::mail::spawn_worker(db.clone(), settings.email.clone());
        let state = AppState::new(db, settings, mailer).map_err(std::io::Error::other)?;
        own_paths::refuse_shadowing(pages(), &state)
            .await
            .map_err(|e| std::io::Error::other(StartError::Setting(e)))?;
        let listener = tokio::net::TcpListener::bind(state.settings.bind).await?;
        let metrics_listener = match state.settings.metrics.address {
            Some(address) => Some(tokio::net::TcpListener::bind(address).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("METRICS_ADDRESS {address}: {e}"))
            })?),
            None => None,
        };
        Ok(Application {
            state,
            listener,
            metrics_listener,
        })
    }

    pub fn address(&self) -> std::net::SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `METRICS_ADDRESS` is served, if it is set.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, lets the requests under way finish
    /// (within the grace period), then sends no more letters and closes the
    /// database.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) {
        let Application {
            state,
            listener,
            metrics_listener,
        } = self;
        let db = state.db.clone();
        let mailer = state.mailer.clone();
        let limits = state.settings.connections;
        // Only PostgreSQL's count triggers add rows to fold.
        let folder =
            matches!(db, Db::Postgres(_)).then(|| tokio::spawn(fold_product_counts(db.clone())));
        // The metrics listener answers until the site's has finished.
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics_server = metrics_listener.map(|metrics_listener| {
            tokio::spawn(server::run(
                metrics_listener,
                metrics::address_router(state.clone()),
                limits,
                async {
                    let _ = metrics_stopped.await;
                },
            ))
        });
        server::run(listener, router(state), limits, shutdown).await;
        let _ = stop_metrics.send(());
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
        if let Some(folder) = folder {
            folder.abort();
        }
        mailer.shutdown().await;
        db.close().await;
    }
}

/// Serves until Ctrl-C or SIGTERM, then finishes the requests under way.
pub async fn serve(db: Db, settings: Settings) -> std::io::Result<()> {
    let app = Application::build(db, settings).await?;
    println!("Serving on http://{}/ (Ctrl-C to stop)", app.address());
    if let Some(path) = &app.state.settings.metrics.path {
        println!("Metrics on http://{}{path}", app.address());
    }
    if let Some(address) = app.metrics_address() {
        println!("Metrics on http://{address}{}", metrics::ADDRESS_PATH);
    }
    app.run_until(shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Keeps the product counts' rows few (`db::catalog::fold_product_counts`).
async fn fold_product_counts(db: Db) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(2));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match crate::db::catalog::fold_product_counts(&db).await {
            Ok(0) => {}
            Ok(rows) => tracing::debug!("folded {rows} product count rows"),
            Err(e) => tracing::warn!("cannot fold the product counts: {e}"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
