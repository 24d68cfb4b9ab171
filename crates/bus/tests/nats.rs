//! The NATS bus against the real NATS JetStream: what every process hears, durable
//! groups, order, duplicates. Each test uses its own stream prefix and deletes its stream
//! at the end.

mod common;

use std::time::Duration;

use common::*;
use flywheel_bus::{
    partition_of, Bus, Delivery, DurableConsumer, DurableOptions, DurableStart, Error, NatsBus,
};
use flywheel_core::bus::{CacheKind, DomainEvent, Invalidation, LogAdvanced, Membership, TransitionCause};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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

/// A message that is not an event this version reads (garbage, or a newer version's
/// event during an upgrade) is skipped by subscribers and terminated for a group: it
/// neither blocks its partition nor comes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_messages_are_skipped_and_do_not_block_a_partition() {
    let Some(url) = nats().await else { return };
    let p = prefix("unreadable");
    let listener = NatsBus::connect_with(&url, &p, options(2)).await.unwrap();
    let worker = NatsBus::connect_with(&url, &p, options(2)).await.unwrap();
    let publisher = NatsBus::connect_with(&url, &p, options(2)).await.unwrap();
    let mut rx = listener.subscribe();
    let mut group = worker.durable("g", 0..2).await.unwrap();
    let raw = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    let future_event = r#"{"type":"segment_renamed","from":"a","to":"b"}"#;
    raw.publish(format!("{p}.0.segment.entered"), future_event.into())
        .await
        .unwrap()
        .await
        .unwrap();
    // A readable event behind it in the same partition.
    let profile = (0..)
        .map(|i| format!("u{i}"))
        .find(|u| partition_of(Some(u), 2) == 0)
        .unwrap();
    publisher.publish(entered(&profile, 1));
    assert!(publisher.flush(PATIENCE).await);

    assert_eq!(recv(&mut rx).await, entered(&profile, 1));
    assert_eq!(listener.stats().undecodable, 1);
    let d = timeout(PATIENCE, group.next()).await.unwrap().unwrap();
    assert_eq!(d.event, entered(&profile, 1));
    assert_eq!(d.partition, 0);
    d.ack().await.unwrap();
    // Counted by the group, and by the worker's own subscriber when it got there.
    assert!((1..=2).contains(&worker.stats().undecodable));
    let stream = raw.get_stream(&p).await.unwrap();
    let info = stream.consumer_info("g-p0").await.unwrap();
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
    delete_stream(&url, &p).await;
}

/// A handler that fails for now asks for the event again: it comes back, marked as a
/// repeat, before anything behind it in its partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_asked_for_again_comes_back_first() {
    let Some(url) = nats().await else { return };
    let p = prefix("retry");
    let bus = NatsBus::connect_with(&url, &p, options(1)).await.unwrap();
    let mut group = bus.durable("g", [0]).await.unwrap();
    bus.publish(entered("u1", 1));
    bus.publish(entered("u1", 2));
    assert!(bus.flush(PATIENCE).await);
    let d = timeout(PATIENCE, group.next()).await.unwrap().unwrap();
    assert_eq!((d.event.clone(), d.delivered), (entered("u1", 1), 1));
    d.in_progress().await.unwrap();
    d.retry_after(Duration::from_millis(100)).await.unwrap();
    let d = timeout(PATIENCE, group.next()).await.unwrap().unwrap();
    assert_eq!((d.event.clone(), d.delivered), (entered("u1", 1), 2));
    d.ack().await.unwrap();
    let d = timeout(PATIENCE, group.next()).await.unwrap().unwrap();
    assert_eq!(d.event, entered("u1", 2));
    assert!(!d.redelivered());
    d.ack().await.unwrap();
    delete_stream(&url, &p).await;
}

/// A busy group drains every partition without stalling: each partition's handler gets
/// its next event while any is left. (With async-nats' continuous pull stream, one message
/// per request on a multi-threaded runtime, single partitions sat idle for the stream's
/// whole expiry: this test failed three runs out of three.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_group_drains_every_partition_without_stalling() {
    let Some(url) = nats().await else { return };
    let p = prefix("drain");
    let bus = NatsBus::connect_with(&url, &p, options(16)).await.unwrap();
    let total = 20000u64;
    for seq in 0..total {
        bus.publish(entered(&format!("u{}", seq % 500), seq));
        if seq % 5000 == 4999 {
            // The publish queue holds 10,000 by default.
            assert!(bus.flush(PATIENCE).await);
        }
    }
    assert!(bus.flush(PATIENCE).await);
    assert_eq!(bus.stats().published, total);
    let mut handlers = Vec::new();
    for part in 0..16 {
        let mut group = bus.durable("drain", [part]).await.unwrap();
        let expected = (0..total)
            .filter(|s| partition_of(Some(&format!("u{}", s % 500)), 16) == part)
            .count();
        handlers.push(tokio::spawn(async move {
            for _ in 0..expected {
                // Far longer than a healthy hand-over, shorter than a stalled pull.
                let d = timeout(Duration::from_secs(4), group.next())
                    .await
                    .unwrap_or_else(|_| panic!("partition {part} stalled"))
                    .unwrap();
                d.ack().await.unwrap();
            }
            expected
        }));
    }
    let mut handled = 0;
    for h in handlers {
        handled += h.await.unwrap();
    }
    assert_eq!(handled as u64, total);
    delete_stream(&url, &p).await;
}
