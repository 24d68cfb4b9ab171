//! The engine's loops as steps for an outside runner (the server's workers): each loop
//! of [`Engine::start`] is one step here — fire due timers ([`Engine::fire_due`]), read
//! the next events ([`Engine::tail_once`]), refresh definitions and schedules
//! ([`Engine::refresh`]), follow the transitions log
//! ([`Engine::tail_transitions_once`]) — with the
//! signals that say when to run the next one. The runner owns the waiting, the backoff
//! and the shutdown; the engine only does the work.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::engine::Engine;

impl Engine {
    /// One step of the definitions refresher: re-reads journeys (other processes and the
    /// CLI change them) and makes sure every active schedule or date journey has its timer.
    pub async fn refresh(&self) -> crate::Result<()> {
        self.reload().await?;
        self.ensure_schedules().await
    }

    /// How long the timer step may wait before it looks again: until the next timer is
    /// due, at most a second.
    pub async fn next_timer_wait(&self) -> Duration {
        self.sleep_until_next_due().await
    }

    /// Notified when timers became due early (a run entered or woke, a schedule was
    /// added): the timer step should run.
    pub fn timers_signal(&self) -> Arc<Notify> {
        self.0.timers_due.clone()
    }

    /// Notified when events were committed: the event-tail step should run.
    pub fn events_signal(&self) -> Arc<Notify> {
        self.0.events_arrived.clone()
    }

    /// How many events of the log the event tail has yet to look at.
    pub async fn event_lag(&self) -> crate::Result<i64> {
        let lag = self
            .0
            .store
            .read_with(|c| {
                let last = crate::db::last_event_seq(c)?;
                Ok(crate::db::event_cursor(c)?.map_or(0, |at| (last - at).max(0)))
            })
            .await?;
        Ok(lag)
    }

    /// How many transitions of the log the transitions tail has yet to look at.
    pub async fn transition_lag(&self) -> crate::Result<i64> {
        let lag = self
            .0
            .store
            .read_with(|c| flywheel_store::transitions::lag(c, crate::transitions::CONSUMER))
            .await?;
        Ok(lag)
    }
}
