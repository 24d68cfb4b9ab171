//! What the API and CLI do with journeys: save versions, start/pause/stop, dry-run,
//! per-step counts, the message log, consent, and the public link endpoints (open
//! pixel, click redirect, unsubscribe, delivery-status callbacks).

use flywheel_channels::{links, read_unsubscribe_token, Channel};
use flywheel_core::time::to_millis;
use flywheel_core::ErrorCode;
use serde::Serialize;
use serde_json::{json, Value};

use crate::callback::{self, Report, StatusReport};
use crate::db::{
    self, ConsentState, JourneyRow, MessageFilter, MessageRow, MessageStatus, RunRow, RunState, Status,
};
use crate::definition::{Action, CouponScope, Journey, Target};
use crate::engine::Engine;
use crate::walk::{self, Park, Probe};
use crate::{Error, Result};

/// A journey as listed.
#[derive(Debug, Clone, Serialize)]
pub struct JourneyInfo {
    /// Name, version, status.
    #[serde(flatten)]
    pub row: JourneyRow,
    /// The definition of the current version.
    pub definition: Journey,
}

/// Per-step visits and per-state runs of a journey, with message counts by status.
#[derive(Debug, Clone, Serialize)]
pub struct JourneyStats {
    /// Journey name.
    pub journey: String,
    /// Visits per step id (`step`, `step:branch`, `step:timeout`…).
    pub steps: Vec<(String, i64)>,
    /// Runs per state.
    pub states: Vec<(RunState, i64)>,
    /// Messages per status.
    pub messages: Vec<(MessageStatus, i64)>,
    /// Runs that reached the goal.
    pub converted: i64,
}

/// One profile's path in a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunPath {
    /// The user.
    pub user_id: String,
    /// Steps in order, with branch taken (`wait:timeout`, `split:holdout`…).
    pub path: Vec<String>,
    /// How the run would end.
    pub outcome: String,
}

/// A send step rendered for one user.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The user.
    pub user_id: String,
    /// The step.
    pub step: String,
    /// Channels by preference.
    pub channels: Vec<String>,
    /// Subject (email, push title).
    pub subject: Option<String>,
    /// Email HTML.
    pub html: Option<String>,
    /// Text.
    pub text: String,
}

fn channel_named(name: &str) -> Result<Channel> {
    Channel::ALL
        .into_iter()
        .find(|c| c.as_str() == name)
        .ok_or_else(|| {
            Error::refused(
                ErrorCode::UnknownChannel,
                format!("unknown channel {name:?} (email, sms, push, wechat, webhook)"),
            )
        })
}

impl Engine {
    /// Checks a definition: its rules, segment expressions and templates (compiled and
    /// tried on a sample customer through the renderer, see `render.rs`).
    pub async fn check(&self, j: &Journey) -> Result<()> {
        j.validate_rules().map_err(|e| Error::Invalid(e.to_string()))?;
        if let Some(a) = &self.0.services.audience {
            for (at, expr) in j.expressions() {
                a.check_expression(expr)
                    .map_err(|(code, e)| Error::refused(code, format!("{at}: {e}")))?;
            }
            // Tag steps set manual tags, which must exist (rule tags follow their rule).
            for s in &j.steps {
                let (Action::AddTag { tag } | Action::RemoveTag { tag }) = &s.action else {
                    continue;
                };
                match a.tag_kind(tag) {
                    crate::ports::TagKind::Manual => {}
                    crate::ports::TagKind::Rule => {
                        return Err(Error::refused(
                            ErrorCode::NotManualTag,
                            format!("step {:?}: {tag:?} is a rule tag; only manual tags are set by hand", s.id),
                        ))
                    }
                    crate::ports::TagKind::Missing => {
                        return Err(Error::refused(
                            ErrorCode::UnknownTag,
                            format!(
                                "step {:?}: no manual tag {tag:?} — create it first (`flywheel tag create`, POST /api/v1/tags)",
                                s.id
                            ),
                        ))
                    }
                }
            }
        }
        self.check_templates(j).await
    }

    /// Saves a definition (new version when changed); returns (version, created).
    pub async fn save(&self, j: &Journey) -> Result<(i64, bool)> {
        self.check(j).await?;
        let text = serde_json::to_string(j).map_err(|e| Error::Invalid(e.to_string()))?;
        let (name, now) = (j.name.clone(), self.now());
        let out = self
            .0
            .store
            .write_with(move |c| db::save(c, &name, &text, now))
            .await?;
        self.reload().await?;
        Ok(out)
    }

    /// Every journey.
    pub async fn list(&self) -> Result<Vec<JourneyInfo>> {
        let rows = self.0.store.read_with(db::journeys).await?;
        rows.into_iter()
            .map(|row| {
                let definition =
                    Journey::from_json(&row.definition).map_err(|e| Error::Invalid(e.to_string()))?;
                Ok(JourneyInfo { row, definition })
            })
            .collect()
    }

    /// One journey.
    pub async fn get(&self, name: &str) -> Result<JourneyInfo> {
        let n = name.to_string();
        let row = self
            .0
            .store
            .read_with(move |c| db::journey(c, &n))
            .await?
            .ok_or_else(|| Error::NotFound(format!("journey {name:?}")))?;
        let definition = Journey::from_json(&row.definition).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(JourneyInfo { row, definition })
    }

    /// Starts, pauses or stops a journey.
    pub async fn set_status(&self, name: &str, status: Status) -> Result<JourneyInfo> {
        let (n, now) = (name.to_string(), self.now());
        if !self
            .0
            .store
            .write_with(move |c| db::set_status(c, &n, status, now))
            .await?
        {
            return Err(Error::NotFound(format!("journey {name:?}")));
        }
        self.reload().await?;
        self.ensure_schedules().await?;
        self.0.timers_due.notify_one();
        self.get(name).await
    }

    /// Deletes a journey with no run in progress.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let n = name.to_string();
        if self.0.store.write_with(move |c| db::delete(c, &n)).await? {
            self.reload().await?;
            Ok(())
        } else {
            self.get(name).await?;
            Err(Error::Conflict(format!(
                "journey {name:?} has runs in progress; stop it first"
            )))
        }
    }

    /// Per-step counts of a journey.
    pub async fn journey_stats(&self, name: &str) -> Result<JourneyStats> {
        self.get(name).await?;
        let n = name.to_string();
        let (steps, states, messages, converted) = self
            .0
            .store
            .read_with(move |c| {
                let (steps, states) = db::run_counts(c, &n)?;
                let messages = db::status_counts(c, &n)?;
                let converted = db::converted_runs(c, &n)?;
                Ok((steps, states, messages, converted))
            })
            .await?;
        Ok(JourneyStats {
            journey: name.to_string(),
            steps,
            states,
            messages,
            converted,
        })
    }

    /// Which path each of `users` would take through `j` now, sending nothing: waits for
    /// events are taken as timing out, effects as done.
    pub async fn dry_run(&self, j: &Journey, users: &[String]) -> Result<Vec<DryRunPath>> {
        self.check(j).await?;
        let ids = users.to_vec();
        let profiles = self
            .0
            .store
            .read_with(move |c| {
                ids.iter()
                    .map(|u| {
                        flywheel_store::read::profile_id_of(c, &flywheel_core::Identity::User(u.clone()))
                            .map(|p| (u.clone(), p.map(|p| p.0)))
                    })
                    .collect::<flywheel_store::Result<Vec<_>>>()
            })
            .await?;
        let now = self.now();
        let tz = self.0.config.timezone;
        let mut out = Vec::with_capacity(profiles.len());
        for (user, profile) in profiles {
            let probe = self.probe(profile.clone());
            let mut run = dry_row(j, &user, profile.as_deref());
            if let Some(a) = &j.audience {
                if !probe.holds(a) {
                    out.push(DryRunPath {
                        user_id: user,
                        path: Vec::new(),
                        outcome: "not entered: not in the journey's audience".into(),
                    });
                    continue;
                }
            }
            let mut rounds = 0;
            let outcome = loop {
                match walk::walk(j, &mut run, now, tz, &probe) {
                    Park::Wait { .. } => walk::wake(j, &mut run),
                    Park::Effect(i) => {
                        walk::push_path(&mut run, &j.steps[i].id);
                        run.step = match j.after(i) {
                            Target::Step(n) => n as i64,
                            Target::End => -1,
                        };
                    }
                    Park::End(state) => break state.as_str().to_string(),
                }
                rounds += 1;
                if rounds > j.steps.len() * 2 {
                    break "loop".into();
                }
            };
            let described = run
                .path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|p| describe(j, p))
                .collect();
            out.push(DryRunPath {
                user_id: user,
                path: described,
                outcome,
            });
        }
        Ok(out)
    }

    /// A send step rendered for one user, without sending (issue 6 §5: preview with a
    /// chosen profile): what the template makes of this user's profile, computed traits,
    /// points and tier; a coupon the journey would issue shows as empty.
    pub async fn preview(&self, j: &Journey, step: &str, user: &str) -> Result<Preview> {
        self.check(j).await?;
        let s = j
            .steps
            .iter()
            .find(|s| s.id == step)
            .ok_or_else(|| Error::NotFound(format!("step {step:?}")))?;
        let Action::Send(send) = &s.action else {
            return Err(Error::refused(
                ErrorCode::NotSendStep,
                format!("step {step:?} is not a send step"),
            ));
        };
        let u = user.to_string();
        let (profile, traits) = self
            .0
            .store
            .read_with(move |c| db::profile_of_user(c, &u))
            .await?;
        if profile.is_none() {
            return Err(Error::NotFound(format!("user {user:?}")));
        }
        let mut run = dry_row(j, user, profile.as_deref());
        // The coupon a coupon step would issue, as the template describes it.
        let template = j.steps.iter().find_map(|s| match &s.action {
            Action::Coupon { template, .. } => Some(template.clone()),
            _ => None,
        });
        if let (Some(id), Some(coupons)) = (template, &self.0.services.coupons) {
            if let Ok(Some(t)) = coupons.preview(&id, self.0.clock.now()).await {
                run.context["coupon"] = t;
            }
        }
        let unsubscribe = format!("{}/unsubscribe/…", self.0.config.public_url.trim_end_matches('/'));
        let vars = self.vars(j, &run, step, &traits, &unsubscribe).await;
        let r = self
            .render(send.source(), vars)
            .await
            .map_err(|e| crate::render::refusal(step, e))?;
        Ok(Preview {
            user_id: user.to_string(),
            step: step.to_string(),
            channels: send.channels.iter().map(|c| c.as_str().to_string()).collect(),
            subject: r.subject,
            html: r.html,
            text: r.text,
        })
    }

    /// Runs of a journey or a user, newest first.
    pub async fn runs(&self, journey: Option<&str>, user: Option<&str>, limit: i64) -> Result<Vec<RunRow>> {
        let (j, u) = (journey.map(String::from), user.map(String::from));
        Ok(self
            .0
            .store
            .read_with(move |c| db::list_runs(c, j.as_deref(), u.as_deref(), limit))
            .await?)
    }

    /// Messages of a user, a journey or a run, newest first.
    pub async fn messages(&self, filter: MessageFilter, value: &str, limit: i64) -> Result<Vec<MessageRow>> {
        let v = value.to_string();
        Ok(self
            .0
            .store
            .read_with(move |c| db::messages(c, filter, &v, limit))
            .await?)
    }

    /// A user's consent: per channel state, and the global suppression.
    pub async fn consent(&self, user: &str) -> Result<Value> {
        let u = user.to_string();
        let rows = self.0.store.read_with(move |c| db::consents(c, &u)).await?;
        let mut channels = serde_json::Map::new();
        for ch in Channel::ALL {
            channels.insert(ch.as_str().into(), json!({"state": ConsentState::Unknown}));
        }
        let mut suppressed = Value::Null;
        for row in rows {
            let entry = json!({"state": row.state, "source": row.source, "updated_at": flywheel_core::time::from_millis(row.updated_at).to_rfc3339()});
            if row.channel == db::GLOBAL {
                if row.state == ConsentState::Suppressed {
                    suppressed = entry;
                }
            } else {
                channels.insert(row.channel, entry);
            }
        }
        Ok(json!({"user_id": user, "channels": channels, "suppressed": suppressed}))
    }

    /// Sets a user's consent on a channel (`subscribed`, `unsubscribed`, `unknown`) or the
    /// global suppression (`channel` = `*`, state `suppressed` or `none`).
    pub async fn set_consent(&self, user: &str, channel: &str, state: &str, source: &str) -> Result<()> {
        let parsed = state.parse::<ConsentState>().ok();
        let st = if channel == db::GLOBAL {
            parsed.filter(|s| s.is_global()).ok_or_else(|| {
                Error::refused(
                    ErrorCode::InvalidConsent,
                    "the global suppression is `suppressed` or `none`",
                )
            })?
        } else {
            channel_named(channel)?;
            parsed.filter(|s| !s.is_global()).ok_or_else(|| {
                Error::refused(
                    ErrorCode::InvalidConsent,
                    format!("consent state {state:?} is not subscribed, unsubscribed or unknown"),
                )
            })?
        };
        self.write_consent(user, channel, st, source).await
    }

    /// Stores a user's consent state on a channel (or the global suppression).
    async fn write_consent(
        &self,
        user: &str,
        channel: &str,
        state: ConsentState,
        source: &str,
    ) -> Result<()> {
        if user.trim().is_empty() {
            return Err(Error::refused(ErrorCode::InvalidUser, "a user id is required"));
        }
        let (u, ch, src, now) = (
            user.to_string(),
            channel.to_string(),
            source.to_string(),
            self.now(),
        );
        self.0
            .store
            .write_with(move |c| db::set_consent(c, &u, &ch, state, &src, now))
            .await?;
        Ok(())
    }

    /// Unsubscribes the user a genuine unsubscribe token names from its channel.
    pub async fn unsubscribe(&self, token: &str) -> Result<(String, Channel)> {
        let (user, channel) = read_unsubscribe_token(&self.0.link_secret, token)
            .ok_or_else(|| Error::NotFound("unsubscribe link".into()))?;
        self.write_consent(
            &user,
            channel.as_str(),
            ConsentState::Unsubscribed,
            "unsubscribe_link",
        )
        .await?;
        self.record(&user, "Unsubscribed", json!({"channel": channel.as_str()}), None)
            .await;
        Ok((user, channel))
    }

    /// Records an open from a genuine pixel token (`Email Opened`, first open kept).
    pub async fn opened(&self, token: &str) -> Result<()> {
        let id = links::read_open_token(&self.0.link_secret, token)
            .ok_or_else(|| Error::NotFound("pixel".into()))?;
        self.track(&id, Report::Opened, "Email Opened", json!({})).await
    }

    /// Records a click from a genuine click token (`Link Clicked`); returns where to go.
    pub async fn clicked(&self, token: &str) -> Result<String> {
        let (id, url) = links::read_click_token(&self.0.link_secret, token)
            .ok_or_else(|| Error::NotFound("link".into()))?;
        self.track(&id, Report::Clicked, "Link Clicked", json!({"url": url}))
            .await?;
        Ok(url)
    }

    async fn track(&self, id: &str, what: Report, event: &str, mut props: Value) -> Result<()> {
        let (mid, now) = (id.to_string(), self.now());
        let message = self
            .0
            .store
            .write_with(move |c| {
                let Some(m) = db::message(c, &mid)? else {
                    return Ok(None);
                };
                db::apply_change(c, &mid, &callback::change(&m, what, None), now)?;
                db::message(c, &mid)
            })
            .await?
            .ok_or_else(|| Error::NotFound("message".into()))?;
        props["message_id"] = json!(message.id);
        props["channel"] = json!(message.channel);
        props["journey"] = json!(message.journey);
        props["campaign"] = json!(message.campaign);
        let campaign = json!({"name": message.campaign, "source": "flywheel", "medium": message.channel});
        // One event per message and kind of interaction counts; repeats are deduplicated by id.
        let event_id = format!("{}-{}", what.as_str(), message.id);
        self.record(&message.user_id, event, props, Some((event_id, campaign)))
            .await;
        Ok(())
    }

    /// Records an event for a user through the ingest pipeline (best effort: a full
    /// queue loses the event, not the redirect).
    async fn record(&self, user: &str, name: &str, props: Value, id_and_campaign: Option<(String, Value)>) {
        let Some(pipeline) = &self.0.services.pipeline else {
            return;
        };
        let now = self.0.clock.now();
        let (message_id, campaign) = match id_and_campaign {
            Some((id, c)) => (id, Some(c)),
            None => (
                format!("{}-{}-{}", name.replace(' ', "-"), user, to_millis(now)),
                None,
            ),
        };
        let mut context = serde_json::Map::new();
        if let Some(c) = campaign {
            context.insert("campaign".into(), c);
        }
        let properties = props.as_object().cloned().unwrap_or_default();
        let event = crate::engine::own_event(
            flywheel_core::EventKind::Track,
            user,
            Some(name),
            message_id,
            now,
            [context, properties, serde_json::Map::new()],
        );
        if let Err(e) = pipeline.record(vec![event], false).await {
            tracing::warn!(error = %e, event = name, "could not record a message event");
        }
    }

    /// A provider's delivery-status callback: the body signed with the secret of the
    /// provider of `channel` (`X-Flywheel-Signature`, as Flywheel signs what it sends).
    ///
    /// Everything is checked before anything is written: the signature, the body, that
    /// the message exists and went out on `channel` (a message of another channel is
    /// answered as not found, so one provider cannot probe another's message ids), and
    /// that this exact signed callback was not applied before (a replay is refused and
    /// changes nothing). The replay record and the change are written in one
    /// transaction; the change follows [`callback::change`].
    pub async fn delivery_status(&self, channel: &str, signature: &str, body: &[u8]) -> Result<MessageRow> {
        let ch = channel_named(channel)?;
        let secret = self
            .0
            .providers
            .secrets
            .get(&ch)
            .ok_or_else(|| Error::NotFound(format!("a provider for {channel}")))?;
        // Replay tolerance is about real time, whatever clock the engine runs on.
        let real_now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let tolerance = std::time::Duration::from_secs(callback::TOLERANCE_SECS);
        let signed_at =
            flywheel_channels::verify_timestamp(secret, signature, body, real_now_ms / 1000, tolerance)
                .map_err(|e| Error::Forbidden(e.to_string()))?;
        let report = StatusReport::parse(body)?;
        let key = callback::replay_key(ch.as_str(), signed_at, body);
        // Kept until the signature it came with can no longer verify.
        let expires_at = (signed_at + callback::TOLERANCE_SECS as i64) * 1000;
        let id = report.message_id.clone();
        let now = self.now();
        let outcome = self
            .0
            .store
            .write_with(move |c| {
                let Some(message) = db::message(c, &report.message_id)? else {
                    return Ok(Callback::Unknown);
                };
                if message.channel != ch.as_str() {
                    return Ok(Callback::Unknown);
                }
                if !flywheel_store::callback_replays::claim(c, &key, ch.as_str(), real_now_ms, expires_at)? {
                    return Ok(Callback::Replayed);
                }
                let change = callback::change(&message, report.report, report.reason.as_deref());
                db::apply_change(c, &message.id, &change, now)?;
                Ok(Callback::Applied(db::message(c, &message.id)?.map(Box::new)))
            })
            .await?;
        match outcome {
            Callback::Applied(Some(row)) => Ok(*row),
            Callback::Applied(None) | Callback::Unknown => Err(Error::NotFound(format!(
                "message {id:?} on {}",
                ch.as_str()
            ))),
            Callback::Replayed => Err(Error::Replayed(
                "this signed callback was already applied; a provider that retries signs again with a fresh timestamp"
                    .into(),
            )),
        }
    }
}

/// What a delivery-status callback came to inside its transaction.
enum Callback {
    /// Applied (or changed nothing by the status order); the message now.
    Applied(Option<Box<MessageRow>>),
    /// No such message on this channel.
    Unknown,
    /// The same signed callback was applied before.
    Replayed,
}

fn dry_row(j: &Journey, user: &str, profile: Option<&str>) -> RunRow {
    RunRow {
        id: "dry-run".into(),
        journey: j.name.clone(),
        version: 0,
        user_id: user.to_string(),
        key: String::new(),
        step: 0,
        state: RunState::Active,
        wait_event: None,
        wait_until: None,
        path: String::new(),
        context: json!({"profile_id": profile}),
        entered_at: 0,
        ended_at: None,
        converted_at: None,
    }
}

/// A path entry with what the step does (`remind: send email`).
fn describe(j: &Journey, entry: &str) -> String {
    let id = entry.split(':').next().unwrap_or(entry);
    let what = j.steps.iter().find(|s| s.id == id).map(|s| match &s.action {
        Action::Send(send) => format!(
            "send {}",
            send.channels
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join("→")
        ),
        Action::Coupon { template, scope } => match scope {
            Some(CouponScope::Cart) => format!("issue coupon {template} for the cart's products"),
            None => format!("issue coupon {template}"),
        },
        Action::Points { amount, .. } => format!("award {amount} points"),
        Action::BirthdayPerk => "grant the tier's birthday perk".into(),
        Action::AddTag { tag } => format!("tag {tag}"),
        Action::RemoveTag { tag } => format!("untag {tag}"),
        Action::SetTrait { name, .. } => format!("set {name}"),
        Action::Webhook { .. } => "call webhook".into(),
        Action::Wait { duration } => format!("wait {duration}"),
        Action::WaitUntil(_) => "wait until".into(),
        Action::WaitForEvent { event, .. } => format!("wait for {}", event.name),
        Action::Condition { .. } => "condition".into(),
        Action::Split { .. } => "split".into(),
        Action::Exit => "exit".into(),
    });
    match what {
        Some(w) => format!("{entry} ({w})"),
        None => entry.to_string(),
    }
}
