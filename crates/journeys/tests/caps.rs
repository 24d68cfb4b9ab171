//! Frequency caps through the engine's send step, with in-process and Redis reservations:
//! eight journeys sending to one user at once under a cap of one a day send exactly one
//! message; a message waiting for a provider retry keeps its slot (and takes no second
//! one when it goes); a rejected message gives its slot back.

mod common;

use std::sync::Arc;

use common::{shanghai, Shop};
use flywheel_journeys::caps::{CapReservations, MemoryCapReservations, RedisCapReservations};
use flywheel_journeys::engine::{EngineConfig, Services};
use flywheel_journeys::{CapAction, CapPeriod, CapRule, CapScope, DeliveryPolicy};
use flywheel_store::redis_link::RedisLink;
use flywheel_store::testing::stores;
use serde_json::json;

fn one_a_day() -> EngineConfig {
    EngineConfig {
        delivery: DeliveryPolicy {
            quiet_hours: None,
            caps: vec![CapRule {
                scope: CapScope::All,
                period: CapPeriod::Day,
                limit: 1,
                action: CapAction::Skip,
            }],
        },
        ..EngineConfig::default()
    }
}

/// Fresh reservations of `kind`: in-process, or Redis under a prefix of their own (None,
/// with the reason printed, when nothing answers on 127.0.0.1:6379 outside CI). Each
/// store gets its own: message ids repeat from one store to the next.
async fn backend(kind: &str) -> Option<Arc<dyn CapReservations>> {
    if kind == "memory" {
        return Some(Arc::new(MemoryCapReservations::default()));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("fwtest-journey-caps-{}-{nanos}", std::process::id());
    match RedisLink::connect("redis://127.0.0.1:6379", &prefix).await {
        Ok(link) => Some(Arc::new(RedisCapReservations::new(Arc::new(link)))),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Redis is required when CI=true: {e}"
            );
            eprintln!("SKIPPED redis backend: nothing on 127.0.0.1:6379 ({e})");
            None
        }
    }
}

const BACKENDS: [&str; 2] = ["memory", "redis"];

async fn shop_with(store: flywheel_store::Store, caps: Arc<dyn CapReservations>, script: Vec<u16>) -> Shop {
    let t0 = shanghai("2026-11-30 10:00:00.000");
    let shop = Shop::with_services(store, t0, one_a_day(), move |pipeline| Services {
        caps: Some(caps),
        ..common::journey_ports::services(None, None, None, Some(pipeline.clone()))
    })
    .await;
    shop.provider_script(script);
    shop
}

async fn promo(shop: &mut Shop, names: &[&str]) {
    for name in names {
        shop.journey(json!({
            "name": name,
            "trigger": {"event": {"name": "Promo"}},
            "steps": [{"id": "send", "type": "send", "channels": ["sms"], "text": format!("促銷 {name}")}]
        }))
        .await;
    }
    shop.user("u1", "13800000001").await;
    shop.engine
        .set_consent("u1", "sms", "subscribed", "test")
        .await
        .unwrap();
}

fn count(statuses: &[String], prefix: &str) -> usize {
    statuses.iter().filter(|s| s.starts_with(prefix)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_sends_at_once_under_a_cap_of_one_send_one() {
    for backend in BACKENDS {
        for store in stores(&format!("journey_caps_{backend}")).await {
            let Some(caps) = self::backend(backend).await else {
                continue;
            };
            let mut shop = shop_with(store, caps.clone(), vec![]).await;
            let names: Vec<String> = (0..8).map(|i| format!("promo{i}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            promo(&mut shop, &names).await;
            shop.track("u1", "Promo", json!({})).await;
            shop.fire().await;
            let statuses = shop.statuses("u1").await;
            let unshared = shop
                .engine
                .stats()
                .cap_unshared
                .load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(unshared, 0, "{backend}: every reservation was made");
            assert_eq!(shop.sent_to(), vec!["u1"], "{backend}: {statuses:?}");
            assert_eq!(count(&statuses, "sent:"), 1, "{backend}: {statuses:?}");
            assert_eq!(
                count(&statuses, "skipped:frequency cap"),
                7,
                "{backend}: {statuses:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_keeps_its_slot_and_a_rejected_one_gives_it_back() {
    for backend in BACKENDS {
        for store in stores(&format!("journey_caps_retry_{backend}")).await {
            let Some(caps) = self::backend(backend).await else {
                continue;
            };
            // First attempt 503 (retried later), then 200, then the third message 400.
            let mut shop = shop_with(store, caps.clone(), vec![503]).await;
            promo(&mut shop, &["first"]).await;
            shop.track("u1", "Promo", json!({})).await;
            shop.fire().await;
            let statuses = shop.statuses("u1").await;
            assert_eq!(statuses.len(), 1, "{backend}: {statuses:?}");
            assert!(
                statuses[0].starts_with("sending:"),
                "{backend}: waiting for the retry: {statuses:?}"
            );
            // Another message meanwhile: the slot is held by the one waiting.
            shop.journey(json!({
                "name": "second",
                "trigger": {"event": {"name": "Second"}},
                "steps": [{"id": "send", "type": "send", "channels": ["sms"], "text": "二"}]
            }))
            .await;
            shop.track("u1", "Second", json!({})).await;
            shop.fire().await;
            let statuses = shop.statuses("u1").await;
            assert_eq!(
                count(&statuses, "skipped:frequency cap"),
                1,
                "{backend}: {statuses:?}"
            );
            // The retry goes out on its own slot.
            shop.at(shop.now() + 120_000);
            shop.fire().await;
            let statuses = shop.statuses("u1").await;
            assert_eq!(count(&statuses, "sent:"), 1, "{backend}: {statuses:?}");
            assert_eq!(
                shop.texts_to("u1"),
                vec!["促銷 first"; 2],
                "{backend}: 503, then 200"
            );

            // Next day: a rejected message gives its slot back, so the next one goes.
            shop.at(shanghai("2026-12-01 10:00:00.000"));
            shop.provider_script(vec![400]);
            shop.track("u1", "Promo", json!({})).await;
            shop.fire().await;
            let statuses = shop.statuses("u1").await;
            assert_eq!(count(&statuses, "failed:"), 1, "{backend}: {statuses:?}");
            shop.track("u1", "Second", json!({})).await;
            shop.fire().await;
            let statuses = shop.statuses("u1").await;
            assert_eq!(count(&statuses, "sent:"), 2, "{backend}: {statuses:?}");
            assert_eq!(
                shop.texts_to("u1").last().map(String::as_str),
                Some("二"),
                "{backend}"
            );
        }
    }
}
