//! The engine end to end on a real SQLite store: events go through the ingest pipeline,
//! the engine hears of each committed batch, and the seed rules hold at their
//! boundaries with a controllable clock — including when time alone moves a user.

use std::ops::Range;
use std::sync::Arc;

use flywheel_audience::config::AudienceConfig;
use flywheel_audience::{Audience, DefKind, SegmentInput};
use flywheel_core::bus::{Bus, InProcessBus};
use flywheel_core::time::{from_millis, parse_timestamp, to_millis};
use flywheel_core::FixedClock;
use flywheel_ingest::ecommerce::materialise;
use flywheel_ingest::message::{parse, Envelope};
use flywheel_ingest::pipeline::CommitObserver;
use flywheel_ingest::Pipeline;
use flywheel_store::{ApplyOutcome, NewEvent, Store, StoreConfig, Synchronous};
use serde_json::{json, Value};

const DAY: i64 = 86_400_000;

struct Observer(Audience);

impl CommitObserver for Observer {
    fn committed(&self, events: &Arc<Vec<NewEvent>>, range: Range<usize>, outcome: &ApplyOutcome) {
        self.0.observe(events, range, outcome);
    }
}

struct Shop {
    clock: Arc<FixedClock>,
    bus: Arc<InProcessBus>,
    audience: Audience,
    pipeline: Pipeline,
    seq: usize,
}

fn t0() -> i64 {
    to_millis(parse_timestamp("2025-01-01T00:00:00+08:00").unwrap())
}

async fn open_store(dir: &std::path::Path) -> Store {
    Store::open(StoreConfig::from_url(None, dir, Synchronous::Normal).unwrap())
        .await
        .unwrap()
}

impl Shop {
    async fn new(dir: &std::path::Path) -> Shop {
        Shop::with_config(dir, AudienceConfig::default()).await
    }

    async fn with_config(dir: &std::path::Path, config: AudienceConfig) -> Shop {
        let store = open_store(dir).await;
        let clock = Arc::new(FixedClock::new(from_millis(t0())));
        let bus = Arc::new(InProcessBus::new(1024));
        let audience = Audience::open(store.clone(), config, bus.clone(), clock.clone())
            .await
            .unwrap();
        let pipeline = Pipeline::start_observed(
            store.clone(),
            Default::default(),
            Some(Arc::new(Observer(audience.clone()))),
        );
        Shop {
            clock,
            bus,
            audience,
            pipeline,
            seq: 0,
        }
    }

    async fn send(&mut self, user: &str, name: &str, at: i64, props: Value) {
        self.seq += 1;
        let msg = json!({
            "type": "track", "userId": user, "event": name, "properties": props,
            "messageId": format!("m{}", self.seq),
            "timestamp": from_millis(at).to_rfc3339(),
        });
        self.submit(msg).await;
    }

    async fn submit(&mut self, msg: Value) {
        let at = msg["timestamp"]
            .as_str()
            .map(|t| parse_timestamp(t).unwrap())
            .unwrap_or_else(|| from_millis(t0()));
        let env = Envelope {
            index: 0,
            kind: None,
            received_at: Some(at),
            sent_at: None,
            context: None,
            integrations: None,
            ..Default::default()
        };
        let parsed = parse(msg, &env).unwrap();
        let ev = materialise(parsed.event, None, 0).unwrap();
        self.pipeline.submit(vec![ev]).await.unwrap();
        self.audience.flush().await;
    }

    async fn order(&mut self, user: &str, order_id: &str, at: i64, total: &str) {
        self.send(user, "Order Completed", at, json!({"order_id": order_id, "total": total, "products": [{"product_id": "p1", "price": total, "quantity": 1, "category": "護膚"}]}))
            .await;
    }

    fn at(&self, t: i64) {
        self.clock.set(from_millis(t));
        self.audience.tick();
    }

    fn tagged(&self, tag: &str) -> Vec<String> {
        let page = self.audience.members_of(DefKind::Tag, tag, None, 1000).unwrap();
        let mut ids: Vec<String> = page.members.into_iter().filter_map(|m| m.user_id).collect();
        ids.sort();
        ids
    }
}

/// The event's payload as JSON (its fields beside its `type`).
fn payload(e: &flywheel_core::bus::DomainEvent) -> serde_json::Value {
    serde_json::to_value(e).unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    flywheel_store::testing::fresh_dir(&format!("flywheel-audience-{}-{name}", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_value_is_strictly_more_than_1000_yuan_in_30_days_and_time_moves_users_out() {
    let mut shop = Shop::new(&tmp("high")).await;
    let mut rx = shop.bus.subscribe();
    let t = t0() - DAY;
    shop.order("exact", "o1", t, "1000.00").await;
    shop.order("above", "o2", t, "1000.01").await;
    assert_eq!(shop.tagged("高價值客戶"), vec!["above"]);
    let msg = loop {
        let m = rx.recv().await.unwrap();
        if payload(&m)["name"] == "高價值客戶" {
            break m;
        }
    };
    assert_eq!(msg.subject(), "tag.added");
    assert_eq!(payload(&msg)["profile_id"], "user:above");
    assert_eq!(payload(&msg)["cause"], "event");
    // Still inside at 30 days minus 1 ms; out at exactly 30 × 24 h, with no new event.
    shop.at(t + 30 * DAY - 1);
    assert_eq!(shop.tagged("高價值客戶"), vec!["above"]);
    shop.at(t + 30 * DAY);
    assert!(shop.tagged("高價值客戶").is_empty());
    let removed = loop {
        let m = rx.recv().await.unwrap();
        if m.subject() == "tag.removed" && payload(&m)["name"] == "高價值客戶" {
            break m;
        }
    };
    assert_eq!(payload(&removed)["cause"], "time");
    // The segment language sees the same thing.
    let n = shop
        .audience
        .count(&SegmentInput::text("spend(30d) > 1000 元"))
        .unwrap();
    assert_eq!(n, 0);
    let n = shop
        .audience
        .count(&SegmentInput::text("spend > 1000 元"))
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_value_orders_are_purchases_unless_the_shop_says_otherwise() {
    let count = |shop: &Shop, expr: &str| shop.audience.count(&SegmentInput::text(expr)).unwrap();
    let t = t0() - DAY;
    // Default, as lifetimes: a 0 元 order is a purchase.
    let mut shop = Shop::new(&tmp("zero-default")).await;
    shop.order("gift", "o1", t, "0.00").await;
    assert_eq!(count(&shop, "orders(30d) >= 1"), 1);
    // `count_zero_value_orders = false`: left out, live and after a rebuild from the store.
    let dir = tmp("zero-off");
    let config = AudienceConfig {
        count_zero_value_orders: false,
        ..AudienceConfig::default()
    };
    let mut shop = Shop::with_config(&dir, config.clone()).await;
    shop.order("gift", "o1", t, "0.00").await;
    shop.order("paid", "o2", t, "10.00").await;
    assert_eq!(count(&shop, "orders(30d) >= 1"), 1);
    shop.pipeline.shutdown().await;
    drop(shop);
    let rebuilt = Shop::with_config(&dir, config).await;
    assert_eq!(count(&rebuilt, "orders(30d) >= 1"), 1);
    assert_eq!(
        count(&rebuilt, "orders(30d) = 0"),
        1,
        "the 0 元 buyer has no purchase"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loads_the_saved_state_with_the_same_answers_until_the_log_moves_on() {
    let exprs = [
        "orders(30d) >= 1",
        "spend > 100 元",
        r#"tag("高價值客戶")"#,
        r#"categories_bought contains "護膚""#,
        "last_active within 7d",
    ];
    let counts = |shop: &Shop| -> Vec<u64> {
        exprs
            .iter()
            .map(|e| shop.audience.count(&SegmentInput::text(*e)).unwrap())
            .collect()
    };
    let dir = tmp("snapshot");
    let config = AudienceConfig {
        snapshot_dir: Some(dir.clone()),
        ..AudienceConfig::default()
    };
    let t = t0() - DAY;
    let mut shop = Shop::with_config(&dir, config.clone()).await;
    assert!(!shop.audience.loaded_from_snapshot(), "nothing saved yet");
    shop.order("big", "o1", t, "2000.00").await;
    shop.order("small", "o2", t, "50.00").await;
    shop.send("idle", "Signed In", t0() - 20 * DAY, json!({})).await;
    shop.audience
        .put_tag(
            flywheel_audience::TagInput {
                name: "手動".into(),
                kind: None,
                group: None,
                rule: None,
                rule_ast: None,
                description: None,
            },
            false,
        )
        .await
        .unwrap();
    shop.audience
        .assign("手動", &["small".into()], false)
        .await
        .unwrap();
    shop.audience.tick();
    let before = counts(&shop);
    let profile = serde_json::to_value(shop.audience.profile("user:big").unwrap()).unwrap();
    assert_eq!(before, vec![2, 1, 1, 2, 2]);
    shop.pipeline.shutdown().await;
    assert!(shop.audience.save_snapshot().await.unwrap());
    drop(shop);
    assert!(dir.join("audience.snapshot").exists());

    // Nothing stored since: loaded, with the same answers, profile and manual tag.
    let mut shop = Shop::with_config(&dir, config.clone()).await;
    assert!(shop.audience.loaded_from_snapshot());
    shop.audience.tick();
    assert_eq!(counts(&shop), before);
    assert_eq!(
        serde_json::to_value(shop.audience.profile("user:big").unwrap()).unwrap(),
        profile
    );
    assert_eq!(shop.tagged("手動"), vec!["small"]);
    // It keeps folding: a new order counts at once (new message ids for the new shop).
    shop.seq = 1_000;
    shop.order("new", "o3", t, "3000.00").await;
    assert_eq!(counts(&shop)[0], 3);
    shop.pipeline.shutdown().await;
    drop(shop);

    // The log moved on since the save (o3): rebuilt from the store, o3 included.
    let shop = Shop::with_config(&dir, config.clone()).await;
    assert!(!shop.audience.loaded_from_snapshot());
    assert_eq!(counts(&shop)[0], 3);
    assert_eq!(shop.tagged("手動"), vec!["small"]);
    shop.pipeline.shutdown().await;
    assert!(shop.audience.save_snapshot().await.unwrap());
    drop(shop);

    // Other settings than those it was saved under: rebuilt.
    let other = AudienceConfig {
        count_zero_value_orders: false,
        ..config
    };
    let shop = Shop::with_config(&dir, other).await;
    assert!(!shop.audience.loaded_from_snapshot());
    assert_eq!(counts(&shop)[0], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_risk_needs_90_days_without_sign_in_and_without_purchase() {
    let mut shop = Shop::new(&tmp("churn")).await;
    let start = t0() - 200 * DAY;
    // Both seen long ago; one signs in, the other buys, 89 days before t0.
    shop.send("signin", "Page Viewed", start, json!({})).await;
    shop.send("buyer", "Page Viewed", start, json!({})).await;
    shop.send("idle", "Page Viewed", start, json!({})).await;
    shop.send("signin", "Signed In", t0() - 89 * DAY, json!({})).await;
    shop.order("buyer", "b1", t0() - 89 * DAY, "50").await;
    shop.at(t0());
    assert_eq!(shop.tagged("流失風險客戶"), vec!["idle"]);
    shop.at(t0() + DAY - 1); // 89 days 23:59:59.999
    assert_eq!(shop.tagged("流失風險客戶"), vec!["idle"]);
    shop.at(t0() + DAY); // exactly 90 days
    assert_eq!(shop.tagged("流失風險客戶"), vec!["buyer", "idle", "signin"]);
    shop.at(t0() + 2 * DAY); // 91 days
    assert_eq!(shop.tagged("流失風險客戶"), vec!["buyer", "idle", "signin"]);
    // Signing in again takes the user out at once.
    shop.send("signin", "Signed In", t0() + 2 * DAY, json!({})).await;
    assert_eq!(shop.tagged("流失風險客戶"), vec!["buyer", "idle"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_without_purchase_is_potential_and_a_purchase_ends_it() {
    let mut shop = Shop::new(&tmp("cart")).await;
    shop.send("c1", "Product Added", t0() - DAY, json!({"product_id": "p1"}))
        .await;
    shop.send("c2", "Product Added", t0() - DAY, json!({"product_id": "p1"}))
        .await;
    shop.at(t0());
    assert_eq!(shop.tagged("潛力客戶"), vec!["c1", "c2"]);
    shop.order("c2", "o9", t0(), "99").await;
    assert_eq!(shop.tagged("潛力客戶"), vec!["c1"]);
    assert_eq!(
        shop.audience
            .count(&SegmentInput::text("unbought_cart_items(30d) >= 1"))
            .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_segments_backfill_counters_update_live_and_survive_a_restart() {
    let dir = tmp("restart");
    let mut shop = Shop::new(&dir).await;
    for (i, user) in ["a", "a", "a", "b"].iter().enumerate() {
        shop.send(
            user,
            "Product Added",
            t0() - (i as i64 + 1) * DAY,
            json!({"product_id": "p2", "category": "彩妝"}),
        )
        .await;
    }
    shop.send("z", "Signed Up", t0() - DAY, json!({})).await;
    // A raw profile trait no rule read yet: back-filled from the store when a rule names it.
    let identify = |user: &str, id: &str, level: &str| {
        json!({"type": "identify", "userId": user, "messageId": id, "timestamp": from_millis(t0() - DAY).to_rfc3339(),
               "traits": {"vip_level": level, "nickname": "小明"}})
    };
    shop.submit(identify("a", "vip-a", "gold")).await;
    let gold = SegmentInput::text(r#"traits.vip_level = "gold""#);
    shop.audience
        .put_segment("金卡".into(), &gold, None, false)
        .await
        .unwrap();
    assert_eq!(shop.audience.segment("金卡").unwrap().members, 1);
    shop.submit(identify("b", "vip-b", "gold")).await;
    assert_eq!(shop.audience.segment("金卡").unwrap().members, 2);
    let input = SegmentInput::text(r#"event("Product Added", within: 7d, where: {category: "彩妝"}) >= 2"#);
    shop.audience
        .put_segment("加購多次".into(), &input, None, false)
        .await
        .unwrap();
    assert_eq!(shop.audience.segment("加購多次").unwrap().members, 1);
    let mut rx = shop.bus.subscribe();
    shop.send(
        "b",
        "Product Added",
        t0(),
        json!({"product_id": "p3", "category": "彩妝"}),
    )
    .await;
    let m = rx.recv().await.unwrap();
    assert_eq!(
        (m.subject(), payload(&m)["name"].as_str()),
        ("segment.entered", Some("加購多次"))
    );
    assert_eq!(shop.audience.segment("加購多次").unwrap().members, 2);
    // Manual tags and bad definitions.
    shop.audience
        .put_tag(
            serde_json::from_value(json!({"name": "VIP", "kind": "manual"})).unwrap(),
            false,
        )
        .await
        .unwrap();
    shop.audience
        .assign("VIP", &["z".to_string()], false)
        .await
        .unwrap();
    // A manual tag on a device moves to the user the device turns out to be.
    let browse = json!({"type": "page", "anonymousId": "dev-9", "name": "首頁", "messageId": "dev9-1",
        "timestamp": from_millis(t0()).to_rfc3339()});
    shop.submit(browse).await;
    shop.audience
        .assign("VIP", &["dev-9".to_string()], false)
        .await
        .unwrap();
    let link = json!({"type": "identify", "userId": "y", "anonymousId": "dev-9", "messageId": "dev9-2",
        "timestamp": from_millis(t0()).to_rfc3339()});
    shop.submit(link).await;
    let vip = shop.audience.members_of(DefKind::Tag, "VIP", None, 10).unwrap();
    assert_eq!(vip.total, 2, "{vip:?}");
    fn code<T>(r: Result<T, flywheel_audience::Error>) -> Option<&'static str> {
        r.err().map(|e| e.code().as_str())
    }
    assert_eq!(
        code(shop.audience.assign("VIP", &["nobody".to_string()], false).await),
        Some("not_found")
    );
    assert_eq!(
        code(
            shop.audience
                .assign("高價值客戶", &["z".to_string()], false)
                .await
        ),
        Some("not_manual_tag")
    );
    // Each refusal of a definition has its own code.
    for (expression, expected) in [
        ("spend(30d) > 1000", "invalid_segment"),
        ("spend(30d) >", "invalid_expression"),
        ("spending(30d) > 1 元", "unknown_trait"),
        ("event(\"No Such Event\") >= 1", "unknown_event"),
        ("tag(\"不存在\")", "unknown_tag"),
        ("segment(\"不存在\")", "unknown_segment"),
    ] {
        let r = shop
            .audience
            .put_segment("bad".into(), &SegmentInput::text(expression), None, false)
            .await;
        assert_eq!(code(r), Some(expected), "{expression}");
    }
    let again = shop
        .audience
        .put_segment("加購多次".into(), &SegmentInput::text("orders >= 1"), None, false)
        .await;
    assert_eq!(code(again), Some("name_taken"));
    assert_eq!(
        code(shop.audience.delete(DefKind::Tag, "高價值客戶").await),
        Some("built_in")
    );
    shop.pipeline.shutdown().await;
    shop.audience.stop();
    drop(shop);
    // A new engine over the same store rebuilds the same state.
    let store = open_store(&dir).await;
    let clock = Arc::new(FixedClock::new(from_millis(t0())));
    let audience = Audience::open(
        store,
        AudienceConfig::default(),
        Arc::new(InProcessBus::new(16)),
        clock,
    )
    .await
    .unwrap();
    assert_eq!(audience.segment("加購多次").unwrap().members, 2);
    assert_eq!(audience.segment("金卡").unwrap().members, 2);
    assert_eq!(audience.tag("VIP").unwrap().members, 2);
    let view = audience.profile("user:z").unwrap();
    assert!(view.tags.contains(&"VIP".to_string()), "{view:?}");
    assert_eq!(view.lifecycle.as_deref(), Some("新用戶"));
}

fn local(text: &str) -> i64 {
    to_millis(parse_timestamp(text).unwrap())
}

/// 留存用戶: paid orders in 2 of the last 3 shop-local calendar months; the start of a
/// month moves a customer out with no new event, and a new order brings one in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_is_two_of_the_last_three_months_and_a_new_month_moves_users() {
    let mut shop = Shop::new(&tmp("retained")).await;
    for (user, times) in [
        ("r", ["2024-11-20T10:00:00+08:00", "2024-12-20T10:00:00+08:00"]),
        ("once", ["2024-12-01T10:00:00+08:00", "2024-12-25T10:00:00+08:00"]),
        (
            "edge",
            ["2024-10-31T23:59:59.999+08:00", "2024-12-10T10:00:00+08:00"],
        ),
        ("nov", ["2024-11-01T00:00:00+08:00", "2024-12-10T10:00:00+08:00"]),
    ] {
        for (i, t) in times.iter().enumerate() {
            shop.order(user, &format!("{user}{i}"), local(t), "10").await;
        }
    }
    shop.at(t0()); // 2025-01-01 00:00 in Shanghai: November, December, January
    let stage = |shop: &Shop, id: &str| shop.audience.profile(&format!("user:{id}")).unwrap().lifecycle;
    assert_eq!(stage(&shop, "r").as_deref(), Some("留存用戶"));
    assert_eq!(stage(&shop, "once").as_deref(), Some("活躍用戶"));
    assert_eq!(
        stage(&shop, "edge").as_deref(),
        Some("活躍用戶"),
        "October is outside"
    );
    assert_eq!(shop.tagged("留存用戶"), vec!["nov", "r"]);
    assert_eq!(
        shop.audience
            .count(&SegmentInput::text(r#"lifecycle = "留存用戶""#))
            .unwrap(),
        2
    );
    // Still retained on the last instant of January; out on the first of February.
    shop.at(local("2025-01-31T23:59:59.999+08:00"));
    assert_eq!(shop.tagged("留存用戶"), vec!["nov", "r"]);
    shop.at(local("2025-02-01T00:00:00+08:00"));
    assert!(shop.tagged("留存用戶").is_empty());
    assert_eq!(stage(&shop, "r").as_deref(), Some("活躍用戶"));
    // An order in February: December and February are two of the last three months.
    shop.order("once", "once9", local("2025-02-01T09:00:00+08:00"), "10")
        .await;
    assert_eq!(shop.tagged("留存用戶"), vec!["once"]);
}

/// 易受促銷影響客戶 (`orders(365d) >= 2 and promo_share(365d) >= 0.5`) through tracked
/// orders: at, just below and just above each threshold, and the 365-day window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_sensitive_at_its_boundaries() {
    let mut shop = Shop::new(&tmp("promo")).await;
    let day_ago = t0() - DAY;
    let promo = json!({"coupon": "NEW10"});
    let discount = json!({"discount": "0.01"});
    let plain = json!({"discount": "0", "coupon": ""});
    let cases: Vec<(&str, Vec<&Value>)> = vec![
        ("one_promo", vec![&promo]),                    // 1 order: below the count
        ("two_half", vec![&promo, &plain]),             // 2 orders, share 0.5: at both
        ("two_discount", vec![&discount, &plain]),      // a 1 分 discount is a promotion
        ("two_plain", vec![&plain, &plain]),            // share 0: below
        ("three_third", vec![&promo, &plain, &plain]),  // share 1/3: below
        ("three_two", vec![&promo, &discount, &plain]), // share 2/3: above
    ];
    for (user, orders) in &cases {
        for (i, extra) in orders.iter().enumerate() {
            let mut props = json!({"order_id": format!("{user}{i}"), "total": "50",
                "products": [{"product_id": "p1", "price": "50", "quantity": 1}]});
            for (k, v) in extra.as_object().unwrap() {
                props[k] = v.clone();
            }
            shop.send(user, "Order Completed", day_ago, props).await;
        }
    }
    // The window: an order 365 days minus 1 hour old counts until it is 365 days old.
    let old = t0() - 365 * DAY + 3_600_000;
    shop.send(
        "window",
        "Order Completed",
        old,
        json!({"order_id": "w0", "total": "50", "coupon": "A"}),
    )
    .await;
    shop.send(
        "window",
        "Order Completed",
        day_ago,
        json!({"order_id": "w1", "total": "50", "coupon": "B"}),
    )
    .await;
    shop.at(t0());
    let tag = "易受促銷影響客戶";
    assert_eq!(
        shop.tagged(tag),
        vec!["three_two", "two_discount", "two_half", "window"]
    );
    shop.at(t0() + 3_600_000 - 1);
    assert!(shop.tagged(tag).contains(&"window".to_string()));
    shop.at(t0() + 3_600_000);
    assert_eq!(shop.tagged(tag), vec!["three_two", "two_discount", "two_half"]);
    // Cancelling the promotion order of two_half leaves one order: out.
    shop.send(
        "two_half",
        "Order Cancelled",
        t0() + 3_600_000,
        json!({"order_id": "two_half0"}),
    )
    .await;
    assert_eq!(shop.tagged(tag), vec!["three_two", "two_discount"]);
}

/// REQUIREMENTS fixtures F1–F4, as written there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_fixtures_f1_to_f4() {
    let mut shop = Shop::new(&tmp("fixtures")).await;
    let now = t0();
    // F1: A 600 (5 days ago) + 400.01 (20 days ago) → 高價值; B 600 + 400 → not.
    shop.order("A", "a1", now - 5 * DAY, "600").await;
    shop.order("A", "a2", now - 20 * DAY, "400.01").await;
    shop.order("B", "b1", now - 5 * DAY, "600").await;
    shop.order("B", "b2", now - 20 * DAY, "400").await;
    // F2: C one order of 1500, 31 days ago → not.
    shop.order("C", "c1", now - 31 * DAY, "1500").await;
    // F3: D carts SKU1 2 days ago, no orders → 潛力; after paying for SKU1 → not.
    shop.send("D", "Product Added", now - 2 * DAY, json!({"product_id": "SKU1"}))
        .await;
    // F4: E last login 91 days ago, last order 120 days ago → 流失風險;
    //     F last login 100 days ago, last order 60 days ago → not.
    shop.order("E", "e1", now - 120 * DAY, "10").await;
    shop.send("E", "Signed In", now - 91 * DAY, json!({})).await;
    shop.order("F", "f1", now - 60 * DAY, "10").await;
    shop.send("F", "Signed In", now - 100 * DAY, json!({})).await;
    shop.at(now);
    assert_eq!(shop.tagged("高價值客戶"), vec!["A"]);
    assert_eq!(shop.tagged("潛力客戶"), vec!["D"]);
    // C bought 31 days ago: not at risk either.
    assert_eq!(shop.tagged("流失風險客戶"), vec!["E"]);
    shop.order("D", "d1", now, "88").await;
    assert!(shop.tagged("潛力客戶").is_empty());
    // Lifecycle stages and the tag groups of R2.2.
    let stage = |id: &str| shop.audience.profile(&format!("user:{id}")).unwrap().lifecycle;
    assert_eq!(stage("A").as_deref(), Some("高價值用戶"));
    assert_eq!(stage("B").as_deref(), Some("活躍用戶"));
    assert_eq!(shop.tagged("高價值用戶"), vec!["A"]);
    assert_eq!(shop.tagged("中消費"), vec!["A", "B", "C"]);
}

/// A random shop's live engine and one rebuilt from the store agree on every tag,
/// segment and computed trait (the live fold and the start-up replay are one logic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_engine_equals_the_live_one() {
    use rand::{Rng, SeedableRng};
    let dir = tmp("rebuild");
    let mut shop = Shop::new(&dir).await;
    let seg = SegmentInput::text(
        r#"event("Product Added", within: 14d) >= 2 or (orders(90d) >= 2 and region in ["華東"])"#,
    );
    shop.audience
        .put_segment("混合".into(), &seg, None, false)
        .await
        .unwrap();
    // Segments that reach into the products of orders (issue 16).
    let product_segments = [
        ("彩妝近30天", r#"bought category "彩妝" within 30d"#),
        (
            "護膚非后",
            r#"categories_bought(90d) contains "護膚" and not brands_bought(90d) contains "后""#,
        ),
        (
            "彩妝事件",
            r#"event("Order Completed", within: 60d, where: {"products.category": "彩妝"}) >= 1"#,
        ),
        (
            "SKU",
            r#"bought sku ["S1", "S3"] within 45d or bought product "P2""#,
        ),
        ("留存", r#"lifecycle = "留存用戶""#),
    ];
    for (name, text) in product_segments {
        shop.audience
            .put_segment(name.into(), &SegmentInput::text(text), None, false)
            .await
            .unwrap();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut orders = Vec::new();
    for i in 0..400 {
        let user = format!("u{}", rng.gen_range(0..40));
        let at = t0() - rng.gen_range(0..200) * DAY - rng.gen_range(0..DAY);
        match rng.gen_range(0..8) {
            0 => {
                let id = format!("o{i}");
                let total = format!("{}.{:02}", rng.gen_range(1..900), rng.gen_range(0..100));
                let products: Vec<Value> = (0..rng.gen_range(1..3))
                    .map(|_| {
                        let n = rng.gen_range(0..4);
                        let category = ["護膚", "彩妝", "母嬰", "食品"][n];
                        let brand = ["雪花秀", "后"][n % 2];
                        let mut p = json!({"price": "1", "quantity": 1,
                            "category": category, "brand": brand, "sku": format!("S{n}")});
                        if rng.gen_bool(0.5) {
                            p["product_id"] = json!(format!("P{n}"));
                        }
                        p
                    })
                    .collect();
                shop.send(
                    &user,
                    "Order Completed",
                    at,
                    json!({"order_id": id, "total": total, "products": products}),
                )
                .await;
                orders.push((user, id));
            }
            1 => {
                shop.send(
                    &user,
                    "Product Added",
                    at,
                    json!({"product_id": format!("p{}", rng.gen_range(0..5))}),
                )
                .await
            }
            2 => shop.send(&user, "Signed In", at, json!({})).await,
            3 if !orders.is_empty() => {
                let (owner, id) = orders[rng.gen_range(0..orders.len())].clone();
                let props = if rng.gen_bool(0.5) {
                    json!({"order_id": id, "total": "10"})
                } else {
                    json!({"order_id": id})
                };
                shop.send(&owner, "Order Refunded", at, props).await;
            }
            4 => {
                shop.seq += 1;
                let region = ["華東", "華北"][rng.gen_range(0..2)];
                let gender = ["male", "女"][rng.gen_range(0..2)];
                let msg = json!({"type": "identify", "userId": user, "messageId": format!("m{}", shop.seq),
                    "timestamp": from_millis(at).to_rfc3339(),
                    "traits": {"region": region, "gender": gender, "birthday": "1990-06-01"}});
                shop.submit(msg).await;
            }
            5 => {
                // A device browses and carts before anyone knows who it is.
                shop.seq += 1;
                let msg = json!({"type": "track", "anonymousId": format!("d{}", rng.gen_range(0..20)),
                    "event": "Product Added", "properties": {"product_id": "p9"},
                    "messageId": format!("m{}", shop.seq), "timestamp": from_millis(at).to_rfc3339()});
                shop.submit(msg).await;
            }
            6 => {
                // Signing in links the device to the user: the two profiles merge.
                shop.seq += 1;
                let msg = json!({"type": "identify", "userId": user, "anonymousId": format!("d{}", rng.gen_range(0..20)),
                    "messageId": format!("m{}", shop.seq), "timestamp": from_millis(at).to_rfc3339()});
                shop.submit(msg).await;
            }
            _ => shop.send(&user, "Page Viewed", at, json!({})).await,
        }
    }
    shop.at(t0());
    let live_tags = shop.audience.tags();
    let live_segments = shop.audience.segments();
    let ids: Vec<String> = (0..40)
        .map(|u| format!("user:u{u}"))
        .chain((0..20).map(|d| format!("anon:d{d}")))
        .collect();
    let live_views: Vec<_> = ids
        .iter()
        .filter_map(|id| shop.audience.profile(id).ok())
        .collect();
    assert!(live_views.len() < ids.len(), "some devices merged into users");
    assert_eq!(live_views.len(), shop.audience.profiles() as usize);
    shop.pipeline.shutdown().await;
    let clock = Arc::new(FixedClock::new(from_millis(t0())));
    let rebuilt = Audience::open(
        open_store(&dir).await,
        AudienceConfig::default(),
        Arc::new(InProcessBus::new(16)),
        clock,
    )
    .await
    .unwrap();
    rebuilt.tick();
    let json = |v: &dyn erased::Ser| v.to_json();
    let by_name = |v: serde_json::Value| {
        let mut items = v.as_array().cloned().unwrap_or_default();
        items.sort_by_key(|i| i["name"].to_string());
        items
    };
    assert_eq!(by_name(json(&live_tags)), by_name(json(&rebuilt.tags())));
    assert_eq!(by_name(json(&live_segments)), by_name(json(&rebuilt.segments())));
    assert!(
        live_segments.iter().all(|s| s.members > 0),
        "{:?}",
        json(&live_segments)
    );
    assert!(live_tags.iter().filter(|t| t.members > 0).count() > 5);
    for seg in &live_segments {
        let ids = |a: &Audience| {
            let page = a.members_of(DefKind::Segment, &seg.def.name, None, 1000).unwrap();
            let mut ids: Vec<String> = page.members.into_iter().map(|m| m.profile_id).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&shop.audience), ids(&rebuilt), "{}", seg.def.name);
    }
    // Ad-hoc expressions with windows no rule keeps agree too.
    for text in [
        r#"bought brand "后" within 45d"#,
        r#"categories_bought(100d) contains "母嬰""#,
        r#"products_bought contains "S3""#,
    ] {
        let input = SegmentInput::text(text);
        shop.audience.prepare(&input).await.unwrap();
        rebuilt.prepare(&input).await.unwrap();
        let n = shop.audience.count(&input).unwrap();
        assert!(n > 0, "{text}");
        assert_eq!(n, rebuilt.count(&input).unwrap(), "{text}");
    }
    assert_eq!(rebuilt.profiles(), shop.audience.profiles());
    for v in &live_views {
        let r = rebuilt.profile(&v.profile_id).unwrap();
        assert_eq!(json(v), json(&r), "{}", v.profile_id);
    }
}

mod erased {
    /// Serialises anything serde can, for comparisons.
    pub trait Ser {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ad_hoc_count_reads_raw_traits_no_rule_kept_yet() {
    let dir = tmp("adhoc");
    let mut shop = Shop::new(&dir).await;
    for (user, risk, p) in [("a", "high", 0.1), ("b", "low", 0.9), ("c", "high", 0.25)] {
        shop.submit(
            json!({"type": "identify", "userId": user, "messageId": format!("clv-{user}"),
            "timestamp": from_millis(t0() - DAY).to_rfc3339(),
            "traits": {"clv_churn_risk": risk, "clv_p_alive": p}}),
        )
        .await;
    }
    let high = SegmentInput::text(r#"traits.clv_churn_risk == "high""#);
    let low_p = SegmentInput::text("traits.clv_p_alive < 0.3");
    // Without preparing, nothing is indexed for these traits yet.
    assert_eq!(shop.audience.count(&low_p).unwrap(), 0);
    for input in [&high, &low_p] {
        shop.audience.prepare(input).await.unwrap();
        assert_eq!(shop.audience.count(input).unwrap(), 2);
    }
    // Live events fold the now-kept traits; a new definition does not drop the column
    // for good: preparing again brings it back.
    shop.submit(json!({"type": "identify", "userId": "b", "messageId": "clv-b2",
        "timestamp": from_millis(t0()).to_rfc3339(), "traits": {"clv_churn_risk": "high", "clv_p_alive": 0.2}}))
        .await;
    shop.audience
        .put_segment("x".into(), &SegmentInput::text(r#"gender = "女""#), None, false)
        .await
        .unwrap();
    for input in [&high, &low_p] {
        shop.audience.prepare(input).await.unwrap();
        assert_eq!(shop.audience.count(input).unwrap(), 3);
    }
    // An unsaved event condition is back-filled when prepared, then kept current
    // without counting a back-filled event twice.
    let cart = |id: &str| json!({"products": [{"product_id": id, "brand": "后"}, {"product_id": "x", "brand": "雪花秀"}]});
    shop.send("a", "Cart Viewed", t0() - DAY, cart("p1")).await;
    shop.send(
        "b",
        "Cart Viewed",
        t0() - DAY,
        json!({"products": [{"brand": "雪花秀"}]}),
    )
    .await;
    let viewed = SegmentInput::text(r#"event("Cart Viewed", within: 7d, where: {"products.brand": "后"})"#);
    assert_eq!(shop.audience.count(&viewed).unwrap(), 0, "not prepared yet");
    shop.audience.prepare(&viewed).await.unwrap();
    assert_eq!(shop.audience.count(&viewed).unwrap(), 1);
    shop.send("c", "Cart Viewed", t0(), cart("p2")).await;
    shop.audience.prepare(&viewed).await.unwrap();
    assert_eq!(shop.audience.count(&viewed).unwrap(), 2);
    let twice =
        SegmentInput::text(r#"event("Cart Viewed", within: 7d, where: {"products.brand": "后"}) >= 2"#);
    shop.audience.prepare(&twice).await.unwrap();
    assert_eq!(shop.audience.count(&twice).unwrap(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
