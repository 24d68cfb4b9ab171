//! Segment-triggered journeys follow the durable transitions log behind a stored cursor,
//! on every backend: a failed transaction of the tail moves nothing and enters nobody,
//! its retry enters each user once, and a transition read again enters nobody twice.

mod common;

use common::{shanghai, Shop};
use flywheel_audience::SegmentInput;
use flywheel_store::testing::stores;
use flywheel_store::transitions as log;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_entries_survive_failed_tail_transactions_and_enter_once() {
    for store in stores("journey_transitions").await {
        let mut shop = Shop::full(store.clone(), shanghai("2026-11-30 10:00:00.000")).await;
        let audience = shop.audience.clone().unwrap();
        shop.user("warm", "13900000020").await;
        shop.track("warm", "Ping", json!({})).await;
        audience
            .put_segment(
                "pinged".into(),
                &SegmentInput::text("event(\"Ping\") >= 1"),
                None,
                false,
            )
            .await
            .unwrap();
        shop.journey(json!({
            "name": "pinged_hello",
            "trigger": {"segment": {"name": "pinged", "on": "entered"}},
            "steps": [{"id": "hi", "type": "send", "channels": ["sms"], "text": "你好"}]
        }))
        .await;
        for u in ["A", "B", "C"] {
            shop.user(u, "13900000021").await;
            shop.track(u, "Ping", json!({})).await;
        }
        audience.flush().await;
        let before = store.read_with(|c| log::cursor(c, "journeys")).await.unwrap();
        // The tail's transaction fails twice after its entries: nothing is kept, the
        // cursor stays.
        shop.engine.inject_transition_failures(2);
        for _ in 0..2 {
            assert!(shop.engine.tail_transitions_once().await.is_err());
        }
        let after_failures = store.read_with(|c| log::cursor(c, "journeys")).await.unwrap();
        assert_eq!(after_failures, before);
        assert!(shop
            .engine
            .runs(Some("pinged_hello"), None, 10)
            .await
            .unwrap()
            .is_empty());
        shop.fire().await;
        assert_eq!(shop.sent_to(), vec!["A", "B", "C"]);
        // Reading the same transitions again (the cursor moved back) enters nobody twice.
        store
            .write_with(move |c| log::set_cursor(c, "journeys", before.unwrap_or(0)))
            .await
            .unwrap();
        shop.fire().await;
        assert_eq!(
            shop.engine
                .runs(Some("pinged_hello"), None, 10)
                .await
                .unwrap()
                .len(),
            3
        );
        assert_eq!(shop.sent_to(), vec!["A", "B", "C"]);
        assert_eq!(store.read_with(|c| log::lag(c, "journeys")).await.unwrap(), 0);
    }
}
