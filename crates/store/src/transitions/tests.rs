//! The transitions log on every backend: appends skip what changes nothing, pages and
//! cursors, seeding and forgetting a definition's membership, pruning behind readers.

use super::*;
use crate::testing::stores;
use crate::Store;

fn t(kind: Kind, name: &str, profile: &str, change: Change, at: i64) -> NewTransition {
    NewTransition {
        kind,
        name: name.into(),
        profile_id: profile.into(),
        change,
        at,
        cause: Cause::Event,
    }
}

async fn append_all(s: &Store, batch: Vec<NewTransition>) -> usize {
    s.write_with(move |c| append(c, &batch)).await.unwrap()
}

async fn page(s: &Store, after_seq: i64) -> Vec<TransitionRow> {
    s.read_with(move |c| after(c, after_seq, 100)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_log_each_membership_change_once_in_order() {
    for s in stores("transitions_append").await {
        let batch = vec![
            t(Kind::Segment, "vip", "p1", Change::Entered, 10),
            // Already in: nothing logged.
            t(Kind::Segment, "vip", "p1", Change::Entered, 11),
            // Not in: nothing logged.
            t(Kind::Tag, "新人", "p2", Change::Exited, 12),
            t(Kind::Tag, "新人", "p2", Change::Entered, 13),
            t(Kind::Segment, "vip", "p1", Change::Exited, 14),
        ];
        assert_eq!(append_all(&s, batch.clone()).await, 3);
        // The same batch again changes nothing.
        assert_eq!(append_all(&s, vec![batch[3].clone()]).await, 0);
        let rows = page(&s, 0).await;
        let seen: Vec<(Kind, &str, &str, Change, i64)> = rows
            .iter()
            .map(|r| (r.kind, r.name.as_str(), r.profile_id.as_str(), r.change, r.at))
            .collect();
        assert_eq!(
            seen,
            vec![
                (Kind::Segment, "vip", "p1", Change::Entered, 10),
                (Kind::Tag, "新人", "p2", Change::Entered, 13),
                (Kind::Segment, "vip", "p1", Change::Exited, 14),
            ]
        );
        assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(rows[0].cause, Cause::Event);
        let last = s.read_with(last_seq).await.unwrap();
        assert_eq!(last, rows[2].seq);
        assert_eq!(page(&s, rows[0].seq).await.len(), 2);
        let tag = s.read_with(|c| members(c, Kind::Tag, "新人")).await.unwrap();
        assert_eq!(tag.into_iter().collect::<Vec<_>>(), vec!["p2".to_string()]);
        assert!(s
            .read_with(|c| members(c, Kind::Segment, "vip"))
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_transaction_logs_nothing_and_changes_no_membership() {
    for s in stores("transitions_rollback").await {
        let r = s
            .write_with(|c| {
                append(c, &[t(Kind::Segment, "vip", "p1", Change::Entered, 1)])?;
                Err::<(), _>(Error::Database("injected".into()))
            })
            .await;
        assert!(r.is_err());
        assert!(page(&s, 0).await.is_empty());
        // The retry logs it.
        let batch = vec![t(Kind::Segment, "vip", "p1", Change::Entered, 1)];
        assert_eq!(append_all(&s, batch).await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_are_kept_per_reader_and_report_lag() {
    for s in stores("transitions_cursor").await {
        assert_eq!(s.read_with(|c| cursor(c, "journeys")).await.unwrap(), None);
        assert_eq!(s.read_with(|c| lag(c, "journeys")).await.unwrap(), 0);
        let batch = (0..3)
            .map(|i| t(Kind::Segment, "vip", &format!("p{i}"), Change::Entered, i))
            .collect();
        append_all(&s, batch).await;
        let rows = page(&s, 0).await;
        s.write_with(move |c| set_cursor(c, "journeys", rows[0].seq))
            .await
            .unwrap();
        assert_eq!(s.read_with(|c| lag(c, "journeys")).await.unwrap(), 2);
        assert_eq!(s.read_with(|c| cursor(c, "other")).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_and_forgetting_a_definition_log_nothing() {
    for s in stores("transitions_seed").await {
        let members_now = vec!["p1".to_string(), "p2".to_string()];
        s.write_with(move |c| seed(c, Kind::Segment, "vip", &members_now))
            .await
            .unwrap();
        assert!(page(&s, 0).await.is_empty());
        let tracked_now = s.read_with(tracked).await.unwrap();
        assert!(tracked_now.contains(&(Kind::Segment, "vip".to_string())));
        // Seeding again replaces the membership.
        let again = vec!["p3".to_string()];
        s.write_with(move |c| seed(c, Kind::Segment, "vip", &again))
            .await
            .unwrap();
        let m = s.read_with(|c| members(c, Kind::Segment, "vip")).await.unwrap();
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec!["p3".to_string()]);
        // A seeded member leaving is logged.
        let batch = vec![t(Kind::Segment, "vip", "p3", Change::Exited, 5)];
        assert_eq!(append_all(&s, batch).await, 1);
        s.write_with(|c| forget(c, Kind::Segment, "vip")).await.unwrap();
        assert!(s.read_with(tracked).await.unwrap().is_empty());
        assert!(s
            .read_with(|c| members(c, Kind::Segment, "vip"))
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_keeps_what_a_reader_has_not_passed_and_recent_rows() {
    for s in stores("transitions_prune").await {
        let batch = (0..5)
            .map(|i| t(Kind::Tag, "x", &format!("p{i}"), Change::Entered, i * 100))
            .collect();
        append_all(&s, batch).await;
        let rows = page(&s, 0).await;
        let (second, last) = (rows[1].seq, rows[4].seq);
        s.write_with(move |c| set_cursor(c, "journeys", second))
            .await
            .unwrap();
        // Old rows the reader has passed go; the rest stay.
        assert_eq!(s.write_with(|c| prune(c, 1_000)).await.unwrap(), 2);
        assert_eq!(page(&s, 0).await.len(), 3);
        // Only rows older than the bound go, even when every reader passed them.
        s.write_with(move |c| set_cursor(c, "journeys", last))
            .await
            .unwrap();
        assert_eq!(s.write_with(|c| prune(c, 350)).await.unwrap(), 2);
        assert_eq!(s.write_with(|c| prune(c, 1_000)).await.unwrap(), 1);
        assert!(page(&s, 0).await.is_empty());
        // The sequence goes on after an emptied log.
        assert_eq!(s.read_with(last_seq).await.unwrap(), last);
        let batch = vec![t(Kind::Tag, "x", "p9", Change::Entered, 2_000)];
        append_all(&s, batch).await;
        assert!(page(&s, 0).await[0].seq > last);
    }
}
