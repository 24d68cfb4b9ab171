//! The journey engine under test: a store, the ingest pipeline, a controllable clock, a
//! local webhook provider that records what it is sent (verifying the signature), and —
//! for the seed fixtures — the audience engine, coupons and loyalty.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::TimeZone;
use flywheel_audience::Audience;
use flywheel_channels::{verify, Channel, RetryPolicy};
use flywheel_core::bus::{Bus, InProcessBus};
use flywheel_core::time::{from_millis, to_millis};
use flywheel_core::FixedClock;
use flywheel_ingest::ecommerce::materialise;
use flywheel_ingest::message::{parse, Envelope};
use flywheel_ingest::pipeline::CommitObserver;
use flywheel_ingest::Pipeline;
use flywheel_journeys::db::{MessageFilter, Status};
use flywheel_journeys::engine::{Engine, EngineConfig, Services};
use flywheel_journeys::providers::{Providers, WebhookSettings};
use flywheel_journeys::Journey;
use flywheel_store::{ApplyOutcome, NewEvent, Store};
use serde_json::{json, Value};

/// The binary's adapters behind the engine's ports: the tests drive the same code.
#[path = "../../../workers/src/journey_ports.rs"]
pub mod journey_ports;

pub const SECRET: &str = "whsec_test";

/// Requests the provider saw: (signature ok, idempotency key, body).
pub type Seen = Arc<Mutex<Vec<(bool, String, Value)>>>;

/// The statuses a provider answers with, in order (then 200); tests may script more.
pub type Script = Arc<Mutex<std::collections::VecDeque<u16>>>;

/// A provider answering each request with the next scripted status (then 200).
pub fn provider(script: Vec<u16>) -> (String, Seen) {
    provider_scripted(Arc::new(Mutex::new(script.into())))
}

/// A provider answering each request with the next status of `script` (then 200).
pub fn provider_scripted(script: Script) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/send", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut signature, mut key) = (0usize, String::new(), String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    match k.to_ascii_lowercase().as_str() {
                        "content-length" => length = v.trim().parse().unwrap(),
                        "x-flywheel-signature" => signature = v.trim().to_string(),
                        "idempotency-key" => key = v.trim().to_string(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
            let ok = verify(SECRET.as_bytes(), &signature, &body, now, Duration::from_secs(60)).is_ok();
            log.lock()
                .unwrap()
                .push((ok, key, serde_json::from_slice(&body).unwrap()));
            let status = script.lock().unwrap().pop_front().unwrap_or(200);
            let mut out = stream;
            let _ = write!(
                out,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (url, seen)
}

pub fn shanghai(s: &str) -> i64 {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.3f").unwrap())
        .unwrap()
        .timestamp_millis()
}

struct AudienceFeed(Audience);

impl CommitObserver for AudienceFeed {
    fn committed(&self, events: &Arc<Vec<NewEvent>>, range: Range<usize>, outcome: &ApplyOutcome) {
        self.0.observe(events, range, outcome);
    }
}

pub struct Shop {
    pub store: Store,
    pub pipeline: Pipeline,
    pub clock: Arc<FixedClock>,
    pub engine: Engine,
    pub seen: Seen,
    pub audience: Option<Audience>,
    pub coupons: Option<flywheel_promotions::coupons::CouponService>,
    pub loyalty: Option<flywheel_loyalty::Loyalty>,
    /// What the provider answers next.
    pub script: Script,
    seq: u64,
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_delay_ms: 1_000,
        max_delay_ms: 60_000,
    }
}

/// SMS and the generic webhook (webhook steps sign with its secret), both to the local provider.
fn sms_provider(url: String) -> BTreeMap<Channel, WebhookSettings> {
    [Channel::Sms, Channel::Webhook]
        .into_iter()
        .map(|c| {
            (
                c,
                WebhookSettings {
                    url: url.clone(),
                    secret: SECRET.into(),
                },
            )
        })
        .collect()
}

/// A prepared engine (not running) sending SMS and webhooks to the local provider at `url`.
async fn engine(store: &Store, clock: &Arc<FixedClock>, url: String, services: Services) -> Engine {
    let config = EngineConfig {
        retry: retry(),
        effect_retry: retry(),
        ..EngineConfig::default()
    };
    engine_with(store, clock, url, services, config).await
}

async fn engine_with(
    store: &Store,
    clock: &Arc<FixedClock>,
    url: String,
    services: Services,
    config: EngineConfig,
) -> Engine {
    let providers = Providers::connect(None, &sms_provider(url), retry()).unwrap();
    let engine = Engine::new(
        store.clone(),
        clock.clone(),
        config,
        providers,
        services,
        b"links".to_vec(),
    );
    engine.prepare(true).await.unwrap();
    engine
}

impl Shop {
    /// The engine alone (no audience, coupons or loyalty), SMS through the local provider
    /// answering with `script` (then 200).
    pub async fn new(store: Store, script: Vec<u16>, start: i64) -> Shop {
        let script: Script = Arc::new(Mutex::new(script.into()));
        let (url, seen) = provider_scripted(script.clone());
        let clock = Arc::new(FixedClock::new(from_millis(start)));
        let pipeline = Pipeline::start(store.clone(), Default::default());
        let services = journey_ports::services(None, None, None, Some(pipeline.clone()));
        let engine = engine(&store, &clock, url, services).await;
        Shop {
            store,
            pipeline,
            clock,
            engine,
            seen,
            audience: None,
            coupons: None,
            loyalty: None,
            script,
            seq: 0,
        }
    }

    /// The engine with the given services around the pipeline (fakes behind its ports),
    /// effect retries as `config` says.
    pub async fn with_services(
        store: Store,
        start: i64,
        config: EngineConfig,
        services: impl FnOnce(&Pipeline) -> Services,
    ) -> Shop {
        let script: Script = Arc::default();
        let (url, seen) = provider_scripted(script.clone());
        let clock = Arc::new(FixedClock::new(from_millis(start)));
        let pipeline = Pipeline::start(store.clone(), Default::default());
        let services = services(&pipeline);
        let engine = engine_with(&store, &clock, url, services, config).await;
        Shop {
            store,
            pipeline,
            clock,
            engine,
            seen,
            audience: None,
            coupons: None,
            loyalty: None,
            script,
            seq: 0,
        }
    }

    /// Every service: the audience engine fed by the pipeline (segment transitions in the
    /// log the engine follows), coupons, loyalty; SMS through the local provider.
    pub async fn full(store: Store, start: i64) -> Shop {
        let script: Script = Arc::default();
        let (url, seen) = provider_scripted(script.clone());
        let clock = Arc::new(FixedClock::new(from_millis(start)));
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::default());
        let audience = Audience::open(store.clone(), Default::default(), bus.clone(), clock.clone())
            .await
            .unwrap();
        let pipeline = Pipeline::start_observed(
            store.clone(),
            Default::default(),
            Some(Arc::new(AudienceFeed(audience.clone()))),
        );
        let coupons = flywheel_promotions::coupons::CouponService::new(store.clone(), clock.clone());
        let loyalty =
            flywheel_loyalty::Loyalty::new(store.clone(), clock.clone(), Default::default()).unwrap();
        let services = journey_ports::services(
            Some(audience.clone()),
            Some(coupons.clone()),
            Some(loyalty.clone()),
            Some(pipeline.clone()),
        );
        let engine = engine(&store, &clock, url, services).await;
        let templates: Vec<flywheel_promotions::coupons::CouponTemplate> =
            serde_json::from_str(flywheel_journeys::seeds::COUPON_TEMPLATES).unwrap();
        for t in templates {
            coupons.create_template(t).await.unwrap();
        }
        Shop {
            store,
            pipeline,
            clock,
            engine,
            seen,
            audience: Some(audience),
            coupons: Some(coupons),
            loyalty: Some(loyalty),
            script,
            seq: 0,
        }
    }

    /// The provider answers the next requests with `statuses` (then 200).
    pub fn provider_script(&self, statuses: Vec<u16>) {
        *self.script.lock().unwrap() = statuses.into();
    }

    pub fn at(&self, t: i64) {
        self.clock.set(from_millis(t));
        if let Some(a) = &self.audience {
            a.tick();
        }
    }

    /// A user's stored profile traits.
    pub async fn traits_of(&self, user: &str) -> serde_json::Map<String, Value> {
        let u = user.to_string();
        self.store
            .read_with(move |c| {
                let Some(p) = flywheel_store::read::profile_id_of(c, &flywheel_core::Identity::User(u))?
                else {
                    return Ok(serde_json::Map::new());
                };
                Ok(flywheel_store::read::profile(c, &p)?
                    .map(|p| p.traits)
                    .unwrap_or_default())
            })
            .await
            .unwrap()
    }

    pub fn clock_now(&self) -> flywheel_core::Timestamp {
        flywheel_core::Clock::now(self.clock.as_ref())
    }

    pub fn now(&self) -> i64 {
        to_millis(flywheel_core::Clock::now(self.clock.as_ref()))
    }

    /// Submits one message stamped now (or at `msg["timestamp"]` when given).
    pub async fn submit(&mut self, msg: Value) {
        self.seq += 1;
        let mut msg = msg;
        msg["messageId"] = json!(format!("m{}", self.seq));
        if msg.get("timestamp").is_none() {
            msg["timestamp"] = json!(from_millis(self.now()).to_rfc3339());
        }
        let env = Envelope {
            index: 0,
            kind: None,
            received_at: Some(from_millis(self.now())),
            sent_at: None,
            context: None,
            integrations: None,
            ..Default::default()
        };
        let parsed = parse(msg, &env).unwrap();
        let ev = materialise(parsed.event, None, 0).unwrap();
        self.pipeline.submit(vec![ev]).await.unwrap();
        if let Some(a) = &self.audience {
            a.flush().await;
        }
        while self.engine.tail_once().await.unwrap() > 0 {}
    }

    pub async fn user(&mut self, id: &str, phone: &str) {
        self.submit(json!({"type": "identify", "userId": id, "traits": {"phone": phone}}))
            .await;
        self.engine
            .set_consent(id, "sms", "subscribed", "test")
            .await
            .unwrap();
    }

    pub async fn track(&mut self, user: &str, name: &str, props: Value) {
        self.submit(json!({"type": "track", "userId": user, "event": name, "properties": props}))
            .await;
    }

    /// A past event at `at` (ms).
    pub async fn track_at(&mut self, user: &str, name: &str, props: Value, at: i64) {
        self.submit(
            json!({"type": "track", "userId": user, "event": name, "properties": props,
            "timestamp": from_millis(at).to_rfc3339()}),
        )
        .await;
    }

    pub async fn fire(&self) {
        // Segment and tag transitions are logged by the audience, then read from the log.
        if let Some(a) = &self.audience {
            a.flush().await;
        }
        while self.engine.tail_transitions_once().await.unwrap() > 0 {}
        while self.engine.fire_due().await.unwrap() > 0 {}
    }

    pub async fn journey(&self, def: Value) {
        let j = Journey::from_json(&def.to_string()).unwrap();
        self.start(&j).await;
    }

    pub async fn start(&self, j: &Journey) {
        self.engine.save(j).await.unwrap();
        self.engine.set_status(&j.name, Status::Active).await.unwrap();
    }

    pub async fn seed(&self, name: &str) {
        let j = flywheel_journeys::seeds::journeys()
            .unwrap()
            .into_iter()
            .find(|j| j.name == name)
            .unwrap();
        self.start(&j).await;
    }

    pub fn sent_to(&self) -> Vec<String> {
        let mut to: Vec<String> = self
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, b)| b["user_id"].as_str().unwrap().to_string())
            .collect();
        to.sort();
        to
    }

    pub fn texts_to(&self, user: &str) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, b)| b["user_id"] == user)
            .map(|(_, _, b)| b["text"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn statuses(&self, user: &str) -> Vec<String> {
        self.engine
            .messages(MessageFilter::User, user, 50)
            .await
            .unwrap()
            .into_iter()
            .map(|m| format!("{}:{}", m.status, m.reason.unwrap_or_default()))
            .collect()
    }
}
