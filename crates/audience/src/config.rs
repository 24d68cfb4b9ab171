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
    /// Whether an order of 0 元 (a free gift, a fully discounted basket) is a purchase
    /// (default true, as `lifetimes` counts every transaction). When false such orders are
    /// left out wherever purchases are counted — RFM, CLV, buyers, `orders(...)`,
    /// lifecycle stages — as if cancelled.
    pub count_zero_value_orders: bool,
    /// How often time alone is re-checked (window roll-over, segment entry/exit), in ms.
    pub tick_ms: u64,
    /// How long logged segment and tag transitions are kept once every reader (the
    /// journeys) has passed them, in days.
    pub transitions_retention_days: u32,
    /// How often the engine saves its state to the data directory, in minutes, so a
    /// start loads it instead of rebuilding from the store (it is also saved at a
    /// graceful stop); 0 saves only at a graceful stop.
    pub snapshot_minutes: u32,
    /// Where the saved state lives (`audience.snapshot` in the data directory); set by
    /// the server, not read from the file. `None`: never saved, always rebuilt.
    #[serde(skip)]
    pub snapshot_dir: Option<std::path::PathBuf>,
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
/// the order 高價值用戶, 流失用戶, 沉睡用戶, 留存用戶, 活躍用戶, 新用戶.
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
    /// 留存用戶 ("在一段時間內持續活躍"): how many shop-local calendar months, this
    /// month included, are looked at; 0 turns the stage off.
    pub retained_months: u32,
    /// 留存用戶: in how many of those months the user must have a paid order.
    pub retained_min_months: u32,
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
            retained_months: 3,
            retained_min_months: 2,
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

/// The lifecycle stages as the seeds name them, in their order (新用戶 → 活躍用戶 →
/// 留存用戶 → 高價值用戶), then the two stages of absence (沉睡用戶, 流失用戶).
pub const LIFECYCLE_STAGES: [&str; 6] = [
    "新用戶",
    "活躍用戶",
    "留存用戶",
    "高價值用戶",
    "沉睡用戶",
    "流失用戶",
];

/// Tier-1 cities (一線城市), in traditional and simplified writing.
const TIER1_CITIES: &str = r#"["北京", "上海", "廣州", "广州", "深圳"]"#;
/// New tier-1 cities (新一線城市, the 2023 list), in traditional and simplified writing.
const NEW_TIER1_CITIES: &str = r#"["成都", "重慶", "重庆", "杭州", "武漢", "武汉", "蘇州", "苏州", "西安", "南京", "長沙", "长沙", "天津", "鄭州", "郑州", "東莞", "东莞", "青島", "青岛", "昆明", "寧波", "宁波", "合肥"]"#;

/// The built-in tags: the seed's behaviour tags (REQUIREMENTS R2.4, R3.2–R3.4) and the
/// tag groups of R2.2 (年齡, 性別, 地域, 消費水平) plus the lifecycle stages (R3.9–R3.11).
/// Each is a segment expression; thresholds marked as our defaults are [SUGGESTED
/// DEFAULT]s the seeds do not fix, changed under `[audience]` in `flywheel.toml`.
pub fn default_builtin_tags() -> Vec<BuiltinTag> {
    let tag = |group: &str, name: &str, rule: &str, description: &str| BuiltinTag {
        name: name.to_owned(),
        group: group.to_owned(),
        rule: rule.to_owned(),
        description: description.to_owned(),
    };
    let mut tags = vec![
        tag(
            "行為標簽",
            "高價值客戶",
            "spend(30d) > 1000 元",
            "R3.2: paid amount in the last 30 days strictly greater than 1000 元 (exactly 1000 元 is not high-value).",
        ),
        tag(
            "行為標簽",
            "潛力客戶",
            "event(\"Product Added\", within: 30d) >= 1 and orders(all) = 0",
            "R3.3 reading A: added to cart in the last 30 days and has never bought (the window is our default). \
             Reading B (a carted item not bought since) is `unbought_cart_items(30d) >= 1`.",
        ),
        tag(
            "行為標簽",
            "流失風險客戶",
            "first_seen before 90d and not last_sign_in within 90d and not last_order within 90d",
            "R3.4: no sign-in AND no purchase in the last 90 days (both needed); users first seen \
             less than 90 days ago cannot have been absent for 90 days and are excluded.",
        ),
        tag(
            "行為標簽",
            "易受促銷影響客戶",
            "orders(365d) >= 2 and promo_share(365d) >= 0.5",
            "R2.4 names it without a rule. Our default: at least 2 paid orders in the last 365 days, \
             and at least half of them used a coupon or carried a discount.",
        ),
        tag("性別", "男性", "gender = \"男\"", "R2.2: gender trait male / 男 / m."),
        tag("性別", "女性", "gender = \"女\"", "R2.2: gender trait female / 女 / f."),
    ];
    for band in ["<18", "18-24", "25-34", "35-44", "45-54", "55+"] {
        tags.push(tag(
            "年齡段",
            &format!("年齡 {band}"),
            &format!("age_band = \"{band}\""),
            "R2.2: age band from the birthday (or age) trait, full years in the shop timezone.",
        ));
    }
    tags.extend([
        tag(
            "地域",
            "一線城市",
            &format!("city in {TIER1_CITIES}"),
            "R2.2/R2.8: tier-1 cities (our default list).",
        ),
        tag(
            "地域",
            "新一線城市",
            &format!("city in {NEW_TIER1_CITIES}"),
            "R2.2/R2.8: new tier-1 cities (2023 list; our default).",
        ),
        tag(
            "消費水平",
            "高消費",
            "spend(365d) >= 5000 元",
            "R2.2: net spend in the last 365 days of at least 5000 元 (our default).",
        ),
        tag(
            "消費水平",
            "中消費",
            "spend(365d) >= 1000 元 and spend(365d) < 5000 元",
            "R2.2: net spend in the last 365 days from 1000 元 to under 5000 元 (our default).",
        ),
        tag(
            "消費水平",
            "低消費",
            "spend(365d) > 0 元 and spend(365d) < 1000 元",
            "R2.2: some net spend in the last 365 days, under 1000 元 (our default).",
        ),
    ]);
    for stage in LIFECYCLE_STAGES {
        tags.push(tag(
            "生命周期",
            stage,
            &format!("lifecycle = \"{stage}\""),
            "R3.9–R3.11: one stage per user (thresholds under [audience.lifecycle]).",
        ));
    }
    tags
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
            count_zero_value_orders: true,
            tick_ms: 500,
            transitions_retention_days: 7,
            snapshot_minutes: 15,
            snapshot_dir: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/audience.md`: its configuration example and tables are checked here.
    const GUIDE: &str = include_str!("../../../docs/audience.md");

    #[derive(Deserialize)]
    struct File {
        audience: AudienceConfig,
    }

    #[test]
    fn the_documented_configuration_parses_and_shows_the_defaults() {
        let block = GUIDE
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap();
        let file: File = toml::from_str(block).unwrap();
        let d = AudienceConfig::default();
        let c = file.audience;
        assert_eq!(
            (c.timezone, c.window_mode, c.tick_ms),
            (d.timezone, d.window_mode, d.tick_ms)
        );
        assert_eq!(
            (&c.sign_in_events, &c.sign_up_events, &c.cart_events),
            (&d.sign_in_events, &d.sign_up_events, &d.cart_events)
        );
        assert_eq!((c.lifecycle, c.rfm), (d.lifecycle, d.rfm));
        assert_eq!(c.builtin_tags.len(), 1);
        assert!(toml::from_str::<File>("[audience]\ntimezone = \"Mars/Olympus\"").is_err());
        assert!(toml::from_str::<File>("[audience]\nthreshold = 1").is_err());
    }

    #[test]
    fn the_documented_rfm_grid_is_the_one_used() {
        let grid = GUIDE.split("| R \\ F |").nth(1).unwrap();
        for line in grid.lines().skip(2).take(5) {
            let cells: Vec<&str> = line.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
            let r: u8 = cells[0].trim_matches('*').parse().unwrap();
            for (f, name) in cells[1..].iter().enumerate() {
                assert_eq!(
                    crate::rfm::score::segment_name(r, f as u8 + 1),
                    *name,
                    "R{r} F{}",
                    f + 1
                );
            }
        }
    }

    #[test]
    fn every_builtin_tag_is_in_the_guide() {
        for t in default_builtin_tags() {
            let first = t.name.split(' ').next().unwrap_or(&t.name);
            assert!(GUIDE.contains(first), "{} missing from docs/audience.md", t.name);
            assert!(
                GUIDE.contains(&t.group),
                "{} missing from docs/audience.md",
                t.group
            );
        }
    }
}
