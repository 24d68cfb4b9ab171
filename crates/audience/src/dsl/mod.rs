//! The segment expression language: text form, JSON form, parse errors.
//!
//! Operators write segments as text (`spend(30d) > 1000 元 and not tag("流失風險客戶")`,
//! see `docs/segments.md`); the API and the console also exchange the same tree as
//! JSON. [`parse`] reads text into an [`Expr`], `Display` on [`Expr`] prints the
//! canonical text back, and `serde` gives the JSON form. Both directions round-trip:
//! `parse(&e.to_string()) == Ok(e)` and JSON out then in gives the same tree.
//!
//! This module is purely syntactic: it does not know which traits exist or their
//! types; checking against the trait catalogue happens later. The one shorthand,
//! `bought category "彩妝" within 90d`, is read as the condition it stands for
//! (`categories_bought(90d) contains "彩妝"`), so trees and JSON never hold it.
//!
//! Hostile input is bounded: at most [`MAX_INPUT_BYTES`] of text and
//! [`MAX_DEPTH`] nested parentheses and `not`s; no input panics.

pub mod ast;
pub mod error;
mod lexer;
mod parser;
mod print;

pub use ast::{
    AllTime, CmpOp, Cond, Duration, DurationUnit, Expr, Money, PropertyFilter, TraitRef, Value, WindowArg,
};
pub use error::{MoneyError, ParseError};
pub use lexer::is_valid_trait_name;

/// The longest text [`parse`] reads: 16 KiB.
pub const MAX_INPUT_BYTES: usize = 16 * 1024;

/// The deepest nesting [`parse`] reads (parentheses and `not`s open at once) and
/// JSON reading accepts (levels of `and`, `or` and `not`).
pub const MAX_DEPTH: usize = 64;

/// Reads the text form of a segment expression.
///
/// ```
/// use flywheel_audience::dsl::{parse, Cond, Expr};
///
/// let expr = parse(r#"tag("高價值客戶") and not segment("華東女性")"#).unwrap();
/// assert!(matches!(expr, Expr::And(ref operands) if operands.len() == 2));
/// assert_eq!(expr.to_string(), r#"tag("高價值客戶") and not segment("華東女性")"#);
///
/// let err = parse("spend(30d) 1000").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"line 1, column 12: expected a comparison (=, !=, <, <=, >, >=) after spend(30d), found "1000""#
/// );
/// ```
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    parser::parse(text)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `docs/segments.md`, whose examples are checked below.
    const GUIDE: &str = include_str!("../../../../docs/segments.md");

    /// A fenced block of the guide.
    struct Block {
        lang: String,
        body: String,
        /// Line of the opening fence (1-based).
        line: usize,
        /// Only blank lines separate it from the previous block.
        follows_previous: bool,
    }

    fn guide_blocks() -> Vec<Block> {
        let mut blocks = Vec::new();
        let mut open: Option<Block> = None;
        let mut prose_since_block = true;
        for (i, line) in GUIDE.lines().enumerate() {
            match (&mut open, line.strip_prefix("```")) {
                (None, Some(lang)) => {
                    open = Some(Block {
                        lang: lang.trim().to_string(),
                        body: String::new(),
                        line: i + 1,
                        follows_previous: !prose_since_block,
                    })
                }
                (Some(_), Some(_)) => {
                    blocks.extend(open.take());
                    prose_since_block = false;
                }
                (Some(block), None) => {
                    block.body.push_str(line);
                    block.body.push('\n');
                }
                (None, None) => prose_since_block |= !line.trim().is_empty(),
            }
        }
        assert!(open.is_none(), "docs/segments.md ends inside a code block");
        blocks
    }

    /// Every `segment` block parses (or fails exactly as the `error` block after it
    /// says), prints back to itself, prints as the `text` block after it, and has
    /// the JSON of the `json` block after it; a `json` block on its own reads.
    #[test]
    fn the_guide_examples_are_true() {
        let blocks = guide_blocks();
        let mut checked = 0;
        for (i, block) in blocks.iter().enumerate() {
            let next = blocks.get(i + 1).filter(|next| next.follows_previous);
            let at = format!("docs/segments.md line {}", block.line);
            match block.lang.as_str() {
                "segment" => {
                    if let Some(error) = next.filter(|next| next.lang == "error") {
                        let err = parse(&block.body).expect_err(&at);
                        assert_eq!(err.to_string(), error.body.trim(), "{at}");
                        checked += 1;
                        continue;
                    }
                    let expr = parse(&block.body).unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert_eq!(
                        parse(&expr.to_string()).as_ref(),
                        Ok(&expr),
                        "{at}: printed {expr}"
                    );
                    if let Some(canonical) = next.filter(|next| next.lang == "text") {
                        assert_eq!(expr.to_string(), canonical.body.trim(), "{at}: canonical form");
                    }
                    if let Some(json) = next.filter(|next| next.lang == "json") {
                        let expected: serde_json::Value = serde_json::from_str(&json.body).expect(&at);
                        let actual = serde_json::to_value(&expr).expect(&at);
                        assert_eq!(
                            actual,
                            expected,
                            "{at}: the JSON is\n{}",
                            serde_json::to_string_pretty(&actual).unwrap_or_default()
                        );
                    }
                    checked += 1;
                }
                "json"
                    if !blocks[..i]
                        .last()
                        .is_some_and(|prev| prev.lang == "segment" && block.follows_previous) =>
                {
                    let expr: Expr =
                        serde_json::from_str(&block.body).unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert_eq!(parse(&expr.to_string()).as_ref(), Ok(&expr), "{at}");
                    checked += 1;
                }
                _ => {}
            }
        }
        assert!(checked >= 30, "only {checked} examples found in docs/segments.md");
    }

    #[test]
    fn canonical_text() {
        let cases = [
            ("SPEND(30d)>1000元", "SPEND(30d) > 1000 元"),
            ("spend(30d) >= 100000 fen", "spend(30d) >= 1000 元"),
            ("x == 1.50", "x = 1.5"),
            ("x <> “上海”", r#"x != "上海""#),
            (r#"!tag("a")"#, r#"not tag("a")"#),
            (r#"event("X") >= 1"#, r#"event("X")"#),
            (
                r#"event("X", where: {"category": ["a"]}, within: 7d)"#,
                r#"event("X", within: 7d, where: {category: "a"})"#,
            ),
            (
                r#"(tag("a") or tag("b")) and (tag("c"))"#,
                r#"(tag("a") or tag("b")) and tag("c")"#,
            ),
            (r#"a in [1, 2,] 且 b is not set"#, "a in [1, 2] and b is not set"),
        ];
        for (text, canonical) in cases {
            let expr = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(expr.to_string(), canonical, "for {text}");
            assert_eq!(parse(canonical), Ok(expr));
        }
        assert_eq!("tag(\"a\")".parse::<Expr>(), parse("tag(\"a\")"));
    }

    fn trait_name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "spend",
                "orders",
                "gender",
                "traits.vip_level",
                "會員等級",
                "_x",
                "index"
            ])
            .prop_map(String::from),
            "[a-zA-Z_][a-zA-Z0-9_.]{0,10}".prop_filter("reserved", |s| is_valid_trait_name(s)),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(any::<char>(), 0..8).prop_map(|chars| chars.into_iter().collect()),
            "[a-z 上海北京護膚\"\\\\“”「」#()]{0,10}",
        ]
    }

    fn duration() -> impl Strategy<Value = Duration> {
        let unit = prop::sample::select(vec![
            DurationUnit::Minutes,
            DurationUnit::Hours,
            DurationUnit::Days,
            DurationUnit::Weeks,
        ]);
        (prop_oneof![1..400u32, 1..=u32::MAX], unit).prop_map(|(amount, unit)| Duration { amount, unit })
    }

    fn value() -> impl Strategy<Value = Value> {
        let number = prop_oneof![
            (-1_000_000i64..1_000_000).prop_map(|n| n as f64),
            -1e9f64..1e9,
            prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        ];
        prop_oneof![
            text().prop_map(Value::Str),
            any::<bool>().prop_map(Value::Bool),
            (-Money::MAX_FEN..=Money::MAX_FEN).prop_map(|fen| Value::Money(Money { fen })),
            prop::sample::select(vec![0, 1, 10, 100, -1, -100, Money::MAX_FEN, -Money::MAX_FEN])
                .prop_map(|fen| Value::Money(Money { fen })),
            number.prop_map(Value::Number),
        ]
    }

    fn trait_ref() -> impl Strategy<Value = TraitRef> {
        let window = prop_oneof![
            Just(None),
            Just(Some(WindowArg::All(AllTime::All))),
            duration().prop_map(|d| Some(WindowArg::Last(d))),
        ];
        (trait_name(), window).prop_map(|(name, window)| TraitRef { name, window })
    }

    fn cmp_op() -> impl Strategy<Value = CmpOp> {
        prop::sample::select(vec![
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ])
    }

    fn cond() -> impl Strategy<Value = Cond> {
        let values = || prop::collection::vec(value(), 1..4);
        let filter = (
            prop_oneof![trait_name(), text(), Just("in".to_string())],
            values(),
        )
            .prop_map(|(property, values)| PropertyFilter { property, values });
        prop_oneof![
            (trait_ref(), cmp_op(), value()).prop_map(|(trait_ref, op, value)| Cond::Compare {
                trait_ref,
                op,
                value
            }),
            (trait_ref(), values(), any::<bool>()).prop_map(|(trait_ref, values, negated)| Cond::In {
                trait_ref,
                values,
                negated
            }),
            (trait_ref(), value()).prop_map(|(trait_ref, value)| Cond::Contains { trait_ref, value }),
            (trait_ref(), duration()).prop_map(|(trait_ref, window)| Cond::Within { trait_ref, window }),
            (trait_ref(), duration()).prop_map(|(trait_ref, window)| Cond::Before { trait_ref, window }),
            (trait_ref(), any::<bool>()).prop_map(|(trait_ref, negated)| Cond::IsSet { trait_ref, negated }),
            (
                text(),
                prop::option::of(duration()),
                prop::collection::vec(filter, 0..3),
                cmp_op(),
                prop_oneof![0..5u32, any::<u32>()],
            )
                .prop_map(|(name, within, filters, op, count)| Cond::Event {
                    name,
                    within,
                    filters,
                    op,
                    count
                }),
            text().prop_map(|name| Cond::Tag { name }),
            text().prop_map(|name| Cond::Segment { name }),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        cond().prop_map(Expr::Cond).prop_recursive(5, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::And),
                prop::collection::vec(inner.clone(), 2..5).prop_map(Expr::Or),
                inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
    }

    /// Pieces of the language, valid and not, to glue into token soups.
    const PIECES: &[&str] = &[
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "and",
        "or",
        "not",
        "in",
        "contains",
        "within",
        "before",
        "is",
        "set",
        "true",
        "false",
        "all",
        "event",
        "tag",
        "segment",
        "where",
        "spend",
        "gender",
        "會員等級",
        "\"s\"",
        "“上海”",
        "「",
        "」",
        "\"",
        "30d",
        "0d",
        "7 d",
        "1.5",
        "-3",
        "1000",
        "1000.001",
        "元",
        "fen",
        "分",
        "=",
        "==",
        "!=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "#",
        "\n",
        "&&",
        "||",
        "!",
        "且",
        "或",
        "非",
        "１",
        "\\",
        "-",
        "where:",
        "within:",
        "\\u{4E2D}",
        "99999999999",
        ".",
        "＝",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn printing_then_parsing_gives_the_same_tree(expr in expr()) {
            let text = expr.to_string();
            prop_assume!(text.len() <= MAX_INPUT_BYTES);
            prop_assert_eq!(parse(&text), Ok(expr), "text: {}", text);
        }

        #[test]
        fn json_round_trips(expr in expr()) {
            let json = serde_json::to_string(&expr).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: Result<Expr, _> = serde_json::from_str(&json);
            prop_assert_eq!(back.map_err(|e| e.to_string()), Ok(expr), "json: {}", json);
        }

        #[test]
        fn arbitrary_text_never_panics(text in prop_oneof![
            any::<String>(),
            prop::collection::vec(any::<char>(), 0..64).prop_map(|c| c.into_iter().collect::<String>()),
        ]) {
            let _ = parse(&text);
        }

        #[test]
        fn token_soup_never_panics_and_what_parses_round_trips(
            pieces in prop::collection::vec((prop::sample::select(PIECES), any::<bool>()), 0..24)
        ) {
            let text: String = pieces
                .iter()
                .map(|(piece, space)| if *space { format!("{piece} ") } else { piece.to_string() })
                .collect();
            if let Ok(expr) = parse(&text) {
                prop_assert_eq!(parse(&expr.to_string()), Ok(expr), "text: {}", text);
            }
        }

        #[test]
        fn near_misses_of_valid_text_never_panic(expr in expr(), cut in any::<prop::sample::Index>(), junk in prop::sample::select(PIECES)) {
            let text = expr.to_string();
            let chars: Vec<char> = text.chars().collect();
            let at = cut.index(chars.len() + 1);
            let mutated: String = chars[..at].iter().chain(junk.chars().collect::<Vec<_>>().iter()).chain(chars[at..].iter()).collect();
            let truncated: String = chars[..at].iter().collect();
            let _ = parse(&mutated);
            let _ = parse(&truncated);
        }
    }
}
