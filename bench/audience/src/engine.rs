//! `--engine`: the audience engine a shop runs, measured. Synthetic profiles with a
//! realistic history (an identify with six traits, sign-ins, cart additions, and for a
//! third of them three orders of two lines) go through the engine's real folding path
//! (`State::apply_batch`, the path of every committed ingest batch), then the engine
//! settles (RFM, memberships) and is measured: heap bytes per profile (a counting
//! allocator) with a breakdown, RSS per profile, a segment count through the product
//! path, and the persisted snapshot's save and load times. The same data is written as
//! CSV for DuckDB (`engine_peer.py`), which computes the same count from the raw facts.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use flywheel_audience::config::AudienceConfig;
use flywheel_audience::dsl;
use flywheel_audience::engine::{self, State};
use flywheel_core::time::from_millis;
use flywheel_core::{Event, EventKind, Fen, Order, OrderLine, ProfileId};
use flywheel_store::{ApplyOutcome, NewEvent};
use serde_json::{json, Map, Value};

use crate::alloc::live_bytes;
use crate::stats::{timed, Timing};

/// 2024-12-31T16:00:00Z, `now` of every run (as gen.py's data).
pub const NOW_MS: i64 = 1_735_660_800_000;
const DAY: i64 = 86_400_000;

/// The segment counted through the engine (DuckDB computes it from the raw orders).
pub const SEGMENT: &str = r#"spend(30d) > 500 元 and last_active within 30d and city in ["上海", "北京", "廣州"] and gender = "女""#;

const CITIES: [&str; 12] = [
    "上海", "北京", "廣州", "深圳", "杭州", "成都", "武漢", "南京", "西安", "重慶", "蘇州", "天津",
];

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

/// One profile's history: its events and what DuckDB needs to answer the same segment.
struct History {
    events: Vec<NewEvent>,
    gender: Option<&'static str>,
    city: &'static str,
    last_active: i64,
    orders: Vec<(String, i64, i64)>,
}

fn event(rng: &mut Rng, kind: EventKind, user: &str, name: Option<&str>, at: i64) -> Event {
    Event::of_user(&rng.uuid(), kind, user, name, at)
}

fn history(i: usize, rng: &mut Rng) -> History {
    let user = format!("u{i:08}");
    let first = NOW_MS - rng.below(730) as i64 * DAY - rng.below(DAY as u64) as i64;
    let mut last_active = first;
    let mut at_after = |rng: &mut Rng, from: i64| {
        let t = from + rng.below((NOW_MS - from).max(1) as u64) as i64;
        last_active = last_active.max(t);
        t
    };
    let gender = match rng.below(10) {
        0 => None,
        1..=5 => Some("女"),
        _ => Some("男"),
    };
    let city = CITIES[rng.below(CITIES.len() as u64) as usize];
    let mut identify = event(rng, EventKind::Identify, &user, None, first);
    let traits = json!({
        "email": format!("{user}@example.com"),
        "phone": format!("138{:08}", rng.below(100_000_000)),
        "name": format!("用戶{i}"),
        "gender": gender.map(|g| if g == "女" { "female" } else { "male" }),
        "city": city,
        "birthday": format!("{}-{:02}-{:02}", 1960 + rng.below(46), 1 + rng.below(12), 1 + rng.below(28)),
    });
    identify.traits = traits.as_object().cloned().unwrap_or_default();
    let mut events = vec![NewEvent::new(identify, None)];
    for _ in 0..1 + rng.below(3) {
        let t = at_after(rng, first);
        events.push(NewEvent::new(
            event(rng, EventKind::Track, &user, Some("Signed In"), t),
            None,
        ));
    }
    for _ in 0..rng.below(3) {
        let t = at_after(rng, first);
        let mut e = event(rng, EventKind::Track, &user, Some("Product Added"), t);
        e.properties
            .insert("product_id".into(), json!(format!("P{:05}", rng.below(5_000))));
        events.push(NewEvent::new(e, None));
    }
    let mut orders = Vec::new();
    if i.is_multiple_of(3) {
        for k in 0..3 {
            let t = at_after(rng, first.max(NOW_MS - 400 * DAY));
            let mut e = event(rng, EventKind::Track, &user, Some("Order Completed"), t);
            let order_id = format!("O{i:08}-{k}");
            let lines: Vec<OrderLine> = (0..2)
                .map(|_| {
                    let p = rng.below(5_000);
                    OrderLine {
                        product_id: Some(format!("P{p:05}")),
                        sku: Some(format!("S{p:05}-{}", rng.below(3))),
                        name: None,
                        category: Some(format!("類目{}", p % 40)),
                        brand: Some(format!("品牌{}", p % 200)),
                        price: Fen(1_000 + rng.below(60_000) as i64),
                        quantity: 1,
                    }
                })
                .collect();
            let total: i64 = lines.iter().map(|l| l.price.0).sum();
            let coupon = (rng.below(4) == 0).then(|| "SAVE10".to_owned());
            e.properties.insert("order_id".into(), json!(order_id));
            e.properties.insert("total".into(), json!(total as f64 / 100.0));
            let order = Order {
                order_id: order_id.clone(),
                user_id: Some(user.clone()),
                anonymous_id: None,
                total: Fen(total),
                revenue: Fen(total),
                discount: Fen(0),
                shipping: Fen(0),
                tax: Fen(0),
                coupon,
                currency: "CNY".into(),
                placed_at: from_millis(t),
                lines,
                message_id: e.message_id.clone(),
            };
            orders.push((order_id, t, total));
            events.push(NewEvent::new(e, None).with_order(order));
        }
    }
    History {
        events,
        gender,
        city,
        last_active,
        orders,
    }
}

/// After a snapshot load: heap bytes, process RSS, heap bytes by part.
type Loaded = (u64, u64, Vec<(String, u64)>);

/// Everything measured in `--engine` mode.
pub struct EngineResults {
    profiles: usize,
    events: usize,
    fold_ms: f64,
    heap_bytes: u64,
    rss_bytes: u64,
    breakdown: Vec<(String, u64)>,
    loaded: Option<Loaded>,
    count: u64,
    segment: Timing,
    snapshot: Option<(f64, f64, u64)>,
}

impl EngineResults {
    /// The JSON object `report.py` reads.
    pub fn json(&self) -> Value {
        let per = |b: u64| (b as f64 / self.profiles.max(1) as f64).round();
        json!({
            "profiles": self.profiles,
            "events": self.events,
            "fold_ms": self.fold_ms.round(),
            "heap_bytes": self.heap_bytes,
            "heap_bytes_per_profile": per(self.heap_bytes),
            "rss_bytes": self.rss_bytes,
            "rss_bytes_per_profile": per(self.rss_bytes),
            "breakdown_bytes_per_profile": self.breakdown.iter().map(|(k, b)| (k.clone(), json!(per(*b)))).collect::<Map<String, Value>>(),
            "after_snapshot_load": self.loaded.as_ref().map(|(heap, rss, parts)| json!({
                "heap_bytes_per_profile": per(*heap),
                "rss_bytes": rss,
                "breakdown_bytes_per_profile": parts.iter().map(|(k, b)| (k.clone(), json!(per(*b)))).collect::<Map<String, Value>>(),
            })),
            "segment": {"dsl": SEGMENT, "count": self.count, "flywheel_ms": crate::timing_json(&self.segment)},
            "snapshot": self.snapshot.map(|(save, load, bytes)| json!({"save_ms": save.round(), "load_ms": load.round(), "bytes": bytes})),
        })
    }

    /// A table for people.
    pub fn table(&self) -> String {
        let n = self.profiles.max(1) as f64;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "flywheel audience engine: {} profiles, {} events folded in {:.1} s",
            self.profiles,
            self.events,
            self.fold_ms / 1000.0
        );
        let _ = writeln!(
            out,
            "  heap   {:>10.0} MiB  {:>7.0} bytes/profile",
            self.heap_bytes as f64 / 1048576.0,
            self.heap_bytes as f64 / n
        );
        let _ = writeln!(
            out,
            "  RSS    {:>10.0} MiB  {:>7.0} bytes/profile",
            self.rss_bytes as f64 / 1048576.0,
            self.rss_bytes as f64 / n
        );
        for (k, b) in &self.breakdown {
            let _ = writeln!(out, "    {k:28}{:>7.0} bytes/profile", *b as f64 / n);
        }
        if let Some((heap, rss, parts)) = &self.loaded {
            let _ = writeln!(
                out,
                "  after a snapshot load: heap {:>7.0} bytes/profile (process RSS {:.0} MiB)",
                *heap as f64 / n,
                *rss as f64 / 1048576.0
            );
            for (k, b) in parts {
                let _ = writeln!(out, "    {k:28}{:>7.0} bytes/profile", *b as f64 / n);
            }
        }
        let _ = writeln!(
            out,
            "  segment count {} in {:.3} ms median ({:.3} min)",
            self.count, self.segment.median, self.segment.min
        );
        if let Some((save, load, bytes)) = self.snapshot {
            let _ = writeln!(
                out,
                "  snapshot {:.0} MiB: save {:.0} ms, load {:.0} ms",
                bytes as f64 / 1048576.0,
                save,
                load
            );
        }
        out
    }
}

/// Builds the engine state for `profiles` synthetic profiles, writes the DuckDB CSVs to
/// `out`, and measures.
pub fn run(profiles: usize, out: &Path, runs: usize) -> Result<EngineResults> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut people = csv_file(&out.join("profiles.csv"), "profile,gender,city,last_active")?;
    let mut orders = csv_file(&out.join("orders.csv"), "profile,ts,total")?;
    let base_heap = live_bytes();
    let mut state =
        engine::seeded(AudienceConfig::default(), NOW_MS, Vec::new()).map_err(|e| anyhow!("{e}"))?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut events = 0usize;
    const CHUNK: usize = 1_000;
    for chunk in (0..profiles).step_by(CHUNK) {
        let mut batch = Vec::new();
        let mut owners = Vec::new();
        for i in chunk..(chunk + CHUNK).min(profiles) {
            let h = history(i, &mut rng);
            let pid = format!("user:u{i:08}");
            writeln!(
                people,
                "{pid},{},{},{}",
                h.gender.unwrap_or(""),
                h.city,
                h.last_active
            )?;
            for (_, ts, total) in &h.orders {
                writeln!(orders, "{pid},{ts},{total}")?;
            }
            owners.extend(std::iter::repeat_n(pid, h.events.len()));
            batch.extend(h.events);
        }
        events += batch.len();
        let outcome = ApplyOutcome {
            inserted: batch.len() as u64,
            duplicates: 0,
            stored: vec![true; batch.len()],
            profiles: owners.into_iter().map(|p| Some(ProfileId(p))).collect(),
            merges: Vec::new(),
            last_seq: None,
        };
        let batch = Arc::new(batch);
        state.apply_batch(&batch, 0..batch.len(), &outcome, NOW_MS);
    }
    state.tick(NOW_MS);
    settle(&mut state)?;
    let fold_ms = started.elapsed().as_secs_f64() * 1000.0;
    people.flush()?;
    orders.flush()?;
    let heap_bytes = live_bytes().saturating_sub(base_heap);
    let rss_bytes = crate::data::rss_bytes()?;

    let (segment, count) = timed(runs, || {
        let expr = dsl::parse(SEGMENT).map_err(|e| anyhow!("{e}"))?;
        let plan = engine::compile(&state, &expr).map_err(|e| anyhow!("{e}"))?;
        Ok(state.index.count(&plan, &state.eval_ctx(NOW_MS)))
    })?;

    let path = out.join("audience.snapshot");
    let t = Instant::now();
    let saved = state.save_to(&path, &[], &[], 0);
    let save_ms = t.elapsed().as_secs_f64() * 1000.0;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let parts = breakdown(state);
    let mut loaded = None;
    let snapshot = match saved {
        Err(e) => {
            eprintln!("engine: snapshot not saved: {e}");
            None
        }
        Ok(()) => {
            let before = live_bytes();
            let t = Instant::now();
            let (loaded_state, _) =
                State::load_from(&path, AudienceConfig::default(), NOW_MS, vec![], vec![])
                    .map_err(|e| anyhow!("{e}"))?;
            let load_ms = t.elapsed().as_secs_f64() * 1000.0;
            let mut loaded_state = loaded_state;
            settle(&mut loaded_state)?;
            let expr = dsl::parse(SEGMENT).map_err(|e| anyhow!("{e}"))?;
            let plan = engine::compile(&loaded_state, &expr).map_err(|e| anyhow!("{e}"))?;
            let again = loaded_state.index.count(&plan, &loaded_state.eval_ctx(NOW_MS));
            if again != count {
                return Err(anyhow!(
                    "the loaded snapshot counts {again}, the built engine {count}"
                ));
            }
            drop(plan);
            let heap = live_bytes().saturating_sub(before);
            let rss = crate::data::rss_bytes()?;
            loaded = Some((heap, rss, breakdown(loaded_state)));
            Some((save_ms, load_ms, bytes))
        }
    };
    Ok(EngineResults {
        profiles,
        events,
        fold_ms,
        heap_bytes,
        rss_bytes,
        breakdown: parts,
        loaded,
        count,
        segment,
        snapshot,
    })
}

/// What a running server does in its first seconds: the columns the rules and a first
/// count read get their value buckets (one a writer tick).
fn settle(state: &mut State) -> Result<()> {
    let expr = dsl::parse(SEGMENT).map_err(|e| anyhow!("{e}"))?;
    let plan = engine::compile(state, &expr).map_err(|e| anyhow!("{e}"))?;
    state.index.count(&plan, &state.eval_ctx(NOW_MS));
    while state.index.has_asked() {
        state.tick(NOW_MS);
    }
    Ok(())
}

/// Heap bytes of the parts of the state, measured by dropping them one by one.
fn breakdown(mut state: State) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut drop_part = |name: &str, f: &mut dyn FnMut(&mut State)| {
        let before = live_bytes();
        f(&mut state);
        out.push((name.to_owned(), before.saturating_sub(live_bytes())));
    };
    for (name, part) in State::PARTS {
        drop_part(name, &mut |s| s.drop_part(part));
    }
    drop_part("rest", &mut |s| {
        *s = State::new(AudienceConfig::default(), NOW_MS)
    });
    out
}

fn csv_file(path: &Path, header: &str) -> Result<std::io::BufWriter<std::fs::File>> {
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    writeln!(w, "{header}")?;
    Ok(w)
}
