//! `bench/ingest`: how fast the tracking API stores events, against the bound of the
//! same rows bulk-inserted straight into the same store.
//!
//! For each backend (SQLite, PostgreSQL): start the release `flywheel serve` on a
//! fresh store, send N events in batches of 100 over loopback HTTP from C concurrent
//! clients (keep-alive), and time it (events/s; p50/p99 batch latency). Then open
//! another fresh store of the same kind and apply the same events (validated and
//! materialised beforehand, outside the timing) in large transactions, timing only
//! the store. Prints both rates and the ratio HTTP/direct, and beside them the SQLite
//! WAL's peak size during each run (sampled every 50 ms) and its final size once the
//! server has stopped gracefully (the direct run closes its store the same way).
//! `--rate N` paces the HTTP clients to N events/s in all, for the latency at a steady
//! load instead of at full speed.
//!
//! Run: `bench/ingest/run` (builds release and runs with defaults), or
//! `cargo run --release -p flywheel-bench-ingest -- --events 1000000`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{TimeZone, Utc};
use clap::Parser;
use flywheel_ingest::ecommerce::materialise;
use flywheel_ingest::request::{parse_batch, Limits};
use flywheel_store::{NewEvent, Store, StoreConfig, Synchronous, Table};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
struct Args {
    /// Events to send.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events per HTTP request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// PostgreSQL URL (a fresh schema is created per run).
    #[arg(
        long,
        env = "FLYWHEEL_TEST_PG",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg: String,
    /// The flywheel binary (default: the release build beside this one).
    #[arg(long)]
    flywheel: Option<PathBuf>,
    /// Pace the HTTP clients to this many events/s in all (default: as fast as they can).
    #[arg(long)]
    rate: Option<f64>,
    /// Measure only the direct insert (for profiling the store).
    #[arg(long)]
    skip_http: bool,
    /// Scratch directory.
    #[arg(long, default_value = "bench/out")]
    out: PathBuf,
}

/// A realistic mix: product views, cart adds, orders, page views, identifies over 50k users.
fn message(i: usize) -> Value {
    let user = i % 50_000;
    let ts = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .map(|t| t + chrono::Duration::seconds(i as i64 * 7));
    let ts = ts.map(|t| t.to_rfc3339()).unwrap_or_default();
    let id = format!("bench-{i}");
    match i % 10 {
        0 => {
            json!({"type": "identify", "userId": format!("u{user}"), "anonymousId": format!("a{user}"), "messageId": id,
                    "timestamp": ts, "traits": {"name": "用戶", "city": "上海", "plan": "vip"}})
        }
        1 | 2 => {
            json!({"type": "page", "anonymousId": format!("a{user}"), "messageId": id, "timestamp": ts, "name": "商品詳情",
                        "context": {"page": {"path": "/p/123", "referrer": "https://example.com"}, "userAgent": "Mozilla/5.0"}})
        }
        3 => {
            json!({"type": "track", "userId": format!("u{user}"), "event": "Product Added", "messageId": id, "timestamp": ts,
                    "properties": {"product_id": format!("P{}", i % 500), "name": "面膜", "category": "護膚", "price": 99.9, "quantity": 1}})
        }
        4 => {
            json!({"type": "track", "userId": format!("u{user}"), "event": "Order Completed", "messageId": id, "timestamp": ts,
                    "properties": {"order_id": format!("O{i}"), "total": 199.8, "currency": "CNY",
                                   "products": [{"product_id": format!("P{}", i % 500), "name": "面膜", "category": "護膚", "price": 99.9, "quantity": 2}]}})
        }
        _ => {
            json!({"type": "track", "userId": format!("u{user}"), "event": "Product Viewed", "messageId": id, "timestamp": ts,
                    "properties": {"product_id": format!("P{}", i % 500), "name": "面膜", "category": "護膚", "brand": "B", "price": 99.9},
                    "context": {"ip": "127.0.0.1", "library": {"name": "bench"}}})
        }
    }
}

fn bodies(args: &Args) -> Vec<String> {
    (0..args.events)
        .step_by(args.batch)
        .map(|start| {
            let batch: Vec<Value> = (start..(start + args.batch).min(args.events))
                .map(message)
                .collect();
            json!({ "batch": batch }).to_string()
        })
        .collect()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn flywheel(args: &Args, site: &[String]) -> Command {
    let bin = args.flywheel.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .map(|p| p.with_file_name("flywheel"))
            .unwrap_or_else(|_| "flywheel".into())
    });
    let mut c = Command::new(bin);
    c.args(site)
        .env("FLYWHEEL_ADMIN_TOKEN", "bench")
        .env("FLYWHEEL_LOG", "warn");
    c
}

struct HttpResult {
    seconds: f64,
    latencies_ms: Vec<f64>,
    wal: WalSizes,
}

/// The SQLite WAL's size during and after a run, in bytes.
#[derive(Debug, Clone, Copy, Default)]
struct WalSizes {
    peak: u64,
    last: u64,
}

impl WalSizes {
    fn show(self, backend: &str) -> String {
        if backend != "sqlite" {
            return "-".into();
        }
        format!("{:.0}/{:.0}", self.peak as f64 / 1e6, self.last as f64 / 1e6)
    }
}

/// Samples the size of `DIR/flywheel.db-wal` every 50 ms until dropped.
struct WalSampler {
    path: PathBuf,
    peak: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WalSampler {
    fn start(site: &[String]) -> WalSampler {
        let path = PathBuf::from(&site[1]).join("flywheel.db-wal");
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (path, peak, stop) = (path.clone(), peak.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(wal_len(&path), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        WalSampler {
            path,
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the peak seen and the size now.
    fn finish(mut self) -> WalSizes {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let last = wal_len(&self.path);
        WalSizes {
            peak: self.peak.load(Ordering::Relaxed).max(last),
            last,
        }
    }
}

fn wal_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn run_http(args: &Args, site: &[String], bodies: &[String]) -> Result<HttpResult> {
    let out = flywheel(args, site)
        .args(["keys", "create", "bench", "--scope", "server", "--format", "json"])
        .output()?;
    if !out.status.success() {
        bail!("keys create: {}", String::from_utf8_lossy(&out.stderr));
    }
    let key: Value = serde_json::from_slice(&out.stdout)?;
    let key = key["secret"].as_str().context("secret")?.to_string();
    let mut child = flywheel(args, site)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdout = std::io::BufReader::new(child.stdout.take().context("stdout")?);
    let server = Server(child);
    let url = loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stdout, &mut line)? == 0 {
            bail!("server exited");
        }
        if let Some(u) = line.trim().strip_prefix("listening on ") {
            break format!("{u}/v1/batch");
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    use base64::Engine;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    );
    let sampler = WalSampler::start(site);
    let next = AtomicUsize::new(0);
    // With --rate, request i is due at i × batch / rate seconds after the start.
    let pace = args
        .rate
        .map(|r| Duration::from_secs_f64(args.batch as f64 / r.max(1e-9)));
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| -> Result<Vec<f64>> {
        let workers: Vec<_> = (0..args.clients)
            .map(|_| {
                let (next, url, auth) = (&next, &url, &auth);
                scope.spawn(move || -> Result<Vec<f64>> {
                    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else { return Ok(lat) };
                        if let Some(due) = pace.map(|p| started + p * i as u32) {
                            std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        }
                        let t = Instant::now();
                        loop {
                            match agent
                                .post(url)
                                .set("Authorization", auth)
                                .set("Content-Type", "application/json")
                                .send_string(body)
                            {
                                Ok(_) => break,
                                Err(ureq::Error::Status(503, _)) => {
                                    std::thread::sleep(Duration::from_millis(5))
                                }
                                Err(e) => bail!("batch {i}: {e}"),
                            }
                        }
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.join().map_err(|_| anyhow::anyhow!("client panicked"))??);
        }
        Ok(all)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    // A graceful stop (SIGTERM, then wait): what the WAL is left at.
    drop(server);
    Ok(HttpResult {
        seconds,
        latencies_ms: latencies,
        wal: sampler.finish(),
    })
}

fn store_config(site: &[String]) -> Result<StoreConfig> {
    let dir = PathBuf::from(&site[1]);
    let url = site.get(3).map(String::as_str);
    Ok(StoreConfig::from_url(url, &dir, Synchronous::Normal)?)
}

async fn run_direct(site: &[String], bodies: &[String]) -> Result<(f64, i64, WalSizes)> {
    // Validation and materialisation happen before the clock starts: the bound is the store alone.
    let now = Utc::now();
    let mut events: Vec<NewEvent> = Vec::with_capacity(bodies.len() * 100);
    for b in bodies {
        let parsed = parse_batch(b.as_bytes(), &Limits::default(), now)?;
        for (i, (e, _)) in parsed.items.into_iter().enumerate() {
            events.push(materialise(e, None, i)?);
        }
    }
    let store = Store::open(store_config(site)?).await?;
    let mut chunks = Vec::new();
    let mut it = events.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(10_000).collect::<Vec<_>>());
    }
    let sampler = WalSampler::start(site);
    let started = Instant::now();
    for chunk in chunks {
        store.apply(chunk).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let count = store.count(Table::Events).await?;
    store.close().await?;
    Ok((seconds, count, sampler.finish()))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn site(args: &Args, backend: &str, tag: &str) -> Result<Vec<String>> {
    let run = format!("{}_{}_{}", backend, tag, std::process::id());
    let dir = args.out.join(&run);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut s = vec!["--data-dir".to_string(), dir.display().to_string()];
    match backend {
        "sqlite" => {}
        "postgres" => s.extend(["--store".to_string(), format!("{}?schema=bench_{run}", args.pg)]),
        other => bail!("unknown backend {other}"),
    }
    Ok(s)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    eprintln!("preparing {} events in batches of {} …", args.events, args.batch);
    let bodies = bodies(&args);
    let mb = bodies.iter().map(String::len).sum::<usize>() as f64 / 1e6;
    println!(
        "ingest bench: {} events, {} per request ({mb:.0} MB of JSON), {} clients, 127.0.0.1",
        args.events, args.batch, args.clients
    );
    if let Some(r) = args.rate {
        println!("http clients paced to {r:.0} events/s in all");
    }
    println!(
        "{:<9} {:>12} {:>10} {:>10} {:>14} {:>12} {:>18} {:>18}",
        "backend",
        "http ev/s",
        "p50 ms",
        "p99 ms",
        "direct ev/s",
        "http/direct",
        "http WAL pk/end MB",
        "direct WAL pk/end"
    );
    for backend in &args.backends {
        let mut h = if args.skip_http {
            HttpResult {
                seconds: f64::NAN,
                latencies_ms: Vec::new(),
                wal: WalSizes::default(),
            }
        } else {
            run_http(&args, &site(&args, backend, "http")?, &bodies)?
        };
        h.latencies_ms.sort_by(f64::total_cmp);
        let direct_site = site(&args, backend, "direct")?;
        let (direct_s, stored, direct_wal) = runtime.block_on(run_direct(&direct_site, &bodies))?;
        if stored != args.events as i64 {
            bail!("direct insert stored {stored} events, expected {}", args.events);
        }
        let http_rate = args.events as f64 / h.seconds;
        let direct_rate = args.events as f64 / direct_s;
        println!(
            "{:<9} {:>12.0} {:>10.1} {:>10.1} {:>14.0} {:>11.0}% {:>18} {:>18}",
            backend,
            http_rate,
            percentile(&h.latencies_ms, 0.50),
            percentile(&h.latencies_ms, 0.99),
            direct_rate,
            100.0 * http_rate / direct_rate,
            h.wal.show(backend),
            direct_wal.show(backend)
        );
        let _ = std::fs::remove_dir_all(args.out.join(format!("{}_http_{}", backend, std::process::id())));
        let _ = std::fs::remove_dir_all(
            args.out
                .join(format!("{}_direct_{}", backend, std::process::id())),
        );
    }
    Ok(())
}
