//! Weekly and monthly reviews (R10.5) with benchmark checks (R10.6) over a store, on
//! SQLite and PostgreSQL, against hand-computed numbers: the KPI changes across the
//! Shanghai week boundary, retention observed in the week, benchmark misses (strictly),
//! alerts of the period, storing a period once, and when a review falls due.

mod common;

use chrono::NaiveDate;
use common::{order, send, sh, track};
use flywheel_analytics::campaign_facts::Alert;
use flywheel_analytics::config::{AnalyticsConfig, BenchmarkConfig, BenchmarkMetric};
use flywheel_analytics::reports::Reports;
use flywheel_analytics::review::{Cadence, Figure};
use flywheel_analytics::Ratio;
use flywheel_ingest::Pipeline;
use flywheel_store::analytics::audit;
use flywheel_store::testing::stores;
use serde_json::json;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn bench(name: &str, metric: BenchmarkMetric, value: f64) -> BenchmarkConfig {
    BenchmarkConfig {
        name: name.into(),
        metric,
        value,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_review_against_hand_computed_numbers() {
    for store in stores("analytics_review").await {
        let p = Pipeline::start(store.clone(), Default::default());
        let mut n = 0;
        // The week before (Mon 11-09 – Sun 11-15): a buys 100 元; s1 signs up.
        send(&p, &mut n, order("a", "o1", 100), sh("2026-11-10 10:00")).await;
        send(
            &p,
            &mut n,
            track("s1", "Signed Up", json!({})),
            sh("2026-11-15 10:00"),
        )
        .await;
        // The week (Mon 11-16 – Sun 11-22): a buys 200 元 half an hour into Monday
        // (Sunday in UTC), b buys 300 元 a minute before the week ends; c's 50 元 is
        // thirty seconds into the next week.
        send(&p, &mut n, order("a", "o2", 200), sh("2026-11-16 00:30")).await;
        send(&p, &mut n, order("b", "o3", 300), sh("2026-11-22 23:59")).await;
        send(&p, &mut n, order("c", "o4", 50), sh("2026-11-23 00:00:30.000")).await;
        // s1 is back on day 1 (11-16) and day 7 (11-22); s2 signs up 11-18 and is not
        // back on 11-19; s3 signs up on the last day (day 1 falls outside the week).
        for (user, name, at) in [
            ("s1", "Page Viewed", "2026-11-16 09:00"),
            ("s1", "Page Viewed", "2026-11-22 09:00"),
            ("s2", "Signed Up", "2026-11-18 09:00"),
            ("s3", "Signed Up", "2026-11-22 09:00"),
        ] {
            send(&p, &mut n, track(user, name, json!({})), sh(at)).await;
        }
        p.shutdown().await;

        let config = AnalyticsConfig {
            benchmarks: vec![
                bench("D1 50%", BenchmarkMetric::D1Retention, 0.5), // exactly at: kept
                bench("復購率 10%", BenchmarkMetric::RepurchaseRate, 0.1), // 0 %: missed
                bench("轉化率 60%", BenchmarkMetric::Conversion, 0.6), // 2 of 5: missed
                bench("D30 10%", BenchmarkMetric::D30Retention, 0.1), // nobody: n/a, kept
            ],
            ..AnalyticsConfig::default()
        };
        let reports = Reports::new(
            store.clone(),
            config,
            chrono_tz::Asia::Shanghai,
            vec!["Signed Up".into()],
        );
        // A guardrail alert inside the week and one after it.
        for at in [sh("2026-11-17 12:00"), sh("2026-11-23 12:00")] {
            reports
                .record_alert(Alert {
                    at,
                    campaign: "K".into(),
                    rule: "roi_below_1".into(),
                    detail: "ROI 0.9 < 1".into(),
                    action: "alerted".into(),
                })
                .await
                .unwrap();
        }

        let written_at = sh("2026-11-23 08:00");
        let r = reports
            .review(Cadence::Weekly, d("2026-11-19"), written_at)
            .await
            .unwrap();
        assert_eq!((r.from, r.to), (d("2026-11-16"), d("2026-11-22")));
        assert_eq!(
            (r.previous_from, r.previous_to),
            (d("2026-11-09"), d("2026-11-15"))
        );
        assert!(r.complete);
        let get = |m: &str| r.changes.iter().find(|c| c.metric == m).unwrap().clone();
        assert_eq!(
            (get("gmv").current, get("gmv").previous),
            (Figure::Fen(Some(50_000)), Figure::Fen(Some(10_000)))
        );
        assert_eq!(get("gmv").change, Ratio::Value(4.0), "500 元 against 100 元");
        assert_eq!(
            (get("orders").current, get("orders").previous),
            (Figure::Count(2), Figure::Count(1))
        );
        assert_eq!(get("aov").current, Figure::Fen(Some(25_000)));
        assert_eq!(get("aov").change, Ratio::Value(1.5));
        assert_eq!(get("new_buyers").current, Figure::Count(1), "b");
        assert_eq!(get("returning_buyers").current, Figure::Count(1), "a");
        assert_eq!(get("repurchase_rate").change, Ratio::Value(0.0), "0 % both weeks");
        // Visitors: a, b, s1, s2, s3 this week (5); a and s1 the week before (2).
        assert_eq!(
            (get("visitors").current, get("visitors").previous),
            (Figure::Count(5), Figure::Count(2))
        );
        assert_eq!(get("conversion").current, Figure::Rate(Ratio::Value(0.4)));
        assert_eq!(get("conversion").change, Ratio::Value(0.4 - 0.5));
        // Churn: a was a customer active at the start and is still active.
        assert_eq!(get("churn_rate").current, Figure::Rate(Ratio::Value(0.0)));
        assert_eq!(get("churn_rate").previous, Figure::Rate(Ratio::NotApplicable));

        // D1: s1 (day 1 = 11-16, back) and s2 (11-19, not back); s3's day 1 is 11-23.
        // D7: s1 (day 7 = 11-22, back). D30: nobody's day 30 is in the week.
        let ret: Vec<(u32, i64, i64)> = r
            .retention
            .iter()
            .map(|x| (x.day_n, x.users, x.retained))
            .collect();
        assert_eq!(ret, vec![(1, 2, 1), (7, 1, 1), (30, 0, 0)]);

        let missed: Vec<(&str, bool)> = r.benchmarks.iter().map(|b| (b.name.as_str(), b.missed)).collect();
        assert_eq!(
            missed,
            vec![
                ("D1 50%", false),
                ("復購率 10%", true),
                ("轉化率 60%", true),
                ("D30 10%", false)
            ]
        );
        assert_eq!(r.alerts.len(), 1, "only the alert raised inside the week");
        assert_eq!(r.goals.len(), 3, "the default goals, as of the week's end");

        // Stored once: the benchmark alerts and their audit entries land with it.
        let id = reports.save_review(&r).await.unwrap().expect("first save");
        assert_eq!(
            reports.save_review(&r).await.unwrap(),
            None,
            "the period is reviewed once"
        );
        let list = reports.reviews(10).await.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].id, list[0].cadence.as_str(), list[0].from.as_str()),
            (id, "weekly", "2026-11-16")
        );
        let (_, body) = reports.stored_review(id).await.unwrap().unwrap();
        assert_eq!(
            body["changes"][0]["current"],
            json!({"unit": "fen", "value": 50_000})
        );
        assert!(reports.stored_review(id + 100).await.unwrap().is_none());
        let alerts = reports.alerts(10).await.unwrap();
        let benchmark: Vec<&str> = alerts
            .iter()
            .filter(|a| a.rule == "benchmark_missed")
            .map(|a| a.campaign.as_str())
            .collect();
        assert_eq!(benchmark.len(), 2);
        assert!(benchmark.contains(&"復購率 10%") && benchmark.contains(&"轉化率 60%"));
        let audit = store.read_with(audit::entries).await.unwrap();
        assert_eq!(audit.iter().filter(|e| e.actor == "benchmark").count(), 2);
        // Sending: the stored review reads back whole; one process wins each try; a try
        // that reached not everyone leaves it to send, one that did ends it.
        let unsent = reports.unsent_reviews(written_at - 86_400_000, 5).await.unwrap();
        assert_eq!(unsent.len(), 1);
        assert_eq!((unsent[0].0, unsent[0].1), (id, 0));
        assert_eq!(unsent[0].2, r, "the review as written reads back equal");
        assert!(reports.claim_review_send(id, 0).await.unwrap());
        assert!(
            !reports.claim_review_send(id, 0).await.unwrap(),
            "the try is taken"
        );
        reports
            .record_review_delivery(id, "email: sent to 0 of 1 (relay down)".into(), false, written_at)
            .await
            .unwrap();
        let unsent = reports.unsent_reviews(written_at - 86_400_000, 5).await.unwrap();
        assert_eq!((unsent[0].0, unsent[0].1), (id, 1), "to try again");
        assert!(
            reports
                .unsent_reviews(written_at - 86_400_000, 1)
                .await
                .unwrap()
                .is_empty(),
            "out of tries"
        );
        assert!(
            reports
                .unsent_reviews(written_at + 1, 5)
                .await
                .unwrap()
                .is_empty(),
            "too old"
        );
        assert!(reports.claim_review_send(id, 1).await.unwrap());
        reports
            .record_review_delivery(id, "email: sent to 1 of 1".into(), true, written_at + 600_000)
            .await
            .unwrap();
        assert!(reports.unsent_reviews(0, 5).await.unwrap().is_empty(), "sent");
        let entry = &reports.reviews(1).await.unwrap()[0];
        assert_eq!(
            (entry.delivery.as_deref(), entry.attempts, entry.sent_at),
            (Some("email: sent to 1 of 1"), 2, Some(written_at + 600_000))
        );
        assert!(
            !reports.claim_review_send(id, 2).await.unwrap(),
            "a sent review is not tried again"
        );

        // A review of a week not over yet says so.
        let live = reports
            .review(Cadence::Weekly, d("2026-11-19"), sh("2026-11-20 12:00"))
            .await
            .unwrap();
        assert!(!live.complete);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_fall_due_after_their_period_at_the_configured_hour() {
    for store in stores("analytics_review_due").await {
        let reports = Reports::new(
            store.clone(),
            AnalyticsConfig::default(),
            chrono_tz::Asia::Shanghai,
            vec!["Signed Up".into()],
        );
        // Monday 11-23, 07:59 in Shanghai: last week waits for 08:00; October is long over.
        let due = reports.due_reviews(sh("2026-11-23 07:59")).await.unwrap();
        assert_eq!(due, vec![(Cadence::Monthly, d("2026-10-01"))]);
        let due = reports.due_reviews(sh("2026-11-23 08:00")).await.unwrap();
        assert_eq!(
            due,
            vec![
                (Cadence::Weekly, d("2026-11-16")),
                (Cadence::Monthly, d("2026-10-01"))
            ]
        );
        let weekly = reports
            .review(Cadence::Weekly, d("2026-11-16"), sh("2026-11-23 08:00"))
            .await
            .unwrap();
        reports.save_review(&weekly).await.unwrap().unwrap();
        let due = reports.due_reviews(sh("2026-11-23 09:00")).await.unwrap();
        assert_eq!(
            due,
            vec![(Cadence::Monthly, d("2026-10-01"))],
            "the week is written"
        );
        // Monthly reviews turned off.
        let mut config = AnalyticsConfig::default();
        config.reviews.monthly = false;
        let weekly_only = Reports::new(store.clone(), config, chrono_tz::Asia::Shanghai, vec![]);
        assert!(weekly_only
            .due_reviews(sh("2026-11-23 09:00"))
            .await
            .unwrap()
            .is_empty());
    }
}
