//! Group buys on SQLite and PostgreSQL: 3N concurrent joins fill a group of N exactly,
//! a member joins once, a group past its deadline expires and takes no one.

use std::sync::Arc;

use flywheel_core::time::{from_millis, parse_timestamp, to_millis};
use flywheel_core::FixedClock;
use flywheel_promotions::group::{GroupBuys, GroupDeal};
use flywheel_store::testing::stores;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_n_concurrent_joins_fill_a_group_of_n_exactly() {
    for store in stores("join").await {
        let t0 = to_millis(parse_timestamp("2024-11-11T00:00:00+08:00").unwrap());
        let clock = Arc::new(FixedClock::new(from_millis(t0)));
        let groups = GroupBuys::new(store, clock.clone());
        let deal: GroupDeal = serde_json::from_value(
            json!({"id": "3人團", "product": "P1", "group_price": 9900, "group_size": 5, "join_hours": 24}),
        )
        .unwrap();
        groups.create_deal(deal.clone()).await.unwrap();
        assert_eq!(groups.create_deal(deal).await.unwrap_err().code(), "deal_exists");
        let g = groups.open("3人團", "leader").await.unwrap();
        assert_eq!((g.state.as_str(), g.members.len()), ("open", 1));
        assert_eq!(
            groups.join(&g.id, "leader").await.unwrap_err().code(),
            "already_member"
        );
        let tasks: Vec<_> = (0..15)
            .map(|i| {
                let (groups, id) = (groups.clone(), g.id.clone());
                tokio::spawn(async move { groups.join(&id, &format!("u{i}")).await })
            })
            .collect();
        let mut joined = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => joined += 1,
                Err(e) => assert_eq!(e.code(), "group_full", "{e}"),
            }
        }
        assert_eq!(joined, 4);
        let full = groups.group(&g.id).await.unwrap();
        assert_eq!((full.state.as_str(), full.members.len()), ("full", 5));
        assert_eq!(full.members[0], "leader");
        // A second group runs out of time: it expires and takes no one.
        let late = groups.open("3人團", "l2").await.unwrap();
        groups.join(&late.id, "x").await.unwrap();
        clock.set(from_millis(t0 + 24 * 3_600_000));
        assert_eq!(
            groups.join(&late.id, "y").await.unwrap_err().code(),
            "group_expired"
        );
        assert_eq!(groups.expire_due().await.unwrap(), vec![late.id.clone()]);
        assert_eq!(
            groups.group(&late.id).await.unwrap().state,
            flywheel_store::groups::GroupState::Expired
        );
        assert_eq!(groups.open("nope", "l").await.unwrap_err().code(), "not_found");
    }
}
