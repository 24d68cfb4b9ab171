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
