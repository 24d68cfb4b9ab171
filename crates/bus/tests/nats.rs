//! The NATS bus against the real NATS JetStream at 127.0.0.1:4222 (or
//! `FLYWHEEL_TEST_NATS`). Each test uses its own stream prefix and deletes its stream at
//! the end. When NATS cannot be reached a test is skipped with a printed reason, unless
//! `CI=true`, where it fails.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use flywheel_bus::{
    partition_of, Bus, BusOptions, Delivery, DurableConsumer, DurableOptions, DurableStart, Error, NatsBus,
};
use flywheel_core::bus::{CacheKind, DomainEvent, Invalidation, LogAdvanced, Membership, TransitionCause};
use futures_util::TryStreamExt;
use tokio::sync::broadcast;
use tokio::time::timeout;

/// Long enough for any healthy local NATS; a test that waits this long has failed.
const PATIENCE: Duration = Duration::from_secs(20);

async fn nats() -> Option<String> {
    let url = std::env::var("FLYWHEEL_TEST_NATS").unwrap_or("nats://127.0.0.1:4222".into());
    match async_nats::connect(&url).await {
        Ok(client) => {
            sweep_old_streams(client).await;
            Some(url)
        }
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: NATS at {url} cannot be reached: {e}");
            None
        }
        Err(e) => panic!("NATS is required when CI=true: {url}: {e}"),
    }
}

/// Deletes the streams that earlier runs' failed tests left (idle for an hour), once per
/// run of this file.
async fn sweep_old_streams(client: async_nats::Client) {
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SWEPT.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let js = async_nats::jetstream::new(client);
    let Ok(names) = js.stream_names().try_collect::<Vec<String>>().await else {
        return;
    };
    for name in names.iter().filter(|n| n.starts_with("fwtest_")) {
        let Ok(mut stream) = js.get_stream(name).await else {
            continue;
        };
        let Ok(info) = stream.info().await else {
            continue;
        };
        if time::OffsetDateTime::now_utc() - info.state.last_timestamp > time::Duration::HOUR {
            let _ = js.delete_stream(name).await;
        }
    }
}

fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("fwtest_{test}_{}_{nanos}", std::process::id())
}

async fn delete_stream(url: &str, name: &str) {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let _ = js.delete_stream(name).await;
}

async fn stored_messages(url: &str, name: &str) -> u64 {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let mut stream = js.get_stream(name).await.unwrap();
    stream.info().await.unwrap().state.messages
}

fn entered(profile: &str, seq: u64) -> DomainEvent {
    DomainEvent::SegmentEntered(Membership {
        seq,
        name: "高价值".into(),
        profile_id: profile.into(),
        at: 1_700_000_000_000,
        cause: TransitionCause::Event,
    })
}

async fn recv(rx: &mut broadcast::Receiver<Arc<DomainEvent>>) -> DomainEvent {
    let got = timeout(PATIENCE, rx.recv()).await.expect("an event in time");
    (*got.expect("no lag, channel open")).clone()
}

fn options(partitions: u32) -> BusOptions {
    BusOptions {
        partitions,
        ..BusOptions::default()
    }
}

#[tokio::test]
async fn what_one_process_publishes_every_process_hears_once() {
    let Some(url) = nats().await else { return };
    let p = prefix("two");
    let a = NatsBus::connect(&url, &p).await.unwrap();
    let b = NatsBus::connect(&url, &p).await.unwrap();
    let mut rx_a = a.subscribe();
    let mut rx_b = b.subscribe();

    let from_a = entered("u1", 1);
    a.publish(from_a.clone());
    assert_eq!(recv(&mut rx_b).await, from_a);
    assert!(a.flush(PATIENCE).await);

    let from_b = DomainEvent::Invalidated(Invalidation {
        what: CacheKind::Definitions,
        key: Some("vip".into()),
    });
    b.publish(from_b.clone());
    // B hears its own event once, at publish time.
    assert_eq!(recv(&mut rx_b).await, from_b);

    // A heard its own event locally, then B's through NATS. A's event was stored
    // before B's, so had A's subscriber taken it from NATS too, it would come between.
    assert_eq!(recv(&mut rx_a).await, from_a);
    assert_eq!(recv(&mut rx_a).await, from_b);
    let marker = DomainEvent::LogAdvanced(LogAdvanced { seq: 99 });
    b.publish(marker.clone());
    assert_eq!(recv(&mut rx_a).await, marker);
    assert!(rx_a.try_recv().is_err());
    assert_eq!(recv(&mut rx_b).await, marker);
    assert!(rx_b.try_recv().is_err());
    assert!(b.flush(PATIENCE).await);
    assert_eq!(stored_messages(&url, &p).await, 3);
    assert_eq!(a.stats().received, 2);
    assert_eq!(b.stats().received, 1);
    delete_stream(&url, &p).await;
}

#[tokio::test]
async fn a_durable_group_gets_again_exactly_what_it_did_not_acknowledge() {
    let Some(url) = nats().await else { return };
    let p = prefix("durable");
    let bus = NatsBus::connect_with(&url, &p, options(4)).await.unwrap();
    for seq in 1..=5 {
        bus.publish(entered("u-durable", seq));
    }
    assert!(bus.flush(PATIENCE).await);
    let opts = DurableOptions {
        ack_wait: Duration::from_secs(3),
        pull_expires: Duration::from_secs(1),
        ..DurableOptions::default()
    };
    let seq_of = |e: &DomainEvent| match e {
        DomainEvent::SegmentEntered(m) => m.seq,
        other => panic!("unexpected {other:?}"),
    };

    let mut first = bus.durable_with("rewards", 0..4, opts.clone()).await.unwrap();
    for want in 1..=3 {
        let d = timeout(PATIENCE, first.next()).await.unwrap().unwrap();
        assert_eq!(seq_of(&d.event), want);
        assert!(!d.redelivered());
        d.ack().await.unwrap();
    }
    // The fourth is handed out but the process "crashes" before acknowledging it.
    let fourth = timeout(PATIENCE, first.next()).await.unwrap().unwrap();
    assert_eq!(seq_of(&fourth.event), 4);
    drop(fourth);
    drop(first);

    // Re-joined with another starting point: that only applies to a new group; this one
    // goes on from where it was.
    let rejoin = DurableOptions {
        start: DurableStart::New,
        ..opts
    };
    let mut again = bus.durable_with("rewards", 0..4, rejoin).await.unwrap();
    let d4 = timeout(PATIENCE, again.next()).await.unwrap().unwrap();
    assert_eq!(seq_of(&d4.event), 4);
    assert!(d4.redelivered());
    d4.ack().await.unwrap();
    let d5 = timeout(PATIENCE, again.next()).await.unwrap().unwrap();
    assert_eq!(seq_of(&d5.event), 5);
    assert_eq!(d5.delivered, 1);
    d5.ack().await.unwrap();
    // Nothing else: the three acknowledged ones stay acknowledged.
    assert!(timeout(Duration::from_secs(3), again.next()).await.is_err());
    delete_stream(&url, &p).await;
}

#[tokio::test]
async fn one_profiles_events_arrive_in_publish_order() {
    let Some(url) = nats().await else { return };
    let p = prefix("order");
    let bus = NatsBus::connect_with(&url, &p, options(8)).await.unwrap();
    let mut group = bus.durable("journeys", 0..8).await.unwrap();
    for seq in 0..150 {
        bus.publish(entered("u-ordered", seq));
        bus.publish(entered(&format!("other-{}", seq % 7), seq));
    }
    assert!(bus.flush(PATIENCE).await);
    let home = partition_of(Some("u-ordered"), 8);
    // Consumed in a task of its own, as a worker service runs it.
    let consumer = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut others = 0;
        while seen.len() < 150 || others < 150 {
            let d = timeout(PATIENCE, group.next()).await.unwrap().unwrap();
            let DomainEvent::SegmentEntered(m) = &d.event else {
                panic!("unexpected {:?}", d.event)
            };
            assert_eq!(d.partition, partition_of(Some(&m.profile_id), 8));
            if m.profile_id == "u-ordered" {
                assert_eq!(d.partition, home);
                seen.push(m.seq);
            } else {
                others += 1;
            }
            d.ack().await.unwrap();
        }
        seen
    });
    let seen = consumer.await.unwrap();
    assert_eq!(seen, (0..150).collect::<Vec<u64>>());
    delete_stream(&url, &p).await;
}

/// Two worker processes in one group on one partition: while one holds a message
/// unacknowledged, the other gets nothing from that partition.
#[tokio::test]
async fn a_partition_has_one_message_in_flight_across_the_group() {
    let Some(url) = nats().await else { return };
    let p = prefix("inflight");
    let bus = NatsBus::connect_with(&url, &p, options(1)).await.unwrap();
    let mut w1 = bus.durable("loyalty", [0]).await.unwrap();
    let mut w2 = bus.durable("loyalty", [0]).await.unwrap();
    bus.publish(entered("u-a", 1));
    bus.publish(entered("u-b", 2));
    assert!(bus.flush(PATIENCE).await);
    async fn next(w1: &mut DurableConsumer, w2: &mut DurableConsumer) -> Delivery {
        tokio::select! {
            d = w1.next() => d.unwrap(),
            d = w2.next() => d.unwrap(),
        }
    }
    let first = timeout(PATIENCE, next(&mut w1, &mut w2)).await.unwrap();
    assert_eq!(first.event, entered("u-a", 1));
    assert!(
        timeout(Duration::from_secs(2), next(&mut w1, &mut w2))
            .await
            .is_err(),
        "the second message must wait for the first one's acknowledgement"
    );
    first.ack().await.unwrap();
    let second = timeout(PATIENCE, next(&mut w1, &mut w2)).await.unwrap();
    assert_eq!(second.event, entered("u-b", 2));
    second.ack().await.unwrap();
    delete_stream(&url, &p).await;
}

#[tokio::test]
async fn a_publish_retried_with_the_same_id_is_stored_once() {
    let Some(url) = nats().await else { return };
    let p = prefix("dedupe");
    let bus = NatsBus::connect(&url, &p).await.unwrap();
    let other = NatsBus::connect(&url, &p).await.unwrap();
    let e = DomainEvent::TagAdded(Membership {
        seq: 7,
        name: "复购".into(),
        profile_id: "u-dup".into(),
        at: 1,
        cause: TransitionCause::Manual,
    });
    bus.publish_with_id(e.clone(), "transition-7");
    bus.publish_with_id(e.clone(), "transition-7");
    other.publish_with_id(e.clone(), "transition-7");
    bus.publish_with_id(e.clone(), "transition-8");
    assert!(bus.flush(PATIENCE).await);
    assert!(other.flush(PATIENCE).await);
    assert_eq!(stored_messages(&url, &p).await, 2);
    let (s, o) = (bus.stats(), other.stats());
    assert_eq!(s.published + o.published, 2);
    assert_eq!(s.duplicates + o.duplicates, 2);
    delete_stream(&url, &p).await;
}

#[tokio::test]
async fn processes_must_agree_on_the_partition_count() {
    let Some(url) = nats().await else { return };
    let p = prefix("parts");
    let _first = NatsBus::connect_with(&url, &p, options(4)).await.unwrap();
    match NatsBus::connect_with(&url, &p, options(8)).await {
        Err(Error::PartitionMismatch {
            existing: 4,
            configured: 8,
            ..
        }) => {}
        other => panic!("expected a partition mismatch, got {other:?}"),
    }
    assert!(matches!(
        NatsBus::connect(&url, "bad.prefix").await,
        Err(Error::InvalidPrefix(_))
    ));
    delete_stream(&url, &p).await;
}

/// No NATS at all (nothing listens on the port): publishing still returns at once, local
/// subscribers still hear everything, and what does not fit the queue is counted. When
/// NATS appears on that port, the bus sets itself up and sends what it kept.
#[tokio::test]
async fn publishing_never_blocks_when_nats_is_down() {
    let port = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().port()
    };
    let p = prefix("down");
    let down_url = format!("nats://127.0.0.1:{port}");
    let bus = NatsBus::connect_with(
        &down_url,
        &p,
        BusOptions {
            wait_for_server: true,
            queue_capacity: 100,
            publish_batch: 10,
            ..BusOptions::default()
        },
    );
    let bus = timeout(PATIENCE, bus).await.unwrap().unwrap();
    let mut rx = bus.subscribe();
    let published = timeout(PATIENCE, async {
        for seq in 0..1000 {
            bus.publish(entered(&format!("u{seq}"), seq));
        }
    });
    published.await.expect("publish returns without NATS");
    let mut heard = HashSet::new();
    for _ in 0..1000 {
        if let DomainEvent::SegmentEntered(m) = recv(&mut rx).await {
            heard.insert(m.seq);
        }
    }
    assert_eq!(heard.len(), 1000);
    let dropped = bus.stats().dropped_queue_full;
    // 100 wait in the queue, at most one batch of 10 is being retried.
    assert!((890..=900).contains(&dropped), "dropped {dropped}");
    assert_eq!(bus.stats().published, 0);
    assert!(!bus.flush(Duration::from_millis(200)).await);

    let Some(url) = nats().await else { return };
    let _relay = Relay::start(port, url.trim_start_matches("nats://")).await;
    assert!(bus.flush(PATIENCE).await, "what was queued is sent");
    assert_eq!(stored_messages(&url, &p).await, 1000 - dropped);
    assert_eq!(bus.stats().published, 1000 - dropped);
    delete_stream(&url, &p).await;
}

/// A worker's durable group goes on after its connection to NATS was cut and restored.
/// A message the server handed to the cut connection counts as delivered and comes again
/// after `ack_wait`.
#[tokio::test]
async fn a_durable_group_resumes_when_nats_returns() {
    let Some(url) = nats().await else { return };
    let upstream = url.trim_start_matches("nats://");
    let p = prefix("resume");
    let publisher = NatsBus::connect_with(&url, &p, options(2)).await.unwrap();
    let mut relay = Relay::start(0, upstream).await;
    let port = relay.port;
    let worker = NatsBus::connect_with(&format!("nats://127.0.0.1:{port}"), &p, options(2))
        .await
        .unwrap();
    let opts = DurableOptions {
        ack_wait: Duration::from_secs(3),
        pull_expires: Duration::from_secs(1),
        ..DurableOptions::default()
    };
    let mut group = worker.durable_with("sweeper", 0..2, opts).await.unwrap();
    async fn next(group: &mut DurableConsumer) -> Delivery {
        loop {
            match group.next().await {
                Ok(d) => return d,
                Err(Error::Closed) => panic!("the group closed"),
                Err(e) => eprintln!("not fatal: {e}"),
            }
        }
    }
    publisher.publish(entered("u1", 1));
    let d = timeout(PATIENCE, next(&mut group)).await.unwrap();
    assert_eq!(d.event, entered("u1", 1));
    d.ack().await.unwrap();

    relay.cut().await;
    publisher.publish(entered("u2", 2));
    assert!(publisher.flush(PATIENCE).await);
    // Long enough for the worker's pulls to notice (missed heartbeats).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _relay = Relay::start(port, upstream).await;
    let d = timeout(PATIENCE, next(&mut group)).await.unwrap();
    assert_eq!(d.event, entered("u2", 2));
    d.ack().await.unwrap();
    delete_stream(&url, &p).await;
}

/// A TCP relay to NATS that can be cut and restored, to take NATS away from one
/// process only (the shared server stays up for everyone else).
struct Relay {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    async fn start(port: u16, upstream: &str) -> Relay {
        let upstream = upstream.to_string();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                links.spawn(async move {
                    let mut outbound = tokio::net::TcpStream::connect(upstream).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        Relay {
            port,
            task: Some(task),
        }
    }

    /// Cuts every connection and stops listening (the JoinSet of links is dropped).
    async fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

/// NATS goes away from one process and comes back: what it published meanwhile is
/// stored once it can be, and its subscriber catches up on what others published.
#[tokio::test]
async fn a_process_cut_off_from_nats_catches_up_when_it_returns() {
    let Some(url) = nats().await else { return };
    let upstream = url.trim_start_matches("nats://");
    let p = prefix("outage");
    let mut relay = Relay::start(0, upstream).await;
    let port = relay.port;
    let a = NatsBus::connect(&format!("nats://127.0.0.1:{port}"), &p)
        .await
        .unwrap();
    let b = NatsBus::connect(&url, &p).await.unwrap();
    let (mut rx_a, mut rx_b) = (a.subscribe(), b.subscribe());
    b.publish(entered("u0", 0));
    assert_eq!(recv(&mut rx_a).await, entered("u0", 0));
    assert_eq!(recv(&mut rx_b).await, entered("u0", 0));

    relay.cut().await;
    for seq in 1..=3 {
        a.publish(entered("ua", seq));
        assert_eq!(recv(&mut rx_a).await, entered("ua", seq));
    }
    b.publish(entered("ub", 10));
    assert_eq!(recv(&mut rx_b).await, entered("ub", 10));
    assert!(b.flush(PATIENCE).await);
    // The outage is real: A's publisher failed at least once before NATS comes back.
    timeout(PATIENCE, async {
        while a.stats().retries == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a failed publish while cut off");
    assert_eq!(a.stats().published, 0);
    let _relay = Relay::start(port, upstream).await;

    assert!(a.flush(PATIENCE).await, "A's queued events reach NATS");
    for seq in 1..=3 {
        assert_eq!(recv(&mut rx_b).await, entered("ua", seq));
    }
    assert_eq!(recv(&mut rx_a).await, entered("ub", 10));
    let marker = DomainEvent::LogAdvanced(LogAdvanced { seq: 1 });
    b.publish(marker.clone());
    assert_eq!(recv(&mut rx_a).await, marker, "nothing doubled before the marker");
    assert_eq!(stored_messages(&url, &p).await, 6);
    delete_stream(&url, &p).await;
}
