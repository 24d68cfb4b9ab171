//! Every transition the engine computes reaches the durable transitions log, on both
//! backends: live ones in order, a merged-away profile's exits, and — after a restart —
//! what changed while nothing was recording (found by the reconciliation at start).

use std::ops::Range;
use std::sync::Arc;

use flywheel_audience::config::AudienceConfig;
use flywheel_audience::{Audience, SegmentInput};
use flywheel_core::bus::InProcessBus;
use flywheel_core::time::{from_millis, parse_timestamp, to_millis};
use flywheel_core::FixedClock;
use flywheel_ingest::ecommerce::materialise;
use flywheel_ingest::message::{parse, Envelope};
use flywheel_ingest::pipeline::CommitObserver;
use flywheel_ingest::Pipeline;
use flywheel_store::transitions::{self as log, Cause, Change, Kind, TransitionRow};
use flywheel_store::{ApplyOutcome, NewEvent, Store};
use serde_json::{json, Value};

const HOUR: i64 = 3_600_000;

struct Observer(Audience);

impl CommitObserver for Observer {
    fn committed(&self, events: &Arc<Vec<NewEvent>>, range: Range<usize>, outcome: &ApplyOutcome) {
        self.0.observe(events, range, outcome);
    }
}

fn t0() -> i64 {
    to_millis(parse_timestamp("2025-01-01T00:00:00+08:00").unwrap())
}

async fn open(store: &Store, clock: &Arc<FixedClock>) -> Audience {
    Audience::open(
        store.clone(),
        AudienceConfig::default(),
        Arc::new(InProcessBus::new(1024)),
        clock.clone(),
    )
    .await
    .unwrap()
}

async fn submit(pipeline: &Pipeline, msg: Value, at: i64) {
    let env = Envelope {
        index: 0,
        kind: None,
        received_at: Some(from_millis(at)),
        sent_at: None,
        context: None,
        integrations: None,
        ..Default::default()
    };
    let mut msg = msg;
    msg["timestamp"] = json!(from_millis(at).to_rfc3339());
    let parsed = parse(msg, &env).unwrap();
    let ev = materialise(parsed.event, None, 0).unwrap();
    pipeline.submit(vec![ev]).await.unwrap();
}

fn ping(id: &str, who: Value) -> Value {
    let mut m = json!({"type": "track", "event": "Ping", "messageId": id});
    for (k, v) in who.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

/// The log's segment rows: `(profile, change, cause)`.
async fn logged(store: &Store, segment: &str) -> Vec<(String, Change, Cause)> {
    let rows: Vec<TransitionRow> = store.read_with(|c| log::after(c, 0, 10_000)).await.unwrap();
    rows.into_iter()
        .filter(|r| r.kind == Kind::Segment && r.name == segment)
        .map(|r| (r.profile_id, r.change, r.cause))
        .collect()
}

async fn profile_of(store: &Store, user: &str) -> String {
    let id = flywheel_core::Identity::User(user.into());
    store
        .read_with(move |c| flywheel_store::read::profile_id_of(c, &id))
        .await
        .unwrap()
        .unwrap()
        .0
}

/// An engine fed by its own pipeline, on `store` at `t0()`, that has seen `first` ping at
/// `first_at` (so `Ping` is a known event name) and then got segment `name` defined as
/// `expression` (taking its first members silently).
async fn shop_with_segment(
    store: &Store,
    first: Value,
    first_at: i64,
    name: &str,
    expression: &str,
) -> (Arc<FixedClock>, Audience, Pipeline) {
    let clock = Arc::new(FixedClock::new(from_millis(t0())));
    let audience = open(store, &clock).await;
    let pipeline = Pipeline::start_observed(
        store.clone(),
        Default::default(),
        Some(Arc::new(Observer(audience.clone()))),
    );
    submit(&pipeline, first, first_at).await;
    audience.flush().await;
    audience
        .put_segment(name.into(), &SegmentInput::text(expression), None, false)
        .await
        .unwrap();
    audience.flush().await;
    (clock, audience, pipeline)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_away_profile_logs_its_exits() {
    for store in flywheel_store::testing::stores("audience_merge_exits").await {
        let (_clock, audience, pipeline) = shop_with_segment(
            &store,
            ping("m0", json!({"userId": "u1"})),
            t0(),
            "pinged",
            "event(\"Ping\") >= 1",
        )
        .await;
        // A device pings, then signs in as u1: the two profiles merge.
        submit(&pipeline, ping("m1", json!({"anonymousId": "d1"})), t0() + 1).await;
        audience.flush().await;
        let device = logged(&store, "pinged").await;
        assert_eq!(device.len(), 1, "the device entered: {device:?}");
        let device = device[0].0.clone();
        submit(
            &pipeline,
            json!({"type": "identify", "userId": "u1", "anonymousId": "d1", "messageId": "m2"}),
            t0() + 2,
        )
        .await;
        audience.flush().await;
        let winner = profile_of(&store, "u1").await;
        let rows = logged(&store, "pinged").await;
        assert_ne!(winner, device, "the device's profile was merged away");
        assert_eq!(
            rows,
            vec![
                (device.clone(), Change::Entered, Cause::Event),
                (device.clone(), Change::Exited, Cause::Merge),
            ],
            "u1 was in the segment before the merge (seeded silently), the device left"
        );
        let members = store
            .read_with(|c| log::members(c, Kind::Segment, "pinged"))
            .await
            .unwrap();
        assert_eq!(members.into_iter().collect::<Vec<_>>(), vec![winner]);
        audience.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_logs_what_changed_while_nothing_was_recording() {
    for store in flywheel_store::testing::stores("audience_reconcile").await {
        let (clock, audience, pipeline) = shop_with_segment(
            &store,
            ping("m0", json!({"userId": "u0"})),
            t0() - 3 * HOUR,
            "recent",
            "event(\"Ping\", within: 1h) >= 1",
        )
        .await;
        submit(&pipeline, ping("m1", json!({"userId": "u1"})), t0()).await;
        audience.flush().await;
        let u1 = profile_of(&store, "u1").await;
        assert_eq!(
            logged(&store, "recent").await,
            vec![(u1.clone(), Change::Entered, Cause::Event)]
        );
        audience.stop();
        drop(audience);

        // While nothing records: u2 pings (by event), and two hours pass (u1 leaves by time).
        let blind = Pipeline::start(store.clone(), Default::default());
        submit(&blind, ping("m2", json!({"userId": "u2"})), t0() + 2 * HOUR - 1).await;
        clock.set(from_millis(t0() + 2 * HOUR));
        let u2 = profile_of(&store, "u2").await;

        let audience = open(&store, &clock).await;
        audience.reconcile();
        audience.flush().await;
        let rows = logged(&store, "recent").await;
        assert_eq!(
            rows[1..],
            [
                (u1.clone(), Change::Exited, Cause::Reconcile),
                (u2.clone(), Change::Entered, Cause::Reconcile),
            ]
        );
        // Reconciling again finds nothing new.
        audience.reconcile();
        audience.flush().await;
        assert_eq!(logged(&store, "recent").await.len(), 3);
        audience.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_are_logged_through_store_failures() {
    for store in flywheel_store::testing::stores("audience_append_faults").await {
        let (_clock, audience, pipeline) = shop_with_segment(
            &store,
            ping("w", json!({"userId": "w"})),
            t0(),
            "pinged",
            "event(\"Ping\") >= 1",
        )
        .await;
        audience.inject_append_failures(3);
        for i in 0..5 {
            submit(
                &pipeline,
                ping(&format!("m{i}"), json!({"userId": format!("u{i}")})),
                t0() + i,
            )
            .await;
        }
        audience.flush().await;
        let rows = logged(&store, "pinged").await;
        assert_eq!(rows.len(), 5, "{rows:?}");
        assert!(rows.iter().all(|(_, c, _)| *c == Change::Entered));
        audience.stop();
    }
}
