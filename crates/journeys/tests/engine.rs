//! The journey engine on every store backend, driven by hand with a controllable clock:
//! keyed cart abandonment (wait for the order, timeout → message), consent, entry
//! policy at the cooldown boundary, quiet hours and caps at their boundaries, a webhook
//! provider that fails then recovers, and an interrupted send redone with the same key.

mod common;

use std::collections::BTreeMap;

use common::{shanghai, Shop};
use flywheel_journeys::db::RunState;
use flywheel_store::testing::stores;
use flywheel_store::timers;
use serde_json::{json, Value};

fn cart_journey() -> Value {
    json!({
        "name": "cart_abandonment",
        "trigger": {"event": {"name": "Product Added", "where": {"cart_id": {"exists": true}}}},
        "key": "cart_id",
        "goal": {"name": "Order Completed", "same_key": true},
        "steps": [
            {"id": "wait", "type": "wait_for_event", "name": "Order Completed", "timeout": "1h",
             "on_event": "exit", "on_timeout": "remind"},
            {"id": "remind", "type": "send", "channels": ["sms"],
             "text": "{{ profile.id }}，您的購物車 {{ run.key }} 還有商品"}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_abandonment_reminds_once_and_only_those_who_did_not_buy() {
    for store in stores("journey_cart").await {
        let t0 = shanghai("2026-11-30 10:00:00.000");
        let mut shop = Shop::new(store, vec![], t0).await;
        shop.journey(cart_journey()).await;
        for (u, phone) in [
            ("u1", "13800000001"),
            ("u2", "13800000002"),
            ("u3", "13800000003"),
            ("u4", ""),
        ] {
            shop.user(u, phone).await;
            if !phone.is_empty() {
                shop.engine
                    .set_consent(u, "sms", "subscribed", "test")
                    .await
                    .unwrap();
            }
        }
        shop.engine
            .set_consent("u3", "sms", "unsubscribed", "test")
            .await
            .unwrap();
        for u in ["u1", "u2", "u3", "u4"] {
            shop.track(
                u,
                "Product Added",
                json!({"cart_id": format!("c-{u}"), "product_id": "p1"}),
            )
            .await;
        }
        // u1 adds again to the same cart: already in the journey for that key.
        shop.track(
            "u1",
            "Product Added",
            json!({"cart_id": "c-u1", "product_id": "p2"}),
        )
        .await;
        // u2 buys that cart within the hour; an order of another cart does not count.
        shop.at(t0 + 10 * 60_000);
        shop.track(
            "u1",
            "Order Completed",
            json!({"order_id": "o0", "cart_id": "other", "total": 10}),
        )
        .await;
        shop.track(
            "u2",
            "Order Completed",
            json!({"order_id": "o1", "cart_id": "c-u2", "total": 99}),
        )
        .await;

        shop.at(t0 + 3_600_000 - 1);
        shop.fire().await;
        assert!(shop.sent_to().is_empty(), "nothing before the hour is up");
        shop.at(t0 + 3_600_000);
        shop.fire().await;
        shop.fire().await;
        assert_eq!(
            shop.sent_to(),
            vec!["u1"],
            "one reminder, to the one who did not buy"
        );
        let seen = shop.seen.lock().unwrap().clone();
        assert!(seen[0].0, "signed");
        assert_eq!(seen[0].2["text"], "u1，您的購物車 c-u1 還有商品");
        assert_eq!(seen[0].1.len(), 32, "idempotency key");
        assert!(shop.statuses("u1").await[0].starts_with("sent:"));
        assert!(shop.statuses("u2").await.is_empty());
        let u3 = shop.statuses("u3").await;
        assert!(
            u3.len() == 1 && u3[0].starts_with("suppressed:") && u3[0].contains("unsubscribed"),
            "{u3:?}"
        );
        let u4 = shop.statuses("u4").await;
        assert!(u4.len() == 1 && u4[0].contains("no_address"), "{u4:?}");
        let stats = shop.engine.journey_stats("cart_abandonment").await.unwrap();
        let states: BTreeMap<RunState, i64> = stats.states.into_iter().collect();
        assert_eq!(states.get(&RunState::Done), Some(&3), "{states:?}");
        assert_eq!(states.get(&RunState::Converted), Some(&1), "{states:?}");
        assert_eq!(stats.converted, 1);
        // Preview renders for a chosen user without sending.
        let j = flywheel_journeys::Journey::from_json(&cart_journey().to_string()).unwrap();
        let p = shop.engine.preview(&j, "remind", "u2").await.unwrap();
        assert_eq!(p.text, "u2，您的購物車  還有商品");
        assert!(
            shop.engine.preview(&j, "wait", "u2").await.is_err(),
            "not a send step"
        );
        assert!(
            shop.engine.preview(&j, "remind", "nobody").await.is_err(),
            "no such user"
        );
        assert_eq!(shop.sent_to(), vec!["u1"]);
        // Nothing left to fire, and a later timer sweep sends nothing more.
        shop.at(t0 + 10 * 3_600_000);
        shop.fire().await;
        assert_eq!(shop.sent_to(), vec!["u1"]);
        let left = shop.store.read_with(timers::count).await.unwrap();
        assert_eq!(left, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooldown_re_entry_at_its_boundary_and_holdout_sends_nothing() {
    for store in stores("journey_reentry").await {
        let t0 = shanghai("2026-11-30 10:00:00.000");
        let mut shop = Shop::new(store, vec![], t0).await;
        shop.journey(json!({
            "name": "browse",
            "trigger": {"event": {"name": "Product Viewed"}},
            "entry": {"cooldown": "1h"},
            "steps": [{"id": "bye", "type": "exit"}]
        }))
        .await;
        shop.user("u1", "13800000001").await;
        shop.track("u1", "Product Viewed", json!({})).await;
        shop.at(t0 + 3_600_000 - 1);
        shop.track("u1", "Product Viewed", json!({})).await;
        shop.at(t0 + 3_600_000);
        shop.track("u1", "Product Viewed", json!({})).await;
        let runs = shop.engine.runs(Some("browse"), None, 10).await.unwrap();
        let entered: Vec<i64> = runs.iter().map(|r| r.entered_at - t0).collect();
        assert_eq!(
            entered,
            vec![3_600_000, 0],
            "1 ms inside the cooldown refused, at its end entered"
        );

        // A 100 % holdout: everyone enters, nobody is messaged.
        shop.journey(json!({
            "name": "held",
            "trigger": {"event": {"name": "Signed Up"}},
            "entry": "once",
            "steps": [
                {"id": "split", "type": "split", "branches": [{"name": "all", "percent": 0, "next": "send"}], "holdout": 100},
                {"id": "send", "type": "send", "category": "transactional", "channels": ["sms"], "text": "hi"}
            ]
        }))
        .await;
        shop.track("u1", "Signed Up", json!({})).await;
        shop.track("u1", "Signed Up", json!({})).await;
        shop.fire().await;
        let runs = shop.engine.runs(Some("held"), None, 10).await.unwrap();
        assert_eq!(runs.len(), 1, "entry once");
        assert_eq!(runs[0].state, RunState::Holdout);
        assert!(shop.sent_to().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_hours_and_daily_cap_defer_to_their_boundaries() {
    for store in stores("journey_quiet").await {
        // 21:59:59.999 shop time: just before quiet hours.
        let t0 = shanghai("2026-11-30 21:59:59.999");
        let mut shop = Shop::new(store, vec![], t0).await;
        shop.journey(json!({
            "name": "promo",
            "trigger": {"event": {"name": "Promo"}},
            "steps": [{"id": "send", "type": "send", "channels": ["sms"], "text": "促銷 {{ event.n }}"}]
        }))
        .await;
        shop.user("u1", "13800000001").await;
        shop.engine
            .set_consent("u1", "sms", "subscribed", "test")
            .await
            .unwrap();
        shop.track("u1", "Promo", json!({"n": 1})).await;
        shop.fire().await;
        assert_eq!(shop.sent_to().len(), 1, "21:59:59.999 is not quiet");
        shop.at(shanghai("2026-11-30 22:00:00.000"));
        shop.track("u1", "Promo", json!({"n": 2})).await;
        shop.fire().await;
        assert_eq!(shop.sent_to().len(), 1, "22:00 is quiet: deferred");
        assert!(shop
            .statuses("u1")
            .await
            .iter()
            .any(|s| s.starts_with("deferred:")));
        shop.at(shanghai("2026-12-01 07:59:59.999"));
        shop.fire().await;
        assert_eq!(shop.sent_to().len(), 1);
        shop.at(shanghai("2026-12-01 08:00:00.000"));
        shop.fire().await;
        assert_eq!(shop.sent_to().len(), 2, "sent at 08:00");
        // Two today (the deferred one counts on 1 Dec, the first on 30 Nov): one more fits.
        shop.track("u1", "Promo", json!({"n": 3})).await;
        shop.fire().await;
        assert_eq!(shop.sent_to().len(), 3);
        // The cap (2 a day) is full: the next waits for the next shop-local day.
        shop.track("u1", "Promo", json!({"n": 4})).await;
        shop.fire().await;
        assert_eq!(shop.sent_to().len(), 3);
        shop.at(shanghai("2026-12-01 23:59:59.999"));
        shop.fire().await;
        assert_eq!(shop.sent_to().len(), 3);
        shop.at(shanghai("2026-12-02 08:00:00.000"));
        shop.fire().await;
        assert_eq!(
            shop.sent_to().len(),
            4,
            "the next allowed time is 08:00 the next day"
        );
        let texts: Vec<String> = shop
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.2["text"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(texts, vec!["促銷 1", "促銷 2", "促銷 3", "促銷 4"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_failures_retry_then_fail_and_an_interrupted_send_keeps_its_key() {
    for store in stores("journey_retry").await {
        let t0 = shanghai("2026-11-30 10:00:00.000");
        // u1: 503, 503, 200 → delivered on the 3rd attempt. u2: 400 → failed at once.
        let mut shop = Shop::new(store, vec![503, 503, 200, 400], t0).await;
        shop.journey(json!({
            "name": "notify",
            "trigger": {"event": {"name": "Notify"}},
            "steps": [{"id": "send", "type": "send", "category": "transactional", "channels": ["sms"], "text": "通知"}]
        }))
        .await;
        shop.user("u1", "13800000001").await;
        shop.user("u2", "13800000002").await;
        shop.track("u1", "Notify", json!({})).await;
        shop.fire().await;
        assert_eq!(shop.seen.lock().unwrap().len(), 1);
        shop.at(t0 + 1_000);
        shop.fire().await;
        assert_eq!(shop.seen.lock().unwrap().len(), 2, "retried after 1 s");
        shop.at(t0 + 2_999);
        shop.fire().await;
        assert_eq!(shop.seen.lock().unwrap().len(), 2, "the second retry waits 2 s");
        shop.at(t0 + 3_000);
        shop.fire().await;
        let keys: Vec<String> = shop.seen.lock().unwrap().iter().map(|s| s.1.clone()).collect();
        assert_eq!(keys.len(), 3);
        assert!(
            keys.iter().all(|k| *k == keys[0]),
            "every attempt carries the same key"
        );
        assert!(shop.statuses("u1").await[0].starts_with("sent:"));
        shop.track("u2", "Notify", json!({})).await;
        shop.fire().await;
        assert!(shop.statuses("u2").await[0].starts_with("failed:HTTP 400"));

        // A send interrupted after its pending record (a crash): redone once, same key.
        shop.track("u1", "Notify", json!({"again": true})).await;
        let runs = shop.engine.runs(Some("notify"), Some("u1"), 10).await.unwrap();
        let pending = runs
            .iter()
            .find(|r| r.state == RunState::Active)
            .unwrap()
            .id
            .clone();
        let key = flywheel_journeys::effects::effect_key(&pending, "send");
        let now = shop.now();
        shop.store
            .write_with(move |c| timers::record_effect(c, &key, "pending", now))
            .await
            .unwrap();
        shop.fire().await;
        shop.fire().await;
        let seen = shop.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 5);
        assert_eq!(
            seen[4].1,
            flywheel_journeys::send::message_id_of(&flywheel_journeys::effects::effect_key(&pending, "send"))
        );
        let runs = shop.engine.runs(Some("notify"), None, 10).await.unwrap();
        assert!(runs.iter().all(|r| r.state == RunState::Done), "{runs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn most_active_hour_and_several_keyed_runs_per_user() {
    for store in stores("journey_active_hour").await {
        let t0 = shanghai("2026-11-30 10:00:00.000");
        let mut shop = Shop::new(store, vec![], t0).await;
        shop.user("u1", "13800000001").await;
        // u1 is active around 20:00 shop time.
        for d in 1..=6 {
            shop.track_at(
                "u1",
                "Product Viewed",
                json!({}),
                t0 - d * 86_400_000 + 10 * 3_600_000 + 60_000,
            )
            .await;
        }
        shop.journey(json!({
            "name": "evening",
            "trigger": {"event": {"name": "Product Added", "where": {"cart_id": {"exists": true}}}},
            "key": "cart_id",
            "steps": [{"id": "send", "type": "send", "channels": ["sms"], "at_active_hour": true,
                       "text": "購物車 {{ run.key }}"}]
        }))
        .await;
        // Two carts: two runs of one keyed journey at once.
        shop.track("u1", "Product Added", json!({"cart_id": "A"})).await;
        shop.track("u1", "Product Added", json!({"cart_id": "B"})).await;
        shop.fire().await;
        assert!(shop.sent_to().is_empty(), "moved to the most active hour");
        shop.at(shanghai("2026-11-30 19:59:59.999"));
        shop.fire().await;
        assert!(shop.sent_to().is_empty());
        shop.at(shanghai("2026-11-30 20:00:00.000"));
        shop.fire().await;
        let mut texts = shop.texts_to("u1");
        texts.sort();
        assert_eq!(texts, vec!["購物車 A", "購物車 B"]);
    }
}
