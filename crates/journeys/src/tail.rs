//! Reacting to what users do (issue 6 §1): the event log is read in `seq` order behind
//! a stored cursor, and each event, in the transaction that moves the cursor past it,
//! resumes runs waiting for it, marks goals reached, and enters event-triggered
//! journeys. Segment and tag triggers follow the transitions log the same way
//! ([`crate::transitions`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use flywheel_core::Identity;
use flywheel_store::conn::Conn;
use flywheel_store::timers;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::db::{self, RunRow, RunState, Status};
use crate::definition::{Action, Journey, Trigger};
use crate::engine::{AudienceProbe, Engine};
use crate::walk::{self, Park};

/// Events read per transaction.
const TAIL_BATCH: i64 = 1_000;

/// Why an entry did or did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// A run started.
    Entered,
    /// This trigger already entered (a replay).
    Duplicate,
    /// Refused: `once`, `in_progress`, `cooldown`, `audience`, `max_active`.
    Refused(&'static str),
}

/// A run id: the journey and the trigger occurrence, hashed (so a replayed trigger
/// finds its run).
pub fn run_id(journey: &str, trigger: &str) -> String {
    let mut h = Sha256::new();
    h.update((journey.len() as u64).to_le_bytes());
    h.update(journey.as_bytes());
    h.update(trigger.as_bytes());
    h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The business key of a keyed journey, read from event properties (text or number).
pub fn key_of(properties: &Value, path: &str) -> Option<String> {
    match crate::definition::lookup(properties, path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What an entry needs besides the connection.
pub(crate) struct EntryCtx<'a> {
    pub journey: &'a Journey,
    pub version: i64,
    pub tz: chrono_tz::Tz,
    pub now: i64,
}

/// Enters `user` (with `key`) into a journey for the trigger occurrence `trigger`,
/// applying the entry policy, audience and concurrency limit, and walks the new run to
/// its first wait or effect at once (so a run that starts by waiting for an event is
/// waiting before the next event is read).
pub(crate) fn enter(
    c: &mut dyn Conn,
    ctx: &EntryCtx<'_>,
    user: &str,
    key: &str,
    trigger: &str,
    context: Value,
    probe: &AudienceProbe,
) -> flywheel_store::Result<Entry> {
    let j = ctx.journey;
    let id = run_id(&j.name, trigger);
    if db::run(c, &id)?.is_some() {
        return Ok(Entry::Duplicate);
    }
    let history = db::entry_history(c, &j.name, user, key)?;
    match j.entry {
        crate::definition::EntryPolicy::Once if history.any => return Ok(Entry::Refused("once")),
        _ if history.running => return Ok(Entry::Refused("in_progress")),
        crate::definition::EntryPolicy::Cooldown(span)
            if history
                .latest
                .is_some_and(|l| ctx.now.saturating_sub(l) < span.millis()) =>
        {
            return Ok(Entry::Refused("cooldown"))
        }
        _ => {}
    }
    if let Some(a) = &j.audience {
        if !walk::Probe::holds(probe, a) {
            return Ok(Entry::Refused("audience"));
        }
    }
    if let Some(max) = j.max_active {
        if db::active_runs(c, &j.name)? >= i64::try_from(max).unwrap_or(i64::MAX) {
            return Ok(Entry::Refused("max_active"));
        }
    }
    let mut run = RunRow {
        id,
        journey: j.name.clone(),
        version: ctx.version,
        user_id: user.to_string(),
        key: key.to_string(),
        step: 0,
        state: RunState::Active,
        wait_event: None,
        wait_until: None,
        path: String::new(),
        context,
        entered_at: ctx.now,
        ended_at: None,
        converted_at: None,
    };
    let park = walk::walk(j, &mut run, ctx.now, ctx.tz, probe);
    db::insert_run(c, &run, ctx.now)?;
    match park {
        Park::Wait { until, .. } => {
            timers::schedule(c, &run.id, until, "", ctx.now)?;
        }
        Park::Effect(_) => {
            timers::schedule(c, &run.id, ctx.now, "", ctx.now)?;
        }
        Park::End(_) => {}
    }
    Ok(Entry::Entered)
}

/// What the tail needs to know of the definitions, taken once per batch.
struct TailView {
    /// The definitions the view was made from (see [`Engine::still_current`]).
    fingerprint: crate::engine::Fingerprint,
    versions: HashMap<(String, i64), Arc<Journey>>,
    event_triggers: Vec<(i64, Arc<Journey>)>,
    goals: Vec<Arc<Journey>>,
    awaited: BTreeSet<String>,
}

impl Engine {
    fn tail_view(&self) -> crate::Result<TailView> {
        let defs = self.0.defs.read().map_err(|_| crate::Error::Poisoned)?;
        let versions = defs.versions_map();
        let mut awaited = BTreeSet::new();
        for j in versions.values() {
            awaited.extend(j.awaited_events().into_iter().map(String::from));
        }
        let event_triggers = defs
            .active()
            .filter(|(_, j)| matches!(j.trigger, Trigger::Event(_)))
            .map(|(r, j)| (r.version, j.clone()))
            .collect();
        let goals = defs
            .current
            .values()
            .filter(|(r, j)| j.goal.is_some() && r.status != Status::Draft)
            .map(|(_, j)| j.clone())
            .collect();
        Ok(TailView {
            fingerprint: defs.fingerprint(),
            versions,
            event_triggers,
            goals,
            awaited,
        })
    }

    pub(crate) async fn tail_loop(&self) {
        while !self.0.stopping.load(Ordering::Relaxed) {
            match self.tail_once().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "journey event tail failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            tokio::select! {
                _ = self.0.events_arrived.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Reads the next events after the cursor and reacts to them; returns how many
    /// events were read.
    pub async fn tail_once(&self) -> crate::Result<usize> {
        let view = self.tail_view()?;
        let now = self.now();
        let tz = self.0.config.timezone;
        let engine = self.clone();
        let done = self
            .0
            .store
            .write_with(move |c| {
                if db::fingerprint(c)? != view.fingerprint {
                    return Ok(None);
                }
                let cursor = db::event_cursor(c)?.unwrap_or(0);
                let (events, last) = db::events_after(c, cursor, TAIL_BATCH)?;
                let (mut entered, mut refused, mut woke) = (0u64, 0u64, 0u64);
                for ev in &events {
                    // A browser's or app's "order" is behaviour only: it neither starts,
                    // wakes nor completes a journey (docs/ingest.md, trust boundary).
                    if ev.from_client && flywheel_core::commerce::is_commerce_fact(&ev.name) {
                        continue;
                    }
                    let body: Value = serde_json::from_str(&ev.body).unwrap_or(Value::Null);
                    let props = body.get("properties").cloned().unwrap_or_else(|| json!({}));
                    if view.awaited.contains(&ev.name) {
                        woke += resume_waiting(c, &view, &ev.name, &ev.user_id, &props, now)?;
                    }
                    for j in &view.goals {
                        reach_goal(c, j, &ev.name, &ev.user_id, &props, now)?;
                    }
                    for (version, j) in &view.event_triggers {
                        let Trigger::Event(m) = &j.trigger else { continue };
                        if !m.matches(&ev.name, &props) {
                            continue;
                        }
                        let key = match &j.key {
                            Some(path) => match key_of(&props, path) {
                                Some(k) => k,
                                None => continue,
                            },
                            None => String::new(),
                        };
                        let profile =
                            flywheel_store::read::profile_id_of(c, &Identity::User(ev.user_id.clone()))?
                                .map(|p| p.0);
                        let probe = engine.probe(profile.clone());
                        let context = json!({
                            "profile_id": profile,
                            "event": props,
                            "event_name": ev.name,
                            "trigger_message_id": ev.message_id,
                        });
                        let ctx = EntryCtx {
                            journey: j,
                            version: *version,
                            tz,
                            now,
                        };
                        match enter(c, &ctx, &ev.user_id, &key, &ev.message_id, context, &probe)? {
                            Entry::Entered => entered += 1,
                            Entry::Refused(_) => refused += 1,
                            Entry::Duplicate => {}
                        }
                    }
                }
                if last > cursor {
                    db::set_event_cursor(c, last)?;
                }
                Ok(Some(((last - cursor) as usize, entered, refused, woke)))
            })
            .await?;
        let Some((read, entered, refused, woke)) = done else {
            // Another process started, paused or changed a journey: act on it from now on.
            self.reload().await?;
            return Ok(1);
        };
        self.0.stats.entered.fetch_add(entered, Ordering::Relaxed);
        self.0.stats.refused.fetch_add(refused, Ordering::Relaxed);
        if entered + woke > 0 {
            self.0.timers_due.notify_waiters();
            self.0.timers_due.notify_one();
        }
        Ok(read)
    }
}

fn resume_waiting(
    c: &mut dyn Conn,
    view: &TailView,
    name: &str,
    user: &str,
    props: &Value,
    now: i64,
) -> flywheel_store::Result<u64> {
    let mut woke = 0;
    for mut run in db::waiting_for(c, name, user)? {
        let Some(j) = view.versions.get(&(run.journey.clone(), run.version)) else {
            continue;
        };
        let Some(step) = usize::try_from(run.step).ok().and_then(|i| j.steps.get(i)) else {
            continue;
        };
        let Action::WaitForEvent { event, same_key, .. } = &step.action else {
            continue;
        };
        if !event.matches(name, props) {
            continue;
        }
        if *same_key {
            if let Some(path) = &j.key {
                if key_of(props, path).as_deref() != Some(run.key.as_str()) {
                    continue;
                }
            }
        }
        if walk::event_came(j, &mut run) && db::update_run(c, &run, now)? {
            timers::reschedule(c, &run.id, now)?;
            woke += 1;
        }
    }
    Ok(woke)
}

fn reach_goal(
    c: &mut dyn Conn,
    j: &Journey,
    name: &str,
    user: &str,
    props: &Value,
    now: i64,
) -> flywheel_store::Result<()> {
    let Some(goal) = &j.goal else { return Ok(()) };
    if !goal.event.matches(name, props) {
        return Ok(());
    }
    let key = j.key.as_deref().and_then(|p| key_of(props, p));
    for run in db::unconverted(c, &j.name, user)? {
        if goal.same_key && j.key.is_some() && key.as_deref() != Some(run.key.as_str()) {
            continue;
        }
        if db::convert_run(c, &run.id, goal.exit, now)? {
            db::credit_conversion(c, &run.id, now)?;
        }
    }
    Ok(())
}
