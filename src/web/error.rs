//! One error type for every handler, mapped to a status and a page. The
//! page itself is rendered by [`render_error`] in the request pipeline, which
//! hands it a renderer that knows the request's user and CSRF token, so error
//! pages carry the usual navigation. Nothing here knows the templates.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("CSRF verification failed: {0}")]
    Csrf(String),
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body stopped arriving before its end.
    #[error("request body stalled")]
    RequestTimeout,
    /// Something the request needs cannot be had right now (the database
    /// does not answer, the hashing pool is full): 503 with `Retry-After`.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Throttled (`web::throttle`): 429, with the page saying until when
    /// and `Retry-After` in seconds.
    #[error("too many requests: {message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// A database error that is no outage (a bug, a broken schema): 500,
    /// with the driver's error kept as the source.
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for AppError {
    /// A database that cannot be reached (no connection within the pool's
    /// acquire timeout, a connection lost) is a 503 the client may retry;
    /// anything else is a bug or a broken schema: a 500.
    fn from(e: sqlx::Error) -> Self {
        let unavailable = matches!(
            e,
            sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
        );
        crate::web::metrics::count_database_error(unavailable);
        if unavailable {
            AppError::Unavailable(format!("database: {e}"))
        } else {
            AppError::Database(e)
        }
    }
}

impl From<minijinja::Error> for AppError {
    fn from(e: minijinja::Error) -> Self {
        AppError::Internal(format!("template: {e:#}"))
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::Internal(format!("background task: {e}"))
    }
}

/// Marks a response whose body [`render_error`] is to render.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub status: StatusCode,
    /// Shown to the user (already in their language); empty for the default text.
    pub message: String,
    /// The `Retry-After` header's seconds, if the client is to come back.
    pub retry_after: Option<String>,
}

/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_SECONDS: &str = "5";

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden | AppError::Csrf(_) => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Database(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            AppError::Unavailable(_) => Some(RETRY_AFTER_SECONDS.to_string()),
            AppError::TooManyRequests { retry_after, .. } => Some(retry_after.to_string()),
            _ => None,
        };
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!("{detail}");
                String::new()
            }
            AppError::Database(e) => {
                tracing::error!("database: {e}");
                String::new()
            }
            AppError::BadRequest(message) => message.clone(),
            AppError::Csrf(reason) => reason.clone(),
            AppError::Unavailable(why) => {
                tracing::warn!("answered 503: {why}");
                String::new()
            }
            AppError::TooManyRequests { message, .. } => message.clone(),
            _ => String::new(),
        };
        let status = self.status();
        let error = ErrorPage {
            status,
            message,
            retry_after,
        };
        let mut response = (status, fallback_body(status)).into_response();
        set_retry_after(&mut response, &error);
        if matches!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
            // What was not read of the body must not be taken for a next request.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response.extensions_mut().insert(error);
        response
    }
}

/// A 503 or a 429 says when to come back.
fn set_retry_after(response: &mut Response, error: &ErrorPage) {
    let value = error
        .retry_after
        .as_deref()
        .and_then(|seconds| axum::http::HeaderValue::from_str(seconds).ok());
    if let Some(value) = value {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, value);
    }
}

fn fallback_body(status: StatusCode) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>{status}</title></head><body><h1>{status}</h1></body></html>"
    ))
}

/// Renders the template of an error response (`404.html`, `403.html`,
/// `403_csrf.html`, `400.html`, `413.html`, `429.html`, `500.html`, else
/// `error.html`), with navigation: `exists` says whether a template is
/// there, `render` renders one with the request's own context added to the
/// one given. `None` when rendering fails: the plain body stays.
pub fn render_error(
    error: &ErrorPage,
    debug: bool,
    exists: impl Fn(&str) -> bool,
    render: impl FnOnce(&str, minijinja::Value) -> Result<String, minijinja::Error>,
) -> Option<Response> {
    let is_csrf = error.status == StatusCode::FORBIDDEN && !error.message.is_empty();
    let template = match error.status.as_u16() {
        403 if is_csrf => "403_csrf.html".to_string(),
        code => format!("{code}.html"),
    };
    let template = if exists(&template) {
        template
    } else {
        "error.html".to_string()
    };
    let context = minijinja::context! {
        status => error.status.as_u16(),
        reason => error.status.canonical_reason().unwrap_or(""),
        message => error.message,
        debug => debug,
    };
    match render(&template, context) {
        Ok(body) => {
            let mut response = (error.status, Html(body)).into_response();
            set_retry_after(&mut response, error);
            response.extensions_mut().insert(error.clone());
            Some(response)
        }
        Err(e) => {
            tracing::error!("error page {template} failed to render: {e}");
            None
        }
    }
}
