//! Configuration of the points ledger and the whole programme. The seeds give no amounts
//! (REQUIREMENTS §19 gap 12), so every default here is a [SUGGESTED DEFAULT].

use flywheel_core::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::growth::GrowthConfig;
use crate::tiers::TierConfig;
use crate::{Error, Result};

/// How many points each source gives and how long they last (R7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PointsConfig {
    /// Points per 1 元 paid, rounded down per order. [SUGGESTED DEFAULT] 1.
    pub points_per_yuan: i64,
    /// Points for a daily check-in (簽到). [SUGGESTED DEFAULT] 5.
    pub checkin_points: i64,
    /// Every `streak_every`-th consecutive check-in day earns the bonus.
    /// [SUGGESTED DEFAULT] 7 (days 7, 14, 21, …).
    pub streak_every: i64,
    /// Extra points on a streak day, on top of `checkin_points`. [SUGGESTED DEFAULT] 20.
    pub streak_bonus: i64,
    /// Points for a review (評價). [SUGGESTED DEFAULT] 10.
    pub review_points: i64,
    /// Points for a share (分享). [SUGGESTED DEFAULT] 5.
    pub share_points: i64,
    /// Shares credited per user per shop-local day. [SUGGESTED DEFAULT] 3.
    pub shares_per_day: i64,
    /// Days an earned lot stays usable, counted in exact 24-hour days from the moment it
    /// was earned. [SUGGESTED DEFAULT] 365.
    pub lot_days: i64,
}

impl Default for PointsConfig {
    fn default() -> Self {
        PointsConfig {
            points_per_yuan: 1,
            checkin_points: 5,
            streak_every: 7,
            streak_bonus: 20,
            review_points: 10,
            share_points: 5,
            shares_per_day: 3,
            lot_days: 365,
        }
    }
}

impl PointsConfig {
    /// Refuses (`invalid_points_config`) negative rates, zero points for a check-in,
    /// review or share, a streak period below 1 and a lot life below 1 day.
    pub fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::invalid(ErrorCode::InvalidPointsConfig, m.to_string()));
        if self.points_per_yuan < 0 || self.streak_bonus < 0 || self.shares_per_day < 0 {
            return bad("points_per_yuan, streak_bonus and shares_per_day must not be negative");
        }
        if self.checkin_points < 1 || self.review_points < 1 || self.share_points < 1 {
            return bad("checkin_points, review_points and share_points must be at least 1");
        }
        if self.streak_every < 1 {
            return bad("streak_every must be at least 1");
        }
        if !(1..=36_500).contains(&self.lot_days) {
            return bad("lot_days must be between 1 and 36500");
        }
        Ok(())
    }
}

/// The whole loyalty programme: points, tiers, growth and the shop timezone for calendar
/// days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoyaltyConfig {
    /// The points ledger.
    pub points: PointsConfig,
    /// The member tiers.
    pub tiers: TierConfig,
    /// Growth (成長值) per customer activity, the tiers' activity half.
    pub growth: GrowthConfig,
    /// IANA timezone whose calendar days count for check-ins, share caps, birthdays and
    /// growth's active days.
    /// Default `Asia/Shanghai` (DESIGN, rules of the house).
    pub timezone: String,
}

impl Default for LoyaltyConfig {
    fn default() -> Self {
        LoyaltyConfig {
            points: PointsConfig::default(),
            tiers: TierConfig::default(),
            growth: GrowthConfig::default(),
            timezone: flywheel_core::time::DEFAULT_SHOP_TIMEZONE.to_string(),
        }
    }
}

impl LoyaltyConfig {
    /// Checks points, tiers and growth, and parses the timezone (`invalid_timezone`).
    pub fn check(&self) -> Result<chrono_tz::Tz> {
        self.points.check()?;
        self.tiers.check()?;
        self.growth.check()?;
        flywheel_core::time::parse_timezone(&self.timezone)
            .map_err(|e| Error::invalid(ErrorCode::InvalidTimezone, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_values_are_refused() {
        assert_eq!(
            LoyaltyConfig::default().check().unwrap(),
            chrono_tz::Asia::Shanghai
        );
        let bad = LoyaltyConfig {
            timezone: "Mars/Olympus".into(),
            ..LoyaltyConfig::default()
        };
        assert_eq!(bad.check().unwrap_err().code(), "invalid_timezone");
        for f in [
            |p: &mut PointsConfig| p.checkin_points = 0,
            |p: &mut PointsConfig| p.streak_every = 0,
            |p: &mut PointsConfig| p.lot_days = 0,
            |p: &mut PointsConfig| p.points_per_yuan = -1,
        ] {
            let mut p = PointsConfig::default();
            f(&mut p);
            assert_eq!(p.check().unwrap_err().code(), "invalid_points_config");
        }
        let parsed: LoyaltyConfig = serde_json::from_str(r#"{"points": {"share_points": 8}}"#).unwrap();
        assert_eq!((parsed.points.share_points, parsed.points.review_points), (8, 10));
        assert_eq!(parsed.tiers, TierConfig::default());
    }
}
