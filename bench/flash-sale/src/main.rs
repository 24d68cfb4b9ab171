//! Flash-sale benchmark. For each stock backend (embedded, Redis): starts the release
//! `flywheel serve` on 127.0.0.1 with a fresh SQLite store, creates a sale of `--units`
//! units (one per buyer), and lets `--buyers` buyers each try once, from `--clients`
//! keep-alive HTTP clients at once. It checks that exactly `--units` orders were made and
//! that the sale reports 0 left (no oversell, no undersell), and prints requests/s and
//! p50/p99 latency. Then it prices a 10-line cart with 5 candidate coupons (best
//! combination) in-process, and prints carts/s.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};

/// Options.
#[derive(Parser, Debug)]
struct Args {
    /// Buyers, each trying once for one unit.
    #[arg(long, default_value_t = 10_000)]
    buyers: usize,
    /// Units for sale.
    #[arg(long, default_value_t = 100)]
    units: i64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Redis for the second run.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Skip the Redis run.
    #[arg(long)]
    no_redis: bool,
    /// Carts priced for the throughput figure.
    #[arg(long, default_value_t = 20_000)]
    carts: usize,
    /// The flywheel binary [default: next to this one].
    #[arg(long)]
    flywheel: Option<std::path::PathBuf>,
}

/// A running server, stopped on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

const TOKEN: &str = "bench";

fn start(args: &Args, redis: Option<&str>) -> Result<(Server, String)> {
    let bin = args.flywheel.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .map(|p| p.with_file_name("flywheel"))
            .unwrap_or_else(|_| "flywheel".into())
    });
    let dir = std::env::temp_dir().join(format!(
        "flywheel-bench-flash-{}-{}",
        std::process::id(),
        redis.is_some()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = Command::new(bin);
    c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("FLYWHEEL_ADMIN_TOKEN", TOKEN)
        .env("FLYWHEEL_LOG", "warn")
        .stdout(Stdio::piped());
    if let Some(r) = redis {
        c.args(["--redis", r]);
    }
    let mut child = c.spawn().context("starting flywheel serve")?;
    let mut out = std::io::BufReader::new(child.stdout.take().context("stdout")?);
    let server = Server(child);
    let url = loop {
        let mut line = String::new();
        if out.read_line(&mut line)? == 0 {
            bail!("the server exited");
        }
        if let Some(u) = line.trim().strip_prefix("listening on ") {
            break u.to_owned();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Ok((server, url))
}

fn admin(agent: &ureq::Agent, method: &str, url: &str, body: Option<&Value>) -> Result<(u16, Value)> {
    let req = agent
        .request(method, url)
        .set("Authorization", &format!("Bearer {TOKEN}"));
    let resp = match body {
        Some(b) => req.send_string(&b.to_string()),
        None => req.call(),
    };
    let r = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => bail!("{url}: {e}"),
    };
    let status = r.status();
    Ok((status, r.into_json().unwrap_or(Value::Null)))
}

struct Run {
    created: usize,
    sold_out: usize,
    other: usize,
    remaining: i64,
    seconds: f64,
    latencies_ms: Vec<f64>,
}

fn crowd(args: &Args, redis: Option<&str>) -> Result<Run> {
    let (_server, url) = start(args, redis)?;
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
    let now = chrono::Utc::now();
    let sale_id = format!("bench-{}", now.timestamp_millis());
    let sale = json!({"id": sale_id, "product": "茅台", "price": 149900, "stock": args.units,
        "starts_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
        "ends_at": (now + chrono::Duration::hours(1)).to_rfc3339(), "per_user_limit": 1});
    let (status, body) = admin(&agent, "POST", &format!("{url}/api/v1/flash-sales"), Some(&sale))?;
    if status != 201 {
        bail!("creating the sale: {status} {body}");
    }
    let next = AtomicUsize::new(0);
    let counts = [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)];
    let buy_url = format!("{url}/api/v1/flash-sales/{sale_id}/orders");
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| -> Result<Vec<f64>> {
        let workers: Vec<_> = (0..args.clients)
            .map(|_| {
                let (next, counts, buy_url) = (&next, &counts, &buy_url);
                scope.spawn(move || -> Result<Vec<f64>> {
                    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= args.buyers {
                            return Ok(lat);
                        }
                        let t = Instant::now();
                        let (status, body) = admin(
                            &agent,
                            "POST",
                            buy_url,
                            Some(&json!({"user_id": format!("buyer-{i}")})),
                        )?;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        let k = match (status, body["code"].as_str()) {
                            (201, _) => 0,
                            (409, Some("sold_out")) => 1,
                            _ => 2,
                        };
                        counts[k].fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.join().map_err(|_| anyhow::anyhow!("a client panicked"))??);
        }
        Ok(all)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let (_, list) = admin(&agent, "GET", &format!("{url}/api/v1/flash-sales"), None)?;
    let remaining = list["sales"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["sale"]["id"] == sale_id.as_str()))
        .and_then(|x| x["remaining"].as_i64())
        .context("the sale in the list")?;
    Ok(Run {
        created: counts[0].load(Ordering::Relaxed),
        sold_out: counts[1].load(Ordering::Relaxed),
        other: counts[2].load(Ordering::Relaxed),
        remaining,
        seconds,
        latencies_ms: latencies,
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

fn pricing(carts: usize) -> Result<(f64, i64)> {
    let lines: Vec<Value> = (0..10)
        .map(|i| {
            let (shop, category) = (["X", "Y"][i % 2], ["護膚", "服飾", "食品"][i % 3]);
            json!({"shop": shop, "product": format!("P{i}"), "category": category,
                   "unit_price": 5_000 + 1_000 * i as i64, "unit_cost": 2_000, "quantity": 1 + (i % 3) as i64})
        })
        .collect();
    let input: flywheel_promotions::PricingInput = serde_json::from_value(json!({
        "cart": {"lines": lines, "shipping": 1000},
        "buyer": {"user_id": "u", "tier": "黃金", "first_order": true},
        "promotions": [
            {"id": "店鋪滿300減50", "scope": {"type": "shop", "shop": "X"}, "kind": {"type": "ladder", "steps": [{"min": 30000, "off": 5000}]}},
            {"id": "跨店每滿200減20", "kind": {"type": "every_full", "per": 20000, "off": 2000, "cap": 10000}},
            {"id": "會員價", "kind": {"type": "tier_discount", "percents": {"黃金": 95}}},
            {"id": "首購立減5元", "kind": {"type": "first_order", "off": 500}}
        ],
        "coupons": [
            {"id": "店X減40", "scope": {"type": "shop", "shop": "X"}, "benefit": {"type": "amount", "off": 4000, "min_spend": 20000}},
            {"id": "店X9折", "scope": {"type": "shop", "shop": "X"}, "benefit": {"type": "percent", "percent": 90, "cap": 6000}},
            {"id": "護膚15元", "scope": {"type": "categories", "categories": ["護膚"]}, "benefit": {"type": "amount", "off": 1500}},
            {"id": "平臺滿500減60", "benefit": {"type": "amount", "off": 6000, "min_spend": 50000}},
            {"id": "免運", "benefit": {"type": "free_shipping"}}
        ],
        "now": chrono::Utc::now().to_rfc3339(),
        "best_combination": true
    }))?;
    let started = Instant::now();
    let mut payable = 0;
    for _ in 0..carts {
        payable = flywheel_promotions::quote(&input)?.payable.0;
    }
    Ok((carts as f64 / started.elapsed().as_secs_f64(), payable))
}

fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "flash sale: {} buyers, one try each, {} keep-alive clients, {} units, per-user limit 1",
        args.buyers, args.clients, args.units
    );
    let mut backends: Vec<(&str, Option<String>)> = vec![("embedded", None)];
    if !args.no_redis {
        backends.push(("redis", Some(args.redis.clone())));
    }
    let mut failed = false;
    for (name, redis) in backends {
        let mut r = crowd(&args, redis.as_deref())?;
        r.latencies_ms.sort_by(f64::total_cmp);
        let oversold = r.created as i64 - args.units;
        let ok = r.created as i64 == args.units && r.remaining == 0 && r.other == 0;
        failed |= !ok;
        println!(
            "  {name:9} orders {:>5}  sold out {:>5}  other {:>3}  left {:>3}  oversold {:>2}  {:>8.0} req/s  p50 {:6.2} ms  p99 {:6.2} ms  {}",
            r.created,
            r.sold_out,
            r.other,
            r.remaining,
            oversold.max(0),
            args.buyers as f64 / r.seconds,
            percentile(&r.latencies_ms, 0.5),
            percentile(&r.latencies_ms, 0.99),
            if ok { "OK" } else { "WRONG" }
        );
    }
    let (rate, payable) = pricing(args.carts)?;
    println!(
        "pricing: 10-line cart, 4 promotions, 5 candidate coupons, best combination: {rate:.0} carts/s on one core (payable {})",
        flywheel_core_fen(payable)
    );
    if failed {
        bail!("a run sold the wrong number of units");
    }
    Ok(())
}

fn flywheel_core_fen(fen: i64) -> String {
    format!("{}.{:02} 元", fen / 100, fen % 100)
}
