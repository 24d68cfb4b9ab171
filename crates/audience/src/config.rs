//! Audience settings: the seed rules as configurable defaults.
//!
//! Every built-in tag is a segment expression (REQUIREMENTS R2.4, R3.2–R3.4), so a shop
//! can change a threshold by editing one line of text; the defaults below are the
//! seed values. Loaded once at start (from `[audience]` in `flywheel.toml`) and passed down.

use serde::{Deserialize, Serialize};

use crate::window::WindowMode;

/// Settings of the audience engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudienceConfig {
    /// The shop timezone (IANA name): calendar days, midnight, date literals. Default Asia/Shanghai.
    #[serde(with = "tz_name")]
    pub timezone: chrono_tz::Tz,
    /// Rolling (`N × 24 h`, default) or calendar (`N` shop-local days) windows.
    pub window_mode: WindowMode,
    /// Event names that count as a sign-in (`last_sign_in`, REQUIREMENTS R3.4 "登錄").
    pub sign_in_events: Vec<String>,
    /// Event names that mark registration (`registered_at`, `days_since_registration`).
    pub sign_up_events: Vec<String>,
    /// Event names that put a product in the cart (潛力客戶, `unbought_cart_items`).
    pub cart_events: Vec<String>,
    /// Built-in rule tags, evaluated continuously like any rule tag.
    pub builtin_tags: Vec<BuiltinTag>,
    /// Lifecycle stage thresholds.
    pub lifecycle: LifecycleConfig,
    /// RFM scoring.
    pub rfm: RfmConfig,
    /// How often time alone is re-checked (window roll-over, segment entry/exit), in ms.
    pub tick_ms: u64,
}

/// A built-in rule tag: a name, its tag group and its rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltinTag {
    /// The tag name.
    pub name: String,
    /// The tag group it belongs to.
    pub group: String,
    /// The segment expression that defines it.
    pub rule: String,
    /// Why it is defined this way (shown in the API and docs).
    pub description: String,
}

/// Lifecycle stages (REQUIREMENTS R3.9–R3.11): one stage per user, first match wins in
/// the order 高價值用戶, 流失用戶, 沉睡用戶, 活躍用戶, 新用戶.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// 高價值用戶: spend in the last `high_value_days` strictly greater than this (fen).
    pub high_value_spend_fen: i64,
    /// Window of the high-value spend, days.
    pub high_value_days: u32,
    /// 沉睡用戶: no activity (any event) for at least this many days.
    pub dormant_after_days: u32,
    /// 流失用戶: no activity for at least this many days.
    pub lost_after_days: u32,
}

/// RFM scoring (REQUIREMENTS R9/R10 analysis; issue 4 item 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RfmConfig {
    /// Number of score bins (5 gives scores 1–5).
    pub bins: u8,
    /// Only orders inside this many days count; 0 = all time.
    pub window_days: u32,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            high_value_spend_fen: 100_000,
            high_value_days: 30,
            dormant_after_days: 90,
            lost_after_days: 180,
        }
    }
}

impl Default for RfmConfig {
    fn default() -> Self {
        RfmConfig {
            bins: 5,
            window_days: 0,
        }
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The seed rules (REQUIREMENTS R2.4, R3.2–R3.4) as built-in tags.
pub fn default_builtin_tags() -> Vec<BuiltinTag> {
    let tag = |name: &str, rule: &str, description: &str| BuiltinTag {
        name: name.to_owned(),
        group: "行為標簽".to_owned(),
        rule: rule.to_owned(),
        description: description.to_owned(),
    };
    vec![
        tag(
            "高價值客戶",
            "spend(30d) > 1000 元",
            "R3.2: paid amount in the last 30 days strictly greater than 1000 元 (exactly 1000 元 is not high-value).",
        ),
        tag(
            "潛力客戶",
            "event(\"Product Added\", within: 30d) >= 1 and orders(all) = 0",
            "R3.3 reading A: added to cart in the last 30 days and has never bought. \
             Reading B (a carted item not bought since) is `unbought_cart_items(30d) >= 1`.",
        ),
        tag(
            "流失風險客戶",
            "first_seen before 90d and not last_sign_in within 90d and not last_order within 90d",
            "R3.4: no sign-in AND no purchase in the last 90 days (both needed); users first seen \
             less than 90 days ago cannot have been absent for 90 days and are excluded.",
        ),
        tag(
            "易受促銷影響客戶",
            "orders(365d) >= 2 and promo_share(365d) >= 0.5",
            "R2.4 names it without a rule. Our default: at least 2 paid orders in the last 365 days, \
             and at least half of them used a coupon or carried a discount.",
        ),
    ]
}

impl Default for AudienceConfig {
    fn default() -> Self {
        AudienceConfig {
            timezone: chrono_tz::Asia::Shanghai,
            window_mode: WindowMode::Rolling,
            sign_in_events: names(&["Signed In", "Signed Up", "Logged In"]),
            sign_up_events: names(&["Signed Up"]),
            cart_events: names(&["Product Added"]),
            builtin_tags: default_builtin_tags(),
            lifecycle: LifecycleConfig::default(),
            rfm: RfmConfig::default(),
            tick_ms: 500,
        }
    }
}

/// `timezone` as its IANA name in TOML/JSON.
mod tz_name {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tz: &chrono_tz::Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown timezone {name:?}: use an IANA name such as Asia/Shanghai"
            ))
        })
    }
}
