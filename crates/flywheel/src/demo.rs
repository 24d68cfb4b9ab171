//! `flywheel demo`: generate a shop, send it through the tracking API of a server
//! started in this process (the same path as real traffic), then keep serving.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{NaiveDate, TimeZone, Utc};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::DemoArgs;
use crate::config::{self, FileConfig, Settings};
use crate::demo_data::{generate, DemoOptions};
use crate::{commands, serve, BadInput};

/// Messages per tracking request.
const BATCH: usize = 100;
/// Concurrent senders.
const SENDERS: usize = 4;

/// Runs the demo.
pub async fn run(args: DemoArgs, mut settings: Settings, file: FileConfig) -> Result<()> {
    if settings.analytics.benchmarks.is_empty() {
        settings.analytics.benchmarks = demo_benchmarks();
    }
    let server_settings = config::server(&args.serve, &file).map_err(|e| BadInput(format!("{e:#}")))?;
    let end = match &args.end {
        Some(d) => {
            let day = NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| BadInput(format!("--end {d:?}: use YYYY-MM-DD")))?;
            Utc.from_utc_datetime(&day.and_hms_opt(23, 59, 59).context("end of day")?)
        }
        None => Utc::now(),
    };
    let store = commands::open_store(&settings).await?;
    let admin = serve::admin_token(
        &store,
        args.serve.admin_token.as_deref(),
        &settings.data_dir,
        args.serve.print_admin_token,
    )
    .await?;
    // The demo writes its reviews itself once the shop is generated; the server's review
    // loop would otherwise review the empty shop at once.
    let mut serving = settings.clone();
    serving.analytics.reviews.weekly = false;
    serving.analytics.reviews.monthly = false;
    let server = serve::start(store.clone(), admin, &server_settings, &serving).await?;
    let (_, secret) = store
        .create_write_key("demo".into(), flywheel_store::KeyScope::Server)
        .await?;

    let opts = DemoOptions {
        users: args.users,
        seed: args.seed,
        end,
    };
    eprintln!("generating a shop of {} users (seed {}) …", args.users, args.seed);
    let messages = tokio::task::spawn_blocking(move || generate(&opts)).await?;
    let url = format!("http://{}/v1/batch", server.addr);
    let total = messages.len();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} ingesting [{elapsed_precise}] {wide_bar} {pos}/{len} events ({per_sec})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let sent = tokio::task::spawn_blocking({
        let (bar, url, secret) = (bar.clone(), url.clone(), secret.clone());
        move || send_all(&url, &secret, messages, &bar)
    })
    .await??;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "ingested {sent} events through the tracking API in {secs:.1} s ({:.0} events/s)",
        sent as f64 / secs.max(1e-9)
    );
    let reports = serve::reports_of(&store, &settings);
    let (messages, spend) =
        crate::demo_marketing::generate(&store, &reports, args.seed, end.timestamp_millis()).await?;
    eprintln!(
        "wrote a marketing history: {messages} past campaign messages, {spend} monthly ad-spend entries"
    );
    // Predicted CLV and churn risk on every customer's profile (segments read them),
    // written as the server's CLV refresh writes them: the system's own traits, through
    // the server's pipeline (so its audience engine sees them), never customer activity.
    let at = end.timestamp_millis();
    match flywheel_workers::clv_refresh::refresh(&reports, &server.pipeline, at).await {
        Ok(n) => eprintln!(
            "scored {n} customers with BG/NBD + Gamma-Gamma (traits.clv_churn_risk, traits.clv_p_alive …)"
        ),
        Err(e) => eprintln!("CLV not fitted: {e}"),
    }
    // The seed journeys, as drafts: `flywheel journey start NAME` (with a provider
    // configured under [journeys]) puts one to work on new events.
    crate::journey_cmd::install_seeds(&store, &settings, &[], false).await?;
    let journeys = crate::journey_cmd::engine(&store, &settings, false).await?;
    for a in flywheel_workers::guardrails::enforce(&reports, &journeys, end.timestamp_millis()).await? {
        eprintln!("guardrail: {} {} ({})", a.campaign, a.action, a.detail);
    }
    let written = write_reviews(&reports, end.timestamp_millis()).await?;
    eprintln!("wrote {written} weekly and monthly reviews (flywheel report reviews)");
    let token_at = match args.serve.admin_token.as_deref().filter(|t| !t.is_empty()) {
        Some(_) => "the --admin-token value".to_string(),
        None => format!("{}/admin_token", settings.data_dir.display()),
    };
    eprintln!(
        "try: the console at http://{}/console/ (sign in with the admin token: {token_at})",
        server.addr
    );
    if args.no_serve {
        return server.shutdown().await;
    }
    server.run_until_signal().await
}

/// Example benchmarks (R10.6) the demo's reviews check when none are configured; the
/// values are illustrations, not published industry averages.
fn demo_benchmarks() -> Vec<flywheel_analytics::config::BenchmarkConfig> {
    use flywheel_analytics::config::{BenchmarkConfig, BenchmarkMetric};
    [
        ("示例基準 次日留存 5%", BenchmarkMetric::D1Retention, 0.05),
        ("示例基準 復購率 10%", BenchmarkMetric::RepurchaseRate, 0.10),
        ("示例基準 流失率 ≤ 20%", BenchmarkMetric::ChurnRate, 0.20),
    ]
    .into_iter()
    .map(|(name, metric, value)| BenchmarkConfig {
        name: name.into(),
        metric,
        value,
    })
    .collect()
}

/// Writes the reviews of the last four weeks and three months before `end` (R10.5), each
/// as the server would have written it when it fell due (`at_hour` on the day after the
/// period, or `end` if sooner); returns how many were written.
async fn write_reviews(reports: &flywheel_analytics::reports::Reports, end: i64) -> Result<usize> {
    use flywheel_analytics::review::Cadence;
    let today = reports.day_of(end);
    let at_hour = i64::from(reports.config().reviews.at_hour);
    let mut written = 0;
    for (cadence, count) in [(Cadence::Weekly, 4), (Cadence::Monthly, 3)] {
        let mut day = today;
        for _ in 0..count {
            let (from, to) = cadence.last_complete(day);
            let due = reports.day_start(to + chrono::Duration::days(1)) + at_hour * 3_600_000;
            let review = reports.review(cadence, from, due.min(end)).await?;
            written += usize::from(reports.save_review(&review).await?.is_some());
            day = from;
        }
    }
    Ok(written)
}

/// Posts `messages` (Segment messages as JSON text) in batches from several threads;
/// returns how many were accepted.
fn send_all(url: &str, secret: &str, messages: Vec<String>, bar: &ProgressBar) -> Result<usize> {
    let batches: Vec<Vec<String>> = {
        let mut out = Vec::with_capacity(messages.len() / BATCH + 1);
        let mut it = messages.into_iter().peekable();
        while it.peek().is_some() {
            out.push(it.by_ref().take(BATCH).collect());
        }
        out
    };
    let batches = Arc::new(batches);
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let auth = format!("Basic {}", base64_user(secret));
    std::thread::scope(|scope| -> Result<()> {
        let mut workers = Vec::new();
        for _ in 0..SENDERS {
            let (batches, next, sent, auth) = (batches.clone(), next.clone(), sent.clone(), auth.clone());
            workers.push(scope.spawn(move || -> Result<()> {
                let agent = ureq::AgentBuilder::new().build();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else {
                        return Ok(());
                    };
                    let body = format!("{{\"batch\":[{}]}}", batch.join(","));
                    let mut attempt = 0;
                    loop {
                        let request = agent
                            .post(url)
                            .set("Authorization", &auth)
                            .set("Content-Type", "application/json");
                        match request.send_string(&body) {
                            Ok(_) => break,
                            Err(ureq::Error::Status(503, _)) if attempt < 50 => {
                                attempt += 1;
                                std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
                            }
                            Err(ureq::Error::Status(code, r)) => {
                                let text = r.into_string().unwrap_or_default();
                                anyhow::bail!("demo batch refused ({code}): {text}");
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    sent.fetch_add(batch.len(), Ordering::Relaxed);
                    bar.inc(batch.len() as u64);
                }
            }));
        }
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("sender thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(sent.load(Ordering::Relaxed))
}

/// `base64("key:")` for HTTP Basic with an empty password.
fn base64_user(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
}
