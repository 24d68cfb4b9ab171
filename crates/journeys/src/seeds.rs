//! The seed journey templates shipped with Flywheel (issue 6 §7, docs/journeys.md):
//! welcome series, cart abandonment for 潛力客戶, win-back after 3 calendar months
//! without a sign-in, new arrivals for 高價值客戶, birthday benefits and coupon expiry
//! reminders, with the coupon templates they issue. `flywheel journey install` saves
//! them as drafts.

use crate::definition::{DefinitionError, Journey};

/// The seed journeys' JSON, by file name.
pub const JOURNEYS: [(&str, &str); 6] = [
    ("welcome", include_str!("../seeds/welcome.json")),
    ("cart_abandonment", include_str!("../seeds/cart_abandonment.json")),
    ("win_back", include_str!("../seeds/win_back.json")),
    ("new_arrivals", include_str!("../seeds/new_arrivals.json")),
    ("birthday", include_str!("../seeds/birthday.json")),
    ("coupon_expiry", include_str!("../seeds/coupon_expiry.json")),
];

/// The coupon templates the seed journeys issue (a JSON array of coupon templates).
pub const COUPON_TEMPLATES: &str = include_str!("../seeds/coupons.json");

/// The seed journeys, parsed.
pub fn journeys() -> Result<Vec<Journey>, DefinitionError> {
    JOURNEYS
        .iter()
        .map(|(_, text)| Journey::from_json(text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{Action, DateKind, Trigger};

    fn coupon_templates() -> Result<Vec<flywheel_promotions::coupons::CouponTemplate>, serde_json::Error> {
        serde_json::from_str(COUPON_TEMPLATES)
    }

    #[test]
    fn every_seed_is_valid_and_issues_only_shipped_coupons() {
        let coupons = coupon_templates().unwrap();
        for t in &coupons {
            t.check().unwrap();
        }
        let ids: Vec<&str> = coupons.iter().map(|t| t.id.as_str()).collect();
        for (file, j) in JOURNEYS.iter().zip(journeys().unwrap()) {
            assert_eq!(file.0, j.name, "file name is the journey name");
            j.validate(&crate::engine::catalog())
                .unwrap_or_else(|e| panic!("{}: {e}", j.name));
            for s in &j.steps {
                if let Action::Coupon { template, .. } = &s.action {
                    assert!(ids.contains(&template.as_str()), "{}: {template}", j.name);
                }
            }
        }
    }

    #[test]
    fn seeds_follow_the_seed_rules() {
        let all = journeys().unwrap();
        let by = |n: &str| all.iter().find(|j| j.name == n).unwrap();
        // F7: 10 元 no-threshold coupon at registration, once.
        let welcome = coupon_templates()
            .unwrap()
            .into_iter()
            .find(|t| t.id == "seed_welcome_10")
            .unwrap();
        assert_eq!(
            welcome.benefit,
            flywheel_promotions::rules::CouponBenefit::Amount {
                off: flywheel_core::Fen(1000),
                min_spend: None
            }
        );
        assert!(matches!(&by("welcome").trigger, Trigger::Event(e) if e.name == "Signed Up"));
        // R3.5: 3 calendar months without a sign-in.
        assert!(
            matches!(&by("win_back").trigger, Trigger::Date(d) if d.date == DateKind::NoSignIn { months: 3 })
        );
        // F14: 3 days' lead time.
        assert!(
            matches!(&by("coupon_expiry").trigger, Trigger::Date(d) if d.date == DateKind::CouponExpiry && d.days_before == 3)
        );
        assert_eq!(by("cart_abandonment").key.as_deref(), Some("cart_id"));
    }

    #[test]
    fn seed_messages_render_with_and_without_a_coupon() {
        let nulls = serde_json::json!({"id": null, "code": null, "name": null, "value_yuan": null, "threshold_yuan": null, "expires_at": null});
        let coupon = serde_json::json!({"id": "c1", "code": "ABC", "name": "券", "value_yuan": "10.00", "threshold_yuan": "0.00", "expires_at": "2026-12-30T00:00:00+08:00"});
        for j in journeys().unwrap() {
            for s in &j.steps {
                let Action::Send(send) = &s.action else { continue };
                let t = send.template(&crate::engine::catalog()).unwrap();
                for c in [&nulls, &coupon] {
                    let vars = serde_json::json!({
                        "profile": {"id": "u1", "name": null, "email": "a@b.c", "phone": null, "gender": null, "region": null, "city": null, "birthday": null, "age_band": null},
                        "traits": {}, "tags": [], "coupon": c,
                        "points": {"balance": 0, "expiring": null, "expiring_at": null},
                        "tier": {"name": null, "next": null, "spend_to_next_yuan": null},
                        "cart": {"items": [], "total_yuan": null, "url": null},
                        "shop": {"name": "店", "url": "https://shop.example"},
                        "links": {"unsubscribe": "https://x/u", "view_in_browser": null, "open_pixel": null},
                        "journey": {"name": j.name, "step": s.id}, "run": {"key": ""}, "event": {},
                        "perk": {"tier": null, "value_yuan": null}
                    });
                    let r = t
                        .render(&vars)
                        .unwrap_or_else(|e| panic!("{}/{}: {e}", j.name, s.id));
                    assert!(!r.text.is_empty());
                }
            }
        }
    }
}
