//! Spend over a period, on SQLite and PostgreSQL: 1000 元 entered for November is spread
//! over its 30 shop-local days, so every window's ad spend — and ROI — takes the share of
//! its days; the month still adds up exactly, and listings show the entry in every month
//! it covers.

mod common;

use chrono::NaiveDate;
use flywheel_analytics::campaign_facts::Spend;
use flywheel_analytics::config::AnalyticsConfig;
use flywheel_analytics::reports::{Filter, Reports};
use flywheel_core::ErrorCode;
use flywheel_store::testing::stores;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_spend_is_spread_over_its_days() {
    for store in stores("analytics_spend_periods").await {
        let reports = Reports::new(
            store.clone(),
            AnalyticsConfig::default(),
            chrono_tz::Asia::Shanghai,
            vec![],
        );
        let nov = reports.days(d("2026-11-01"), d("2026-11-30")).unwrap();
        let entry = |amount, at, until| Spend {
            channel: "xiaohongshu".into(),
            campaign: Some("種草".into()),
            at,
            until,
            amount,
            note: None,
        };
        reports
            .add_cost(entry(100_000, nov.from, Some(nov.to)), 0)
            .await
            .unwrap();
        let bad = reports.add_cost(entry(100, nov.from, Some(nov.from)), 0).await;
        assert_eq!(bad.unwrap_err().code(), ErrorCode::InvalidSpend);
        let long = reports.add_cost(entry(100, 0, Some(nov.to)), 0).await;
        assert_eq!(
            long.unwrap_err().code(),
            ErrorCode::InvalidSpend,
            "more than 366 days"
        );

        let ad_spend = |from: &str, to: &str| {
            let r = reports.clone();
            let p = r.days(d(from), d(to)).unwrap();
            async move {
                let rows = r.campaigns(&Filter::period(p)).await.unwrap();
                rows.iter().map(|row| row.metrics.ad_spend).sum::<i64>()
            }
        };
        // 100000 fen ÷ 30 days = 3333 a day, the first 10 days one fen more.
        assert_eq!(ad_spend("2026-11-01", "2026-11-30").await, 100_000);
        assert_eq!(ad_spend("2026-11-01", "2026-11-10").await, 33_340);
        assert_eq!(ad_spend("2026-11-11", "2026-11-30").await, 66_660);
        // A 30-day window across the month's end: 15 days of November.
        assert_eq!(ad_spend("2026-11-16", "2026-12-15").await, 49_995);
        assert_eq!(ad_spend("2026-12-01", "2026-12-31").await, 0);
        let month = reports.channels("2026-11", &Filter::period(nov)).await.unwrap();
        let row = month.rows.iter().find(|r| r.channel == "xiaohongshu").unwrap();
        assert_eq!(row.spend, 100_000);

        // Listed in every month the period touches, not in the others.
        let listed = reports
            .spend_entries(reports.month("2026-11").unwrap())
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].spend.until, Some(nov.to));
        let late = reports.days(d("2026-11-30"), d("2026-12-05")).unwrap();
        assert_eq!(reports.spend_entries(late).await.unwrap().len(), 1);
        assert!(reports
            .spend_entries(reports.month("2026-12").unwrap())
            .await
            .unwrap()
            .is_empty());
    }
}
