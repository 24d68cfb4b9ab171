//! `flywheel serve`: wiring the store, the domain services, the ingest pipeline, the
//! background services (`flywheel_workers`) and the HTTP router, and shutting down
//! gracefully (stop accepting, finish in-flight requests, commit everything
//! acknowledged, stop the services with one signal, close the store) on SIGTERM or SIGINT.

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
use flywheel_workers::observers::{AudienceObserver, JourneyObserver, Observers};
use flywheel_workers::order_rewards::{CatchUp, Faults, OrderRewards, OrderRewardsService};
use flywheel_workers::Workers;
use tokio::sync::watch;

use crate::cli::Role;
use crate::config::{ServerSettings, Settings};
pub use crate::running::RunningServer;

/// Setting under which the admin token's SHA-256 is stored.
const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

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
    open_audience_on(store, config, Arc::new(InProcessBus::default()), Keeping::Publish).await
}

/// How a process's audience engine keeps up and logs transitions.
enum Keeping {
    /// The only server on the store: it folds its own commits and logs transitions.
    Log,
    /// A short-lived CLI process: transitions are only published.
    Publish,
    /// One of several processes: it follows the shared log and logs transitions while it
    /// holds the recorder lease.
    Follow(Box<flywheel_audience::Following>),
}

/// Whether this server follows the shared log: on PostgreSQL (any number of processes may
/// share it) and whenever it runs in a role (`api`, `worker`) meant to run beside others.
fn follows_shared_log(settings: &Settings, server: &ServerSettings) -> bool {
    !matches!(settings.store, flywheel_store::StoreConfig::Sqlite(_)) || server.role != Role::All
}

/// This process's id among the processes on one store: host, process id and a random
/// part (a restarted process is a new holder).
fn process_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    let random = new_secret("");
    format!(
        "{host}:{}:{}",
        std::process::id(),
        random.get(..8).unwrap_or(&random)
    )
}

/// The bus between the processes on one store: NATS JetStream when `--bus` names one
/// (`nats://HOST:PORT`, optionally `?prefix=NAME` for the stream and subjects of this
/// deployment, default `flywheel`), else in-process.
async fn open_bus(server: &ServerSettings) -> Result<Arc<dyn Bus>> {
    let Some(url) = server.bus.as_deref() else {
        return Ok(Arc::new(InProcessBus::default()));
    };
    let (base, prefix) = bus_prefix(url);
    let bus = flywheel_bus::NatsBus::connect(&base, &prefix)
        .await
        .map_err(|e| crate::BadInput(format!("--bus {}: {e}", flywheel_bus::redact(url))))?;
    tracing::info!(prefix = %prefix, "bus: NATS JetStream");
    Ok(Arc::new(bus))
}

/// Splits `?prefix=NAME` off a bus URL.
fn bus_prefix(url: &str) -> (String, String) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), "flywheel".to_owned());
    };
    let mut prefix = "flywheel".to_owned();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("prefix", v)) if !v.is_empty() => prefix = v.to_owned(),
            _ => rest.push(pair),
        }
    }
    let base = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (base, prefix)
}

/// Builds the audience engine over `store`, publishing on `bus` (wall clock), keeping
/// the transitions log when `keeps_log` (the server).
async fn open_audience_on(
    store: &Store,
    config: AudienceConfig,
    bus: Arc<dyn Bus>,
    keeping: Keeping,
) -> Result<Audience> {
    let started = std::time::Instant::now();
    let clock = Arc::new(SystemClock);
    let opened = match keeping {
        Keeping::Log => Audience::open(store.clone(), config, bus, clock).await,
        Keeping::Publish => Audience::open_unrecorded(store.clone(), config, bus, clock).await,
        Keeping::Follow(f) => Audience::open_following(store.clone(), config, bus, clock, *f).await,
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
    crate::memory::release_freed_memory();
    Ok(audience)
}

/// Flash sales over Redis stock when `redis` is given, else in-process stock (the
/// workers' flash sweeper releases unpaid holds).
async fn open_flash(store: &Store, server: &ServerSettings) -> Result<Arc<FlashSales<AnyStock>>> {
    let stock = match server.redis.as_deref() {
        Some(url) => AnyStock::Redis(
            RedisStock::connect(url, &server.redis_prefix)
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
    Ok(sales)
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

/// Connects the providers and prepares the journey engine (public URL defaults to the
/// bound address); its loops run as workers. An embedded (SQLite) store has one
/// process, so leases left by a crash are released at once.
async fn open_journeys(
    store: &Store,
    settings: &Settings,
    server: &ServerSettings,
    addr: SocketAddr,
    services: flywheel_journeys::Services,
) -> Result<flywheel_journeys::Engine> {
    let mut config = settings.journeys.clone();
    if config.public_url.is_empty() {
        config.public_url = format!("http://{addr}");
    }
    let mut providers =
        flywheel_journeys::Providers::connect(config.email.as_ref(), &config.providers, config.retry)
            .map_err(crate::BadInput)?;
    providers.renderer = renderer(config.rendering);
    let single_process =
        matches!(settings.store, flywheel_store::StoreConfig::Sqlite(_)) && server.role == Role::All;
    let engine = flywheel_journeys::Engine::new(
        store.clone(),
        Arc::new(SystemClock),
        config,
        providers,
        services,
        link_secret(store).await?,
    );
    engine
        .prepare(single_process)
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
    .counting_zero_value_orders(settings.audience.count_zero_value_orders)
}

/// The domain services one server shares between its HTTP handlers and its workers.
struct Domain {
    bus: Arc<dyn Bus>,
    /// Leases for the services one process at a time runs (several processes on the
    /// store); `None` in the embedded mode.
    singletons: Option<flywheel_workers::singleton::Singletons>,
    audience: Audience,
    coupons: flywheel_promotions::coupons::CouponService,
    flash: Arc<FlashSales<AnyStock>>,
    groups: flywheel_promotions::group::GroupBuys,
    referrals: flywheel_promotions::referral::Referrals,
    loyalty: flywheel_loyalty::Loyalty,
    notifier: flywheel_workers::notify::Notifier,
}

/// Opens the domain services over `store` under the settings.
async fn open_domain(store: &Store, server: &ServerSettings, settings: &Settings) -> Result<Domain> {
    let bus = open_bus(server).await?;
    let following = follows_shared_log(settings, server);
    let holder = process_id();
    let singletons = following.then(|| flywheel_workers::singleton::Singletons {
        store: store.clone(),
        holder: holder.clone(),
    });
    let keeping = if following {
        Keeping::Follow(Box::new(flywheel_audience::Following::new(
            Arc::new(flywheel_workers::adapters::IngestDecoder),
            holder,
        )))
    } else {
        Keeping::Log
    };
    let mut config = settings.audience.clone();
    // A server on the embedded store saves the engine's state beside the database and
    // starts from it (processes on a shared PostgreSQL rebuild: see docs/audience.md).
    if matches!(settings.store, flywheel_store::StoreConfig::Sqlite(_)) {
        config.snapshot_dir = Some(settings.data_dir.clone());
    }
    let audience = open_audience_on(store, config, bus.clone(), keeping).await?;
    let faults = std::env::var("FLYWHEEL_FAULTS").unwrap_or_default();
    audience.inject_append_failures(flywheel_core::faults::count(&faults, "transitions.append"));
    if !following {
        // This process keeps the transitions log current: log what changed while it was
        // down. (A following process does so when it takes the recorder lease.)
        audience.reconcile();
    }
    let clock: Arc<dyn flywheel_core::Clock> = Arc::new(SystemClock);
    let coupons = flywheel_promotions::coupons::CouponService::new(store.clone(), clock.clone());
    let flash = open_flash(store, server).await?;
    let groups = flywheel_promotions::group::GroupBuys::new(store.clone(), clock.clone());
    let referrals =
        flywheel_promotions::referral::Referrals::new(store.clone(), clock.clone(), coupons.clone());
    let loyalty = flywheel_loyalty::Loyalty::new(store.clone(), clock, settings.loyalty.clone())
        .map_err(|e| crate::BadInput(format!("[loyalty] settings: {e}")))?;
    let notifier = crate::review::notifier(settings)?;
    Ok(Domain {
        bus,
        singletons,
        audience,
        coupons,
        flash,
        groups,
        referrals,
        loyalty,
        notifier,
    })
}

/// Starts the services that need nothing but the domain: group-buy expiry, the loyalty
/// daily jobs, the flash sweeper.
fn start_housekeeping(workers: &mut Workers, d: &Domain) {
    use flywheel_workers::{flash_sweeper, group_expiry, loyalty_daily};
    let one = d.singletons.as_ref();
    workers.spawn_single(group_expiry::GroupExpiry(d.groups.clone()), one);
    workers.spawn_single(
        loyalty_daily::LoyaltyDaily::new(d.loyalty.clone(), d.bus.clone()),
        one,
    );
    workers.spawn_single(flash_sweeper::FlashSweeper(d.flash.clone()), one);
}

/// Starts the upkeep every process of an embedded store needs whatever its role: the WAL
/// watch (SQLite only).
fn start_store_upkeep(workers: &mut Workers, store: &Store) {
    if let Some(w) = flywheel_workers::wal::WalWatch::new(store.clone()) {
        workers.spawn(w);
    }
}

/// The order rewards workflow (points, referral rewards): run by the service in worker
/// processes, retried from the dead-letter list through the API.
fn order_rewards(d: &Domain) -> OrderRewards {
    OrderRewards {
        loyalty: d.loyalty.clone(),
        referrals: d.referrals.clone(),
        bus: d.bus.clone(),
        faults: Arc::new(Faults::from_env()),
    }
}

/// Starts the order rewards service; returns where it stands (for a graceful stop) and
/// the observer that wakes it.
fn start_order_rewards(
    workers: &mut Workers,
    rewards: &OrderRewards,
    d: &Domain,
    store: &Store,
    server: &ServerSettings,
) -> (CatchUp, Arc<dyn CommitObserver>) {
    let service = OrderRewardsService::new(
        rewards.clone(),
        store.clone(),
        d.notifier.clone(),
        server.dead_letter_after,
    );
    let catch_up = service.catch_up();
    let wake: Arc<dyn CommitObserver> = Arc::new(service.wake());
    workers.spawn_single(service, d.singletons.as_ref());
    (catch_up, wake)
}

/// Starts the services over the reports: guardrails, reviews, the CLV refresh (each
/// unless turned off in the settings).
fn start_reporting(
    workers: &mut Workers,
    reports: &flywheel_analytics::reports::Reports,
    journeys: &flywheel_journeys::Engine,
    notifier: &flywheel_workers::notify::Notifier,
    pipeline: &Pipeline,
    settings: &Settings,
    one: Option<&flywheel_workers::singleton::Singletons>,
) {
    use flywheel_workers::{clv_refresh, guardrails, reviews};
    if let Some(g) = guardrails::Guardrails::new(reports.clone(), journeys.clone(), notifier.clone()) {
        workers.spawn_single(g, one);
    }
    if let Some(r) = reviews::Reviews::new(reports.clone(), notifier.clone()) {
        workers.spawn_single(r, one);
    }
    let hours = settings.analytics.clv.refresh_hours;
    if let Some(c) = clv_refresh::ClvRefresh::new(reports.clone(), pipeline.clone(), hours) {
        workers.spawn_single(c, one);
    }
}

/// The points-for-coupon exchange behind the coupon audience gate; returns both.
fn exchange_of(
    d: &Domain,
    store: &Store,
) -> (
    Arc<dyn flywheel_promotions::coupons::AudienceGate>,
    flywheel_loyalty::PointsExchange,
) {
    use flywheel_workers::adapters;
    let gate: Arc<dyn flywheel_promotions::coupons::AudienceGate> = Arc::new(adapters::AudienceMembership {
        store: store.clone(),
        audience: d.audience.clone(),
    });
    let exchange = flywheel_loyalty::PointsExchange::new(
        d.loyalty.clone(),
        Arc::new(adapters::CouponsForPoints {
            coupons: d.coupons.clone(),
            gate: gate.clone(),
        }),
    )
    .with_fault(adapters::exchange_fault());
    (gate, exchange)
}

/// Binds, starts serving and the background services, and prints
/// `listening on http://HOST:PORT`.
pub async fn start(
    store: Store,
    admin: AdminToken,
    server: &ServerSettings,
    settings: &Settings,
) -> Result<RunningServer> {
    let role = server.role;
    let d = open_domain(&store, server, settings).await?;
    let shared = crate::shared_limits::open(server).await?;
    let mut workers = Workers::new();
    start_store_upkeep(&mut workers, &store);
    let rewards = order_rewards(&d);
    let journey_hook = Arc::new(JourneyObserver::default());
    let mut observers: Vec<Arc<dyn CommitObserver>> = vec![Arc::new(AudienceObserver(d.audience.clone()))];
    let mut catch_up = None;
    if role.runs_workers() {
        start_housekeeping(&mut workers, &d);
        let (at, wake_rewards) = start_order_rewards(&mut workers, &rewards, &d, &store, server);
        catch_up = Some(at);
        observers.push(wake_rewards);
        observers.push(journey_hook.clone());
    }
    observers.push(Arc::new(flywheel_workers::observers::LogAdvanced(d.bus.clone())));
    let observer: Arc<dyn CommitObserver> = Arc::new(Observers(observers));
    let pipeline = Pipeline::start_observed(store.clone(), server.pipeline, Some(observer));
    let listener = tokio::net::TcpListener::bind(&server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", server.listen))?;
    let addr = listener.local_addr()?;
    let services = flywheel_journeys::Services {
        alerts: Some(Arc::new(flywheel_workers::journey_steps::JourneyAlerts {
            store: store.clone(),
            notifier: d.notifier.clone(),
        })),
        faults: flywheel_workers::journey_steps::EffectFaults::from_env(),
        caps: shared.caps,
        ..flywheel_workers::journey_ports::services(
            Some(d.audience.clone()),
            Some(d.coupons.clone()),
            Some(d.loyalty.clone()),
            Some(pipeline.clone()),
        )
    };
    let journeys = open_journeys(&store, settings, server, addr, services).await?;
    journeys.inject_transition_failures(flywheel_core::faults::count(
        &std::env::var("FLYWHEEL_FAULTS").unwrap_or_default(),
        "journeys.transitions",
    ));
    let _ = journey_hook.0.set(journeys.clone());
    if role.runs_workers() {
        flywheel_workers::observers::wake_on_remote_commits(d.bus.as_ref(), journeys.clone());
    }
    let reports = reports_of(&store, settings);
    if role.runs_workers() {
        flywheel_workers::journeys::spawn(&mut workers, &journeys, d.bus.as_ref(), d.singletons.as_ref());
        start_reporting(
            &mut workers,
            &reports,
            &journeys,
            &d.notifier,
            &pipeline,
            settings,
            d.singletons.as_ref(),
        );
    }
    let bodies =
        flywheel_api::body::BodyBudget::new(server.max_inflight_body_bytes, server.body_idle_timeout);
    crate::memory::spawn_body_memory_release(bodies.clone(), workers.shutdown_signal());
    let (audience_gate, exchange) = exchange_of(&d, &store);
    let audience = d.audience.clone();
    let state = Arc::new(AppState {
        reports,
        audience: d.audience,
        audience_gate,
        exchange,
        coupons: d.coupons,
        loyalty: d.loyalty,
        referrals: d.referrals,
        groups: d.groups,
        flash: d.flash,
        journeys,
        dead_letters: Arc::new(crate::dead_letter_cmd::DeadLetterPort {
            store: store.clone(),
            rewards,
        }),
        workers: workers.health(),
        write_keys: WriteKeys::new(store.clone()),
        bodies,
        store: store.clone(),
        pipeline: pipeline.clone(),
        limits: server.limits,
        rate_limits: shared.rates,
        admin,
    });
    let (stop, task) = serve_http(listener, state, server);
    println!("listening on http://{addr}");
    tracing::info!(%addr, role = ?role, "serving");
    Ok(RunningServer {
        addr,
        stop,
        task,
        pipeline,
        order_rewards: catch_up,
        audience,
        workers,
        store,
    })
}

/// Serves `state`'s router on `listener` until the returned sender says stop.
fn serve_http(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    server: &ServerSettings,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let (stop, mut stopped) = watch::channel(false);
    let app = if server.role.serves_api() {
        flywheel_api::router(state)
    } else {
        flywheel_api::ops_router(state)
    };
    let limits = server.connections;
    let task = tokio::spawn(async move {
        flywheel_api::server::serve(listener, app, limits, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await;
        Ok(())
    });
    (stop, task)
}
