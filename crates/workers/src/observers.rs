//! What the ingest pipeline tells others when a batch is committed: the audience engine
//! takes the batch, the journey engine and the order-rewards service are woken (they
//! read the log behind their own cursors). Observers never block the ingest writer.

use std::ops::Range;
use std::sync::Arc;

use flywheel_audience::Audience;
use flywheel_ingest::pipeline::CommitObserver;
use flywheel_store::{ApplyOutcome, NewEvent};

/// Several observers as one.
pub struct Observers(pub Vec<Arc<dyn CommitObserver>>);

impl CommitObserver for Observers {
    fn committed(&self, events: &Arc<Vec<NewEvent>>, range: Range<usize>, outcome: &ApplyOutcome) {
        for o in &self.0 {
            o.committed(events, range.clone(), outcome);
        }
    }
}

/// Hands every committed batch to the audience engine.
pub struct AudienceObserver(pub Audience);

impl CommitObserver for AudienceObserver {
    fn committed(&self, events: &Arc<Vec<NewEvent>>, range: Range<usize>, outcome: &ApplyOutcome) {
        self.0.observe(events, range, outcome);
    }
}

/// Tells the journey engine that events were committed (its tail reads them from the
/// store behind its own cursor; this only wakes it). Set once the engine exists.
#[derive(Default)]
pub struct JourneyObserver(pub std::sync::OnceLock<flywheel_journeys::Engine>);

impl CommitObserver for JourneyObserver {
    fn committed(&self, _: &Arc<Vec<NewEvent>>, _: Range<usize>, outcome: &ApplyOutcome) {
        if outcome.inserted > 0 {
            if let Some(e) = self.0.get() {
                e.events_committed();
            }
        }
    }
}

/// Tells the other processes on the bus that the shared log advanced (`log.advanced`),
/// so their audience engines and journey tails read it at once instead of at their next
/// poll.
pub struct LogAdvanced(pub Arc<dyn flywheel_core::bus::Bus>);

impl CommitObserver for LogAdvanced {
    fn committed(&self, _: &Arc<Vec<NewEvent>>, _: Range<usize>, outcome: &ApplyOutcome) {
        if let Some(seq) = outcome.last_seq {
            self.0.publish(flywheel_core::bus::DomainEvent::LogAdvanced(
                flywheel_core::bus::LogAdvanced { seq },
            ));
        }
    }
}

/// Wakes the journeys' event tail when another process says the shared log advanced
/// (it also polls, so a lost message only delays it).
pub fn wake_on_remote_commits(bus: &dyn flywheel_core::bus::Bus, engine: flywheel_journeys::Engine) {
    let mut rx = bus.subscribe();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) if matches!(*e, flywheel_core::bus::DomainEvent::LogAdvanced(_)) => {
                    engine.events_committed();
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}
