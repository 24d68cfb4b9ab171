//! `bench/analytics`, the Flywheel side: generates the synthetic shop (`gen`) and times
//! D1/D7/D30 retention and the 4-step window funnel on
//! [`flywheel_analytics::columnar::EventColumns`] (`run`). `duck.py` times DuckDB on the
//! same files and `report.py` checks that both agree and prints the table.
//!
//! Run: `bench/analytics/run` (everything), or by hand:
//! `cargo run --release -p flywheel-bench-analytics -- gen --out bench/out/analytics/data`
//! then `… -- run --data bench/out/analytics/data`.
//!
//! Data files (little-endian, one value per event, in generation order — not sorted):
//! `user.u32` (dense user index), `ts.i64` (ms UTC), `name.u16` (index into the
//! manifest's `names`), and `manifest.json` (sizes, names, period, timezone, queries).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::TimeZone;
use chrono_tz::Tz;
use clap::{Parser, Subcommand};
use flywheel_analytics::columnar::{self, date_to_day, EventColumns, EventColumnsBuilder};
use flywheel_analytics::Period;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// Event names; the index is the id in `name.u16`.
const NAMES: [&str; 10] = [
    "Signed Up",
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Order Completed",
    "Page Viewed",
    "App Opened",
    "Products Searched",
    "Product Removed",
    "Coupon Applied",
];
const SIGNED_UP: u16 = 0;
const VIEWED: u16 = 1;
const ADDED: u16 = 2;
const CHECKOUT: u16 = 3;
const ORDER: u16 = 4;
const PAGE: u16 = 5;
const APP: u16 = 6;
const SEARCH: u16 = 7;
const REMOVED: u16 = 8;
const COUPON: u16 = 9;

const DAY_MS: i64 = 86_400_000;
const TZ: &str = "Asia/Shanghai";
const DAYS: i64 = 90;

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Analytics benchmark, Flywheel side: data generator and the columnar engine's timings")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Writes the synthetic shop to a directory.
    Gen {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Events in total.
        #[arg(long, default_value_t = 50_000_000)]
        events: u64,
        /// Users.
        #[arg(long, default_value_t = 2_000_000)]
        users: u32,
        /// Random seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Loads the data into EventColumns and times retention and the funnel; prints JSON.
    Run {
        /// Directory written by `gen`.
        #[arg(long)]
        data: PathBuf,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Timed runs of each query (the best counts).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
}

fn main() -> Result<()> {
    match Args::parse().cmd {
        Cmd::Gen {
            out,
            events,
            users,
            seed,
        } => generate(&out, events, users, seed),
        Cmd::Run { data, threads, runs } => run(&data, threads, runs.max(1)),
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The next event of a session after `last`: a browse/cart/checkout walk.
fn next_event(rng: &mut ChaCha8Rng, last: u16) -> u16 {
    let p: f64 = rng.gen();
    match last {
        ADDED if p < 0.30 => return CHECKOUT,
        ADDED if p < 0.35 => return REMOVED,
        CHECKOUT if p < 0.55 => return ORDER,
        CHECKOUT if p < 0.65 => return COUPON,
        COUPON if p < 0.60 => return ORDER,
        _ => {}
    }
    let q: f64 = rng.gen();
    match q {
        q if q < 0.56 => VIEWED,
        q if q < 0.70 => PAGE,
        q if q < 0.82 => SEARCH,
        q if q < 0.95 => ADDED,
        q if q < 0.98 => REMOVED,
        _ => CHECKOUT,
    }
}

/// Writes `events` events of `users` users over 90 days from 2026-01-01 (shop time).
///
/// Skew: each user's event budget is 1 + a share of the rest proportional to a
/// log-normal weight (σ = 1.4): the median user has ~10 events, the heaviest thousands.
/// 95 % of users sign up (`Signed Up` first, at a uniform time in the 90 days; 1 % of
/// them sign up a second time later); the other 5 % were users before the period. The
/// rest of the budget is spent in sessions (mean 6 events, 2–240 s apart) that start
/// an exponential time (mean 12 days) after signup, so activity decays with age;
/// sessions walk browse → cart → checkout → order with fixed probabilities. Times past
/// the 90 days are clamped to the last millisecond (which also makes ties).
fn generate(out: &Path, events: u64, users: u32, seed: u64) -> Result<()> {
    if users == 0 || events < u64::from(users) {
        bail!("need at least one event per user ({events} events, {users} users)");
    }
    std::fs::create_dir_all(out)?;
    let tz: Tz = TZ.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = tz
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .context("start")?
        .timestamp_millis();
    let end = start + DAYS * DAY_MS;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    let weights: Vec<f64> = (0..users).map(|_| (1.4 * normal(&mut rng)).exp()).collect();
    let total: f64 = weights.iter().sum();
    let extra = (events - u64::from(users)) as f64;
    let mut budget: Vec<u64> = weights.iter().map(|w| 1 + (w / total * extra) as u64).collect();
    let mut rem = events - budget.iter().sum::<u64>();
    let (mut u, n) = (0usize, budget.len());
    while rem > 0 {
        budget[u % n] += 1;
        u += 1;
        rem -= 1;
    }
    drop(weights);

    let mut fu = BufWriter::with_capacity(1 << 20, File::create(out.join("user.u32"))?);
    let mut ft = BufWriter::with_capacity(1 << 20, File::create(out.join("ts.i64"))?);
    let mut fname = BufWriter::with_capacity(1 << 20, File::create(out.join("name.u16"))?);
    let mut written = 0u64;
    let mut emit = |u: u32, t: i64, n: u16| -> Result<()> {
        fu.write_all(&u.to_le_bytes())?;
        ft.write_all(&t.min(end - 1).to_le_bytes())?;
        fname.write_all(&n.to_le_bytes())?;
        written += 1;
        Ok(())
    };
    for (u, &b) in budget.iter().enumerate() {
        let u = u as u32;
        let mut left = b;
        let s = start + rng.gen_range(0..end - start);
        if rng.gen_bool(0.95) {
            emit(u, s, SIGNED_UP)?;
            left -= 1;
            if left > 0 && rng.gen_bool(0.01) {
                emit(u, s + rng.gen_range(0..end - s), SIGNED_UP)?;
                left -= 1;
            }
        }
        while left > 0 {
            let gap = (-(rng.gen_range(f64::MIN_POSITIVE..1.0f64)).ln() * 12.0 * DAY_MS as f64) as i64;
            let mut t = if s + gap < end {
                s + gap
            } else {
                s + rng.gen_range(0..end - s)
            };
            let mut last = if rng.gen_bool(0.5) { APP } else { PAGE };
            emit(u, t, last)?;
            left -= 1;
            while left > 0 && !rng.gen_bool(1.0 / 6.0) {
                t += rng.gen_range(2_000..240_000);
                last = next_event(&mut rng, last);
                emit(u, t, last)?;
                left -= 1;
            }
        }
    }
    fu.flush()?;
    ft.flush()?;
    fname.flush()?;
    let today = date_to_day(
        chrono::DateTime::from_timestamp_millis(end - 1)
            .context("end")?
            .with_timezone(&tz)
            .date_naive(),
    );
    let manifest = json!({
        "events": written,
        "users": users,
        "seed": seed,
        "names": NAMES,
        "tz": TZ,
        "from": start,
        "to": end,
        "today": today,
        "signup": [SIGNED_UP],
        "days": [1, 7, 30],
        "funnel": [VIEWED, ADDED, CHECKOUT, ORDER],
        "window_ms": DAY_MS,
    });
    std::fs::write(out.join("manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;
    eprintln!("gen: {written} events of {users} users in {}", out.display());
    Ok(())
}

/// A whole little-endian file of fixed-size values.
fn read_values<const N: usize, T>(path: &Path, conv: fn([u8; N]) -> T) -> Result<Vec<T>> {
    let mut bytes = Vec::new();
    File::open(path)
        .with_context(|| path.display().to_string())?
        .read_to_end(&mut bytes)?;
    if bytes.len() % N != 0 {
        bail!(
            "{}: {} bytes is not a multiple of {N}",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            conv(a)
        })
        .collect())
}

fn num(v: &Value, key: &str) -> Result<i64> {
    v[key].as_i64().with_context(|| format!("manifest: {key}"))
}

fn ids(v: &Value, key: &str) -> Result<Vec<u16>> {
    v[key]
        .as_array()
        .with_context(|| format!("manifest: {key}"))?
        .iter()
        .map(|x| {
            x.as_u64()
                .and_then(|x| u16::try_from(x).ok())
                .context("manifest: id")
        })
        .collect()
}

/// The best of `runs` timings of `f`, and its last result.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, Vec<f64>, T)> {
    let mut times = Vec::with_capacity(runs);
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let r = f()?;
        times.push(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((best, times, out.context("no run")?))
}

fn run(data: &Path, threads: usize, runs: usize) -> Result<()> {
    let manifest: Value = serde_json::from_slice(&std::fs::read(data.join("manifest.json"))?)?;
    let tz: Tz = manifest["tz"]
        .as_str()
        .context("manifest: tz")?
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let period = Period {
        from: num(&manifest, "from")?,
        to: num(&manifest, "to")?,
    };
    let today = columnar::day_to_date(i32::try_from(num(&manifest, "today")?)?).context("today")?;
    let signup = ids(&manifest, "signup")?;
    let steps = ids(&manifest, "funnel")?;
    let window = num(&manifest, "window_ms")?;
    let days: Vec<u32> = manifest["days"]
        .as_array()
        .context("manifest: days")?
        .iter()
        .map(|x| {
            x.as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .context("manifest: day")
        })
        .collect::<Result<_>>()?;

    // Load (not timed against DuckDB): files → builder → EventColumns.
    let t0 = Instant::now();
    let user = read_values(&data.join("user.u32"), u32::from_le_bytes)?;
    let ts = read_values(&data.join("ts.i64"), i64::from_le_bytes)?;
    let name = read_values(&data.join("name.u16"), u16::from_le_bytes)?;
    if user.len() != ts.len() || ts.len() != name.len() {
        bail!("column files differ in length");
    }
    let read_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut b = EventColumnsBuilder::with_capacity(ts.len());
    for n in manifest["names"].as_array().context("manifest: names")? {
        b.name(n.as_str().context("manifest: name")?)?;
    }
    for ((&u, &t), &n) in user.iter().zip(&ts).zip(&name) {
        b.push_ids(u, t, n)?;
    }
    drop((user, ts, name));
    let mut cols: EventColumns = b.build(tz);
    cols.set_threads(threads);
    let build_s = t1.elapsed().as_secs_f64();
    eprintln!(
        "flywheel: {} events, {} users loaded (read {read_s:.2} s, build {build_s:.2} s)",
        cols.len(),
        cols.users()
    );

    let (ret_best, ret_times, rows) = best_of(runs, || {
        Ok(columnar::retention(&cols, &signup, &days, period, today)?)
    })?;
    let (fun_best, fun_times, report) = best_of(runs, || {
        Ok(columnar::funnel(&cols, &steps, window, period, None)?)
    })?;

    let retention: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "day": date_to_day(r.day),
                "size": r.size,
                "retained": r.retained.iter().map(|(_, kept, ratio)| ratio.value().map(|_| *kept)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let out = json!({
        "engine": "flywheel columnar",
        "threads": threads,
        "events": cols.len(),
        "users": cols.users(),
        "load_s": read_s + build_s,
        "retention_s": ret_best,
        "retention_runs_s": ret_times,
        "funnel_s": fun_best,
        "funnel_runs_s": fun_times,
        "retention": retention,
        "funnel": {
            "users": report.steps.iter().map(|s| s.users).collect::<Vec<_>>(),
            "median_s": report.steps.iter().map(|s| s.median_seconds_from_previous).collect::<Vec<_>>(),
        },
    });
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
