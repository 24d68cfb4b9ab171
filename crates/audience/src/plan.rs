//! Type-checking a segment expression into an executable [`Plan`].
//!
//! This is where unknown traits, unknown tags/segments, wrong literal types and
//! operators that do not fit a trait are reported, with a message that says what
//! would fit. Nothing from the text reaches the index unresolved.

use chrono::{NaiveDate, TimeZone};
use flywheel_core::ErrorCode;

use crate::counter::CounterSpec;
use crate::dsl::ast::{CmpOp, Cond, Duration, Expr, TraitRef, Value, WindowArg};
use crate::facts::LineField;
use crate::traits::{to_ppm, Measure, ValueType, WindowDefault, CATALOGUE};
use crate::window::days;
use crate::{Error, Result};

/// An executable segment expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// All hold.
    And(Vec<Plan>),
    /// Any holds.
    Or(Vec<Plan>),
    /// Does not hold.
    Not(Box<Plan>),
    /// A leaf.
    Leaf(Leaf),
}

/// A numeric predicate; null never matches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumPred {
    /// Compare with a constant.
    Cmp(CmpOp, i64),
    /// `now − d < t` (time traits).
    Within(Duration),
    /// `t <= now − d` (time traits).
    Before(Duration),
}

/// A leaf condition over one column.
#[derive(Debug, Clone, PartialEq)]
pub enum Leaf {
    /// A numeric column (money, count, ratio, number, time).
    Num {
        /// What is compared.
        measure: Measure,
        /// How.
        pred: NumPred,
    },
    /// An event counter (registered by the engine before evaluation).
    Event {
        /// What is counted.
        spec: CounterSpec,
        /// The count comparison.
        op: CmpOp,
        /// The count.
        count: i64,
    },
    /// A text column equals one of `values` (`negated`: is set and equals none).
    Cat {
        /// The column.
        measure: Measure,
        /// Accepted values.
        values: Vec<String>,
        /// `!=` / `not in`.
        negated: bool,
    },
    /// The column has a value (non-empty set for multi-valued traits).
    IsSet {
        /// The column.
        measure: Measure,
        /// `is not set`.
        negated: bool,
    },
    /// A multi-valued column contains `value`.
    Contains {
        /// The column.
        measure: Measure,
        /// The value.
        value: String,
    },
    /// Carries the tag.
    Tag(String),
    /// Member of the saved segment.
    Segment(String),
}

/// Names the checker must know besides the catalogue.
pub trait Names {
    /// Whether a tag of this name exists.
    fn has_tag(&self, name: &str) -> bool;
    /// Whether a saved segment of this name exists.
    fn has_segment(&self, name: &str) -> bool;
    /// Whether `event("name")` may be used: an event received before or a standard one
    /// ([`STANDARD_EVENTS`]). By default every name is.
    fn has_event(&self, _name: &str) -> bool {
        true
    }
    /// Event names to suggest for a misspelt one.
    fn event_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Event names a segment may use before any has been received: the Segment e-commerce
/// spec v2 and its lifecycle events (`Signed Up`, …), as sent by Segment and RudderStack SDKs.
pub const STANDARD_EVENTS: &[&str] = &[
    "Products Searched",
    "Product List Viewed",
    "Product List Filtered",
    "Promotion Viewed",
    "Promotion Clicked",
    "Product Clicked",
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Cart Viewed",
    "Checkout Started",
    "Checkout Step Viewed",
    "Checkout Step Completed",
    "Payment Info Entered",
    "Order Updated",
    "Order Completed",
    "Order Refunded",
    "Order Cancelled",
    "Coupon Entered",
    "Coupon Applied",
    "Coupon Denied",
    "Coupon Removed",
    "Product Added to Wishlist",
    "Product Removed from Wishlist",
    "Wishlist Product Added to Cart",
    "Product Shared",
    "Cart Shared",
    "Product Reviewed",
    "Signed Up",
    "Signed In",
    "Signed Out",
    "Logged In",
];

/// The closest of `candidates` to `name` (case-insensitive edit distance within a third of
/// its length, at least 2), for "did you mean …?".
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

/// Resolves `expr` into a plan; `tz` reads date literals as shop-local dates.
pub fn check(expr: &Expr, names: &dyn Names, tz: chrono_tz::Tz) -> Result<Plan> {
    Checker { names, tz }.expr(expr)
}

struct Checker<'a> {
    names: &'a dyn Names,
    tz: chrono_tz::Tz,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

/// A name the expression uses that the shop does not have.
fn unknown(code: ErrorCode, msg: impl Into<String>) -> Error {
    Error::refused(code, msg)
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Money => "money",
        ValueType::Count => "a count",
        ValueType::Ratio => "a ratio between 0 and 1",
        ValueType::Number => "a number",
        ValueType::Time => "a time",
        ValueType::Category => "text",
        ValueType::Multi => "a set of text values",
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("{s:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Money(m) => format!("{} fen", m.fen),
        Value::Number(n) => n.to_string(),
    }
}

impl Checker<'_> {
    fn expr(&self, e: &Expr) -> Result<Plan> {
        Ok(match e {
            Expr::And(xs) if xs.is_empty() => return Err(bad("\"and\" needs at least one condition")),
            Expr::Or(xs) if xs.is_empty() => return Err(bad("\"or\" needs at least one condition")),
            Expr::And(xs) => Plan::And(xs.iter().map(|x| self.expr(x)).collect::<Result<_>>()?),
            Expr::Or(xs) => Plan::Or(xs.iter().map(|x| self.expr(x)).collect::<Result<_>>()?),
            Expr::Not(x) => Plan::Not(Box::new(self.expr(x)?)),
            Expr::Cond(c) => Plan::Leaf(self.cond(c)?),
        })
    }

    fn cond(&self, c: &Cond) -> Result<Leaf> {
        match c {
            Cond::Compare { trait_ref, op, value } => self.compare(trait_ref, *op, value),
            Cond::In {
                trait_ref,
                values,
                negated,
            } => {
                let m = measure(trait_ref)?;
                if values.is_empty() {
                    return Err(bad(format!(
                        "{} in [...] needs at least one value",
                        trait_ref.name
                    )));
                }
                match m.value_type() {
                    ValueType::Category => Ok(Leaf::Cat {
                        values: values.iter().map(|v| text_of(&m, v)).collect::<Result<_>>()?,
                        measure: m,
                        negated: *negated,
                    }),
                    t => {
                        // `x in [1, 2]` on a number: an Or of equalities.
                        let _ = t;
                        Err(bad(format!(
                            "\"in\" needs a text trait; {} is {} — use comparisons such as {} >= 1",
                            trait_ref.name,
                            type_name(m.value_type()),
                            trait_ref.name
                        )))
                    }
                }
            }
            Cond::Contains { trait_ref, value } => {
                let m = measure(trait_ref)?;
                if m.value_type() != ValueType::Multi {
                    return Err(bad(format!(
                        "\"contains\" needs a multi-valued trait such as categories_bought; {} is {}",
                        trait_ref.name,
                        type_name(m.value_type())
                    )));
                }
                Ok(Leaf::Contains {
                    value: text_of(&m, value)?,
                    measure: m,
                })
            }
            Cond::Within { trait_ref, window } | Cond::Before { trait_ref, window } => {
                let m = measure(trait_ref)?;
                if m.value_type() != ValueType::Time {
                    return Err(bad(format!(
                        "\"within\"/\"before\" need a time trait such as last_order or last_sign_in; {} is {}",
                        trait_ref.name,
                        type_name(m.value_type())
                    )));
                }
                let pred = if matches!(c, Cond::Within { .. }) {
                    NumPred::Within(*window)
                } else {
                    NumPred::Before(*window)
                };
                Ok(Leaf::Num { measure: m, pred })
            }
            Cond::IsSet { trait_ref, negated } => Ok(Leaf::IsSet {
                measure: measure(trait_ref)?,
                negated: *negated,
            }),
            Cond::Event {
                name,
                within,
                filters,
                op,
                count,
            } => {
                if name.trim().is_empty() {
                    return Err(bad("event(\"...\") needs an event name"));
                }
                if filters.iter().any(|f| f.values.is_empty()) {
                    return Err(bad("an event property filter needs at least one value"));
                }
                if !self.names.has_event(name) && !STANDARD_EVENTS.contains(&name.as_str()) {
                    let known = self.names.event_names();
                    let hint = closest(
                        name,
                        known
                            .iter()
                            .map(String::as_str)
                            .chain(STANDARD_EVENTS.iter().copied()),
                    );
                    return Err(unknown(ErrorCode::UnknownEvent, format!(
                        "unknown event {name:?}: no such event has been received and it is not a standard e-commerce event{}",
                        did_you_mean(hint)
                    )));
                }
                Ok(Leaf::Event {
                    spec: CounterSpec {
                        name: name.clone(),
                        window: *within,
                        filters: filters.clone(),
                    },
                    op: *op,
                    count: i64::from(*count),
                })
            }
            Cond::Tag { name } => {
                if !self.names.has_tag(name) {
                    return Err(unknown(
                        ErrorCode::UnknownTag,
                        format!("unknown tag {name:?}: create it first or check the spelling"),
                    ));
                }
                Ok(Leaf::Tag(name.clone()))
            }
            Cond::Segment { name } => {
                if !self.names.has_segment(name) {
                    return Err(unknown(
                        ErrorCode::UnknownSegment,
                        format!("unknown segment {name:?}"),
                    ));
                }
                Ok(Leaf::Segment(name.clone()))
            }
        }
    }

    fn compare(&self, r: &TraitRef, op: CmpOp, value: &Value) -> Result<Leaf> {
        let m = measure(r)?;
        let ty = m.value_type();
        let name = &r.name;
        let n = match (ty, value) {
            (ValueType::Category, v) => {
                return match op {
                    CmpOp::Eq | CmpOp::Ne => Ok(Leaf::Cat {
                        values: vec![text_of(&m, v)?],
                        measure: m,
                        negated: op == CmpOp::Ne,
                    }),
                    _ => {
                        // A raw trait compared as a number.
                        if let (Measure::Raw(k), Value::Number(x)) = (&m, v) {
                            let v = to_ppm(*x).ok_or_else(|| bad(format!("{x} is out of range")))?;
                            return Ok(Leaf::Num {
                                measure: Measure::RawNumber(k.clone()),
                                pred: NumPred::Cmp(op, v),
                            });
                        }
                        Err(bad(format!("{name} is text: compare it with = or != (or use in [...])")))
                    }
                };
            }
            (ValueType::Multi, _) => {
                return Err(bad(format!("{name} is a set of values: use {name} contains \"...\"")))
            }
            (ValueType::Money, Value::Money(mo)) => mo.fen,
            (ValueType::Money, Value::Number(x)) => {
                return Err(bad(format!(
                    "{name} is money: write the amount with a unit, e.g. {x} 元 or {} fen",
                    (x * 100.0).round()
                )))
            }
            (ValueType::Count | ValueType::Number, Value::Number(x)) => {
                if x.fract() != 0.0 || x.abs() > 9.0e15 {
                    return Err(bad(format!("{name} is {}: compare it with a whole number, not {x}", type_name(ty))));
                }
                *x as i64
            }
            (ValueType::Ratio, Value::Number(x)) => {
                if !(0.0..=1.0).contains(x) {
                    return Err(bad(format!("{name} is a ratio between 0 and 1, not {x}")));
                }
                to_ppm(*x).unwrap_or(0)
            }
            (ValueType::Time, Value::Str(s)) => self.instant(s)?,
            (ValueType::Time, v) => {
                return Err(bad(format!(
                    "{name} is a time: use {name} within 30d, {name} before 90d, or compare with a date such as \"2024-11-11\" (got {})",
                    show(v)
                )))
            }
            (t, v) => return Err(bad(format!("{name} is {}, it cannot be compared with {}", type_name(t), show(v)))),
        };
        Ok(Leaf::Num {
            measure: m,
            pred: NumPred::Cmp(op, n),
        })
    }

    fn instant(&self, s: &str) -> Result<i64> {
        if let Ok(t) = flywheel_core::time::parse_timestamp(s) {
            return Ok(flywheel_core::time::to_millis(t));
        }
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            bad(format!(
                "{s:?} is not a date: write \"2024-11-11\" or an ISO-8601 time"
            ))
        })?;
        date.and_hms_opt(0, 0, 0)
            .and_then(|d| self.tz.from_local_datetime(&d).earliest())
            .map(|d| d.timestamp_millis())
            .ok_or_else(|| bad(format!("{s:?} does not exist in the shop timezone")))
    }
}

fn text_of(m: &Measure, v: &Value) -> Result<String> {
    Ok(match v {
        Value::Str(s) if *m == Measure::Gender => crate::traits::normalise_gender(s),
        Value::Str(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Money(_) => return Err(bad(format!("{} is text, not money", m.key()))),
    })
}

/// Resolves a trait reference against the catalogue.
pub fn measure(r: &TraitRef) -> Result<Measure> {
    if let Some(k) = r.name.strip_prefix("traits.") {
        if k.is_empty() {
            return Err(bad("traits. needs a trait name, e.g. traits.vip_level"));
        }
        if r.window.is_some() {
            return Err(bad(format!("{} takes no window", r.name)));
        }
        return Ok(Measure::Raw(k.to_owned()));
    }
    let Some(entry) = CATALOGUE.iter().find(|e| e.name == r.name) else {
        let names: Vec<&str> = CATALOGUE.iter().map(|e| e.name).collect();
        return Err(unknown(
            ErrorCode::UnknownTrait,
            format!(
                "unknown trait {:?}{}; known traits: {}; raw profile traits are written traits.<name>",
                r.name,
                did_you_mean(closest(&r.name, names.iter().copied())),
                names.join(", ")
            ),
        ));
    };
    let window = match (entry.windowed, r.window) {
        (None, Some(_)) => return Err(bad(format!("{} takes no window", r.name))),
        (None, None) => None,
        (Some(WindowDefault::AllTime), None | Some(WindowArg::All(_))) => None,
        (Some(WindowDefault::Days(d)), None) => Some(days(d)),
        (Some(WindowDefault::Days(_)), Some(WindowArg::All(_))) => {
            return Err(bad(format!("{} needs a window such as {}(30d)", r.name, r.name)))
        }
        (Some(_), Some(WindowArg::Last(d))) => Some(d),
    };
    Ok(match entry.name {
        "spend" => Measure::Spend(window),
        "orders" => Measure::Orders(window),
        "aov" => Measure::Aov(window),
        "promo_share" => Measure::PromoShare(window),
        "unbought_cart_items" => Measure::UnboughtCartItems(window.unwrap_or(days(30))),
        "first_order" => Measure::FirstOrder,
        "last_order" => Measure::LastOrder,
        "last_active" => Measure::LastActive,
        "last_sign_in" => Measure::LastSignIn,
        "first_seen" => Measure::FirstSeen,
        "registered_at" => Measure::RegisteredAt,
        "days_since_registration" => Measure::DaysSinceRegistration,
        "days_since_last_order" => Measure::DaysSinceLastOrder,
        "age" => Measure::Age,
        "gender" => Measure::Gender,
        "age_band" => Measure::AgeBand,
        "region" => Measure::Region,
        "city" => Measure::City,
        "tier" => Measure::Tier,
        "lifecycle" => Measure::Lifecycle,
        "categories_bought" => Measure::Bought(LineField::Category, window),
        "brands_bought" => Measure::Bought(LineField::Brand, window),
        "skus_bought" => Measure::Bought(LineField::Sku, window),
        "products_bought" => Measure::Bought(LineField::Product, window),
        "rfm_r" => Measure::RfmR,
        "rfm_f" => Measure::RfmF,
        "rfm_m" => Measure::RfmM,
        _ => Measure::RfmSegment,
    })
}

impl Plan {
    /// Every leaf, depth first.
    pub fn leaves(&self) -> Vec<&Leaf> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Leaf>) {
        match self {
            Plan::And(xs) | Plan::Or(xs) => xs.iter().for_each(|x| x.collect(out)),
            Plan::Not(x) => x.collect(out),
            Plan::Leaf(l) => out.push(l),
        }
    }

    /// Tags and segments it refers to.
    pub fn references(&self) -> Vec<&Leaf> {
        self.leaves()
            .into_iter()
            .filter(|l| matches!(l, Leaf::Tag(_) | Leaf::Segment(_)))
            .collect()
    }
}
