//! The journey engine (issue 6 §1, §3): enters users, advances runs on durable timers,
//! does each step's effect once, and reacts to awaited events and goals.
//!
//! - **Triggers** come from the event log, read in `seq` order behind a cursor that moves
//!   in the same transaction as the entries it causes ([`crate::tail`]): after a crash
//!   nothing is entered twice or missed. Segment and tag triggers follow the durable
//!   transitions log the same way ([`crate::transitions`]).
//! - **Runs** advance only through their timer (one per run, keyed by the run id): an
//!   entry or a resumed wait makes it due now; a wait makes it due at its end. Workers
//!   claim due timers with a lease ([`flywheel_store::timers`]), so a timer held by a
//!   dead worker fires again.
//! - **Effects** are recorded `pending` before they are done and settled after, keyed by
//!   (run, step) ([`crate::effects`]); a step found settled is not done again, one found
//!   pending is redone with the same idempotency key (the email's Message-ID, the
//!   webhook's `Idempotency-Key`, the points ledger key).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono_tz::Tz;
use flywheel_channels::{Channel, ConsentPolicy, RetryPolicy, VariableCatalog};
use flywheel_core::time::to_millis;
use flywheel_core::Clock;
use flywheel_store::{timers, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::db::{self, JourneyRow, RunRow, RunState, Status};
use crate::definition::Journey;
use crate::delivery::DeliveryPolicy;
use crate::providers::Providers;
use crate::walk::{self, Park, Probe};

/// Effects a worker does at once (provider calls in flight).
const MAX_IN_FLIGHT: usize = 32;

/// Engine settings (`[journeys]` in `flywheel.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Shop timezone (quiet hours, waits until a time of day, schedules, dates).
    #[serde(with = "tz_name")]
    pub timezone: Tz,
    /// Quiet hours and frequency caps.
    pub delivery: DeliveryPolicy,
    /// Which channels count silence as consent.
    pub consent: ConsentPolicy,
    /// Base URL of this server as users' mail clients reach it (open pixel, click
    /// redirects, unsubscribe links); empty: `http://` and the address `serve` listens on.
    pub public_url: String,
    /// Timer workers.
    pub workers: usize,
    /// Timers claimed at once by a worker.
    pub batch: usize,
    /// How long a claimed timer is held before another worker may take it (ms).
    pub lease_ms: i64,
    /// Provider retries: attempts and backoff.
    pub retry: RetryPolicy,
    /// Effect retries after an outage (coupon, points, birthday perk, tag and trait steps
    /// whose store or service was unavailable): attempts and backoff. When they run out
    /// the step is set aside in the dead-letter list and the run waits there.
    pub effect_retry: RetryPolicy,
    /// The shop's name (`shop.name` in templates).
    pub shop_name: String,
    /// The shop's address (`shop.url` in templates).
    pub shop_url: String,
    /// The SMTP relay email goes through (`[journeys.email]`).
    pub email: Option<flywheel_channels::email::SmtpSettings>,
    /// Webhook providers by channel (`[journeys.providers.sms]`, `push`, `wechat`, `webhook`).
    pub providers: BTreeMap<Channel, crate::providers::WebhookSettings>,
    /// Bounds on rendering one message (`[journeys.rendering]`: steps, output bytes, time,
    /// memory).
    pub rendering: flywheel_channels::RenderLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            timezone: chrono_tz::Asia::Shanghai,
            delivery: DeliveryPolicy::default(),
            consent: ConsentPolicy::default(),
            public_url: String::new(),
            workers: 2,
            batch: 500,
            lease_ms: 30_000,
            retry: RetryPolicy::default(),
            effect_retry: RetryPolicy {
                max_attempts: 10,
                initial_delay_ms: 1_000,
                max_delay_ms: 300_000,
            },
            shop_name: "Flywheel Shop".into(),
            shop_url: "https://shop.example".into(),
            email: None,
            providers: BTreeMap::new(),
            rendering: flywheel_channels::RenderLimits::default(),
        }
    }
}

mod tz_name {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse()
            .map_err(|_| serde::de::Error::custom(format!("unknown timezone {name:?}")))
    }
}

/// The other bounded contexts a journey acts through, as ports ([`crate::ports`]) the
/// binary wires to the real services; absent ones make their steps fail (logged) instead
/// of the engine refusing to run.
#[derive(Clone, Default)]
pub struct Services {
    /// Segment expressions (conditions, audiences) and manual tags.
    pub audience: Option<Arc<dyn crate::ports::AudiencePort>>,
    /// Coupon issue.
    pub coupons: Option<Arc<dyn crate::ports::CouponIssuer>>,
    /// Points, tiers and birthday perks.
    pub loyalty: Option<Arc<dyn crate::ports::PointsPort>>,
    /// Events the engine records (`identify` for traits, `Email Opened`, `Link Clicked`).
    pub pipeline: Option<Arc<dyn crate::ports::EventRecorder>>,
    /// Alerts (a step set aside in the dead-letter list).
    pub alerts: Option<Arc<dyn crate::ports::AlertPort>>,
    /// Injected faults (tests only).
    pub faults: Option<Arc<dyn crate::ports::FaultPoint>>,
    /// Where frequency-cap slots are reserved ([`crate::caps`]): Redis when several
    /// processes send; absent, in this process's memory.
    pub caps: Option<Arc<dyn crate::caps::CapReservations>>,
}

/// Counters for `/metrics` and the benchmark.
#[derive(Debug, Default)]
pub struct Stats {
    /// Timers fired.
    pub fired: AtomicU64,
    /// Runs entered.
    pub entered: AtomicU64,
    /// Entries refused by the entry policy, audience or concurrency limit.
    pub refused: AtomicU64,
    /// Messages sent.
    pub sent: AtomicU64,
    /// Messages suppressed or skipped.
    pub not_sent: AtomicU64,
    /// Effects that failed.
    pub failed: AtomicU64,
    /// Effect steps set aside in the dead-letter list.
    pub dead_lettered: AtomicU64,
    /// Marketing messages decided by the message log alone because their cap slots
    /// could not be reserved (the reservations backend was unreachable).
    pub cap_unshared: AtomicU64,
}

/// Definitions by (name, version).
type Versions = HashMap<(String, i64), Arc<Journey>>;

/// What one claim transaction settled and handed on.
#[derive(Default)]
struct Claim {
    /// Schedule timers, leased.
    schedules: Vec<flywheel_store::timers::TimerRow>,
    /// Runs at a step with an effect, leased.
    work: Vec<RunRow>,
    /// Timers finished in the transaction (waits moved on, runs ended, orphans removed).
    done: usize,
}

/// Loaded definitions: every version seen, and the current version and status by name.
#[derive(Default)]
pub(crate) struct Defs {
    versions: Versions,
    pub(crate) current: BTreeMap<String, (JourneyRow, Arc<Journey>)>,
}

impl Defs {
    pub(crate) fn get(&self, name: &str, version: i64) -> Option<Arc<Journey>> {
        self.versions.get(&(name.to_string(), version)).cloned()
    }

    pub(crate) fn versions_map(&self) -> Versions {
        self.versions.clone()
    }

    pub(crate) fn status(&self, name: &str) -> Option<Status> {
        self.current.get(name).map(|(row, _)| row.status)
    }

    /// What [`flywheel_store::journeys::fingerprint`] reads when the store holds exactly
    /// these definitions.
    pub(crate) fn fingerprint(&self) -> Fingerprint {
        let mut out: Fingerprint = self
            .current
            .values()
            .map(|(r, _)| (r.name.clone(), r.version, r.status, r.updated_at))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Active journeys.
    pub(crate) fn active(&self) -> impl Iterator<Item = &(JourneyRow, Arc<Journey>)> {
        self.current.values().filter(|(r, _)| r.status == Status::Active)
    }
}

/// Each journey's `(name, version, status, updated_at)`, by name.
pub(crate) type Fingerprint = Vec<(String, i64, Status, i64)>;

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EngineConfig,
    pub(crate) providers: Providers,
    pub(crate) services: Services,
    pub(crate) link_secret: Vec<u8>,
    pub(crate) defs: RwLock<Defs>,
    /// Runs a worker of this process is advancing: a timer of theirs claimed again (its
    /// lease ran out during a slow provider call) is left alone, not advanced twice.
    pub(crate) in_flight: std::sync::Mutex<std::collections::HashSet<String>>,
    pub(crate) timers_due: Arc<Notify>,
    pub(crate) events_arrived: Arc<Notify>,
    pub(crate) transitions_arrived: Arc<Notify>,
    /// Test-only injected failures of the transitions tail's transaction.
    pub(crate) transition_fault: flywheel_core::faults::Fault,
    pub(crate) stopping: AtomicBool,
    pub(crate) stats: Stats,
    /// Frequency-cap reservations ([`crate::caps`]).
    pub(crate) caps: Arc<dyn crate::caps::CapReservations>,
    /// When the last warning that cap reservations failed was logged (ms).
    pub(crate) cap_warned_at: std::sync::atomic::AtomicI64,
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine(pub(crate) Arc<Inner>);

/// The template variables journeys fill (see docs/channels.md).
pub fn catalog() -> VariableCatalog {
    let mut paths: Vec<String> = VariableCatalog::standard().paths().map(String::from).collect();
    paths.extend(
        [
            "journey.name",
            "journey.step",
            "run.key",
            "event.*",
            "links.open_pixel",
            "perk.tier",
            "perk.value_yuan",
        ]
        .into_iter()
        .map(String::from),
    );
    VariableCatalog::new(paths)
}

impl Engine {
    /// An engine over `store` (not running: call [`Engine::start`]).
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
        providers: Providers,
        services: Services,
        link_secret: Vec<u8>,
    ) -> Engine {
        let caps = services
            .caps
            .clone()
            .unwrap_or_else(|| Arc::new(crate::caps::MemoryCapReservations::default()));
        Engine(Arc::new(Inner {
            caps,
            cap_warned_at: Default::default(),
            store,
            clock,
            config,
            providers,
            services,
            link_secret,
            defs: RwLock::default(),
            in_flight: Default::default(),
            timers_due: Arc::new(Notify::new()),
            events_arrived: Arc::new(Notify::new()),
            transitions_arrived: Arc::new(Notify::new()),
            transition_fault: Default::default(),
            stopping: AtomicBool::new(false),
            stats: Stats::default(),
        }))
    }

    /// Loads definitions (and every version with runs in progress), places the event and
    /// transitions cursors (at the end of their logs the first time, so history does not
    /// trigger journeys), and releases leases held by a crashed predecessor when
    /// `single_process`. [`Engine::start`] does this first; tests drive the engine by
    /// hand after it ([`Engine::tail_once`], [`Engine::fire_due`]).
    pub async fn prepare(&self, single_process: bool) -> crate::Result<()> {
        self.reload().await?;
        for (name, version) in self.0.store.read_with(db::versions_in_progress).await? {
            self.journey_for(&name, version).await?;
        }
        self.0
            .store
            .write_with(move |c| {
                if db::event_cursor(c)?.is_none() {
                    let last = db::last_event_seq(c)?;
                    db::set_event_cursor(c, last)?;
                }
                crate::transitions::place_cursor(c)?;
                if single_process {
                    timers::release_leases(c)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// [`Engine::prepare`]s, then starts the timer workers, the event tail, the
    /// transitions tail (woken by any message on `bus`, which only says that something
    /// was logged) and the definitions refresher on the current runtime.
    pub async fn start(
        &self,
        single_process: bool,
        bus: Option<Arc<dyn flywheel_core::bus::Bus>>,
    ) -> crate::Result<()> {
        self.prepare(single_process).await?;
        for _ in 0..self.0.config.workers.max(1) {
            let e = self.clone();
            tokio::spawn(async move { e.worker_loop().await });
        }
        let e = self.clone();
        tokio::spawn(async move { e.tail_loop().await });
        let e = self.clone();
        tokio::spawn(async move { e.transitions_loop().await });
        let e = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !e.0.stopping.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Err(err) = e.reload().await {
                    tracing::warn!(error = %err, "reloading journey definitions failed");
                }
                if let Err(err) = e.ensure_schedules().await {
                    tracing::warn!(error = %err, "scheduling journey triggers failed");
                }
            }
        });
        if let Some(bus) = bus {
            self.wake_on(bus);
        }
        self.ensure_schedules().await?;
        Ok(())
    }

    /// Wakes the transitions tail whenever a message is published on `bus` (the audience
    /// publishes each transition after logging it). Only a wake-up: what triggers is
    /// read from the log, so a missed message delays an entry by one poll at most.
    fn wake_on(&self, bus: Arc<dyn flywheel_core::bus::Bus>) {
        let e = self.clone();
        let mut rx = bus.subscribe();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
                if e.0.stopping.load(Ordering::Relaxed) {
                    break;
                }
                e.transitions_appended();
            }
        });
    }

    /// Stops the loops (they finish the batch in hand).
    pub fn stop(&self) {
        self.0.stopping.store(true, Ordering::Relaxed);
        self.0.timers_due.notify_waiters();
        self.0.events_arrived.notify_waiters();
        self.0.transitions_arrived.notify_waiters();
    }

    /// Tells the tail that events were committed (the ingest observer calls it).
    pub fn events_committed(&self) {
        self.0.events_arrived.notify_one();
    }

    /// The engine's counters.
    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    /// Engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.0.config
    }

    pub(crate) fn now(&self) -> i64 {
        to_millis(self.0.clock.now())
    }

    /// Re-reads journeys and their current versions (other processes and the CLI change them).
    pub async fn reload(&self) -> crate::Result<()> {
        let rows = self.0.store.read_with(db::journeys).await?;
        let mut parsed = Vec::with_capacity(rows.len());
        {
            let defs = self.0.defs.read().map_err(|_| crate::Error::Poisoned)?;
            for row in rows {
                let j = match defs.get(&row.name, row.version) {
                    Some(j) => j,
                    None => match Journey::from_json(&row.definition) {
                        Ok(j) => Arc::new(j),
                        Err(e) => {
                            tracing::warn!(journey = %row.name, version = row.version, error = %e, "stored journey does not parse");
                            continue;
                        }
                    },
                };
                parsed.push((row, j));
            }
        }
        let mut defs = self.0.defs.write().map_err(|_| crate::Error::Poisoned)?;
        defs.current.clear();
        for (row, j) in parsed {
            defs.versions.insert((row.name.clone(), row.version), j.clone());
            defs.current.insert(row.name.clone(), (row, j));
        }
        Ok(())
    }

    /// The definition a run runs on (loading an old version on first use).
    pub(crate) async fn journey_for(&self, name: &str, version: i64) -> crate::Result<Option<Arc<Journey>>> {
        if let Some(j) = self
            .0
            .defs
            .read()
            .map_err(|_| crate::Error::Poisoned)?
            .get(name, version)
        {
            return Ok(Some(j));
        }
        let (n, v) = (name.to_string(), version);
        let Some(text) = self.0.store.read_with(move |c| db::version(c, &n, v)).await? else {
            return Ok(None);
        };
        let j = Arc::new(Journey::from_json(&text).map_err(|e| crate::Error::Invalid(e.to_string()))?);
        self.0
            .defs
            .write()
            .map_err(|_| crate::Error::Poisoned)?
            .versions
            .insert((name.to_string(), version), j.clone());
        Ok(Some(j))
    }

    pub(crate) fn status_of(&self, name: &str) -> Option<Status> {
        self.0.defs.read().ok().and_then(|d| d.status(name))
    }

    /// A probe answering segment questions about one profile.
    pub(crate) fn probe(&self, profile_id: Option<String>) -> AudienceProbe {
        AudienceProbe {
            audience: self.0.services.audience.clone(),
            profile_id,
        }
    }

    async fn worker_loop(&self) {
        while !self.0.stopping.load(Ordering::Relaxed) {
            match self.fire_due().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "journey timers failed; retrying"),
            }
            let sleep = self.sleep_until_next_due().await;
            tokio::select! {
                _ = self.0.timers_due.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }

    pub(crate) async fn sleep_until_next_due(&self) -> Duration {
        let now = self.now();
        match self.0.store.read_with(timers::next_due).await {
            Ok(Some(due)) if due > now => Duration::from_millis((due - now).min(1_000) as u64),
            Ok(Some(_)) => Duration::from_millis(50),
            _ => Duration::from_millis(1_000),
        }
    }

    /// Claims and fires one batch of due timers; returns how many fired.
    pub async fn fire_due(&self) -> crate::Result<usize> {
        let now = self.now();
        let lease = self.0.config.lease_ms;
        let limit = self.0.config.batch.max(1) as i64;
        let (defs, paused): (Versions, HashSet<String>) = {
            let d = self.0.defs.read().map_err(|_| crate::Error::Poisoned)?;
            let paused = d
                .current
                .iter()
                .filter(|(_, (row, _))| row.status == Status::Paused)
                .map(|(name, _)| name.clone())
                .collect();
            (d.versions.clone(), paused)
        };
        let tz = self.0.config.timezone;
        let engine = self.clone();
        // In one transaction: read the due timers, resolve ended waits (a run leaves
        // `waiting` once, here or by its awaited event: crate::tail), walk each run to its
        // next wait or end and write it with its timer moved or removed. Only runs that
        // reach a step with an effect are leased and handed on.
        let claim = self
            .0
            .store
            .write_with(move |c| {
                let due = timers::due(c, now, limit)?;
                let keys: Vec<&str> = due
                    .iter()
                    .map(|t| t.key.as_str())
                    .filter(|k| !k.starts_with(crate::schedule::PREFIX))
                    .collect();
                let mut runs: HashMap<String, RunRow> = db::runs(c, &keys)?
                    .into_iter()
                    .map(|r| (r.id.clone(), r))
                    .collect();
                let busy: HashSet<String> = engine
                    .0
                    .in_flight
                    .lock()
                    .map_err(|_| flywheel_store::Error::Corrupt("journey in-flight set poisoned".into()))?
                    .clone();
                let mut claim = Claim::default();
                for t in due {
                    if t.key.starts_with(crate::schedule::PREFIX) {
                        if timers::lease(c, &t.key, now, now.saturating_add(lease))? {
                            claim.schedules.push(t);
                        }
                        continue;
                    }
                    let Some(mut run) = runs.remove(&t.key) else {
                        timers::complete(c, &t.key)?;
                        claim.done += 1;
                        continue;
                    };
                    if busy.contains(&run.id) {
                        continue;
                    }
                    if !run.state.in_progress() {
                        timers::complete(c, &run.id)?;
                        claim.done += 1;
                        continue;
                    }
                    if paused.contains(&run.journey) {
                        timers::reschedule(c, &run.id, now.saturating_add(10_000))?;
                        claim.done += 1;
                        continue;
                    }
                    let Some(j) = defs.get(&(run.journey.clone(), run.version)) else {
                        // Not loaded yet: the async path loads it.
                        timers::lease(c, &run.id, now, now.saturating_add(lease))?;
                        claim.work.push(run);
                        continue;
                    };
                    walk::wake(j, &mut run);
                    let probe = engine.probe(profile_of(&run));
                    match walk::walk(j, &mut run, now, tz, &probe) {
                        Park::Wait { until, .. } => {
                            db::update_run(c, &run, now)?;
                            timers::reschedule(c, &run.id, until)?;
                            claim.done += 1;
                        }
                        Park::End(_) => {
                            db::update_run(c, &run, now)?;
                            timers::complete(c, &run.id)?;
                            claim.done += 1;
                        }
                        Park::Effect(_) => {
                            db::update_run(c, &run, now)?;
                            timers::lease(c, &run.id, now, now.saturating_add(lease))?;
                            claim.work.push(run);
                        }
                    }
                }
                Ok(claim)
            })
            .await?;
        let Claim {
            schedules: scheduled,
            work,
            done,
        } = claim;
        let n = done + work.len() + scheduled.len();
        if n == 0 {
            return Ok(0);
        }
        self.0.stats.fired.fetch_add(n as u64, Ordering::Relaxed);
        // Runs handed on are in flight here until advanced (a lapsing lease does not
        // hand them to the other worker).
        let mine: Vec<String> = work.iter().map(|r| r.id.clone()).collect();
        if let Ok(mut busy) = self.0.in_flight.lock() {
            busy.extend(mine.iter().cloned());
        }
        for t in scheduled {
            if let Err(e) = self.fire_schedule(&t).await {
                tracing::warn!(timer = %t.key, error = %e, "scheduled journey trigger failed; it fires again after its lease");
            }
        }
        let renewing = self.renew_leases(mine.clone(), lease);
        let advanced = self.advance(work, now).await;
        renewing.abort();
        if let Ok(mut busy) = self.0.in_flight.lock() {
            for id in &mine {
                busy.remove(id);
            }
        }
        advanced?;
        Ok(n)
    }

    /// Keeps the leases of the runs this process works on from lapsing (every third of
    /// the lease) until the returned task is aborted: another worker process takes a run
    /// over only when this one stopped renewing (it died), never while it is still
    /// sending.
    fn renew_leases(&self, ids: Vec<String>, lease: i64) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        let every = std::time::Duration::from_millis(u64::try_from(lease / 3).unwrap_or(1_000).max(50));
        let ids = Arc::new(ids);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let now = engine.now();
                let ids = ids.clone();
                let renewed = engine
                    .0
                    .store
                    .write_with(move |c| timers::extend(c, &ids, now, now.saturating_add(lease)))
                    .await;
                if let Err(e) = renewed {
                    tracing::warn!(error = %e, "renewing journey timer leases failed");
                }
            }
        })
    }

    /// Walks runs until each waits, ends or is deferred, doing effects on the way.
    pub(crate) async fn advance(&self, mut work: Vec<RunRow>, now: i64) -> crate::Result<()> {
        let tz = self.0.config.timezone;
        while !work.is_empty() {
            let mut parked: Vec<(RunRow, Option<i64>)> = Vec::new();
            let mut effects = Vec::new();
            for mut run in work.drain(..) {
                if run.state != RunState::Active {
                    // Stopped, converted or ended meanwhile: drop the timer.
                    parked.push((run, None));
                    continue;
                }
                if self.status_of(&run.journey) == Some(Status::Paused) {
                    parked.push((run, Some(now + 10_000)));
                    continue;
                }
                let Some(j) = self.journey_for(&run.journey, run.version).await? else {
                    walk::push_path(&mut run, "missing-definition");
                    run.state = RunState::Exited;
                    run.ended_at = Some(now);
                    parked.push((run, None));
                    continue;
                };
                let probe = self.probe(profile_of(&run));
                match walk::walk(&j, &mut run, now, tz, &probe) {
                    Park::Wait { until, .. } => parked.push((run, Some(until))),
                    Park::End(_) => parked.push((run, None)),
                    Park::Effect(i) => effects.push((j, run, i)),
                }
            }
            self.park(parked, now).await?;
            if effects.is_empty() {
                break;
            }
            let keys = effects
                .iter()
                .map(|(j, run, i)| crate::effects::effect_key(&run.id, &j.steps[*i].id))
                .collect();
            let priors = self.mark_pending(keys).await?;
            let mut tasks = tokio::task::JoinSet::new();
            let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
            for ((j, run, i), prior) in effects.into_iter().zip(priors) {
                let e = self.clone();
                let slots = in_flight.clone();
                tasks.spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    e.effect(j, run, i, prior).await
                });
            }
            let mut deferred = Vec::new();
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok(Ok(crate::effects::Done::Advanced(run))) => work.push(run),
                    Ok(Ok(crate::effects::Done::Later(run, at))) => deferred.push((run, Some(at))),
                    Ok(Ok(crate::effects::Done::Gone)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "journey step failed; the timer fires again after its lease")
                    }
                    Err(e) => tracing::error!(error = %e, "journey step panicked"),
                }
            }
            self.park(deferred, now).await?;
        }
        Ok(())
    }

    /// Writes parked runs in one transaction: a wake-up time reschedules the run's timer,
    /// none completes it. Runs ended elsewhere meanwhile (stopped) are not overwritten.
    async fn park(&self, parked: Vec<(RunRow, Option<i64>)>, now: i64) -> crate::Result<()> {
        if parked.is_empty() {
            return Ok(());
        }
        self.0
            .store
            .write_with(move |c| {
                for (run, wake) in &parked {
                    db::update_run(c, run, now)?;
                    match wake {
                        Some(at) => {
                            timers::reschedule(c, &run.id, *at)?;
                        }
                        None => {
                            timers::complete(c, &run.id)?;
                        }
                    }
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}

/// An event the engine records itself (a trait a step sets, an open, a click, an
/// unsubscribe), sourced `journeys`; `message_id` makes a repeat a duplicate.
pub(crate) fn own_event(
    kind: flywheel_core::EventKind,
    user: &str,
    name: Option<&str>,
    message_id: String,
    now: flywheel_core::Timestamp,
    fields: [serde_json::Map<String, serde_json::Value>; 3],
) -> flywheel_store::NewEvent {
    let [context, properties, traits] = fields;
    let event = flywheel_core::Event {
        message_id,
        kind,
        user_id: Some(user.to_string()),
        anonymous_id: None,
        event: name.map(String::from),
        name: None,
        group_id: None,
        previous_id: None,
        timestamp: now,
        original_timestamp: None,
        sent_at: None,
        received_at: now,
        context,
        properties,
        traits,
        integrations: serde_json::Map::new(),
    };
    flywheel_store::NewEvent::new(event, Some("journeys".into()))
}

/// The profile id kept in a run's context at entry.
pub(crate) fn profile_of(run: &RunRow) -> Option<String> {
    run.context
        .get("profile_id")
        .and_then(|v| v.as_str())
        .map(String::from)
}

/// Segment questions about one profile, answered through the audience port.
pub(crate) struct AudienceProbe {
    audience: Option<Arc<dyn crate::ports::AudiencePort>>,
    profile_id: Option<String>,
}

impl Probe for AudienceProbe {
    fn holds(&self, expression: &str) -> bool {
        let (Some(a), Some(p)) = (&self.audience, &self.profile_id) else {
            return false;
        };
        a.is_member(expression, p)
    }
}
