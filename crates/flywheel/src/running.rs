//! A running server and its graceful stop: on SIGTERM or SIGINT it stops accepting,
//! finishes in-flight requests, commits everything acknowledged, logs the last segment and
//! tag transitions, lets the order rewards catch up, stops every background service with the one shutdown signal and closes the
//! store — all within [`SHUTDOWN_DEADLINE`].

use std::net::SocketAddr;

use anyhow::{Context, Result};
use flywheel_ingest::Pipeline;
use flywheel_store::Store;
use flywheel_workers::order_rewards::CatchUp;
use flywheel_workers::Workers;
use tokio::sync::watch;

/// A running server.
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub(crate) pipeline: Pipeline,
    /// Where the order rewards stand (worker processes only).
    pub(crate) order_rewards: Option<CatchUp>,
    pub(crate) audience: flywheel_audience::Audience,
    pub(crate) workers: Workers,
    pub(crate) store: Store,
}

/// How long a graceful stop may take before the process stops anyway.
pub const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(12);

/// How long a graceful stop waits for the last segment and tag transitions to be logged.
const TRANSITIONS_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a graceful stop waits for the order rewards to catch up with the log.
const ORDER_REWARDS_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(10);

/// What a graceful stop keeps for closing the store after the workers.
const CLOSE_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

impl RunningServer {
    /// Waits for SIGTERM/SIGINT, then shuts down gracefully within
    /// [`SHUTDOWN_DEADLINE`]; past it, or at a second signal, it stops at once (what was
    /// acknowledged is durable; unfinished requests are retried by their clients, and
    /// unapplied order rewards and timers are taken up at the next start).
    pub async fn run_until_signal(self) -> Result<()> {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        tokio::select! {
            done = tokio::time::timeout(SHUTDOWN_DEADLINE, self.shutdown()) => match done {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(deadline_s = SHUTDOWN_DEADLINE.as_secs(), "stopping before in-flight work finished: the shutdown deadline passed");
                    Ok(())
                }
            },
            () = wait_for_signal() => {
                tracing::warn!("second signal: stopping at once");
                Ok(())
            }
        }
    }

    /// Stops accepting, finishes in-flight requests, commits every queued batch and gives
    /// the order rewards (points, referral rewards) up to 10 s to catch up with them;
    /// what they have not reached is applied after the next start. Then the one shutdown
    /// signal stops every background service (each finishes the run in hand, within the
    /// deadline). Last, the store is closed: SQLite's WAL is checkpointed into the
    /// database and truncated.
    pub async fn shutdown(self) -> Result<()> {
        let began = std::time::Instant::now();
        let _ = self.stop.send(true);
        self.task.await.context("server task")?.context("server")?;
        self.pipeline.shutdown().await;
        // The transitions computed from the last batches are logged (what is not, the next
        // start's reconciliation finds).
        if tokio::time::timeout(TRANSITIONS_FLUSH, self.audience.flush())
            .await
            .is_err()
        {
            tracing::info!(
                "stopped before every segment and tag transition was logged; the next start logs the rest"
            );
        }
        let left = match &self.order_rewards {
            Some(at) => at.wait(ORDER_REWARDS_CATCH_UP).await,
            None => 0,
        };
        if left > 0 {
            tracing::info!(
                events = left,
                "stopped before the order rewards (points, referral rewards) caught up; the next start applies the rest"
            );
        }
        let remaining = SHUTDOWN_DEADLINE
            .saturating_sub(began.elapsed())
            .saturating_sub(CLOSE_MARGIN);
        let late = self.workers.shutdown(remaining).await;
        if !late.is_empty() {
            tracing::warn!(services = ?late, "stopping without waiting for these services' runs in hand");
        }
        // Nothing commits any more: the engine's state is saved with the log position it
        // stands at, so the next start loads it instead of rebuilding.
        if let Err(e) = self.audience.save_snapshot().await {
            tracing::warn!(error = %e, "saving the audience snapshot failed; the next start rebuilds");
        }
        if let Err(e) = self.store.close().await {
            tracing::warn!(error = %e, "closing the store failed; the next start checkpoints the WAL");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
