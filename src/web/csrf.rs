//! Django's `CsrfViewMiddleware` on every request: the `csrftoken` cookie
//! (or, with `CSRF_USE_SESSIONS`, the session) holds the secret; unsafe
//! methods must bring a masked token in the `csrfmiddlewaretoken` field or
//! the `CSRF_HEADER_NAME` header (`X-CSRFToken`). The token
//! arithmetic and the Origin/Referer rules live in `crate::django::csrf`.
//! The body is none of this module's business: the request pipeline checks
//! the origin and secret ([`check_before_body`]), reads the form, and hands
//! its token to [`check_token`].

use std::sync::{Arc, Mutex};

use axum::http::request::Parts;
use axum::http::{header, Method};
use tower_cookies::Cookies;

use crate::django::csrf::{self as core, CSRF_SESSION_KEY};
use crate::web::error::AppError;
use crate::web::session::Session;
use crate::web::AppState;

#[derive(Debug, Default)]
struct CsrfState {
    secret: Option<String>,
    /// Send the cookie with the response (new, rotated, or used by a page).
    needs_update: bool,
}

/// The request's CSRF secret, shared between middleware and handler.
#[derive(Clone, Debug, Default)]
pub struct Csrf(Arc<Mutex<CsrfState>>);

impl Csrf {
    fn with<T>(&self, f: impl FnOnce(&mut CsrfState) -> T) -> T {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Django's `get_token`: a freshly masked token for the form, creating the
    /// secret if there is none; the cookie is (re)sent with the response.
    pub fn token(&self) -> String {
        self.with(|state| {
            let secret = state.secret.get_or_insert_with(core::new_secret).clone();
            state.needs_update = true;
            core::mask_cipher_secret(&secret)
        })
    }

    /// Django's `rotate_token`, done at login.
    pub fn rotate(&self) {
        self.with(|state| {
            state.secret = Some(core::new_secret());
            state.needs_update = true;
        })
    }
}

/// Methods the CSRF check lets pass untouched.
pub fn is_safe_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

impl Csrf {
    /// The request's secret, as Django's `process_request` finds it: from
    /// the CSRF cookie (a malformed one is replaced by a new secret, an old
    /// masked one rewritten), or with `CSRF_USE_SESSIONS` from the session.
    pub fn load(app: &AppState, cookies: &Cookies, session: &Session) -> Csrf {
        let mut state = CsrfState::default();
        if app.settings.csrf.use_sessions {
            state.secret = session
                .get_str(CSRF_SESSION_KEY)
                .map(|stored| core::secret_from_session(&stored));
        } else {
            match cookies
                .get(&app.settings.csrf.cookie.name)
                .map(|c| core::secret_from_cookie(c.value()))
            {
                Some(Ok(found)) => {
                    state.needs_update = found.was_masked;
                    state.secret = Some(found.secret);
                }
                Some(Err(_)) => {
                    state.secret = Some(core::new_secret());
                    state.needs_update = true;
                }
                None => {}
            }
        }
        Csrf(Arc::new(Mutex::new(state)))
    }

    /// Django's `_set_csrf_cookie` when the secret is new, rotated or used
    /// by the page: the cookie, or with `CSRF_USE_SESSIONS` the session
    /// (so this runs before the session is saved).
    pub fn store(
        &self,
        app: &AppState,
        cookies: &Cookies,
        session: &Session,
        headers: &mut axum::http::HeaderMap,
    ) {
        let (secret, needs_update) = self.with(|s| (s.secret.clone(), s.needs_update));
        let (Some(secret), true) = (secret, needs_update) else {
            return;
        };
        let csrf = &app.settings.csrf;
        if csrf.use_sessions {
            if session.get_str(CSRF_SESSION_KEY).as_deref() != Some(secret.as_str()) {
                session.insert(CSRF_SESSION_KEY, secret);
            }
        } else {
            let value = masked_if_new(app, cookies, secret);
            crate::web::cookies::set(headers, &csrf.cookie, &value, csrf.age);
        }
    }
}

/// Django 4.2's `CSRF_COOKIE_MASKED`: a secret made for this response (none
/// or a bad cookie came, or the login rotated it) goes out masked, as
/// `_add_new_csrf_cookie` stores it; the secret of the request's own cookie
/// goes back unmasked, as 4.2's `process_request` keeps it.
fn masked_if_new(app: &AppState, cookies: &Cookies, secret: String) -> String {
    let came = cookies
        .get(&app.settings.csrf.cookie.name)
        .and_then(|c| core::secret_from_cookie(c.value()).ok());
    if app.settings.csrf_cookie_masked && came.is_none_or(|c| c.secret != secret) {
        core::mask_cipher_secret(&secret)
    } else {
        secret
    }
}

/// Logs a refusal as Django's `_reject` does and makes it the 403.
fn refuse(reason: String, parts: &Parts) -> AppError {
    tracing::warn!("Forbidden (CSRF): {reason}: {}", parts.uri.path());
    AppError::Csrf(reason)
}

/// The first half of the check of an unsafe method, in Django's order: the
/// request's origin and its CSRF secret, before any of the body is kept.
/// Returns the secret the token is then checked against
/// ([`check_token`], once the body is read).
pub fn check_before_body(
    app: &AppState,
    cookies: &Cookies,
    session: &Session,
    parts: &Parts,
) -> Result<String, AppError> {
    let settings = &app.settings.csrf;
    // `_get_secret`: the session's value is taken as it is, the cookie's
    // must be well formed.
    let secret = |()| {
        if settings.use_sessions {
            session
                .get_str(CSRF_SESSION_KEY)
                .map(|stored| core::secret_from_session(&stored))
                .ok_or_else(|| core::REASON_NO_CSRF_COOKIE.to_string())
        } else {
            core::cookie_secret(
                cookies
                    .get(&settings.cookie.name)
                    .map(|c| c.value().to_string())
                    .as_deref(),
            )
        }
    };
    check_source(app, parts)
        .and_then(secret)
        .map_err(|reason| refuse(reason, parts))
}

/// The second half: the token, from the form's `csrfmiddlewaretoken` field
/// (`form_token`, the caller's parsed body; only a POST's counts) or the
/// `CSRF_HEADER_NAME` header, checked against the secret with Django's rules
/// and reasons.
pub fn check_token(
    app: &AppState,
    parts: &Parts,
    secret: &str,
    form_token: Option<&str>,
) -> Result<(), AppError> {
    let settings = &app.settings.csrf;
    let post_token = if parts.method == Method::POST {
        form_token
    } else {
        None
    };
    let header_token = parts
        .headers
        .get(settings.header.http_name.as_str())
        .and_then(|v| v.to_str().ok());
    core::check_request_token(
        secret,
        post_token,
        header_token,
        &settings.header.display_name,
    )
    .map_err(|reason| refuse(reason, parts))
}

/// The Origin (and, over HTTPS, Referer) rules of `CsrfViewMiddleware`.
fn check_source(app: &AppState, parts: &Parts) -> Result<(), String> {
    let header_str = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let is_secure = crate::web::host::is_secure(&app.settings, &parts.headers);
    let host = crate::web::host::validated_host(&app.settings, &parts.headers);
    let port = if is_secure { "443" } else { "80" };
    app.origin_checker.check_request_source(
        header_str(header::ORIGIN.as_str()),
        header_str(header::REFERER.as_str()),
        is_secure,
        host.as_deref(),
        port,
    )
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Csrf {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Csrf>()
            .cloned()
            .ok_or_else(|| AppError::Internal("the request pipeline did not run".into()))
    }
}
