//! Member tiers and birthday perks on both backends: F15 (monotonic tier config), tier
//! from rolling 365-day net spend over the store's orders and growth from customer
//! activity (R7.2), F17 (birthday perk by tier, P ≥ S, once per year, nobody else).

mod common;

use std::sync::Arc;

use common::{at, loyalty, stores};
use flywheel_core::{Event, Fen, FixedClock, Order, OrderAdjustment, OrderAdjustmentKind};
use flywheel_loyalty::{Loyalty, LoyaltyConfig, TierConfig};
use flywheel_store::NewEvent;

#[test]
fn f15_gold_with_a_smaller_discount_than_silver_is_refused() {
    let mut c = TierConfig::default();
    c.check().unwrap();
    c.tiers[1].pay_percent = 92; // 白銀 8% off
    c.tiers[2].pay_percent = 95; // 黃金 5% off
    let e = c.check().unwrap_err();
    assert_eq!(e.code(), "tiers_not_monotonic");
    assert!(e.to_string().contains("黃金"), "{e}");

    let cases: [fn(&mut TierConfig); 4] = [
        |c| c.tiers[3].birthday_perk = Fen(100),         // 鉑金 perk below 黃金
        |c| c.tiers[3].free_shipping = false,            // 鉑金 loses free shipping
        |c| c.tiers[2].min_spend = c.tiers[1].min_spend, // thresholds not increasing
        |c| c.tiers.swap(1, 2),                          // out of order
    ];
    for f in cases {
        let mut c = TierConfig::default();
        f(&mut c);
        assert_eq!(c.check().unwrap_err().code(), "tiers_not_monotonic", "{c:?}");
    }
    let mut c = TierConfig::default();
    c.tiers[0].pay_percent = 0;
    assert_eq!(c.check().unwrap_err().code(), "invalid_tier");
    assert_eq!(
        TierConfig {
            tiers: vec![],
            ..TierConfig::default()
        }
        .check()
        .unwrap_err()
        .code(),
        "invalid_tier"
    );

    // A programme refuses to start on a bad config.
    let mut config = LoyaltyConfig::default();
    config.tiers.tiers[2].pay_percent = 99;
    assert_eq!(startup_check(config), "tiers_not_monotonic");
}

/// Checks a config as [`Loyalty::new`] does, without a store.
fn startup_check(config: LoyaltyConfig) -> &'static str {
    config.check().map(|_| "ok").unwrap_or_else(|e| e.code().as_str())
}

fn order(user: &str, id: &str, total: i64, placed: &str) -> NewEvent {
    let t = at(placed);
    let e: Event = serde_json::from_value(serde_json::json!({
        "messageId": format!("m-{id}"), "type": "track", "userId": user,
        "event": "Order Completed", "timestamp": placed, "receivedAt": placed,
    }))
    .unwrap();
    NewEvent::new(e, None).with_order(Order {
        order_id: id.into(),
        user_id: Some(user.into()),
        anonymous_id: None,
        total: Fen(total),
        revenue: Fen(total),
        discount: Fen(0),
        shipping: Fen(0),
        tax: Fen(0),
        coupon: None,
        currency: "CNY".into(),
        placed_at: t,
        lines: vec![],
        message_id: format!("m-{id}"),
    })
}

fn adjust(user: &str, id: &str, kind: OrderAdjustmentKind, amount: Option<i64>, when: &str) -> NewEvent {
    let e: Event = serde_json::from_value(serde_json::json!({
        "messageId": format!("a-{id}-{when}"), "type": "track", "userId": user,
        "event": "Order Refunded", "timestamp": when, "receivedAt": when,
    }))
    .unwrap();
    NewEvent::new(e, None).with_adjustment(OrderAdjustment {
        order_id: id.into(),
        kind,
        amount: amount.map(Fen),
        at: at(when),
        message_id: format!("a-{id}-{when}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tier_follows_rolling_net_spend() {
    for store in stores("tier").await {
        store
            .apply(vec![
                order("p", "old", 9_000_000, "2024-01-01T00:00:00Z"),
                order("p", "o1", 300_000, "2025-02-01T00:00:00Z"),
                order("p", "o2", 300_000, "2025-03-01T00:00:00Z"),
                adjust(
                    "p",
                    "o2",
                    OrderAdjustmentKind::Refund,
                    Some(50_000),
                    "2025-03-02T00:00:00Z",
                ),
                order("p", "o3", 800_000, "2025-04-01T00:00:00Z"),
                adjust(
                    "p",
                    "o3",
                    OrderAdjustmentKind::Cancel,
                    None,
                    "2025-04-02T00:00:00Z",
                ),
            ])
            .await
            .unwrap();
        let (l, _) = loyalty(store, "2025-06-01T00:00:00Z");
        let s = l.tier_of("p", at("2025-06-01T00:00:00Z")).await.unwrap();
        assert_eq!((s.tier.as_str(), s.spend_365d), ("黃金", Fen(550_000)));
        // The window is (now − 365 days, now]: o1 drops out exactly 365 days later.
        let s = l.tier_of("p", at("2026-02-01T00:00:00Z")).await.unwrap();
        assert_eq!((s.tier.as_str(), s.spend_365d), ("白銀", Fen(250_000)));
        let s = l.tier_of("nobody", at("2025-06-01T00:00:00Z")).await.unwrap();
        assert_eq!((s.tier.as_str(), s.spend_365d), ("青銅", Fen(0)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f17_birthday_perks_by_tier_once_a_year() {
    for store in stores("birthday").await {
        // 00:30 on 20 May in Shanghai is still 19 May in UTC: the shop's day counts.
        let (l, clock) = loyalty(store.clone(), "2025-05-20T00:30:00+08:00");
        let members = [
            ("P", "1990-05-20", "鉑金"),
            ("S", "1985-05-20", "白銀"),
            ("X", "1990-05-21", "黃金"),
        ];
        let due: Vec<(String, String)> = members
            .iter()
            .filter(|(_, b, _)| l.is_birthday_today(b).unwrap())
            .map(|(u, _, t)| (u.to_string(), t.to_string()))
            .collect();
        let perks = l.birthday_perks(&due).await.unwrap();
        assert_eq!(perks.len(), 2, "X's birthday is not today: nothing");
        let (p, s) = (&perks[0], &perks[1]);
        assert_eq!((p.user_id.as_str(), s.user_id.as_str()), ("P", "S"));
        assert!(p.granted_now && s.granted_now);
        assert!(p.value >= s.value && s.value > Fen(0));
        assert_eq!(p.year, 2025);
        // Again the same year (even with another tier): the first grant, not a new one.
        let again = l.birthday_perks(&[("P".into(), "黃金".into())]).await.unwrap();
        assert_eq!(
            (again[0].granted_now, again[0].value, again[0].tier.as_str()),
            (false, p.value, "鉑金")
        );
        // Next year: granted again.
        clock.set(at("2026-05-20T12:00:00+08:00"));
        assert!(l
            .birthday_perks(&due)
            .await
            .unwrap()
            .iter()
            .all(|x| x.granted_now));
        assert_eq!(
            l.birthday_perks(&[("P".into(), "鑽石".into())])
                .await
                .unwrap_err()
                .code(),
            "unknown_tier"
        );
        // A tier without a perk gives nothing.
        let mut config = LoyaltyConfig::default();
        config.tiers.tiers[0].birthday_perk = Fen(0);
        let l = Loyalty::new(
            store,
            Arc::new(FixedClock::new(at("2025-05-20T12:00:00+08:00"))),
            config,
        )
        .unwrap();
        assert!(l
            .birthday_perks(&[("B".into(), "青銅".into())])
            .await
            .unwrap()
            .is_empty());
    }
}

/// Upgrades after orders, downgrades as they age out, each change reported once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tier_changes_are_reported_once_in_both_directions() {
    for store in stores("tier_change").await {
        store
            .apply(vec![order("q", "a", 600_000, "2025-02-01T00:00:00Z")])
            .await
            .unwrap();
        let (l, _) = loyalty(store, "2025-06-01T00:00:00Z");
        let first = l
            .evaluate_tier("q", at("2025-06-01T00:00:00Z"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (first.from.as_deref(), first.to.as_str(), first.upgrade),
            (None, "黃金", true)
        );
        assert!(
            l.evaluate_tier("q", at("2025-06-02T00:00:00Z"))
                .await
                .unwrap()
                .is_none(),
            "no change, no report"
        );
        // 365 days after the order it no longer counts: the daily run downgrades.
        let changes = l.evaluate_all_tiers(at("2026-02-01T00:00:00Z")).await.unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (
                changes[0].from.as_deref(),
                changes[0].to.as_str(),
                changes[0].upgrade
            ),
            (Some("黃金"), "青銅", false)
        );
        assert!(l
            .evaluate_all_tiers(at("2026-02-02T00:00:00Z"))
            .await
            .unwrap()
            .is_empty());
    }
}

/// Many members' tiers in one go (the order hooks) decide as one at a time: a first
/// evaluation is an upgrade from none, an unchanged tier is not reported, an aged-out
/// spend downgrades.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tiers_of_many_members_are_evaluated_like_one() {
    for store in stores("tiers_batch").await {
        store
            .apply(vec![
                order("g", "g1", 600_000, "2025-02-01T00:00:00Z"),
                order("s", "s1", 10_000, "2025-05-01T00:00:00Z"),
            ])
            .await
            .unwrap();
        let (l, _) = loyalty(store, "2025-06-01T00:00:00Z");
        let users = vec!["g".to_string(), "s".to_string(), "none".to_string()];
        let first = l
            .evaluate_tiers(users.clone(), at("2025-06-01T00:00:00Z"))
            .await
            .unwrap();
        let got: Vec<(&str, Option<&str>, &str, bool)> = first
            .iter()
            .map(|c| (c.user_id.as_str(), c.from.as_deref(), c.to.as_str(), c.upgrade))
            .collect();
        assert_eq!(
            got,
            vec![
                ("g", None, "黃金", true),
                ("s", None, "青銅", true),
                ("none", None, "青銅", true)
            ]
        );
        assert!(l
            .evaluate_tiers(users.clone(), at("2025-06-02T00:00:00Z"))
            .await
            .unwrap()
            .is_empty());
        let later = l.evaluate_tiers(users, at("2026-02-02T00:00:00Z")).await.unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(
            (
                later[0].user_id.as_str(),
                later[0].from.as_deref(),
                later[0].to.as_str(),
                later[0].upgrade
            ),
            ("g", Some("黃金"), "青銅", false)
        );
    }
}

/// A stored event from its Segment JSON (a system write when `system`).
fn event(json: serde_json::Value, system: bool) -> NewEvent {
    let e: Event = serde_json::from_value(json).unwrap();
    let e = NewEvent::new(e, None);
    if system {
        e.system_write()
    } else {
        e
    }
}

fn track(user: &str, id: &str, name: &str, when: &str) -> NewEvent {
    event(
        serde_json::json!({"messageId": id, "type": "track", "userId": user, "event": name,
                           "timestamp": when, "receivedAt": when}),
        false,
    )
}

/// Growth by hand for member m over the 365 days before 2025-06-01 08:00 Shanghai, with
/// one activity of each kind that must not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn growth_counts_customer_activity_of_the_person() {
    use OrderAdjustmentKind::{Cancel, Refund};
    for store in stores("growth").await {
        store
            .apply(vec![
                // Logged out on 10 May, then signed up on that device: one person, one day.
                event(
                    serde_json::json!({"messageId": "g1", "type": "page", "anonymousId": "a-m",
                        "name": "首頁", "timestamp": "2025-05-10T10:00:00+08:00",
                        "receivedAt": "2025-05-10T10:00:00+08:00"}),
                    false,
                ),
                event(
                    serde_json::json!({"messageId": "g2", "type": "identify", "userId": "m",
                        "anonymousId": "a-m", "timestamp": "2025-05-10T10:05:00+08:00",
                        "receivedAt": "2025-05-10T10:05:00+08:00"}),
                    false,
                ),
                // 23:50 and 00:10 shop time: two days (one UTC day); a sign-in day.
                track("m", "g3", "Signed In", "2025-05-11T23:50:00+08:00"),
                track("m", "g4", "Product Viewed", "2025-05-12T00:10:00+08:00"),
                track("m", "g5", "Product Reviewed", "2025-05-12T12:00:00+08:00"),
                track("m", "g6", "Product Reviewed", "2025-05-20T12:00:00+08:00"),
                order("m", "o1", 10_000, "2025-05-20T13:00:00+08:00"),
                // Cancelled and fully refunded orders: their days count, the orders do not.
                order("m", "o2", 20_000, "2025-05-21T09:00:00+08:00"),
                adjust("m", "o2", Cancel, None, "2025-05-21T10:00:00+08:00"),
                order("m", "o3", 5_000, "2025-05-22T09:00:00+08:00"),
                adjust("m", "o3", Refund, Some(5_000), "2025-05-23T09:00:00+08:00"),
                // A zero-value order counts.
                order("m", "o4", 0, "2025-05-24T09:00:00+08:00"),
                // Not counted: the system's own write, activity older than 365 days,
                // someone else's activity.
                event(
                    serde_json::json!({"messageId": "g7", "type": "identify", "userId": "m",
                        "traits": {"clv": 123}, "timestamp": "2025-05-30T12:00:00+08:00",
                        "receivedAt": "2025-05-30T12:00:00+08:00"}),
                    true,
                ),
                track("m", "g8", "Signed In", "2024-05-01T12:00:00+08:00"),
                track("other", "g9", "Signed In", "2025-05-25T12:00:00+08:00"),
            ])
            .await
            .unwrap();
        let now = "2025-06-01T08:00:00+08:00";
        let (l, _) = loyalty(store.clone(), now);
        let s = l.tier_of("m", at(now)).await.unwrap();
        // Active days 10, 11, 12, 20, 21, 22, 23, 24 May; one sign-in day (11 May);
        // orders o1 and o4; two reviews.
        let a = s.activity_365d;
        assert_eq!((a.active_days, a.sign_in_days, a.orders, a.reviews), (8, 1, 2, 2));
        assert_eq!(s.growth_365d, 8 + 1 + 2 * 10 + 2 * 5);
        assert_eq!(s.spend_365d, Fen(10_000));
        assert_eq!(s.tier, "青銅");

        // At, below and above a growth threshold of 39, with either combination.
        for (combine, min_spend, min_growth, tier) in [
            ("any", 400_000, 39, "白銀"),
            ("any", 400_000, 40, "青銅"),
            ("any", 10_000, 250, "白銀"),
            ("all", 10_000, 39, "白銀"),
            ("all", 10_000, 38, "白銀"),
            ("all", 10_001, 39, "青銅"),
            ("all", 10_000, 40, "青銅"),
        ] {
            let mut config = LoyaltyConfig::default();
            config.tiers.combine = serde_json::from_value(serde_json::json!(combine)).unwrap();
            config.tiers.tiers[1].min_spend = Fen(min_spend);
            config.tiers.tiers[1].min_growth = Some(min_growth);
            let l = Loyalty::new(store.clone(), Arc::new(FixedClock::new(at(now))), config).unwrap();
            let s = l.tier_of("m", at(now)).await.unwrap();
            assert_eq!(s.tier, tier, "{combine} spend {min_spend} growth {min_growth}");
        }
        // The daily run and the order hooks decide on the same growth.
        let change = l.evaluate_tiers(vec!["m".into()], at(now)).await.unwrap();
        assert_eq!((change[0].to.as_str(), change[0].growth_365d), ("青銅", 39));
    }
}
