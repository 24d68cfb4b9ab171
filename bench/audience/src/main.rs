//! `bench/audience`, the Flywheel side: the segment count on a real audience index of
//! every profile, and RFM scores over the order log, on the data of `gen.py`.
//!
//! Segment count: every profile column goes into a [`flywheel_audience::index::Index`]
//! under the column key of the measure the segment language resolves to; the timed
//! operation is the product path `dsl::parse` → `plan::check` → `Index::count`.
//! RFM: dense per-user aggregation on all cores, quintile breakpoints, and the
//! materialised scores of every buyer.
//!
//! Run: `bench/audience/run` (data, peers and the report), or
//! `cargo run --release -p flywheel-bench-audience -- --data bench/out/audience/data`.

mod alloc;
mod data;
mod engine;
mod rfm;
mod segment;
mod stats;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use serde_json::json;

use crate::stats::Timing;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table for people.
    Table,
    /// The JSON object `report.py` reads.
    Json,
}

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Audience benchmark, Flywheel side: segment count and RFM on gen.py's data")]
struct Args {
    /// Directory written by gen.py (holds manifest.json).
    #[arg(long, default_value = "bench/out/audience/data")]
    data: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Timed runs of the segment count (after one warm-up).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..))]
    segment_runs: u16,
    /// Timed runs of RFM (after one warm-up).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    rfm_runs: u16,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Measure the audience engine itself instead: synthetic profiles folded through
    /// its real path (memory per profile, segment count, snapshot save and load).
    #[arg(long)]
    engine: bool,
    /// Profiles of `--engine`.
    #[arg(long, default_value_t = 1_000_000)]
    profiles: usize,
    /// Where `--engine` writes its CSVs (for DuckDB) and its snapshot.
    #[arg(long, default_value = "bench/out/audience/engine")]
    out: std::path::PathBuf,
}

/// Everything measured.
struct Results {
    /// Profiles (index rows).
    profiles: usize,
    /// Columns and tags loaded into the index.
    columns: usize,
    /// Timing of the segment count.
    segment: Timing,
    /// The segment count.
    count: u64,
    /// RSS right after the index was built, bytes.
    rss_bytes: u64,
    /// Index build time, ms.
    build_ms: f64,
    /// Orders in the log.
    orders: usize,
    /// Timing of RFM scoring.
    rfm: Timing,
    /// Σ(100·r + 10·f + m) over the buyers.
    checksum: u64,
    /// Buyers scored.
    buyers: u64,
    /// Threads used.
    threads: usize,
}

/// A timing as JSON, ms rounded to the µs.
pub(crate) fn timing_json(t: &Timing) -> serde_json::Value {
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({"median": r3(t.median), "min": r3(t.min), "runs": t.runs.iter().map(|x| r3(*x)).collect::<Vec<_>>()})
}

impl Results {
    /// The object `report.py` reads.
    fn json(&self) -> serde_json::Value {
        json!({
            "segment": {
                "flywheel_ms": timing_json(&self.segment),
                "count": self.count,
                "rss_bytes": self.rss_bytes,
                "index_build_ms": (self.build_ms * 10.0).round() / 10.0,
                "profiles": self.profiles,
                "columns": self.columns,
                "dsl": segment::SEGMENT,
            },
            "rfm": {
                "flywheel_ms": timing_json(&self.rfm),
                "checksum": self.checksum,
                "buyers": self.buyers,
                "orders": self.orders,
            },
            "threads": self.threads,
        })
    }

    /// A table for people.
    fn table(&self) -> String {
        let mut out = String::new();
        let mut w = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        w(format!(
            "flywheel audience: {} profiles, {} orders, {} threads",
            self.profiles, self.orders, self.threads
        ));
        w(format!("  {:28}{:>12}{:>12}", "", "median ms", "min ms"));
        w(format!(
            "  {:28}{:12.3}{:12.3}",
            "segment count", self.segment.median, self.segment.min
        ));
        w(format!(
            "  {:28}{:12.1}{:12.1}",
            "RFM scores", self.rfm.median, self.rfm.min
        ));
        w(format!("  {:28}{:>12}", "segment count", self.count));
        w(format!("  {:28}{:>12}", "RFM buyers", self.buyers));
        w(format!("  {:28}{:>12}", "RFM checksum", self.checksum));
        w(format!(
            "  {:28}{:>8.0} MiB ({} columns and tags)",
            "index RSS",
            self.rss_bytes as f64 / 1048576.0,
            self.columns
        ));
        w(format!("  {:28}{:>9.0} ms", "index build", self.build_ms));
        out
    }
}

/// Loads the index, times the segment count, loads the orders, times RFM, prints.
fn main() -> Result<()> {
    let args = Args::parse();
    if args.engine {
        let r = engine::run(args.profiles, &args.out, usize::from(args.segment_runs))?;
        match args.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&r.json())?),
            Format::Table => print!("{}", r.table()),
        }
        return Ok(());
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let manifest = data::Manifest::read(&args.data)?;

    let loaded = segment::load(&manifest, threads)?;
    let rss_bytes = data::rss_bytes()?;
    let (seg, count) = segment::run(&loaded.index, manifest.now_ms, usize::from(args.segment_runs))?;
    drop(loaded.index);

    let orders = rfm::Orders::load(&manifest)?;
    let (rfm_t, scores) = stats::timed(usize::from(args.rfm_runs), || rfm::score_buyers(&orders, threads))?;
    let (checksum, buyers) = rfm::checksum(&scores);

    let r = Results {
        profiles: manifest.profiles,
        columns: loaded.columns,
        segment: seg,
        count,
        rss_bytes,
        build_ms: loaded.build_ms,
        orders: manifest.orders,
        rfm: rfm_t,
        checksum,
        buyers,
        threads,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&r.json())?),
        Format::Table => print!("{}", r.table()),
    }
    Ok(())
}
