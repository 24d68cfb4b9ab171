//! `docs/analytics.md` says what the code does: its configuration example is a valid
//! `[analytics]` table and sets what it says it sets.

use flywheel_analytics::config::{AnalyticsConfig, BenchmarkMetric, ChannelKind, Model};
use serde::Deserialize;

const GUIDE: &str = include_str!("../../../docs/analytics.md");

#[derive(Deserialize)]
struct File {
    analytics: AnalyticsConfig,
}

#[test]
fn the_configuration_example_parses_and_sets_what_it_says() {
    let block = GUIDE
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let a = toml::from_str::<File>(block).unwrap().analytics;
    assert_eq!((a.attribution.model, a.attribution.window_days), (Model::Last, 7));
    assert_eq!(a.channels["douyin"].kind, ChannelKind::Paid);
    assert_eq!(a.channels["sms"].monthly_cap_fen, Some(500_000));
    assert_eq!(a.campaigns["雙11大促"].expected_cvr, Some(0.02));
    assert_eq!(a.campaigns["雙11大促"].monthly_cap_fen, Some(2_000_000));
    assert_eq!(a.guardrail.min_clicks, 1000);
    assert_eq!(a.goals.len(), 1);
    assert_eq!(
        (a.reviews.weekly, a.reviews.monthly, a.reviews.at_hour),
        (true, true, 8)
    );
    assert_eq!(a.benchmarks[0].metric, BenchmarkMetric::D1Retention);
    assert_eq!(a.notify.email, ["ops@shop.example"]);
    assert_eq!(a.clv.fallback_penalizer, 0.001);
    assert_eq!(a.max_range_days, 366);
}
