//! Segment and tag triggers, durable: the transitions log
//! ([`flywheel_store::transitions`]) is read in `seq` order behind a stored cursor, and
//! each transition, in the transaction that moves the cursor past it, enters the
//! profile's user into the active journeys it triggers — exactly as the event tail
//! ([`crate::tail`]) does for events. The trigger occurrence is `transition:<seq>`, so
//! a transition read twice (a retry after a failed commit) finds its run and enters
//! nobody again; a failed transaction moves nothing and is retried with backoff.
//!
//! The cursor is placed at the end of the log the first time ([`crate::Engine::prepare`]),
//! so the history of an existing shop does not trigger journeys.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use flywheel_store::conn::Conn;
use flywheel_store::transitions::{self as log, Change, Kind, TransitionRow};
use serde_json::json;

use crate::db::user_of_profile;
use crate::definition::{AudienceChange, Journey, Trigger};
use crate::engine::Engine;
use crate::tail::{enter, Entry, EntryCtx};

/// This reader's name in the transitions log (its cursor's key).
pub const CONSUMER: &str = "journeys";
/// Transitions read per transaction.
const BATCH: i64 = 1_000;
/// How often the log is looked at when nothing wakes the tail.
const POLL: Duration = Duration::from_millis(200);
/// The longest wait between two attempts after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Places the cursor at the end of the log when this reader has none yet.
pub(crate) fn place_cursor(c: &mut dyn Conn) -> flywheel_store::Result<()> {
    if log::cursor(c, CONSUMER)?.is_none() {
        let last = log::last_seq(c)?;
        log::set_cursor(c, CONSUMER, last)?;
    }
    Ok(())
}

/// Whether `j` is triggered by this transition.
fn triggers(j: &Journey, t: &TransitionRow) -> bool {
    let on = match t.change {
        Change::Entered => AudienceChange::Entered,
        Change::Exited => AudienceChange::Exited,
    };
    match (&j.trigger, t.kind) {
        (Trigger::Segment { name, on: o }, Kind::Segment) | (Trigger::Tag { name, on: o }, Kind::Tag) => {
            *name == t.name && *o == on
        }
        _ => false,
    }
}

impl Engine {
    /// Reads the next transitions after the cursor and enters users from them; returns
    /// how many transitions were read.
    pub async fn tail_transitions_once(&self) -> crate::Result<usize> {
        let (targets, fingerprint): (Vec<(i64, Arc<Journey>)>, _) = {
            let defs = self.0.defs.read().map_err(|_| crate::Error::Poisoned)?;
            let targets = defs
                .active()
                .filter(|(_, j)| matches!(j.trigger, Trigger::Segment { .. } | Trigger::Tag { .. }))
                .map(|(r, j)| (r.version, j.clone()))
                .collect();
            (targets, defs.fingerprint())
        };
        let now = self.now();
        let tz = self.0.config.timezone;
        let engine = self.clone();
        let done = self
            .0
            .store
            .write_with(move |c| {
                // Definitions changed through another process: act on them from now on.
                if crate::db::fingerprint(c)? != fingerprint {
                    return Ok(None);
                }
                let cursor = log::cursor(c, CONSUMER)?.unwrap_or(0);
                let rows = log::after(c, cursor, BATCH)?;
                let (mut entered, mut refused) = (0u64, 0u64);
                for t in &rows {
                    let hit: Vec<&(i64, Arc<Journey>)> =
                        targets.iter().filter(|(_, j)| triggers(j, t)).collect();
                    if hit.is_empty() {
                        continue;
                    }
                    let Some(user) = user_of_profile(c, &t.profile_id)? else {
                        continue;
                    };
                    let probe = engine.probe(Some(t.profile_id.clone()));
                    let trigger = format!("transition:{}", t.seq);
                    for (version, j) in hit {
                        let ctx = EntryCtx {
                            journey: j,
                            version: *version,
                            tz,
                            now,
                        };
                        let context = json!({"profile_id": t.profile_id});
                        match enter(c, &ctx, &user, "", &trigger, context, &probe)? {
                            Entry::Entered => entered += 1,
                            Entry::Refused(_) => refused += 1,
                            Entry::Duplicate => {}
                        }
                    }
                }
                if engine.0.transition_fault.take() {
                    // Test-only: the transaction fails after its entries, before the cursor.
                    return Err(flywheel_store::Error::Connection(
                        "injected store fault at journeys.transitions".into(),
                    ));
                }
                if let Some(last) = rows.last() {
                    log::set_cursor(c, CONSUMER, last.seq)?;
                }
                Ok(Some((rows.len(), entered, refused)))
            })
            .await?;
        let Some((read, entered, refused)) = done else {
            self.reload().await?;
            return Ok(1);
        };
        self.0.stats.entered.fetch_add(entered, Ordering::Relaxed);
        self.0.stats.refused.fetch_add(refused, Ordering::Relaxed);
        if entered > 0 {
            self.0.timers_due.notify_one();
        }
        Ok(read)
    }

    /// Follows the transitions log until the engine stops: reads while there is
    /// something to read, retries a failure with backoff (the cursor stays where it was),
    /// and otherwise waits to be woken ([`Engine::transitions_appended`]) or polls.
    pub(crate) async fn transitions_loop(&self) {
        let mut backoff = Duration::from_millis(100);
        while !self.0.stopping.load(Ordering::Relaxed) {
            match self.tail_transitions_once().await {
                Ok(n) if n > 0 => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "journey transitions tail failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            tokio::select! {
                _ = self.0.transitions_arrived.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Tells the transitions tail that transitions were logged (it also polls).
    pub fn transitions_appended(&self) {
        self.0.transitions_arrived.notify_one();
    }

    /// Makes the next `count` transactions of the transitions tail fail as a store outage
    /// would (test-only fault injection, `FLYWHEEL_FAULTS=journeys.transitions:N`).
    pub fn inject_transition_failures(&self, count: i64) {
        self.0.transition_fault.arm(count);
    }
}
