//! Journey steps set aside in the dead-letter list (workflow `journeys`, item
//! `RUN/STEP`): an effect whose port kept failing with outages until its attempts ran
//! out ([`crate::effects`]). The run waits at the step, with no timer, until the item is
//! resumed ([`resume`]: its attempts start over and its timer is due now) or dismissed
//! ([`dismiss`]: the run ends, `exited`). Both need only the store, so the CLI does them
//! as well as the API; a serving engine picks a resumed run up from its timer.

use std::sync::atomic::Ordering;

use flywheel_store::dead_letters::{self, DeadLetterRow};
use flywheel_store::{timers, Store};
use serde_json::Value;

use crate::db::{self, RunRow, RunState};
use crate::definition::Journey;
use crate::effects::effect_key;
use crate::engine::Engine;
use crate::ports::DeadLettered;

/// The workflow's name in the dead-letter list, alerts and metrics.
pub const WORKFLOW: &str = "journeys";

/// What resuming or dismissing a listed step came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done: the item left the list.
    Done,
    /// The run had ended meanwhile (stopped, converted): the item left the list and
    /// nothing else changed.
    RunEnded,
    /// No such item of this workflow.
    NotFound,
}

impl Engine {
    /// Sets step `step` of `run` aside: the run (with its attempts counted) stays at the
    /// step without a timer, the step is listed in the dead-letter list, an alert is
    /// raised. Nothing is listed when the run ended meanwhile.
    pub(crate) async fn set_aside(
        &self,
        journey: &Journey,
        run: RunRow,
        step: &str,
        error: String,
    ) -> crate::Result<()> {
        let now = self.now();
        let attempts = crate::effects::attempts(&run, step);
        let row = DeadLetterRow {
            id: 0,
            workflow: WORKFLOW.into(),
            item: effect_key(&run.id, step),
            seq: None,
            message_id: None,
            user_id: Some(run.user_id.clone()),
            error: format!("journey {} step {step}: {error}", journey.name),
            attempts: i64::from(attempts),
            first_failed_at: now,
            last_failed_at: now,
        };
        let saved = run.clone();
        let id = self
            .0
            .store
            .write_with(move |c| {
                if !db::update_run(c, &saved, now)? {
                    return Ok(None);
                }
                timers::complete(c, &saved.id)?;
                dead_letters::record(c, &row).map(Some)
            })
            .await?;
        let Some(id) = id else { return Ok(()) };
        self.0.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        let d = DeadLettered {
            id,
            journey: journey.name.clone(),
            run: run.id.clone(),
            step: step.to_string(),
            user: run.user_id.clone(),
            attempts,
            error,
        };
        tracing::error!(id, journey = %d.journey, run = %d.run, step = %d.step, attempts, error = %d.error,
            "journey step set aside in the dead-letter list (flywheel dead-letters retry {id})");
        if let Some(alerts) = &self.0.services.alerts {
            if let Err(e) = alerts.dead_lettered(&d).await {
                tracing::warn!(error = %e, "could not raise the dead-letter alert");
            }
        }
        Ok(())
    }
}

/// The run and step of an item, and the run if it is still in progress.
fn listed(
    c: &mut dyn flywheel_store::conn::Conn,
    id: i64,
) -> flywheel_store::Result<Option<(String, Option<RunRow>)>> {
    let Some(row) = dead_letters::get(c, id)?.filter(|r| r.workflow == WORKFLOW) else {
        return Ok(None);
    };
    let Some((run_id, step)) = row.item.split_once('/') else {
        return Ok(Some((String::new(), None)));
    };
    let run = db::run(c, run_id)?.filter(|r| r.state.in_progress());
    Ok(Some((step.to_string(), run)))
}

/// Resumes listed step `id` at `now` (ms): its attempts start over and its run's timer is
/// due now; it leaves the list. A step that fails again is listed again.
pub async fn resume(store: &Store, id: i64, now: i64) -> flywheel_store::Result<Handled> {
    store
        .write_with(move |c| {
            let Some((step, run)) = listed(c, id)? else {
                return Ok(Handled::NotFound);
            };
            dead_letters::remove(c, id)?;
            let Some(mut run) = run else {
                return Ok(Handled::RunEnded);
            };
            if let Some(Value::Object(a)) = run.context.get_mut("attempts") {
                a.remove(&step);
            }
            db::update_run(c, &run, now)?;
            if !timers::schedule(c, &run.id, now, "", now)? {
                timers::reschedule(c, &run.id, now)?;
            }
            Ok(Handled::Done)
        })
        .await
}

/// Dismisses listed step `id` at `now` (ms): the run ends (`exited`, its path noting
/// `dismissed`) without doing the step; it leaves the list.
pub async fn dismiss(store: &Store, id: i64, now: i64) -> flywheel_store::Result<Handled> {
    store
        .write_with(move |c| {
            let Some((_, run)) = listed(c, id)? else {
                return Ok(Handled::NotFound);
            };
            dead_letters::remove(c, id)?;
            let Some(mut run) = run else {
                return Ok(Handled::RunEnded);
            };
            crate::walk::push_path(&mut run, "dismissed");
            run.state = RunState::Exited;
            run.wait_event = None;
            run.wait_until = None;
            run.ended_at = Some(now);
            db::update_run(c, &run, now)?;
            timers::complete(c, &run.id)?;
            Ok(Handled::Done)
        })
        .await
}
