//! The answers a load balancer or an orchestrator asks for: liveness at
//! `HEALTH_LIVE_PATH` (the process runs and serves) and readiness at
//! `HEALTH_READY_PATH` (the database answers, its schema is the one this
//! backend expects, the outbox worker runs). They sit outside the session
//! and CSRF pipeline and `ALLOWED_HOSTS` (a balancer asks by address, with
//! no cookies), answer `Cache-Control: no-store`, and cost one `SELECT 1`;
//! the schema, whose comparison reads the catalog, is compared again at
//! most every [`SCHEMA_RECHECK`].

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Mutex;
use tower::ServiceExt;

use crate::config::{ConfigError, HealthPaths};
use crate::db::schema;
use crate::web::AppState;

/// How long a schema comparison's verdict is reused.
pub const SCHEMA_RECHECK: Duration = Duration::from_secs(30);
/// How long readiness waits for the database before calling it down.
const DATABASE_WAIT: Duration = Duration::from_secs(3);

/// The last schema verdict, shared by every readiness request.
#[derive(Default)]
pub struct SchemaVerdict(Mutex<Option<(Instant, Result<(), String>)>>);

pub fn routes(paths: &HealthPaths) -> Router<AppState> {
    let mut router = Router::new();
    if let Some(path) = &paths.live {
        router = router.route(path, get(live));
    }
    if let Some(path) = &paths.ready {
        router = router.route(path, get(ready));
    }
    router
}

/// Refuses a health path that a page, a static file or an upload of the
/// site would answer: the site's routes are asked with a method none of
/// them takes, so no handler runs; anything but 404 means the path is
/// routed (405 Method Not Allowed).
pub async fn refuse_shadowing(
    site: Router<AppState>,
    state: &AppState,
    paths: &HealthPaths,
) -> Result<(), ConfigError> {
    let site = site.with_state(state.clone());
    for (name, path) in [
        ("HEALTH_LIVE_PATH", &paths.live),
        ("HEALTH_READY_PATH", &paths.ready),
    ] {
        let Some(path) = path else { continue };
        let probe = Request::builder()
            .method(Method::from_bytes(b"PROBE").expect("a method token"))
            .uri(path.as_str())
            .body(Body::empty())
            .map_err(|e| ConfigError::new(name, format!("{path:?}: {e}")))?;
        let status = match site.clone().oneshot(probe).await {
            Ok(response) => response.status(),
            Err(never) => match never {},
        };
        if status != StatusCode::NOT_FOUND {
            return Err(ConfigError::new(
                name,
                format!("{path:?} is a path of the site's own pages or files: choose another"),
            ));
        }
    }
    Ok(())
}

async fn live() -> Response {
    answer(StatusCode::OK, "ok\n".to_string())
}

async fn ready(State(app): State<AppState>) -> Response {
    let database = match tokio::time::timeout(DATABASE_WAIT, app.db.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!("readiness: the database does not answer: {e}");
            Err("does not answer".to_string())
        }
        Err(_) => {
            tracing::warn!("readiness: the database did not answer within {DATABASE_WAIT:?}");
            Err(format!("no answer within {} s", DATABASE_WAIT.as_secs()))
        }
    };
    let schema = if database.is_ok() {
        schema_verdict(&app).await
    } else {
        Err("not checked (no database)".to_string())
    };
    let outbox = if app.mailer.is_running() {
        Ok(())
    } else {
        Err("stopped".to_string())
    };
    let parts = [
        ("database", database),
        ("schema", schema),
        ("outbox worker", outbox),
    ];
    let status = if parts.iter().all(|(_, part)| part.is_ok()) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let text: String = parts
        .iter()
        .map(|(name, part)| match part {
            Ok(()) => format!("{name}: ok\n"),
            Err(why) => format!("{name}: {why}\n"),
        })
        .collect();
    answer(status, text)
}

/// Whether the schema still is what this backend expects (a later Django
/// migration run beside it may have changed it), compared at most every
/// [`SCHEMA_RECHECK`].
async fn schema_verdict(app: &AppState) -> Result<(), String> {
    let mut last = app.schema_verdict.0.lock().await;
    if let Some((at, verdict)) = last.as_ref() {
        if at.elapsed() < SCHEMA_RECHECK {
            return verdict.clone();
        }
    }
    let verdict = match schema::schema_findings(&app.db).await {
        Ok(findings) => {
            let errors = findings
                .iter()
                .filter(|f| f.severity == schema::Severity::Error)
                .count();
            if errors == 0 {
                Ok(())
            } else {
                tracing::warn!(
                    "readiness: the schema differs in {errors} ways (`unchained check` lists them)"
                );
                Err(format!(
                    "{errors} differences from what this backend expects (`unchained check` lists them)"
                ))
            }
        }
        Err(e) => {
            tracing::warn!("readiness: cannot read the schema: {e}");
            Err("cannot be read".to_string())
        }
    };
    *last = Some((Instant::now(), verdict.clone()));
    verdict
}

fn answer(status: StatusCode, text: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}
