//! Referrals on SQLite and PostgreSQL: codes, anti-abuse (self-referral, one referral per
//! invitee, a daily cap, same-device flags), rewards on the first paid order only, once,
//! and claw-back on refund.

use std::sync::Arc;

use flywheel_core::time::{from_millis, parse_timestamp, to_millis};
use flywheel_core::FixedClock;
use flywheel_promotions::coupons::{CouponService, CouponState};
use flywheel_promotions::referral::{ReferralProgram, Referrals};
use flywheel_store::testing::stores;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codes_abuse_rules_rewards_and_claw_back() {
    for store in stores("ref").await {
        let t0 = to_millis(parse_timestamp("2024-11-11T10:00:00+08:00").unwrap());
        let clock = Arc::new(FixedClock::new(from_millis(t0)));
        let coupons = CouponService::new(store.clone(), clock.clone());
        let refs = Referrals::new(store, clock.clone(), coupons.clone());
        for id in ["邀請人獎勵", "新人獎勵"] {
            coupons
                .create_template(
                    serde_json::from_value(
                        json!({"id": id, "name": id, "benefit": {"type": "amount", "off": 1000},
                    "validity": {"type": "days_after_issue", "days": 30}}),
                    )
                    .unwrap(),
                )
                .await
                .unwrap();
        }
        let bad: ReferralProgram =
            serde_json::from_value(json!({"inviter_reward": {"coupon_template": "nope"}})).unwrap();
        assert_eq!(refs.set_program(bad).await.unwrap_err().code(), "invalid_program");
        refs.set_program(
            serde_json::from_value(json!({
            "inviter_reward": {"coupon_template": "邀請人獎勵", "points": 100},
            "invitee_reward": {"coupon_template": "新人獎勵"},
            "daily_cap": 2}))
            .unwrap(),
        )
        .await
        .unwrap();
        let code = refs.invite_code("alice").await.unwrap();
        assert_eq!(
            refs.invite_code("alice").await.unwrap(),
            code,
            "one code per inviter"
        );
        assert_eq!(
            refs.register(&code, "alice", None, None)
                .await
                .unwrap_err()
                .code(),
            "self_referral"
        );
        assert_eq!(
            refs.register("NOPE1234", "bob", None, None)
                .await
                .unwrap_err()
                .code(),
            "not_found"
        );
        let bob = refs
            .register(&code.to_lowercase(), "bob", Some("dev-1"), Some("1.2.3.4"))
            .await
            .unwrap();
        assert_eq!((bob.state.as_str(), bob.flags.len()), ("pending", 0));
        assert_eq!(
            refs.register(&code, "bob", None, None).await.unwrap_err().code(),
            "already_referred"
        );
        let carol = refs
            .register(&code, "carol", Some("dev-1"), Some("5.6.7.8"))
            .await
            .unwrap();
        assert_eq!(carol.flags, vec!["same_device"]);
        assert_eq!(
            refs.register(&code, "dave", None, None).await.unwrap_err().code(),
            "daily_cap"
        );
        // The next shop-local day the cap starts again.
        clock.set(from_millis(t0 + 14 * 3_600_000));
        refs.register(&code, "dave", None, None).await.unwrap();

        // Rewards on the first paid order, once; concurrent calls issue once.
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let refs = refs.clone();
                tokio::spawn(async move { refs.first_paid_order("bob", "o1").await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let r = refs.get("bob").await.unwrap();
        assert_eq!(r.state.as_str(), "rewarded");
        let rewards = r.rewards.clone().unwrap();
        assert_eq!(rewards["inviter"]["points"], 100);
        assert_eq!(
            coupons.coupons_of("alice").await.unwrap().len(),
            1,
            "the inviter's coupon is issued once"
        );
        assert_eq!(coupons.coupons_of("bob").await.unwrap().len(), 1);
        assert_eq!(
            refs.first_paid_order("bob", "o2").await.unwrap_err().code(),
            "already_rewarded"
        );
        // A flagged referral is held, not rewarded.
        assert_eq!(
            refs.first_paid_order("carol", "o3").await.unwrap().state.as_str(),
            "held"
        );
        assert!(coupons.coupons_of("carol").await.unwrap().is_empty());
        // Refund of the first order: unspent coupons are voided.
        let back = refs.claw_back("bob", "o1").await.unwrap();
        assert_eq!(back.state.as_str(), "clawed_back");
        assert_eq!(
            coupons.coupons_of("bob").await.unwrap()[0].state,
            CouponState::Void
        );
        assert_eq!(refs.of_inviter("alice").await.unwrap().len(), 3);
    }
}

/// A reward a failure interrupted after the claim (`rewarding`) is finished by the next
/// call with the same order, and each side's coupon is issued once however often the
/// step runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_reward_is_finished_once() {
    for store in stores("ref_resume").await {
        let clock = Arc::new(FixedClock::new(from_millis(1_700_000_000_000)));
        let coupons = CouponService::new(store.clone(), clock.clone());
        let refs = Referrals::new(store.clone(), clock.clone(), coupons.clone());
        coupons
            .create_template(
                serde_json::from_value(
                    json!({"id": "r", "name": "r", "benefit": {"type": "amount", "off": 500},
                    "validity": {"type": "days_after_issue", "days": 30}}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        refs.set_program(
            serde_json::from_value(json!({"inviter_reward": {"coupon_template": "r"},
                                          "invitee_reward": {"coupon_template": "r"}}))
            .unwrap(),
        )
        .await
        .unwrap();
        let code = refs.invite_code("alice").await.unwrap();
        refs.register(&code, "bob", None, None).await.unwrap();
        // The claim was written, then the process failed before any coupon.
        store
            .write_with(|c| {
                use flywheel_store::referrals::{transition, ReferralState as S};
                transition(c, "bob", S::Pending, S::Rewarding, Some("o1"), None, 1)
            })
            .await
            .unwrap();
        assert_eq!(refs.get("bob").await.unwrap().state.as_str(), "rewarding");
        let done = refs.first_paid_order("bob", "o1").await.unwrap();
        assert_eq!(done.state.as_str(), "rewarded");
        let again = refs.first_paid_order("bob", "o1").await.unwrap();
        assert_eq!(again.rewards, done.rewards);
        // The step issued once more by hand (as a retry would): still one coupon each.
        let c1 = coupons
            .issue_once("r", "bob", "referral", "referral:bob:invitee")
            .await
            .unwrap();
        assert_eq!(
            Some(json!(c1.id)),
            done.rewards.as_ref().map(|r| r["invitee"]["coupon"].clone())
        );
        for user in ["alice", "bob"] {
            assert_eq!(coupons.coupons_of(user).await.unwrap().len(), 1, "{user}");
        }
    }
}
