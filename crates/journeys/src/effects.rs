//! Doing a step's effect exactly once (issue 6 §3).
//!
//! The effect key is `<run id>/<step id>`. Before the effect, a `pending` record is
//! written; after it, the record is settled with the result in the same transaction
//! that moves the run on. So:
//! - a step found **settled** is not done again (its result — e.g. the coupon issued —
//!   is taken from the record);
//! - a step found **pending** was interrupted between the two writes: it is done again
//!   with the same key, which each effect honours — points are keyed in the ledger,
//!   tags and traits are idempotent, a coupon is issued once per key (its id derives from
//!   it), and a message carries the same Message-ID / `Idempotency-Key` (a provider that
//!   honours it delivers once).
//!
//! No step is skipped for an outage: a port that fails transiently (the store down or
//! busy, a connection cut) keeps the run at its step and tries again after a backoff
//! (`[journeys.effect_retry]`); when the attempts run out the step is set aside in the
//! dead-letter list with an alert, and the run waits there until it is resumed or
//! dismissed ([`crate::dead_letter`]). A refusal (no such template, sold out, not
//! eligible) follows the step's failure path at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use flywheel_channels::{Attempt, Channel};
use flywheel_store::timers;
use serde_json::{json, Value};

use crate::db::{self, RunRow};
use crate::definition::{Action, CouponScope, Journey};
use crate::engine::{profile_of, Engine};
use crate::ports::PortError;
use crate::walk;

/// What became of a run after its effect step.
pub(crate) enum Done {
    /// Moved past the step; walk on.
    Advanced(RunRow),
    /// Stays at the step until this time (deferred send, provider retry).
    Later(RunRow, i64),
    /// Ended meanwhile (stopped, converted): nothing more to do.
    Gone,
}

/// What an effect came to.
pub(crate) enum Outcome {
    /// Done, with its result for the record.
    Done(Value),
    /// Done, with its result and the message to log with it.
    Logged(Value, Box<crate::db::MessageRow>),
    /// Not done yet: try again at this time; `forget` drops the pending record (nothing
    /// was attempted, e.g. quiet hours), else it stays for the retry to reuse the key.
    Later { at: i64, forget: bool },
    /// Given up (logged); the run goes on.
    Failed(String),
    /// Attempts ran out on outages: the step is set aside in the dead-letter list and the
    /// run waits at it.
    DeadLetter(String),
}

/// The effect key of a step of a run.
pub fn effect_key(run_id: &str, step_id: &str) -> String {
    format!("{run_id}/{step_id}")
}

/// How many times the run has attempted `step` (provider retries).
pub fn attempts(run: &RunRow, step: &str) -> u32 {
    run.context
        .get("attempts")
        .and_then(|a| a.get(step))
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32
}

fn count_attempt(run: &mut RunRow, step: &str) -> u32 {
    let n = attempts(run, step) + 1;
    if !run.context.is_object() {
        run.context = json!({});
    }
    if let Some(ctx) = run.context.as_object_mut() {
        let a = ctx.entry("attempts").or_insert_with(|| json!({}));
        if let Some(a) = a.as_object_mut() {
            a.insert(step.to_string(), json!(n));
        }
    }
    n
}

impl Engine {
    /// Records `pending` for every effect key not yet recorded, in one transaction, and
    /// answers what was recorded before (settled result, `pending`, or nothing).
    pub(crate) async fn mark_pending(&self, keys: Vec<String>) -> crate::Result<Vec<Option<String>>> {
        let now = self.now();
        Ok(self
            .0
            .store
            .write_with(move |c| {
                let mut prior = Vec::with_capacity(keys.len());
                for k in &keys {
                    let p = timers::effect(c, k)?;
                    if p.is_none() {
                        timers::record_effect(c, k, "pending", now)?;
                    }
                    prior.push(p);
                }
                Ok(prior)
            })
            .await?)
    }

    /// Does step `i` of `run` once (its key already marked, with `prior` what was
    /// recorded before) and moves the run past it. A message is logged in the same
    /// transaction that settles the effect: the moment between a provider accepting it
    /// and that commit is the only one in which a crash makes it go out again.
    pub(crate) async fn effect(
        &self,
        journey: Arc<Journey>,
        mut run: RunRow,
        i: usize,
        prior: Option<String>,
    ) -> crate::Result<Done> {
        let step = &journey.steps[i];
        let key = effect_key(&run.id, &step.id);
        let outcome = match prior.as_deref() {
            Some(done) if done != "pending" => {
                Outcome::Done(serde_json::from_str(done).unwrap_or(Value::Null))
            }
            _ => self.perform(&journey, &mut run, i, &key).await,
        };
        let mut message = None;
        let (result, later) = match outcome {
            Outcome::Done(v) => (Some(v), None),
            Outcome::Logged(v, m) => {
                message = Some(m);
                (Some(v), None)
            }
            Outcome::Failed(reason) => {
                self.0.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(run = %run.id, step = %step.id, %reason, "journey step failed");
                (Some(json!({"failed": reason})), None)
            }
            Outcome::Later { at, forget } => (None, Some((at, forget))),
            Outcome::DeadLetter(error) => {
                self.set_aside(&journey, run, &step.id, error).await?;
                return Ok(Done::Gone);
            }
        };
        if let Some((at, forget)) = later {
            if forget {
                let k = key.clone();
                self.0
                    .store
                    .write_with(move |c| timers::forget_effect(c, &k))
                    .await?;
            }
            return Ok(Done::Later(run, at));
        }
        let result = result.unwrap_or(Value::Null);
        // What later messages see: the coupon issued, the perk granted.
        for field in ["coupon", "perk"] {
            if let (Some(v), Some(ctx)) = (result.get(field), run.context.as_object_mut()) {
                ctx.insert(field.into(), v.clone());
            }
        }
        walk::push_path(&mut run, &step.id);
        run.step = match journey.after(i) {
            crate::definition::Target::Step(j) => j as i64,
            crate::definition::Target::End => -1,
        };
        let text = result.to_string();
        let saved = run.clone();
        let now = self.now();
        let written = self
            .0
            .store
            .write_with(move |c| {
                if let Some(m) = &message {
                    db::log_message(c, m)?;
                }
                timers::settle_effect(c, &key, &text, now)?;
                db::update_run(c, &saved, now)
            })
            .await?;
        Ok(if written { Done::Advanced(run) } else { Done::Gone })
    }

    async fn perform(&self, journey: &Journey, run: &mut RunRow, i: usize, key: &str) -> Outcome {
        let step = &journey.steps[i];
        let services = &self.0.services;
        match &step.action {
            Action::Send(send) => self.send(journey, run, &step.id, send, key).await,
            Action::Coupon { template, scope } => {
                let Some(coupons) = &services.coupons else {
                    return Outcome::Failed("coupons are not available here".into());
                };
                if let Err(e) = self.fault(&step.id) {
                    return self.port_failed(run, &step.id, "coupon", e);
                }
                let products = match scope {
                    Some(CouponScope::Cart) => match self.cart_of(journey, run).await {
                        Ok(p) if p.is_empty() => {
                            return Outcome::Done(json!({ "skipped": "nothing is left in the cart" }))
                        }
                        Ok(p) => Some(p),
                        Err(e) => return self.port_failed(run, &step.id, "cart", e),
                    },
                    None => None,
                };
                match coupons
                    .issue(template, &run.user_id, key, products.as_deref())
                    .await
                {
                    Ok(c) => Outcome::Done(json!({ "coupon": c, "products": products })),
                    Err(e) => self.port_failed(run, &step.id, &format!("coupon {template}"), e),
                }
            }
            Action::Points { amount, .. } => {
                let Some(loyalty) = &services.loyalty else {
                    return Outcome::Failed("loyalty is not available here".into());
                };
                if let Err(e) = self.fault(&step.id) {
                    return self.port_failed(run, &step.id, "points", e);
                }
                match loyalty.award(&run.user_id, key, *amount).await {
                    Ok(balance) => Outcome::Done(json!({ "points": amount, "balance": balance })),
                    Err(e) => self.port_failed(run, &step.id, "points", e),
                }
            }
            Action::BirthdayPerk => {
                let Some(loyalty) = &services.loyalty else {
                    return Outcome::Failed("loyalty is not available here".into());
                };
                if let Err(e) = self.fault(&step.id) {
                    return self.port_failed(run, &step.id, "birthday perk", e);
                }
                match loyalty.birthday_perk(&run.user_id, self.0.clock.now()).await {
                    Ok(perk) => Outcome::Done(json!({ "perk": perk })),
                    Err(e) => self.port_failed(run, &step.id, "birthday perk", e),
                }
            }
            Action::AddTag { tag } | Action::RemoveTag { tag } => {
                let remove = matches!(step.action, Action::RemoveTag { .. });
                let (Some(audience), Some(profile)) = (&services.audience, profile_of(run)) else {
                    return Outcome::Failed("no profile to tag".into());
                };
                if let Err(e) = self.fault(&step.id) {
                    return self.port_failed(run, &step.id, &format!("tag {tag}"), e);
                }
                match audience.assign_tag(tag, &profile, remove).await {
                    Ok(()) => Outcome::Done(json!({ "tag": tag, "removed": remove })),
                    Err(e) => self.port_failed(run, &step.id, &format!("tag {tag}"), e),
                }
            }
            Action::SetTrait { name, value } => self.set_trait(run, &step.id, key, name, value).await,
            Action::Webhook { url } => self.call_webhook(journey, run, &step.id, url, key).await,
            // Walks never stop at the others.
            _ => Outcome::Done(Value::Null),
        }
    }

    async fn set_trait(&self, run: &mut RunRow, step: &str, key: &str, name: &str, value: &Value) -> Outcome {
        let Some(pipeline) = &self.0.services.pipeline else {
            return Outcome::Failed("traits cannot be recorded here".into());
        };
        let now = self.0.clock.now();
        let mut traits = serde_json::Map::new();
        traits.insert(name.to_string(), value.clone());
        let event = crate::engine::own_event(
            flywheel_core::EventKind::Identify,
            &run.user_id,
            None,
            format!("journey-trait-{}", crate::send::message_id_of(key)),
            now,
            [serde_json::Map::new(), serde_json::Map::new(), traits],
        )
        // A step's trait is the system's write, not something the customer did.
        .system_write();
        if let Err(e) = self.fault(step) {
            return self.port_failed(run, step, &format!("trait {name}"), e);
        }
        match pipeline.record(vec![event], true).await {
            Ok(()) => Outcome::Done(json!({ "trait": name })),
            Err(e) => self.port_failed(run, step, &format!("trait {name}"), e),
        }
    }

    async fn call_webhook(
        &self,
        journey: &Journey,
        run: &mut RunRow,
        step: &str,
        url: &str,
        key: &str,
    ) -> Outcome {
        let Some(secret) = self.0.providers.secrets.get(&Channel::Webhook).cloned() else {
            return Outcome::Failed(
                "webhook steps sign with [journeys.providers.webhook].secret, which is not set".into(),
            );
        };
        let provider = match flywheel_channels::WebhookProvider::new(url, &secret, self.0.config.retry) {
            Ok(p) => p,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let body = json!({
            "type": "journey.step",
            "journey": journey.name,
            "step": step,
            "run_id": run.id,
            "user_id": run.user_id,
            "key": run.key,
            "context": run.context,
        });
        let idem = crate::send::message_id_of(key);
        let attempt = tokio::task::spawn_blocking(move || provider.attempt_keyed(&body, Some(&idem)))
            .await
            .unwrap_or_else(|e| Attempt::Retryable {
                status: 0,
                error: e.to_string(),
            });
        match attempt {
            Attempt::Delivered { status } => Outcome::Done(json!({ "status": status })),
            Attempt::Rejected { error, .. } => Outcome::Failed(error),
            Attempt::Retryable { error, .. } => self.retry_later(run, step, error),
        }
    }

    /// Counts an attempt of `step`; the next is due after the backoff, or the step fails
    /// when attempts ran out.
    pub(crate) fn retry_later(&self, run: &mut RunRow, step: &str, error: String) -> Outcome {
        let n = count_attempt(run, step);
        match self.0.config.retry.delay_after(n) {
            Some(d) => Outcome::Later {
                at: self.now() + d.as_millis() as i64,
                forget: false,
            }
            .log(&error),
            None => Outcome::Failed(format!("{error} (after {n} attempts)")),
        }
    }

    /// The injected fault before `step`'s effect, if any (tests only, see
    /// [`crate::ports::FaultPoint`]).
    fn fault(&self, step: &str) -> Result<(), PortError> {
        match &self.0.services.faults {
            Some(f) => f.before_effect(step),
            None => Ok(()),
        }
    }

    /// What a port's failure at `step` comes to: a refusal fails the step (its failure
    /// path); an outage counts an attempt and is tried again after the effect backoff,
    /// or, when the attempts ran out, sets the step aside in the dead-letter list.
    /// The products left in the run's cart ([`crate::cart`]); a store failure is
    /// transient.
    async fn cart_of(&self, journey: &Journey, run: &RunRow) -> Result<Vec<String>, PortError> {
        let Some(path) = journey.key.clone() else {
            return Ok(Vec::new());
        };
        let user = run.user_id.clone();
        let events = self
            .0
            .store
            .read_with(move |c| crate::db::tracked_of(c, &user, &crate::cart::CART_EVENTS))
            .await
            .map_err(|e| PortError::transient(format!("reading the cart: {e}")))?;
        Ok(crate::cart::cart_products(&events, &path, &run.key))
    }

    pub(crate) fn port_failed(&self, run: &mut RunRow, step: &str, what: &str, e: PortError) -> Outcome {
        let error = format!("{what}: {}", e.message);
        if !e.transient {
            return Outcome::Failed(error);
        }
        let n = count_attempt(run, step);
        match self.0.config.effect_retry.delay_after(n) {
            Some(d) => Outcome::Later {
                at: self.now() + d.as_millis() as i64,
                forget: false,
            }
            .log(&error),
            None => Outcome::DeadLetter(format!("{error} (after {n} attempts)")),
        }
    }
}

impl Outcome {
    fn log(self, why: &str) -> Outcome {
        tracing::info!(%why, "journey step will be retried");
        self
    }
}
