//! Services that must run in one process at a time among several on one store: the
//! journeys' event and transitions tails and the order rewards (each follows one stored
//! cursor: two readers would do the same work twice, each effect finding the other's
//! key), and the periodic jobs whose output must not double (guardrail and review
//! alerts, the CLV refresh, the loyalty daily jobs, group-buy expiry, the flash-sale
//! hold release).
//!
//! [`Leased`] runs its service only while this process holds the service's lease in the
//! store ([`flywheel_store::leases`]); another process stands by and takes over once the
//! lease lapses (its holder died or lost the database). Effects stay idempotent, so the
//! moment two holders could overlap — a holder stalled longer than the lease — costs
//! repeated work, never a repeated effect. The embedded mode (one process) runs
//! services without it.

use std::time::{Duration, Instant};

use flywheel_store::Store;

use crate::service::{Ctx, Failure, Next, Pace, Service};

/// How long a claim lasts; renewed at a fifth of it.
const TTL: Duration = Duration::from_secs(10);

/// What wraps services in leases in one process: the store and this process's id.
#[derive(Debug, Clone)]
pub struct Singletons {
    /// Where the leases are kept.
    pub store: Store,
    /// This process's id among the processes on the store.
    pub holder: String,
}

impl Singletons {
    /// `service` run under its lease `service.<name>`.
    pub fn wrap<S: Service>(&self, service: S) -> Leased<S> {
        Leased {
            lease: format!("service.{}", service.name()),
            inner: service,
            store: self.store.clone(),
            holder: self.holder.clone(),
            claimed_at: None,
            held: false,
        }
    }
}

/// A service run only while this process holds its lease.
pub struct Leased<S> {
    inner: S,
    store: Store,
    lease: String,
    holder: String,
    claimed_at: Option<Instant>,
    held: bool,
}

impl<S: Service> Leased<S> {
    /// Claims or renews the lease when a fifth of it has passed since the last claim.
    async fn keep_lease(&mut self) -> Result<bool, Failure> {
        if self.claimed_at.is_some_and(|t| t.elapsed() < TTL / 5) {
            return Ok(self.held);
        }
        let now = flywheel_core::time::to_millis(chrono::Utc::now());
        let ttl = i64::try_from(TTL.as_millis()).unwrap_or(10_000);
        let (lease, holder) = (self.lease.clone(), self.holder.clone());
        let claimed = self
            .store
            .write_with(move |c| flywheel_store::leases::claim(c, &lease, &holder, now, ttl))
            .await;
        self.claimed_at = Some(Instant::now());
        let held = match claimed {
            Ok(h) => h,
            Err(e) => {
                self.held = false;
                return Err(e.into());
            }
        };
        if held != self.held {
            tracing::info!(service = self.inner.name(), held, "service lease changed hands");
        }
        self.held = held;
        Ok(held)
    }
}

impl<S: Service> Service for Leased<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn pace(&self) -> Pace {
        self.inner.pace()
    }

    async fn run_once(&mut self, ctx: &Ctx) -> Result<Next, Failure> {
        if !self.keep_lease().await? {
            // Standing by: look again when the holder's lease could have lapsed.
            return Ok(Next::Within(TTL / 5));
        }
        self.inner.run_once(ctx).await
    }
}
