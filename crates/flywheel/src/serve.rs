//! `flywheel serve`: wiring the store, the ingest pipeline and the HTTP router, and
//! shutting down gracefully (stop accepting, finish in-flight requests, commit
//! everything acknowledged) on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use flywheel_api::auth::{AdminToken, WriteKeys};
use flywheel_api::AppState;
use flywheel_audience::config::AudienceConfig;
use flywheel_audience::Audience;
use flywheel_core::bus::{Bus, InProcessBus};
use flywheel_core::SystemClock;
use flywheel_ingest::pipeline::CommitObserver;
use flywheel_ingest::Pipeline;
use flywheel_promotions::flash::{AnyStock, FlashSales, MemoryStock, RedisStock};
use flywheel_store::{hash_secret, new_secret, Store};
use tokio::sync::watch;

use crate::config::{ServerSettings, Settings};
use crate::hooks::{AudienceObserver, JourneyObserver, Observers, OrderHooks};

/// Setting under which the admin token's SHA-256 is stored.
const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

/// A running server.
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    pipeline: Pipeline,
    hooks: crate::hooks::HooksDrain,
    audience: Audience,
    store: Store,
}

/// How long a graceful stop may take before the process stops anyway.
pub const SHUTDOWN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(12);

impl RunningServer {
    /// Waits for SIGTERM/SIGINT, then shuts down gracefully within
    /// [`SHUTDOWN_DEADLINE`]; past it, or at a second signal, it stops at once (what was
    /// acknowledged is durable; unfinished requests are retried by their clients, and
    /// unapplied order hooks and timers are taken up at the next start).
    pub async fn run_until_signal(self) -> Result<()> {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        tokio::select! {
            done = tokio::time::timeout(SHUTDOWN_DEADLINE, self.shutdown()) => match done {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(deadline_s = SHUTDOWN_DEADLINE.as_secs(), "stopping before in-flight work finished: the shutdown deadline passed");
                    Ok(())
                }
            },
            () = wait_for_signal() => {
                tracing::warn!("second signal: stopping at once");
                Ok(())
            }
        }
    }

    /// Stops accepting, finishes in-flight requests, commits every queued batch, logs the
    /// segment and tag transitions it caused (2 s at most) and gives the order hooks (points, referral rewards) up to 10 s to catch up with them; what
    /// they have not reached is applied after the next start. Last, the store is closed:
    /// SQLite's WAL is checkpointed into the database and truncated.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("server task")?.context("server")?;
        self.pipeline.shutdown().await;
        // The transitions computed from the last batches are logged (what is not, the next
        // start's reconciliation finds).
        if tokio::time::timeout(std::time::Duration::from_secs(2), self.audience.flush())
            .await
            .is_err()
        {
            tracing::info!(
                "stopped before every segment and tag transition was logged; the next start logs the rest"
            );
        }
        let left = self.hooks.wait(std::time::Duration::from_secs(10)).await;
        if left > 0 {
            tracing::info!(
                events = left,
                "stopped before the order hooks (points, referral rewards) caught up; the next start applies the rest"
            );
        }
        if let Err(e) = self.store.close().await {
            tracing::warn!(error = %e, "closing the store failed; the next start checkpoints the WAL");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The admin credential: `--admin-token`/`FLYWHEEL_ADMIN_TOKEN`, else the stored one, else a
/// new token, stored (hash only) and saved to `DATA_DIR/admin_token` (mode 0600). Where it
/// was saved is printed, the token itself only when `print` is set (stdout usually ends
/// up in service logs; `flywheel token show` reads the file).
pub async fn admin_token(
    store: &Store,
    given: Option<&str>,
    data_dir: &Path,
    print: bool,
) -> Result<AdminToken> {
    if let Some(t) = given.filter(|t| !t.is_empty()) {
        return Ok(AdminToken::from_hash(hash_secret(t)));
    }
    if let Some(hash) = store.setting(ADMIN_TOKEN_SETTING).await? {
        return Ok(AdminToken::from_hash(hash));
    }
    let token = new_secret("adm_");
    if store
        .set_setting_once(ADMIN_TOKEN_SETTING, hash_secret(&token))
        .await?
    {
        crate::private::create_dir(data_dir)?;
        let path = crate::private::admin_token_file(data_dir);
        crate::private::write_file(&path, &format!("{token}\n"))?;
        if print {
            println!("admin token: {token}");
        }
        println!(
            "admin token saved to {} (readable only by this user; `flywheel token show` prints it)",
            path.display()
        );
        return Ok(AdminToken::from_hash(hash_secret(&token)));
    }
    // Another process stored one first.
    let hash = store
        .setting(ADMIN_TOKEN_SETTING)
        .await?
        .context("admin token vanished")?;
    Ok(AdminToken::from_hash(hash))
}

/// Builds the audience engine over `store` on a bus of its own (the CLI: it does not keep
/// the transitions log, the server does).
pub async fn open_audience(store: &Store, config: AudienceConfig) -> Result<Audience> {
    open_audience_on(store, config, Arc::new(InProcessBus::default()), false).await
}

/// Builds the audience engine over `store`, publishing on `bus` (wall clock), keeping
/// the transitions log when `keeps_log` (the server).
async fn open_audience_on(
    store: &Store,
    config: AudienceConfig,
    bus: Arc<dyn Bus>,
    keeps_log: bool,
) -> Result<Audience> {
    let started = std::time::Instant::now();
    let clock = Arc::new(SystemClock);
    let opened = if keeps_log {
        Audience::open(store.clone(), config, bus, clock).await
    } else {
        Audience::open_unrecorded(store.clone(), config, bus, clock).await
    };
    let audience = opened.map_err(|e| match e {
        flywheel_audience::Error::Store(s) => anyhow::Error::new(s).context("building the audience index"),
        other => crate::BadInput(format!("[audience] settings: {other}")).into(),
    })?;
    tracing::info!(
        profiles = audience.profiles(),
        ms = started.elapsed().as_millis() as u64,
        "audience index built"
    );
    release_freed_memory();
    Ok(audience)
}

/// Hands the memory freed after the start-up rebuild (the store snapshot) back to the
/// operating system: glibc keeps freed heap pages otherwise, which at a million profiles
/// is gigabytes of resident memory doing nothing.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists; it takes no pointer from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Gives the memory of request bodies back to the operating system once a burst of them
/// is over: glibc keeps freed heap pages in its arenas, so without this the resident size
/// stays at the burst's peak. Checked every 2 s; trims when more than 8 MiB of bodies
/// were held since the last check and less than a quarter of that is held now.
fn spawn_body_memory_release(bodies: flywheel_api::body::BodyBudget) {
    const WORTH_IT: usize = 8 << 20;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut burst = 0usize;
        loop {
            tick.tick().await;
            burst = burst.max(bodies.take_peak());
            if burst > WORTH_IT && bodies.in_use() < burst / 4 {
                burst = 0;
                let _ = tokio::task::spawn_blocking(release_freed_memory).await;
            }
        }
    });
}

/// Flash sales over Redis stock when `redis` is given, else in-process stock; a task
/// releases unpaid holds every second.
async fn open_flash(store: &Store, redis: Option<&str>) -> Result<Arc<FlashSales<AnyStock>>> {
    let stock = match redis {
        Some(url) => AnyStock::Redis(
            RedisStock::connect(url, "flywheel")
                .await
                .map_err(|e| crate::BadInput(format!("--redis {url}: {e}")))?,
        ),
        None => AnyStock::Memory(MemoryStock::default()),
    };
    let sales = Arc::new(
        FlashSales::open(store.clone(), Arc::new(stock), Arc::new(SystemClock))
            .await
            .context("loading flash sales")?,
    );
    let sweeper = Arc::downgrade(&sales);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(sales) = sweeper.upgrade() else { break };
            if let Err(e) = sales.sweep().await {
                tracing::warn!(error = %e, "releasing lapsed flash-sale holds failed");
            }
        }
    });
    Ok(sales)
}

/// Expires open groups past their deadline every second (their orders are cancelled).
fn spawn_group_expiry(groups: flywheel_promotions::group::GroupBuys) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            match groups.expire_due().await {
                Ok(expired) if !expired.is_empty() => {
                    tracing::debug!(groups = ?expired, "group buys expired");
                    tracing::info!(expired = expired.len(), "group buys: {} expired", expired.len());
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "expiring group buys failed"),
            }
        }
    });
}

/// Writes the expiry of lapsed point lots every minute, and re-evaluates member tiers
/// once a day (orders age out of the 365-day window), publishing `tier.changed`.
fn spawn_loyalty_daily(loyalty: flywheel_loyalty::Loyalty, bus: Arc<dyn Bus>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut last_tiers: Option<chrono::NaiveDate> = None;
        loop {
            tick.tick().await;
            let now = chrono::Utc::now();
            if let Err(e) = loyalty.expire_due(now).await {
                tracing::warn!(error = %e, "expiring points failed");
            }
            if last_tiers != Some(now.date_naive()) {
                last_tiers = Some(now.date_naive());
                match loyalty.evaluate_all_tiers(now).await {
                    Ok(changes) => {
                        changes
                            .iter()
                            .for_each(|c| crate::hooks::publish_tier_change(bus.as_ref(), c));
                        tracing::info!(changed = changes.len(), "tiers: {} changed", changes.len());
                    }
                    Err(e) => tracing::warn!(error = %e, "re-evaluating tiers failed"),
                }
            }
        }
    });
}

/// Setting under which the secret sealing tracked links and unsubscribe tokens is kept.
const LINK_SECRET_SETTING: &str = "link_secret";

/// The link secret: stored once, shared by every process on the store.
async fn link_secret(store: &Store) -> Result<Vec<u8>> {
    if let Some(s) = store.setting(LINK_SECRET_SETTING).await? {
        return Ok(s.into_bytes());
    }
    store
        .set_setting_once(LINK_SECRET_SETTING, new_secret("lnk_"))
        .await?;
    Ok(store
        .setting(LINK_SECRET_SETTING)
        .await?
        .context("link secret vanished")?
        .into_bytes())
}

/// Connects the providers and starts the journey engine (public URL defaults to the
/// bound address). An embedded (SQLite) store has one process, so leases left by a
/// crash are released at once.
async fn open_journeys(
    store: &Store,
    settings: &Settings,
    addr: SocketAddr,
    services: flywheel_journeys::Services,
    bus: Arc<dyn Bus>,
) -> Result<flywheel_journeys::Engine> {
    let mut config = settings.journeys.clone();
    if config.public_url.is_empty() {
        config.public_url = format!("http://{addr}");
    }
    let mut providers =
        flywheel_journeys::Providers::connect(config.email.as_ref(), &config.providers, config.retry)
            .map_err(crate::BadInput)?;
    providers.renderer = renderer(config.rendering);
    let single_process = matches!(settings.store, flywheel_store::StoreConfig::Sqlite(_));
    let engine = flywheel_journeys::Engine::new(
        store.clone(),
        Arc::new(SystemClock),
        config,
        providers,
        services,
        link_secret(store).await?,
    );
    engine
        .start(single_process, Some(bus))
        .await
        .context("starting the journey engine")?;
    Ok(engine)
}

/// Where this process renders messages: in sandbox children of its own executable (two
/// at most, one per core of the machines we size for), so a template or a customer's
/// data that loops or allocates without end costs one failed message, never the server.
/// Without a known executable (never on Linux), in-process within the step and output
/// limits.
pub(crate) fn renderer(limits: flywheel_channels::RenderLimits) -> flywheel_channels::Renderer {
    use flywheel_channels::{sandbox::WORKER_ARG, RenderSandbox, Renderer};
    match std::env::current_exe() {
        Ok(exe) => Renderer::Sandboxed(Arc::new(RenderSandbox::new(
            exe,
            vec![WORKER_ARG.to_string()],
            limits,
            2,
        ))),
        Err(e) => {
            tracing::warn!(error = %e, "no path to this executable: rendering in-process");
            Renderer::in_process(limits)
        }
    }
}

/// The analytics reports of `store` under the settings (shop timezone and signup events
/// of `[audience]`, the rest of `[analytics]`).
pub fn reports_of(store: &Store, settings: &Settings) -> flywheel_analytics::reports::Reports {
    flywheel_analytics::reports::Reports::new(
        store.clone(),
        settings.analytics.clone(),
        settings.audience.timezone,
        settings.audience.sign_up_events.clone(),
    )
}

/// Checks running campaigns every `[analytics.guardrail] interval_secs` and pauses a
/// journey whose campaign trips a guardrail (R11.4), with an alert and an audit entry;
/// each alert is also sent through `[analytics.notify]`.
fn spawn_guardrails(
    reports: flywheel_analytics::reports::Reports,
    journeys: flywheel_journeys::Engine,
    notifier: crate::notify::Notifier,
) {
    let g = reports.config().guardrail.clone();
    if !g.enabled {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(g.interval_secs.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp_millis();
            match crate::guard::enforce(&reports, &journeys, now).await {
                Ok(alerts) => {
                    for a in alerts {
                        notifier.alert(&a).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "guardrail check failed"),
            }
        }
    });
}

/// Looks every ten minutes for a weekly or monthly review that is due (R10.5,
/// `[analytics.reviews]`), writes it with its benchmark alerts (R10.6) and sends it.
fn spawn_reviews(reports: flywheel_analytics::reports::Reports, notifier: crate::notify::Notifier) {
    let r = &reports.config().reviews;
    if !r.weekly && !r.monthly {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(e) = crate::review::write_due(&reports, &notifier, now).await {
                tracing::warn!(error = %e, "writing the due reviews failed");
            }
        }
    });
}

/// Binds, starts serving, and prints `listening on http://HOST:PORT`.
pub async fn start(
    store: Store,
    admin: AdminToken,
    server: &ServerSettings,
    settings: &Settings,
) -> Result<RunningServer> {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::default());
    let audience = open_audience_on(&store, settings.audience.clone(), bus.clone(), true).await?;
    let audience_handle = audience.clone();
    let faults = std::env::var("FLYWHEEL_FAULTS").unwrap_or_default();
    audience.inject_append_failures(flywheel_core::faults::count(&faults, "transitions.append"));
    // This process keeps the transitions log current: log what changed while it was down.
    audience.reconcile();
    let clock: Arc<dyn flywheel_core::Clock> = Arc::new(SystemClock);
    let coupons = flywheel_promotions::coupons::CouponService::new(store.clone(), clock.clone());
    let flash = open_flash(&store, server.redis.as_deref()).await?;
    let groups = flywheel_promotions::group::GroupBuys::new(store.clone(), clock.clone());
    let referrals =
        flywheel_promotions::referral::Referrals::new(store.clone(), clock.clone(), coupons.clone());
    let loyalty = flywheel_loyalty::Loyalty::new(store.clone(), clock, settings.loyalty.clone())
        .map_err(|e| crate::BadInput(format!("[loyalty] settings: {e}")))?;
    spawn_group_expiry(groups.clone());
    spawn_loyalty_daily(loyalty.clone(), bus.clone());
    let journey_hook = Arc::new(JourneyObserver::default());
    let notifier = crate::notify::Notifier::new(settings)?;
    let rewards = crate::order_rewards::OrderRewards {
        loyalty: loyalty.clone(),
        referrals: referrals.clone(),
        bus: bus.clone(),
        faults: Arc::new(crate::order_rewards::Faults::from_env()),
    };
    let order_hooks = Arc::new(OrderHooks::start(
        rewards.clone(),
        store.clone(),
        notifier.clone(),
        server.dead_letter_after,
    ));
    let hooks = order_hooks.drain();
    let observer: Arc<dyn CommitObserver> = Arc::new(Observers(vec![
        Arc::new(AudienceObserver(audience.clone())),
        order_hooks.clone(),
        journey_hook.clone(),
    ]));
    let pipeline = Pipeline::start_observed(store.clone(), server.pipeline, Some(observer));
    let listener = tokio::net::TcpListener::bind(&server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", server.listen))?;
    let addr = listener.local_addr()?;
    let journeys = open_journeys(
        &store,
        settings,
        addr,
        flywheel_journeys::Services {
            audience: Some(audience.clone()),
            coupons: Some(coupons.clone()),
            loyalty: Some(loyalty.clone()),
            pipeline: Some(pipeline.clone()),
        },
        bus.clone(),
    )
    .await?;
    journeys.inject_transition_failures(flywheel_core::faults::count(&faults, "journeys.transitions"));
    let _ = journey_hook.0.set(journeys.clone());
    let reports = reports_of(&store, settings);
    spawn_guardrails(reports.clone(), journeys.clone(), notifier.clone());
    spawn_reviews(reports.clone(), notifier);
    crate::clv_traits::spawn(
        reports.clone(),
        pipeline.clone(),
        settings.analytics.clv.refresh_hours,
    );
    let bodies =
        flywheel_api::body::BodyBudget::new(server.max_inflight_body_bytes, server.body_idle_timeout);
    spawn_body_memory_release(bodies.clone());
    let audience_gate: Arc<dyn flywheel_promotions::coupons::AudienceGate> =
        Arc::new(crate::adapters::AudienceMembership {
            store: store.clone(),
            audience: audience.clone(),
        });
    let exchange = flywheel_loyalty::PointsExchange::new(
        loyalty.clone(),
        Arc::new(crate::adapters::CouponsForPoints {
            coupons: coupons.clone(),
            gate: audience_gate.clone(),
        }),
    )
    .with_fault(crate::adapters::exchange_fault());
    let state = Arc::new(AppState {
        reports,
        audience,
        audience_gate,
        exchange,
        coupons,
        loyalty,
        referrals,
        groups,
        flash,
        journeys,
        dead_letters: Arc::new(crate::order_rewards::RetryPort {
            store: store.clone(),
            rewards,
        }),
        write_keys: WriteKeys::new(store.clone()),
        bodies: bodies.clone(),
        store: store.clone(),
        pipeline: pipeline.clone(),
        limits: server.limits,
        admin,
    });
    let (stop, mut stopped) = watch::channel(false);
    let app = flywheel_api::router(state);
    let limits = server.connections;
    let task = tokio::spawn(async move {
        flywheel_api::server::serve(listener, app, limits, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await;
        Ok(())
    });
    println!("listening on http://{addr}");
    tracing::info!(%addr, "serving");
    Ok(RunningServer {
        addr,
        stop,
        task,
        pipeline,
        hooks,
        audience: audience_handle,
        store,
    })
}
