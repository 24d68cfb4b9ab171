//! The segment count: every profile column loaded into a real audience [`Index`] under
//! the column key of the measure the segment language resolves to, then the product
//! path — parse, check, count — timed.

use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use flywheel_audience::column::{CatColumn, NumColumn};
use flywheel_audience::index::{EvalCtx, Index};
use flywheel_audience::plan::{self, Names};
use flywheel_audience::traits::Measure;
use flywheel_audience::window::{days, Windowing};
use flywheel_audience::{dsl, Error};
use roaring::RoaringBitmap;

use crate::data::{self, Manifest, Raw};
use crate::stats::{timed, Timing};

/// The segment of the benchmark (README "Segment count").
pub const SEGMENT: &str = r#"spend(30d) > 1000 元 and last_active within 30d and region in ["上海", "北京", "廣東"] and gender = "女" and not tag("流失風險客戶")"#;

/// How one raw profile column becomes part of the index.
#[derive(Debug, Clone)]
enum Kind {
    /// A numeric column.
    Num {
        /// The measure whose column key it is stored under.
        measure: Measure,
        /// The raw value that means "no value", if any.
        null: Option<i64>,
    },
    /// A categorical column, codes decoded through the manifest dictionary.
    Cat {
        /// The measure whose column key it is stored under.
        measure: Measure,
    },
    /// A 0/1 tag column.
    Tag {
        /// The tag's display name, the bitmap's name.
        name: String,
    },
}

/// The raw profile columns and what each is in the index.
fn layout(m: &Manifest) -> Vec<(String, Kind)> {
    let num = |col: &str, measure: Measure| {
        let null = (col == "last_order").then_some(m.last_order_none);
        (col.to_owned(), Kind::Num { measure, null })
    };
    let cat = |col: &str, measure: Measure| (col.to_owned(), Kind::Cat { measure });
    let mut out = vec![
        num("spend_30d", Measure::Spend(Some(days(30)))),
        num("spend_90d", Measure::Spend(Some(days(90)))),
        num("spend_365d", Measure::Spend(Some(days(365)))),
        num("spend_all", Measure::Spend(None)),
        num("orders_30d", Measure::Orders(Some(days(30)))),
        num("orders_all", Measure::Orders(None)),
        num("last_active", Measure::LastActive),
        num("last_sign_in", Measure::LastSignIn),
        num("first_seen", Measure::FirstSeen),
        num("last_order", Measure::LastOrder),
        cat("gender", Measure::Gender),
        cat("region", Measure::Region),
        cat("city", Measure::City),
        cat("age_band", Measure::AgeBand),
        cat("tier", Measure::Tier),
        cat("channel", Measure::Raw("channel".to_owned())),
    ];
    out.extend(
        m.tags
            .iter()
            .map(|(col, name)| (col.clone(), Kind::Tag { name: name.clone() })),
    );
    out
}

/// A column built for the index.
enum Built {
    /// A numeric column and its key.
    Num(String, NumColumn),
    /// A text column and its key.
    Cat(String, CatColumn),
    /// A tag and its name.
    Tag(String, RoaringBitmap),
}

/// Builds one column from its raw values (consumed).
fn build(m: &Manifest, col: &str, kind: &Kind, raw: Raw) -> Result<Built> {
    Ok(match kind {
        Kind::Num { measure, null } => {
            let null = *null;
            let values = raw.into_i64();
            Built::Num(
                measure.key(),
                NumColumn::build(values.into_iter().map(|v| (Some(v) != null).then_some(v))),
            )
        }
        Kind::Cat { measure } => {
            let dict = m.dictionary(col)?;
            let mut codes = raw.into_u32(col)?;
            if let Some(c) = codes.iter().find(|c| **c as usize >= dict.len()) {
                return Err(anyhow!(
                    "{col}: code {c} outside its dictionary of {}",
                    dict.len()
                ));
            }
            // Code 0 is null in a CatColumn: keep it when the dictionary's first entry is
            // "" (unknown), otherwise shift every code up by one.
            let dict = if dict.first().is_some_and(String::is_empty) {
                dict.to_vec()
            } else {
                codes.iter_mut().for_each(|c| *c += 1);
                std::iter::once(String::new())
                    .chain(dict.iter().cloned())
                    .collect()
            };
            Built::Cat(measure.key(), CatColumn::from_codes(dict, codes))
        }
        Kind::Tag { name } => {
            let codes = raw.into_u32(col)?;
            let rows = (0u32..).zip(&codes).filter(|(_, v)| **v != 0).map(|(r, _)| r);
            let bitmap = RoaringBitmap::from_sorted_iter(rows).map_err(|e| anyhow!("{col}: {e}"))?;
            Built::Tag(name.clone(), bitmap)
        }
    })
}

/// The index and how it was built.
pub struct Loaded {
    /// The index of every profile.
    pub index: Index,
    /// Wall time of building the index from the raw arrays in memory (file reads excluded), ms.
    pub build_ms: f64,
    /// Number of columns and tags loaded.
    pub columns: usize,
}

/// Reads every profile column and builds the index on `threads` threads.
pub fn load(m: &Manifest, threads: usize) -> Result<Loaded> {
    let rows = u32::try_from(m.profiles).context("more profiles than u32 rows")?;
    let jobs = layout(m)
        .into_iter()
        .map(|(col, kind)| {
            let file = m.column(&col)?;
            Ok((col, kind, data::read(file, m.profiles)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let columns = jobs.len();
    let t = Instant::now();
    let queue = Mutex::new(jobs);
    let next = || queue.lock().ok().and_then(|mut q| q.pop());
    let built: Vec<Built> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    while let Some((col, kind, raw)) = next() {
                        out.push(build(m, &col, &kind, raw)?);
                    }
                    Ok::<_, anyhow::Error>(out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow!("an index build thread panicked"))?)
            .collect::<Result<Vec<Vec<Built>>>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    let mut index = Index::new();
    index.grow(rows);
    for b in built {
        match b {
            Built::Num(key, col) => index.put_num(key, col),
            Built::Cat(key, col) => index.put_cat(key, col),
            Built::Tag(name, bitmap) => index.put_tag(&name, bitmap),
        }
    }
    Ok(Loaded {
        index,
        build_ms: t.elapsed().as_secs_f64() * 1000.0,
        columns,
    })
}

/// The names the checker knows: the index's tags; there are no saved segments.
struct Tags<'a>(&'a Index);

impl Names for Tags<'_> {
    /// Whether the index holds the tag.
    fn has_tag(&self, name: &str) -> bool {
        self.0.tag(name).is_some()
    }

    /// No saved segments here.
    fn has_segment(&self, _name: &str) -> bool {
        false
    }
}

/// Parses, checks and counts `text` against the index, as the product does.
fn count(index: &Index, names: &Tags<'_>, text: &str, ctx: &EvalCtx<'_>) -> Result<u64> {
    let expr = dsl::parse(text).map_err(Error::from)?;
    let plan = plan::check(&expr, names, chrono_tz::Asia::Shanghai)?;
    Ok(index.count(&plan, ctx))
}

/// Times the segment count: one warm-up, then `runs` timed runs; returns the timing and the count.
pub fn run(index: &Index, now_ms: i64, runs: usize) -> Result<(Timing, u64)> {
    let names = Tags(index);
    let windowing = Windowing::default();
    let ctx = EvalCtx {
        now: now_ms,
        windowing: &windowing,
    };
    timed(runs, || count(index, &names, SEGMENT, &ctx))
}
