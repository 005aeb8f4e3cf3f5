//! The HTTP layer: the router and the server.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::Router;

use crate::config::Settings;
use crate::db::Db;

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: std::sync::Arc<Settings>,
}

pub fn router(state: AppState) -> Router {
    Router::new().fallback(not_found).with_state(state)
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Html("<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>Страница не найдена</title></head>\
              <body><h1>Страница не найдена</h1><p>The requested page was not found.</p></body></html>"),
    )
}

/// Serves until Ctrl-C or SIGTERM, then finishes the requests under way.
pub async fn serve(db: Db, settings: Settings) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.bind).await?;
    let address = listener.local_addr()?;
    println!("Serving on http://{address}/ (Ctrl-C to stop)");
    let state = AppState {
        db: db.clone(),
        settings: std::sync::Arc::new(settings),
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
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
