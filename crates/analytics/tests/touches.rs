//! Utm touches through the real ingest pipeline, on SQLite and PostgreSQL: an event is a
//! touch only when its context names a campaign (`context.campaign.name`). The word
//! "campaign" as a property value, or as a key outside the context, is no touch: the old
//! `body LIKE '%"campaign"%'` pre-filter matched both.

mod common;

use common::{order, send, sh, track};
use flywheel_analytics::campaign_facts::event_touches;
use flywheel_analytics::config::{AnalyticsConfig, Model};
use flywheel_analytics::reports::{Filter, Reports};
use flywheel_analytics::Period;
use flywheel_ingest::Pipeline;
use flywheel_store::testing::stores;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_context_campaign_is_a_touch() {
    for store in stores("analytics_touches").await {
        let p = Pipeline::start(store.clone(), Default::default());
        let mut n = 0;
        let ad = json!({"type": "page", "userId": "u1", "context": {"campaign": {"name": "K", "source": "douyin"}}});
        send(&p, &mut n, ad, sh("2026-11-03 10:00")).await;
        let no_source = json!({"type": "page", "userId": "u4", "context": {"campaign": {"name": "L"}}});
        send(&p, &mut n, no_source, sh("2026-11-03 10:00")).await;
        // "campaign" as a property value, and as a key in properties (not the context).
        let value = track(
            "u2",
            "Product Viewed",
            json!({"kind": "campaign", "via": "campaign"}),
        );
        send(&p, &mut n, value, sh("2026-11-03 10:00")).await;
        let key = track(
            "u3",
            "Product Viewed",
            json!({"campaign": {"name": "Fake", "source": "x"}}),
        );
        send(&p, &mut n, key, sh("2026-11-03 10:00")).await;
        for (user, id) in [("u1", "o1"), ("u2", "o2"), ("u3", "o3"), ("u4", "o4")] {
            send(&p, &mut n, order(user, id, 100), sh("2026-11-04 10:00")).await;
        }
        p.shutdown().await;

        let (from, to) = (sh("2026-11-01 00:00"), sh("2026-12-01 00:00"));
        let mut touches: Vec<(String, String, String)> = store
            .read_with(move |c| event_touches(c, from, to))
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.user, t.campaign, t.channel))
            .collect();
        touches.sort();
        assert_eq!(
            touches,
            vec![
                ("user:u1".to_string(), "K".to_string(), "douyin".to_string()),
                ("user:u4".to_string(), "L".to_string(), "utm".to_string()),
            ],
            "touches are keyed by person (profile id)"
        );

        let reports = Reports::new(
            store.clone(),
            AnalyticsConfig::default(),
            chrono_tz::Asia::Shanghai,
            vec![],
        );
        let nov = Period { from, to };
        let credited = reports
            .attribution(&Filter::period(nov), Model::Last, 7)
            .await
            .unwrap();
        let mut rows: Vec<(String, String, i64)> = credited
            .rows
            .into_iter()
            .map(|r| (r.campaign, r.channel, r.orders))
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            vec![
                ("K".to_string(), "douyin".to_string(), 1),
                ("L".to_string(), "utm".to_string(), 1),
            ]
        );
    }
}
