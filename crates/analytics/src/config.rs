//! `[analytics]` settings: attribution, the channel registry, per-campaign expectations,
//! guardrails and goals. Every default here is a [SUGGESTED DEFAULT] of
//! `REQUIREMENTS.md` §10–11 unless it cites a seed rule; docs/analytics.md lists them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which touch gets an order's credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// The earliest touch within the window.
    First,
    /// The latest touch within the window (the default).
    #[default]
    Last,
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "first" => Ok(Model::First),
            "last" => Ok(Model::Last),
            other => Err(format!("attribution model {other:?}: use first or last")),
        }
    }
}

/// Attribution settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttributionConfig {
    /// The model campaign revenue (and so ROI) uses.
    pub model: Model,
    /// Days before an order in which a touch counts (default 7).
    pub window_days: u32,
}

impl Default for AttributionConfig {
    fn default() -> Self {
        AttributionConfig {
            model: Model::Last,
            window_days: 7,
        }
    }
}

/// Owned (our own audience: email, SMS, push, WeChat) or paid (ads) — R11.2, R11.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Our own audience; costs are per message sent.
    Owned,
    /// Bought reach; costs are entered as spend.
    Paid,
}

/// One channel of the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Owned or paid.
    pub kind: ChannelKind,
    /// Cost of one message sent on this channel, fen (SMS ≈ 5 fen).
    #[serde(default)]
    pub unit_cost_fen: i64,
    /// Monthly budget, fen (0: none set); the reallocation suggestion splits these.
    #[serde(default)]
    pub monthly_budget_fen: i64,
    /// Hard spend cap per shop-local month, fen (R11.3 [SUGGESTED DEFAULT]): once the
    /// channel's spend this month reaches it, the guardrail pauses the journeys sending on
    /// it. None: no cap.
    #[serde(default)]
    pub monthly_cap_fen: Option<i64>,
}

/// What a campaign is expected to do (R11.4: "轉化率低于預期" needs an expectation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CampaignConfig {
    /// Expected conversion rate (conversions ÷ clicks), e.g. 0.02.
    pub expected_cvr: Option<f64>,
    /// Hard spend cap per shop-local month, fen (R11.3 [SUGGESTED DEFAULT]): once the
    /// campaign's spend this month reaches it, the guardrail pauses its journey.
    pub monthly_cap_fen: Option<i64>,
}

/// Guardrail settings (R11.4, F21, F22).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardrailConfig {
    /// Whether the server checks running campaigns and pauses those that trip.
    pub enabled: bool,
    /// Seconds between checks.
    pub interval_secs: u64,
    /// Clicks a campaign needs before its CVR is judged.
    pub min_clicks: i64,
    /// Spend (fen) a campaign needs before its ROI is judged.
    pub min_spend_fen: i64,
    /// Days of a campaign's recent history that are judged.
    pub lookback_days: u32,
}

impl Default for GuardrailConfig {
    fn default() -> Self {
        GuardrailConfig {
            enabled: true,
            interval_secs: 300,
            min_clicks: 1000,
            min_spend_fen: 1,
            lookback_days: 30,
        }
    }
}

/// A goal's metric (R10.4 examples).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoalMetric {
    /// GMV growth of the current quarter over the previous one (季度銷售額增長).
    QuarterlySalesGrowth,
    /// Growth of registrations of the current quarter over the previous one (新用戶注冊).
    QuarterlyRegistrationGrowth,
    /// 復購率 of the current quarter.
    RepurchaseRate,
}

/// A goal: a metric and its target (a fraction: 0.2 is +20 % or 20 %).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoalConfig {
    /// Shown name.
    pub name: String,
    /// What is measured.
    pub metric: GoalMetric,
    /// The target.
    pub target: f64,
}

/// Predictive CLV settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClvConfig {
    /// Days ahead for expected purchases (90).
    pub horizon_days: u32,
    /// Months of the CLV sum (12).
    pub months: u32,
    /// Monthly discount rate (0.01).
    pub discount_rate: f64,
    /// P(alive) below which churn risk is high (0.3).
    pub high_risk_below: f64,
    /// P(alive) below which churn risk is medium (0.7).
    pub medium_risk_below: f64,
    /// Hours between the server's refreshes of the CLV profile traits (24; 0: never).
    pub refresh_hours: u32,
    /// L2 penalizer of both fits (lifetimes' `penalizer_coef`; 0: plain maximum
    /// likelihood, lifetimes' default).
    pub penalizer: f64,
    /// Penalizer used when the plain fit does not converge (a small or degenerate
    /// customer base), then ten and a hundred times it [SUGGESTED DEFAULT] 0.001; 0 turns
    /// the retries off.
    pub fallback_penalizer: f64,
}

impl Default for ClvConfig {
    fn default() -> Self {
        ClvConfig {
            horizon_days: 90,
            months: 12,
            discount_rate: 0.01,
            high_risk_below: 0.3,
            medium_risk_below: 0.7,
            refresh_hours: 24,
            penalizer: 0.0,
            fallback_penalizer: 0.001,
        }
    }
}

/// Scheduled reviews (R10.5: "定期(如每周或每月)召開營銷復盤會議", implemented as
/// scheduled weekly and monthly reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewConfig {
    /// Write a review of every shop-local week (Monday to Sunday).
    pub weekly: bool,
    /// Write a review of every calendar month.
    pub monthly: bool,
    /// Shop-local hour of the day after a period ends from which its review is written,
    /// so late events are in [SUGGESTED DEFAULT] 8 (before a Monday-morning meeting).
    pub at_hour: u32,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            weekly: true,
            monthly: true,
            at_hour: 8,
        }
    }
}

/// A metric a benchmark can hold the shop to (R10.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchmarkMetric {
    /// 次日留存: D1 retention.
    D1Retention,
    /// 7日留存: D7 retention.
    D7Retention,
    /// 30日留存: D30 retention.
    D30Retention,
    /// 復購率.
    RepurchaseRate,
    /// Visitor→buyer conversion.
    Conversion,
    /// Churn rate; the one metric where being above the benchmark is the miss.
    ChurnRate,
}

impl BenchmarkMetric {
    /// The name used in settings and reports (`d1_retention`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            BenchmarkMetric::D1Retention => "d1_retention",
            BenchmarkMetric::D7Retention => "d7_retention",
            BenchmarkMetric::D30Retention => "d30_retention",
            BenchmarkMetric::RepurchaseRate => "repurchase_rate",
            BenchmarkMetric::Conversion => "conversion",
            BenchmarkMetric::ChurnRate => "churn_rate",
        }
    }

    /// Whether a higher value is better (all but churn).
    pub fn higher_is_better(self) -> bool {
        self != BenchmarkMetric::ChurnRate
    }
}

/// A benchmark (R10.6: "用戶留存率低于行業平均水平"): the metric, the value to hold it to
/// (a fraction: 0.35 is 35 %), and a name for alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkConfig {
    /// Shown name, e.g. `行業平均次日留存`.
    pub name: String,
    /// The metric.
    pub metric: BenchmarkMetric,
    /// The benchmark value.
    pub value: f64,
}

/// Where reviews and alerts are sent besides the store and the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Email recipients, sent through the `[journeys.email]` SMTP relay.
    pub email: Vec<String>,
    /// An http(s) URL that receives each review and alert as a signed JSON POST (the
    /// journeys' webhook signature, `X-Flywheel-Signature`).
    pub webhook: Option<String>,
    /// The webhook's signing secret.
    pub webhook_secret: String,
}

/// Default of [`AnalyticsConfig::max_range_days`].
pub const DEFAULT_MAX_RANGE_DAYS: u32 = 366;

/// `[analytics]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// Attribution (default last touch, 7 days).
    pub attribution: AttributionConfig,
    /// The channel registry by name (`email`, `sms`, …, `douyin_ads`).
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Expectations per campaign name.
    pub campaigns: BTreeMap<String, CampaignConfig>,
    /// Guardrails.
    pub guardrail: GuardrailConfig,
    /// What one loyalty point costs the shop, fen (1: 100 points = 1 元).
    pub point_value_fen: i64,
    /// Days without any activity (login or purchase) that make a customer 流失風險 (R3.4: 90).
    pub churn_days: i64,
    /// Goals (R10.4).
    pub goals: Vec<GoalConfig>,
    /// Predictive CLV.
    pub clv: ClvConfig,
    /// Scheduled weekly and monthly reviews (R10.5).
    pub reviews: ReviewConfig,
    /// Benchmarks the reviews check, alerting on a miss (R10.6); none by default.
    pub benchmarks: Vec<BenchmarkConfig>,
    /// Where reviews and alerts are sent.
    pub notify: NotifyConfig,
    /// The most days one report request may cover (`from`..=`to`); a longer period is
    /// refused (`range_too_large`) rather than computed, since daily series and their
    /// memory grow with it. Default 366: a year, leap day included.
    pub max_range_days: u32,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        let owned = |unit_cost_fen| ChannelConfig {
            kind: ChannelKind::Owned,
            unit_cost_fen,
            monthly_budget_fen: 0,
            monthly_cap_fen: None,
        };
        let paid = || ChannelConfig {
            kind: ChannelKind::Paid,
            unit_cost_fen: 0,
            monthly_budget_fen: 0,
            monthly_cap_fen: None,
        };
        AnalyticsConfig {
            attribution: AttributionConfig::default(),
            channels: [
                ("email".to_string(), owned(0)),
                ("sms".to_string(), owned(5)),
                ("push".to_string(), owned(0)),
                ("wechat".to_string(), owned(0)),
                ("webhook".to_string(), owned(0)),
                // The ad platforms the seeds name (R11.5), by their utm_source.
                ("baidu".to_string(), paid()),
                ("douyin".to_string(), paid()),
                ("taobao_ztc".to_string(), paid()),
                ("jd_kuaiche".to_string(), paid()),
                ("xiaohongshu".to_string(), paid()),
                ("weibo".to_string(), paid()),
            ]
            .into(),
            campaigns: BTreeMap::new(),
            guardrail: GuardrailConfig::default(),
            point_value_fen: 1,
            churn_days: 90,
            goals: vec![
                GoalConfig {
                    name: "季度銷售額增長 20%".into(),
                    metric: GoalMetric::QuarterlySalesGrowth,
                    target: 0.20,
                },
                GoalConfig {
                    name: "新用戶注冊增長 15%".into(),
                    metric: GoalMetric::QuarterlyRegistrationGrowth,
                    target: 0.15,
                },
                GoalConfig {
                    name: "復購率 30%".into(),
                    metric: GoalMetric::RepurchaseRate,
                    target: 0.30,
                },
            ],
            clv: ClvConfig::default(),
            reviews: ReviewConfig::default(),
            benchmarks: Vec::new(),
            notify: NotifyConfig::default(),
            max_range_days: DEFAULT_MAX_RANGE_DAYS,
        }
    }
}

impl AnalyticsConfig {
    /// The registry entry of `channel`; an unknown channel is owned and free.
    pub fn channel(&self, channel: &str) -> ChannelConfig {
        self.channels.get(channel).cloned().unwrap_or(ChannelConfig {
            kind: ChannelKind::Owned,
            unit_cost_fen: 0,
            monthly_budget_fen: 0,
            monthly_cap_fen: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_keep_the_other_defaults() {
        let c: AnalyticsConfig = toml_like(
            r#"{"point_value_fen": 2, "channels": {"douyin_ads": {"kind": "paid", "monthly_budget_fen": 500000}},
                "campaigns": {"m": {"expected_cvr": 0.02}}}"#,
        );
        assert_eq!(c.point_value_fen, 2);
        assert_eq!(c.attribution.window_days, 7);
        assert_eq!(c.channel("douyin_ads").kind, ChannelKind::Paid);
        assert_eq!(c.channel("nope").unit_cost_fen, 0);
        assert_eq!(c.campaigns["m"].expected_cvr, Some(0.02));
    }

    fn toml_like(json: &str) -> AnalyticsConfig {
        serde_json::from_str(json).unwrap()
    }
}
