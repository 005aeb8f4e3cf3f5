//! Metrics in Prometheus' text format (version 0.0.4), at `METRICS_PATH` of
//! the site's listener and/or at `/metrics` of `METRICS_ADDRESS`; gathered
//! only when one of them is set.
//!
//! Requests are counted by the access-log layer (`request_log`) by route
//! template (axum's `MatchedPath`, never the path asked: `/products/{pk}/`),
//! method and status, each with a histogram of its durations. A request
//! costs a read lock on the table of series and two atomic additions;
//! the write lock is taken only the first time a (route, method, status)
//! is seen, and the routes, methods and statuses are few. The rest is read
//! when Prometheus asks: the database pools, the hashing pool, the outbox
//! (one query), the mail worker's counters and the process's memory.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use axum::extract::{MatchedPath, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::web::AppState;

/// The exposition format's media type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The path the separate `METRICS_ADDRESS` listener answers.
pub const ADDRESS_PATH: &str = "/metrics";

/// The route label of a request no route took (the site's 404s).
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the duration buckets, in microseconds (1 ms to 10 s);
/// one more bucket, `+Inf`, takes the rest.
const BUCKETS_MICROS: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];
/// The same bounds as Prometheus' `le` labels.
const BUCKETS_LE: [&str; 13] = [
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10",
];

/// How long a scrape waits for the outbox query.
const OUTBOX_WAIT: Duration = Duration::from_secs(2);

/// Errors of the database that became an error response (`AppError` from
/// `sqlx::Error`): the database could not be reached (503), or a query
/// failed (500). For the whole process, as a database is.
static DATABASE_UNAVAILABLE: AtomicU64 = AtomicU64::new(0);
static DATABASE_QUERY_FAILED: AtomicU64 = AtomicU64::new(0);

/// Counts a database error answered with a 503 (`unavailable`) or a 500.
pub fn count_database_error(unavailable: bool) {
    let counter = if unavailable {
        &DATABASE_UNAVAILABLE
    } else {
        &DATABASE_QUERY_FAILED
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One (route, method, status): observations per bucket (not cumulative;
/// the last is `+Inf`) and their sum.
struct Series {
    method: &'static str,
    status: u16,
    buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl Series {
    fn new(method: &'static str, status: u16) -> Series {
        Series {
            method,
            status,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// The requests answered since start-up, by route, method and status.
#[derive(Default)]
pub struct RequestMetrics {
    routes: RwLock<HashMap<Box<str>, Vec<Series>>>,
}

/// A method as a label: the standard ones by name, any other as `other`
/// (a client must not be able to make series without end).
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}

/// The route label of a request: the template of the route that took it;
/// uploads (`/media/`, a nested service, which axum gives no template) as
/// one route; anything else as [`UNMATCHED`].
pub fn route_label<'a>(matched: Option<&'a MatchedPath>, path: &str) -> &'a str {
    match matched {
        Some(matched) => matched.as_str(),
        None if path == "/media" || path.starts_with("/media/") => "/media/{*path}",
        None => UNMATCHED,
    }
}

impl RequestMetrics {
    /// Counts a request that took `elapsed` to answer.
    pub fn record(&self, route: &str, method: &Method, status: u16, elapsed: Duration) {
        let method = method_label(method);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_MICROS
            .iter()
            .position(|&bound| micros <= bound)
            .unwrap_or(BUCKETS_MICROS.len());
        let observe = |series: &Series| {
            series.buckets[bucket].fetch_add(1, Ordering::Relaxed);
            series.sum_micros.fetch_add(micros, Ordering::Relaxed);
        };
        let find = |all: &[Series]| -> Option<usize> {
            all.iter()
                .position(|s| s.status == status && s.method == method)
        };
        {
            let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
            if let Some(all) = routes.get(route) {
                if let Some(index) = find(all) {
                    observe(&all[index]);
                    return;
                }
            }
        }
        // The first of its kind.
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        let all = routes.entry(route.into()).or_default();
        let index = find(all).unwrap_or_else(|| {
            all.push(Series::new(method, status));
            all.len() - 1
        });
        observe(&all[index]);
    }

    /// Every series, sorted: (route, method, status, cumulative bucket
    /// counts ending with `+Inf`, sum in seconds).
    fn snapshot(&self) -> Vec<(String, &'static str, u16, Vec<u64>, f64)> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<_> = routes
            .iter()
            .flat_map(|(route, all)| {
                all.iter().map(move |series| {
                    let mut total = 0;
                    let cumulative = series
                        .buckets
                        .iter()
                        .map(|bucket| {
                            total += bucket.load(Ordering::Relaxed);
                            total
                        })
                        .collect();
                    let sum = series.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                    (
                        route.to_string(),
                        series.method,
                        series.status,
                        cumulative,
                        sum,
                    )
                })
            })
            .collect();
        rows.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
        rows
    }
}

/// The metrics route of the site's listener, if `METRICS_PATH` is set.
pub fn routes(path: Option<&str>) -> Router<AppState> {
    match path {
        Some(path) => Router::new().route(path, get(metrics)),
        None => Router::new(),
    }
}

/// The whole application of the `METRICS_ADDRESS` listener.
pub fn address_router(state: AppState) -> Router {
    Router::new()
        .route(ADDRESS_PATH, get(metrics))
        .with_state(state)
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        render(&app).await,
    )
        .into_response()
}

/// The exposition text.
pub async fn render(app: &AppState) -> String {
    let mut out = Text(String::with_capacity(8192));

    if let Some(requests) = &app.requests {
        let rows = requests.snapshot();
        out.family(
            "unchained_http_requests_total",
            "counter",
            "Requests answered, by route template, method and status.",
        );
        for (route, method, status, buckets, _) in &rows {
            let labels = request_labels(route, method, *status);
            out.sample(
                "unchained_http_requests_total",
                &labels,
                buckets[buckets.len() - 1],
            );
        }
        let name = "unchained_http_request_duration_seconds";
        out.family(
            name,
            "histogram",
            "Time from a request's arrival to its response's head, by route template, method and status.",
        );
        for (route, method, status, buckets, sum) in &rows {
            let labels = request_labels(route, method, *status);
            for (le, count) in BUCKETS_LE.iter().chain(["+Inf"].iter()).zip(buckets) {
                out.sample(
                    &format!("{name}_bucket"),
                    &format!("{labels},le=\"{le}\""),
                    count,
                );
            }
            out.sample(&format!("{name}_sum"), &labels, sum);
            out.sample(
                &format!("{name}_count"),
                &labels,
                buckets[buckets.len() - 1],
            );
        }
    }

    let pools = app.db.pool_use();
    out.family(
        "unchained_db_connections",
        "gauge",
        "Open database connections by pool (main: sqlx's; read: SQLite's read path) and state.",
    );
    for pool in &pools {
        for (state, count) in [("in_use", pool.in_use), ("idle", pool.idle)] {
            out.sample(
                "unchained_db_connections",
                &format!("pool=\"{}\",state=\"{state}\"", pool.name),
                count,
            );
        }
    }
    out.family(
        "unchained_db_connections_max",
        "gauge",
        "The most connections a pool opens.",
    );
    for pool in &pools {
        if let Some(max) = pool.max {
            out.sample(
                "unchained_db_connections_max",
                &format!("pool=\"{}\"", pool.name),
                max,
            );
        }
    }
    out.family(
        "unchained_db_errors_total",
        "counter",
        "Database errors that failed a request: unavailable (no connection: 503) or query (500).",
    );
    out.sample(
        "unchained_db_errors_total",
        "kind=\"unavailable\"",
        DATABASE_UNAVAILABLE.load(Ordering::Relaxed),
    );
    out.sample(
        "unchained_db_errors_total",
        "kind=\"query\"",
        DATABASE_QUERY_FAILED.load(Ordering::Relaxed),
    );

    let hashing = app.hashing.usage();
    let limits = app.hashing.limits();
    for (name, kind, help, value) in [
        (
            "unchained_hashing_running",
            "gauge",
            "Password hashes being computed.",
            hashing.running as u64,
        ),
        (
            "unchained_hashing_queued",
            "gauge",
            "Password hashes waiting for a thread.",
            hashing.queued as u64,
        ),
        (
            "unchained_hashing_threads",
            "gauge",
            "HASHING_THREADS: hashes computed at once.",
            limits.threads as u64,
        ),
        (
            "unchained_hashing_queue_limit",
            "gauge",
            "HASHING_QUEUE: hashes that may wait.",
            limits.queue as u64,
        ),
        (
            "unchained_hashing_refused_total",
            "counter",
            "Password hashes refused (queue full or wait too long): logins answered 503.",
            hashing.refused,
        ),
    ] {
        out.family(name, kind, help);
        out.sample(name, "", value);
    }

    let backend = app.settings.email.outbox_backend();
    match tokio::time::timeout(OUTBOX_WAIT, crate::db::outbox::waiting(&app.db, &backend)).await {
        Ok(Ok((waiting, oldest))) => {
            out.family(
                "unchained_outbox_waiting",
                "gauge",
                "Letters in the outbox not sent yet (those this instance's e-mail back end sends).",
            );
            out.sample("unchained_outbox_waiting", "", waiting);
            out.family(
                "unchained_outbox_oldest_waiting_seconds",
                "gauge",
                "Age of the oldest letter not sent yet (0 when none waits).",
            );
            out.sample(
                "unchained_outbox_oldest_waiting_seconds",
                "",
                oldest.unwrap_or(0.0).max(0.0),
            );
        }
        // Unknown: left out, as Prometheus wants.
        Ok(Err(e)) => tracing::warn!("metrics: cannot read the outbox: {e}"),
        Err(_) => tracing::warn!("metrics: the outbox query took over {OUTBOX_WAIT:?}"),
    }
    let counters = app.mailer.counters();
    out.family(
        "unchained_mail_sent_total",
        "counter",
        "Letters this process sent.",
    );
    out.sample("unchained_mail_sent_total", "", counters.sent());
    out.family(
        "unchained_mail_failed_total",
        "counter",
        "Attempts at sending a letter that failed (each is retried later).",
    );
    out.sample("unchained_mail_failed_total", "", counters.failed());

    if let Some(memory) = process_memory() {
        out.family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        out.sample("process_resident_memory_bytes", "", memory.resident);
        out.family(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
        );
        out.sample("process_virtual_memory_bytes", "", memory.virtual_size);
    }
    out.0
}

fn request_labels(route: &str, method: &str, status: u16) -> String {
    format!(
        "route=\"{}\",method=\"{method}\",status=\"{status}\"",
        escape(route)
    )
}

/// A label value as the format writes it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text being written.
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }
}

/// The process's memory, from `/proc/self/statm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMemory {
    pub resident: u64,
    pub virtual_size: u64,
}

/// `None` where there is no `/proc` (not Linux).
pub fn process_memory() -> Option<ProcessMemory> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    // SAFETY: sysconf only reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = u64::try_from(page).ok().filter(|&p| p > 0)?;
    parse_statm(&statm, page)
}

/// `size resident shared text lib data dt`, in pages.
fn parse_statm(statm: &str, page: u64) -> Option<ProcessMemory> {
    let mut fields = statm.split_ascii_whitespace();
    let size: u64 = fields.next()?.parse().ok()?;
    let resident: u64 = fields.next()?.parse().ok()?;
    Some(ProcessMemory {
        resident: resident.checked_mul(page)?,
        virtual_size: size.checked_mul(page)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_cumulative_buckets_per_series() {
        let metrics = RequestMetrics::default();
        let ms = Duration::from_millis;
        metrics.record("/", &Method::GET, 200, ms(0));
        metrics.record("/", &Method::GET, 200, ms(1));
        metrics.record("/", &Method::GET, 200, ms(30));
        metrics.record("/", &Method::GET, 200, Duration::from_secs(60));
        metrics.record("/", &Method::GET, 404, ms(3));
        metrics.record("/", &Method::from_bytes(b"BREW").unwrap(), 405, ms(3));
        metrics.record("/a/{pk}/", &Method::POST, 302, ms(3));
        let rows = metrics.snapshot();
        let keys: Vec<_> = rows.iter().map(|r| (r.0.as_str(), r.1, r.2)).collect();
        assert_eq!(
            keys,
            [
                ("/", "GET", 200),
                ("/", "GET", 404),
                ("/", "other", 405),
                ("/a/{pk}/", "POST", 302)
            ]
        );
        // 0 and 1 ms in le=0.001, 30 ms from le=0.05 on, 60 s only in +Inf.
        assert_eq!(rows[0].3, [2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 4]);
        assert!((rows[0].4 - 60.031).abs() < 1e-9, "{}", rows[0].4);
        assert_eq!(rows[1].3, [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn labels_are_escaped_and_routes_named_by_template() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(route_label(None, "/nothing/here"), UNMATCHED);
        assert_eq!(route_label(None, "/media/a.png"), "/media/{*path}");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
    }

    #[test]
    fn statm_is_read_in_pages() {
        assert_eq!(
            parse_statm("2000 300 100 10 0 500 0\n", 4096),
            Some(ProcessMemory {
                resident: 300 * 4096,
                virtual_size: 2000 * 4096
            })
        );
        assert_eq!(parse_statm("", 4096), None);
        let own = process_memory().expect("Linux has /proc/self/statm");
        assert!(own.resident > 1 << 20 && own.virtual_size >= own.resident);
    }
}
