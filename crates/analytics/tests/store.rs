//! KPIs and cohorts from facts written through the ingest pipeline, on SQLite and
//! PostgreSQL: refunds, a cancellation, and a shop-timezone day boundary.

mod common;

use common::{order, send, sh, track};
use flywheel_analytics::{kpis, load, retention, Period, Ratio};
use flywheel_core::Fen;
use flywheel_ingest::Pipeline;
use flywheel_store::testing::stores;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_and_cohorts_from_the_store() {
    for store in stores("analytics_kpi").await {
        let p = Pipeline::start(store.clone(), Default::default());
        let mut n = 0;
        // November 2026 in Shanghai.
        send(
            &p,
            &mut n,
            track("a", "Signed Up", json!({})),
            sh("2026-11-01 09:00:00.000"),
        )
        .await;
        send(
            &p,
            &mut n,
            track("b", "Signed Up", json!({})),
            sh("2026-11-01 23:59:59.999"),
        )
        .await;
        send(
            &p,
            &mut n,
            track("c", "Signed Up", json!({})),
            sh("2026-11-02 00:00:00.000"),
        )
        .await;
        send(
            &p,
            &mut n,
            json!({"type": "page", "anonymousId": "x"}),
            sh("2026-11-02 10:00:00.000"),
        )
        .await;
        send(&p, &mut n, order("a", "o1", 100), sh("2026-11-02 10:00:00.000")).await;
        send(&p, &mut n, order("a", "o2", 50), sh("2026-11-08 10:00:00.000")).await;
        send(&p, &mut n, order("b", "o3", 80), sh("2026-11-30 23:59:59.999")).await;
        send(&p, &mut n, order("c", "o4", 70), sh("2026-12-01 00:00:00.000")).await;
        send(
            &p,
            &mut n,
            track("a", "Order Refunded", json!({"order_id": "o2", "total": 50})),
            sh("2026-11-09 10:00:00.000"),
        )
        .await;
        send(&p, &mut n, order("b", "o5", 999), sh("2026-11-10 10:00:00.000")).await;
        send(
            &p,
            &mut n,
            track("b", "Order Cancelled", json!({"order_id": "o5"})),
            sh("2026-11-10 11:00:00.000"),
        )
        .await;
        p.shutdown().await;

        let nov = Period {
            from: sh("2026-11-01 00:00:00.000"),
            to: sh("2026-12-01 00:00:00.000"),
        };
        let ((orders, first), visitors) = store
            .read_with(move |c| Ok((load::orders(c, true)?, load::visitors(c, nov)?)))
            .await
            .unwrap();
        let k = kpis(&orders, &first, visitors, nov);
        assert_eq!(
            k.gmv,
            Fen(23_000),
            "100 + 50 + 80 元; o4 is December, o5 cancelled"
        );
        assert_eq!(k.net_revenue, Fen(18_000), "o2 refunded");
        assert_eq!((k.orders, k.buyers, k.new_buyers), (3, 2, 2));
        // a's second order o2 was refunded in full: a bought once, so nobody repurchased.
        assert_eq!(k.repurchase_rate, Ratio::Value(0.0));
        assert_eq!(k.visitors, 4, "a, b, c and the anonymous x");
        assert_eq!(k.conversion, Ratio::Value(0.5));

        let tz = chrono_tz::Asia::Shanghai;
        let (signups, active) = store
            .read_with(move |c| load::cohorts(c, &["Signed Up"], nov, tz))
            .await
            .unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let rows = retention(&signups, &active, &[1, 7], today);
        let by_day: Vec<(String, i64, Vec<Ratio>)> = rows
            .iter()
            .map(|r| {
                (
                    r.day.to_string(),
                    r.size,
                    r.retained.iter().map(|x| x.2).collect(),
                )
            })
            .collect();
        assert_eq!(
            by_day,
            vec![
                ("2026-11-01".into(), 2, vec![Ratio::Value(0.5), Ratio::Value(0.5)]),
                ("2026-11-02".into(), 1, vec![Ratio::Value(0.0), Ratio::Value(0.0)]),
            ],
            "b signed up at 23:59:59.999 on the 1st; a active on the 2nd and the 8th"
        );
    }
}
