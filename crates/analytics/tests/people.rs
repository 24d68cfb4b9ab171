//! One person, one row (docs/analytics.md, "Who is counted"), on SQLite and PostgreSQL
//! through the real ingest pipeline: events from before a merge (anonymous browsing,
//! then a sign-in), a guest order (anonymous id only) and an `alias` that joins two user
//! ids after both had ordered all resolve to their person by the current identities
//! graph, in the store's reads and in the reports built on them.

mod common;

use common::{send, sh, track};
use flywheel_analytics::config::AnalyticsConfig;
use flywheel_analytics::reports::{Filter, Reports};
use flywheel_analytics::Period;
use flywheel_ingest::Pipeline;
use flywheel_store::analytics::{activity, funnel, orders};
use flywheel_store::testing::stores;
use serde_json::{json, Value};

fn anon(anonymous_id: &str, msg: Value) -> Value {
    let mut m = msg;
    m.as_object_mut().map(|o| o.remove("userId"));
    m["anonymousId"] = json!(anonymous_id);
    m
}

fn order(id: &str, total: i64) -> Value {
    track(
        "",
        "Order Completed",
        json!({"order_id": id, "total": total, "products": []}),
    )
}

fn by(user: &str, mut msg: Value) -> Value {
    msg["userId"] = json!(user);
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_before_a_merge_guest_orders_and_aliases_count_for_one_person() {
    for store in stores("analytics_people").await {
        let p = Pipeline::start(store.clone(), Default::default());
        let mut n = 0;
        // Shopper 1 browses logged out, signs in (identify links a1 to u1), adds to cart
        // and buys.
        let viewed = track("", "Product Viewed", json!({}));
        send(&p, &mut n, anon("a1", viewed.clone()), sh("2026-11-02 10:00")).await;
        let sign_in = json!({"type": "identify", "userId": "u1", "anonymousId": "a1"});
        send(&p, &mut n, sign_in, sh("2026-11-02 10:05")).await;
        let added = track("u1", "Product Added", json!({}));
        send(&p, &mut n, added, sh("2026-11-02 10:10")).await;
        send(&p, &mut n, by("u1", order("o1", 100)), sh("2026-11-02 10:20")).await;
        // A guest: browses and buys with an anonymous id only.
        send(&p, &mut n, anon("g1", viewed.clone()), sh("2026-11-03 09:00")).await;
        send(&p, &mut n, anon("g1", order("o2", 50)), sh("2026-11-03 09:10")).await;
        // Shopper 2 buys as u2, then as u2b; an alias joins the two ids afterwards.
        send(&p, &mut n, by("u2", order("o3", 60)), sh("2026-11-04 12:00")).await;
        send(&p, &mut n, by("u2b", order("o4", 70)), sh("2026-11-05 12:00")).await;
        let alias = json!({"type": "alias", "userId": "u2b", "previousId": "u2"});
        send(&p, &mut n, alias, sh("2026-11-06 12:00")).await;
        p.shutdown().await;

        let nov = Period {
            from: sh("2026-11-01 00:00"),
            to: sh("2026-12-01 00:00"),
        };
        let (mut placed, visitors, mut steps) = store
            .read_with(move |c| {
                let steps = ["Product Viewed", "Product Added", "Order Completed"].map(String::from);
                Ok((
                    orders::all(c)?,
                    activity::visitor_count(c, nov.from, nov.to)?,
                    funnel::step_events(c, &steps, nov.from, nov.to)?,
                ))
            })
            .await
            .unwrap();
        placed.sort_by_key(|o| o.placed_at);
        let buyers: Vec<&str> = placed.iter().map(|o| o.person.as_str()).collect();
        assert_eq!(
            buyers,
            ["user:u1", "anon:g1", "user:u2", "user:u2"],
            "the guest order is its anonymous person's; u2 and u2b are one person (the lowest user id)"
        );
        assert_eq!(visitors, 3, "u1 with a1, the guest g1, u2 with u2b");
        steps.sort_by_key(|e| e.at);
        let first = &steps[0];
        assert_eq!(
            (first.person.as_str(), first.name.as_str()),
            ("user:u1", "Product Viewed"),
            "a step taken before the sign-in is the signed-in person's"
        );

        let reports = Reports::new(
            store.clone(),
            AnalyticsConfig::default(),
            chrono_tz::Asia::Shanghai,
            vec![],
        );
        let k = reports.kpi(&Filter::period(nov)).await.unwrap().kpis;
        assert_eq!(
            (k.orders, k.gmv.0),
            (4, 28_000),
            "the guest order counts in orders and GMV"
        );
        assert_eq!(
            (k.buyers, k.repeat_buyers),
            (3, 1),
            "u2 and u2b: one repeat buyer"
        );
        assert_eq!((k.visitors, k.new_buyers), (3, 3));
        let steps: Vec<String> = ["Product Viewed", "Product Added", "Order Completed"]
            .map(String::from)
            .to_vec();
        let f = reports
            .funnel(&Filter::period(nov), &steps, 7 * 86_400_000, None)
            .await
            .unwrap();
        let counts: Vec<i64> = f.steps.iter().map(|s| s.users).collect();
        assert_eq!(
            counts,
            [2, 1, 1],
            "u1's logged-out view enters the funnel; g1 views only"
        );
    }
}

/// A 0 元 order is a purchase by default (as `lifetimes` counts it); `[audience]
/// count_zero_value_orders = false` leaves it out of buyers and orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_value_orders_count_unless_switched_off() {
    for store in stores("analytics_zero_value").await {
        let p = Pipeline::start(store.clone(), Default::default());
        let mut n = 0;
        send(&p, &mut n, by("u1", order("o1", 0)), sh("2026-11-02 10:00")).await;
        send(&p, &mut n, by("u2", order("o2", 10)), sh("2026-11-02 11:00")).await;
        p.shutdown().await;
        let nov = Period {
            from: sh("2026-11-01 00:00"),
            to: sh("2026-12-01 00:00"),
        };
        let reports = Reports::new(
            store.clone(),
            AnalyticsConfig::default(),
            chrono_tz::Asia::Shanghai,
            vec![],
        );
        let k = reports.kpi(&Filter::period(nov)).await.unwrap().kpis;
        assert_eq!((k.orders, k.buyers, k.gmv.0), (2, 2, 1_000));
        let k = reports
            .counting_zero_value_orders(false)
            .kpi(&Filter::period(nov))
            .await
            .unwrap()
            .kpis;
        assert_eq!((k.orders, k.buyers, k.gmv.0), (1, 1, 1_000));
    }
}
