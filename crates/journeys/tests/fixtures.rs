//! The seed journeys against the seed fixtures (REQUIREMENTS §20), on every store backend,
//! with the audience engine, coupons and loyalty behind the journey engine:
//! F5 (潛力客戶 get a cart coupon, not the 高價值 new-arrivals push), F6 (win-back after 3
//! calendar months without a sign-in), F7 (one 10 元 no-threshold coupon at sign-up),
//! F14 (one expiry reminder, none for a coupon used meanwhile), F17 (birthday perks by
//! tier), plus segment-entry triggers and signed delivery-status callbacks.

mod common;

use common::{shanghai, Shop, SECRET};
use flywheel_core::Fen;
use flywheel_journeys::db::{MessageStatus, RunState, Status};
use flywheel_promotions::rules::CouponBenefit;
use flywheel_store::testing::stores;
use serde_json::json;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

async fn coupons_of(shop: &Shop, user: &str) -> Vec<flywheel_promotions::coupons::CouponInstance> {
    shop.coupons.as_ref().unwrap().coupons_of(user).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_sign_up_issues_exactly_one_ten_yuan_no_threshold_coupon() {
    for store in stores("fixture_f7").await {
        let mut shop = Shop::full(store, shanghai("2026-11-30 10:00:00.000")).await;
        shop.seed("welcome").await;
        shop.user("new", "13900000001").await;
        shop.track("new", "Signed Up", json!({})).await;
        shop.fire().await;
        shop.track("new", "Signed Up", json!({})).await;
        shop.fire().await;
        let held = coupons_of(&shop, "new").await;
        assert_eq!(held.len(), 1, "exactly one coupon");
        assert_eq!(held[0].template_id, "seed_welcome_10");
        assert_eq!(
            held[0].coupon.benefit,
            CouponBenefit::Amount {
                off: Fen(1000),
                min_spend: None
            },
            "10 元, no threshold: a 50.00 order may use it"
        );
        let texts = shop.texts_to("new");
        assert_eq!(texts.len(), 1);
        assert!(
            texts[0].contains("10.00元無門檻券") && texts[0].contains("首單再減5元"),
            "{texts:?}"
        );
        let code = held[0].code.clone().unwrap_or(held[0].id.clone());
        assert!(texts[0].contains(&code), "the message names the coupon");
        // Three days later, no order: the nudge.
        shop.at(shanghai("2026-12-03 10:00:00.000"));
        shop.fire().await;
        assert_eq!(shop.texts_to("new").len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f5_potential_customers_get_a_cart_coupon_and_not_the_high_value_push() {
    for store in stores("fixture_f5").await {
        // Friday 27 November 2026, 18:00 shop time.
        let t0 = shanghai("2026-11-27 18:00:00.000");
        let mut shop = Shop::full(store, t0).await;
        shop.seed("cart_abandonment").await;
        shop.seed("new_arrivals").await;
        shop.user("D", "13900000004").await;
        shop.user("E", "13900000005").await;
        // E spent 1200 元 in the last 30 days: 高價值客戶.
        shop.track_at("E", "Order Completed", json!({"order_id": "oE", "total": 1200, "products": [{"product_id": "SKU9", "price": 1200, "quantity": 1}]}), t0 - 5 * DAY).await;
        shop.track(
            "D",
            "Product Added",
            json!({"cart_id": "cD", "product_id": "SKU1", "price": 199}),
        )
        .await;
        shop.at(t0 + HOUR);
        shop.fire().await;
        let held = coupons_of(&shop, "D").await;
        assert_eq!(
            held.len(),
            1,
            "D (潛力: carted, never bought) gets the cart coupon"
        );
        assert_eq!(held[0].template_id, "seed_cart_10");
        assert_eq!(
            held[0].coupon.scope,
            flywheel_promotions::rules::Scope::Products {
                products: vec!["SKU1".into()]
            },
            "its scope is what D left in the cart: SKU1"
        );
        // At checkout D's wallet coupon takes 10 元 off SKU1, and nothing off another
        // product at the same price.
        let price = |product: &str| {
            let req = json!({
                "cart": {"lines": [{"shop": "S", "product": product, "unit_price": 19900, "quantity": 1}]},
                "buyer": {"user_id": "D"}, "wallet": true,
                "now": shop.clock_now().to_rfc3339(),
            });
            let coupons = shop.coupons.clone().unwrap();
            async move {
                coupons
                    .quote_request(flywheel_promotions::coupons::PriceRequest::parse(req).unwrap())
                    .await
                    .unwrap()
            }
        };
        let sku1 = price("SKU1").await;
        assert_eq!(sku1.discount, Fen(1000), "{sku1:?}");
        assert_eq!(
            sku1.applied.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            vec![held[0].id.as_str()]
        );
        let other = price("SKU7").await;
        assert_eq!(other.discount, Fen(0), "{other:?}");
        assert!(other.applied.is_empty());
        assert_eq!(shop.texts_to("D").len(), 1);
        assert!(shop.texts_to("D")[0].contains("送您10.00元券"));
        // Friday 20:00: the new-arrivals push goes to 高價值客戶 only.
        shop.at(shanghai("2026-11-27 20:00:00.000"));
        shop.fire().await;
        shop.fire().await;
        assert_eq!(shop.texts_to("D").len(), 1, "D gets no new-arrivals push");
        let e = shop.texts_to("E");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("本周新品"));
    }
}

/// A `scope: cart` coupon covers what is left in the run's cart: added, less removed,
/// less bought; an emptied cart gets no coupon and the run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_coupon_covers_what_is_left_in_that_cart() {
    for store in stores("cart_coupon").await {
        let t0 = shanghai("2026-11-27 18:00:00.000");
        let mut shop = Shop::full(store, t0).await;
        shop.journey(json!({
            "name": "cart_coupon",
            "trigger": {"event": {"name": "Product Added", "where": {"cart_id": {"exists": true}}}},
            "key": "cart_id",
            "entry": "every_time",
            "steps": [
                {"id": "wait", "type": "wait", "duration": "1h"},
                {"id": "coupon", "type": "coupon", "template": "seed_cart_10", "scope": "cart"},
                {"id": "tell", "type": "send", "channels": ["sms"],
                 "text": "{% if coupon.code %}券{{ coupon.code }}{% else %}購物車已空{% endif %}"}
            ]
        }))
        .await;
        shop.user("A", "13900000021").await;
        shop.user("B", "13900000022").await;
        for (sku, cart) in [("SKU1", "cA"), ("SKU2", "cA"), ("SKU3", "cA"), ("SKU8", "cOther")] {
            shop.track(
                "A",
                "Product Added",
                json!({"cart_id": cart, "product_id": sku, "price": 150}),
            )
            .await;
        }
        shop.track(
            "A",
            "Product Removed",
            json!({"cart_id": "cA", "product_id": "SKU2"}),
        )
        .await;
        shop.track("A", "Order Completed", json!({"order_id": "oA", "total": 150, "products": [{"product_id": "SKU3", "price": 150, "quantity": 1}]}))
            .await;
        shop.track(
            "B",
            "Product Added",
            json!({"cart_id": "cB", "product_id": "SKU1", "price": 150}),
        )
        .await;
        shop.track(
            "B",
            "Product Removed",
            json!({"cart_id": "cB", "product_id": "SKU1"}),
        )
        .await;
        shop.at(t0 + HOUR);
        shop.fire().await;
        let mut scopes: Vec<_> = coupons_of(&shop, "A")
            .await
            .into_iter()
            .map(|c| c.coupon.scope)
            .collect();
        scopes.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(
            scopes,
            vec![
                flywheel_promotions::rules::Scope::Products {
                    products: vec!["SKU1".into()]
                },
                flywheel_promotions::rules::Scope::Products {
                    products: vec!["SKU8".into()]
                },
            ],
            "one coupon per cart: cA keeps SKU1 (SKU2 removed, SKU3 bought), cOther SKU8"
        );
        assert!(
            coupons_of(&shop, "B").await.is_empty(),
            "B's cart is empty: no coupon"
        );
        assert_eq!(shop.texts_to("B"), vec!["購物車已空".to_string()]);
        assert_eq!(shop.texts_to("A").len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f6_win_back_after_three_calendar_months_without_a_sign_in() {
    for store in stores("fixture_f6").await {
        let now = shanghai("2024-11-20 09:00:00.000");
        let mut shop = Shop::full(store, now).await;
        shop.user("G", "13900000007").await;
        shop.user("H", "13900000008").await;
        shop.user("I", "13900000009").await;
        shop.track_at("G", "Signed In", json!({}), shanghai("2024-08-10 12:00:00.000"))
            .await;
        shop.track_at("H", "Signed In", json!({}), shanghai("2024-09-15 12:00:00.000"))
            .await;
        // The boundary: 3 calendar months before 20 November is 20 August (on it: lapsed).
        shop.track_at("I", "Signed In", json!({}), shanghai("2024-08-20 23:59:59.999"))
            .await;
        shop.seed("win_back").await;
        shop.at(shanghai("2024-11-20 10:00:00.000"));
        shop.fire().await;
        shop.fire().await;
        assert_eq!(shop.sent_to(), vec!["G", "I"], "H signed in 2 months ago");
        for u in ["G", "I"] {
            let held = coupons_of(&shop, u).await;
            assert_eq!(held.len(), 1);
            assert_eq!(held[0].template_id, "seed_winback_20", "老用戶專享");
            assert!(shop.texts_to(u)[0].contains("老用戶專享"));
        }
        // The next day's check does not enter them again for the same lapse.
        shop.at(shanghai("2024-11-21 10:00:00.000"));
        shop.fire().await;
        shop.fire().await;
        assert_eq!(shop.sent_to(), vec!["G", "I"]);
        let runs = shop.engine.runs(Some("win_back"), None, 10).await.unwrap();
        assert_eq!(runs.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f14_one_expiry_reminder_and_none_for_a_coupon_used_first() {
    for store in stores("fixture_f14").await {
        let t0 = shanghai("2026-11-30 09:00:00.000");
        let mut shop = Shop::full(store, t0).await;
        let coupons = shop.coupons.clone().unwrap();
        let until = chrono::DateTime::parse_from_rfc3339("2026-12-02T09:00:00+08:00").unwrap();
        let template: flywheel_promotions::coupons::CouponTemplate = serde_json::from_value(json!({
            "id": "f14", "name": "滿50減5", "benefit": {"type": "amount", "off": 500, "min_spend": 5000},
            "validity": {"type": "window", "from": "2026-11-01T00:00:00+08:00", "until": until.to_rfc3339()}
        }))
        .unwrap();
        coupons.create_template(template).await.unwrap();
        shop.user("J", "13900000010").await;
        shop.user("K", "13900000011").await;
        coupons.issue("f14", "J", "test").await.unwrap();
        let k = coupons.issue("f14", "K", "test").await.unwrap();
        coupons.reserve(&k.id, "K", "oK", 60_000).await.unwrap();
        coupons.redeem(&k.id, "K", "oK").await.unwrap();
        shop.seed("coupon_expiry").await;
        shop.at(shanghai("2026-11-30 10:00:00.000"));
        shop.fire().await;
        shop.fire().await;
        assert_eq!(shop.sent_to(), vec!["J"], "K used the coupon before the job");
        assert!(
            shop.texts_to("J")[0].contains("滿50減5"),
            "{:?}",
            shop.texts_to("J")
        );
        shop.at(shanghai("2026-12-01 10:00:00.000"));
        shop.fire().await;
        shop.fire().await;
        assert_eq!(shop.sent_to(), vec!["J"], "one reminder per coupon");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f17_birthday_perks_follow_the_tier() {
    for store in stores("fixture_f17").await {
        let t0 = shanghai("2026-11-30 08:00:00.000");
        let mut shop = Shop::full(store, t0).await;
        for (u, phone, birthday) in [
            ("P", "13900000012", "1990-11-30"),
            ("S", "13900000013", "1985-11-30"),
            ("X", "13900000014", "1990-12-01"),
        ] {
            shop.user(u, phone).await;
            shop.submit(json!({"type": "identify", "userId": u, "traits": {"birthday": birthday}}))
                .await;
        }
        shop.track_at(
            "P",
            "Order Completed",
            json!({"order_id": "oP", "total": 25000, "products": []}),
            t0 - 10 * DAY,
        )
        .await;
        shop.track_at(
            "S",
            "Order Completed",
            json!({"order_id": "oS", "total": 1500, "products": []}),
            t0 - 10 * DAY,
        )
        .await;
        let loyalty = shop.loyalty.clone().unwrap();
        assert_eq!(loyalty.tier_of("P", shop.clock_now()).await.unwrap().tier, "鉑金");
        assert_eq!(loyalty.tier_of("S", shop.clock_now()).await.unwrap().tier, "白銀");
        shop.seed("birthday").await;
        shop.at(shanghai("2026-11-30 09:00:00.000"));
        shop.fire().await;
        shop.fire().await;
        assert_eq!(shop.sent_to(), vec!["P", "S"], "X's birthday is tomorrow");
        let p = &shop.texts_to("P")[0];
        let s = &shop.texts_to("S")[0];
        assert!(p.contains("生日快樂"), "{p}");
        let runs = shop.engine.runs(Some("birthday"), None, 10).await.unwrap();
        let perk = |u: &str| {
            let r = runs.iter().find(|r| r.user_id == u).unwrap();
            r.context["perk"]["value_yuan"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        };
        assert!(
            perk("P") >= perk("S"),
            "P's perk {} ≥ S's {}",
            perk("P"),
            perk("S")
        );
        assert_eq!((perk("P"), perk("S")), (50.0, 10.0));
        assert!(s.contains("生日"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_entry_triggers_and_signed_delivery_reports() {
    for store in stores("journey_segment").await {
        let t0 = shanghai("2026-11-30 10:00:00.000");
        let mut shop = Shop::full(store, t0).await;
        shop.journey(json!({
            "name": "vip_welcome",
            "trigger": {"tag": {"name": "高價值客戶", "on": "entered"}},
            "entry": "once",
            "steps": [{"id": "hi", "type": "send", "channels": ["sms"], "text": "尊敬的高價值客戶 {{ profile.id }}"}]
        }))
        .await;
        shop.user("V", "13900000015").await;
        shop.user("W", "13900000016").await;
        shop.track(
            "V",
            "Order Completed",
            json!({"order_id": "oV", "total": 1000.01, "products": []}),
        )
        .await;
        shop.track(
            "W",
            "Order Completed",
            json!({"order_id": "oW", "total": 1000, "products": []}),
        )
        .await;
        shop.fire().await;
        assert_eq!(
            shop.sent_to(),
            vec!["V"],
            "1000.01 > 1000 enters, 1000 does not (F1)"
        );
        // The provider reports delivery, signed with its secret.
        let id = shop
            .engine
            .messages(flywheel_journeys::db::MessageFilter::User, "V", 1)
            .await
            .unwrap()[0]
            .id
            .clone();
        let body = json!({"message_id": id, "status": "delivered"}).to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let forged = flywheel_channels::sign(b"wrong", now, body.as_bytes());
        assert!(matches!(
            shop.engine.delivery_status("sms", &forged, body.as_bytes()).await,
            Err(flywheel_journeys::Error::Forbidden(_))
        ));
        let good = flywheel_channels::sign(SECRET.as_bytes(), now, body.as_bytes());
        let row = shop
            .engine
            .delivery_status("sms", &good, body.as_bytes())
            .await
            .unwrap();
        assert_eq!(row.status, MessageStatus::Delivered);
        assert!(row.delivered_at.is_some());
        let stale = flywheel_channels::sign(SECRET.as_bytes(), now - 3_600, body.as_bytes());
        assert!(
            shop.engine
                .delivery_status("sms", &stale, body.as_bytes())
                .await
                .is_err(),
            "replay refused"
        );
        // Pausing stops entries; starting again resumes them.
        shop.engine
            .set_status("vip_welcome", Status::Paused)
            .await
            .unwrap();
        shop.user("Y", "13900000017").await;
        shop.track(
            "Y",
            "Order Completed",
            json!({"order_id": "oY", "total": 2000, "products": []}),
        )
        .await;
        shop.fire().await;
        assert_eq!(shop.sent_to(), vec!["V"], "paused: no entry");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_trait_webhook_steps_dry_run_concurrency_limit_and_stop() {
    for store in stores("journey_steps").await {
        let t0 = shanghai("2026-11-30 10:00:00.000");
        let mut shop = Shop::full(store, t0).await;
        let onboard = json!({
            "name": "onboard",
            "trigger": {"event": {"name": "Signed Up"}},
            "max_active": 2,
            "steps": [
                {"id": "tag", "type": "add_tag", "tag": "新人"},
                {"id": "trait", "type": "set_trait", "name": "onboarded", "value": true},
                {"id": "hook", "type": "webhook", "url": "http://127.0.0.1:9/unused"},
                {"id": "wait", "type": "wait", "duration": "1d"},
                {"id": "untag", "type": "remove_tag", "tag": "新人"}
            ]
        });
        let j = flywheel_journeys::Journey::from_json(&onboard.to_string()).unwrap();
        let e = shop.engine.save(&j).await.unwrap_err().to_string();
        assert!(e.contains("no manual tag \"新人\""), "{e}");
        let audience = shop.audience.clone().unwrap();
        audience
            .put_tag(
                flywheel_audience::TagInput {
                    name: "新人".into(),
                    kind: Some(flywheel_audience::definitions::TagKind::Manual),
                    group: None,
                    rule: None,
                    rule_ast: None,
                    description: None,
                },
                false,
            )
            .await
            .unwrap();
        shop.start(&j).await;
        for u in ["A1", "A2", "A3"] {
            shop.user(u, "13900000100").await;
            shop.track(u, "Signed Up", json!({})).await;
        }
        let runs = shop.engine.runs(Some("onboard"), None, 10).await.unwrap();
        assert_eq!(runs.len(), 2, "max_active 2: the third entry is refused");
        shop.fire().await;
        let tagged = |a: &flywheel_audience::Audience| {
            a.count(&flywheel_audience::SegmentInput::text("tag(\"新人\")"))
                .unwrap()
        };
        assert_eq!(tagged(&audience), 2);
        let p = shop.traits_of("A1").await;
        assert_eq!(p.get("onboarded"), Some(&json!(true)), "{p:?}");
        // The webhook step could not connect: retried, then failed, and the run went on.
        for _ in 0..3 {
            shop.at(shop.now() + 61_000);
            shop.fire().await;
        }
        let runs = shop.engine.runs(Some("onboard"), None, 10).await.unwrap();
        assert!(
            runs.iter()
                .all(|r| r.state == RunState::Waiting && r.path == "tag/trait/hook/wait"),
            "{runs:?}"
        );
        // Dry run: the path each user would take.
        let j = shop.engine.get("onboard").await.unwrap().definition;
        let paths = shop.engine.dry_run(&j, &["A3".to_string()]).await.unwrap();
        assert_eq!(paths[0].outcome, "done");
        assert_eq!(paths[0].path.len(), 5, "{:?}", paths[0].path);
        assert!(
            paths[0].path[0].starts_with("tag (tag 新人)"),
            "{:?}",
            paths[0].path
        );
        // Stopping ends every run and removes their timers; nothing fires later.
        shop.engine.set_status("onboard", Status::Stopped).await.unwrap();
        let runs = shop.engine.runs(Some("onboard"), None, 10).await.unwrap();
        assert!(runs.iter().all(|r| r.state == RunState::Stopped), "{runs:?}");
        shop.at(t0 + 2 * DAY);
        shop.fire().await;
        assert_eq!(tagged(&audience), 2, "the untag step never ran");
        assert_eq!(
            shop.store.read_with(flywheel_store::timers::count).await.unwrap(),
            0
        );
    }
}
