//! The points-for-coupon exchange on both backends, with a stand-in coupon issuer: a
//! retry answers the first answer, a key reused for another request is refused, and a
//! refusal by the issuer inside the transaction (sold out) rolls the spend back.

use flywheel_core::ErrorCode;
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{loyalty, stores};
use flywheel_core::Fen;
use flywheel_loyalty::{
    CouponIssuer, Error, ExchangeKey, ExchangeRequest, IssuedCoupon, IssuerFuture, PointsExchange,
};
use flywheel_store::conn::Conn;
use serde_json::json;

/// Issues `left` coupons, then refuses `sold_out`; refuses `not_in_audience` to "outsider".
struct Issuer {
    left: AtomicUsize,
    issued: AtomicUsize,
}

impl CouponIssuer for Issuer {
    fn admit<'a>(&'a self, _template_id: &'a str, user_id: &'a str) -> IssuerFuture<'a> {
        Box::pin(async move {
            if user_id == "outsider" {
                return Err(Error::conflict(ErrorCode::NotInAudience, "not in the audience"));
            }
            Ok(())
        })
    }

    fn issue_in(
        &self,
        _c: &mut dyn Conn,
        template_id: &str,
        user_id: &str,
        actor: &str,
        _now: i64,
    ) -> flywheel_loyalty::Result<IssuedCoupon> {
        if self.left.load(Ordering::SeqCst) == 0 {
            return Err(Error::conflict(ErrorCode::SoldOut, "sold out"));
        }
        self.left.fetch_sub(1, Ordering::SeqCst);
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        Ok(IssuedCoupon {
            id: format!("cpn-{n}"),
            json: json!({"id": format!("cpn-{n}"), "template_id": template_id, "owner": user_id, "actor": actor}),
        })
    }
}

fn req(user: &str, points: i64) -> ExchangeRequest {
    ExchangeRequest {
        user_id: user.into(),
        template_id: "t".into(),
        points,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_exchange_per_key_and_refusals_roll_back() {
    for store in stores("exchange").await {
        let (l, _) = loyalty(store, "2025-03-01T10:00:00+08:00");
        l.earn_order("u1", "o-1", Fen(100_000)).await.unwrap();
        let issuer = Arc::new(Issuer {
            left: AtomicUsize::new(2),
            issued: AtomicUsize::new(0),
        });
        let ex = PointsExchange::new(l.clone(), issuer.clone());
        let k1 = ExchangeKey::parse("k-1").unwrap();
        let first = ex.exchange(&k1, req("u1", 300)).await.unwrap();
        assert!(!first.replayed);
        assert_eq!(first.response["coupon"]["actor"], "exchange:k-1");
        assert_eq!(first.response["points"]["balance"], 700);
        let again = ex.exchange(&k1, req("u1", 300)).await.unwrap();
        assert_eq!((again.replayed, &again.response), (true, &first.response));
        assert_eq!(issuer.issued.load(Ordering::SeqCst), 1);
        for other in [req("u1", 200), req("u2", 300)] {
            let e = ex.exchange(&k1, other).await.unwrap_err();
            assert_eq!(e.code(), "idempotency_key_reused");
        }
        // Refusals write nothing.
        let k2 = ExchangeKey::parse("k-2").unwrap();
        assert_eq!(
            ex.exchange(&k2, req("u1", 5000)).await.unwrap_err().code(),
            "insufficient_points"
        );
        assert_eq!(
            ex.exchange(&k2, req("outsider", 1)).await.unwrap_err().code(),
            "not_in_audience"
        );
        ex.exchange(&k2, req("u1", 100)).await.unwrap();
        // The issuer refuses inside the transaction: the spend is rolled back.
        let k3 = ExchangeKey::parse("k-3").unwrap();
        assert_eq!(
            ex.exchange(&k3, req("u1", 100)).await.unwrap_err().code(),
            "sold_out"
        );
        let b = l.balance("u1", None, 50).await.unwrap();
        assert_eq!(b.balance, 600);
        assert_eq!(
            b.entries
                .iter()
                .filter(|e| e.source.as_str() == "exchange")
                .count(),
            2
        );
        for bad in ["", "has space", "中文", &"x".repeat(256)] {
            assert_eq!(
                ExchangeKey::parse(bad).unwrap_err().code(),
                "invalid_idempotency_key"
            );
        }
    }
}
