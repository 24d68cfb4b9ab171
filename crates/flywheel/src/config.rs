//! Resolving settings: command-line flag, then `FLYWHEEL_*` environment variable (both
//! through clap), then the TOML file, then the built-in default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use flywheel_ingest::request::{DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_MESSAGE_BYTES, MAX_BATCH_BYTES_CEILING};
use flywheel_ingest::{Limits, PipelineConfig};
use flywheel_store::{StoreConfig, Synchronous, WalLimit};
use serde::Deserialize;

use crate::cli::{GlobalArgs, LogFormat, ServeArgs, SyncArg};

/// The optional TOML file: any option, by its long name with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    data_dir: Option<PathBuf>,
    store: Option<String>,
    sqlite_synchronous: Option<SyncArg>,
    sqlite_wal_limit: Option<u64>,
    log: Option<String>,
    log_format: Option<LogFormat>,
    listen: Option<String>,
    max_batch_bytes: Option<usize>,
    max_message_bytes: Option<usize>,
    ingest_queue: Option<usize>,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_idle_timeout_secs: Option<u64>,
    max_inflight_body_bytes: Option<usize>,
    dead_letter_after: Option<u32>,
    /// Redis URL for flash-sale stock, frequency-cap reservations and rate limits.
    redis: Option<String>,
    /// Prefix of every Redis key this installation writes (default `flywheel`): several
    /// installations may share one Redis under different prefixes.
    redis_prefix: Option<String>,
    /// `[limits]`: request rates of the tracking and admin APIs (docs/operations.md).
    limits: Option<flywheel_api::rate_limit::RateLimitConfig>,
    /// `api`, `worker` or `all`.
    role: Option<crate::cli::Role>,
    /// NATS JetStream URL.
    bus: Option<String>,
    /// `[audience]`: built-in tag rules, lifecycle thresholds, RFM bins, windows, timezone
    /// (docs/segments.md, "Configuration").
    audience: Option<flywheel_audience::config::AudienceConfig>,
    /// `[loyalty]`: points rates, check-in bonus, lot validity, member tiers (docs/loyalty.md).
    loyalty: Option<flywheel_loyalty::LoyaltyConfig>,
    /// `[journeys]`: timezone, quiet hours and caps, consent policy, public URL, the SMTP
    /// relay and webhook providers (docs/channels.md).
    journeys: Option<flywheel_journeys::EngineConfig>,
    /// `[analytics]`: attribution, the channel registry and costs, campaign expectations,
    /// guardrails, goals, CLV (docs/analytics.md).
    analytics: Option<flywheel_analytics::config::AnalyticsConfig>,
    /// `[import]`: the floor of imported timestamps (docs/import.md).
    import: Option<ImportConfig>,
}

/// `[import]` of the config file: defaults of `flywheel import`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// Records dated before this are rejected (`YYYY-MM-DD`, the start of that shop-local
    /// day, or an RFC 3339 time); `--not-before` wins. Unset: history of any date.
    pub not_before: Option<String>,
}

impl FileConfig {
    /// Reads `path`, or `./flywheel.toml` when no path is given and that file exists.
    pub fn load(path: Option<&Path>) -> Result<FileConfig> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("flywheel.toml"), false),
        };
        if !required && !path.exists() {
            return Ok(FileConfig::default());
        }
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("reading config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))
    }
}

/// Settings every command needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Where the store lives.
    pub store: StoreConfig,
    /// Log filter.
    pub log: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Audience engine settings (`[audience]` of the TOML file, else the seed defaults).
    pub audience: flywheel_audience::config::AudienceConfig,
    /// Points and tier settings (`[loyalty]`, else the defaults).
    pub loyalty: flywheel_loyalty::LoyaltyConfig,
    /// Journey engine settings (`[journeys]`, else the defaults).
    pub journeys: flywheel_journeys::EngineConfig,
    /// Analytics settings (`[analytics]`, else the defaults).
    pub analytics: flywheel_analytics::config::AnalyticsConfig,
    /// Import defaults (`[import]`, else none).
    pub import: ImportConfig,
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Listen address.
    pub listen: String,
    /// Tracking limits.
    pub limits: Limits,
    /// Pipeline settings.
    pub pipeline: PipelineConfig,
    /// Redis URL for flash-sale stock, frequency-cap reservations and rate limits, shared
    /// by every process; in-process when absent.
    pub redis: Option<String>,
    /// Prefix of this installation's Redis keys (`redis_prefix`, default `flywheel`).
    pub redis_prefix: String,
    /// Request rates of the tracking and admin APIs (`[limits]`, else the defaults).
    pub rate_limits: flywheel_api::rate_limit::RateLimitConfig,
    /// What this process does.
    pub role: crate::cli::Role,
    /// NATS JetStream URL; no bus between processes when absent.
    pub bus: Option<String>,
    /// Connection cap and timeouts.
    pub connections: flywheel_api::server::ConnectionLimits,
    /// Request-body bytes held in memory at once, across all connections.
    pub max_inflight_body_bytes: usize,
    /// How long a request body may send nothing.
    pub body_idle_timeout: Duration,
    /// Failures of one event of its own (not store outages) after which a workflow lists
    /// it as dead-lettered and moves on.
    pub dead_letter_after: u32,
}

/// The smallest `--sqlite-wal-limit`: 1 MiB (below it the store would checkpoint
/// nearly every second for nothing).
const MIN_WAL_LIMIT: u64 = 1 << 20;

/// Resolves the common settings.
pub fn settings(g: &GlobalArgs, f: &FileConfig) -> Result<Settings> {
    let data_dir = g
        .data_dir
        .clone()
        .or(f.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("data"));
    let sync = match g.sqlite_synchronous.or(f.sqlite_synchronous) {
        Some(SyncArg::Full) => Synchronous::Full,
        _ => Synchronous::Normal,
    };
    let url = g.store.clone().or(f.store.clone());
    let wal_limit = g
        .sqlite_wal_limit
        .or(f.sqlite_wal_limit)
        .unwrap_or(WalLimit::DEFAULT_BYTES);
    anyhow::ensure!(
        wal_limit >= MIN_WAL_LIMIT,
        "--sqlite-wal-limit must be at least {MIN_WAL_LIMIT} bytes"
    );
    let store =
        StoreConfig::from_url(url.as_deref(), &data_dir, sync)?.with_wal_limit(WalLimit { bytes: wal_limit });
    Ok(Settings {
        data_dir,
        store,
        log: g.log.clone().or(f.log.clone()).unwrap_or_else(|| "info".into()),
        log_format: g.log_format.or(f.log_format).unwrap_or(LogFormat::Text),
        audience: f.audience.clone().unwrap_or_default(),
        loyalty: f.loyalty.clone().unwrap_or_default(),
        journeys: f.journeys.clone().unwrap_or_default(),
        analytics: f.analytics.clone().unwrap_or_default(),
        import: f.import.clone().unwrap_or_default(),
    })
}

/// Resolves the server settings, checking the limits.
pub fn server(s: &ServeArgs, f: &FileConfig) -> Result<ServerSettings> {
    let max_batch_bytes = s
        .max_batch_bytes
        .or(f.max_batch_bytes)
        .unwrap_or(DEFAULT_MAX_BATCH_BYTES);
    let max_message_bytes = s
        .max_message_bytes
        .or(f.max_message_bytes)
        .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    anyhow::ensure!(
        (1024..=MAX_BATCH_BYTES_CEILING).contains(&max_batch_bytes),
        "--max-batch-bytes must be between 1024 and {MAX_BATCH_BYTES_CEILING}"
    );
    anyhow::ensure!(
        (256..=max_batch_bytes).contains(&max_message_bytes),
        "--max-message-bytes must be between 256 and --max-batch-bytes"
    );
    let mut pipeline = PipelineConfig::default();
    if let Some(q) = s.ingest_queue.or(f.ingest_queue) {
        anyhow::ensure!(q >= 1, "--ingest-queue must be at least 1");
        pipeline.queue_capacity = q;
    }
    let mut connections = flywheel_api::server::ConnectionLimits::default();
    if let Some(n) = s.max_connections.or(f.max_connections) {
        anyhow::ensure!(n >= 1, "--max-connections must be at least 1");
        connections.max_connections = n;
    }
    if let Some(secs) = s.header_timeout_secs.or(f.header_timeout_secs) {
        anyhow::ensure!(
            (1..=3600).contains(&secs),
            "--header-timeout-secs must be between 1 and 3600"
        );
        connections.header_timeout = Duration::from_secs(secs);
    }
    let body_idle = s
        .body_idle_timeout_secs
        .or(f.body_idle_timeout_secs)
        .map(Duration::from_secs)
        .unwrap_or(flywheel_api::body::DEFAULT_BODY_IDLE_TIMEOUT);
    anyhow::ensure!(
        (1..=3600).contains(&body_idle.as_secs()),
        "--body-idle-timeout-secs must be between 1 and 3600"
    );
    let inflight = s
        .max_inflight_body_bytes
        .or(f.max_inflight_body_bytes)
        .unwrap_or(flywheel_api::body::DEFAULT_MAX_INFLIGHT_BODY_BYTES);
    anyhow::ensure!(
        inflight >= max_batch_bytes.max(1 << 20),
        "--max-inflight-body-bytes must be at least 1048576 and at least --max-batch-bytes"
    );
    let redis_prefix = f.redis_prefix.clone().unwrap_or_else(|| "flywheel".into());
    anyhow::ensure!(
        !redis_prefix.is_empty() && !redis_prefix.contains(char::is_whitespace),
        "redis_prefix must be a non-empty word"
    );
    let dead_letter_after = s.dead_letter_after.or(f.dead_letter_after).unwrap_or(5);
    anyhow::ensure!(
        (1..=100).contains(&dead_letter_after),
        "--dead-letter-after must be between 1 and 100"
    );
    Ok(ServerSettings {
        listen: s
            .listen
            .clone()
            .or(f.listen.clone())
            .unwrap_or_else(|| "127.0.0.1:8080".into()),
        limits: Limits {
            max_batch_bytes,
            max_message_bytes,
        },
        pipeline,
        redis: s.redis.clone().or(f.redis.clone()),
        redis_prefix,
        rate_limits: f.limits.unwrap_or_default(),
        role: s.role.or(f.role).unwrap_or_default(),
        bus: s.bus.clone().or(f.bus.clone()),
        connections,
        max_inflight_body_bytes: inflight,
        body_idle_timeout: body_idle,
        dead_letter_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[limits]` example of docs/operations.md parses and shows the defaults.
    #[test]
    fn the_documented_limits_are_the_defaults() {
        let doc = include_str!("../../../docs/operations.md");
        let start = doc
            .find("```toml\n[limits]")
            .expect("docs/operations.md shows [limits]")
            + 8;
        let end = start + doc[start..].find("```").expect("the block ends");
        let file: FileConfig = toml::from_str(&doc[start..end]).expect("the example parses");
        assert_eq!(
            file.limits,
            Some(flywheel_api::rate_limit::RateLimitConfig::default())
        );
    }
}
