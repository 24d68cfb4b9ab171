//! Member tiers (R7.1, R7.2; fixture F15): 青銅 < 白銀 < 黃金 < 鉑金, assigned by rolling
//! 365-day net spend, with benefits that never shrink going up ("等級越高, 折扣越大,
//! 生日禮遇越豐富"). The seeds give no thresholds or amounts (§19 gap 11): the defaults
//! are [SUGGESTED DEFAULT]s.

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
    /// Optional growth-value (activity, R7.2) threshold that also qualifies for this tier.
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

/// The tiers, lowest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// Lowest tier first; the first tier's thresholds are 0 (every member has a tier).
    pub tiers: Vec<Tier>,
}

fn tier(name: &str, spend_yuan: i64, pay_percent: i64, free_shipping: bool, perk_yuan: i64) -> Tier {
    Tier {
        name: name.to_string(),
        min_spend: Fen::yuan(spend_yuan),
        min_growth: None,
        pay_percent,
        free_shipping,
        birthday_perk: Fen::yuan(perk_yuan),
        coupon_templates: Vec::new(),
    }
}

impl Default for TierConfig {
    /// [SUGGESTED DEFAULT] (not from the seeds): 青銅 from 0, 白銀 from 1,000 元,
    /// 黃金 from 5,000 元, 鉑金 from 20,000 元 net spend in 365 days; they pay
    /// 100/98/95/90 %; free shipping from 黃金; birthday perks 5/10/20/50 元.
    fn default() -> Self {
        TierConfig {
            tiers: vec![
                tier("青銅", 0, 100, false, 5),
                tier("白銀", 1_000, 98, false, 10),
                tier("黃金", 5_000, 95, true, 20),
                tier("鉑金", 20_000, 90, true, 50),
            ],
        }
    }
}

fn not_monotonic(message: String) -> Error {
    Error::invalid(ErrorCode::TiersNotMonotonic, message)
}

/// A member's tier now and the spend it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierStatus {
    /// The tier's name.
    pub tier: String,
    /// Net spend (total − refunded, cancelled orders 0) over the last 365 days, fen.
    pub spend_365d: Fen,
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

    /// The tier of a member with this rolling 365-day net spend: the highest whose
    /// `min_spend` it reaches.
    pub fn tier_for(&self, spend_365d: Fen) -> &str {
        self.tier_for_activity(spend_365d, 0)
    }

    /// The highest tier whose spend threshold, or growth threshold where one is set, the
    /// member reaches (R7.2: "根據用戶消費金額、活躍度").
    pub fn tier_for_activity(&self, spend_365d: Fen, growth: i64) -> &str {
        self.tiers
            .iter()
            .rev()
            .find(|t| spend_365d >= t.min_spend || t.min_growth.is_some_and(|g| growth >= g))
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
        assert_eq!(c.tier_for(Fen(0)), "青銅");
        assert_eq!(c.tier_for(Fen(99_999)), "青銅");
        assert_eq!(c.tier_for(Fen(100_000)), "白銀");
        assert_eq!(c.tier_for(Fen(500_000)), "黃金");
        assert_eq!(c.tier_for(Fen(2_000_000)), "鉑金");
        assert_eq!(c.tier_for(Fen(-5)), "青銅");
    }

    #[test]
    fn growth_threshold_also_qualifies() {
        let mut c = TierConfig::default();
        c.tiers[1].min_growth = Some(100);
        c.tiers[2].min_growth = Some(500);
        c.check().unwrap();
        assert_eq!(c.tier_for_activity(Fen(0), 120), "白銀");
        assert_eq!(c.tier_for_activity(Fen(600_000), 120), "黃金");
    }
}
