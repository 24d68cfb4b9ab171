//! The reports over a store, on SQLite and PostgreSQL: campaign metrics and ROI from the
//! message log, spend entries and orders attributed by utm touches; the F21 guardrail;
//! channels; a funnel; uplift against a holdout; KPIs with churn and a daily trend.

mod common;

use common::{order, send, sh, track};
use flywheel_analytics::campaign_facts::Spend;
use flywheel_analytics::config::{AnalyticsConfig, ChannelConfig, ChannelKind, Model};
use flywheel_analytics::guardrail::Rule;
use flywheel_analytics::reports::{Filter, Reports};
use flywheel_analytics::{Period, Ratio};
use flywheel_ingest::Pipeline;
use flywheel_store::analytics::audit;
use flywheel_store::journeys;
use flywheel_store::testing::stores;
use flywheel_store::Store;
use serde_json::json;

const HOUR: i64 = 3_600_000;

/// A message row as the journey engine writes it.
#[allow(clippy::too_many_arguments)]
async fn message(
    store: &Store,
    id: &str,
    user: &str,
    campaign: &str,
    channel: &str,
    status: &str,
    at: i64,
    clicked: bool,
    converted: bool,
) {
    let m = journeys::MessageRow {
        id: id.to_string(),
        user_id: user.to_string(),
        journey: Some(campaign.to_string()),
        run_id: None,
        step: None,
        channel: channel.to_string(),
        category: "marketing".into(),
        campaign: Some(campaign.to_string()),
        status: status.parse().unwrap(),
        reason: None,
        address: None,
        subject: None,
        created_at: at,
        updated_at: at,
        delivered_at: None,
        opened_at: None,
        clicked_at: clicked.then_some(at + 1),
        converted_at: converted.then_some(at + 2),
    };
    store
        .write_with(move |c| journeys::messages::record_history(c, &m))
        .await
        .unwrap();
}

async fn run(store: &Store, id: &str, journey: &str, user: &str, state: &str, at: i64, converted: bool) {
    let r = journeys::RunRow {
        id: id.to_string(),
        journey: journey.to_string(),
        version: 1,
        user_id: user.to_string(),
        key: String::new(),
        step: 0,
        state: state.parse().unwrap(),
        wait_event: None,
        wait_until: None,
        path: "[]".into(),
        context: json!({}),
        entered_at: at,
        ended_at: None,
        converted_at: None,
    };
    store
        .write_with(move |c| {
            journeys::runs::insert_run(c, &r, at)?;
            if converted {
                journeys::runs::convert_run(c, &r.id, false, at + 1)?;
            }
            if journeys::definitions::journey(c, &r.journey)?.is_none() {
                journeys::definitions::save(c, &r.journey, "{}", at)?;
                journeys::definitions::set_status(c, &r.journey, journeys::JourneyStatus::Active, at)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_channel_funnel_uplift_and_kpi_reports() {
    for store in stores("analytics_reports").await {
        let p = Pipeline::start(store.clone(), Default::default());
        let mut n = 0;
        // A utm touch for u1 (an ad click on douyin), then u1 buys 900 元 two days later.
        let ad = json!({"type": "page", "userId": "u1", "context": {"campaign": {"name": "K", "source": "douyin"}}});
        send(&p, &mut n, ad, sh("2026-11-03 10:00")).await;
        send(&p, &mut n, order("u1", "o1", 900), sh("2026-11-05 10:00")).await;
        // u2 gets an SMS of campaign L, then buys 1000 元; u3 buys with no touch.
        send(
            &p,
            &mut n,
            track("u2", "Product Viewed", json!({})),
            sh("2026-11-06 09:00"),
        )
        .await;
        send(
            &p,
            &mut n,
            track("u2", "Product Added", json!({})),
            sh("2026-11-06 09:10"),
        )
        .await;
        send(
            &p,
            &mut n,
            track("u2", "Checkout Started", json!({})),
            sh("2026-11-06 09:30"),
        )
        .await;
        send(&p, &mut n, order("u2", "o2", 1000), sh("2026-11-06 10:00")).await;
        send(
            &p,
            &mut n,
            track("u3", "Product Viewed", json!({})),
            sh("2026-11-06 09:00"),
        )
        .await;
        send(&p, &mut n, order("u3", "o3", 50), sh("2026-11-07 10:00")).await;
        // Sign-ups: s1 in October (again in November: still an October user), s2 in
        // November, back the next day.
        for (user, at) in [
            ("s1", "2026-10-20 10:00"),
            ("s1", "2026-11-02 10:00"),
            ("s2", "2026-11-03 23:00"),
        ] {
            send(&p, &mut n, track(user, "Signed Up", json!({})), sh(at)).await;
        }
        send(
            &p,
            &mut n,
            track("s2", "Page Viewed", json!({})),
            sh("2026-11-04 00:30"),
        )
        .await;
        p.shutdown().await;
        message(
            &store,
            "s1",
            "u2",
            "L",
            "sms",
            "delivered",
            sh("2026-11-06 08:00"),
            true,
            true,
        )
        .await;
        message(
            &store,
            "s2",
            "u3",
            "L",
            "sms",
            "failed",
            sh("2026-11-06 08:00"),
            false,
            false,
        )
        .await;

        let mut config = AnalyticsConfig::default();
        config.channels.insert(
            "douyin".into(),
            ChannelConfig {
                kind: ChannelKind::Paid,
                unit_cost_fen: 0,
                monthly_budget_fen: 100_000,
                monthly_cap_fen: None,
            },
        );
        config.channels.get_mut("sms").unwrap().monthly_budget_fen = 100_000;
        config.channels.get_mut("sms").unwrap().kind = ChannelKind::Paid; // bought from an agency: a budget
        config.channels.get_mut("sms").unwrap().unit_cost_fen = 100_000; // 1000 元 per SMS: ROI exactly 1
        let reports = Reports::new(
            store.clone(),
            config,
            chrono_tz::Asia::Shanghai,
            vec!["Signed Up".into()],
        );
        let spend = |amount, campaign: Option<&str>| Spend {
            channel: "douyin".into(),
            campaign: campaign.map(String::from),
            at: sh("2026-11-02 12:00"),
            until: None,
            amount,
            note: Some("信息流".into()),
        };
        reports.add_cost(spend(100_000, Some("K")), 0).await.unwrap();
        assert!(
            reports.add_cost(spend(-1, None), 0).await.is_err(),
            "negative spend"
        );

        let nov = reports
            .days(
                chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            )
            .unwrap();
        let rows = reports.campaigns(&Filter::period(nov)).await.unwrap();
        let row_k = rows.iter().find(|r| r.campaign == "K").unwrap();
        assert_eq!(row_k.channels, ["douyin"]);
        let k = &row_k.metrics;
        assert_eq!((k.orders, k.revenue, k.spend), (1, 90_000, 100_000));
        assert_eq!(k.roi, Some(0.9), "F21 K: 900 ÷ 1000");
        let l = &rows.iter().find(|r| r.campaign == "L").unwrap().metrics;
        assert_eq!(
            (l.sent, l.delivered, l.clicked, l.converted),
            (1, 1, 1, 1),
            "the failed SMS was not sent"
        );
        assert_eq!((l.revenue, l.spend, l.roi), (100_000, 100_000, Some(1.0)));
        assert_eq!(l.cvr, Ratio::Value(1.0));

        // Guardrails over the same store: K trips (ROI < 1), L does not (ROI = 1).
        let trips = flywheel_analytics::guardrail::check(&rows, reports.config());
        assert_eq!(trips.len(), 1);
        assert_eq!(
            (trips[0].campaign.as_str(), trips[0].rule),
            ("K", Rule::RoiBelow1)
        );

        // Spend caps (R11.3) over the month so far: L spent 1000 元 in November; a cap of
        // exactly that stops it, one fen more does not. Through the store, as the server
        // checks.
        for (cap, trips) in [(100_000, vec![("L", Rule::CapReached)]), (100_001, vec![])] {
            let mut capped = reports.config().clone();
            capped.campaigns.entry("L".into()).or_default().monthly_cap_fen = Some(cap);
            let capped = Reports::new(store.clone(), capped, chrono_tz::Asia::Shanghai, vec![]);
            let got: Vec<(String, Rule)> = capped
                .guardrail_trips(sh("2026-11-20 12:00"))
                .await
                .unwrap()
                .into_iter()
                .filter(|t| t.rule == Rule::CapReached)
                .map(|t| (t.campaign, t.rule))
                .collect();
            let want: Vec<(String, Rule)> = trips.into_iter().map(|(c, r)| (c.to_string(), r)).collect();
            assert_eq!(got, want, "cap {cap}");
        }

        // Filters.
        let mut only_sms = Filter::period(nov);
        only_sms.channel = Some("sms".into());
        let sms = reports.campaigns(&only_sms).await.unwrap();
        assert!(sms.iter().all(|r| r.channels == ["sms"]) && !sms.is_empty());

        // Channels: douyin ROI 0.9, sms ROI 1.0; budget moves toward sms.
        let ch = reports.channels("2026-11", &Filter::period(nov)).await.unwrap();
        let get = |n: &str| ch.rows.iter().find(|r| r.channel == n).unwrap();
        assert_eq!((get("douyin").roi, get("sms").roi), (Some(0.9), Some(1.0)));
        assert!(get("sms").suggested_budget > get("douyin").suggested_budget);
        assert_eq!(
            get("sms").suggested_budget + get("douyin").suggested_budget,
            200_000
        );

        // Attribution: first touch within 1 day finds nothing for u1 (touch 2 days before).
        let narrow = reports
            .attribution(&Filter::period(nov), Model::First, 1)
            .await
            .unwrap();
        assert!(narrow.rows.iter().all(|r| r.campaign != "K"));
        let wide = reports
            .attribution(&Filter::period(nov), Model::Last, 7)
            .await
            .unwrap();
        assert_eq!(wide.rows.iter().map(|r| r.revenue).sum::<i64>(), 190_000);

        // The funnel: u2 goes all the way in 1 h; u3 views only.
        let steps: Vec<String> = [
            "Product Viewed",
            "Product Added",
            "Checkout Started",
            "Order Completed",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let f = reports
            .funnel(&Filter::period(nov), &steps, 24 * HOUR, None)
            .await
            .unwrap();
        let users: Vec<i64> = f.steps.iter().map(|s| s.users).collect();
        assert_eq!(users, vec![2, 1, 1, 1]);
        assert_eq!(f.steps[1].median_seconds_from_previous, Some(600.0));
        assert_eq!(f.steps[1].from_previous, Ratio::Value(0.5));
        // The funnel of the users campaign L touched: u2 only.
        let mut by_l = Filter::period(nov);
        by_l.campaign = Some("L".into());
        let fl = reports.funnel(&by_l, &steps, 24 * HOUR, None).await.unwrap();
        assert_eq!(
            fl.steps.iter().map(|s| s.users).collect::<Vec<_>>(),
            vec![1, 1, 1, 1]
        );

        // Uplift: 2 of 4 treated converted, 0 of 2 held out.
        for (i, (state, conv)) in [
            ("done", true),
            ("done", true),
            ("active", false),
            ("done", false),
            ("holdout", false),
            ("holdout", false),
        ]
        .into_iter()
        .enumerate()
        {
            run(
                &store,
                &format!("r{i}"),
                "welcome",
                &format!("w{i}"),
                state,
                sh("2026-11-10 10:00"),
                conv,
            )
            .await;
        }
        let u = reports.uplift("welcome", &Filter::period(nov)).await.unwrap();
        assert_eq!((u.treated.users, u.treated.converted, u.holdout.users), (4, 2, 2));
        assert_eq!(u.uplift, Some(0.5));
        assert!(u.ci_low.unwrap() < 0.5 && u.ci_high.unwrap() > 0.5);
        assert!(reports.uplift("nope", &Filter::period(nov)).await.is_err());

        // KPIs with the daily trend: 3 orders, 1950 元, 30 days.
        let k = reports.kpi(&Filter::period(nov)).await.unwrap();
        assert_eq!((k.kpis.orders, k.kpis.gmv.0), (3, 195_000));
        assert_eq!(k.daily.len(), 30);
        assert_eq!(k.daily.iter().map(|d| d.orders).sum::<i64>(), 3);
        assert_eq!(k.daily[4].gmv.0, 90_000, "Nov 5th");
        assert_eq!(k.churn.rate, Ratio::NotApplicable, "no customer before November");
        // Cohorts (columnar): only s2's, retained on day 1 across Shanghai midnight.
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let cohorts = reports
            .cohort(&Filter::period(nov), &[1, 7], today)
            .await
            .unwrap();
        assert_eq!(cohorts.len(), 1);
        assert_eq!(
            (cohorts[0].day.to_string(), cohorts[0].size),
            ("2026-11-03".to_string(), 1)
        );
        assert_eq!(cohorts[0].retained[0].2, Ratio::Value(1.0));
        assert_eq!(cohorts[0].retained[1].2, Ratio::Value(0.0));
        // Goals on 2026-Q4 so far: no sales in the same stretch of Q3, so growth is n/a
        // (met: anything beats nothing); 復購率 0 of 3 buyers.
        let goals = reports.goals(sh("2026-11-30 12:00")).await.unwrap();
        assert_eq!(goals.len(), 3);
        assert_eq!(
            (goals[0].quarter.as_str(), goals[0].current, goals[0].met),
            ("2026-Q4", None, true)
        );
        assert_eq!((goals[2].current, goals[2].met), (Some(0.0), false));
        // KPIs of one campaign: the orders credited to it and the users it touched.
        let mut only_k = Filter::period(nov);
        only_k.campaign = Some("K".into());
        let kk = reports.kpi(&only_k).await.unwrap();
        assert_eq!((kk.kpis.orders, kk.kpis.gmv.0, kk.kpis.visitors), (1, 90_000, 1));
        let mut only_sms = Filter::period(nov);
        only_sms.channel = Some("sms".into());
        assert_eq!(reports.kpi(&only_sms).await.unwrap().kpis.gmv.0, 100_000);
        let empty = reports
            .kpi(&Filter::period(Period { from: 0, to: 1 }))
            .await
            .unwrap();
        assert_eq!(empty.kpis.conversion, Ratio::NotApplicable);

        // Alerts and the audit entry land together.
        reports
            .record_alert(flywheel_analytics::campaign_facts::Alert {
                at: 5,
                campaign: "K".into(),
                rule: "roi_below_1".into(),
                detail: trips[0].detail.clone(),
                action: "alerted".into(),
            })
            .await
            .unwrap();
        assert_eq!(reports.alerts(10).await.unwrap().len(), 1);
        assert_eq!(reports.last_alert("K", "roi_below_1").await.unwrap(), Some(5));
        let audits = store.read_with(audit::entries).await.unwrap();
        assert_eq!(audits.len(), 1);
        assert_eq!(
            (audits[0].actor.as_str(), audits[0].subject.as_str()),
            ("guardrail", "K")
        );
    }
}

/// A funnel broken down by a property of the step-1 event: each user under the value on
/// their first step-1 event in the period; a missing value is its own group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_breakdown_by_a_property_of_the_first_step_event() {
    for store in stores("analytics_funnel_property").await {
        let p = Pipeline::start(store.clone(), Default::default());
        let mut n = 0;
        let viewed = |user: &str, props: serde_json::Value| track(user, "Product Viewed", props);
        // u1 first views 酒 (from douyin), later 茶, and buys; u2 views 茶 only; u3's view has
        // no category; u4 viewed 茶 the day before the period, then 酒 inside it.
        let mut ad = viewed("u1", json!({"category": "酒"}));
        ad["context"] = json!({"campaign": {"name": "K", "source": "douyin"}});
        send(&p, &mut n, ad, sh("2026-11-10 09:00")).await;
        send(
            &p,
            &mut n,
            viewed("u1", json!({"category": "茶"})),
            sh("2026-11-10 10:00"),
        )
        .await;
        send(
            &p,
            &mut n,
            track(
                "u1",
                "Order Completed",
                json!({"order_id": "o1", "total": 10, "products": []}),
            ),
            sh("2026-11-10 11:00"),
        )
        .await;
        send(
            &p,
            &mut n,
            viewed("u2", json!({"category": "茶"})),
            sh("2026-11-10 09:00"),
        )
        .await;
        send(
            &p,
            &mut n,
            viewed("u3", json!({"price": 5})),
            sh("2026-11-10 09:00"),
        )
        .await;
        send(
            &p,
            &mut n,
            viewed("u4", json!({"category": "茶"})),
            sh("2026-11-09 09:00"),
        )
        .await;
        send(
            &p,
            &mut n,
            viewed("u4", json!({"category": "酒"})),
            sh("2026-11-10 12:00"),
        )
        .await;
        p.shutdown().await;
        let reports = Reports::new(
            store.clone(),
            AnalyticsConfig::default(),
            chrono_tz::Asia::Shanghai,
            vec![],
        );
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 10).unwrap();
        let period = reports.days(day, day).unwrap();
        let steps = vec!["Product Viewed".to_string(), "Order Completed".to_string()];
        let f = reports
            .funnel(
                &Filter::period(period),
                &steps,
                24 * HOUR,
                Some("properties.category"),
            )
            .await
            .unwrap();
        let groups: Vec<(Option<&str>, Vec<i64>)> = f
            .groups
            .iter()
            .map(|g| (g.value.as_deref(), g.steps.iter().map(|s| s.users).collect()))
            .collect();
        assert_eq!(
            groups,
            vec![
                (Some("茶"), vec![1, 0]),
                (Some("酒"), vec![2, 1]),
                (None, vec![1, 0]),
            ]
        );
        assert_eq!(f.breakdown.as_deref(), Some("properties.category"));
        let by_source = reports
            .funnel(
                &Filter::period(period),
                &steps,
                24 * HOUR,
                Some("context.campaign.source"),
            )
            .await
            .unwrap();
        let groups: Vec<(Option<&str>, i64)> = by_source
            .groups
            .iter()
            .map(|g| (g.value.as_deref(), g.steps[1].users))
            .collect();
        assert_eq!(groups, vec![(Some("douyin"), 1), (None, 0)]);
    }
}
