//! Measures the NATS bus on a running server: the lag from `publish` in one bus instance
//! to the event in another instance's subscriber, and how fast one durable consumer group
//! handles events (one handler task per partition, as a worker would run it).
//!
//! `cargo run --release -p flywheel-bus --example bus_lag -- [nats://127.0.0.1:4222] [events]`
//! It creates and deletes a stream of its own.

use std::time::{Duration, Instant};

use flywheel_bus::{Bus, BusOptions, NatsBus};
use flywheel_core::bus::{DomainEvent, Membership, TransitionCause};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or("nats://127.0.0.1:4222".into());
    let n: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20_000);
    let prefix = format!("fwlag_{}", std::process::id());
    let partitions = 16;
    let options = BusOptions {
        partitions,
        ..BusOptions::default()
    };
    let a = NatsBus::connect_with(&url, &prefix, options.clone()).await?;
    let b = NatsBus::connect_with(&url, &prefix, options).await?;
    let mut rx = b.subscribe();
    let start = Instant::now();
    let event = |seq: u64| {
        DomainEvent::SegmentEntered(Membership {
            seq,
            name: "vip".into(),
            profile_id: format!("u{}", seq % 1000),
            at: start.elapsed().as_micros() as i64,
            cause: TransitionCause::Event,
        })
    };

    // Lag at a steady rate well below saturation: 1 event every 100 µs in bursts of 10.
    let receiver = tokio::spawn(async move {
        let mut lags = Vec::with_capacity(n as usize);
        while (lags.len() as u64) < n {
            let e = rx.recv().await.expect("no lag in the test channel");
            if let DomainEvent::SegmentEntered(m) = &*e {
                lags.push(start.elapsed().as_micros() as i64 - m.at);
            }
        }
        lags
    });
    let t0 = Instant::now();
    for seq in 0..n {
        a.publish(event(seq));
        if seq % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut lags = receiver.await?;
    let sent = t0.elapsed();
    lags.sort_unstable();
    let pct = |p: f64| lags[((lags.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    println!(
        "publish -> other process's subscriber: {n} events in {:.2} s; lag p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sent.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );

    // Burst: how fast events are stored when published as fast as possible.
    let t1 = Instant::now();
    for seq in n..2 * n {
        a.publish(event(seq));
    }
    a.flush(Duration::from_secs(120)).await;
    let burst = t1.elapsed().as_secs_f64();
    println!(
        "burst publish: {n} events stored in {burst:.2} s ({:.0}/s); stats {:?}",
        n as f64 / burst,
        a.stats()
    );

    // One durable group: one handler task per partition, each acknowledging every event.
    let t2 = Instant::now();
    let mut handlers = Vec::new();
    for p in 0..partitions {
        let mut group = a.durable("lag", [p]).await?;
        handlers.push(tokio::spawn(async move {
            let mut handled = 0u64;
            while let Ok(Ok(d)) = tokio::time::timeout(Duration::from_secs(2), group.next()).await {
                d.ack().await.expect("ack");
                handled += 1;
            }
            handled
        }));
    }
    let mut handled = 0;
    for h in handlers {
        handled += h.await?;
    }
    let took = t2.elapsed().as_secs_f64() - 2.0;
    println!(
        "durable group, {partitions} partitions, one task each: {handled} events acknowledged in {took:.2} s ({:.0}/s)",
        handled as f64 / took
    );

    let js = async_nats::jetstream::new(async_nats::connect(&url).await?);
    js.delete_stream(&prefix).await?;
    Ok(())
}
