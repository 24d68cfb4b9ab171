//! A send step (issue 6 §2, §4–6): pick the channel (fallback by preference, consent),
//! apply delivery rules (most active hour, quiet hours, caps — marketing only), render
//! the template for the user, track links, send through the provider, and log it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use chrono::Duration;
use flywheel_channels::email::{EmailMessage, EmailOutcome};
use flywheel_channels::{
    links, pick_channel, unsubscribe_token, Attempt, Category, Channel, Consent, Reachability, Subscription,
};
use flywheel_core::time::{from_millis, to_millis};
use flywheel_store::conn::Conn;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::caps::hold::{CapCheck, Held, Prospect};
use crate::db::{self, ConsentRow, ConsentState, MessageRow, MessageStatus, RunRow};
use crate::definition::{Journey, SendStep};
use crate::delivery::{Decision, DeliveryPolicy, SentRecord};
use crate::effects::Outcome;
use crate::engine::{profile_of, Engine};

/// The message id of an effect key: 32 hex digits of its SHA-256 — the email's
/// Message-ID left part and the providers' `Idempotency-Key`, the same on every retry.
pub fn message_id_of(key: &str) -> String {
    hex_prefix(&Sha256::digest(key.as_bytes()), 16)
}

fn hex_prefix(bytes: &[u8], n: usize) -> String {
    bytes.iter().take(n).map(|b| format!("{b:02x}")).collect()
}

/// What is known about the user at send time.
struct Facts {
    traits: Map<String, Value>,
    consent: Consent,
    /// Marketing messages logged as sent, by message id.
    history: Vec<(String, SentRecord)>,
    activity: Vec<i64>,
}

/// A user's consent from its stored rows ([`db::GLOBAL`] is the global suppression).
pub fn consent_of(rows: &[ConsentRow]) -> Consent {
    let mut c = Consent::default();
    for row in rows {
        if row.channel == db::GLOBAL {
            if row.state == ConsentState::Suppressed {
                c.suppressed = Some(row.source.clone());
            }
            continue;
        }
        let Some(ch) = Channel::ALL.into_iter().find(|x| x.as_str() == row.channel) else {
            continue;
        };
        let sub = match row.state {
            ConsentState::Subscribed => Subscription::Subscribed,
            ConsentState::Unsubscribed => Subscription::Unsubscribed,
            ConsentState::Unknown | ConsentState::Suppressed | ConsentState::Cleared => Subscription::Unknown,
        };
        c.channels.insert(ch, sub);
    }
    c
}

/// The addresses a profile's traits hold: `email`, `phone`, `push_token` (or
/// `device_token`), `wechat_openid` (or `openid`).
pub fn reach_of(traits: &Map<String, Value>) -> Reachability {
    let has = |keys: &[&str]| {
        keys.iter().any(|k| {
            traits
                .get(*k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty())
        })
    };
    Reachability {
        email: has(&["email"]),
        phone: has(&["phone"]),
        push_token: has(&["push_token", "device_token"]),
        wechat_openid: has(&["wechat_openid", "openid"]),
    }
}

fn address_of(traits: &Map<String, Value>, channel: Channel) -> Option<String> {
    let keys: &[&str] = match channel {
        Channel::Email => &["email"],
        Channel::Sms => &["phone"],
        Channel::Push => &["push_token", "device_token"],
        Channel::Wechat => &["wechat_openid", "openid"],
        Channel::Webhook => &[],
    };
    keys.iter()
        .find_map(|k| traits.get(*k).and_then(Value::as_str).map(String::from))
}

fn read_facts(
    c: &mut dyn Conn,
    user: &str,
    since: i64,
    activity_since: Option<i64>,
) -> flywheel_store::Result<Facts> {
    let (_, traits) = db::profile_of_user(c, user)?;
    let consent = consent_of(&db::consents(c, user)?);
    let history = db::sent_since(c, user, since)?
        .into_iter()
        .filter_map(|(id, ch, at)| {
            let channel = Channel::ALL.into_iter().find(|x| x.as_str() == ch)?;
            let record = SentRecord {
                at: from_millis(at),
                channel,
                category: Category::Marketing,
            };
            Some((id, record))
        })
        .collect();
    let activity = match activity_since {
        Some(s) => db::activity_since(c, user, s)?,
        None => Vec::new(),
    };
    Ok(Facts {
        traits,
        consent,
        history,
        activity,
    })
}

impl Engine {
    /// Does a send step; the cap slots it reserved are given back unless the message went
    /// out or waits for a provider retry (which reuses them: same message id).
    pub(crate) async fn send(
        &self,
        journey: &Journey,
        run: &mut RunRow,
        step: &str,
        send: &SendStep,
        key: &str,
    ) -> Outcome {
        let mut held = None;
        let out = self.send_holding(journey, run, step, send, key, &mut held).await;
        let went_out = match &out {
            Outcome::Logged(_, m) => m.status == MessageStatus::Sent,
            Outcome::Later { .. } => true,
            Outcome::Done(_) | Outcome::Failed(_) | Outcome::DeadLetter(_) => false,
        };
        if let Some(h) = held.filter(|_| !went_out) {
            self.release_caps(h).await;
        }
        out
    }

    async fn send_holding(
        &self,
        journey: &Journey,
        run: &mut RunRow,
        step: &str,
        send: &SendStep,
        key: &str,
        held: &mut Option<Held>,
    ) -> Outcome {
        let now = self.now();
        let user = run.user_id.clone();
        let since = now - Duration::days(8).num_milliseconds();
        let activity_since = send
            .at_active_hour
            .then(|| now - Duration::days(90).num_milliseconds());
        let u = user.clone();
        let facts = match self
            .0
            .store
            .read_with(move |c| read_facts(c, &u, since, activity_since))
            .await
        {
            Ok(f) => f,
            Err(e) => {
                return Outcome::Later {
                    at: now + 5_000,
                    forget: true,
                }
                .note(&format!("reading the profile: {e}"))
            }
        };
        // Days, hours and quiet hours count in the user's timezone (`timezone` trait) when
        // the profile has a valid one, else the shop's.
        let tz = facts
            .traits
            .get("timezone")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<chrono_tz::Tz>().ok())
            .unwrap_or(self.0.config.timezone);
        let id = message_id_of(key);
        let mut log = MessageRow {
            id: id.clone(),
            user_id: user.clone(),
            journey: Some(journey.name.clone()),
            run_id: Some(run.id.clone()),
            step: Some(step.to_string()),
            channel: send.channels.first().map_or("email", |c| c.as_str()).to_string(),
            category: category_str(send.category).into(),
            campaign: Some(send.campaign.clone().unwrap_or_else(|| journey.name.clone())),
            status: MessageStatus::Sending,
            reason: None,
            address: None,
            subject: None,
            created_at: now,
            updated_at: now,
            delivered_at: None,
            opened_at: None,
            clicked_at: None,
            converted_at: None,
        };
        // Channel: the first reachable one the user consents to.
        let reach = reach_of(&facts.traits);
        let channel = match pick_channel(
            &send.channels,
            &reach,
            &facts.consent,
            &self.0.config.consent,
            send.category,
        ) {
            Ok(c) => c,
            Err(passed) => {
                let reason = serde_json::to_string(&passed).unwrap_or_default();
                return self
                    .finish(
                        log,
                        MessageStatus::Suppressed,
                        Some(reason),
                        json!({"suppressed": passed}),
                    )
                    .await;
            }
        };
        log.channel = channel.as_str().into();
        log.address = address_of(&facts.traits, channel);
        if !self.0.providers.has(channel) {
            let reason = format!("no provider is configured for {}", channel.as_str());
            return self
                .finish(
                    log,
                    MessageStatus::Failed,
                    Some(reason.clone()),
                    json!({"failed": reason}),
                )
                .await;
        }
        // Most active hour (R5.9): once per step, move the send to that hour.
        let moved_key = format!("active_hour:{step}");
        if send.at_active_hour && run.context.get(&moved_key).is_none() {
            let stamps: Vec<_> = facts.activity.iter().map(|t| from_millis(*t)).collect();
            if let Some(hour) = crate::send_time::most_active_hour(&stamps, tz, 5) {
                let local_hour = chrono::Timelike::hour(&from_millis(now).with_timezone(&tz));
                if local_hour != hour {
                    let at = to_millis(crate::send_time::next_at_hour(from_millis(now), hour, tz));
                    if let Some(ctx) = run.context.as_object_mut() {
                        ctx.insert(moved_key, json!(at));
                    }
                    return Outcome::Later { at, forget: true };
                }
            }
        }
        // Quiet hours and caps (marketing only).
        let policy = DeliveryPolicy {
            quiet_hours: journey.quiet_hours.or(self.0.config.delivery.quiet_hours),
            caps: self.0.config.delivery.caps.clone(),
        };
        // A retried message is in the log already ("sending"): it does not count against
        // itself.
        let history: Vec<(String, SentRecord)> =
            facts.history.into_iter().filter(|(m, _)| *m != id).collect();
        let records: Vec<SentRecord> = history.iter().map(|(_, r)| *r).collect();
        let mut decision = policy.decide(send.category, channel, from_millis(now), &records, tz);
        if decision == Decision::SendNow && send.category == Category::Marketing {
            let prospect = Prospect {
                user: &user,
                channel,
                holder: &id,
                at: from_millis(now),
                tz,
            };
            match self.hold_caps(&policy, &prospect, &history).await {
                CapCheck::Clear(h) => *held = h,
                CapCheck::Full(d) => decision = d,
            }
        }
        match decision {
            Decision::SendNow => {}
            Decision::DeferUntil(at) => {
                let at = to_millis(at);
                log.status = MessageStatus::Deferred;
                log.reason = Some(format!(
                    "delivery rules: until {}",
                    from_millis(at).with_timezone(&tz)
                ));
                let l = log.clone();
                let _ = self.0.store.write_with(move |c| db::log_message(c, &l)).await;
                return Outcome::Later { at, forget: true };
            }
            Decision::Skip(cap) => {
                let reason = format!("frequency cap: {cap}");
                return self
                    .finish(
                        log,
                        MessageStatus::Skipped,
                        Some(reason.clone()),
                        json!({"skipped": reason}),
                    )
                    .await;
            }
        }
        // Render.
        let unsubscribe = format!(
            "{}/unsubscribe/{}",
            self.0.config.public_url.trim_end_matches('/'),
            unsubscribe_token(&self.0.link_secret, &user, channel)
        );
        let vars = self.vars(journey, run, step, &facts.traits, &unsubscribe).await;
        let rendered = match self.render(send.source(), vars).await {
            Ok(r) => r,
            Err(e) => {
                let reason = e.to_string();
                return self
                    .finish(
                        log,
                        MessageStatus::Failed,
                        Some(reason.clone()),
                        json!({"failed": reason}),
                    )
                    .await;
            }
        };
        log.subject = rendered.subject.clone();
        // Send.
        let attempt = match channel {
            Channel::Email => {
                let Some(mailer) = self.0.providers.email.clone() else {
                    return self
                        .finish(log, MessageStatus::Failed, Some("no mailer".into()), Value::Null)
                        .await;
                };
                let html = match &rendered.html {
                    Some(h) => links::track_html(
                        h,
                        &self.0.config.public_url,
                        &self.0.link_secret,
                        &id,
                        &unsubscribe,
                    ),
                    None => String::new(),
                };
                let to = log.address.clone().unwrap_or_default();
                let (subject, text) = (
                    rendered.subject.clone().unwrap_or_default(),
                    rendered.text.clone(),
                );
                let (mid, unsub) = (format!("{id}@flywheel"), unsubscribe.clone());
                let campaign = log.campaign.clone().unwrap_or_default();
                tokio::task::spawn_blocking(move || {
                    let out = mailer.send(&EmailMessage {
                        to: &to,
                        subject: &subject,
                        html: &html,
                        text: &text,
                        message_id: &mid,
                        unsubscribe_url: Some(&unsub),
                        unsubscribe_mailto: None,
                        headers: vec![("X-Flywheel-Campaign", campaign)],
                    });
                    match out {
                        EmailOutcome::Delivered { response } => {
                            (Attempt::Delivered { status: 250 }, response)
                        }
                        EmailOutcome::Rejected { code, message } => (
                            Attempt::Rejected {
                                status: code,
                                error: message,
                            },
                            String::new(),
                        ),
                        EmailOutcome::Failed { error } => {
                            (Attempt::Retryable { status: 0, error }, String::new())
                        }
                    }
                })
                .await
                .unwrap_or_else(|e| {
                    (
                        Attempt::Retryable {
                            status: 0,
                            error: e.to_string(),
                        },
                        String::new(),
                    )
                })
                .0
            }
            other => {
                let Some(provider) = self.0.providers.webhooks.get(&other).cloned() else {
                    return self
                        .finish(
                            log,
                            MessageStatus::Failed,
                            Some("no provider".into()),
                            Value::Null,
                        )
                        .await;
                };
                let body = json!({
                    "message_id": id,
                    "channel": other.as_str(),
                    "category": category_str(send.category),
                    "to": log.address,
                    "user_id": user,
                    "title": rendered.subject,
                    "text": rendered.text,
                    "campaign": log.campaign,
                    "journey": journey.name,
                    "status_callback": format!("{}/v1/channels/{}/status", self.0.config.public_url.trim_end_matches('/'), other.as_str()),
                });
                tokio::task::spawn_blocking(move || provider.attempt_keyed(&body, Some(&id)))
                    .await
                    .unwrap_or_else(|e| Attempt::Retryable {
                        status: 0,
                        error: e.to_string(),
                    })
            }
        };
        match attempt {
            Attempt::Delivered { .. } => {
                self.0.stats.sent.fetch_add(1, Ordering::Relaxed);
                let mid = log.id.clone();
                let ch = log.channel.clone();
                self.finish(
                    log,
                    MessageStatus::Sent,
                    None,
                    json!({"message_id": mid, "channel": ch}),
                )
                .await
            }
            Attempt::Rejected { error, .. } => {
                self.finish(
                    log,
                    MessageStatus::Failed,
                    Some(error.clone()),
                    json!({"failed": error}),
                )
                .await
            }
            Attempt::Retryable { error, .. } => {
                log.reason = Some(error.clone());
                let out = self.retry_later(run, step, error);
                if let Outcome::Failed(reason) = &out {
                    return self
                        .finish(
                            log,
                            MessageStatus::Failed,
                            Some(reason.clone()),
                            json!({"failed": reason}),
                        )
                        .await;
                }
                let l = log.clone();
                let _ = self.0.store.write_with(move |c| db::log_message(c, &l)).await;
                out
            }
        }
    }

    /// The message's final status, logged when the effect settles; the step is done
    /// either way.
    async fn finish(
        &self,
        mut log: MessageRow,
        status: MessageStatus,
        reason: Option<String>,
        result: Value,
    ) -> Outcome {
        if status != MessageStatus::Sent {
            self.0.stats.not_sent.fetch_add(1, Ordering::Relaxed);
        }
        log.status = status;
        log.reason = reason;
        log.updated_at = self.now();
        Outcome::Logged(result, Box::new(log))
    }

    /// The variables a template sees (docs/channels.md): profile, computed traits, tags,
    /// coupon, points and tier, cart, shop, links, the trigger event and the run.
    pub(crate) async fn vars(
        &self,
        journey: &Journey,
        run: &RunRow,
        step: &str,
        traits: &Map<String, Value>,
        unsubscribe: &str,
    ) -> Value {
        let mut profile = Map::new();
        profile.insert("id".into(), json!(run.user_id));
        for k in [
            "name", "email", "phone", "gender", "region", "city", "birthday", "age_band",
        ] {
            profile.insert(k.into(), traits.get(k).cloned().unwrap_or(Value::Null));
        }
        let mut computed = BTreeMap::new();
        let mut tags = Vec::new();
        if let (Some(a), Some(p)) = (&self.0.services.audience, profile_of(run)) {
            if let Some(pa) = a.profile(&p) {
                computed = pa.traits;
                tags = pa.tags;
            }
        }
        for (k, v) in traits {
            computed.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let mut points = json!({"balance": 0, "expiring": 0, "expiring_at": null});
        let mut tier = json!({"name": null, "next": null, "spend_to_next_yuan": null});
        if let Some(l) = &self.0.services.loyalty {
            let view = l.view(&run.user_id, self.0.clock.now()).await;
            if let Some(p) = view.points {
                points = p;
            }
            if let Some(t) = view.tier {
                tier["name"] = json!(t);
            }
        }
        let event = run.context.get("event").cloned().unwrap_or_else(|| json!({}));
        let mut coupon = run.context.get("coupon").cloned();
        if coupon.is_none() {
            // A coupon-expiry run names its coupon.
            if let (Some(id), Some(c)) = (
                run.context.get("coupon_id").and_then(Value::as_str),
                &self.0.services.coupons,
            ) {
                coupon = c.coupon(id).await.ok().flatten();
            }
        }
        // Every catalog field is present (null when unknown): templates may test them.
        let coupon = coupon.unwrap_or_else(|| {
            json!({"id": null, "code": null, "name": null, "value_yuan": null, "threshold_yuan": null, "expires_at": null})
        });
        json!({
            "profile": profile,
            "traits": computed,
            "tags": tags,
            "coupon": coupon,
            "points": points,
            "tier": tier,
            "cart": run.context.get("cart").cloned().unwrap_or_else(|| json!({"items": [], "total_yuan": null, "url": null})),
            "shop": {"name": self.0.config.shop_name, "url": self.0.config.shop_url},
            "links": {"unsubscribe": unsubscribe, "view_in_browser": null, "open_pixel": null},
            "perk": run.context.get("perk").cloned().unwrap_or_else(|| json!({"tier": null, "value_yuan": null})),
            "journey": {"name": journey.name, "step": step},
            "run": {"key": run.key},
            "event": event,
        })
    }
}

fn category_str(c: Category) -> &'static str {
    match c {
        Category::Marketing => "marketing",
        Category::Transactional => "transactional",
    }
}

impl Outcome {
    fn note(self, why: &str) -> Outcome {
        tracing::warn!(%why, "journey send will be retried");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_rows_become_consent() {
        let row = |channel: &str, state, source: &str| ConsentRow {
            channel: channel.into(),
            state,
            source: source.into(),
            updated_at: 1,
        };
        let rows = vec![
            row("email", ConsentState::Unsubscribed, "link"),
            row("sms", ConsentState::Subscribed, "api"),
        ];
        let c = consent_of(&rows);
        assert_eq!(c.channels.get(&Channel::Email), Some(&Subscription::Unsubscribed));
        assert_eq!(c.channels.get(&Channel::Sms), Some(&Subscription::Subscribed));
        assert!(c.suppressed.is_none());
        let mut rows = rows;
        rows.push(row(db::GLOBAL, ConsentState::Suppressed, "hard_bounce"));
        assert_eq!(consent_of(&rows).suppressed.as_deref(), Some("hard_bounce"));
    }

    #[test]
    fn message_ids_are_stable_per_effect() {
        assert_eq!(message_id_of("r/s"), message_id_of("r/s"));
        assert_ne!(message_id_of("r/s"), message_id_of("r/t"));
        assert_eq!(message_id_of("r/s").len(), 32);
    }
}
