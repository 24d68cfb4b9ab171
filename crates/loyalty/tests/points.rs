//! The points ledger on both backends (R7.3, F16): sources, idempotency, share cap,
//! FIFO expiry at the exact boundary, spends, claw-backs, check-in streaks in shop-local
//! days, and 50 concurrent spends on a 100-point balance.

use flywheel_core::ErrorCode;
mod common;

use std::sync::Arc;

use common::{at, loyalty, stores, DAY};
use flywheel_core::time::{from_millis, to_millis};
use flywheel_core::Fen;
use flywheel_loyalty::{EntryKind, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn f16_four_sources_make_four_credit_entries() {
    for store in stores("f16").await {
        let (l, _) = loyalty(store, "2025-03-01T10:00:00+08:00");
        let order = l.earn_order("u1", "o-1", Fen(12_345)).await.unwrap();
        assert_eq!(
            order.entry.as_ref().unwrap().points,
            123,
            "1 point per 元, rounded down"
        );
        assert_eq!(l.check_in("u1").await.unwrap().entry.unwrap().points, 5);
        assert_eq!(l.review("u1", "rv-1").await.unwrap().entry.unwrap().points, 10);
        let share = l.share("u1", "sh-1").await.unwrap();
        assert_eq!(share.entry.unwrap().points, 5);
        assert_eq!(share.balance, 143);
        // Browsing has no ledger operation: nothing else wrote entries.
        let b = l.balance("u1", None, 50).await.unwrap();
        assert_eq!(b.balance, 143);
        assert_eq!(b.entries.len(), 4);
        assert!(b
            .entries
            .iter()
            .all(|e| e.kind == EntryKind::Earn && e.points > 0));
        let mut sources: Vec<&str> = b.entries.iter().map(|e| e.source.as_str()).collect();
        sources.sort();
        assert_eq!(sources, ["checkin", "order", "review", "share"]);
        assert_eq!(b.lots.len(), 4);
        assert!(b
            .lots
            .iter()
            .all(|lot| lot.expires_at == at("2026-03-01T10:00:00+08:00")));
        // An order under 1 元 earns nothing and writes nothing.
        let tiny = l.earn_order("u1", "o-tiny", Fen(99)).await.unwrap();
        assert!(tiny.entry.is_none());
        assert_eq!(l.balance("u1", None, 50).await.unwrap().entries.len(), 4);
        // Entries page newest first.
        let p1 = l.balance("u1", None, 3).await.unwrap();
        assert_eq!(p1.entries.len(), 3);
        let p2 = l.balance("u1", p1.next_cursor.as_deref(), 3).await.unwrap();
        assert_eq!(p2.entries.len(), 1);
        assert!(p2.next_cursor.is_none());
        assert_eq!(p2.entries[0].source.as_str(), "order");
        assert_eq!(
            l.balance("u1", Some("x"), 3).await.unwrap_err().code(),
            "invalid_cursor"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_source_is_idempotent() {
    for store in stores("idem").await {
        let (l, clock) = loyalty(store, "2025-03-01T10:00:00+08:00");
        let first = [
            l.earn_order("u", "o-1", Fen(10_000)).await.unwrap(),
            l.check_in("u").await.unwrap(),
            l.review("u", "rv").await.unwrap(),
            l.share("u", "sh").await.unwrap(),
            l.spend("u", 30, "redeem-1").await.unwrap(),
        ];
        clock.set(at("2025-03-01T11:00:00+08:00"));
        let again = [
            l.earn_order("u", "o-1", Fen(10_000)).await.unwrap(),
            l.check_in("u").await.unwrap(),
            l.review("u", "rv").await.unwrap(),
            l.share("u", "sh").await.unwrap(),
            l.spend("u", 30, "redeem-1").await.unwrap(),
        ];
        for (a, b) in first.iter().zip(&again) {
            assert!(!a.repeated && b.repeated);
            assert_eq!(a.entry, b.entry, "a repeat answers the first result");
            assert_eq!(b.balance, 90);
        }
        let c1 = l.claw_back_order("u", "o-1").await.unwrap();
        let c2 = l.claw_back_order("u", "o-1").await.unwrap();
        assert!(c2.repeated);
        assert_eq!(c1.entry, c2.entry);
        assert_eq!(c2.balance, 0, "100 points clawed back from 90: 0 left");
        assert_eq!(c2.entry.as_ref().unwrap().shortfall, Some(10));
        let b = l.balance("u", None, 100).await.unwrap();
        assert_eq!(b.entries.len(), 6);
        // Same key, other amount or other user: refused, nothing written.
        assert_eq!(
            l.spend("u", 31, "redeem-1").await.unwrap_err().code(),
            "key_reused"
        );
        assert_eq!(l.review("v", "rv").await.unwrap_err().code(), "source_key_taken");
        assert_eq!(
            l.claw_back_order("v", "o-1").await.unwrap_err().code(),
            "source_key_taken"
        );
        assert_eq!(l.balance("u", None, 100).await.unwrap().entries.len(), 6);
        assert_eq!(l.balance("v", None, 100).await.unwrap().entries.len(), 0);
        // Bad input.
        assert_eq!(
            l.earn_order("u", "o-2", Fen(-1)).await.unwrap_err().code(),
            "negative_amount"
        );
        assert_eq!(l.spend("u", 0, "k").await.unwrap_err().code(), "invalid_points");
        assert_eq!(l.review("", "r").await.unwrap_err().code(), "invalid_id");
        // An order that earned nothing has nothing to claw back.
        assert!(l.claw_back_order("u", "never").await.unwrap().entry.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shares_are_capped_per_shop_local_day() {
    for store in stores("shares").await {
        let (l, clock) = loyalty(store, "2025-03-01T23:00:00+08:00");
        for i in 0..3 {
            l.share("u", &format!("s{i}")).await.unwrap();
        }
        let capped = l.share("u", "s3").await.unwrap_err();
        assert!(matches!(
            capped,
            Error::Conflict {
                code: ErrorCode::ShareCapReached,
                ..
            }
        ));
        assert!(
            l.share("u", "s0").await.unwrap().repeated,
            "a repeat still answers"
        );
        clock.set(at("2025-03-02T00:00:01+08:00"));
        assert_eq!(l.share("u", "s3").await.unwrap().balance, 20);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lots_expire_first_in_first_out_at_the_exact_boundary() {
    for store in stores("expiry").await {
        let (l, clock) = loyalty(store, "2025-01-01T12:00:00+08:00");
        let t0 = to_millis(at("2025-01-01T12:00:00+08:00"));
        let a = l.earn_order("u", "A", Fen(10_000)).await.unwrap().entry.unwrap();
        let expires = t0 + 365 * DAY;
        assert_eq!(a.lot_expires_at, Some(from_millis(expires)));
        clock.set(from_millis(t0 + 10 * DAY));
        l.earn_order("u", "B", Fen(5_000)).await.unwrap();
        // One millisecond before: lot A is still usable; the spend takes A first.
        clock.set(from_millis(expires - 1));
        let b = l.balance("u", None, 10).await.unwrap();
        assert_eq!(b.balance, 150);
        l.spend("u", 30, "s1").await.unwrap();
        let lots = l.balance("u", None, 10).await.unwrap().lots;
        assert_eq!(lots.iter().map(|x| x.left).collect::<Vec<_>>(), [70, 50]);
        // At the instant: A's 70 are gone from the view before anything is written.
        clock.set(from_millis(expires));
        let b = l.balance("u", None, 10).await.unwrap();
        assert_eq!((b.balance, b.lots.len()), (50, 1));
        assert!(b.entries.iter().all(|e| e.kind != EntryKind::Expire));
        let short = l.spend("u", 51, "s2").await.unwrap_err();
        assert_eq!(short.code(), "insufficient_points");
        assert!(
            l.balance("u", None, 10)
                .await
                .unwrap()
                .entries
                .iter()
                .all(|e| e.kind != EntryKind::Expire),
            "a refusal writes nothing, not even the expiry"
        );
        // The sweep writes the expiry once, keyed by the lot.
        assert_eq!(l.expire_due(from_millis(expires)).await.unwrap(), 1);
        assert_eq!(l.expire_due(from_millis(expires)).await.unwrap(), 0);
        let b = l.balance("u", None, 10).await.unwrap();
        let exp = b.entries.iter().find(|e| e.kind == EntryKind::Expire).unwrap();
        assert_eq!(
            (exp.points, exp.source_key.clone()),
            (-70, format!("expire:{}", a.id))
        );
        assert_eq!(b.balance, 50);

        // Touching a user's ledger writes their due expiries too.
        clock.set(from_millis(t0));
        l.review("w", "r1").await.unwrap();
        clock.set(from_millis(expires));
        l.check_in("w").await.unwrap();
        let b = l.balance("w", None, 10).await.unwrap();
        assert_eq!(b.balance, 5);
        assert_eq!(
            b.entries.iter().filter(|e| e.kind == EntryKind::Expire).count(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claw_back_reverses_an_order_and_records_a_shortfall() {
    for store in stores("clawback").await {
        let (l, _) = loyalty(store, "2025-05-01T12:00:00+08:00");
        // Untouched points: exactly reversed.
        l.review("a", "r").await.unwrap();
        l.earn_order("a", "o1", Fen(20_000)).await.unwrap();
        let c = l.claw_back_order("a", "o1").await.unwrap();
        let e = c.entry.unwrap();
        assert_eq!(
            (e.points, e.kind, e.shortfall, c.balance),
            (-200, EntryKind::Clawback, Some(0), 10)
        );
        assert_eq!(l.balance("a", None, 10).await.unwrap().lots.len(), 1);

        // Points already spent: what is left is taken back, never below 0.
        l.earn_order("b", "o2", Fen(20_000)).await.unwrap();
        l.review("b", "r2").await.unwrap();
        l.spend("b", 150, "gift").await.unwrap();
        let c = l.claw_back_order("b", "o2").await.unwrap();
        let e = c.entry.unwrap();
        assert_eq!((e.points, e.shortfall, c.balance), (-60, Some(140), 0));
        assert!(l.balance("b", None, 10).await.unwrap().lots.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_in_streaks_count_shop_local_days() {
    for store in stores("streak").await {
        let (l, clock) = loyalty(store, "2025-06-01T23:59:00+08:00");
        let d1 = l.check_in("u").await.unwrap().entry.unwrap();
        assert_eq!((d1.points, d1.streak), (5, Some(1)));
        // Two minutes later is the next shop-local day (though the same UTC day).
        clock.set(at("2025-06-02T00:01:00+08:00"));
        let d2 = l.check_in("u").await.unwrap().entry.unwrap();
        assert_eq!((d2.points, d2.streak), (5, Some(2)));
        assert!(l.check_in("u").await.unwrap().repeated);
        for day in 3..=7 {
            clock.set(at(&format!("2025-06-{day:02}T09:00:00+08:00")));
            let e = l.check_in("u").await.unwrap().entry.unwrap();
            assert_eq!(e.streak, Some(day));
            assert_eq!(e.points, if day == 7 { 25 } else { 5 }, "day {day}");
        }
        clock.set(at("2025-06-08T09:00:00+08:00"));
        assert_eq!(l.check_in("u").await.unwrap().entry.unwrap().points, 5);
        // 9 June missed: the streak starts again.
        clock.set(at("2025-06-10T09:00:00+08:00"));
        let e = l.check_in("u").await.unwrap().entry.unwrap();
        assert_eq!((e.streak, e.points), (Some(1), 5));
        assert_eq!(l.balance("u", None, 50).await.unwrap().balance, 8 * 5 + 20 + 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_concurrent_spends_of_ten_on_one_hundred_succeed_ten_times() {
    for store in stores("race").await {
        let (l, _) = loyalty(store, "2025-05-01T12:00:00+08:00");
        l.earn_order("u", "o", Fen(10_000)).await.unwrap();
        let l = Arc::new(l);
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let l = l.clone();
                tokio::spawn(async move { l.spend("u", 10, &format!("k{i}")).await })
            })
            .collect();
        let (mut ok, mut short) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) if e.code() == "insufficient_points" => short += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!((ok, short), (10, 40));
        let b = l.balance("u", None, 100).await.unwrap();
        assert_eq!((b.balance, b.entries.len(), b.lots.len()), (0, 11, 0));
    }
}

/// Many orders' points in one transaction (the order hooks): the same answers as one at
/// a time — a refused order answered alone while the others post, a repeat answered
/// with its first posting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_earn_in_one_transaction_like_one_at_a_time() {
    for store in stores("earn_orders").await {
        let (l, _) = loyalty(store, "2025-03-01T10:00:00+08:00");
        let first = l.earn_order("u1", "o-1", Fen(10_000)).await.unwrap();
        let answers = l
            .earn_orders(vec![
                ("u1".into(), "o-1".into(), Fen(10_000)), // a repeat
                ("u1".into(), "o-2".into(), Fen(25_050)),
                ("u2".into(), "o-3".into(), Fen(-1)), // refused
                ("".into(), "o-4".into(), Fen(100)),  // refused: no user
                ("u2".into(), "o-5".into(), Fen(99)), // under 1 元: nothing
                ("u2".into(), "o-6".into(), Fen(30_000)),
            ])
            .await;
        assert_eq!(answers.len(), 6);
        let repeat = answers[0].as_ref().unwrap();
        assert!(repeat.repeated);
        assert_eq!(
            repeat.entry.as_ref().map(|e| e.id),
            first.entry.as_ref().map(|e| e.id)
        );
        assert_eq!(answers[1].as_ref().unwrap().entry.as_ref().unwrap().points, 250);
        assert_eq!(answers[1].as_ref().unwrap().balance, 350);
        assert_eq!(answers[2].as_ref().unwrap_err().code(), "negative_amount");
        assert!(answers[3].is_err());
        assert!(answers[4].as_ref().unwrap().entry.is_none());
        assert_eq!(answers[5].as_ref().unwrap().balance, 300);
        assert_eq!(l.balance("u1", None, 50).await.unwrap().entries.len(), 2);
        assert_eq!(l.balance("u2", None, 50).await.unwrap().balance, 300);
    }
}
