//! Django's `CsrfViewMiddleware` on every request: the `csrftoken` cookie
//! holds the secret; unsafe methods must bring a masked token in the
//! `csrfmiddlewaretoken` field or the `X-CSRFToken` header. The token
//! arithmetic and the Origin/Referer rules live in `crate::django::csrf`.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method};
use tower_cookies::cookie::time::{Duration as CookieDuration, OffsetDateTime};
use tower_cookies::cookie::SameSite;
use tower_cookies::{Cookie, Cookies};

use crate::django::csrf::{self as core, CSRF_COOKIE_AGE, CSRF_COOKIE_NAME, CSRF_FORM_FIELD};
use crate::web::error::AppError;
use crate::web::form::FormData;
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

fn is_safe_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

impl Csrf {
    /// The secret from the `csrftoken` cookie; a malformed cookie is
    /// replaced by a new secret and an old masked one is rewritten, as
    /// Django's `process_request` does.
    pub fn from_cookies(cookies: &Cookies) -> Csrf {
        let mut state = CsrfState::default();
        match cookies
            .get(CSRF_COOKIE_NAME)
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
        Csrf(Arc::new(Mutex::new(state)))
    }

    /// Sends the cookie when the secret is new, rotated or used by the page.
    pub fn set_cookie(&self, app: &AppState, cookies: &Cookies) {
        let (secret, needs_update) = self.with(|s| (s.secret.clone(), s.needs_update));
        if let (Some(secret), true) = (secret, needs_update) {
            let value = masked_if_new(app.settings.csrf_cookie_masked, cookies, secret);
            cookies.add(
                Cookie::build((CSRF_COOKIE_NAME, value))
                    .path("/")
                    .same_site(SameSite::Lax)
                    .secure(app.settings.csrf_cookie_secure)
                    .max_age(CookieDuration::seconds(CSRF_COOKIE_AGE))
                    .expires(OffsetDateTime::now_utc() + CookieDuration::seconds(CSRF_COOKIE_AGE))
                    .build(),
            );
        }
    }
}

/// Django 4.2's `CSRF_COOKIE_MASKED`: a secret made for this response (none
/// or a bad cookie came, or the login rotated it) goes out masked, as
/// `_add_new_csrf_cookie` stores it; the secret of the request's own cookie
/// goes back unmasked, as 4.2's `process_request` keeps it.
fn masked_if_new(masked: bool, cookies: &Cookies, secret: String) -> String {
    let came = cookies
        .get(CSRF_COOKIE_NAME)
        .and_then(|c| core::secret_from_cookie(c.value()).ok());
    if masked && came.is_none_or(|c| c.secret != secret) {
        core::mask_cipher_secret(&secret)
    } else {
        secret
    }
}

/// For an unsafe method, in Django's order: the request's origin and its
/// CSRF cookie are checked first, before any of the body is kept; then the
/// body is read (bounded) and parsed into the request's extensions for the
/// handler, and the token checked with Django's rules and reasons. Safe
/// methods pass untouched.
pub async fn protect(
    app: &AppState,
    cookies: &Cookies,
    request: Request,
) -> Result<Request, AppError> {
    if is_safe_method(request.method()) {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let raw_cookie = cookies.get(CSRF_COOKIE_NAME).map(|c| c.value().to_string());
    let refuse = |reason: String, parts: &axum::http::request::Parts| {
        tracing::warn!("Forbidden (CSRF): {reason}: {}", parts.uri.path());
        AppError::Csrf(reason)
    };
    let secret =
        match check_source(app, &parts).and_then(|()| core::cookie_secret(raw_cookie.as_deref())) {
            Ok(secret) => secret,
            Err(reason) => {
                crate::web::body::discard(body).await;
                return Err(refuse(reason, &parts));
            }
        };
    let form = FormData::read(&parts.headers, body, &app.settings.uploads).await?;
    let post_token = if parts.method == Method::POST {
        form.get(CSRF_FORM_FIELD)
    } else {
        None
    };
    let header_token = parts
        .headers
        .get("x-csrftoken")
        .and_then(|v| v.to_str().ok());
    if let Err(reason) = core::check_request_token(&secret, post_token, header_token) {
        return Err(refuse(reason, &parts));
    }
    parts.extensions.insert(form);
    Ok(Request::from_parts(parts, Body::empty()))
}

/// The Origin (and, over HTTPS, Referer) rules of `CsrfViewMiddleware`.
fn check_source(app: &AppState, parts: &axum::http::request::Parts) -> Result<(), String> {
    let header_str = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let is_secure = app.settings.is_secure(&parts.headers);
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
