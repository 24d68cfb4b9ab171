//! One behavioural suite every [`CapReservations`] backend passes (in-process and Redis);
//! `tag` keeps one run's keys apart from any other's.

use std::sync::Arc;

use flywheel_core::Timestamp;

use super::{CapReservations, CapSlot, Reserved};

fn now() -> Timestamp {
    chrono::Utc::now()
}

pub(crate) fn slot(tag: &str, name: &str, limit: u32, counted: &[&str]) -> CapSlot {
    CapSlot {
        key: format!("cap:all:day:{tag}:{name}"),
        limit,
        until: now() + chrono::Duration::hours(1),
        counted: counted.iter().map(|s| s.to_string()).collect(),
    }
}

/// Two instances (as two processes would have) and 40 senders at once, each with its
/// own message, for a cap of 1: exactly one gets the slot.
pub(crate) async fn one_slot_many_senders(
    a: Arc<dyn CapReservations>,
    b: Arc<dyn CapReservations>,
    tag: &str,
) {
    let s = slot(tag, "crowd", 1, &[]);
    let tasks: Vec<_> = (0..40u32)
        .map(|i| {
            let caps = if i.is_multiple_of(2) { a.clone() } else { b.clone() };
            let s = s.clone();
            tokio::spawn(async move {
                caps.reserve(&format!("msg{i}"), std::slice::from_ref(&s), now())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut held = 0;
    for t in tasks {
        if t.await.unwrap() == Reserved::Held {
            held += 1;
        }
    }
    assert_eq!(held, 1, "one slot, one message");
}

/// The same message reserving again keeps its one slot; a release frees it; messages
/// the store logged count without being reserved.
pub(crate) async fn retry_release_and_counted(caps: &dyn CapReservations, tag: &str) {
    let two = [slot(tag, "retry", 2, &[])];
    assert_eq!(caps.reserve("m1", &two, now()).await.unwrap(), Reserved::Held);
    for _ in 0..3 {
        assert_eq!(caps.reserve("m1", &two, now()).await.unwrap(), Reserved::Held);
    }
    assert_eq!(caps.reserve("m2", &two, now()).await.unwrap(), Reserved::Held);
    assert_eq!(caps.reserve("m3", &two, now()).await.unwrap(), Reserved::Full(0));
    caps.release("m2", &two).await.unwrap();
    assert_eq!(caps.reserve("m3", &two, now()).await.unwrap(), Reserved::Held);
    assert_eq!(caps.reserve("m1", &two, now()).await.unwrap(), Reserved::Held);

    // A logged message fills the slot (as after a restart that lost the reservations),
    // and is itself let through when tried again.
    let logged = [slot(tag, "logged", 1, &["sent-before"])];
    assert_eq!(
        caps.reserve("m4", &logged, now()).await.unwrap(),
        Reserved::Full(0)
    );
    assert_eq!(
        caps.reserve("sent-before", &logged, now()).await.unwrap(),
        Reserved::Held
    );
}

/// A message takes a slot in every cap or in none.
pub(crate) async fn all_or_none(caps: &dyn CapReservations, tag: &str) {
    let day = slot(tag, "day", 1, &[]);
    let week = slot(tag, "week", 1, &["other"]);
    assert_eq!(
        caps.reserve("m1", &[day.clone(), week], now()).await.unwrap(),
        Reserved::Full(1)
    );
    // The day's slot was not taken by m1.
    assert_eq!(caps.reserve("m2", &[day], now()).await.unwrap(), Reserved::Held);
}
