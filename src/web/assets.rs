//! `/static/` (the files of `static/`, compiled in) and `/media/` (uploads
//! under `MEDIA_ROOT`).

use axum::extract::Path;
use axum::http::header;
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
    Router::new()
        .route("/static/{*path}", get(static_file))
        .nest_service("/media", ServeDir::new(&state.settings.media_root))
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
