//! Member tiers (R7.1, R7.2; fixture F15): 青銅 < 白銀 < 黃金 < 鉑金, assigned by rolling
//! 365-day net spend and growth (成長值, [`crate::growth`]: "根據用戶消費金額、活躍度"), with
//! benefits that never shrink going up ("等級越高, 折扣越大, 生日禮遇越豐富"). The seeds
//! give no thresholds or amounts (§19 gap 11): the defaults are [SUGGESTED DEFAULT]s.

use flywheel_core::ErrorCode;
use flywheel_core::Fen;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One tier and its benefits (R7.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Name, e.g. `黃金`.
    pub name: String,
    /// Rolling 365-day net spend (fen) from which a member is in this tier.
    pub min_spend: Fen,
    /// Growth (成長值, activity, R7.2) over the same 365 days from which a member is in
    /// this tier; how it combines with `min_spend` is [`TierConfig::combine`]. `None`:
    /// this tier goes by spend alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_growth: Option<i64>,
    /// Percent of the price a member pays (100 = no discount, 95 = 5% off, 專屬折扣).
    pub pay_percent: i64,
    /// Whether members of this tier ship free.
    #[serde(default)]
    pub free_shipping: bool,
    /// Value of the birthday perk (生日禮遇), fen; 0 = none.
    #[serde(default)]
    pub birthday_perk: Fen,
    /// Coupon templates only this tier (and above, if listed there too) may receive.
    #[serde(default)]
    pub coupon_templates: Vec<String>,
}

/// How a tier's spend and growth thresholds combine (R7.2: spend and activity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TierCombine {
    /// Either threshold qualifies: spend, or growth where the tier sets one (default: a
    /// big spender whose browsing the shop does not track still moves up, and an active
    /// member who spends less moves up too).
    #[default]
    Any,
    /// Both are needed: spend, and growth where the tier sets one.
    All,
}

/// The tiers, lowest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// Lowest tier first; the first tier's thresholds are 0 (every member has a tier).
    pub tiers: Vec<Tier>,
    /// `any` (default): a tier's spend or its growth threshold qualifies; `all`: both.
    #[serde(default)]
    pub combine: TierCombine,
}

fn tier(
    name: &str,
    spend_yuan: i64,
    growth: i64,
    pay_percent: i64,
    free_shipping: bool,
    perk_yuan: i64,
) -> Tier {
    Tier {
        name: name.to_string(),
        min_spend: Fen::yuan(spend_yuan),
        min_growth: (growth > 0).then_some(growth),
        pay_percent,
        free_shipping,
        birthday_perk: Fen::yuan(perk_yuan),
        coupon_templates: Vec::new(),
    }
}

impl Default for TierConfig {
    /// [SUGGESTED DEFAULT] (not from the seeds): 青銅 from 0, 白銀 from 1,000 元 or
    /// 100 growth, 黃金 from 5,000 元 or 300 growth, 鉑金 from 20,000 元 or 800 growth
    /// in 365 days (`any`); they pay 100/98/95/90 %; free shipping from 黃金; birthday
    /// perks 5/10/20/50 元.
    fn default() -> Self {
        TierConfig {
            tiers: vec![
                tier("青銅", 0, 0, 100, false, 5),
                tier("白銀", 1_000, 100, 98, false, 10),
                tier("黃金", 5_000, 300, 95, true, 20),
                tier("鉑金", 20_000, 800, 90, true, 50),
            ],
            combine: TierCombine::Any,
        }
    }
}

fn not_monotonic(message: String) -> Error {
    Error::invalid(ErrorCode::TiersNotMonotonic, message)
}

/// A member's tier now and the spend and growth it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierStatus {
    /// The tier's name.
    pub tier: String,
    /// Net spend (total − refunded, cancelled orders 0) over the last 365 days, fen.
    pub spend_365d: Fen,
    /// Growth (成長值) over the last 365 days.
    pub growth_365d: i64,
    /// The activity that growth counts.
    pub activity_365d: crate::growth::Activity,
}

impl TierConfig {
    /// Checks the config (F15). `invalid_tier`: no tiers, an empty or repeated name, the
    /// lowest tier not starting at 0, `pay_percent` outside 1..=100, a negative perk.
    /// `tiers_not_monotonic`: spend (and growth) thresholds not strictly increasing, or a
    /// higher tier with less: a smaller discount (higher `pay_percent`), a smaller
    /// birthday perk, or free shipping lost.
    pub fn check(&self) -> Result<()> {
        let Some(first) = self.tiers.first() else {
            return Err(Error::invalid(
                ErrorCode::InvalidTier,
                "at least one tier is needed",
            ));
        };
        if first.min_spend != Fen::ZERO || first.min_growth.is_some_and(|g| g != 0) {
            return Err(Error::invalid(
                ErrorCode::InvalidTier,
                format!("the lowest tier {} must start at 0", first.name),
            ));
        }
        for (i, t) in self.tiers.iter().enumerate() {
            if t.name.trim().is_empty() || self.tiers[..i].iter().any(|o| o.name == t.name) {
                return Err(Error::invalid(
                    ErrorCode::InvalidTier,
                    format!("tier name {:?} is empty or repeated", t.name),
                ));
            }
            if !(1..=100).contains(&t.pay_percent) || t.birthday_perk < Fen::ZERO {
                return Err(Error::invalid(
                    ErrorCode::InvalidTier,
                    format!(
                        "tier {}: pay_percent must be 1..=100 and the birthday perk not negative",
                        t.name
                    ),
                ));
            }
        }
        for pair in self.tiers.windows(2) {
            let [lo, hi] = pair else { continue };
            let (l, h) = (&lo.name, &hi.name);
            if hi.min_spend <= lo.min_spend {
                return Err(not_monotonic(format!("{h} must need more spend than {l}")));
            }
            if let (Some(a), Some(b)) = (lo.min_growth, hi.min_growth) {
                if b <= a {
                    return Err(not_monotonic(format!("{h} must need more growth than {l}")));
                }
            }
            if hi.pay_percent > lo.pay_percent {
                return Err(not_monotonic(format!(
                    "{h} gets {}% off, less than {l}'s {}% off",
                    100 - hi.pay_percent,
                    100 - lo.pay_percent
                )));
            }
            if hi.birthday_perk < lo.birthday_perk {
                return Err(not_monotonic(format!(
                    "{h}'s birthday perk is smaller than {l}'s"
                )));
            }
            if lo.free_shipping && !hi.free_shipping {
                return Err(not_monotonic(format!("{h} loses the free shipping of {l}")));
            }
        }
        Ok(())
    }

    /// The highest tier a member with this rolling 365-day net spend and growth reaches
    /// (R7.2: "根據用戶消費金額、活躍度"): with `any`, its spend threshold or its growth
    /// threshold; with `all`, its spend threshold and its growth threshold. A tier without
    /// a growth threshold goes by spend alone.
    pub fn tier_for_activity(&self, spend_365d: Fen, growth: i64) -> &str {
        let reaches = |t: &Tier| {
            let spend = spend_365d >= t.min_spend;
            match (self.combine, t.min_growth) {
                (_, None) => spend,
                (TierCombine::Any, Some(g)) => spend || growth >= g,
                (TierCombine::All, Some(g)) => spend && growth >= g,
            }
        };
        self.tiers
            .iter()
            .rev()
            .find(|t| reaches(t))
            .or(self.tiers.first())
            .map_or("", |t| t.name.as_str())
    }

    /// A tier by name.
    pub fn get(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_assign_by_spend() {
        let c = TierConfig::default();
        c.check().unwrap();
        let by_spend = |fen| c.tier_for_activity(Fen(fen), 0);
        assert_eq!(by_spend(0), "青銅");
        assert_eq!(by_spend(99_999), "青銅");
        assert_eq!(by_spend(100_000), "白銀");
        assert_eq!(by_spend(500_000), "黃金");
        assert_eq!(by_spend(2_000_000), "鉑金");
        assert_eq!(by_spend(-5), "青銅");
    }

    /// The default growth thresholds (100 / 300 / 800) at, below and above each.
    #[test]
    fn any_lets_growth_alone_qualify_at_its_threshold() {
        let c = TierConfig::default();
        for (growth, tier) in [
            (0, "青銅"),
            (99, "青銅"),
            (100, "白銀"),
            (101, "白銀"),
            (299, "白銀"),
            (300, "黃金"),
            (799, "黃金"),
            (800, "鉑金"),
            (5_000, "鉑金"),
        ] {
            assert_eq!(c.tier_for_activity(Fen(0), growth), tier, "growth {growth}");
        }
        // The higher of the two wins.
        assert_eq!(c.tier_for_activity(Fen(600_000), 120), "黃金");
        assert_eq!(c.tier_for_activity(Fen(100_000), 800), "鉑金");
    }

    #[test]
    fn all_needs_spend_and_growth() {
        let c = TierConfig {
            combine: TierCombine::All,
            ..TierConfig::default()
        };
        c.check().unwrap();
        // 黃金 needs 5,000 元 and 300 growth.
        assert_eq!(c.tier_for_activity(Fen(500_000), 300), "黃金");
        assert_eq!(c.tier_for_activity(Fen(500_000), 299), "白銀");
        assert_eq!(c.tier_for_activity(Fen(499_999), 300), "白銀");
        assert_eq!(c.tier_for_activity(Fen(500_000), 99), "青銅");
        assert_eq!(c.tier_for_activity(Fen(5_000_000), 10_000), "鉑金");
        assert_eq!(c.tier_for_activity(Fen(0), 10_000), "青銅");
        // A tier without a growth threshold goes by spend alone.
        let mut c = c;
        c.tiers[1].min_growth = None;
        assert_eq!(c.tier_for_activity(Fen(100_000), 0), "白銀");
        let parsed: TierConfig = serde_json::from_value(serde_json::json!({
            "tiers": serde_json::to_value(&c.tiers).unwrap(), "combine": "all"
        }))
        .unwrap();
        assert_eq!(parsed, c);
    }
}
