//! Campaign guardrails (R11.4, F21, F22): "設定活動效果評估閾值(如ROI低于1、轉化率低于預期),
//! 及時暫停或調整策略". A campaign trips
//!
//! - **`roi_below_1`** when its spend is at least `min_spend_fen` and its ROI
//!   ([`crate::campaign::roi`], revenue ÷ spend) < 1,
//!   strictly (ROI = 1.0 does not trip; decided in integers: revenue < spend);
//! - **`cvr_below_expected`** when it has an expected CVR, at least `min_clicks` clicks,
//!   and converted ÷ clicked < expected (decided in integers: the expectation is taken
//!   in parts per million).
//!
//! - **`cap_reached`** when its spend this shop-local month has reached its
//!   `monthly_cap_fen`, or the spend of a channel it runs on has reached the channel's
//!   (R11.3 [SUGGESTED DEFAULT]: "控制預算, 避免不必要的成本支出" as a hard cap; reaching
//!   the cap is enough: sends stop *at* it).
//!
//! A campaign's numbers are summed over its channels. What to do about a trip (pause the
//! journey, alert, audit) is the caller's.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::campaign::{roi, CampaignRow};
use crate::config::AnalyticsConfig;

/// Which rule tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// ROI < 1.
    RoiBelow1,
    /// CVR below the campaign's expected value.
    CvrBelowExpected,
    /// The campaign's or a channel's monthly spend cap is reached.
    CapReached,
}

impl Rule {
    /// The rule's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::RoiBelow1 => "roi_below_1",
            Rule::CvrBelowExpected => "cvr_below_expected",
            Rule::CapReached => "cap_reached",
        }
    }
}

/// One tripped guardrail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trip {
    /// The campaign.
    pub campaign: String,
    /// The journey sending it, if any (the one to pause).
    pub journey: Option<String>,
    /// The rule.
    pub rule: Rule,
    /// What was seen, for the alert (e.g. `ROI 0.90 < 1 (revenue 900.00 元, spend 1000.00 元)`).
    pub detail: String,
}

#[derive(Default)]
struct Sum {
    journey: Option<String>,
    revenue: i64,
    spend: i64,
    clicked: i64,
    converted: i64,
}

/// Every trip among `rows` under `config`.
pub fn check(rows: &[CampaignRow], config: &AnalyticsConfig) -> Vec<Trip> {
    let mut sums: BTreeMap<&str, Sum> = BTreeMap::new();
    for r in rows {
        let s = sums.entry(r.campaign.as_str()).or_default();
        if s.journey.is_none() {
            s.journey.clone_from(&r.journey);
        }
        let m = &r.metrics;
        s.revenue = s.revenue.saturating_add(m.revenue);
        s.spend = s.spend.saturating_add(m.spend);
        s.clicked += m.clicked;
        s.converted += m.converted;
    }
    let g = &config.guardrail;
    let yuan = |f: i64| flywheel_core::Fen(f).to_yuan_string();
    let mut trips = Vec::new();
    for (campaign, s) in sums {
        if s.spend > 0 && s.spend >= g.min_spend_fen && s.revenue < s.spend {
            trips.push(Trip {
                campaign: campaign.to_string(),
                journey: s.journey.clone(),
                rule: Rule::RoiBelow1,
                detail: format!(
                    "ROI {:.2} < 1 (revenue {} 元, spend {} 元)",
                    roi(s.revenue, s.spend).unwrap_or(0.0),
                    yuan(s.revenue),
                    yuan(s.spend)
                ),
            });
        }
        let expected = config.campaigns.get(campaign).and_then(|c| c.expected_cvr);
        if let Some(expected) = expected {
            let ppm = (expected * 1_000_000.0).round() as i128;
            let below = i128::from(s.converted) * 1_000_000 < ppm * i128::from(s.clicked);
            if s.clicked > 0 && s.clicked >= g.min_clicks && below {
                trips.push(Trip {
                    campaign: campaign.to_string(),
                    journey: s.journey,
                    rule: Rule::CvrBelowExpected,
                    detail: format!(
                        "CVR {:.2}% < expected {:.2}% ({} conversions of {} clicks)",
                        s.converted as f64 * 100.0 / s.clicked as f64,
                        expected * 100.0,
                        s.converted,
                        s.clicked
                    ),
                });
            }
        }
    }
    trips
}

/// Every campaign among `month` (the campaign rows of the current shop-local month) that
/// reached its own monthly cap, or runs on a channel that reached the channel's — one trip
/// per campaign, the campaign's own cap first.
pub fn check_caps(month: &[CampaignRow], config: &AnalyticsConfig) -> Vec<Trip> {
    let yuan = |f: i64| flywheel_core::Fen(f).to_yuan_string();
    let mut by_campaign: BTreeMap<&str, (i64, Option<String>)> = BTreeMap::new();
    let mut by_channel: BTreeMap<&str, i64> = BTreeMap::new();
    for r in month {
        let c = by_campaign.entry(r.campaign.as_str()).or_default();
        c.0 = c.0.saturating_add(r.metrics.spend);
        if c.1.is_none() {
            c.1.clone_from(&r.journey);
        }
        for part in &r.by_channel {
            let ch = by_channel.entry(part.channel.as_str()).or_default();
            *ch = ch.saturating_add(part.metrics.spend);
        }
    }
    let mut trips = Vec::new();
    for (campaign, (spend, journey)) in &by_campaign {
        let own = config
            .campaigns
            .get(*campaign)
            .and_then(|c| c.monthly_cap_fen)
            .filter(|cap| spend >= cap)
            .map(|cap| {
                format!(
                    "spend {} 元 this month reached the campaign's cap of {} 元",
                    yuan(*spend),
                    yuan(cap)
                )
            });
        let channel = || {
            month
                .iter()
                .filter(|r| r.campaign == *campaign)
                .flat_map(|r| &r.channels)
                .find_map(|name| {
                    let cap = config.channels.get(name)?.monthly_cap_fen?;
                    let spent = by_channel.get(name.as_str()).copied().unwrap_or(0);
                    (spent >= cap).then(|| {
                        format!(
                            "channel {name} spent {} 元 this month, reaching its cap of {} 元",
                            yuan(spent),
                            yuan(cap)
                        )
                    })
                })
        };
        if let Some(detail) = own.or_else(channel) {
            trips.push(Trip {
                campaign: campaign.to_string(),
                journey: journey.clone(),
                rule: Rule::CapReached,
                detail,
            });
        }
    }
    trips
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{one_channel_row, Metrics};
    use crate::config::CampaignConfig;
    use crate::ratio::Ratio;

    fn on(
        campaign: &str,
        channel: &str,
        revenue: i64,
        spend: i64,
        clicked: i64,
        converted: i64,
    ) -> CampaignRow {
        let metrics = Metrics {
            clicked,
            converted,
            cvr: Ratio::of(converted, clicked),
            revenue,
            spend,
            ad_spend: spend,
            true_cost: spend,
            ..Metrics::default()
        };
        one_channel_row(campaign, channel, Some(format!("j_{campaign}")), metrics)
    }

    fn row(campaign: &str, revenue: i64, spend: i64, clicked: i64, converted: i64) -> CampaignRow {
        on(campaign, "email", revenue, spend, clicked, converted)
    }

    #[test]
    fn f21_roi_below_one_trips_and_exactly_one_does_not() {
        // K: sales 900 元, spend 1000 元. L: 1000 元 and 1000 元.
        let rows = vec![row("K", 90_000, 100_000, 0, 0), row("L", 100_000, 100_000, 0, 0)];
        let trips = check(&rows, &AnalyticsConfig::default());
        assert_eq!(trips.len(), 1);
        assert_eq!(trips[0].campaign, "K");
        assert_eq!(trips[0].rule, Rule::RoiBelow1);
        assert_eq!(trips[0].journey.as_deref(), Some("j_K"));
        assert!(trips[0].detail.contains("ROI 0.90"), "{}", trips[0].detail);
    }

    #[test]
    fn f22_cvr_below_the_expected_two_percent_trips_after_the_minimum_sample() {
        let mut config = AnalyticsConfig::default();
        config.campaigns.insert(
            "M".into(),
            CampaignConfig {
                expected_cvr: Some(0.02),
                monthly_cap_fen: None,
            },
        );
        let free = |conv| vec![row("M", 0, 0, 10_000, conv)];
        let trips = check(&free(150), &config);
        assert_eq!(trips.len(), 1, "1.5 % < 2 %");
        assert_eq!(trips[0].rule, Rule::CvrBelowExpected);
        assert!(check(&free(200), &config).is_empty(), "2.0 % is not below 2 %");
        // Below the minimum sample nothing is judged yet.
        assert!(check(&[row("M", 0, 0, 999, 0)], &config).is_empty());
        // A campaign without an expectation is never judged on CVR.
        assert!(check(&[row("N", 0, 0, 10_000, 0)], &config).is_empty());
    }

    #[test]
    fn a_campaign_stops_at_its_own_cap_or_its_channels() {
        let mut config = AnalyticsConfig::default();
        config.campaigns.insert(
            "A".into(),
            CampaignConfig {
                expected_cvr: None,
                monthly_cap_fen: Some(50_000),
            },
        );
        let on = |campaign: &str, channel: &str, spend| on(campaign, channel, 0, spend, 0, 0);
        // A: 499.99 元 of its 500 元 cap: runs on; at 500 元 it stops.
        assert!(check_caps(&[on("A", "email", 49_999)], &config).is_empty());
        let trips = check_caps(&[on("A", "email", 30_000), on("A", "sms", 20_000)], &config);
        assert_eq!(trips.len(), 1);
        assert_eq!(
            (trips[0].campaign.as_str(), trips[0].rule),
            ("A", Rule::CapReached)
        );
        assert_eq!(trips[0].journey.as_deref(), Some("j_A"));
        assert!(trips[0].detail.contains("500.00"), "{}", trips[0].detail);
        // SMS capped at 300 元 a month: B and C together reach it, so both stop; D on
        // email does not.
        config.channels.get_mut("sms").unwrap().monthly_cap_fen = Some(30_000);
        let rows = [
            on("B", "sms", 10_000),
            on("C", "sms", 20_000),
            on("D", "email", 90_000),
        ];
        let trips = check_caps(&rows, &config);
        let names: Vec<&str> = trips.iter().map(|t| t.campaign.as_str()).collect();
        assert_eq!(names, ["B", "C"]);
        assert!(trips[0].detail.contains("channel sms"), "{}", trips[0].detail);
        assert!(check_caps(&rows[..1], &config).is_empty(), "100 元 of 300 元");
    }
}
