//! The request id and the access log: every request gets an id (a trusted
//! proxy's `X-Request-ID`, else a new one), answered in `X-Request-ID` and
//! carried by every log line written while the request is served (a
//! `request` span); when it is done, one access-log line says what was
//! asked and answered. The line names the path without its query string,
//! which can hold tokens. The same layer counts the request for the
//! metrics (`metrics`), when they are on.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::HttpBody as _;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::web::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a proxy.
const MAX_FORWARDED_ID: usize = 128;

/// The logged-in user who made a request, for the access log (the
/// pipeline puts it in the response's extensions).
#[derive(Debug, Clone, Copy)]
pub struct AccessUser(pub i64);

/// A proxy's request id when the peer is a trusted proxy and the id is
/// plain printable ASCII of a sane length; else a new random one.
fn request_id(app: &AppState, request: &Request) -> String {
    let from_proxy = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| {
            app.settings
                .throttling
                .trusted_proxies
                .iter()
                .any(|proxy| proxy.contains(peer.ip()))
        });
    if from_proxy {
        if let Some(id) = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|id| {
                !id.is_empty()
                    && id.len() <= MAX_FORWARDED_ID
                    && id.bytes().all(|b| b.is_ascii_graphic())
            })
        {
            return id.to_string();
        }
    }
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// The outermost layer: names the request, serves it inside its span, and
/// logs the access line.
pub async fn layer(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&app, &request);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // The route's template, for the metrics (an `Arc` of axum's).
    let route = match app.requests {
        Some(_) => request.extensions().get::<MatchedPath>().cloned(),
        None => None,
    };
    let span = tracing::info_span!("request", id = %id);
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if let Some(requests) = &app.requests {
        requests.record(
            crate::web::metrics::route_label(route.as_ref(), &path),
            &method,
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    if app.settings.logging.access_log {
        let status = response.status().as_u16();
        let user = response.extensions().get::<AccessUser>().map(|u| u.0);
        let bytes = response.body().size_hint().exact();
        // Milliseconds to the hundredth: a number in JSON lines too.
        let duration_ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
        span.in_scope(|| {
            tracing::info!(
                target: "unchained::access",
                method = %method,
                path = %path,
                status,
                duration_ms,
                bytes,
                user,
                "{method} {path} {status}"
            )
        });
    }
    response
}
