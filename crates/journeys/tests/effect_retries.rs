//! Effect steps never skip work, on every store backend, with fakes behind the coupon and
//! points ports: an outage keeps the run at its step and is retried after the backoff; a
//! refusal follows the step's failure path; attempts that run out set the step aside in
//! the dead-letter list (with an alert) where it waits until resumed or dismissed; and a
//! retry after an unknown outcome (done, answer lost) issues nothing twice.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use common::{shanghai, Shop};
use flywheel_channels::RetryPolicy;
use flywheel_core::Timestamp;
use flywheel_journeys::db::{self, RunRow, RunState};
use flywheel_journeys::dead_letter::{dismiss, resume, Handled, WORKFLOW};
use flywheel_journeys::engine::{EngineConfig, Services};
use flywheel_journeys::ports::{
    AlertPort, CouponIssuer, DeadLettered, PointsPort, PointsView, PortError, PortFuture,
};
use flywheel_store::dead_letters;
use flywheel_store::testing::stores;
use serde_json::{json, Value};

/// What the fake answers on its next call.
#[derive(Clone)]
enum Next {
    /// An outage: nothing done.
    Outage,
    /// A refusal.
    Refused,
    /// Done, but the answer is lost (an outage as far as the caller knows).
    DoneThenLost,
}

/// A coupon issuer keyed like the real one: one coupon per key.
#[derive(Default)]
struct FakeCoupons {
    script: Mutex<VecDeque<Next>>,
    issued: Mutex<BTreeMap<String, String>>,
    calls: Mutex<Vec<String>>,
}

impl FakeCoupons {
    fn scripted(script: Vec<Next>) -> Arc<FakeCoupons> {
        Arc::new(FakeCoupons {
            script: Mutex::new(script.into()),
            ..FakeCoupons::default()
        })
    }

    fn issued(&self) -> Vec<(String, String)> {
        self.issued.lock().unwrap().clone().into_iter().collect()
    }
}

impl CouponIssuer for FakeCoupons {
    fn issue<'a>(
        &'a self,
        template: &'a str,
        user: &'a str,
        key: &'a str,
        _: Option<&'a [String]>,
    ) -> PortFuture<'a, Value> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(key.to_string());
            let next = self.script.lock().unwrap().pop_front();
            let code = {
                let mut issued = self.issued.lock().unwrap();
                match next {
                    Some(Next::Outage) => return Err(PortError::transient("store unavailable")),
                    Some(Next::Refused) => return Err(PortError::refused(format!("{template} sold out"))),
                    _ => {}
                }
                let n = issued.len();
                issued
                    .entry(key.to_string())
                    .or_insert_with(|| format!("C{n}-{user}"))
                    .clone()
            };
            if matches!(next, Some(Next::DoneThenLost)) {
                return Err(PortError::transient("connection lost after the commit"));
            }
            Ok(json!({"id": code, "code": code}))
        })
    }

    fn preview<'a>(&'a self, _: &'a str, _: Timestamp) -> PortFuture<'a, Option<Value>> {
        Box::pin(async { Ok(None) })
    }

    fn coupon<'a>(&'a self, _: &'a str) -> PortFuture<'a, Option<Value>> {
        Box::pin(async { Ok(None) })
    }
}

/// A points ledger keyed like the real one: one entry per key.
#[derive(Default)]
struct FakePoints {
    ledger: Mutex<BTreeMap<String, (String, i64)>>,
}

impl PointsPort for FakePoints {
    fn award<'a>(&'a self, user: &'a str, key: &'a str, points: i64) -> PortFuture<'a, i64> {
        Box::pin(async move {
            let mut l = self.ledger.lock().unwrap();
            l.entry(key.to_string()).or_insert((user.to_string(), points));
            Ok(l.values().filter(|(u, _)| u == user).map(|(_, p)| p).sum())
        })
    }

    fn birthday_perk<'a>(&'a self, _: &'a str, _: Timestamp) -> PortFuture<'a, Value> {
        Box::pin(async { Ok(Value::Null) })
    }

    fn view<'a>(
        &'a self,
        _: &'a str,
        _: Timestamp,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = PointsView> + Send + 'a>> {
        Box::pin(async { PointsView::default() })
    }
}

#[derive(Default)]
struct FakeAlerts(Mutex<Vec<DeadLettered>>);

impl AlertPort for FakeAlerts {
    fn dead_lettered<'a>(&'a self, d: &'a DeadLettered) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.0.lock().unwrap().push(d.clone());
            Ok(())
        })
    }
}

struct Fakes {
    coupons: Arc<FakeCoupons>,
    points: Arc<FakePoints>,
    alerts: Arc<FakeAlerts>,
}

const BACKOFF_MS: i64 = 1_000;

/// A shop whose coupon port answers `script` (then succeeds); effects are tried 3 times.
async fn shop(store: flywheel_store::Store, script: Vec<Next>) -> (Shop, Fakes) {
    let fakes = Fakes {
        coupons: FakeCoupons::scripted(script),
        points: Arc::default(),
        alerts: Arc::default(),
    };
    let config = EngineConfig {
        effect_retry: RetryPolicy {
            max_attempts: 3,
            initial_delay_ms: BACKOFF_MS as u64,
            max_delay_ms: BACKOFF_MS as u64,
        },
        ..EngineConfig::default()
    };
    let (c, p, a) = (fakes.coupons.clone(), fakes.points.clone(), fakes.alerts.clone());
    let mut shop = Shop::with_services(
        store,
        shanghai("2026-12-01 10:00:00.000"),
        config,
        move |pipeline| Services {
            coupons: Some(c),
            loyalty: Some(p),
            alerts: Some(a),
            ..common::journey_ports::services(None, None, None, Some(pipeline.clone()))
        },
    )
    .await;
    shop.journey(json!({
        "name": "welcome",
        "trigger": {"event": {"name": "Signed Up"}},
        "steps": [
            {"id": "coupon", "type": "coupon", "template": "welcome_10"},
            {"id": "points", "type": "points", "amount": 100}
        ]
    }))
    .await;
    shop.track("u1", "Signed Up", json!({})).await;
    (shop, fakes)
}

async fn the_run(shop: &Shop) -> RunRow {
    let runs = shop
        .store
        .read_with(|c| db::list_runs(c, Some("welcome"), None, 10))
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    runs.into_iter().next().unwrap()
}

async fn listed(shop: &Shop) -> Vec<dead_letters::DeadLetterRow> {
    shop.store
        .read_with(|c| dead_letters::list(c, Some(WORKFLOW)))
        .await
        .unwrap()
}

/// Fires due timers after moving the clock on by the backoff.
async fn later(shop: &Shop) {
    shop.at(shop.now() + BACKOFF_MS);
    shop.fire().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_keeps_the_run_at_its_step_until_the_retry_succeeds() {
    for store in stores("effects_outage").await {
        let (shop, f) = shop(store, vec![Next::Outage]).await;
        shop.fire().await;
        let run = the_run(&shop).await;
        assert_eq!(
            (run.state.as_str(), run.step),
            ("active", 0),
            "not moved past the coupon"
        );
        assert!(f.coupons.issued().is_empty());
        assert!(
            f.points.ledger.lock().unwrap().is_empty(),
            "nothing after the step was done"
        );
        // Not due again before the backoff.
        shop.fire().await;
        assert_eq!(f.coupons.calls.lock().unwrap().len(), 1);
        later(&shop).await;
        let run = the_run(&shop).await;
        assert_eq!(run.state, RunState::Done);
        assert_eq!(f.coupons.issued().len(), 1);
        assert_eq!(f.points.ledger.lock().unwrap().len(), 1);
        assert!(listed(&shop).await.is_empty());
        assert_eq!(
            shop.engine
                .stats()
                .failed
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_follows_the_failure_path_at_once() {
    for store in stores("effects_refusal").await {
        let (shop, f) = shop(store, vec![Next::Refused]).await;
        shop.fire().await;
        let run = the_run(&shop).await;
        assert_eq!(run.state, RunState::Done, "the run went on past the refused step");
        assert!(f.coupons.issued().is_empty());
        assert_eq!(
            f.coupons.calls.lock().unwrap().len(),
            1,
            "a refusal is not retried"
        );
        assert_eq!(f.points.ledger.lock().unwrap().len(), 1);
        assert_eq!(
            shop.engine
                .stats()
                .failed
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert!(listed(&shop).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_that_run_out_set_the_step_aside_until_it_is_resumed() {
    for store in stores("effects_dead_letter").await {
        let (shop, f) = shop(store, vec![Next::Outage, Next::Outage, Next::Outage]).await;
        shop.fire().await;
        later(&shop).await;
        assert!(
            listed(&shop).await.is_empty(),
            "two attempts of three: still retrying"
        );
        later(&shop).await;
        let dead = listed(&shop).await;
        assert_eq!(dead.len(), 1);
        let run = the_run(&shop).await;
        assert_eq!(dead[0].item, format!("{}/coupon", run.id));
        assert_eq!((dead[0].attempts, dead[0].user_id.as_deref()), (3, Some("u1")));
        assert_eq!(
            (run.state.as_str(), run.step),
            ("active", 0),
            "the run waits at the step"
        );
        let alerts = f.alerts.0.lock().unwrap().clone();
        assert_eq!(alerts.len(), 1);
        assert_eq!((alerts[0].id, alerts[0].step.as_str()), (dead[0].id, "coupon"));
        // It waits: no timer, however long.
        shop.at(shop.now() + 3_600_000);
        shop.fire().await;
        assert_eq!(f.coupons.calls.lock().unwrap().len(), 3);
        assert!(f.points.ledger.lock().unwrap().is_empty());
        // Resumed: it leaves the list and the step is done on the next firing.
        let now = shop.now();
        assert_eq!(resume(&shop.store, dead[0].id, now).await.unwrap(), Handled::Done);
        assert!(listed(&shop).await.is_empty());
        shop.fire().await;
        let run = the_run(&shop).await;
        assert_eq!(run.state, RunState::Done);
        assert_eq!(f.coupons.issued().len(), 1);
        assert_eq!(f.points.ledger.lock().unwrap().len(), 1);
        assert_eq!(
            resume(&shop.store, dead[0].id, now).await.unwrap(),
            Handled::NotFound
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dismissed_step_ends_its_run_without_being_done() {
    for store in stores("effects_dismiss").await {
        let (shop, f) = shop(store, vec![Next::Outage, Next::Outage, Next::Outage]).await;
        shop.fire().await;
        later(&shop).await;
        later(&shop).await;
        let dead = listed(&shop).await;
        assert_eq!(dead.len(), 1);
        let now = shop.now();
        assert_eq!(
            dismiss(&shop.store, dead[0].id, now).await.unwrap(),
            Handled::Done
        );
        assert!(listed(&shop).await.is_empty());
        let run = the_run(&shop).await;
        assert_eq!(run.state, RunState::Exited);
        assert!(run.path.ends_with("dismissed"), "{}", run.path);
        later(&shop).await;
        assert!(f.coupons.issued().is_empty());
        assert!(f.points.ledger.lock().unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_lost_answer_issues_nothing_twice() {
    for store in stores("effects_lost_answer").await {
        let (shop, f) = shop(store, vec![Next::DoneThenLost]).await;
        shop.fire().await;
        assert_eq!(
            f.coupons.issued().len(),
            1,
            "issued, but the engine does not know it"
        );
        assert_eq!(the_run(&shop).await.step, 0);
        later(&shop).await;
        let run = the_run(&shop).await;
        assert_eq!(run.state, RunState::Done);
        let calls = f.coupons.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0], calls[1], "the retry used the same key");
        assert_eq!(calls[0], format!("{}/coupon", run.id));
        assert_eq!(f.coupons.issued().len(), 1, "one coupon");
        let code = f.coupons.issued()[0].1.clone();
        assert_eq!(
            run.context["coupon"]["code"],
            json!(code),
            "the first coupon is the one recorded"
        );
    }
}
