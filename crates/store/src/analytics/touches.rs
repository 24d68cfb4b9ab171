//! The campaign an event carries (`context.campaign`, the utm parameters), as a column.
//!
//! Attribution needs every event of a period that carries a campaign. It used to find
//! them with `body LIKE '%"campaign"%'`, which also matches the word as a property value
//! (`{"properties": {"kind": "campaign"}}`) or as a key anywhere in the body, and parsed
//! each candidate's JSON to tell; a change to the body's shape would have broken it at
//! run time, in another crate. Now the store writes the campaign's name and
//! source into `events.campaign_name` / `events.campaign_source` when the event is
//! stored (migration 022 backfills earlier events with the same function), and readers
//! select `campaign_name IS NOT NULL` through a partial index on `ts` that covers the
//! columns they read.
//!
//! Why a column rather than JSON extraction in SQL: SQLite (`json_extract`) and
//! PostgreSQL (`body::jsonb #>> …`) differ on text they cannot parse (PostgreSQL's jsonb
//! refuses `\u0000`, which serde writes for NUL), so one predicate would not mean the
//! same on both backends, and an expression index would need two dialects. The column
//! is computed once by one Rust function ([`EventCampaign::of`]) for both backends, is
//! indexed the same way on both, and costs the reader nothing per event (no JSON parse
//! on 100k+ events of a period).

use crate::conn::Sql;
use serde_json::{Map, Value};

use crate::activity::CUSTOMER_EVENT;
use crate::conn::{Conn, Param, Row};
use crate::person::EVENT_PERSON;
use crate::Result;

/// The campaign an event carries: `context.campaign.name` when it is a non-empty string,
/// with `context.campaign.source` when that is a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCampaign {
    /// `context.campaign.name` (utm_campaign).
    pub name: String,
    /// `context.campaign.source` (utm_source).
    pub source: Option<String>,
}

impl EventCampaign {
    /// The campaign of an event with `context`, if it carries one.
    pub fn of(context: &Map<String, Value>) -> Option<EventCampaign> {
        let campaign = context.get("campaign")?;
        let name = campaign.get("name")?.as_str().filter(|n| !n.is_empty())?;
        Some(EventCampaign {
            name: name.to_string(),
            source: campaign.get("source").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// The campaign of a stored event body (JSON text); `None` when it carries none or
    /// does not parse.
    pub fn of_body(body: &str) -> Option<EventCampaign> {
        let body: Value = serde_json::from_str(body).ok()?;
        EventCampaign::of(body.get("context")?.as_object()?)
    }
}

/// A visit of a person that carried a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignTouch {
    /// The person (profile id, [`crate::person`]): a logged-out visit counts for whoever
    /// its anonymous id belongs to.
    pub person: String,
    /// When (ms).
    pub at: i64,
    /// `context.campaign.name`.
    pub campaign: String,
    /// `context.campaign.source`, if given.
    pub source: Option<String>,
}

fn row_of(r: &Row) -> Result<CampaignTouch> {
    Ok(CampaignTouch {
        person: r.text(0)?,
        at: r.i64(1)?,
        campaign: r.text(2)?,
        source: r.opt_text(3)?,
    })
}

/// Customer events in `[from, to)` that carry a campaign, with their person.
pub fn event_touches(conn: &mut dyn Conn, from: i64, to: i64) -> Result<Vec<CampaignTouch>> {
    conn.query(
        // `campaign_name IS NOT NULL` is the predicate of the partial index
        // `events_campaign_at` (migration 022).
        &format!(
            "SELECT {EVENT_PERSON}, e.ts, e.campaign_name, e.campaign_source FROM events e \
             WHERE e.campaign_name IS NOT NULL AND {CUSTOMER_EVENT} AND e.ts >= $1 AND e.ts < $2"
        ),
        &[Param::I64(from), Param::I64(to)],
    )?
    .iter()
    .map(row_of)
    .collect()
}

/// Events read per page of the backfill.
const BACKFILL_PAGE: i64 = 1000;

/// Migration 022's backfill: writes the campaign columns of events stored before them,
/// with [`EventCampaign::of_body`] (the same rule as at ingest), then drops the old
/// `body LIKE` index. The candidates are the events that index covers (every event whose
/// context has a campaign has `"campaign"` in its body), read in `(ts, seq)` pages
/// through it. Runs inside the migration's transaction.
pub(crate) fn backfill(conn: &mut dyn Conn) -> Result<()> {
    let mut after = (i64::MIN, i64::MIN);
    loop {
        let rows = conn.query(
            "SELECT seq, ts, body FROM events WHERE body LIKE '%\"campaign\"%' AND (ts, seq) > ($1, $2) \
             ORDER BY ts, seq LIMIT $3",
            &[
                Param::I64(after.0),
                Param::I64(after.1),
                Param::I64(BACKFILL_PAGE),
            ],
        )?;
        for r in &rows {
            let (seq, ts) = (r.i64(0)?, r.i64(1)?);
            after = (ts, seq);
            if let Some(c) = EventCampaign::of_body(&r.text(2)?) {
                conn.execute(
                    "UPDATE events SET campaign_name = $1, campaign_source = $2 WHERE seq = $3",
                    &[
                        Param::Text(&c.name),
                        Param::OptText(c.source.as_deref()),
                        Param::I64(seq),
                    ],
                )?;
            }
        }
        if (rows.len() as i64) < BACKFILL_PAGE {
            break;
        }
    }
    conn.batch("DROP INDEX IF EXISTS events_campaign_ts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn only_a_named_context_campaign_counts() {
        let c = EventCampaign::of(&ctx(json!({"campaign": {"name": "双11", "source": "wechat"}})));
        assert_eq!(
            c,
            Some(EventCampaign {
                name: "双11".into(),
                source: Some("wechat".into())
            })
        );
        let no_source = EventCampaign::of(&ctx(json!({"campaign": {"name": "K", "source": 3}})));
        assert_eq!(no_source.and_then(|c| c.source), None);
        for none in [
            json!({}),
            json!({"campaign": "K"}),
            json!({"campaign": {"name": ""}}),
            json!({"campaign": {"name": 7}}),
            json!({"campaign": {"source": "x"}}),
            json!({"page": {"title": "\"campaign\""}}),
        ] {
            assert_eq!(EventCampaign::of(&ctx(none.clone())), None, "{none}");
        }
    }

    #[test]
    fn a_body_reads_like_its_context() {
        let body = json!({"type": "track", "context": {"campaign": {"name": "K"}}}).to_string();
        assert_eq!(
            EventCampaign::of_body(&body).map(|c| c.name).as_deref(),
            Some("K")
        );
        let in_property = json!({"type": "track", "properties": {"campaign": {"name": "K"}}}).to_string();
        assert_eq!(EventCampaign::of_body(&in_property), None);
        assert_eq!(EventCampaign::of_body("not json"), None);
    }

    /// On both backends: only events whose context names a campaign are touches (the word
    /// as a property value or as a key elsewhere is not), and migration 022's backfill
    /// gives events stored before it the same columns ingest writes.
    mod backends {
        use super::*;
        use crate::testing::{fresh_dir, unique};
        use crate::{NewEvent, Store, StoreConfig, Synchronous};

        const AT: i64 = 1_793_491_200_000; // 2026-11-01T00:00:00Z

        fn event(id: &str, user: Option<&str>, extra: Value) -> NewEvent {
            let mut v = json!({
                "messageId": id, "type": "track", "event": "Viewed", "anonymousId": format!("a-{id}"),
                "timestamp": "2026-11-01T00:00:00Z", "receivedAt": "2026-11-01T00:00:00Z",
            });
            if let Some(u) = user {
                v["userId"] = json!(u);
            }
            for (k, x) in extra.as_object().cloned().unwrap_or_default() {
                v[k] = x;
            }
            NewEvent::new(serde_json::from_value(v).unwrap(), None)
        }

        fn batch() -> Vec<NewEvent> {
            vec![
                event(
                    "e1",
                    Some("u1"),
                    json!({"context": {"campaign": {"name": "K", "source": "wechat"}}}),
                ),
                // The word as a property value, and as a key outside the context: the old
                // `body LIKE '%"campaign"%'` matched both.
                event(
                    "e2",
                    Some("u2"),
                    json!({"properties": {"kind": "campaign", "note": "\"campaign\""}}),
                ),
                event(
                    "e3",
                    Some("u3"),
                    json!({"properties": {"campaign": {"name": "X"}}}),
                ),
                event("e4", Some("u4"), json!({"context": {"campaign": {"name": "L"}}})),
                event("e5", None, json!({"context": {"campaign": {"name": "M"}}})),
            ]
        }

        async fn touches_of(store: &Store) -> Vec<(String, String, Option<String>)> {
            let mut t: Vec<_> = store
                .read_with(|c| event_touches(c, AT, AT + 1))
                .await
                .unwrap()
                .into_iter()
                .map(|t| (t.person, t.campaign, t.source))
                .collect();
            t.sort();
            t
        }

        /// Turns the store back into one written before migration 022.
        const UNDO_022: &str = "DELETE FROM schema_migrations WHERE version = 22; \
            DROP INDEX events_campaign_at; \
            ALTER TABLE events DROP COLUMN campaign_name; \
            ALTER TABLE events DROP COLUMN campaign_source; \
            CREATE INDEX events_campaign_ts ON events (ts) WHERE body LIKE '%\"campaign\"%';";

        async fn check(config: impl Fn() -> StoreConfig) {
            let store = Store::open(config()).await.unwrap();
            store.apply(batch()).await.unwrap();
            // The anonymous visit e5 is a touch of its person too.
            let expected = vec![
                ("anon:a-e5".to_string(), "M".to_string(), None),
                ("user:u1".to_string(), "K".to_string(), Some("wechat".to_string())),
                ("user:u4".to_string(), "L".to_string(), None),
            ];
            assert_eq!(touches_of(&store).await, expected, "written at ingest");
            store.write_with(|c| c.batch(UNDO_022)).await.unwrap();
            drop(store);
            let store = Store::open(config()).await.unwrap();
            assert_eq!(touches_of(&store).await, expected, "backfilled by migration 022");
            let carried = store
                .read_with(|c| {
                    c.query(
                        "SELECT COUNT(*) FROM events WHERE campaign_name IS NOT NULL AND body LIKE '%\"campaign\"%'",
                        &[],
                    )
                })
                .await
                .unwrap();
            assert_eq!(carried[0].i64(0).unwrap(), 3, "e1, e4 and the anonymous e5");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn sqlite_backend() {
            let dir = fresh_dir(&format!("flywheel-{}", unique("event_campaign")));
            check(|| StoreConfig::from_url(None, &dir, Synchronous::Normal).unwrap()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres_backend() {
            let base = std::env::var("FLYWHEEL_TEST_PG")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let url = format!("{base}?schema={}", unique("event_campaign"));
            let config =
                || StoreConfig::from_url(Some(&url), std::path::Path::new("."), Synchronous::Normal).unwrap();
            match Store::open(config()).await {
                Ok(s) => drop(s),
                Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                    eprintln!("SKIPPED postgres backend for event_campaign: {e}");
                    return;
                }
                Err(e) => panic!("PostgreSQL is required when CI=true: {e}"),
            }
            check(config).await;
        }
    }
}
