//! Growth (成長值, R7.2 "根據用戶消費金額、活躍度"; R7.7 用戶成長體系): the activity half of
//! a member's tier. Points of growth per shop-local day with a customer event, per day
//! with a sign-in, per counted order and per review, over the tiers' evaluation period
//! (the same rolling 365 days as spend). The system's own writes never count
//! ([`flywheel_store::member_activity`]). The seeds give no amounts (REQUIREMENTS §19
//! gap 11): every default here is a [SUGGESTED DEFAULT].

use std::collections::BTreeSet;

use flywheel_core::time::from_millis;
use flywheel_core::ErrorCode;
use flywheel_store::member_activity::MemberActivity;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How much growth each kind of customer activity gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrowthConfig {
    /// Per shop-local day with at least one customer event. [SUGGESTED DEFAULT] 1.
    pub per_active_day: i64,
    /// Per shop-local day with a sign-in (on top of the active day). [SUGGESTED DEFAULT] 1.
    pub per_sign_in_day: i64,
    /// Per order that counts: paid, not cancelled, not fully refunded (a zero-value order
    /// counts). [SUGGESTED DEFAULT] 10.
    pub per_order: i64,
    /// Per review written. [SUGGESTED DEFAULT] 5.
    pub per_review: i64,
    /// Track events that are a sign-in. Default `Signed In`, `Signed Up`, `Logged In`
    /// (as the audience's `last_sign_in`).
    pub sign_in_events: Vec<String>,
    /// Track events that are a review written. Default `Product Reviewed`.
    pub review_events: Vec<String>,
}

impl Default for GrowthConfig {
    fn default() -> Self {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect();
        GrowthConfig {
            per_active_day: 1,
            per_sign_in_day: 1,
            per_order: 10,
            per_review: 5,
            sign_in_events: names(&["Signed In", "Signed Up", "Logged In"]),
            review_events: names(&["Product Reviewed"]),
        }
    }
}

/// The most growth one unit of activity may give (keeps a year's sum far from overflow).
const MAX_PER_UNIT: i64 = 1_000_000;

impl GrowthConfig {
    /// Refuses (`invalid_tier`) a negative amount or one above 1,000,000, and an empty
    /// event name.
    pub fn check(&self) -> Result<()> {
        let amounts = [
            self.per_active_day,
            self.per_sign_in_day,
            self.per_order,
            self.per_review,
        ];
        if amounts.iter().any(|a| !(0..=MAX_PER_UNIT).contains(a)) {
            return Err(Error::invalid(
                ErrorCode::InvalidTier,
                "growth per active day, sign-in day, order and review must be 0 to 1000000",
            ));
        }
        if self
            .sign_in_events
            .iter()
            .chain(&self.review_events)
            .any(|n| n.trim().is_empty())
        {
            return Err(Error::invalid(
                ErrorCode::InvalidTier,
                "growth event names must not be empty",
            ));
        }
        Ok(())
    }

    /// The growth of `activity`.
    pub fn growth(&self, a: &Activity) -> i64 {
        a.active_days * self.per_active_day
            + a.sign_in_days * self.per_sign_in_day
            + a.orders * self.per_order
            + a.reviews * self.per_review
    }
}

/// What a member did over the evaluation period, as growth counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Activity {
    /// Shop-local days with at least one customer event.
    pub active_days: i64,
    /// Shop-local days with a sign-in.
    pub sign_in_days: i64,
    /// Orders that count (paid, not cancelled, not fully refunded).
    pub orders: i64,
    /// Reviews written.
    pub reviews: i64,
}

impl Activity {
    /// Counts the shop-local days (in `tz`) of what the store read.
    pub fn of(m: &MemberActivity, tz: chrono_tz::Tz) -> Activity {
        let day = |ms: i64| from_millis(ms).with_timezone(&tz).date_naive();
        let active: BTreeSet<_> = m.slots.iter().map(|s| day(s.start)).collect();
        let signed: BTreeSet<_> = m
            .slots
            .iter()
            .filter(|s| s.signed_in)
            .map(|s| day(s.start))
            .collect();
        Activity {
            active_days: active.len() as i64,
            sign_in_days: signed.len() as i64,
            orders: m.orders,
            reviews: m.reviews,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_store::member_activity::Slot;

    fn slot(rfc: &str, signed_in: bool) -> Slot {
        let ms = chrono::DateTime::parse_from_rfc3339(rfc)
            .unwrap()
            .timestamp_millis();
        Slot {
            start: ms - ms.rem_euclid(flywheel_store::member_activity::SLOT_MS),
            signed_in,
        }
    }

    #[test]
    fn days_are_shop_local_and_growth_adds_up() {
        let m = MemberActivity {
            slots: vec![
                // 23:50 and 00:10 in Shanghai: two shop days, though one UTC day.
                slot("2025-03-01T15:50:00Z", false),
                slot("2025-03-01T16:10:00Z", true),
                slot("2025-03-01T20:00:00Z", true),
                slot("2025-03-05T02:00:00Z", false),
            ],
            reviews: 2,
            orders: 3,
        };
        let a = Activity::of(&m, chrono_tz::Asia::Shanghai);
        assert_eq!(
            a,
            Activity {
                active_days: 3,
                sign_in_days: 1,
                orders: 3,
                reviews: 2
            }
        );
        assert_eq!(GrowthConfig::default().growth(&a), 3 + 1 + 30 + 10);
        // In UTC the first three slots are one day.
        assert_eq!(Activity::of(&m, chrono_tz::UTC).active_days, 2);
    }

    #[test]
    fn bad_growth_config_is_refused() {
        GrowthConfig::default().check().unwrap();
        for f in [
            |g: &mut GrowthConfig| g.per_order = -1,
            |g: &mut GrowthConfig| g.per_review = MAX_PER_UNIT + 1,
            |g: &mut GrowthConfig| g.review_events.push(" ".into()),
        ] {
            let mut g = GrowthConfig::default();
            f(&mut g);
            assert_eq!(g.check().unwrap_err().code(), "invalid_tier");
        }
    }
}
