//! Two processes' engines on one store follow the shared log: they answer the same
//! count at the same position whichever process ingested the events, and a transition
//! is logged once, by the holder of the recorder lease — also after the holder dies.

use std::sync::Arc;
use std::time::Duration;

use flywheel_audience::config::AudienceConfig;
use flywheel_audience::{Audience, EventDecoder, Following, SegmentInput};
use flywheel_core::bus::InProcessBus;
use flywheel_core::time::{from_millis, parse_timestamp, to_millis};
use flywheel_core::{Event, FixedClock};
use flywheel_ingest::ecommerce::materialise;
use flywheel_ingest::message::{parse, Envelope};
use flywheel_store::transitions::{self as log, Change};
use flywheel_store::{NewEvent, Store, StoreConfig, Synchronous};
use serde_json::{json, Value};

struct Decoder;

impl EventDecoder for Decoder {
    fn decode(&self, event: Event, source: Option<String>) -> NewEvent {
        let fallback = event.clone();
        materialise(event, source.clone(), 0).unwrap_or_else(|_| NewEvent::new(fallback, source))
    }
}

fn t0() -> i64 {
    to_millis(parse_timestamp("2025-01-01T00:00:00+08:00").unwrap())
}

fn event(msg: Value) -> NewEvent {
    let env = Envelope {
        received_at: Some(from_millis(t0())),
        ..Default::default()
    };
    materialise(parse(msg, &env).unwrap().event, None, 0).unwrap()
}

fn order(user: &str, id: &str, total: &str) -> NewEvent {
    event(json!({
        "type": "track", "userId": user, "event": "Order Completed", "messageId": format!("o-{id}"),
        "timestamp": from_millis(t0() - 3_600_000).to_rfc3339(),
        "properties": {"order_id": id, "total": total},
    }))
}

async fn engine(store: &Store, clock: &Arc<FixedClock>, holder: &str) -> Audience {
    let mut following = Following::new(Arc::new(Decoder), holder.into());
    following.poll = Duration::from_millis(20);
    following.definitions_poll = Duration::from_millis(50);
    following.lease_ttl = Duration::from_millis(1_000);
    Audience::open_following(
        store.clone(),
        AudienceConfig::default(),
        Arc::new(InProcessBus::new(64)),
        clock.clone(),
        following,
    )
    .await
    .unwrap()
}

async fn entered(store: &Store, name: &'static str) -> Vec<String> {
    let rows = store.read_with(|c| log::after(c, 0, 10_000)).await.unwrap();
    let mut out: Vec<String> = rows
        .into_iter()
        .filter(|t| t.name == name && t.change == Change::Entered)
        .map(|t| t.profile_id)
        .collect();
    out.sort();
    out
}

async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_agree_and_transitions_are_logged_once() {
    let dir = flywheel_store::testing::fresh_dir(&format!("flywheel-audience-follow-{}", std::process::id()));
    let store = Store::open(StoreConfig::from_url(None, &dir, Synchronous::Normal).unwrap())
        .await
        .unwrap();
    let clock = Arc::new(FixedClock::new(from_millis(t0())));
    let a = engine(&store, &clock, "a").await;
    let b = engine(&store, &clock, "b").await;
    until("one engine holds the recorder lease", async || {
        a.records_transitions() || b.records_transitions()
    })
    .await;
    assert!(
        !(a.records_transitions() && b.records_transitions()),
        "one holder"
    );
    // Saved through A; B picks it up from the store.
    let big = SegmentInput::text("spend(30d) > 100 元");
    a.put_segment("big".into(), &big, None, false).await.unwrap();
    until("B knows the segment", async || {
        b.segments().iter().any(|s| s.def.name == "big")
    })
    .await;
    // A third process ingests: neither engine observes these commits.
    let head = store
        .apply(vec![
            order("u1", "1", "150"),
            order("u2", "2", "50"),
            order("u3", "3", "300"),
        ])
        .await
        .unwrap()
        .last_seq
        .unwrap();
    for e in [&a, &b] {
        assert_eq!(e.wait_for_position(head, Duration::from_secs(5)).await, head);
        e.flush().await;
    }
    assert_eq!(a.count(&big).unwrap(), 2);
    assert_eq!(b.count(&big).unwrap(), 2, "same count at the same position");
    let two = ["user:u1".to_string(), "user:u3".to_string()];
    until("both entries are logged", async || {
        entered(&store, "big").await.len() >= 2
    })
    .await;
    // The non-holder computed the same transitions but logged none.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        entered(&store, "big").await,
        two,
        "logged once, not once per process"
    );

    // The holder dies; the other takes the lease over and logs what happens next, once.
    let (dead, alive) = if a.records_transitions() { (a, b) } else { (b, a) };
    dead.stop();
    drop(dead);
    // Its lease runs out (the lease follows the engine's clock).
    clock.set(from_millis(t0() + 1_500));
    let head = store
        .apply(vec![order("u2", "4", "80")])
        .await
        .unwrap()
        .last_seq
        .unwrap();
    assert_eq!(alive.wait_for_position(head, Duration::from_secs(5)).await, head);
    until("the survivor holds the lease", async || {
        alive.records_transitions()
    })
    .await;
    until("u2's entry is logged", async || {
        entered(&store, "big").await.len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        entered(&store, "big").await,
        ["user:u1".to_string(), "user:u2".into(), "user:u3".into()]
    );
    assert_eq!(alive.count(&big).unwrap(), 3);
}
