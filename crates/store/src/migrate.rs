//! Schema migrations, embedded in the binary and applied at start.
//!
//! Each migration runs once, in its own write transaction (which on PostgreSQL also
//! holds the writers' advisory lock, so processes starting together do not race).

use crate::conn::{in_write_tx, Conn, Dialect, Param, Sql};
use crate::Result;

/// `(version, SQLite text, PostgreSQL text)` in order. Where both dialects agree, a
/// migration has one file (`NNN_name.sql`) named for both; otherwise one file per dialect
/// (`sqlite_NNN_name.sql`, `postgres_NNN_name.sql`).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        include_str!("migrations/sqlite_001_init.sql"),
        include_str!("migrations/postgres_001_init.sql"),
    ),
    (
        2,
        include_str!("migrations/sqlite_002_audience.sql"),
        include_str!("migrations/postgres_002_audience.sql"),
    ),
    (
        3,
        include_str!("migrations/sqlite_003_coupons.sql"),
        include_str!("migrations/postgres_003_coupons.sql"),
    ),
    (
        4,
        include_str!("migrations/sqlite_004_flash.sql"),
        include_str!("migrations/postgres_004_flash.sql"),
    ),
    (
        5,
        include_str!("migrations/sqlite_005_groups.sql"),
        include_str!("migrations/postgres_005_groups.sql"),
    ),
    (
        6,
        include_str!("migrations/sqlite_006_loyalty.sql"),
        include_str!("migrations/postgres_006_loyalty.sql"),
    ),
    (
        7,
        include_str!("migrations/sqlite_007_referrals.sql"),
        include_str!("migrations/postgres_007_referrals.sql"),
    ),
    (
        8,
        include_str!("migrations/sqlite_008_tiers.sql"),
        include_str!("migrations/postgres_008_tiers.sql"),
    ),
    (
        9,
        include_str!("migrations/sqlite_009_journey_timers.sql"),
        include_str!("migrations/postgres_009_journey_timers.sql"),
    ),
    (
        10,
        include_str!("migrations/sqlite_010_journeys.sql"),
        include_str!("migrations/postgres_010_journeys.sql"),
    ),
    (
        11,
        include_str!("migrations/sqlite_011_analytics.sql"),
        include_str!("migrations/postgres_011_analytics.sql"),
    ),
    (
        12,
        include_str!("migrations/012_campaign_touches.sql"),
        include_str!("migrations/012_campaign_touches.sql"),
    ),
    (
        13,
        include_str!("migrations/sqlite_013_reviews.sql"),
        include_str!("migrations/postgres_013_reviews.sql"),
    ),
    (
        14,
        include_str!("migrations/014_orders_by_message.sql"),
        include_str!("migrations/014_orders_by_message.sql"),
    ),
    (
        15,
        include_str!("migrations/015_loyalty_lots_by_user.sql"),
        include_str!("migrations/015_loyalty_lots_by_user.sql"),
    ),
    (
        16,
        include_str!("migrations/016_write_key_scope.sql"),
        include_str!("migrations/016_write_key_scope.sql"),
    ),
    (
        17,
        include_str!("migrations/sqlite_017_callback_replays.sql"),
        include_str!("migrations/postgres_017_callback_replays.sql"),
    ),
    (
        18,
        include_str!("migrations/sqlite_018_dead_letters.sql"),
        include_str!("migrations/postgres_018_dead_letters.sql"),
    ),
    (
        19,
        include_str!("migrations/sqlite_019_points_exchanges.sql"),
        include_str!("migrations/postgres_019_points_exchanges.sql"),
    ),
    (
        20,
        concat!(
            include_str!("migrations/sqlite_020_transitions.sql"),
            include_str!("migrations/020_audience_members.sql")
        ),
        concat!(
            include_str!("migrations/postgres_020_transitions.sql"),
            include_str!("migrations/020_audience_members.sql")
        ),
    ),
    (
        21,
        include_str!("migrations/sqlite_021_dead_letter_items.sql"),
        include_str!("migrations/postgres_021_dead_letter_items.sql"),
    ),
    (
        22,
        include_str!("migrations/022_event_campaign.sql"),
        include_str!("migrations/022_event_campaign.sql"),
    ),
    (
        23,
        include_str!("migrations/023_activity.sql"),
        include_str!("migrations/023_activity.sql"),
    ),
    (
        24,
        include_str!("migrations/024_saved_funnels.sql"),
        include_str!("migrations/024_saved_funnels.sql"),
    ),
    (
        25,
        include_str!("migrations/025_spend_periods.sql"),
        include_str!("migrations/025_spend_periods.sql"),
    ),
    (
        26,
        include_str!("migrations/026_shared_log.sql"),
        include_str!("migrations/026_shared_log.sql"),
    ),
    (
        29,
        include_str!("migrations/029_coupon_scope.sql"),
        include_str!("migrations/029_coupon_scope.sql"),
    ),
];

/// A migration's rewrite of existing rows, in Rust, after its SQL and in its transaction.
type Backfill = fn(&mut dyn Conn) -> Result<()>;

/// Migrations with a backfill: `(version, backfill)`.
const BACKFILLS: &[(i64, Backfill)] = &[
    (22, crate::analytics::touches::backfill),
    (23, crate::activity::backfill),
];

/// Applies every migration not yet applied; returns how many ran.
pub fn migrate(conn: &mut dyn Conn) -> Result<usize> {
    conn.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )?;
    let mut ran = 0;
    for (version, sqlite, postgres) in MIGRATIONS {
        let applied = in_write_tx(conn, |c| {
            let done = !c
                .query(
                    "SELECT version FROM schema_migrations WHERE version = $1",
                    &[Param::I64(*version)],
                )?
                .is_empty();
            if done {
                return Ok(false);
            }
            c.batch(match c.dialect() {
                Dialect::Sqlite => sqlite,
                Dialect::Postgres => postgres,
            })?;
            for (_, backfill) in BACKFILLS.iter().filter(|(v, _)| v == version) {
                backfill(c)?;
            }
            let now = chrono::Utc::now().timestamp_millis();
            c.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[Param::I64(*version), Param::I64(now)],
            )?;
            Ok(true)
        })?;
        if applied {
            tracing::debug!(version, "applied migration");
            ran += 1;
        }
    }
    if ran > 0 {
        let latest = MIGRATIONS.last().map_or(0, |(v, _, _)| *v);
        tracing::info!(
            applied = ran,
            schema_version = latest,
            "migrations: {ran} applied"
        );
    }
    Ok(ran)
}
