//! `/static/` (the files of `static/`, compiled in) and `/media/` (uploads
//! under `MEDIA_ROOT`).

use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::services::ServeDir;

use crate::web::embedded::STATIC_FILES;
use crate::web::error::AppError;
use crate::web::AppState;

/// Static files change only with a new build; a day of caching is safe.
const STATIC_CACHE_CONTROL: &str = "public, max-age=86400";

pub fn routes(state: &AppState) -> Router<AppState> {
    let media = Router::new()
        .nest_service("/media", ServeDir::new(&state.settings.media_root))
        .layer(middleware::from_fn(media_guard));
    Router::new()
        .route("/static/{*path}", get(static_file))
        .merge(media)
}

/// Uploads come from users, so `/media/` serves them as inert images only:
/// an image type chosen by the extension (never guessed from the content,
/// which `nosniff` forbids the browser too), and a policy that runs no
/// script and loads nothing even if a file were opened as a document.
/// Anything else under `MEDIA_ROOT`, or a path with control characters,
/// is not found.
async fn media_guard(request: Request, next: Next) -> Response {
    let path = percent_encoding::percent_decode_str(request.uri().path()).decode_utf8_lossy();
    let content_type = match crate::web::media::served_content_type(&path) {
        Some(content_type) if !path.chars().any(char::is_control) => content_type,
        _ => return AppError::NotFound.into_response(),
    };
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status() == 304 {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
            ),
        );
    }
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn static_file(Path(path): Path<String>) -> Result<Response, AppError> {
    let (_, contents) = STATIC_FILES
        .iter()
        .find(|(name, _)| *name == path)
        .ok_or(AppError::NotFound)?;
    let content_type = match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, STATIC_CACHE_CONTROL),
        ],
        *contents,
    )
        .into_response())
}
