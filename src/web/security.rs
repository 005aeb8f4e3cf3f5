//! Django's `SecurityMiddleware`, first around every request (files
//! included): plain-HTTP requests sent to HTTPS (`SECURE_SSL_REDIRECT`,
//! `SECURE_SSL_HOST`, `SECURE_REDIRECT_EXEMPT`), and the headers it adds to
//! every response (`Strict-Transport-Security` over HTTPS only, `nosniff`,
//! `Referrer-Policy`, `Cross-Origin-Opener-Policy`). Also the headers the
//! page middleware adds (`X-Frame-Options`, `Vary: Cookie`), for the
//! pipeline. The rules are `django::security`'s.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::Settings;
use crate::django::security::{request_path, ssl_redirect_location};
use crate::web::AppState;

const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");

/// The header values of the settings, made once.
#[derive(Debug, Clone, Default)]
pub struct SecurityHeaders {
    hsts: Option<HeaderValue>,
    nosniff: bool,
    referrer_policy: Option<HeaderValue>,
    cross_origin_opener_policy: Option<HeaderValue>,
    x_frame_options: Option<HeaderValue>,
}

impl SecurityHeaders {
    pub fn new(settings: &Settings) -> SecurityHeaders {
        let s = &settings.security;
        // The settings allow only ASCII values (checked when read).
        let value = |v: Option<String>| v.and_then(|v| HeaderValue::from_str(&v).ok());
        SecurityHeaders {
            hsts: value(s.hsts_header()),
            nosniff: s.content_type_nosniff,
            referrer_policy: value(s.referrer_policy.clone()),
            cross_origin_opener_policy: value(s.cross_origin_opener_policy.clone()),
            x_frame_options: value(s.x_frame_options_header()),
        }
    }

    /// `SecurityMiddleware.process_response`: HSTS on a secure request
    /// unless the response has its own; the others unless it has them.
    fn add(&self, secure: bool, headers: &mut HeaderMap) {
        if secure {
            if let Some(hsts) = &self.hsts {
                headers
                    .entry(header::STRICT_TRANSPORT_SECURITY)
                    .or_insert_with(|| hsts.clone());
            }
        }
        if self.nosniff {
            headers
                .entry(header::X_CONTENT_TYPE_OPTIONS)
                .or_insert(HeaderValue::from_static("nosniff"));
        }
        if let Some(policy) = &self.referrer_policy {
            headers
                .entry(header::REFERRER_POLICY)
                .or_insert_with(|| policy.clone());
        }
        if let Some(policy) = &self.cross_origin_opener_policy {
            headers
                .entry(CROSS_ORIGIN_OPENER_POLICY)
                .or_insert_with(|| policy.clone());
        }
    }

    /// What the page middleware adds: `XFrameOptionsMiddleware`'s header
    /// (unless the response has one) and `Vary: Cookie` from the session
    /// and CSRF middleware (pages differ by user).
    pub fn add_page_headers(&self, headers: &mut HeaderMap) {
        if let Some(x_frame_options) = &self.x_frame_options {
            headers
                .entry(header::X_FRAME_OPTIONS)
                .or_insert_with(|| x_frame_options.clone());
        }
        headers
            .entry(header::VARY)
            .or_insert(HeaderValue::from_static("Cookie"));
    }
}

/// `SecurityMiddleware`: the SSL redirect before anything else runs, its
/// headers on whatever answers.
pub async fn middleware(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let settings = &app.settings;
    let secure = crate::web::host::is_secure(settings, request.headers());
    if settings.security.ssl_redirect && !secure {
        if let Some(response) = ssl_redirect(settings, &app.security_headers, &request) {
            return response;
        }
    }
    let mut response = next.run(request).await;
    app.security_headers.add(secure, response.headers_mut());
    response
}

/// `process_request`'s redirect of a plain-HTTP request, unless its path is
/// exempt: a 301 to the same path and query over HTTPS, on
/// `SECURE_SSL_HOST` or the request's own host (a host outside
/// `ALLOWED_HOSTS` is refused, as `get_host` refuses it).
fn ssl_redirect(
    settings: &Settings,
    headers: &SecurityHeaders,
    request: &Request,
) -> Option<Response> {
    let path = request_path(request.uri().path());
    if settings.security.redirect_exempt.exempts(&path) {
        return None;
    }
    let host = settings
        .security
        .ssl_host
        .clone()
        .or_else(|| crate::web::host::validated_host(settings, request.headers()));
    let location = host
        .map(|host| ssl_redirect_location(&host, &path, request.uri().query()))
        .and_then(|location| HeaderValue::from_str(&location).ok());
    let mut response = match location {
        Some(location) => (
            StatusCode::MOVED_PERMANENTLY,
            [
                (header::LOCATION, location),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
            ],
        )
            .into_response(),
        None => {
            let mut response = crate::web::disallowed_host();
            headers.add_page_headers(response.headers_mut());
            response
        }
    };
    headers.add(false, response.headers_mut());
    Some(response)
}
