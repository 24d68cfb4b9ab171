//! Serving the router over TCP with hyper's HTTP/1 connection directly (not
//! `axum::serve`, which sets no timeouts): a cap on connections served at once, a time
//! limit for each request head (which is also how long an idle keep-alive connection
//! stays open), a bounded read buffer per connection, and a graceful shutdown that lets
//! in-flight requests finish for a bounded time.
//!
//! Request bodies are bounded separately, by the handlers that read them
//! ([`crate::body`]). One task per connection; the accept loop stops taking connections
//! while [`ConnectionLimits::max_connections`] are open (the rest wait in the kernel's
//! listen backlog).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_layer::Layer;

/// Default of [`ConnectionLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Default of [`ConnectionLimits::header_timeout`]: 10 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`ConnectionLimits::max_header_bytes`]: 32 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
/// The smallest [`ConnectionLimits::max_header_bytes`] hyper accepts.
pub const MIN_HEADER_BYTES: usize = 8192;

/// Limits of the connections the server keeps.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections served at once; further ones wait in the listen backlog until one
    /// closes.
    pub max_connections: usize,
    /// Time a connection has to send a complete request head, counted from when it opens
    /// or from its previous response; a connection idle that long is closed.
    pub header_timeout: Duration,
    /// Largest request head in bytes, which is also the most a connection's read buffer
    /// grows to (at least [`MIN_HEADER_BYTES`]).
    pub max_header_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests before closing their
    /// connections (5 s: the whole stop, queued batches and order hooks included, has 12 s).
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and
/// waits (at most [`ConnectionLimits::shutdown_grace`]) for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = open.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Handlers see the client's address (the admin rate of requests without a token).
        let service =
            TowerToHyperService::new(axum::Extension(axum::extract::ConnectInfo(peer)).layer(router.clone()));
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            secs = limits.shutdown_grace.as_secs(),
            "requests still in flight after the shutdown grace period; closing their connections"
        );
    }
}

/// A failed accept: a connection that went away before it was taken is nothing; out of
/// file descriptors (or anything else) waits a moment rather than spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::ConnectionRefused | K::Interrupted
    ) {
        return;
    }
    tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
