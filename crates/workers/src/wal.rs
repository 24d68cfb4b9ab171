//! WAL maintenance as a service: the SQLite write-ahead log is checkpointed and bounded
//! by the store's own checkpointer thread (its rules stay the store's); this service
//! watches it every second and reports it. Its lag is the WAL's bytes past the
//! truncation trigger; a WAL past its bound, or a checkpointer that stopped, is a
//! failure shown on `/metrics` and `/readyz`. Not run on PostgreSQL.

use std::time::Duration;

use flywheel_core::health::LagUnit;
use flywheel_store::Store;

use crate::service::{Ctx, Failure, Next, Pace, Service};

/// Watches the SQLite WAL and its checkpointer.
pub struct WalWatch(Store);

impl WalWatch {
    /// The service, or `None` when `store` has no WAL (PostgreSQL).
    pub fn new(store: Store) -> Option<Self> {
        store.wal_health().map(|_| WalWatch(store))
    }
}

impl Service for WalWatch {
    fn name(&self) -> &'static str {
        "wal"
    }

    fn pace(&self) -> Pace {
        Pace::every(Duration::from_secs(1))
            .lag_in(LagUnit::Bytes)
            .max_backoff(Duration::from_secs(1))
    }

    async fn run_once(&mut self, ctx: &Ctx) -> Result<Next, Failure> {
        let Some(w) = self.0.wal_health() else {
            return Ok(Next::Wait);
        };
        ctx.set_lag(w.bytes.saturating_sub(w.trigger));
        if !w.checkpointer_running {
            return Err(Failure::new("the WAL checkpointer is not running"));
        }
        if w.bytes > w.bound {
            return Err(Failure(format!(
                "the WAL is {} bytes, over its bound of {} bytes: a reader holds an old snapshot",
                w.bytes, w.bound
            )));
        }
        Ok(Next::Wait)
    }
}
