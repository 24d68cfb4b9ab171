//! The NATS bus when NATS is away: publishing never blocks, and what was kept is sent,
//! heard and consumed once NATS is back. NATS is taken away from one process only, by
//! cutting the relay it connects through (the shared server stays up).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use flywheel_bus::{Bus, BusOptions, Delivery, DurableConsumer, DurableOptions, Error, NatsBus};
use flywheel_core::bus::{DomainEvent, LogAdvanced};
use tokio::time::timeout;

/// No NATS at all (nothing listens on the port): publishing still returns at once, local
/// subscribers still hear everything, and what does not fit the queue is counted. When
/// NATS appears on that port, the bus sets itself up and sends what it kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

/// NATS goes away from one process and comes back: what it published meanwhile is
/// stored once it can be, and its subscriber catches up on what others published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
