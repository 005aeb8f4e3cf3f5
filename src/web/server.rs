//! The accept loop: HTTP/1.1 connections with the limits a server facing
//! the internet needs and `axum::serve` does not offer: a request head must
//! arrive within a time limit, an idle keep-alive connection is closed, at
//! most so many connections are open at once (more wait in the kernel's
//! backlog), and a shutdown waits a grace period for the requests under way
//! and then closes what is left, so SIGTERM always ends the process.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::ConnectionLimits;

/// How often a connection looks at its clocks.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// Serves `router` on `listener` until `shutdown` resolves, then lets the
/// requests under way finish for at most `limits.grace` and closes the rest.
/// Handlers find the client's address as axum's `ConnectInfo<SocketAddr>`.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // A slot first: past the cap, new connections wait in the backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, router, limits, stop).await;
            drop(slot);
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            "waiting up to {} s for {open} open connections",
            limits.grace.as_secs()
        );
    }
    let finished = tokio::time::timeout(limits.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            "closing {} connections still open after the grace period",
            connections.len()
        );
        connections.shutdown().await;
    }
}

/// One connection: hyper's HTTP/1.1 with a watchdog that closes it when a
/// request head takes too long or it sits idle past the keep-alive time.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let clock = Arc::new(Clock::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        clock: clock.clone(),
    });
    let service = {
        let clock = clock.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let mut router = router.clone();
            let busy = clock.busy();
            request.extensions_mut().insert(ConnectInfo(peer));
            async move {
                let response = tower::Service::call(&mut router, request.map(Body::new)).await;
                drop(busy);
                response
            }
        })
    };
    let mut connection = pin!(hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service));
    let mut stopping = *stop.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    let mut watch = tokio::time::interval(WATCH_EVERY);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection from {peer} ended: {e}");
                }
                return;
            }
            _ = watch.tick() => {
                if let Some(reason) = clock.overdue(&limits) {
                    tracing::debug!("closing the connection from {peer}: {reason}");
                    return;
                }
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    // Finish the request under way; an idle connection closes now.
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// What a connection's watchdog knows: when bytes last moved, whether a
/// request is being handled, and when the head now arriving began.
struct Clock {
    opened: Instant,
    /// Milliseconds since `opened` (0: never).
    last_io: AtomicU64,
    /// When the first byte of a head arrived while no request was handled
    /// (0: no head is arriving).
    head_began: AtomicU64,
    /// Requests being handled (more than one only when pipelined).
    busy: AtomicUsize,
    /// Requests answered so far.
    answered: AtomicU64,
}

/// Marks a request handled while it lives.
struct Busy(Arc<Clock>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.last_io.store(self.0.now(), Ordering::Relaxed);
        self.0.answered.fetch_add(1, Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Clock {
    fn new() -> Clock {
        Clock {
            opened: Instant::now(),
            last_io: AtomicU64::new(0),
            head_began: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            answered: AtomicU64::new(0),
        }
    }

    /// Milliseconds since the connection opened, at least 1 (0 means never).
    fn now(&self) -> u64 {
        (self.opened.elapsed().as_millis() as u64).max(1)
    }

    fn busy(self: &Arc<Clock>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_began.store(0, Ordering::Relaxed);
        Busy(self.clone())
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.busy.load(Ordering::Acquire) == 0 {
            let _ = self
                .head_began
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// Why the connection should close now, if it should. A request being
    /// handled is never cut here (its body has a stall limit of its own);
    /// a head must be whole within the header timeout of its first byte,
    /// and of the connection's opening for the first request; between
    /// requests the keep-alive time applies.
    fn overdue(&self, limits: &ConnectionLimits) -> Option<&'static str> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now();
        let since = |ms: u64| Duration::from_millis(now.saturating_sub(ms));
        let head_began = self.head_began.load(Ordering::Relaxed);
        if head_began != 0 {
            return (since(head_began) > limits.header_timeout)
                .then_some("the request head took too long");
        }
        if self.answered.load(Ordering::Relaxed) == 0 {
            return (since(0) > limits.header_timeout).then_some("no request arrived");
        }
        (since(self.last_io.load(Ordering::Relaxed)) > limits.keepalive)
            .then_some("idle past the keep-alive time")
    }
}

/// A TCP stream that tells its connection's [`Clock`] when bytes move.
struct Watched {
    inner: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
