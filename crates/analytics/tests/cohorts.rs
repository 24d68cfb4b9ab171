//! Cohort reports over a store, on SQLite and PostgreSQL: weekly cohorts by sign-up and by
//! first purchase (a buyer whose first order came before the period is in no cohort), and
//! the average row weighted by cohort size, on hand-computed data.

mod common;

use chrono::NaiveDate;
use common::{order, send, sh, track};
use flywheel_analytics::config::AnalyticsConfig;
use flywheel_analytics::reports::{CohortSpec, Filter, Reports};
use flywheel_analytics::retention::{CohortBasis, CohortPeriod};
use flywheel_analytics::Ratio;
use flywheel_ingest::Pipeline;
use flywheel_store::testing::stores;
use serde_json::json;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_cohorts_by_signup_and_by_first_purchase() {
    for store in stores("analytics_cohorts_weekly").await {
        let p = Pipeline::start(store.clone(), Default::default());
        let mut n = 0;
        // 2026-11-02 is a Monday. a and b sign up in the week of 11-02; a first buys that
        // week and comes back the next; b first buys in the week of 11-09 and comes back
        // the week after; c first bought in October; d first buys on Sunday 11-08 and
        // never comes back.
        let signed_up = |u: &str| track(u, "Signed Up", json!({}));
        let viewed = |u: &str| track(u, "Product Viewed", json!({}));
        for (msg, at) in [
            (signed_up("a"), "2026-11-02 10:00"),
            (order("a", "a1", 10), "2026-11-04 10:00"),
            (viewed("a"), "2026-11-10 10:00"),
            (signed_up("b"), "2026-11-03 10:00"),
            (order("b", "b1", 20), "2026-11-12 10:00"),
            (viewed("b"), "2026-11-20 10:00"),
            (order("c", "c1", 30), "2026-10-20 10:00"),
            (order("c", "c2", 30), "2026-11-05 10:00"),
            (order("d", "d1", 40), "2026-11-08 23:30"),
        ] {
            send(&p, &mut n, msg, sh(at)).await;
        }
        p.shutdown().await;
        let reports = Reports::new(
            store.clone(),
            AnalyticsConfig::default(),
            chrono_tz::Asia::Shanghai,
            vec!["Signed Up".into()],
        );
        let f = Filter::period(reports.days(d("2026-11-01"), d("2026-11-30")).unwrap());
        let spec = |basis| CohortSpec {
            days: vec![1, 2],
            by: CohortPeriod::Week,
            basis,
        };
        let today = d("2026-11-20");

        let bought = reports
            .cohort_report(&f, &spec(CohortBasis::FirstPurchase), today)
            .await
            .unwrap();
        let rows: Vec<_> = bought.rows.iter().map(|r| (r.day, r.size)).collect();
        assert_eq!(rows, vec![(d("2026-11-02"), 2), (d("2026-11-09"), 1)]);
        assert_eq!(bought.rows[0].retained[0], (1, 1, Ratio::Value(0.5)));
        assert_eq!(bought.rows[0].retained[1], (2, 0, Ratio::Value(0.0)));
        assert_eq!(bought.rows[1].retained[0], (1, 1, Ratio::Value(1.0)));
        assert_eq!(
            bought.rows[1].retained[1],
            (2, 0, Ratio::NotApplicable),
            "the week of 11-23 has not begun on 11-20"
        );
        // W1: (1 + 1) ÷ (2 + 1); W2: only the first cohort reached it, 0 ÷ 2.
        assert_eq!(bought.average.size, 3);
        assert_eq!(bought.average.retained[0], (1, 2, Ratio::of(2, 3)));
        assert_eq!(bought.average.retained[1], (2, 0, Ratio::Value(0.0)));

        let signed = reports
            .cohort_report(&f, &spec(CohortBasis::Signup), today)
            .await
            .unwrap();
        assert_eq!(signed.rows.len(), 1);
        assert_eq!((signed.rows[0].day, signed.rows[0].size), (d("2026-11-02"), 2));
        assert_eq!(signed.rows[0].retained[0], (1, 2, Ratio::Value(1.0)));
        assert_eq!(signed.rows[0].retained[1], (2, 1, Ratio::Value(0.5)));
        let json = serde_json::to_value(&signed).unwrap();
        assert_eq!(
            (json["by"].as_str(), json["cohort"].as_str()),
            (Some("week"), Some("signup"))
        );

        // Daily sign-up cohorts are the report's default rows.
        let daily = reports.cohort(&f, &[1, 7], today).await.unwrap();
        let days: Vec<_> = daily.iter().map(|r| (r.day, r.size)).collect();
        assert_eq!(days, vec![(d("2026-11-02"), 1), (d("2026-11-03"), 1)]);
        assert_eq!(daily[1].retained[1], (7, 0, Ratio::Value(0.0)));
    }
}
