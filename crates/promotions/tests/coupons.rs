//! The coupon life cycle on a real store (SQLite in a temporary file and PostgreSQL in a
//! fresh schema): limits, codes, reservation, idempotent redemption under 200 concurrent
//! requests, refunds, expiry and the audit trail.

use std::sync::Arc;

use flywheel_core::time::{from_millis, parse_timestamp, to_millis};
use flywheel_core::FixedClock;
use flywheel_promotions::coupons::{CouponService, CouponState, CouponTemplate};
use flywheel_promotions::Error;
use flywheel_store::testing::stores;
use serde_json::json;

const DAY: i64 = 86_400_000;

fn t0() -> i64 {
    to_millis(parse_timestamp("2024-11-11T00:00:00+08:00").unwrap())
}

fn template(id: &str, extra: serde_json::Value) -> CouponTemplate {
    let mut v = json!({"id": id, "name": "新人10元無門檻券", "benefit": {"type": "amount", "off": 1000},
                       "validity": {"type": "days_after_issue", "days": 7}});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    serde_json::from_value(v).unwrap()
}

fn code_of(e: &Error) -> &'static str {
    e.code().as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_codes_reservation_refund_expiry_and_audit() {
    for store in stores("life").await {
        let clock = Arc::new(FixedClock::new(from_millis(t0())));
        let svc = CouponService::new(store, clock.clone());
        svc.create_template(template(
            "welcome",
            json!({"total_quantity": 3, "per_user_limit": 1}),
        ))
        .await
        .unwrap();
        let dup = svc
            .create_template(template("welcome", json!({})))
            .await
            .unwrap_err();
        assert_eq!(code_of(&dup), "template_exists");
        let bad = svc
            .create_template(template("bad", json!({"benefit": {"type": "amount", "off": -1}})))
            .await
            .unwrap_err();
        assert_eq!(code_of(&bad), "invalid_template");

        let a = svc.issue("welcome", "alice", "admin").await.unwrap();
        assert_eq!(a.state, CouponState::Issued);
        assert_eq!(
            code_of(&svc.issue("welcome", "alice", "admin").await.unwrap_err()),
            "per_user_limit"
        );
        svc.issue("welcome", "bob", "journey:welcome").await.unwrap();
        let codes = svc.generate_codes("welcome", 1, "admin").await.unwrap();
        assert_eq!(codes[0].len(), 12);
        assert_eq!(
            code_of(&svc.issue("welcome", "carol", "admin").await.unwrap_err()),
            "sold_out"
        );
        assert_eq!(
            code_of(&svc.generate_codes("welcome", 1, "admin").await.unwrap_err()),
            "sold_out"
        );
        assert!(matches!(
            svc.issue("nope", "x", "admin").await,
            Err(Error::NotFound(_))
        ));

        // A code: claimed once, by one user; lower case works; unknown codes are not found.
        let claimed = svc.claim(&codes[0].to_lowercase(), "carol").await.unwrap();
        assert_eq!(claimed.owner.as_deref(), Some("carol"));
        assert_eq!(
            svc.claim(&codes[0], "carol").await.unwrap().id,
            claimed.id,
            "claiming again is idempotent"
        );
        assert_eq!(
            code_of(&svc.claim(&codes[0], "dave").await.unwrap_err()),
            "already_claimed"
        );
        assert!(matches!(
            svc.claim("ZZZZZZZZZZZZ", "dave").await,
            Err(Error::NotFound(_))
        ));

        // Reserve at checkout, redeem, retry, refund (restored), other user's coupon.
        assert_eq!(
            code_of(&svc.redeem(&a.id, "bob", "o1").await.unwrap_err()),
            "not_owner"
        );
        let r = svc.reserve(&a.id, "alice", "o1", 15 * 60_000).await.unwrap();
        assert_eq!(r.state, CouponState::Reserved);
        assert_eq!(
            code_of(&svc.reserve(&a.id, "alice", "o2", 60_000).await.unwrap_err()),
            "reserved"
        );
        assert_eq!(
            code_of(&svc.redeem(&a.id, "alice", "o2").await.unwrap_err()),
            "reserved"
        );
        // The reservation lapses after its hold time: another order may take it.
        clock.set(from_millis(t0() + 16 * 60_000));
        assert_eq!(
            svc.coupons_of("alice").await.unwrap()[0].state,
            CouponState::Issued
        );
        let red = svc.redeem(&a.id, "alice", "o2").await.unwrap();
        assert_eq!(
            (red.state, red.order_id.as_deref()),
            (CouponState::Redeemed, Some("o2"))
        );
        assert_eq!(
            svc.redeem(&a.id, "alice", "o2").await.unwrap().state,
            CouponState::Redeemed,
            "a retry answers the same"
        );
        assert_eq!(
            code_of(&svc.redeem(&a.id, "alice", "o3").await.unwrap_err()),
            "already_redeemed"
        );
        let back = svc.refund(&a.id, "o2").await.unwrap();
        assert_eq!(back.state, CouponState::Issued);
        // Past its 7 days it has expired and cannot be reserved.
        clock.set(from_millis(t0() + 7 * DAY));
        assert_eq!(
            code_of(&svc.reserve(&a.id, "alice", "o4", 60_000).await.unwrap_err()),
            "expired"
        );
        let trail: Vec<String> = svc
            .audit(&a.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action.to_string())
            .collect();
        assert_eq!(trail, ["issued", "reserved", "redeemed", "returned"]);
        let templates = svc.templates().await.unwrap();
        assert_eq!(templates[0].1, 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_redemptions_of_one_coupon_succeed_once() {
    for store in stores("race").await {
        let clock = Arc::new(FixedClock::new(from_millis(t0())));
        let svc = CouponService::new(store, clock);
        svc.create_template(template("once", json!({}))).await.unwrap();
        let c = svc.issue("once", "u", "admin").await.unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (svc, id) = (svc.clone(), c.id.clone());
                tokio::spawn(async move { svc.redeem(&id, "u", &format!("order-{i}")).await })
            })
            .collect();
        let mut ok = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(c) => ok.push(c.order_id),
                Err(e) => assert!(matches!(code_of(&e), "already_redeemed"), "{e}"),
            }
        }
        assert_eq!(ok.len(), 1, "exactly one redemption wins");
        // 200 retries of one order: all answer success, the coupon is spent once.
        let d = svc.issue("once", "v", "admin").await.unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (svc, id) = (svc.clone(), d.id.clone());
                tokio::spawn(async move { svc.redeem(&id, "v", "same-order").await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().state, CouponState::Redeemed);
        }
        let redeemed = svc
            .audit(&d.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action.as_str() == "redeemed")
            .count();
        assert_eq!(redeemed, 1);
    }
}
