//! The paths the server answers besides the site's pages and files: the
//! health answers and the metrics, each named by a setting. Checked once at
//! start-up, so that none hides a page, a static file or an upload of the
//! site, or another of them.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

use crate::config::{ConfigError, Settings};
use crate::web::AppState;

/// Prefixes whose every path belongs to the site's files (`/static/`) or
/// uploads (`/media/`), answered or not.
const FILE_PREFIXES: [&str; 2] = ["/static", "/media"];

/// Refuses a path of [`configured`] that the site's `pages` would answer,
/// that lies under [`FILE_PREFIXES`], or that another setting names too.
/// The pages are asked with a method none of them takes, so no handler
/// runs: a routed path answers 405, any other 404.
pub async fn refuse_shadowing(
    pages: Router<AppState>,
    state: &AppState,
) -> Result<(), ConfigError> {
    let pages = pages.with_state(state.clone());
    let paths = configured(&state.settings);
    for (i, (name, path)) in paths.iter().enumerate() {
        if let Some((other, _)) = paths[..i].iter().find(|(_, p)| p == path) {
            return Err(ConfigError::new(
                name,
                format!("{path:?} is {other} already: choose another path"),
            ));
        }
        let under = |prefix: &str| *path == prefix || path.starts_with(&format!("{prefix}/"));
        let what = if let Some(prefix) = FILE_PREFIXES.iter().find(|p| under(p)) {
            Some(format!("the site's {prefix}/"))
        } else {
            let probe = Request::builder()
                .method(Method::from_bytes(b"PROBE").expect("a method token"))
                .uri(*path)
                .body(Body::empty())
                .map_err(|e| ConfigError::new(name, format!("{path:?}: {e}")))?;
            let status = match pages.clone().oneshot(probe).await {
                Ok(response) => response.status(),
                Err(never) => match never {},
            };
            (status != StatusCode::NOT_FOUND).then(|| "a page of the site".to_string())
        };
        if let Some(what) = what {
            return Err(ConfigError::new(
                name,
                format!("{path:?} is a path of {what}: choose another"),
            ));
        }
    }
    Ok(())
}

/// The paths set, with the names of their settings.
fn configured(settings: &Settings) -> Vec<(&'static str, &str)> {
    [
        ("HEALTH_LIVE_PATH", settings.health.live.as_deref()),
        ("HEALTH_READY_PATH", settings.health.ready.as_deref()),
        ("METRICS_PATH", settings.metrics.path.as_deref()),
    ]
    .into_iter()
    .filter_map(|(name, path)| Some((name, path?)))
    .collect()
}
