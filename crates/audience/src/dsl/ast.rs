//! The segment expression tree: what the text language parses into and what the
//! JSON form of the API and the console is (`serde` gives the JSON shape).
//!
//! The tree is *syntactic*: it names traits and events but does not know whether
//! they exist or have the right type. [`crate::plan::check`] resolves it against the trait
//! catalogue into an executable plan and reports unknown names and wrong types.

use std::fmt;
use std::str::FromStr;

use flywheel_core::Fen;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::error::{MoneyError, ParseError};
use super::MAX_DEPTH;

/// A segment expression.
///
/// JSON: `{"and": [..]}`, `{"or": [..]}`, `{"not": {..}}`, or one of the condition
/// objects below (tagged by `"type"`).
///
/// Reading JSON refuses what the text language cannot say, so every accepted tree
/// prints (`Display`) to text that parses back to the same tree: empty `and`/`or`
/// lists, empty value lists, trait names that are not identifiers (or are reserved
/// words), money beyond ±10^15 fen, unknown keys, and nesting deeper than
/// [`MAX_DEPTH`] levels of `and`/`or`/`not`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// Every operand holds (at least one operand).
    And(Vec<Expr>),
    /// At least one operand holds (at least one operand).
    Or(Vec<Expr>),
    /// The operand does not hold.
    Not(Box<Expr>),
    /// A leaf condition.
    #[serde(untagged)]
    Cond(Cond),
}

/// A leaf condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Cond {
    /// `spend(30d) > 1000 元`, `gender = "女"`, `age >= 25`.
    Compare {
        /// The trait compared.
        #[serde(rename = "trait")]
        trait_ref: TraitRef,
        /// The comparison.
        op: CmpOp,
        /// The right-hand side.
        value: Value,
    },
    /// `region in ["上海", "北京"]` / `region not in [...]`.
    In {
        /// The trait tested.
        #[serde(rename = "trait")]
        trait_ref: TraitRef,
        /// The accepted values (at least one).
        #[serde(deserialize_with = "non_empty_values")]
        values: Vec<Value>,
        /// `not in` when true.
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
    },
    /// `categories_bought contains "護膚"` (multi-valued traits).
    Contains {
        /// The multi-valued trait.
        #[serde(rename = "trait")]
        trait_ref: TraitRef,
        /// The value looked for.
        value: Value,
    },
    /// `last_sign_in within 90d`: a time trait lies inside the last `window`
    /// (`now - window < t <= now`).
    Within {
        /// The time trait.
        #[serde(rename = "trait")]
        trait_ref: TraitRef,
        /// The window length.
        window: Duration,
    },
    /// `first_seen before 90d`: a time trait lies at or before `now - window`.
    Before {
        /// The time trait.
        #[serde(rename = "trait")]
        trait_ref: TraitRef,
        /// How long ago.
        window: Duration,
    },
    /// `city is set` / `city is not set`.
    IsSet {
        /// The trait tested.
        #[serde(rename = "trait")]
        trait_ref: TraitRef,
        /// `is not set` when true.
        #[serde(default, skip_serializing_if = "is_false")]
        negated: bool,
    },
    /// `event("Product Added", within: 7d, where: {category: "護膚"}) >= 2`.
    /// A bare `event("X")` means `>= 1` over all time.
    Event {
        /// The event name (`event` of a track call, or `name` of a page/screen call).
        name: String,
        /// Only events inside the last `within` count; `None` is all time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        within: Option<Duration>,
        /// Property filters, all of which must hold (`where: {k: v, k2: [v1, v2]}`).
        #[serde(default, rename = "where", skip_serializing_if = "Vec::is_empty")]
        filters: Vec<PropertyFilter>,
        /// The count comparison (`>=` when left out of the JSON).
        #[serde(default = "ge")]
        op: CmpOp,
        /// The count compared with (a non-negative integer; 1 when left out of the JSON).
        #[serde(default = "one")]
        count: u32,
    },
    /// `tag("高價值客戶")`: the profile carries the tag (rule or manual).
    Tag {
        /// The tag name.
        name: String,
    },
    /// `segment("華東女性")`: the profile is a member of the saved segment.
    Segment {
        /// The segment name.
        name: String,
    },
}

/// A trait reference: a name and, for windowed aggregates, a window
/// (`spend(30d)`, `orders(all)`, `gender`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraitRef {
    /// The trait name (`spend`, `gender`, `traits.vip_level` for a raw profile trait):
    /// an identifier that is not a reserved word (see [`super::is_valid_trait_name`]).
    #[serde(deserialize_with = "trait_name")]
    pub name: String,
    /// The window of a windowed aggregate; `None` when not written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowArg>,
}

/// The argument of a windowed aggregate. JSON: `"all"` or a duration such as `"30d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum WindowArg {
    /// `all`: all time.
    All(AllTime),
    /// A duration such as `30d`.
    Last(Duration),
}

/// The literal `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllTime {
    /// All time.
    All,
}

/// A duration written as a number and a unit: `30d`, `12h`, `45m`, `2w`.
/// JSON: the same string, e.g. `"30d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Duration {
    /// The number of units (positive).
    pub amount: u32,
    /// The unit.
    pub unit: DurationUnit,
}

/// Units of a [`Duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DurationUnit {
    /// `m`: minutes.
    Minutes,
    /// `h`: hours.
    Hours,
    /// `d`: days (24 hours in rolling windows; shop-calendar days in calendar mode).
    Days,
    /// `w`: weeks (7 days).
    Weeks,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmpOp {
    /// `=`
    #[serde(rename = "=")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
}

/// A literal on the right of a comparison.
///
/// JSON: a string, a boolean, a number, or `{"yuan": "1000.01"}` / `{"fen": 100001}`
/// for money. In the text language money is a number followed by `元` (yuan) or
/// `fen`/`分`. Money is written to JSON as `{"fen": 100001}`. A `Number` must be
/// finite (JSON has no NaN or infinity; the text parser never makes one); it
/// round-trips through JSON exactly because the crate enables `serde_json`'s
/// `float_roundtrip` (without it `serde_json` misreads some 16–17 digit numbers).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A string in double quotes.
    Str(String),
    /// `true` / `false`.
    Bool(bool),
    /// A money amount, already in integer fen (`1000.01 元` → 100001).
    Money(Money),
    /// A plain number (`2`, `0.5`, `-3`).
    Number(f64),
}

/// A money literal in fen, at most ±10^15 fen ([`Money::MAX_FEN`]).
///
/// JSON: written as `{"fen": 100001}`; read from `{"fen": 100001}` or
/// `{"yuan": "1000.01"}` (exact decimal text, at most 2 decimals; a JSON number is
/// also accepted for `yuan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Money {
    /// The amount in fen.
    pub fen: i64,
}

/// One property filter of an event condition: `category: "護膚"` or
/// `category: ["護膚", "彩妝"]` (any of).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyFilter {
    /// The property name (dots address nested objects: `product.brand`).
    pub property: String,
    /// Accepted values (any of; at least one).
    #[serde(deserialize_with = "non_empty_values")]
    pub values: Vec<Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn ge() -> CmpOp {
    CmpOp::Ge
}

fn one() -> u32 {
    1
}

impl FromStr for Expr {
    type Err = ParseError;

    /// Parses the text form; the same as [`super::parse`].
    fn from_str(text: &str) -> Result<Expr, ParseError> {
        super::parse(text)
    }
}

impl DurationUnit {
    /// The unit's letter in the text and JSON forms: `m`, `h`, `d` or `w`.
    pub fn suffix(self) -> char {
        match self {
            DurationUnit::Minutes => 'm',
            DurationUnit::Hours => 'h',
            DurationUnit::Days => 'd',
            DurationUnit::Weeks => 'w',
        }
    }

    /// The unit for a letter written after a number (`d` → days); case-sensitive.
    pub fn from_suffix(suffix: &str) -> Option<DurationUnit> {
        match suffix {
            "m" => Some(DurationUnit::Minutes),
            "h" => Some(DurationUnit::Hours),
            "d" => Some(DurationUnit::Days),
            "w" => Some(DurationUnit::Weeks),
            _ => None,
        }
    }

    /// The unit's length in seconds (a day is 24 hours).
    pub fn seconds(self) -> u64 {
        match self {
            DurationUnit::Minutes => 60,
            DurationUnit::Hours => 3_600,
            DurationUnit::Days => 86_400,
            DurationUnit::Weeks => 604_800,
        }
    }
}

impl Duration {
    /// A duration of `amount` units; `None` when `amount` is zero.
    pub fn new(amount: u32, unit: DurationUnit) -> Option<Duration> {
        (amount > 0).then_some(Duration { amount, unit })
    }

    /// The length in seconds, days counted as 24 hours (cannot overflow: at most
    /// `u32::MAX` weeks).
    pub fn as_seconds(self) -> u64 {
        u64::from(self.amount) * self.unit.seconds()
    }
}

impl FromStr for Duration {
    type Err = ParseError;

    /// Reads `30d`, `12h`, `45m` or `2w` with the rules of the text language.
    fn from_str(text: &str) -> Result<Duration, ParseError> {
        super::parser::parse_duration(text)
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e: ParseError| de::Error::custom(e.message))
    }
}

impl<'de> Deserialize<'de> for WindowArg {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WindowArg, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "all" {
            return Ok(WindowArg::All(AllTime::All));
        }
        text.parse().map(WindowArg::Last).map_err(|e: ParseError| {
            de::Error::custom(format!("a window is \"all\" or a duration: {}", e.message))
        })
    }
}

impl Money {
    /// The largest amount either way: 10^15 fen, as [`flywheel_core::Fen`] accepts.
    pub const MAX_FEN: i64 = 1_000_000_000_000_000;

    /// An amount in fen; refused beyond ±[`Money::MAX_FEN`].
    pub fn from_fen(fen: i64) -> Result<Money, MoneyError> {
        if fen.unsigned_abs() > Money::MAX_FEN.unsigned_abs() {
            return Err(MoneyError::OutOfRange(format!("{fen} fen")));
        }
        Ok(Money { fen })
    }

    /// Reads whole fen written as decimal digits (`"5"`, `"-100"`).
    pub fn from_fen_text(text: &str) -> Result<Money, MoneyError> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.contains('.') && is_decimal(digits) {
            return Err(MoneyError::FenNotWhole(text.to_string()));
        }
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::Invalid(text.to_string()));
        }
        let fen: i64 = text
            .parse()
            .map_err(|_| MoneyError::OutOfRange(format!("{text} fen")))?;
        Money::from_fen(fen)
    }

    /// Reads yuan written as exact decimal text with at most 2 decimals
    /// (`"1000"`, `"1000.01"`, `"-0.5"`); `"1000.001"` is refused, never rounded.
    pub fn from_yuan_text(text: &str) -> Result<Money, MoneyError> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if !is_decimal(digits) {
            return Err(MoneyError::Invalid(text.to_string()));
        }
        if digits.split_once('.').is_some_and(|(_, frac)| frac.len() > 2) {
            return Err(MoneyError::TooManyDecimals(text.to_string()));
        }
        match Fen::parse_decimal(text) {
            Ok(fen) => Money::from_fen(fen.0),
            Err(flywheel_core::Error::MoneyOutOfRange(_)) => {
                Err(MoneyError::OutOfRange(format!("{text} 元")))
            }
            Err(_) => Err(MoneyError::Invalid(text.to_string())),
        }
    }

    /// The amount as the core money type.
    pub fn to_fen(self) -> Fen {
        Fen(self.fen)
    }
}

/// `digits` or `digits.digits`, ASCII only, no sign.
fn is_decimal(text: &str) -> bool {
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match text.split_once('.') {
        Some((int, frac)) => all_digits(int) && all_digits(frac),
        None => all_digits(text),
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        deserializer.deserialize_map(MoneyVisitor)
    }
}

struct MoneyVisitor;

impl<'de> Visitor<'de> for MoneyVisitor {
    type Value = Money;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"money as {"fen": 100001} or {"yuan": "1000.01"}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Money, A::Error> {
        let mut money = None;
        while let Some(key) = map.next_key::<String>()? {
            let amount = match key.as_str() {
                "fen" => Money::from_fen(map.next_value::<i64>()?),
                "yuan" => Money::from_yuan_text(&map.next_value::<YuanText>()?.0),
                other => return Err(de::Error::unknown_field(other, &["fen", "yuan"])),
            };
            if money.is_some() {
                return Err(de::Error::custom(
                    r#"money has one amount: either "fen" or "yuan""#,
                ));
            }
            money = Some(amount.map_err(de::Error::custom)?);
        }
        money.ok_or_else(|| de::Error::custom(r#"money needs "fen" or "yuan""#))
    }
}

/// Yuan in JSON: decimal text, or a number read through its shortest exact text.
struct YuanText(String);

impl<'de> Deserialize<'de> for YuanText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<YuanText, D::Error> {
        deserializer.deserialize_any(YuanTextVisitor)
    }
}

struct YuanTextVisitor;

impl Visitor<'_> for YuanTextVisitor {
    type Value = YuanText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"yuan as decimal text such as "1000.01""#)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<YuanText, E> {
        Ok(YuanText(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<YuanText, E> {
        Ok(YuanText(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<YuanText, E> {
        Ok(YuanText(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<YuanText, E> {
        // Rust prints the shortest text that reads back to `v`: 1000.01 → "1000.01".
        Ok(YuanText(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a string, true, false, a number, or money as {"fen": 100001} or {"yuan": "1000.01"}"#)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if v.is_finite() {
            Ok(Value::Number(v))
        } else {
            Err(E::custom("a number must be finite"))
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        Money::deserialize(de::value::MapAccessDeserializer::new(map)).map(Value::Money)
    }
}

fn trait_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    if super::is_valid_trait_name(&name) {
        Ok(name)
    } else {
        Err(de::Error::custom(format!(
            "{name:?} cannot name a trait: a trait name is letters, digits, _ and ., \
             starts with a letter or _, and is not a reserved word such as and, in, tag"
        )))
    }
}

fn non_empty_values<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Value>, D::Error> {
    let values = Vec::<Value>::deserialize(deserializer)?;
    if values.is_empty() {
        return Err(de::Error::custom(
            "an empty list matches nothing: give at least one value",
        ));
    }
    Ok(values)
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Expr, D::Error> {
        // Through a JSON value so a wrong condition reports its own error rather
        // than "data did not match any variant".
        let json = serde_json::Value::deserialize(deserializer)?;
        expr_from_json(json, 0).map_err(de::Error::custom)
    }
}

const EXPR_SHAPES: &str =
    r#"an expression is {"and": [..]}, {"or": [..]}, {"not": {..}} or a condition with "type""#;

fn expr_from_json(json: serde_json::Value, depth: usize) -> Result<Expr, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the expression is nested too deeply: at most {MAX_DEPTH} levels of and, or and not"
        ));
    }
    let serde_json::Value::Object(map) = json else {
        return Err(format!("{EXPR_SHAPES}, found {json}"));
    };
    if map.contains_key("type") {
        return Cond::deserialize(serde_json::Value::Object(map))
            .map(Expr::Cond)
            .map_err(|e| e.to_string());
    }
    let mut entries = map.into_iter();
    let (Some((key, inner)), None) = (entries.next(), entries.next()) else {
        return Err(format!("{EXPR_SHAPES}: one key, or \"type\""));
    };
    match key.as_str() {
        "and" | "or" => {
            let serde_json::Value::Array(items) = inner else {
                return Err(format!("\"{key}\" takes a list of expressions"));
            };
            if items.is_empty() {
                return Err(format!("\"{key}\" needs at least one expression"));
            }
            let operands = items
                .into_iter()
                .map(|item| expr_from_json(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if key == "and" {
                Expr::And(operands)
            } else {
                Expr::Or(operands)
            })
        }
        "not" => Ok(Expr::Not(Box::new(expr_from_json(inner, depth + 1)?))),
        other => Err(format!("unknown key {other:?}: {EXPR_SHAPES}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn from_json<T: for<'de> Deserialize<'de>>(json: serde_json::Value) -> Result<T, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    fn spend30_over_1000() -> Expr {
        Expr::Cond(Cond::Compare {
            trait_ref: TraitRef {
                name: "spend".into(),
                window: Some(WindowArg::Last(Duration {
                    amount: 30,
                    unit: DurationUnit::Days,
                })),
            },
            op: CmpOp::Gt,
            value: Value::Money(Money { fen: 100_000 }),
        })
    }

    #[test]
    fn durations_are_strings() {
        let d = Duration {
            amount: 30,
            unit: DurationUnit::Days,
        };
        assert_eq!(serde_json::to_value(d).unwrap(), json!("30d"));
        assert_eq!(
            from_json::<Duration>(json!("12h")),
            Ok(Duration {
                amount: 12,
                unit: DurationUnit::Hours
            })
        );
        assert!(from_json::<Duration>(json!("0d"))
            .unwrap_err()
            .contains("longer than zero"));
        assert!(from_json::<Duration>(json!("30 days")).is_err());
        assert!(from_json::<Duration>(json!(30)).is_err());
        assert_eq!(
            Duration::new(2, DurationUnit::Weeks).map(Duration::as_seconds),
            Some(1_209_600)
        );
        assert_eq!(Duration::new(0, DurationUnit::Weeks), None);
        assert_eq!(
            from_json::<WindowArg>(json!("all")),
            Ok(WindowArg::All(AllTime::All))
        );
        assert_eq!(
            serde_json::to_value(WindowArg::All(AllTime::All)).unwrap(),
            json!("all")
        );
        assert!(from_json::<WindowArg>(json!("forever"))
            .unwrap_err()
            .contains("\"all\" or a duration"));
    }

    #[test]
    fn money_reads_fen_or_exact_yuan() {
        assert_eq!(
            from_json::<Money>(json!({"fen": 100001})),
            Ok(Money { fen: 100_001 })
        );
        assert_eq!(
            from_json::<Money>(json!({"yuan": "1000.01"})),
            Ok(Money { fen: 100_001 })
        );
        assert_eq!(
            from_json::<Money>(json!({"yuan": 1000.01})),
            Ok(Money { fen: 100_001 })
        );
        assert_eq!(from_json::<Money>(json!({"yuan": -3})), Ok(Money { fen: -300 }));
        assert!(from_json::<Money>(json!({"yuan": "1000.001"}))
            .unwrap_err()
            .contains("more than 2 decimals"));
        assert!(from_json::<Money>(json!({"yuan": "1e3"}))
            .unwrap_err()
            .contains("not an amount"));
        assert!(from_json::<Money>(json!({"fen": 1, "yuan": "1"}))
            .unwrap_err()
            .contains("either"));
        assert!(from_json::<Money>(json!({"cents": 1}))
            .unwrap_err()
            .contains("unknown field"));
        assert!(from_json::<Money>(json!({})).is_err());
        assert!(from_json::<Money>(json!({"fen": 1_000_000_000_000_001_i64}))
            .unwrap_err()
            .contains("too large"));
        assert_eq!(serde_json::to_value(Money { fen: 5 }).unwrap(), json!({"fen": 5}));
        assert_eq!(Money::from_yuan_text("0.1"), Ok(Money { fen: 10 }));
        assert_eq!(Money::from_fen_text("-7"), Ok(Money { fen: -7 }));
    }

    #[test]
    fn values_keep_their_kind() {
        for (json, value) in [
            (json!("2"), Value::Str("2".into())),
            (json!(true), Value::Bool(true)),
            (json!(2), Value::Number(2.0)),
            (json!(2.5), Value::Number(2.5)),
            (json!(-1), Value::Number(-1.0)),
            (json!({"fen": 2}), Value::Money(Money { fen: 2 })),
            (json!({"yuan": "2"}), Value::Money(Money { fen: 200 })),
        ] {
            assert_eq!(from_json::<Value>(json.clone()), Ok(value.clone()), "{json}");
            let back: Value = serde_json::from_str(&serde_json::to_string(&value).unwrap()).unwrap();
            assert_eq!(back, value);
        }
        assert_eq!(serde_json::to_value(Value::Number(2.0)).unwrap(), json!(2.0));
        assert!(from_json::<Value>(json!(null)).is_err());
        assert!(from_json::<Value>(json!([1])).is_err());
    }

    #[test]
    fn expression_json_shape() {
        let expr = Expr::And(vec![
            spend30_over_1000(),
            Expr::Not(Box::new(Expr::Cond(Cond::Tag {
                name: "流失風險客戶".into(),
            }))),
            Expr::Or(vec![
                Expr::Cond(Cond::IsSet {
                    trait_ref: TraitRef {
                        name: "city".into(),
                        window: None,
                    },
                    negated: false,
                }),
                Expr::Cond(Cond::Event {
                    name: "X".into(),
                    within: None,
                    filters: vec![],
                    op: CmpOp::Ge,
                    count: 1,
                }),
            ]),
        ]);
        let json = json!({"and": [
            {"type": "compare", "trait": {"name": "spend", "window": "30d"}, "op": ">", "value": {"fen": 100000}},
            {"not": {"type": "tag", "name": "流失風險客戶"}},
            {"or": [
                {"type": "is_set", "trait": {"name": "city"}},
                {"type": "event", "name": "X", "op": ">=", "count": 1},
            ]},
        ]});
        assert_eq!(serde_json::to_value(&expr).unwrap(), json);
        assert_eq!(from_json::<Expr>(json), Ok(expr));
        // op and count may be left out of an event condition.
        assert_eq!(
            from_json::<Expr>(json!({"type": "event", "name": "X"})),
            Ok(Expr::Cond(Cond::Event {
                name: "X".into(),
                within: None,
                filters: vec![],
                op: CmpOp::Ge,
                count: 1
            }))
        );
    }

    #[test]
    fn expression_json_errors_name_the_problem() {
        let err = |json| from_json::<Expr>(json).unwrap_err();
        assert!(err(json!({"and": []})).contains("at least one"));
        assert!(err(json!({"and": [], "or": []})).contains("one key"));
        assert!(err(json!({"xor": []})).contains("unknown key"));
        assert!(err(json!([])).contains("an expression is"));
        assert!(err(json!({"type": "compar"})).contains("unknown variant"));
        assert!(err(json!({"type": "tag", "name": "a", "extra": 1})).contains("unknown field"));
        assert!(err(json!({"type": "in", "trait": {"name": "city"}, "values": []})).contains("empty list"));
        assert!(err(json!({"type": "is_set", "trait": {"name": "and"}})).contains("cannot name a trait"));
        assert!(err(json!({"type": "is_set", "trait": {"name": "a b"}})).contains("cannot name a trait"));
        assert!(err(
            json!({"type": "compare", "trait": {"name": "x"}, "op": ">", "value": {"yuan": "0.001"}})
        )
        .contains("more than 2 decimals"));
        let mut deep = json!({"type": "tag", "name": "a"});
        for _ in 0..=MAX_DEPTH {
            deep = json!({"not": deep});
        }
        assert!(err(deep).contains("nested too deeply"));
    }
}
