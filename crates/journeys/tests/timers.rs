//! Durable timers and once-only effects on every store backend (SQLite, PostgreSQL).

use std::collections::BTreeSet;

use flywheel_store::testing::stores;
use flywheel_store::timers;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_fire_when_due_lease_lapses_and_complete() {
    for s in stores("timers_lifecycle").await {
        let (first, again, early, at_due, while_leased, after_lease, next) = s
            .write_with(|c| {
                let first = timers::schedule(c, "run1/wait", 1_000, r#"{"step":"wait"}"#, 0)?;
                let again = timers::schedule(c, "run1/wait", 5_000, "{}", 0)?;
                let early = timers::claim_due(c, 999, 100, 10)?;
                let at_due = timers::claim_due(c, 1_000, 100, 10)?;
                let while_leased = timers::claim_due(c, 1_099, 100, 10)?;
                let after_lease = timers::claim_due(c, 1_100, 100, 10)?;
                let next = timers::next_due(c)?;
                Ok((first, again, early, at_due, while_leased, after_lease, next))
            })
            .await
            .unwrap();
        assert!(first && !again, "scheduling is idempotent by key");
        assert!(early.is_empty(), "1 ms before due nothing fires");
        assert_eq!(at_due.len(), 1);
        assert_eq!(at_due[0].payload, r#"{"step":"wait"}"#);
        assert_eq!(at_due[0].attempts, 1);
        assert!(while_leased.is_empty(), "a leased timer is not claimed twice");
        assert_eq!(after_lease.len(), 1, "a lapsed lease is claimed again");
        assert_eq!(after_lease[0].attempts, 2);
        assert_eq!(next, Some(1_000));
        let (moved, claimed_early, claimed, done, done_again, left) = s
            .write_with(|c| {
                let moved = timers::reschedule(c, "run1/wait", 8_000)?;
                let claimed_early = timers::claim_due(c, 7_999, 100, 10)?.len();
                let claimed = timers::claim_due(c, 8_000, 100, 10)?.len();
                let done = timers::complete(c, "run1/wait")?;
                let done_again = timers::complete(c, "run1/wait")?;
                Ok((moved, claimed_early, claimed, done, done_again, timers::count(c)?))
            })
            .await
            .unwrap();
        assert!(moved && done && !done_again);
        assert_eq!((claimed_early, claimed, left), (0, 1, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_take_each_timer_once() {
    for s in stores("timers_concurrent").await {
        s.write_with(|c| {
            for i in 0..300 {
                timers::schedule(c, &format!("run{i}/wait"), i, "{}", 0)?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let mut workers = Vec::new();
        for _ in 0..4 {
            let s = s.clone();
            workers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = s
                        .write_with(|c| timers::claim_due(c, 10_000, 60_000, 7))
                        .await
                        .unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|t| t.key));
                }
            }));
        }
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.unwrap());
        }
        let distinct: BTreeSet<_> = all.iter().collect();
        assert_eq!(all.len(), 300, "every timer claimed exactly once");
        assert_eq!(distinct.len(), 300);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_effect_is_recorded_once() {
    for s in stores("timers_effects").await {
        let (a, b, result, missing) = s
            .write_with(|c| {
                let a = timers::record_effect(c, "run1/send", r#"{"message":"m1"}"#, 5)?;
                let b = timers::record_effect(c, "run1/send", r#"{"message":"m2"}"#, 6)?;
                Ok((
                    a,
                    b,
                    timers::effect(c, "run1/send")?,
                    timers::effect(c, "run2/send")?,
                ))
            })
            .await
            .unwrap();
        assert!(a && !b);
        assert_eq!(result.as_deref(), Some(r#"{"message":"m1"}"#));
        assert_eq!(missing, None);
    }
}
