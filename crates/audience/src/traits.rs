//! The computed-trait catalogue: every name a segment expression may compare, its
//! type, and how its value is derived from a profile's [`Facts`] at a given `now`.
//!
//! Windowed aggregates (`spend(30d)`) use the shop's [`Windowing`]; day counts
//! (`days_since_registration`, `age`) count shop-local calendar days. Money is in fen,
//! ratios in parts per million, times in ms since the epoch; `None` is null.

use chrono::{Datelike, NaiveDate, TimeZone};

use crate::config::AudienceConfig;
use crate::counter::CounterId;
use crate::dsl::ast::Duration;
use crate::facts::{Facts, LineField};
use crate::window::{days, Windowing};

/// What kind of values a trait holds (decides which operators and literals fit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Integer fen; literals are written `1000 元` or `100000 fen`.
    Money,
    /// A whole number of things (orders, items).
    Count,
    /// A share between 0 and 1 (stored as parts per million).
    Ratio,
    /// A whole number (age in years, days).
    Number,
    /// An instant; compared with `within`/`before` or a date literal.
    Time,
    /// One text value (gender, region, stage).
    Category,
    /// A set of text values (categories bought); tested with `contains`.
    Multi,
}

/// A computed trait: what to compute, with its window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// Net paid amount (total − refunds; cancelled orders count 0).
    Spend(Option<Duration>),
    /// Paid orders (not cancelled, not fully refunded).
    Orders(Option<Duration>),
    /// Average order value: spend ÷ orders, rounded down to the fen; null without orders.
    Aov(Option<Duration>),
    /// Share of paid orders that used a coupon or carried a discount.
    PromoShare(Option<Duration>),
    /// Distinct products added to the cart inside the window and not bought since.
    UnboughtCartItems(Duration),
    /// First paid order time.
    FirstOrder,
    /// Last paid order time.
    LastOrder,
    /// Last event of any kind.
    LastActive,
    /// Last sign-in event.
    LastSignIn,
    /// First event of any kind.
    FirstSeen,
    /// Registration: the first sign-up event, else the first event.
    RegisteredAt,
    /// Shop-local calendar days since registration.
    DaysSinceRegistration,
    /// Shop-local calendar days since the last paid order (null without orders).
    DaysSinceLastOrder,
    /// Age in full years from the `birthday` trait (or the `age` trait).
    Age,
    /// Normalised gender: 男 / 女 / the raw value.
    Gender,
    /// Age band from [`Measure::Age`]: <18, 18-24, 25-34, 35-44, 45-54, 55+.
    AgeBand,
    /// Region / province (`region`, `province`, `address.state`).
    Region,
    /// City (`city`, `address.city`).
    City,
    /// Member tier (`tier`, `member_tier`; the loyalty crate will own it).
    Tier,
    /// Lifecycle stage (新用戶 / 活躍用戶 / 留存用戶 / 高價值用戶 / 沉睡用戶 / 流失用戶).
    Lifecycle,
    /// The distinct values of one field of the lines of paid orders inside the window
    /// (all time when `None`): `categories_bought(90d)`, `brands_bought`, `skus_bought`,
    /// `products_bought` (issue 16: segments reach into `products[]`).
    Bought(LineField, Option<Duration>),
    /// A raw profile trait, compared as text.
    Raw(String),
    /// A raw profile trait read as a number (parts per million).
    RawNumber(String),
    /// RFM recency score (1–5; null for non-buyers).
    RfmR,
    /// RFM frequency score.
    RfmF,
    /// RFM monetary score.
    RfmM,
    /// RFM segment name (Champions, Loyal, At Risk, ...).
    RfmSegment,
    /// A registered event counter.
    Counter(CounterId),
}

/// One documented entry of the catalogue.
pub struct CatalogueEntry {
    /// The name used in expressions.
    pub name: &'static str,
    /// Whether it takes a window argument (`spend(30d)`); `None` = no window.
    pub windowed: Option<WindowDefault>,
    /// Its type.
    pub ty: ValueType,
    /// One-line description for docs and the console.
    pub description: &'static str,
}

/// The window used when a windowed trait is written without one.
#[derive(Debug, Clone, Copy)]
pub enum WindowDefault {
    /// All time.
    AllTime,
    /// A fixed default window (days); all time is not allowed.
    Days(u32),
}

/// Every built-in trait name.
pub const CATALOGUE: &[CatalogueEntry] = &[
    entry("spend", Some(WindowDefault::AllTime), ValueType::Money, "net paid amount (refunds deducted, cancelled orders excluded)"),
    entry("orders", Some(WindowDefault::AllTime), ValueType::Count, "paid orders (not cancelled, not fully refunded)"),
    entry("aov", Some(WindowDefault::AllTime), ValueType::Money, "average order value (客單價), spend ÷ orders"),
    entry("promo_share", Some(WindowDefault::AllTime), ValueType::Ratio, "share of paid orders with a coupon or discount"),
    entry("unbought_cart_items", Some(WindowDefault::Days(30)), ValueType::Count, "distinct products carted in the window and not bought since"),
    entry("first_order", None, ValueType::Time, "first paid order"),
    entry("last_order", None, ValueType::Time, "last paid order"),
    entry("last_active", None, ValueType::Time, "last customer event (computed and imported traits are not activity)"),
    entry("last_sign_in", None, ValueType::Time, "last sign-in (Signed In / Signed Up / Logged In)"),
    entry("first_seen", None, ValueType::Time, "first event of any kind"),
    entry("registered_at", None, ValueType::Time, "first Signed Up, else first seen"),
    entry("days_since_registration", None, ValueType::Number, "shop-local calendar days since registration"),
    entry("days_since_last_order", None, ValueType::Number, "shop-local calendar days since the last paid order"),
    entry("age", None, ValueType::Number, "full years from the birthday trait (or the age trait)"),
    entry("gender", None, ValueType::Category, "男 / 女 (from gender: male/female/m/f/男/女)"),
    entry("age_band", None, ValueType::Category, "<18, 18-24, 25-34, 35-44, 45-54, 55+"),
    entry("region", None, ValueType::Category, "region or province (region, province, address.state)"),
    entry("city", None, ValueType::Category, "city (city, address.city)"),
    entry("tier", None, ValueType::Category, "member tier (tier or member_tier trait)"),
    entry("lifecycle", None, ValueType::Category, "lifecycle stage: 新用戶, 活躍用戶, 留存用戶, 高價值用戶, 沉睡用戶, 流失用戶"),
    entry("categories_bought", Some(WindowDefault::AllTime), ValueType::Multi, "categories of products in paid orders"),
    entry("brands_bought", Some(WindowDefault::AllTime), ValueType::Multi, "brands of products in paid orders"),
    entry("skus_bought", Some(WindowDefault::AllTime), ValueType::Multi, "skus of products in paid orders"),
    entry("products_bought", Some(WindowDefault::AllTime), ValueType::Multi, "product ids (else skus) of products in paid orders"),
    entry("rfm_r", None, ValueType::Number, "RFM recency score 1–5"),
    entry("rfm_f", None, ValueType::Number, "RFM frequency score 1–5"),
    entry("rfm_m", None, ValueType::Number, "RFM monetary score 1–5"),
    entry("rfm_segment", None, ValueType::Category, "RFM segment: Champions, Loyal, Potential Loyalist, New Customers, Promising, Need Attention, About To Sleep, At Risk, Cannot Lose Them, Hibernating, Lost"),
];

const fn entry(
    name: &'static str,
    windowed: Option<WindowDefault>,
    ty: ValueType,
    description: &'static str,
) -> CatalogueEntry {
    CatalogueEntry {
        name,
        windowed,
        ty,
        description,
    }
}

impl Measure {
    /// The column name of this measure in the index.
    pub fn key(&self) -> String {
        let w = |w: &Option<Duration>| w.map_or_else(|| "all".to_owned(), |d| d.to_string());
        match self {
            Measure::Spend(d) => format!("spend({})", w(d)),
            Measure::Orders(d) => format!("orders({})", w(d)),
            Measure::Aov(d) => format!("aov({})", w(d)),
            Measure::PromoShare(d) => format!("promo_share({})", w(d)),
            Measure::UnboughtCartItems(d) => format!("unbought_cart_items({d})"),
            Measure::Bought(field, d) => format!("{}({})", field.trait_name(), w(d)),
            Measure::Raw(k) => format!("traits.{k}"),
            Measure::RawNumber(k) => format!("traits.{k}#number"),
            Measure::Counter(id) => format!("counter#{}", id.0),
            other => format!("{other:?}").to_lowercase(),
        }
    }

    /// The value type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Measure::Spend(_) | Measure::Aov(_) => ValueType::Money,
            Measure::Orders(_) | Measure::UnboughtCartItems(_) | Measure::Counter(_) => ValueType::Count,
            Measure::PromoShare(_) => ValueType::Ratio,
            Measure::FirstOrder
            | Measure::LastOrder
            | Measure::LastActive
            | Measure::LastSignIn
            | Measure::FirstSeen
            | Measure::RegisteredAt => ValueType::Time,
            Measure::DaysSinceRegistration
            | Measure::DaysSinceLastOrder
            | Measure::Age
            | Measure::RfmR
            | Measure::RfmF
            | Measure::RfmM
            | Measure::RawNumber(_) => ValueType::Number,
            Measure::Gender
            | Measure::AgeBand
            | Measure::Region
            | Measure::City
            | Measure::Tier
            | Measure::Lifecycle
            | Measure::RfmSegment
            | Measure::Raw(_) => ValueType::Category,
            Measure::Bought(..) => ValueType::Multi,
        }
    }

    /// The windows whose roll-over changes this measure by time alone.
    pub fn window(&self) -> Option<Duration> {
        match self {
            Measure::Spend(d)
            | Measure::Orders(d)
            | Measure::Aov(d)
            | Measure::PromoShare(d)
            | Measure::Bought(_, d) => *d,
            Measure::UnboughtCartItems(d) => Some(*d),
            _ => None,
        }
    }

    /// Whether the value changes at shop-local midnight by time alone.
    pub fn changes_at_midnight(&self) -> bool {
        matches!(
            self,
            Measure::DaysSinceRegistration
                | Measure::DaysSinceLastOrder
                | Measure::Age
                | Measure::AgeBand
                | Measure::Lifecycle
        )
    }

    /// Whether the engine computes it from population-wide scores rather than facts.
    pub fn is_rfm(&self) -> bool {
        matches!(
            self,
            Measure::RfmR | Measure::RfmF | Measure::RfmM | Measure::RfmSegment
        )
    }
}

/// A computed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraitValue {
    /// Money, count, ratio (ppm), number or time; `None` is null.
    Num(Option<i64>),
    /// A text value; `None` is null.
    Cat(Option<String>),
    /// A set of text values.
    Multi(Vec<String>),
}

/// What computing a trait needs besides the facts.
pub struct ComputeCtx<'a> {
    /// The instant of evaluation.
    pub now: i64,
    /// Window arithmetic.
    pub windowing: &'a Windowing,
    /// Settings (lifecycle thresholds, ...).
    pub config: &'a AudienceConfig,
}

/// Profile traits read by `age` and `age_band` (first present wins).
pub const BIRTHDAY_KEYS: &[&str] = &["birthday", "birthdate"];
/// The fallback of `age` without a birthday.
pub const AGE_KEYS: &[&str] = &["age"];
/// Profile traits read by `gender`.
pub const GENDER_KEYS: &[&str] = &["gender", "sex"];
/// Profile traits read by `region`.
pub const REGION_KEYS: &[&str] = &["region", "province", "address.state", "address.province"];
/// Profile traits read by `city`.
pub const CITY_KEYS: &[&str] = &["city", "address.city"];
/// Profile traits read by `tier`.
pub const TIER_KEYS: &[&str] = &["tier", "member_tier"];

/// Every profile trait the catalogue reads; the engine keeps only these and the
/// `traits.NAME` keys its rules use.
pub fn catalogue_trait_keys() -> impl Iterator<Item = &'static str> {
    [
        BIRTHDAY_KEYS,
        AGE_KEYS,
        GENDER_KEYS,
        REGION_KEYS,
        CITY_KEYS,
        TIER_KEYS,
    ]
    .into_iter()
    .flatten()
    .copied()
}

fn raw<'a>(f: &'a Facts, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| f.traits.get(*k))
        .map(|t| &*t.value)
        .filter(|v| !v.trim().is_empty())
}

/// Normalises a gender value to 男 / 女 when recognisable.
pub fn normalise_gender(v: &str) -> String {
    match v.trim().to_lowercase().as_str() {
        "男" | "male" | "m" | "man" | "1" => "男".to_owned(),
        "女" | "female" | "f" | "woman" | "2" => "女".to_owned(),
        other => other.to_owned(),
    }
}

fn parse_birthday(v: &str) -> Option<NaiveDate> {
    let date = v.get(..10).unwrap_or(v);
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(date, "%Y/%m/%d"))
        .ok()
}

fn age_years(f: &Facts, ctx: &ComputeCtx<'_>) -> Option<i64> {
    if let Some(b) = raw(f, BIRTHDAY_KEYS).and_then(parse_birthday) {
        let today = ctx
            .windowing
            .tz
            .timestamp_millis_opt(ctx.now)
            .single()?
            .date_naive();
        let mut years = i64::from(today.year() - b.year());
        if (today.month(), today.day()) < (b.month(), b.day()) {
            years -= 1;
        }
        return Some(years);
    }
    raw(f, AGE_KEYS)
        .and_then(|a| a.trim().parse::<f64>().ok())
        .map(|a| a.floor() as i64)
}

/// The age band of an age in years.
pub fn age_band(age: i64) -> &'static str {
    match age {
        i64::MIN..=17 => "<18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=54 => "45-54",
        _ => "55+",
    }
}

/// Scales a number to parts per million (ratios and raw numeric traits).
pub fn to_ppm(x: f64) -> Option<i64> {
    let scaled = (x * 1_000_000.0).round();
    (scaled.is_finite() && scaled.abs() < 9.0e18).then_some(scaled as i64)
}

/// The lifecycle stage of a profile (REQUIREMENTS R3.9–R3.11, thresholds in
/// [`crate::config::LifecycleConfig`]): 高價值用戶, else 流失用戶 / 沉睡用戶 by absence,
/// else 留存用戶 ([`is_retained`]), else 活躍用戶 (a paid order), else 新用戶.
pub fn lifecycle_stage(f: &Facts, ctx: &ComputeCtx<'_>) -> Option<&'static str> {
    let c = &ctx.config.lifecycle;
    let last_active = f.last_active?;
    let spend: i64 = f
        .orders_in(ctx.windowing, ctx.now, Some(days(c.high_value_days)))
        .map(|o| o.net())
        .sum();
    if spend > c.high_value_spend_fen {
        return Some("高價值用戶");
    }
    if !ctx
        .windowing
        .contains(ctx.now, days(c.lost_after_days), last_active)
    {
        return Some("流失用戶");
    }
    if !ctx
        .windowing
        .contains(ctx.now, days(c.dormant_after_days), last_active)
    {
        return Some("沉睡用戶");
    }
    if is_retained(f, ctx) {
        Some("留存用戶")
    } else if f.orders.iter().any(|o| o.counts()) {
        Some("活躍用戶")
    } else {
        Some("新用戶")
    }
}

/// 留存用戶, "continuously active over a period": paid orders in at least
/// `retained_min_months` of the last `retained_months` shop-local calendar months, this
/// month included (default: 2 of the last 3). Calendar months, not rolling windows, so
/// two orders a few days apart never make a customer flicker in and out as time
/// passes; the stage changes only when an order arrives or a month begins.
pub fn is_retained(f: &Facts, ctx: &ComputeCtx<'_>) -> bool {
    let c = &ctx.config.lifecycle;
    if c.retained_months == 0 || c.retained_min_months == 0 {
        return false;
    }
    let month = |t: i64| {
        ctx.windowing
            .tz
            .timestamp_millis_opt(t)
            .single()
            .map(|d| i64::from(d.year()) * 12 + i64::from(d.month0()))
    };
    let Some(this) = month(ctx.now) else {
        return false;
    };
    let mut months: Vec<i64> = f
        .orders
        .iter()
        .filter(|o| o.counts())
        .filter_map(|o| month(o.at))
        .filter(|m| (0..i64::from(c.retained_months)).contains(&(this - m)))
        .collect();
    months.dedup();
    months.len() >= c.retained_min_months as usize
}

/// Computes `m` for one profile. RFM measures and counters are not facts-derived
/// here (the engine supplies them); they yield null / the counter count.
pub fn compute(m: &Measure, f: &Facts, ctx: &ComputeCtx<'_>) -> TraitValue {
    let w = ctx.windowing;
    let now = ctx.now;
    let num = |v: Option<i64>| TraitValue::Num(v);
    let cat = |v: Option<&str>| TraitValue::Cat(v.map(str::to_owned));
    match m {
        Measure::Spend(d) => num(Some(f.orders_in(w, now, *d).map(|o| o.net()).sum())),
        Measure::Orders(d) => num(Some(f.orders_in(w, now, *d).count() as i64)),
        Measure::Aov(d) => {
            let (n, total) = f
                .orders_in(w, now, *d)
                .fold((0i64, 0i64), |(n, t), o| (n + 1, t + o.net()));
            num((n > 0).then(|| total.div_euclid(n)))
        }
        Measure::PromoShare(d) => {
            let (n, promo) = f
                .orders_in(w, now, *d)
                .fold((0i64, 0i64), |(n, p), o| (n + 1, p + i64::from(o.promo)));
            num((n > 0).then(|| promo * 1_000_000 / n))
        }
        Measure::UnboughtCartItems(d) => num(Some(f.unbought_cart_items(w, now, *d))),
        Measure::FirstOrder => num(f.order_span().0),
        Measure::LastOrder => num(f.order_span().1),
        Measure::LastActive => num(f.last_active),
        Measure::LastSignIn => num(f.last_sign_in),
        Measure::FirstSeen => num(f.first_seen),
        Measure::RegisteredAt => num(f.registered_at.or(f.first_seen)),
        Measure::DaysSinceRegistration => num(f
            .registered_at
            .or(f.first_seen)
            .map(|t| i64::from(w.local_day(now) - w.local_day(t)))),
        Measure::DaysSinceLastOrder => num(f
            .order_span()
            .1
            .map(|t| i64::from(w.local_day(now) - w.local_day(t)))),
        Measure::Age => num(age_years(f, ctx)),
        Measure::AgeBand => cat(age_years(f, ctx).map(age_band)),
        Measure::Gender => TraitValue::Cat(raw(f, GENDER_KEYS).map(normalise_gender)),
        Measure::Region => cat(raw(f, REGION_KEYS)),
        Measure::City => cat(raw(f, CITY_KEYS)),
        Measure::Tier => cat(raw(f, TIER_KEYS)),
        Measure::Lifecycle => cat(lifecycle_stage(f, ctx)),
        Measure::Bought(field, d) => TraitValue::Multi(f.bought(w, now, *d, *field)),
        Measure::Raw(k) => cat(raw(f, &[k.as_str()])),
        Measure::RawNumber(k) => num(raw(f, &[k.as_str()])
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(to_ppm)),
        Measure::Counter(id) => num(Some(f.counters.get(id).map_or(0, |c| c.count(w, now)))),
        Measure::RfmR | Measure::RfmF | Measure::RfmM => num(None),
        Measure::RfmSegment => cat(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/segments.md`, whose trait table must list exactly the catalogue.
    const GUIDE: &str = include_str!("../../../docs/segments.md");

    #[test]
    fn the_guide_lists_every_trait_and_no_other() {
        let section = GUIDE
            .split("## Traits")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap();
        let mut listed: Vec<&str> = section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .filter(|n| *n != "traits.NAME")
            .collect();
        let mut known: Vec<&str> = CATALOGUE.iter().map(|e| e.name).collect();
        listed.sort_unstable();
        known.sort_unstable();
        assert_eq!(listed, known);
    }

    #[test]
    fn age_bands_and_gender_follow_the_documented_rules() {
        assert_eq!(age_band(17), "<18");
        assert_eq!(age_band(18), "18-24");
        assert_eq!(age_band(34), "25-34");
        assert_eq!(age_band(55), "55+");
        for (raw, want) in [
            ("female", "女"),
            ("M", "男"),
            ("2", "女"),
            ("男", "男"),
            ("other", "other"),
        ] {
            assert_eq!(normalise_gender(raw), want, "{raw}");
        }
    }

    const NOW: i64 = 1_735_660_800_000;
    const DAY: i64 = 86_400_000;

    fn order(
        id: &str,
        at: i64,
        total: i64,
        promo: bool,
        lines: &[(&str, &str, &str)],
    ) -> crate::facts::OrderFact {
        crate::facts::OrderFact {
            order_id: id.into(),
            at,
            total,
            refunded: 0,
            cancelled: false,
            promo,
            bought: crate::facts::Bought::of_lines(lines.iter().map(|(sku, category, brand)| {
                crate::facts::LineRef {
                    product_id: None,
                    sku: Some(sku),
                    category: Some(category),
                    brand: Some(brand),
                }
            })),
            adjustments: vec![],
        }
    }

    fn facts(orders: Vec<crate::facts::OrderFact>) -> Facts {
        let mut f = Facts::default();
        f.touch(NOW - 10 * DAY);
        for o in orders {
            f.add_order(o);
        }
        f
    }

    fn stage(f: &Facts, now: i64) -> Option<&'static str> {
        let config = AudienceConfig::default();
        let windowing = Windowing::default();
        lifecycle_stage(
            f,
            &ComputeCtx {
                now,
                windowing: &windowing,
                config: &config,
            },
        )
    }

    /// An instant in the shop timezone (Asia/Shanghai).
    fn local(text: &str) -> i64 {
        flywheel_core::time::to_millis(flywheel_core::time::parse_timestamp(text).unwrap())
    }

    #[test]
    fn retained_needs_paid_orders_in_two_of_the_last_three_calendar_months() {
        let now = local("2025-03-15T12:00:00+08:00");
        let with = |times: &[&str]| {
            let mut f = facts(
                times
                    .iter()
                    .enumerate()
                    .map(|(i, t)| order(&format!("o{i}"), local(t), 100, false, &[]))
                    .collect(),
            );
            f.touch(now - DAY);
            f
        };
        // Two orders in March: one month, still 活躍用戶.
        assert_eq!(
            stage(
                &with(&["2025-03-01T00:00:00+08:00", "2025-03-14T00:00:00+08:00"]),
                now
            ),
            Some("活躍用戶")
        );
        // The last instant of February and the first of March: two months.
        let edge = with(&["2025-02-28T23:59:59.999+08:00", "2025-03-01T00:00:00+08:00"]);
        assert_eq!(stage(&edge, now), Some("留存用戶"));
        // January and March (two of three, February quiet): retained.
        assert_eq!(
            stage(
                &with(&["2025-01-01T00:00:00+08:00", "2025-03-02T00:00:00+08:00"]),
                now
            ),
            Some("留存用戶")
        );
        // The last instant of December is outside the three months.
        assert_eq!(
            stage(
                &with(&["2024-12-31T23:59:59.999+08:00", "2025-03-02T00:00:00+08:00"]),
                now
            ),
            Some("活躍用戶")
        );
        // Shop-local months: 2024-12-31T16:00Z is already January in Shanghai.
        assert_eq!(
            stage(&with(&["2024-12-31T16:00:00Z", "2025-03-02T00:00:00+08:00"]), now),
            Some("留存用戶")
        );
        // Time alone: January + February stay retained through March, and on the first
        // instant of April only February is left.
        let f = with(&["2025-01-20T00:00:00+08:00", "2025-02-10T00:00:00+08:00"]);
        assert_eq!(
            stage(&f, local("2025-03-31T23:59:59.999+08:00")),
            Some("留存用戶")
        );
        assert_eq!(stage(&f, local("2025-04-01T00:00:00+08:00")), Some("活躍用戶"));
        // A cancelled order does not count; neither does one dated in a later month.
        let mut f = with(&["2025-02-10T00:00:00+08:00", "2025-03-10T00:00:00+08:00"]);
        f.order_mut("o0").unwrap().adjust("c", true, None);
        assert_eq!(stage(&f, now), Some("活躍用戶"));
        assert_eq!(
            stage(
                &with(&["2025-02-10T00:00:00+08:00", "2025-04-01T00:00:00+08:00"]),
                now
            ),
            Some("活躍用戶")
        );
        // No order: 新用戶; a high spender is 高價值用戶 first.
        assert_eq!(stage(&with(&[]), now), Some("新用戶"));
        let mut big = with(&["2025-02-10T00:00:00+08:00"]);
        big.add_order(order("big", now - DAY, 100_001, false, &[]));
        assert_eq!(stage(&big, now), Some("高價值用戶"));
        // The thresholds are settings: 3 of 3 months; 0 months turns the stage off.
        let mut config = AudienceConfig::default();
        config.lifecycle.retained_min_months = 3;
        let windowing = Windowing::default();
        let ctx = ComputeCtx {
            now,
            windowing: &windowing,
            config: &config,
        };
        assert!(!is_retained(
            &with(&["2025-02-10T00:00:00+08:00", "2025-03-10T00:00:00+08:00"]),
            &ctx
        ));
        assert!(is_retained(
            &with(&[
                "2025-01-10T00:00:00+08:00",
                "2025-02-10T00:00:00+08:00",
                "2025-03-10T00:00:00+08:00"
            ]),
            &ctx
        ));
        config.lifecycle.retained_months = 0;
        let ctx = ComputeCtx {
            now,
            windowing: &windowing,
            config: &config,
        };
        assert!(!is_retained(
            &with(&[
                "2025-01-10T00:00:00+08:00",
                "2025-02-10T00:00:00+08:00",
                "2025-03-10T00:00:00+08:00"
            ]),
            &ctx
        ));
    }

    #[test]
    fn the_stages_shown_are_the_seed_names() {
        let mut seen: Vec<&str> = crate::config::LIFECYCLE_STAGES.to_vec();
        seen.sort_unstable();
        let mut expected = vec![
            "新用戶",
            "活躍用戶",
            "留存用戶",
            "高價值用戶",
            "沉睡用戶",
            "流失用戶",
        ];
        expected.sort_unstable();
        assert_eq!(seen, expected);
        let lifecycle_tags: Vec<String> = crate::config::default_builtin_tags()
            .into_iter()
            .filter(|t| t.group == "生命周期")
            .map(|t| t.name)
            .collect();
        assert_eq!(lifecycle_tags, crate::config::LIFECYCLE_STAGES.map(String::from));
    }

    #[test]
    fn bought_sets_follow_paid_orders_inside_the_window() {
        let windowing = Windowing::default();
        let config = AudienceConfig::default();
        let ctx = ComputeCtx {
            now: NOW,
            windowing: &windowing,
            config: &config,
        };
        let mut f = facts(vec![
            order(
                "new",
                NOW - DAY,
                100,
                false,
                &[("S1", "彩妝", "后"), ("S2", "護膚", "后")],
            ),
            order("edge", NOW - 90 * DAY, 100, false, &[("S3", "母嬰", "好孩子")]),
            order(
                "inside",
                NOW - 90 * DAY + 1,
                100,
                false,
                &[("S4", "食品", "三只松鼠")],
            ),
            order("gone", NOW - 2 * DAY, 100, false, &[("S5", "家電", "美的")]),
        ]);
        f.order_mut("gone").unwrap().adjust("r", false, None);
        let multi = |m: Measure| match compute(&m, &f, &ctx) {
            TraitValue::Multi(v) => v,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            multi(Measure::Bought(LineField::Category, Some(days(90)))),
            vec!["彩妝", "護膚", "食品"]
        );
        assert_eq!(
            multi(Measure::Bought(LineField::Category, None)),
            vec!["彩妝", "母嬰", "護膚", "食品"]
        );
        assert_eq!(
            multi(Measure::Bought(LineField::Brand, Some(days(7)))),
            vec!["后"]
        );
        assert_eq!(
            multi(Measure::Bought(LineField::Sku, Some(days(7)))),
            vec!["S1", "S2"]
        );
        assert_eq!(
            multi(Measure::Bought(LineField::Product, Some(days(7)))),
            vec!["S1", "S2"]
        );
        assert_eq!(
            Measure::Bought(LineField::Category, Some(days(90))).key(),
            "categories_bought(90d)"
        );
        assert_eq!(
            Measure::Bought(LineField::Category, Some(days(90))).window(),
            Some(days(90))
        );
        // The order on the 90-day edge leaves the window at `now`; the next change is
        // when the order 1 ms inside leaves.
        let next = f.next_change(&windowing, NOW, &[days(90)]);
        assert_eq!(next, Some(NOW + 1));
    }

    /// 易受促銷影響客戶 (`orders(365d) >= 2 and promo_share(365d) >= 0.5`) exactly at,
    /// just below and just above each threshold.
    #[test]
    fn promotion_sensitive_at_its_boundaries() {
        use crate::plan::{check, Names};
        struct NoNames;
        impl Names for NoNames {
            fn has_tag(&self, _: &str) -> bool {
                false
            }
            fn has_segment(&self, _: &str) -> bool {
                false
            }
        }
        let rule = crate::config::default_builtin_tags()
            .into_iter()
            .find(|t| t.name == "易受促銷影響客戶")
            .unwrap()
            .rule;
        assert_eq!(rule, "orders(365d) >= 2 and promo_share(365d) >= 0.5");
        let plan = check(
            &crate::dsl::parse(&rule).unwrap(),
            &NoNames,
            chrono_tz::Asia::Shanghai,
        )
        .unwrap();
        let windowing = Windowing::default();
        let config = AudienceConfig::default();
        let ctx = ComputeCtx {
            now: NOW,
            windowing: &windowing,
            config: &config,
        };
        struct View<'a>(&'a Facts, &'a ComputeCtx<'a>);
        impl crate::naive::ProfileView for View<'_> {
            fn value(&self, m: &Measure) -> TraitValue {
                compute(m, self.0, self.1)
            }
            fn counter(&self, _: &str) -> i64 {
                0
            }
            fn has_tag(&self, _: &str) -> bool {
                false
            }
            fn in_segment(&self, _: &str) -> bool {
                false
            }
        }
        let eval = crate::index::EvalCtx {
            now: NOW,
            windowing: &windowing,
        };
        // (orders, of which promo, age of the oldest order in days) → tagged?
        let tagged = |n: usize, promo: usize, oldest: i64| {
            let orders = (0..n)
                .map(|i| {
                    let at = if i == 0 { NOW - oldest * DAY } else { NOW - DAY };
                    order(&format!("o{i}"), at, 100, i < promo, &[])
                })
                .collect();
            let f = facts(orders);
            crate::naive::matches(&plan, &View(&f, &ctx), &eval)
        };
        // Orders: 1 is below, 2 is at, 3 is above the threshold (all with coupons).
        assert!(!tagged(1, 1, 1));
        assert!(tagged(2, 2, 1));
        assert!(tagged(3, 3, 1));
        // Share: 1 of 2 is exactly 0.5 (in); 49 of 99 just below; 50 of 99 just above.
        assert!(tagged(2, 1, 1));
        assert!(!tagged(2, 0, 1));
        assert!(!tagged(99, 49, 1));
        assert!(tagged(99, 50, 1));
        assert!(!tagged(3, 1, 1));
        // The window: an order exactly 365 days old has left it, 1 ms less is inside.
        assert!(!tagged(2, 2, 365));
        assert!(tagged(2, 2, 364));
        let f = facts(vec![
            order("a", NOW - 365 * DAY + 1, 100, true, &[]),
            order("b", NOW - DAY, 100, true, &[]),
        ]);
        assert!(crate::naive::matches(&plan, &View(&f, &ctx), &eval));
        // A cancelled promotion order leaves the share.
        let mut zero = facts(vec![
            order("a", NOW - DAY, 100, false, &[]),
            order("b", NOW - DAY, 100, true, &[]),
        ]);
        assert_eq!(
            compute(&Measure::PromoShare(Some(days(365))), &zero, &ctx),
            TraitValue::Num(Some(500_000))
        );
        zero.order_mut("b").unwrap().adjust("c", true, None);
        assert_eq!(
            compute(&Measure::PromoShare(Some(days(365))), &zero, &ctx),
            TraitValue::Num(Some(0))
        );
    }
}
