//! One behavioural suite, run against every backend: SQLite in a temporary file and
//! PostgreSQL (FLYWHEEL_TEST_PG, default postgres://postgres@127.0.0.1:5432/test) in a
//! fresh schema per test. With CI=true an unreachable PostgreSQL fails the run instead
//! of skipping.

use std::sync::atomic::{AtomicUsize, Ordering};

use flywheel_core::time::parse_timestamp;
use flywheel_core::{
    Event, EventKind, Fen, Identity, Order, OrderAdjustment, OrderAdjustmentKind, OrderStatus,
};
use flywheel_store::{KeyScope, NewEvent, Store, StoreConfig, Synchronous, Table};
use serde_json::{json, Map, Value};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(name: &str) -> String {
    format!(
        "t{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        name
    )
}

/// An empty temporary directory: a process id comes back in a later run, so whatever a
/// dead process left under the same name is removed first.
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("flywheel-store-{}", unique(name)));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn sqlite(name: &str) -> Store {
    let dir = fresh_dir(name);
    let cfg = StoreConfig::from_url(None, &dir, Synchronous::Normal).unwrap();
    Store::open(cfg).await.unwrap()
}

async fn postgres(name: &str) -> Option<Store> {
    let base = std::env::var("FLYWHEEL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let url = format!("{base}?schema={}", unique(name));
    match Store::open(
        StoreConfig::from_url(Some(&url), std::path::Path::new("."), Synchronous::Normal).unwrap(),
    )
    .await
    {
        Ok(s) => Some(s),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED postgres backend for {name}: {e}");
            None
        }
        Err(e) => panic!("PostgreSQL is required when CI=true: {e}"),
    }
}

/// Declares a test that runs `$body(store)` on each backend.
macro_rules! backend_test {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_backend() {
                $body(|| sqlite(stringify!($name))).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_backend() {
                if postgres(stringify!($name)).await.is_some() {
                    $body(|| async { postgres(stringify!($name)).await.unwrap() }).await;
                }
            }
        }
    };
}

fn ev(id: &str, kind: EventKind, user: Option<&str>, anon: Option<&str>, at: &str) -> Event {
    Event {
        message_id: id.into(),
        kind,
        user_id: user.map(Into::into),
        anonymous_id: anon.map(Into::into),
        event: (kind == EventKind::Track).then(|| "Product Viewed".to_string()),
        name: None,
        group_id: None,
        previous_id: None,
        timestamp: parse_timestamp(at).unwrap(),
        original_timestamp: None,
        sent_at: None,
        received_at: parse_timestamp(at).unwrap(),
        context: Map::new(),
        properties: Map::new(),
        traits: Map::new(),
        integrations: Map::new(),
    }
}

fn plain(e: Event) -> NewEvent {
    NewEvent::new(e, None)
}

fn with_traits(mut e: Event, traits: Value) -> Event {
    e.traits = traits.as_object().unwrap().clone();
    e
}

fn alias(id: &str, previous: &str, user: &str, at: &str) -> Event {
    let mut e = ev(id, EventKind::Alias, Some(user), None, at);
    e.previous_id = Some(previous.into());
    e
}

/// A history touching identity resolution from every side: anonymous browsing on two
/// devices, an identify linking each to a user id, an alias of an old user id, and
/// conflicting traits at different times.
fn history() -> Vec<NewEvent> {
    vec![
        plain(ev(
            "m1",
            EventKind::Track,
            None,
            Some("dev-a"),
            "2024-01-01T00:00:00Z",
        )),
        plain(ev(
            "m2",
            EventKind::Page,
            None,
            Some("dev-b"),
            "2024-01-02T00:00:00Z",
        )),
        plain(with_traits(
            ev(
                "m3",
                EventKind::Identify,
                Some("zed"),
                Some("dev-a"),
                "2024-01-03T00:00:00Z",
            ),
            json!({"city": "北京", "email": "old@example.com"}),
        )),
        plain(with_traits(
            ev(
                "m4",
                EventKind::Identify,
                Some("zed"),
                Some("dev-b"),
                "2024-01-05T00:00:00Z",
            ),
            json!({"city": "上海"}),
        )),
        plain(alias("m5", "legacy-7", "zed", "2024-01-04T00:00:00Z")),
        plain(with_traits(
            ev(
                "m6",
                EventKind::Identify,
                Some("legacy-7"),
                None,
                "2023-12-01T00:00:00Z",
            ),
            json!({"email": "legacy@example.com", "gender": "女"}),
        )),
        plain(ev(
            "m7",
            EventKind::Track,
            None,
            Some("dev-c"),
            "2024-02-01T00:00:00Z",
        )),
    ]
}

async fn snapshot(s: &Store, id: Identity) -> Value {
    let p = s.profile_by_identity(id).await.unwrap().unwrap();
    serde_json::to_value(p).unwrap()
}

async fn merges_are_order_independent<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    let events = history();
    let mut reference: Option<(Value, Value)> = None;
    // Several arrival orders and batchings: forward, reverse, a rotation, one per batch.
    let orders: Vec<Vec<usize>> = vec![
        vec![0, 1, 2, 3, 4, 5, 6],
        vec![6, 5, 4, 3, 2, 1, 0],
        vec![3, 5, 0, 6, 2, 4, 1],
        vec![4, 1, 6, 0, 5, 3, 2],
    ];
    for (n, order) in orders.iter().enumerate() {
        let s = open().await;
        let seq: Vec<NewEvent> = order.iter().map(|i| events[*i].clone()).collect();
        if n % 2 == 0 {
            s.apply(seq).await.unwrap();
        } else {
            for e in seq {
                s.apply(vec![e]).await.unwrap();
            }
        }
        let zed = snapshot(&s, Identity::User("zed".into())).await;
        let other = snapshot(&s, Identity::Anonymous("dev-c".into())).await;
        // Every id of the merged person resolves to the same profile.
        for id in [
            Identity::Anonymous("dev-a".into()),
            Identity::Anonymous("dev-b".into()),
            Identity::User("legacy-7".into()),
        ] {
            assert_eq!(snapshot(&s, id).await, zed);
        }
        match &reference {
            None => reference = Some((zed, other)),
            Some((z, o)) => {
                assert_eq!(&zed, z, "arrival order {order:?} changed the merged profile");
                assert_eq!(&other, o);
            }
        }
    }
    let (zed, _) = reference.unwrap();
    assert_eq!(zed["id"], "user:legacy-7", "canonical id is the least user id");
    assert_eq!(zed["user_ids"], json!(["legacy-7", "zed"]));
    assert_eq!(zed["anonymous_ids"], json!(["dev-a", "dev-b"]));
    assert_eq!(
        zed["traits"],
        json!({"city": "上海", "email": "old@example.com", "gender": "女"})
    );
    assert_eq!(zed["event_count"], 6);
    assert_eq!(zed["first_seen"], "2023-12-01T00:00:00Z");
    assert_eq!(zed["last_seen"], "2024-01-05T00:00:00Z");
}
backend_test!(identity_merges, merges_are_order_independent);

/// The system's own writes (computed or imported traits) update the profile and its
/// `last_seen`, but never its `first_active`/`last_active`, whatever the arrival order
/// and across merges.
async fn system_writes_are_not_activity<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    let mut events = history();
    events.push(
        plain(with_traits(
            ev(
                "sys-1",
                EventKind::Identify,
                Some("zed"),
                None,
                "2024-03-01T00:00:00Z",
            ),
            json!({"clv_value": 88.5}),
        ))
        .system_write(),
    );
    events.push(
        plain(with_traits(
            ev(
                "sys-2",
                EventKind::Identify,
                Some("imported-1"),
                None,
                "2024-03-02T00:00:00Z",
            ),
            json!({"gender": "男"}),
        ))
        .system_write(),
    );
    for forward in [true, false] {
        let s = open().await;
        let mut seq = events.clone();
        if !forward {
            seq.reverse();
        }
        for e in seq {
            s.apply(vec![e]).await.unwrap();
        }
        let zed = snapshot(&s, Identity::User("zed".into())).await;
        assert_eq!(zed["traits"]["clv_value"], 88.5, "the trait is written");
        assert_eq!(zed["last_seen"], "2024-03-01T00:00:00Z");
        assert_eq!(zed["first_active"], "2023-12-01T00:00:00Z");
        assert_eq!(zed["last_active"], "2024-01-05T00:00:00Z", "forward: {forward}");
        let imported = snapshot(&s, Identity::User("imported-1".into())).await;
        assert_eq!(imported["traits"]["gender"], "男");
        assert_eq!(imported["first_active"], Value::Null);
        assert_eq!(imported["last_active"], Value::Null);
    }
}
backend_test!(system_writes, system_writes_are_not_activity);

async fn retries_never_duplicate<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    let s = open().await;
    let first = s.apply(history()).await.unwrap();
    assert_eq!((first.inserted, first.duplicates), (7, 0));
    let again = s.apply(history()).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 7));
    // A duplicate inside one batch counts once.
    let mut twice = vec![plain(ev(
        "x1",
        EventKind::Track,
        Some("u"),
        None,
        "2024-03-01T00:00:00Z",
    ))];
    twice.push(twice[0].clone());
    let o = s.apply(twice).await.unwrap();
    assert_eq!(o.stored, vec![true, false]);
    assert_eq!(s.count(Table::Events).await.unwrap(), 8);
    let p = snapshot(&s, Identity::User("zed".into())).await;
    assert_eq!(p["event_count"], 6);
}
backend_test!(dedupe, retries_never_duplicate);

fn order_event(id: &str, order: &str, total: i64, at: &str) -> NewEvent {
    let e = ev(id, EventKind::Track, Some("buyer"), None, at);
    let o = Order {
        order_id: order.into(),
        user_id: Some("buyer".into()),
        anonymous_id: None,
        total: Fen(total),
        revenue: Fen(total),
        discount: Fen(0),
        shipping: Fen(0),
        tax: Fen(0),
        coupon: None,
        currency: "CNY".into(),
        placed_at: e.timestamp,
        lines: vec![],
        message_id: id.into(),
    };
    plain(e).with_order(o)
}

fn adjustment(id: &str, order: &str, kind: OrderAdjustmentKind, amount: Option<i64>, at: &str) -> NewEvent {
    let e = ev(id, EventKind::Track, Some("buyer"), None, at);
    let a = OrderAdjustment {
        order_id: order.into(),
        kind,
        amount: amount.map(Fen),
        at: e.timestamp,
        message_id: id.into(),
    };
    plain(e).with_adjustment(a)
}

async fn refunds_adjust_orders_in_any_order<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    let events = vec![
        order_event("o-1", "A", 100_001, "2024-05-01T00:00:00Z"),
        adjustment(
            "r-1",
            "A",
            OrderAdjustmentKind::Refund,
            Some(30_000),
            "2024-05-02T00:00:00Z",
        ),
        order_event("o-2", "B", 5_000, "2024-05-03T00:00:00Z"),
        adjustment(
            "r-2",
            "B",
            OrderAdjustmentKind::Refund,
            None,
            "2024-05-04T00:00:00Z",
        ),
        order_event("o-3", "C", 7_000, "2024-05-05T00:00:00Z"),
        adjustment(
            "c-3",
            "C",
            OrderAdjustmentKind::Cancel,
            None,
            "2024-05-05T01:00:00Z",
        ),
    ];
    for reverse in [false, true] {
        let s = open().await;
        let seq: Vec<NewEvent> = if reverse {
            events.iter().rev().cloned().collect()
        } else {
            events.clone()
        };
        for e in seq {
            s.apply(vec![e]).await.unwrap();
        }
        let pid = s
            .profile_id_of(Identity::User("buyer".into()))
            .await
            .unwrap()
            .unwrap();
        let orders = s.orders_of(pid).await.unwrap();
        let state: Vec<(String, OrderStatus, i64)> = orders
            .iter()
            .map(|o| (o.order_id.clone(), o.status, o.refunded.0))
            .collect();
        assert_eq!(
            state,
            vec![
                ("C".into(), OrderStatus::Cancelled, 0),
                ("B".into(), OrderStatus::Refunded, 5_000),
                ("A".into(), OrderStatus::PartiallyRefunded, 30_000),
            ],
            "reverse={reverse}"
        );
    }
}
backend_test!(orders, refunds_adjust_orders_in_any_order);

async fn timelines_page_with_cursors<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    let s = open().await;
    let batch: Vec<NewEvent> = (0..25)
        .map(|i| {
            plain(ev(
                &format!("p{i}"),
                EventKind::Track,
                Some("pager"),
                None,
                &format!("2024-06-01T00:00:{:02}Z", i / 2),
            ))
        })
        .collect();
    s.apply(batch).await.unwrap();
    let pid = s
        .profile_id_of(Identity::User("pager".into()))
        .await
        .unwrap()
        .unwrap();
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let page = s.profile_events(pid.clone(), cursor, 10).await.unwrap();
        seen.extend(page.events.iter().map(|e| e.event.message_id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 25, "no event twice across pages");
    assert_eq!(seen[0], "p24", "newest first");
    assert!(matches!(
        s.profile_events(pid, Some("garbage".into()), 10).await,
        Err(flywheel_store::Error::BadCursor(_))
    ));
    let list = s.list_profiles(None, 100).await.unwrap();
    assert_eq!(list.profiles.len(), 1);
    assert_eq!(list.next_cursor, None);
}
backend_test!(paging, timelines_page_with_cursors);

async fn write_keys_authenticate_until_revoked<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    let s = open().await;
    let (key, secret) = s.create_write_key("shop".into(), KeyScope::Server).await.unwrap();
    assert_eq!(
        s.authenticate_write_key(secret.clone()).await.unwrap(),
        Some((key.id.clone(), KeyScope::Server))
    );
    let (web, web_secret) = s.create_write_key("web".into(), KeyScope::Client).await.unwrap();
    assert_eq!(
        s.authenticate_write_key(web_secret).await.unwrap(),
        Some((web.id.clone(), KeyScope::Client))
    );
    let listed = s.list_write_keys().await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|k| (k.name.as_str(), k.scope))
            .collect::<Vec<_>>(),
        [("shop", KeyScope::Server), ("web", KeyScope::Client)]
    );
    assert_eq!(s.authenticate_write_key("wk_nope".into()).await.unwrap(), None);
    s.revoke_write_key(key.id.clone()).await.unwrap();
    assert_eq!(s.authenticate_write_key(secret).await.unwrap(), None);
    assert!(s.list_write_keys().await.unwrap()[0].revoked_at.is_some());
    assert!(matches!(
        s.revoke_write_key("key_missing".into()).await,
        Err(flywheel_store::Error::NotFound(_))
    ));
    assert!(s.set_setting_once("k", "v1".into()).await.unwrap());
    assert!(!s.set_setting_once("k", "v2".into()).await.unwrap());
    assert_eq!(s.setting("k").await.unwrap().as_deref(), Some("v1"));
}
backend_test!(keys, write_keys_authenticate_until_revoked);

/// A client key's events link anonymous ids to a customer but never join two customers
/// (directly by alias, or through a shared anonymous id); a server key's still do.
async fn client_keys_never_join_two_customers<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    let s = open().await;
    let client = |e: Event| NewEvent::new(e, Some("key_web".into())).with_scope(KeyScope::Client);
    let at = "2024-03-01T00:00:00Z";
    s.apply(vec![
        plain(with_traits(
            ev("c1", EventKind::Identify, Some("victim"), None, at),
            json!({"email": "victim@example.com"}),
        )),
        plain(ev("c2", EventKind::Identify, Some("mallory"), None, at)),
        // A browser links its device to a customer: allowed.
        client(ev("c3", EventKind::Track, Some("victim"), Some("dev-v"), at)),
        // The same device then claims another customer, and an alias joins them: refused.
        client(ev("c4", EventKind::Track, Some("mallory"), Some("dev-v"), at)),
        client(alias("c5", "victim", "mallory", at)),
    ])
    .await
    .unwrap();
    let victim = snapshot(&s, Identity::User("victim".into())).await;
    let mallory = snapshot(&s, Identity::User("mallory".into())).await;
    assert_ne!(victim["id"], mallory["id"], "{victim} {mallory}");
    assert_eq!(
        s.find_profile_id("dev-v").await.unwrap().map(|p| p.0),
        Some("user:victim".to_string())
    );
    // A server key's alias still merges.
    s.apply(vec![plain(alias("c6", "victim", "mallory", at))])
        .await
        .unwrap();
    let victim = snapshot(&s, Identity::User("victim".into())).await;
    let mallory = snapshot(&s, Identity::User("mallory".into())).await;
    assert_eq!(victim["id"], mallory["id"]);
}
backend_test!(client_links, client_keys_never_join_two_customers);

/// Two stores on one SQLite file (as two processes, e.g. the server and an import):
/// each writer's identity cache must notice the other's merges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writers_in_two_processes_see_each_others_merges() {
    let dir = fresh_dir("two_writers");
    let open = || async {
        Store::open(StoreConfig::from_url(None, &dir, Synchronous::Normal).unwrap())
            .await
            .unwrap()
    };
    let (a, b) = (open().await, open().await);
    a.apply(vec![plain(ev(
        "w1",
        EventKind::Track,
        None,
        Some("dev"),
        "2024-01-01T00:00:00Z",
    ))])
    .await
    .unwrap();
    // B links the device to a user: the device's profile is renamed to user:amy.
    b.apply(vec![plain(ev(
        "w2",
        EventKind::Identify,
        Some("amy"),
        Some("dev"),
        "2024-01-02T00:00:00Z",
    ))])
    .await
    .unwrap();
    // A, which cached dev → anon:dev, must now count the device's events on user:amy.
    a.apply(vec![plain(ev(
        "w3",
        EventKind::Track,
        None,
        Some("dev"),
        "2024-01-03T00:00:00Z",
    ))])
    .await
    .unwrap();
    let p = snapshot(&a, Identity::Anonymous("dev".into())).await;
    assert_eq!(p["id"], "user:amy");
    assert_eq!(p["event_count"], 3);
    assert_eq!(
        a.list_profiles(None, 10).await.unwrap().profiles.len(),
        1,
        "no orphan profile rows"
    );
}

/// Many connections (as processes starting together) opening one brand-new SQLite file
/// at the same instant: none may fail with "database is locked" while another switches
/// the file to WAL; each must wait its turn.
#[test]
fn sqlite_concurrent_first_opens_wait_for_each_other() {
    for round in 0..20 {
        let dir = fresh_dir(&format!("race{round}"));
        let opts = flywheel_store::sqlite::SqliteOptions {
            path: dir.join("flywheel.db"),
            synchronous: Synchronous::Normal,
            wal_limit: flywheel_store::WalLimit::default(),
        };
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        flywheel_store::sqlite::open(&opts).map(|_| ())
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap().expect("open must wait, not fail");
            }
        });
    }
}

async fn callback_replays_are_refused_until_they_expire<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    use flywheel_store::callback_replays::{claim, count};
    let s = open().await;
    let claimed =
        |key: &'static str, now: i64, expires: i64| s.write_with(move |c| claim(c, key, "sms", now, expires));
    assert!(
        claimed("a", 1_000, 301_000).await.unwrap(),
        "a new key is claimed"
    );
    assert!(
        !claimed("a", 2_000, 302_000).await.unwrap(),
        "the same key again is a replay"
    );
    assert!(claimed("b", 2_000, 302_000).await.unwrap());
    // Past a's expiry it is pruned (the signature it came with no longer verifies), so
    // the table stays one window long; b is kept until its own expiry.
    assert!(claimed("c", 301_001, 601_001).await.unwrap());
    let n = s.read_with(|c| count(c)).await.unwrap();
    assert_eq!(n, 2, "a pruned, b and c kept");
    assert!(
        !claimed("b", 301_500, 601_500).await.unwrap(),
        "b is still a replay"
    );
    assert!(
        claimed("a", 301_500, 601_500).await.unwrap(),
        "an expired key is new again"
    );
}
backend_test!(callback_replays, callback_replays_are_refused_until_they_expire);

async fn dead_letters_are_listed_counted_and_removed<F, Fut>(open: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    use flywheel_store::dead_letters::{
        counts, failed_again, get, list, of_item, record, remove, DeadLetterRow,
    };
    let s = open().await;
    let row = |seq: i64, attempts: i64, at: i64| DeadLetterRow {
        id: 0,
        workflow: "order_rewards".into(),
        item: seq.to_string(),
        seq: Some(seq),
        message_id: Some(format!("m{seq}")),
        user_id: Some("u".into()),
        error: format!("failed at {at}"),
        attempts,
        first_failed_at: at,
        last_failed_at: at,
    };
    let r = row(7, 5, 1_000);
    let a = s.write_with(move |c| record(c, &r)).await.unwrap();
    let r = row(9, 5, 2_000);
    let b = s.write_with(move |c| record(c, &r)).await.unwrap();
    assert_ne!(a, b);
    // The same event again keeps its id and first failure.
    let r = row(7, 6, 3_000);
    assert_eq!(s.write_with(move |c| record(c, &r)).await.unwrap(), a);
    let first = s.read_with(move |c| get(c, a)).await.unwrap().unwrap();
    assert_eq!(
        (first.attempts, first.first_failed_at, first.last_failed_at),
        (6, 1_000, 3_000)
    );
    s.write_with(move |c| failed_again(c, a, "again", 4_000))
        .await
        .unwrap();
    let all = s.read_with(|c| list(c, None)).await.unwrap();
    assert_eq!(
        all.iter().map(|d| d.seq).collect::<Vec<_>>(),
        vec![Some(7), Some(9)]
    );
    assert_eq!((all[0].attempts, all[0].error.as_str()), (7, "again"));
    assert_eq!(
        s.read_with(|c| counts(c)).await.unwrap(),
        vec![("order_rewards".to_owned(), 2)]
    );
    // A journey step has no seq: it is keyed by its run and step, beside the events.
    let step = DeadLetterRow {
        workflow: "journeys".into(),
        item: "run-1/coupon".into(),
        seq: None,
        message_id: None,
        ..row(0, 3, 5_000)
    };
    let (st, again) = (step.clone(), step.clone());
    let j = s.write_with(move |c| record(c, &st)).await.unwrap();
    assert_eq!(s.write_with(move |c| record(c, &again)).await.unwrap(), j);
    let found = s
        .read_with(|c| of_item(c, "journeys", "run-1/coupon"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, found.seq, found.message_id), (j, None, None));
    assert!(s.write_with(move |c| remove(c, j)).await.unwrap());
    assert!(s.write_with(move |c| remove(c, a)).await.unwrap());
    assert!(!s.write_with(move |c| remove(c, a)).await.unwrap());
    assert_eq!(
        s.read_with(|c| list(c, Some("order_rewards")))
            .await
            .unwrap()
            .len(),
        1
    );
}
backend_test!(dead_letters, dead_letters_are_listed_counted_and_removed);

async fn journeys_tables_keep_typed_statuses<F, Fut>(open: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    use flywheel_store::journeys::consent::{self, ConsentState, GLOBAL};
    use flywheel_store::journeys::definitions::{self as defs, JourneyStatus};
    use flywheel_store::journeys::messages::{self, MessageChange, MessageRow, MessageStatus};
    use flywheel_store::journeys::runs::{self, RunRow, RunState};
    let s = open().await;
    let run = |id: &str, state: RunState| RunRow {
        id: id.into(),
        journey: "j".into(),
        version: 1,
        user_id: "u".into(),
        key: String::new(),
        step: 0,
        state,
        wait_event: None,
        wait_until: None,
        path: "a/b".into(),
        context: json!({"profile_id": "p"}),
        entered_at: 10,
        ended_at: None,
        converted_at: None,
    };
    let (r1, r2) = (run("r1", RunState::Waiting), run("r2", RunState::Active));
    let out = s
        .write_with(move |c| {
            let saved = (defs::save(c, "j", "{}", 1)?, defs::save(c, "j", "{}", 2)?);
            let draft = defs::journey(c, "j")?.map(|j| j.status);
            let started = defs::set_status(c, "j", JourneyStatus::Active, 3)?;
            let missing = defs::set_status(c, "nope", JourneyStatus::Active, 3)?;
            runs::insert_run(c, &r1, 10)?;
            runs::insert_run(c, &r2, 10)?;
            let history = runs::entry_history(c, "j", "u", "")?;
            let mut done = r1.clone();
            done.state = RunState::Done;
            let moved = (runs::update_run(c, &done, 11)?, runs::update_run(c, &done, 12)?);
            defs::set_status(c, "j", JourneyStatus::Stopped, 13)?;
            let states = runs::run_counts(c, "j")?.1;
            Ok((saved, draft, started, missing, history, moved, states))
        })
        .await
        .unwrap();
    let (saved, draft, started, missing, history, moved, states) = out;
    assert_eq!(saved, ((1, true), (1, false)));
    assert_eq!(
        (draft, started, missing),
        (Some(JourneyStatus::Draft), true, false)
    );
    assert!(history.any && history.running && history.latest == Some(10));
    assert_eq!(moved, (true, false), "an ended run is not written again");
    assert_eq!(states, vec![(RunState::Done, 1), (RunState::Stopped, 1)]);

    let mut m = MessageRow {
        id: "m".into(),
        user_id: "u".into(),
        journey: Some("j".into()),
        run_id: Some("r1".into()),
        step: None,
        channel: "email".into(),
        category: "marketing".into(),
        campaign: None,
        status: MessageStatus::Deferred,
        reason: None,
        address: None,
        subject: None,
        created_at: 1,
        updated_at: 1,
        delivered_at: None,
        opened_at: None,
        clicked_at: None,
        converted_at: None,
    };
    let row = s
        .write_with(move |c| {
            messages::log_message(c, &m)?;
            (m.status, m.created_at) = (MessageStatus::Sent, 5);
            messages::log_message(c, &m)?;
            let change = MessageChange {
                status: Some(MessageStatus::Delivered),
                delivered: true,
                ..MessageChange::default()
            };
            messages::apply_change(c, "m", &change, 7)?;
            messages::credit_conversion(c, "r1", 9)?;
            consent::set_consent(c, "u", "email", ConsentState::Subscribed, "api", 1)?;
            consent::set_consent(c, "u", GLOBAL, ConsentState::Suppressed, "hard_bounce", 2)?;
            Ok((
                messages::message(c, "m")?,
                messages::status_counts(c, "j")?,
                messages::sent_since(c, "u", 0)?,
                consent::consents(c, "u")?,
            ))
        })
        .await
        .unwrap();
    let (message, counts, sent, consents) = row;
    let message = message.unwrap();
    assert_eq!(message.status, MessageStatus::Delivered);
    assert_eq!(
        (message.created_at, message.delivered_at, message.converted_at),
        (5, Some(7), Some(9)),
        "a deferred message takes the time it went out"
    );
    assert_eq!(counts, vec![(MessageStatus::Delivered, 1)]);
    assert_eq!(sent, vec![("m".to_string(), "email".to_string(), 5)]);
    let states: Vec<_> = consents.iter().map(|r| (r.channel.as_str(), r.state)).collect();
    assert_eq!(
        states,
        vec![
            (GLOBAL, ConsentState::Suppressed),
            ("email", ConsentState::Subscribed)
        ]
    );
}

backend_test!(journeys_tables, journeys_tables_keep_typed_statuses);

/// Every committed batch is logged with its merges and each event's profile, and a
/// reader that follows the log by position sees every stored event exactly once, in
/// `seq` order, while two stores (two processes) write at the same time.
async fn the_batch_log_is_followed_in_commit_order<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    use flywheel_store::batch_log;
    let a = open().await;
    let start = a.read_with(batch_log::head).await.unwrap();
    // A batch that merges an anonymous visitor into a user.
    let first = vec![
        plain(ev(
            "b1",
            EventKind::Page,
            None,
            Some("dev-x"),
            "2024-01-01T00:00:00Z",
        )),
        plain(ev(
            "b2",
            EventKind::Identify,
            Some("ann"),
            Some("dev-x"),
            "2024-01-01T00:01:00Z",
        )),
    ];
    a.apply(first).await.unwrap();
    let got = a
        .read_with(move |c| batch_log::after(c, start, 10_000))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let b = &got[0];
    assert_eq!(b.events.len(), 2);
    assert!(b.events[0].seq < b.events[1].seq);
    assert_eq!(b.last_seq, b.events[1].seq);
    let owner = b.events[1].profile.clone().unwrap();
    assert_eq!(
        b.events[0].profile.as_ref(),
        Some(&owner),
        "both end up on one profile"
    );
    // A duplicate-only batch logs nothing.
    a.apply(vec![plain(ev(
        "b1",
        EventKind::Page,
        None,
        Some("dev-x"),
        "2024-01-01T00:00:00Z",
    ))])
    .await
    .unwrap();
    let position = b.last_seq;
    assert!(a
        .read_with(move |c| batch_log::after(c, position, 10_000))
        .await
        .unwrap()
        .is_empty());
    // Two writers at once, a follower reading as they go.
    follow_while_writing(&a, [a.clone(), a.clone()], position).await;
}
backend_test!(batch_log, the_batch_log_is_followed_in_commit_order);

/// Two processes' stores on one PostgreSQL schema write at once; a follower on a third
/// sees every event exactly once in commit order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writers_in_two_processes_commit_in_log_order() {
    let base = std::env::var("FLYWHEEL_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let url = format!("{base}?schema={}", unique("two_writers"));
    let open = || async {
        match Store::open(
            StoreConfig::from_url(Some(&url), std::path::Path::new("."), Synchronous::Normal).unwrap(),
        )
        .await
        {
            Ok(s) => Some(s),
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIPPED postgres two writers: {e}");
                None
            }
            Err(e) => panic!("PostgreSQL is required when CI=true: {e}"),
        }
    };
    let Some(reader) = open().await else { return };
    let (w1, w2) = (open().await.unwrap(), open().await.unwrap());
    follow_while_writing(&reader, [w1, w2], 0).await;
}

/// Runs two writers of 40 batches of 5 events and follows the log from `position` with
/// `a` until both are done; checks order and that each event is seen once.
async fn follow_while_writing(a: &Store, stores: [Store; 2], position: i64) {
    use flywheel_store::batch_log;
    let writers: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(w, s)| {
            tokio::spawn(async move {
                for i in 0..40 {
                    let batch = (0..5)
                        .map(|j| {
                            plain(ev(
                                &format!("w{w}-{i}-{j}"),
                                EventKind::Track,
                                Some(&format!("u{w}-{j}")),
                                None,
                                "2024-02-01T00:00:00Z",
                            ))
                        })
                        .collect();
                    s.apply(batch).await.unwrap();
                }
            })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut at = position;
    let mut last_seq_seen = position;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let from = at;
        let batches = a.read_with(move |c| batch_log::after(c, from, 37)).await.unwrap();
        for b in batches {
            assert!(b.last_seq > at, "positions only move forward");
            for e in &b.events {
                assert!(e.seq > last_seq_seen, "events come in seq order");
                last_seq_seen = e.seq;
                assert!(seen.insert(e.event.message_id.clone()), "seen twice");
            }
            at = b.last_seq;
        }
        if done
            && a.read_with(move |c| batch_log::after(c, at, 1))
                .await
                .unwrap()
                .is_empty()
        {
            break;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(seen.len(), 2 * 40 * 5, "every event of both writers, once");
}

/// One holder at a time; an expired lease may be claimed by another; a released one at once.
async fn leases_have_one_holder<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Store>,
{
    use flywheel_store::leases;
    let s = open().await;
    let claim = |who: &'static str, now: i64| {
        let s = s.clone();
        async move {
            s.write_with(move |c| leases::claim(c, "recorder", who, now, 1_000))
                .await
                .unwrap()
        }
    };
    assert!(claim("p1", 0).await);
    assert!(!claim("p2", 500).await, "held by p1");
    assert!(claim("p1", 900).await, "p1 renews");
    assert!(!claim("p2", 1_800).await, "renewed until 1900");
    assert!(s
        .read_with(|c| leases::holds(c, "recorder", "p1", 1_800))
        .await
        .unwrap());
    assert!(claim("p2", 2_000).await, "expired: p2 takes it");
    assert!(!s
        .read_with(|c| leases::holds(c, "recorder", "p1", 2_000))
        .await
        .unwrap());
    s.write_with(|c| leases::release(c, "recorder", "p2"))
        .await
        .unwrap();
    assert!(claim("p1", 2_001).await, "released: free at once");
}
backend_test!(leases, leases_have_one_holder);
