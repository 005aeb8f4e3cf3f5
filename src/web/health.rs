//! The answers a load balancer or an orchestrator asks for: liveness at
//! `HEALTH_LIVE_PATH` (the process runs and serves) and readiness at
//! `HEALTH_READY_PATH` (the database answers, its schema is the one this
//! backend expects, the outbox worker runs). They sit outside the session
//! and CSRF pipeline and `ALLOWED_HOSTS` (a balancer asks by address, with
//! no cookies), answer `Cache-Control: no-store`, and cost one `SELECT 1`;
//! the schema, whose comparison reads the catalog, is compared again at
//! most every [`SCHEMA_RECHECK`]. `own_paths` keeps the paths off the
//! site's own.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Mutex;

use crate::config::HealthPaths;
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
