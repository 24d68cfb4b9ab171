//! Segment membership from the bitmap index equals a naive row-by-row evaluation, on
//! random profiles and random expressions written in the text language (so the parser
//! and checker are exercised too). Columns are built both in bulk and by single-value
//! updates, so the bucket bitmaps of both paths are held to the same answer. The
//! `*_bought` sets (and the `bought` shorthand) are computed by the engine from order
//! facts for the index, and directly from the orders for the naive side.

use std::collections::HashMap;

use flywheel_audience::column::{CatColumn, NumColumn};
use flywheel_audience::config::AudienceConfig;
use flywheel_audience::dsl::parse;
use flywheel_audience::facts::{Bought, Facts, LineRef, OrderFact};
use flywheel_audience::index::{EvalCtx, Index};
use flywheel_audience::naive::{matches, ProfileView};
use flywheel_audience::plan::{check, measure, Names};
use flywheel_audience::traits::{compute, ComputeCtx, Measure, TraitValue};
use flywheel_audience::window::Windowing;
use proptest::prelude::*;

const NOW: i64 = 1_735_660_800_000;
const DAY: i64 = 86_400_000;
const TAGS: [&str; 3] = ["高價值客戶", "VIP", "潛力客戶"];
const REGIONS: [&str; 4] = ["上海", "北京", "廣東", "浙江"];
const CATS: [&str; 3] = ["護膚", "彩妝", "母嬰"];
const BRANDS: [&str; 3] = ["雪花秀", "后", "好孩子"];
/// Windows of the `*_bought` conditions, in days.
const WINDOWS: [i64; 3] = [7, 30, 90];

/// One paid order: when, and the categories and brands of its products.
#[derive(Debug, Clone)]
struct Order {
    at: i64,
    cats: Vec<&'static str>,
    brands: Vec<&'static str>,
}

#[derive(Debug, Clone)]
struct Row {
    spend30: Option<i64>,
    orders: Option<i64>,
    last_active: Option<i64>,
    age: Option<i64>,
    gender: Option<&'static str>,
    region: Option<&'static str>,
    bought: Vec<Order>,
    tags: Vec<&'static str>,
}

impl Row {
    /// The naive `*_bought` set: every value of the orders inside the last `days`
    /// (`now - days < at`), all time when `None`.
    fn bought(&self, brands: bool, days: Option<i64>) -> Vec<String> {
        let mut out: Vec<String> = self
            .bought
            .iter()
            .filter(|o| days.is_none_or(|d| o.at > NOW - d * DAY))
            .flat_map(|o| if brands { &o.brands } else { &o.cats })
            .map(|v| v.to_string())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn order() -> impl Strategy<Value = Order> {
    let edges: Vec<i64> = WINDOWS
        .iter()
        .flat_map(|d| [NOW - d * DAY - 1, NOW - d * DAY, NOW - d * DAY + 1])
        .collect();
    (
        prop_oneof![(NOW - 120 * DAY)..=NOW, prop::sample::select(edges)],
        prop::sample::subsequence(CATS.to_vec(), 0..=2),
        prop::sample::subsequence(BRANDS.to_vec(), 0..=2),
    )
        .prop_map(|(at, cats, brands)| Order { at, cats, brands })
}

fn row() -> impl Strategy<Value = Row> {
    (
        prop::option::weighted(
            0.9,
            prop_oneof![Just(0i64), Just(100_000), Just(100_001), 0i64..300_000],
        ),
        prop::option::weighted(0.9, 0i64..6),
        prop::option::weighted(0.8, (NOW - 120 * DAY)..=NOW),
        prop::option::weighted(0.7, 10i64..70),
        prop::option::of(prop::sample::select(vec!["男", "女"])),
        prop::option::of(prop::sample::select(REGIONS.to_vec())),
        prop::collection::vec(order(), 0..3),
        prop::sample::subsequence(TAGS.to_vec(), 0..=3),
    )
        .prop_map(
            |(spend30, orders, last_active, age, gender, region, bought, tags)| Row {
                spend30,
                orders,
                last_active,
                age,
                gender,
                region,
                bought,
                tags,
            },
        )
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![Just("1000 元"), Just("1000.01 元"), Just("0 元"), Just("500 元")]
            .prop_flat_map(|m| prop::sample::select(vec![">", ">=", "<", "<=", "=", "!="])
                .prop_map(move |op| format!("spend(30d) {op} {m}"))),
        (
            prop::sample::select(vec![">", ">=", "<", "<=", "=", "!="]),
            0i64..6
        )
            .prop_map(|(op, n)| format!("orders {op} {n}")),
        (1u32..120).prop_map(|d| format!("last_active within {d}d")),
        (1u32..120).prop_map(|d| format!("last_active before {d}d")),
        (prop::sample::select(vec![">=", "<"]), 10i64..70).prop_map(|(op, n)| format!("age {op} {n}")),
        prop::sample::select(vec!["男", "女"]).prop_map(|g| format!("gender = \"{g}\"")),
        prop::sample::select(vec!["男", "女"]).prop_map(|g| format!("gender != \"{g}\"")),
        prop::sample::subsequence(REGIONS.to_vec(), 1..=3).prop_map(|r| format!(
            "region in [{}]",
            r.iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        prop::sample::subsequence(REGIONS.to_vec(), 1..=2).prop_map(|r| format!(
            "region not in [{}]",
            r.iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        prop::sample::select(CATS.to_vec()).prop_map(|c| format!("categories_bought contains \"{c}\"")),
        (
            prop::sample::select(CATS.to_vec()),
            prop::sample::select(WINDOWS.to_vec())
        )
            .prop_map(|(c, d)| format!("categories_bought({d}d) contains \"{c}\"")),
        (
            prop::sample::select(CATS.to_vec()),
            prop::sample::select(WINDOWS.to_vec())
        )
            .prop_map(|(c, d)| format!("bought category \"{c}\" within {d}d")),
        (
            prop::sample::subsequence(BRANDS.to_vec(), 1..=2),
            prop::option::of(prop::sample::select(WINDOWS.to_vec()))
        )
            .prop_map(|(b, d)| format!(
                "bought brand [{}]{}",
                b.iter()
                    .map(|x| format!("\"{x}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                d.map(|d| format!(" within {d}d")).unwrap_or_default()
            )),
        prop::sample::select(WINDOWS.to_vec()).prop_map(|d| format!("brands_bought({d}d) is set")),
        prop::sample::select(WINDOWS.to_vec()).prop_map(|d| format!("categories_bought({d}d) is not set")),
        prop::sample::select(vec!["age", "region", "spend(30d)", "categories_bought"])
            .prop_map(|t| format!("{t} is set")),
        prop::sample::select(vec!["age", "gender"]).prop_map(|t| format!("{t} is not set")),
        prop::sample::select(TAGS.to_vec()).prop_map(|t| format!("tag(\"{t}\")")),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..5).prop_map(|xs| format!("({})", xs.join(" and "))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|xs| format!("({})", xs.join(" or "))),
            inner.prop_map(|x| format!("not {x}")),
        ]
    })
}

struct View<'a>(&'a Row);

fn m(name: &str, window: Option<&str>) -> Measure {
    let text = match window {
        Some(w) => format!("{name}({w}) is set"),
        None => format!("{name} is set"),
    };
    let flywheel_audience::dsl::Expr::Cond(flywheel_audience::dsl::Cond::IsSet { trait_ref, .. }) =
        parse(&text).unwrap()
    else {
        unreachable!()
    };
    measure(&trait_ref).unwrap()
}

impl ProfileView for View<'_> {
    fn value(&self, measure: &Measure) -> TraitValue {
        let r = self.0;
        let key = measure.key();
        let num = |k: Measure, v: Option<i64>| (k.key() == key).then_some(TraitValue::Num(v));
        let cat =
            |k: Measure, v: Option<&str>| (k.key() == key).then(|| TraitValue::Cat(v.map(str::to_owned)));
        num(m("spend", Some("30d")), r.spend30)
            .or_else(|| num(m("orders", None), r.orders))
            .or_else(|| num(m("last_active", None), r.last_active))
            .or_else(|| num(m("age", None), r.age))
            .or_else(|| cat(m("gender", None), r.gender))
            .or_else(|| cat(m("region", None), r.region))
            .or_else(|| {
                // The bought sets, computed here from the orders, not by the engine.
                [None].into_iter().chain(WINDOWS.map(Some)).find_map(|d| {
                    let w = d.map(|d| format!("{d}d"));
                    [("categories_bought", false), ("brands_bought", true)]
                        .into_iter()
                        .find(|(name, _)| m(name, w.as_deref()).key() == key)
                        .map(|(_, brands)| TraitValue::Multi(r.bought(brands, d)))
                })
            })
            .unwrap_or(TraitValue::Num(None))
    }
    fn counter(&self, _key: &str) -> i64 {
        0
    }
    fn has_tag(&self, name: &str) -> bool {
        self.0.tags.contains(&name)
    }
    fn in_segment(&self, _name: &str) -> bool {
        false
    }
}

struct AllTags;

impl Names for AllTags {
    fn has_tag(&self, name: &str) -> bool {
        TAGS.contains(&name)
    }
    fn has_segment(&self, _name: &str) -> bool {
        false
    }
}

/// Reads one numeric value of a row.
type NumOf = fn(&Row) -> Option<i64>;

/// Builds the index: numeric columns in bulk when `bulk`, otherwise one value at a time.
fn build(rows: &[Row], bulk: bool) -> Index {
    let mut index = Index::new();
    index.grow(rows.len() as u32);
    let nums: [(Measure, NumOf); 4] = [
        (m("spend", Some("30d")), |r| r.spend30),
        (m("orders", None), |r| r.orders),
        (m("last_active", None), |r| r.last_active),
        (m("age", None), |r| r.age),
    ];
    for (measure, get) in nums {
        if bulk {
            index.put_num(measure.key(), NumColumn::build(rows.iter().map(get)));
        } else {
            for (i, r) in rows.iter().enumerate() {
                index.set_value(&measure.key(), i as u32, &TraitValue::Num(get(r)));
            }
        }
    }
    let mut gender = CatColumn::default();
    let mut region = CatColumn::default();
    let windowing = Windowing::default();
    let config = AudienceConfig::default();
    let ctx = ComputeCtx {
        now: NOW,
        windowing: &windowing,
        config: &config,
    };
    for (i, r) in rows.iter().enumerate() {
        gender.set(i as u32, r.gender);
        region.set(i as u32, r.region);
        // The bought sets as the engine derives them: facts folded from the orders.
        let facts = facts_of(r);
        for name in ["categories_bought", "brands_bought"] {
            for d in [None].into_iter().chain(WINDOWS.map(Some)) {
                let measure = m(name, d.map(|d| format!("{d}d")).as_deref());
                index.set_value(&measure.key(), i as u32, &compute(&measure, &facts, &ctx));
            }
        }
        for t in &r.tags {
            index.tag_mut(t).insert(i as u32);
        }
    }
    index.put_cat(m("gender", None).key(), gender);
    index.put_cat(m("region", None).key(), region);
    index
}

/// The engine's facts of a row's orders, one line per category and per brand.
fn facts_of(r: &Row) -> Facts {
    let mut f = Facts::default();
    for (n, o) in r.bought.iter().enumerate() {
        let lines = o
            .cats
            .iter()
            .map(|c| LineRef {
                category: Some(c),
                ..LineRef::default()
            })
            .chain(o.brands.iter().map(|b| LineRef {
                brand: Some(b),
                ..LineRef::default()
            }));
        f.add_order(OrderFact {
            order_id: format!("o{n}"),
            at: o.at,
            total: 100,
            refunded: 0,
            cancelled: false,
            promo: false,
            bought: Bought::of_lines(lines),
            adjustments: Vec::new(),
        });
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn index_equals_naive(rows in prop::collection::vec(row(), 0..400), text in expr(), bulk in any::<bool>()) {
        let windowing = Windowing::default();
        let ctx = EvalCtx { now: NOW, windowing: &windowing };
        let plan = check(&parse(&text).unwrap(), &AllTags, windowing.tz).unwrap();
        let index = build(&rows, bulk);
        let got: Vec<u32> = index.eval(&plan, &ctx).iter().collect();
        let want: Vec<u32> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| matches(&plan, &View(r), &ctx))
            .map(|(i, _)| i as u32)
            .collect();
        prop_assert_eq!(&got, &want, "expression {}", text);
        prop_assert_eq!(index.count(&plan, &ctx), want.len() as u64);
        for (i, r) in rows.iter().enumerate() {
            prop_assert_eq!(index.row_matches(&plan, i as u32, &ctx), matches(&plan, &View(r), &ctx), "row {} of {}", i, text);
        }
    }
}

#[test]
fn a_column_touched_after_building_still_answers_like_the_rows() {
    // Values moved by updates into buckets they were not built for.
    let rows: Vec<Option<i64>> = (0..5000).map(|i| Some((i % 50) * 1000)).collect();
    let mut col = NumColumn::build(rows.clone());
    let mut truth: HashMap<u32, Option<i64>> = rows.iter().enumerate().map(|(i, v)| (i as u32, *v)).collect();
    for i in (0..5000u32).step_by(7) {
        let v = if i % 2 == 0 { Some(-5 - i as i64) } else { None };
        col.set(i, v);
        truth.insert(i, v);
    }
    let got: Vec<u32> = col.range(-100, 20_000).iter().collect();
    let mut want: Vec<u32> = truth
        .iter()
        .filter(|(_, v)| v.is_some_and(|v| (-100..=20_000).contains(&v)))
        .map(|(k, _)| *k)
        .collect();
    want.sort_unstable();
    assert_eq!(got, want);
}
