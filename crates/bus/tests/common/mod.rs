//! Helpers of the NATS bus tests: the server to use (NATS JetStream at 127.0.0.1:4222, or
//! `FLYWHEEL_TEST_NATS`), a stream prefix per test, and a relay that can cut one process
//! off from NATS. When NATS cannot be reached a test is skipped with a printed reason,
//! unless `CI=true`, where it fails.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use flywheel_bus::BusOptions;
use flywheel_core::bus::{DomainEvent, Membership, TransitionCause};
use futures_util::TryStreamExt;
use tokio::sync::broadcast;
use tokio::time::timeout;

/// Long enough for any healthy local NATS; a test that waits this long has failed.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub async fn nats() -> Option<String> {
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

pub fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("fwtest_{test}_{}_{nanos}", std::process::id())
}

pub async fn delete_stream(url: &str, name: &str) {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let _ = js.delete_stream(name).await;
}

pub async fn stored_messages(url: &str, name: &str) -> u64 {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let mut stream = js.get_stream(name).await.unwrap();
    stream.info().await.unwrap().state.messages
}

pub fn entered(profile: &str, seq: u64) -> DomainEvent {
    DomainEvent::SegmentEntered(Membership {
        seq,
        name: "高价值".into(),
        profile_id: profile.into(),
        at: 1_700_000_000_000,
        cause: TransitionCause::Event,
    })
}

pub async fn recv(rx: &mut broadcast::Receiver<Arc<DomainEvent>>) -> DomainEvent {
    let got = timeout(PATIENCE, rx.recv()).await.expect("an event in time");
    (*got.expect("no lag, channel open")).clone()
}

pub fn options(partitions: u32) -> BusOptions {
    BusOptions {
        partitions,
        ..BusOptions::default()
    }
}

/// A TCP relay to NATS that can be cut and restored, to take NATS away from one
/// process only (the shared server stays up for everyone else).
pub struct Relay {
    pub port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    pub async fn start(port: u16, upstream: &str) -> Relay {
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
    pub async fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}
