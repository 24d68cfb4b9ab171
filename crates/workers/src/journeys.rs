//! The journey engine's loops as services: due timers ([`JourneyTimers`]), the event
//! tail ([`JourneyTail`]), the definitions and schedules refresher ([`JourneyRefresh`])
//! and the segment/tag transitions log ([`JourneyTransitions`]). The engine
//! does the work ([`flywheel_journeys::loops`]); these only pace it. Another loop of the
//! engine becomes one more small service here.

use std::sync::Arc;
use std::time::Duration;

use flywheel_core::bus::{Bus, DomainEvent};
use flywheel_core::health::LagUnit;
use flywheel_journeys::Engine;
use tokio::sync::broadcast;

use crate::service::{Ctx, Failure, Next, Pace, Service};

/// Fires due journey timers with `[journeys] workers` claims in parallel.
pub struct JourneyTimers(pub Engine);

impl Service for JourneyTimers {
    fn name(&self) -> &'static str {
        "journey_timers"
    }

    fn pace(&self) -> Pace {
        Pace::every(Duration::from_secs(1)).woken_by(self.0.timers_signal())
    }

    async fn run_once(&mut self, _: &Ctx) -> Result<Next, Failure> {
        let mut claims = tokio::task::JoinSet::new();
        for _ in 0..self.0.config().workers.max(1) {
            let e = self.0.clone();
            claims.spawn(async move { e.fire_due().await });
        }
        let mut fired = 0;
        let mut failed = None;
        while let Some(done) = claims.join_next().await {
            match done {
                Ok(Ok(n)) => fired += n,
                Ok(Err(e)) => failed = Some(Failure::from(e)),
                Err(e) => failed = Some(Failure::from(e)),
            }
        }
        if let Some(f) = failed {
            return Err(f);
        }
        if fired > 0 {
            tracing::debug!(fired, "journey timers fired");
            return Ok(Next::Now);
        }
        Ok(Next::Within(self.0.next_timer_wait().await))
    }
}

/// Reads the event log behind the journeys' cursor: triggers, waits, goals.
pub struct JourneyTail(pub Engine);

impl Service for JourneyTail {
    fn name(&self) -> &'static str {
        "journey_tail"
    }

    fn pace(&self) -> Pace {
        Pace::every(Duration::from_millis(500))
            .woken_by(self.0.events_signal())
            .lag_in(LagUnit::Events)
    }

    async fn run_once(&mut self, ctx: &Ctx) -> Result<Next, Failure> {
        let read = self.0.tail_once().await?;
        ctx.set_lag(u64::try_from(self.0.event_lag().await?).unwrap_or(0));
        Ok(if read > 0 { Next::Now } else { Next::Wait })
    }
}

/// Re-reads journey definitions and keeps schedule timers in place, every second.
pub struct JourneyRefresh(pub Engine);

impl Service for JourneyRefresh {
    fn name(&self) -> &'static str {
        "journey_refresh"
    }

    fn pace(&self) -> Pace {
        Pace::every(Duration::from_secs(1))
    }

    async fn run_once(&mut self, _: &Ctx) -> Result<Next, Failure> {
        self.0.refresh().await?;
        Ok(Next::Wait)
    }
}

/// Enters users into segment- and tag-triggered journeys from the durable transitions
/// log, behind the journeys' stored cursor. A message on the bus (the audience publishes
/// each transition after logging it) only wakes it early; it also polls.
pub struct JourneyTransitions {
    engine: Engine,
    rx: broadcast::Receiver<Arc<DomainEvent>>,
}

/// How often the transitions log is looked at when nothing wakes the tail.
const TRANSITIONS_POLL: Duration = Duration::from_millis(200);

impl JourneyTransitions {
    /// Follows the log, woken by any message on `bus`.
    pub fn new(engine: Engine, bus: &dyn Bus) -> Self {
        JourneyTransitions {
            engine,
            rx: bus.subscribe(),
        }
    }
}

impl Service for JourneyTransitions {
    fn name(&self) -> &'static str {
        "journey_transitions"
    }

    fn pace(&self) -> Pace {
        Pace::every(Duration::ZERO).lag_in(LagUnit::Events)
    }

    async fn run_once(&mut self, ctx: &Ctx) -> Result<Next, Failure> {
        let read = self.engine.tail_transitions_once().await?;
        ctx.set_lag(u64::try_from(self.engine.transition_lag().await?).unwrap_or(0));
        if read > 0 {
            return Ok(Next::Now);
        }
        // Nothing to read: wait for a wake-up (any message; a lagged receiver is one too)
        // or the next poll.
        let woke = ctx
            .shutdown
            .or_stop(tokio::time::timeout(TRANSITIONS_POLL, self.rx.recv()))
            .await;
        if let Some(Ok(Err(broadcast::error::RecvError::Closed))) = woke {
            // No bus any more (the process is stopping): poll only.
            let _ = ctx.shutdown.or_stop(tokio::time::sleep(TRANSITIONS_POLL)).await;
        }
        Ok(Next::Now)
    }
}

/// Starts every loop of the (prepared) journey engine as a service of `workers`,
/// transitions read from `bus`. The tails follow one stored cursor each: with several
/// processes (`singletons`) one process at a time runs them; timers are claimed one by
/// one, so every process fires them.
pub fn spawn(
    workers: &mut crate::Workers,
    engine: &Engine,
    bus: &dyn Bus,
    singletons: Option<&crate::singleton::Singletons>,
) {
    workers.spawn(JourneyTimers(engine.clone()));
    workers.spawn(JourneyRefresh(engine.clone()));
    workers.spawn_single(JourneyTail(engine.clone()), singletons);
    workers.spawn_single(JourneyTransitions::new(engine.clone(), bus), singletons);
}
