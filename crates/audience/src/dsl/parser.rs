//! Recursive descent from tokens to an [`Expr`], with messages that say what was
//! expected, after what, and what was found instead.
//!
//! `not` binds tightest, then `and`, then `or`. An unparenthesised chain of one
//! operator becomes one node (`a and b and c` → `And([a, b, c])`); parentheses keep
//! their grouping, so every tree prints and parses back to itself.

use super::ast::{
    AllTime, CmpOp, Cond, Duration, DurationUnit, Expr, Money, PropertyFilter, TraitRef, Value, WindowArg,
};
use super::error::ParseError;
use super::lexer::{self, Kw, Pos, Tok, Token};
use super::{MAX_DEPTH, MAX_INPUT_BYTES};
use crate::facts::LineField;

/// Parses a whole expression.
pub(crate) fn parse(text: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser::new(text)?;
    if parser.peek() == &Tok::Eof {
        return Err(parser
            .here()
            .error(r#"the expression is empty: write a condition such as tag("高價值客戶")"#));
    }
    let expr = parser.expr()?;
    match parser.peek() {
        Tok::Eof => Ok(expr),
        Tok::RParen => Err(parser
            .here()
            .error(r#"unexpected ")": there is no "(" for it to close"#)),
        _ => Err(parser.between_conditions()),
    }
}

/// Parses a lone duration (`30d`), as in JSON.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let mut parser = Parser::new(text)?;
    let duration = parser.duration("")?;
    if parser.peek() != &Tok::Eof {
        return Err(parser
            .here()
            .error(format!("unexpected {} after the duration", parser.found())));
    }
    Ok(duration)
}

const CMP_EXPECTED: &[&str] = &[
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "contains",
    "within",
    "before",
    "is set",
    "is not set",
];
const CONDITION_EXPECTED: &[&str] = &[
    "a trait name",
    "event(...)",
    "tag(...)",
    "segment(...)",
    "not",
    "(",
];
const VALUE_EXPECTED: &[&str] = &[
    "a \"quoted string\"",
    "a number",
    "money such as 1000 元",
    "true",
    "false",
];

struct Parser<'a> {
    src: &'a str,
    /// The tokens, ending with [`Tok::Eof`].
    tokens: Vec<Token>,
    /// Index of the current token; never past the final `Eof`.
    next: usize,
    /// The final token, answered should `next` ever run past the end.
    eof: Token,
    /// Open parentheses and `not`s around the current position.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Result<Parser<'a>, ParseError> {
        if src.len() > MAX_INPUT_BYTES {
            return Err(ParseError::new(
                1,
                1,
                format!(
                    "the expression is too long: {} bytes, at most {MAX_INPUT_BYTES}",
                    src.len()
                ),
            ));
        }
        let tokens = lexer::lex(src)?;
        let eof = tokens.last().cloned().unwrap_or(Token {
            tok: Tok::Eof,
            pos: Pos { line: 1, column: 1 },
            start: src.len(),
            end: src.len(),
        });
        Ok(Parser {
            src,
            tokens,
            next: 0,
            depth: 0,
            eof,
        })
    }

    fn token(&self) -> &Token {
        self.tokens.get(self.next).unwrap_or(&self.eof)
    }

    fn peek(&self) -> &Tok {
        &self.token().tok
    }

    fn here(&self) -> Pos {
        self.token().pos
    }

    fn bump(&mut self) -> Token {
        let token = self.token().clone();
        if token.tok != Tok::Eof {
            self.next += 1;
        }
        token
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        let found = self.peek() == tok;
        if found {
            self.bump();
        }
        found
    }

    fn eat_kw(&mut self, kw: Kw) -> bool {
        self.eat(&Tok::Kw(kw))
    }

    /// The current token as a message shows it: words bare, other text quoted.
    fn found(&self) -> String {
        self.describe(self.token())
    }

    fn describe(&self, token: &Token) -> String {
        let text = shorten(self.src.get(token.start..token.end).unwrap_or(""));
        match &token.tok {
            Tok::Eof => "the end of the text".to_string(),
            Tok::Str(_) => text,
            Tok::Ident(_) | Tok::Kw(_) if lexer::is_word(&text) => text,
            _ => format!("\"{text}\""),
        }
    }

    fn between_conditions(&self) -> ParseError {
        let mut message = format!(
            r#"expected "and" or "or" between conditions, found {}"#,
            self.found()
        );
        if let Tok::Ident(word) = self.peek() {
            if word.starts_with(['且', '或', '非']) {
                message.push_str(": put a space after 且, 或 or 非");
            }
        }
        self.here().error(message).expecting(["and", "or"])
    }

    fn enter(&mut self, at: Pos) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(at.error(format!(
                "the expression is nested too deeply: at most {MAX_DEPTH} levels of parentheses and not"
            )));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let first = self.and()?;
        if self.peek() != &Tok::Kw(Kw::Or) {
            return Ok(first);
        }
        let mut operands = vec![first];
        while self.eat_kw(Kw::Or) {
            operands.push(self.and()?);
        }
        Ok(Expr::Or(operands))
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let first = self.unary()?;
        if self.peek() != &Tok::Kw(Kw::And) {
            return Ok(first);
        }
        let mut operands = vec![first];
        while self.eat_kw(Kw::And) {
            operands.push(self.unary()?);
        }
        Ok(Expr::And(operands))
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        match self.peek() {
            Tok::Kw(Kw::Not) => {
                let not = self.bump();
                self.enter(not.pos)?;
                let operand = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(operand)))
            }
            Tok::LParen => {
                let open = self.bump();
                self.enter(open.pos)?;
                let inner = self.expr()?;
                match self.peek() {
                    Tok::RParen => {
                        self.bump();
                    }
                    Tok::Eof => return Err(open.pos.error(r#"this "(" is never closed: add ")""#).expecting([")"])),
                    _ => {
                        return Err(self
                            .here()
                            .error(format!(
                                r#"expected "and", "or" or ")" (to close the "(" at line {}, column {}), found {}"#,
                                open.pos.line,
                                open.pos.column,
                                self.found()
                            ))
                            .expecting(["and", "or", ")"]))
                    }
                }
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Ident(word) if word.eq_ignore_ascii_case("bought") && self.bought_follows() => self.bought(),
            _ => self.condition().map(Expr::Cond),
        }
    }

    /// Whether the `bought` under the cursor starts `bought category "…"` (a word
    /// follows it) rather than naming a trait (an operator follows a trait).
    fn bought_follows(&self) -> bool {
        matches!(
            self.tokens.get(self.next + 1).map(|t| &t.tok),
            Some(Tok::Ident(_))
        )
    }

    /// `bought category "彩妝" within 90d`: short for
    /// `categories_bought(90d) contains "彩妝"` (a list of values means any of them, an
    /// `or` of such conditions; without `within`, all time). Fields: category, brand,
    /// sku, product.
    fn bought(&mut self) -> Result<Expr, ParseError> {
        self.bump();
        let word = self.bump();
        let field = match &word.tok {
            Tok::Ident(w) => LineField::from_word(w),
            _ => None,
        };
        let Some(field) = field else {
            let text = &self.src[word.start..word.end];
            return Err(word
                .pos
                .error(format!(
                    "expected category, brand, sku or product after bought, found {text}"
                ))
                .expecting(LineField::ALL.map(LineField::word)));
        };
        let after = format!("bought {}", field.word());
        let values = if self.peek() == &Tok::LBracket {
            self.list(&after)?
        } else {
            vec![self.value(&after)?]
        };
        let window = if self.eat_kw(Kw::Within) {
            Some(WindowArg::Last(self.duration(&format!("{after} ... within"))?))
        } else {
            None
        };
        let mut conds: Vec<Expr> = values
            .into_iter()
            .map(|value| {
                Expr::Cond(Cond::Contains {
                    trait_ref: TraitRef {
                        name: field.trait_name().to_owned(),
                        window,
                    },
                    value,
                })
            })
            .collect();
        Ok(match conds.len() {
            1 => conds.remove(0),
            _ => Expr::Or(conds),
        })
    }

    fn condition(&mut self) -> Result<Cond, ParseError> {
        match self.peek() {
            Tok::Kw(Kw::Event) => self.event(),
            Tok::Kw(Kw::Tag) => Ok(Cond::Tag {
                name: self.named("tag", r#"tag("高價值客戶")"#)?,
            }),
            Tok::Kw(Kw::Segment) => Ok(Cond::Segment {
                name: self.named("segment", r#"segment("華東女性")"#)?,
            }),
            Tok::Ident(_) => self.trait_condition(),
            tok => {
                let hint = match tok {
                    Tok::Str(_) | Tok::Number { .. } => {
                        ": a condition starts with a trait name (spend(30d), gender), event(...), tag(...) or segment(...)"
                    }
                    _ => "",
                };
                Err(self
                    .here()
                    .error(format!("expected a condition, found {}{hint}", self.found()))
                    .expecting(CONDITION_EXPECTED.iter().copied()))
            }
        }
    }

    fn trait_condition(&mut self) -> Result<Cond, ParseError> {
        let Tok::Ident(name) = self.bump().tok else {
            return Err(self.here().error("expected a trait name"));
        };
        let window = if self.peek() == &Tok::LParen {
            Some(self.window(&name)?)
        } else {
            None
        };
        let trait_ref = TraitRef { name, window };
        let keyword = match self.peek() {
            Tok::Cmp(op) => {
                let op = *op;
                self.bump();
                let value = self.value(&format!("{trait_ref} {op}"))?;
                return Ok(Cond::Compare { trait_ref, op, value });
            }
            Tok::Kw(kw) => *kw,
            _ => Kw::And,
        };
        match keyword {
            Kw::In => {
                self.bump();
                let values = self.list(&format!("{trait_ref} in"))?;
                Ok(Cond::In {
                    trait_ref,
                    values,
                    negated: false,
                })
            }
            Kw::Not => {
                self.bump();
                if !self.eat_kw(Kw::In) {
                    return Err(self
                        .here()
                        .error(format!(
                            r#"expected "in" after {trait_ref} not, found {}"#,
                            self.found()
                        ))
                        .expecting(["in"]));
                }
                let values = self.list(&format!("{trait_ref} not in"))?;
                Ok(Cond::In {
                    trait_ref,
                    values,
                    negated: true,
                })
            }
            Kw::Contains => {
                self.bump();
                let value = self.value(&format!("{trait_ref} contains"))?;
                Ok(Cond::Contains { trait_ref, value })
            }
            Kw::Within => {
                self.bump();
                let window = self.duration(&format!("{trait_ref} within"))?;
                Ok(Cond::Within { trait_ref, window })
            }
            Kw::Before => {
                self.bump();
                let window = self.duration(&format!("{trait_ref} before"))?;
                Ok(Cond::Before { trait_ref, window })
            }
            Kw::Is => {
                self.bump();
                let negated = self.eat_kw(Kw::Not);
                if !self.eat_kw(Kw::Set) {
                    let is = if negated { "is not" } else { "is" };
                    return Err(self
                        .here()
                        .error(format!(
                            r#"expected "set" after {trait_ref} {is}, found {}"#,
                            self.found()
                        ))
                        .expecting(["set"]));
                }
                Ok(Cond::IsSet { trait_ref, negated })
            }
            _ => Err(self
                .here()
                .error(format!(
                    "expected a comparison (=, !=, <, <=, >, >=) after {trait_ref}, found {}",
                    self.found()
                ))
                .expecting(CMP_EXPECTED.iter().copied())),
        }
    }

    /// `(30d)` or `(all)` after a trait name.
    fn window(&mut self, name: &str) -> Result<WindowArg, ParseError> {
        let open = self.bump();
        let window = match self.peek() {
            Tok::Kw(Kw::All) => {
                self.bump();
                WindowArg::All(AllTime::All)
            }
            Tok::Number { .. } => WindowArg::Last(self.duration(&format!("{name}("))?),
            _ => {
                return Err(self
                    .here()
                    .error(format!(
                        "expected a window such as 30d or all in {name}(...), found {}",
                        self.found()
                    ))
                    .expecting(["a duration such as 30d", "all"]))
            }
        };
        self.close(&open, &format!("{name}(...)"))?;
        Ok(window)
    }

    /// Consumes the `)` matching `open`.
    fn close(&mut self, open: &Token, what: &str) -> Result<(), ParseError> {
        match self.peek() {
            Tok::RParen => {
                self.bump();
                Ok(())
            }
            Tok::Eof => Err(open
                .pos
                .error(format!(r#"the "(" of {what} is never closed: add ")""#))
                .expecting([")"])),
            _ => Err(self
                .here()
                .error(format!(r#"expected ")" to close {what}, found {}"#, self.found()))
                .expecting([")"])),
        }
    }

    /// `30d`, `12h`, `45m`, `2w`; `after` names what precedes it, for messages.
    fn duration(&mut self, after: &str) -> Result<Duration, ParseError> {
        let token = self.token().clone();
        let Tok::Number { text, unit } = &token.tok else {
            let after = if after.is_empty() {
                String::new()
            } else {
                format!(" after {after}")
            };
            return Err(self
                .here()
                .error(format!(
                    "expected a duration such as 30d, 12h, 45m or 2w{after}, found {}",
                    self.found()
                ))
                .expecting(["a duration such as 30d"]));
        };
        self.bump();
        let Some(unit) = unit else {
            if let Tok::Ident(word) = self.peek() {
                if DurationUnit::from_suffix(word).is_some() {
                    return Err(token.pos.error(format!(
                        "write a duration without a space between the number and the unit: {text}{word}"
                    )));
                }
                return Err(self.here().error(unknown_duration_unit(word)));
            }
            return Err(token.pos.error(format!(
                "a duration needs a unit: {text}d (days), {text}h (hours), {text}m (minutes) or {text}w (weeks)"
            )));
        };
        let unit_pos = Pos {
            line: token.pos.line,
            column: token.pos.column + text.chars().count() as u32,
        };
        let Some(duration_unit) = DurationUnit::from_suffix(unit) else {
            return Err(unit_pos.error(unknown_duration_unit(unit)));
        };
        if text.starts_with('-') {
            return Err(token
                .pos
                .error(format!("a duration cannot be negative: {text}{unit}")));
        }
        if text.contains('.') {
            return Err(token.pos.error(format!(
                "a duration is a whole number of units, found {text}{unit}: write 36h rather than 1.5d"
            )));
        }
        let amount: u32 = text
            .parse()
            .map_err(|_| token.pos.error(format!("{text}{unit} is too long a duration")))?;
        Duration::new(amount, duration_unit).ok_or_else(|| {
            token
                .pos
                .error(format!("a duration must be longer than zero, found {text}{unit}"))
        })
    }

    /// A literal: string, number, money, true or false.
    fn value(&mut self, after: &str) -> Result<Value, ParseError> {
        let token = self.token().clone();
        match &token.tok {
            Tok::Str(text) => {
                self.bump();
                Ok(Value::Str(text.clone()))
            }
            Tok::Kw(Kw::True) => {
                self.bump();
                Ok(Value::Bool(true))
            }
            Tok::Kw(Kw::False) => {
                self.bump();
                Ok(Value::Bool(false))
            }
            Tok::Number { text, unit } => {
                self.bump();
                self.number(&token, text, unit.as_deref())
            }
            Tok::Ident(word) => Err(token.pos.error(format!(
                "expected a value after {after}, found {word}: text values need double quotes, like \"{word}\""
            ))),
            _ => Err(self
                .here()
                .error(format!(
                    r#"expected a value (a "quoted string", a number, true or false) after {after}, found {}"#,
                    self.found()
                ))
                .expecting(VALUE_EXPECTED.iter().copied())),
        }
    }

    /// A number, or money when a unit follows (attached or after a space).
    fn number(&mut self, token: &Token, text: &str, unit: Option<&str>) -> Result<Value, ParseError> {
        let (unit, unit_pos) = match unit {
            Some(unit) => {
                let column = token.pos.column + text.chars().count() as u32;
                (
                    Some(unit.to_string()),
                    Pos {
                        line: token.pos.line,
                        column,
                    },
                )
            }
            None => match self.peek() {
                Tok::Ident(word) if is_money_unit(word) => {
                    let word = word.clone();
                    (Some(word), self.bump().pos)
                }
                _ => (None, token.pos),
            },
        };
        let money = match unit.as_deref() {
            None => {
                let number: f64 = text
                    .parse()
                    .map_err(|_| token.pos.error(format!("\"{text}\" is not a number")))?;
                if !number.is_finite() {
                    return Err(token.pos.error(format!("the number {} is too large", shorten(text))));
                }
                return Ok(Value::Number(number));
            }
            Some(unit) if unit == "元" || unit.eq_ignore_ascii_case("yuan") => Money::from_yuan_text(text),
            Some(unit) if unit == "分" || unit.eq_ignore_ascii_case("fen") => Money::from_fen_text(text),
            Some(unit) => {
                return Err(unit_pos.error(format!(
                    "unknown unit \"{unit}\" after {text}: money is written like 1000 元, 1000 yuan or 100000 fen; \
                     durations such as 30d go after within or before"
                )))
            }
        };
        money
            .map(Value::Money)
            .map_err(|e| token.pos.error(e.to_string()))
    }

    /// `[v, v, ...]`, at least one value; a trailing comma is allowed.
    fn list(&mut self, after: &str) -> Result<Vec<Value>, ParseError> {
        if self.peek() != &Tok::LBracket {
            return Err(self
                .here()
                .error(format!(
                    r#"expected a list like ["上海", "北京"] after {after}, found {}"#,
                    self.found()
                ))
                .expecting(["["]));
        }
        let open = self.bump();
        if self.peek() == &Tok::RBracket {
            return Err(open
                .pos
                .error(r#"an empty list matches nothing: give at least one value, like ["上海"]"#));
        }
        let mut values = vec![self.value(r#"the "[""#)?];
        loop {
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                    if self.eat(&Tok::RBracket) {
                        return Ok(values);
                    }
                    values.push(self.value(r#"",""#)?);
                }
                Tok::RBracket => {
                    self.bump();
                    return Ok(values);
                }
                Tok::Eof => {
                    return Err(open
                        .pos
                        .error(r#"this "[" is never closed: add "]""#)
                        .expecting(["]"]))
                }
                _ => {
                    return Err(self
                        .here()
                        .error(format!(
                            r#"expected "," or "]" in the list, found {}"#,
                            self.found()
                        ))
                        .expecting([",", "]"]))
                }
            }
        }
    }

    /// `tag("...")` / `segment("...")`: returns the name.
    fn named(&mut self, kind: &str, example: &str) -> Result<String, ParseError> {
        self.bump();
        let open = self.open_paren(kind, example)?;
        let name = self.quoted(&format!("the {kind} name"), example)?;
        self.close(&open, &format!("{kind}(...)"))?;
        Ok(name)
    }

    fn open_paren(&mut self, kind: &str, example: &str) -> Result<Token, ParseError> {
        if self.peek() != &Tok::LParen {
            return Err(self
                .here()
                .error(format!(
                    r#"expected "(" after {kind}, like {example}, found {}"#,
                    self.found()
                ))
                .expecting(["("]));
        }
        Ok(self.bump())
    }

    fn quoted(&mut self, what: &str, example: &str) -> Result<String, ParseError> {
        match self.peek() {
            Tok::Str(text) => {
                let text = text.clone();
                self.bump();
                Ok(text)
            }
            _ => Err(self
                .here()
                .error(format!(
                    "expected {what} in double quotes, like {example}, found {}",
                    self.found()
                ))
                .expecting(["a \"quoted string\""])),
        }
    }

    /// `event("X", within: 7d, where: {k: v}) >= 2`.
    fn event(&mut self) -> Result<Cond, ParseError> {
        const EXAMPLE: &str = r#"event("Order Completed")"#;
        self.bump();
        let open = self.open_paren("event", EXAMPLE)?;
        let name = self.quoted("the event name", EXAMPLE)?;
        let mut within = None;
        let mut filters = None;
        loop {
            match self.peek() {
                Tok::RParen => {
                    self.bump();
                    break;
                }
                Tok::Comma => {
                    self.bump();
                    if self.eat(&Tok::RParen) {
                        break;
                    }
                }
                Tok::Eof => {
                    return Err(open
                        .pos
                        .error(r#"the "(" of event(...) is never closed: add ")""#)
                        .expecting([")"]))
                }
                _ => {
                    return Err(self
                        .here()
                        .error(format!(
                            r#"expected "," or ")" in event(...), found {}"#,
                            self.found()
                        ))
                        .expecting([",", ")"]))
                }
            }
            let arg = self.token().clone();
            match &arg.tok {
                Tok::Kw(Kw::Within) => {
                    self.bump();
                    self.eat(&Tok::Colon);
                    if within.is_some() {
                        return Err(arg.pos.error("within: is given twice in event(...)"));
                    }
                    within = Some(self.duration("within:")?);
                }
                Tok::Ident(word) if word.eq_ignore_ascii_case("where") => {
                    self.bump();
                    self.eat(&Tok::Colon);
                    if filters.is_some() {
                        return Err(arg.pos.error("where: is given twice in event(...)"));
                    }
                    filters = Some(self.filters()?);
                }
                _ => {
                    return Err(self
                        .here()
                        .error(format!(
                            "expected within: or where: in event(...), found {}",
                            self.found()
                        ))
                        .expecting(["within:", "where:"]))
                }
            }
        }
        let (op, count) = match self.peek() {
            Tok::Cmp(op) => {
                let op = *op;
                self.bump();
                (op, self.count()?)
            }
            _ => (CmpOp::Ge, 1),
        };
        Ok(Cond::Event {
            name,
            within,
            filters: filters.unwrap_or_default(),
            op,
            count,
        })
    }

    /// The count after `event(...) >=`.
    fn count(&mut self) -> Result<u32, ParseError> {
        let token = self.token().clone();
        let bad = || {
            token.pos.error(format!(
                r#"an event count is a whole number, 0 or more, like event("Order Completed") >= 2; found {}"#,
                self.describe(&token)
            ))
        };
        let Tok::Number { text, unit: None } = &token.tok else {
            return Err(bad());
        };
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        self.bump();
        if matches!(self.peek(), Tok::Ident(word) if is_money_unit(word)) {
            return Err(self.here().error("an event count has no unit: it counts events"));
        }
        text.parse().map_err(|_| {
            token
                .pos
                .error(format!("the event count {} is too large", shorten(text)))
        })
    }

    /// `{k: v, k2: [v1, v2]}` after `where:`.
    fn filters(&mut self) -> Result<Vec<PropertyFilter>, ParseError> {
        const EXAMPLE: &str = r#"where: {category: "護膚"}"#;
        if self.peek() != &Tok::LBrace {
            return Err(self
                .here()
                .error(format!(
                    "expected {{ after where:, like {EXAMPLE}, found {}",
                    self.found()
                ))
                .expecting(["{"]));
        }
        let open = self.bump();
        let mut filters = Vec::new();
        loop {
            if self.peek() == &Tok::RBrace && !filters.is_empty() {
                self.bump();
                return Ok(filters);
            }
            let key = self.token().clone();
            let property = match &key.tok {
                Tok::Ident(name) | Tok::Str(name) => name.clone(),
                Tok::Kw(_) if lexer::is_word(&self.src[key.start..key.end]) => {
                    self.src[key.start..key.end].to_string()
                }
                Tok::RBrace => {
                    return Err(open.pos.error(format!(
                        "where: {{}} has no filters: give at least one, like {EXAMPLE}, or leave where: out"
                    )))
                }
                _ => {
                    return Err(self
                        .here()
                        .error(format!(
                            r#"expected a property name, like category or "product.brand", found {}"#,
                            self.found()
                        ))
                        .expecting(["a property name"]))
                }
            };
            self.bump();
            if !self.eat(&Tok::Colon) {
                return Err(self
                    .here()
                    .error(format!(
                        r#"expected ":" after the property {property}, found {}"#,
                        self.found()
                    ))
                    .expecting([":"]));
            }
            let after = format!("{property}:");
            let values = if self.peek() == &Tok::LBracket {
                self.list(&after)?
            } else {
                vec![self.value(&after)?]
            };
            filters.push(PropertyFilter { property, values });
            match self.peek() {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBrace => {}
                Tok::Eof => {
                    return Err(open
                        .pos
                        .error(r#"this "{" is never closed: add "}""#)
                        .expecting(["}"]))
                }
                _ => {
                    return Err(self
                        .here()
                        .error(format!(
                            r#"expected "," or "}}" in where: {{...}}, found {}"#,
                            self.found()
                        ))
                        .expecting([",", "}"]))
                }
            }
        }
    }
}

fn is_money_unit(word: &str) -> bool {
    word == "元" || word == "分" || word.eq_ignore_ascii_case("yuan") || word.eq_ignore_ascii_case("fen")
}

fn unknown_duration_unit(unit: &str) -> String {
    let hint = match unit {
        "天" | "日" | "day" | "days" | "D" => " (d is days)",
        "小時" | "小时" | "時" | "时" | "hour" | "hours" | "H" => " (h is hours)",
        "分" | "分鐘" | "分钟" | "min" | "mins" | "minute" | "minutes" | "M" => " (m is minutes)",
        "週" | "周" | "星期" | "week" | "weeks" | "W" => " (w is weeks)",
        _ => "",
    };
    format!("unknown unit \"{unit}\": durations are written like 30d, 12h, 45m, 2w{hint}")
}

/// At most 40 characters of `text`, for messages.
fn shorten(text: &str) -> String {
    if text.chars().count() <= 40 {
        return text.to_string();
    }
    let mut short: String = text.chars().take(37).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Expr {
        match parse(text) {
            Ok(expr) => expr,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(expr) => panic!("{text:?} should not parse, got {expr:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn named(name: &str) -> TraitRef {
        TraitRef {
            name: name.into(),
            window: None,
        }
    }

    fn days(amount: u32) -> Duration {
        Duration {
            amount,
            unit: DurationUnit::Days,
        }
    }

    fn cond(text: &str) -> Cond {
        match ok(text) {
            Expr::Cond(cond) => cond,
            other => panic!("{text:?} is not one condition: {other:?}"),
        }
    }

    fn value(text: &str) -> Value {
        match cond(&format!("x = {text}")) {
            Cond::Compare { value, .. } => value,
            other => panic!("{other:?}"),
        }
    }

    fn tag(name: &str) -> Expr {
        Expr::Cond(Cond::Tag { name: name.into() })
    }

    #[test]
    fn the_issue_example() {
        let expr = ok(
            r#"spend(30d) > 1000 元 and event("Product Added", within: 7d) >= 2 and not tag("流失風險客戶") and region in ["上海", "北京"]"#,
        );
        let expected = Expr::And(vec![
            Expr::Cond(Cond::Compare {
                trait_ref: TraitRef {
                    name: "spend".into(),
                    window: Some(WindowArg::Last(days(30))),
                },
                op: CmpOp::Gt,
                value: Value::Money(Money { fen: 100_000 }),
            }),
            Expr::Cond(Cond::Event {
                name: "Product Added".into(),
                within: Some(days(7)),
                filters: vec![],
                op: CmpOp::Ge,
                count: 2,
            }),
            Expr::Not(Box::new(tag("流失風險客戶"))),
            Expr::Cond(Cond::In {
                trait_ref: named("region"),
                values: vec![Value::Str("上海".into()), Value::Str("北京".into())],
                negated: false,
            }),
        ]);
        assert_eq!(expr, expected);
    }

    #[test]
    fn precedence_and_flattening() {
        let (a, b, c, d) = (tag("a"), tag("b"), tag("c"), tag("d"));
        assert_eq!(
            ok(r#"tag("a") and tag("b") and tag("c")"#),
            Expr::And(vec![a.clone(), b.clone(), c.clone()])
        );
        assert_eq!(
            ok(r#"tag("a") or tag("b") and tag("c") or tag("d")"#),
            Expr::Or(vec![a.clone(), Expr::And(vec![b.clone(), c.clone()]), d.clone()])
        );
        assert_eq!(
            ok(r#"not tag("a") and tag("b")"#),
            Expr::And(vec![Expr::Not(Box::new(a.clone())), b.clone()])
        );
        assert_eq!(
            ok(r#"(tag("a") and tag("b")) and tag("c")"#),
            Expr::And(vec![Expr::And(vec![a.clone(), b.clone()]), c.clone()])
        );
        assert_eq!(ok(r#"((tag("a")))"#), a.clone());
        assert_eq!(
            ok(r#"!tag("a") && tag("b") || 非 tag("c") 且 tag("d") 或 tag("a")"#),
            Expr::Or(vec![
                Expr::And(vec![Expr::Not(Box::new(a.clone())), b.clone()]),
                Expr::And(vec![Expr::Not(Box::new(c.clone())), d.clone()]),
                a.clone(),
            ])
        );
        assert_eq!(
            ok(r#"TAG("a") AND Not tag("b")"#),
            Expr::And(vec![a, Expr::Not(Box::new(b))])
        );
    }

    #[test]
    fn every_condition_form() {
        assert_eq!(
            cond(r#"gender == "女""#),
            Cond::Compare {
                trait_ref: named("gender"),
                op: CmpOp::Eq,
                value: Value::Str("女".into())
            }
        );
        assert_eq!(
            cond("orders(all) <> 0"),
            Cond::Compare {
                trait_ref: TraitRef {
                    name: "orders".into(),
                    window: Some(WindowArg::All(AllTime::All))
                },
                op: CmpOp::Ne,
                value: Value::Number(0.0),
            }
        );
        assert_eq!(
            cond("會員等級 >= 3"),
            Cond::Compare {
                trait_ref: named("會員等級"),
                op: CmpOp::Ge,
                value: Value::Number(3.0)
            }
        );
        assert_eq!(
            cond(r#"city not in ["上海"]"#),
            Cond::In {
                trait_ref: named("city"),
                values: vec![Value::Str("上海".into())],
                negated: true
            }
        );
        assert_eq!(
            cond(r#"categories_bought contains "護膚""#),
            Cond::Contains {
                trait_ref: named("categories_bought"),
                value: Value::Str("護膚".into())
            }
        );
        assert_eq!(
            cond("last_sign_in within 90d"),
            Cond::Within {
                trait_ref: named("last_sign_in"),
                window: days(90)
            }
        );
        assert_eq!(
            cond("first_seen before 2w"),
            Cond::Before {
                trait_ref: named("first_seen"),
                window: Duration {
                    amount: 2,
                    unit: DurationUnit::Weeks
                }
            }
        );
        assert_eq!(
            cond("city is set"),
            Cond::IsSet {
                trait_ref: named("city"),
                negated: false
            }
        );
        assert_eq!(
            cond("city IS NOT SET"),
            Cond::IsSet {
                trait_ref: named("city"),
                negated: true
            }
        );
        assert_eq!(
            cond(r#"segment("華東女性")"#),
            Cond::Segment {
                name: "華東女性".into()
            }
        );
        assert_eq!(
            cond("traits.vip = true"),
            Cond::Compare {
                trait_ref: named("traits.vip"),
                op: CmpOp::Eq,
                value: Value::Bool(true),
            }
        );
    }

    #[test]
    fn events() {
        assert_eq!(
            cond(r#"event("Order Completed")"#),
            Cond::Event {
                name: "Order Completed".into(),
                within: None,
                filters: vec![],
                op: CmpOp::Ge,
                count: 1
            }
        );
        assert_eq!(
            cond(
                r#"event("Product Added", where: {category: ["護膚", "彩妝"], "product.brand": "X",}, within: 12h) = 0"#
            ),
            Cond::Event {
                name: "Product Added".into(),
                within: Some(Duration {
                    amount: 12,
                    unit: DurationUnit::Hours
                }),
                filters: vec![
                    PropertyFilter {
                        property: "category".into(),
                        values: vec![Value::Str("護膚".into()), Value::Str("彩妝".into())],
                    },
                    PropertyFilter {
                        property: "product.brand".into(),
                        values: vec![Value::Str("X".into())]
                    },
                ],
                op: CmpOp::Eq,
                count: 0,
            }
        );
        assert!(matches!(
            cond(r#"event("X", within 45m) < 3"#),
            Cond::Event {
                count: 3,
                op: CmpOp::Lt,
                ..
            }
        ));
    }

    #[test]
    fn values_and_money() {
        assert_eq!(value("1000 元"), Value::Money(Money { fen: 100_000 }));
        assert_eq!(value("1000.01元"), Value::Money(Money { fen: 100_001 }));
        assert_eq!(value("1000.1 yuan"), Value::Money(Money { fen: 100_010 }));
        assert_eq!(value("5 fen"), Value::Money(Money { fen: 5 }));
        assert_eq!(value("5分"), Value::Money(Money { fen: 5 }));
        assert_eq!(value("-3 元"), Value::Money(Money { fen: -300 }));
        assert_eq!(value("-0.5"), Value::Number(-0.5));
        assert_eq!(value("2"), Value::Number(2.0));
        assert_eq!(value("false"), Value::Bool(false));
        assert_eq!(value("“上海”"), Value::Str("上海".into()));
        assert_eq!(value(r#""\u{4E0A}海""#), Value::Str("上海".into()));
    }

    #[test]
    fn comments_and_newlines() {
        let text = "# 高價值客戶\nspend(30d) > 1000 元 # 近 30 天\n  and tag(\"VIP\")\n";
        assert!(matches!(ok(text), Expr::And(ref v) if v.len() == 2));
    }

    #[test]
    fn errors_are_helpful() {
        let cases: &[(&str, &str)] = &[
            ("spend(30d) 1000", r#"line 1, column 12: expected a comparison (=, !=, <, <=, >, >=) after spend(30d), found "1000""#),
            ("last_sign_in within 30days", r#"line 1, column 23: unknown unit "days": durations are written like 30d, 12h, 45m, 2w (d is days)"#),
            ("last_sign_in within 30 d", "line 1, column 21: write a duration without a space between the number and the unit: 30d"),
            ("last_sign_in within 30", "line 1, column 21: a duration needs a unit: 30d (days), 30h (hours), 30m (minutes) or 30w (weeks)"),
            ("last_sign_in within 0d", "line 1, column 21: a duration must be longer than zero, found 0d"),
            ("last_sign_in within 1.5d", "line 1, column 21: a duration is a whole number of units, found 1.5d: write 36h rather than 1.5d"),
            ("tag(\"a\") and tag(\"abc", "line 1, column 18: unterminated string starting at line 1, column 18: close it with \""),
            ("spend(30d) > 1000.001 元", "line 1, column 14: 1000.001 元 has more than 2 decimals: money is counted in whole fen (0.01 元)"),
            ("spend(30d) > 5.5 fen", "line 1, column 14: an amount in fen must be a whole number, found 5.5 fen"),
            ("tag(\"a\"))", r#"line 1, column 9: unexpected ")": there is no "(" for it to close"#),
            ("tag(\"a\") tag(\"b\")", r#"line 1, column 10: expected "and" or "or" between conditions, found tag"#),
            ("(tag(\"a\") and tag(\"b\")", r#"line 1, column 1: this "(" is never closed: add ")""#),
            ("(tag(\"a\") tag(\"b\"))", r#"line 1, column 11: expected "and", "or" or ")" (to close the "(" at line 1, column 1), found tag"#),
            ("gender = 女", r#"line 1, column 10: expected a value after gender =, found 女: text values need double quotes, like "女""#),
            ("region in []", r#"line 1, column 11: an empty list matches nothing: give at least one value, like ["上海"]"#),
            ("region in [\"上海\"", r#"line 1, column 11: this "[" is never closed: add "]""#),
            ("event(\"X\") >= -1", r#"line 1, column 15: an event count is a whole number, 0 or more, like event("Order Completed") >= 2; found "-1""#),
            ("event(\"X\") >= 2.5", r#"line 1, column 15: an event count is a whole number, 0 or more, like event("Order Completed") >= 2; found "2.5""#),
            ("event(\"X\", where: {})", r#"line 1, column 19: where: {} has no filters: give at least one, like where: {category: "護膚"}, or leave where: out"#),
            ("event(\"X\", when: 7d)", "line 1, column 12: expected within: or where: in event(...), found when"),
            ("event(\"X\"", r#"line 1, column 6: the "(" of event(...) is never closed: add ")""#),
            ("tag(高價值)", r#"line 1, column 5: expected the tag name in double quotes, like tag("高價值客戶"), found 高價值"#),
            ("", r#"line 1, column 1: the expression is empty: write a condition such as tag("高價值客戶")"#),
            ("  # only a comment", r#"line 1, column 1: the expression is empty: write a condition such as tag("高價值客戶")"#),
            ("tag(\"a\") and", "line 1, column 13: expected a condition, found the end of the text"),
            ("city is empty", r#"line 1, column 9: expected "set" after city is, found empty"#),
            ("city not like [\"a\"]", r#"line 1, column 10: expected "in" after city not, found like"#),
            ("spend() > 1", "line 1, column 7: expected a window such as 30d or all in spend(...), found \")\""),
            ("x = 30d", r#"line 1, column 7: unknown unit "d" after 30: money is written like 1000 元, 1000 yuan or 100000 fen; durations such as 30d go after within or before"#),
            ("x = 1 元 ＝", "line 1, column 9: full-width \"＝\" is not accepted: switch the input method to half-width and type \"=\""),
            ("x = １", "line 1, column 5: full-width digit \"１\" is not accepted: type numbers with half-width digits, like 1"),
            ("tag(\"a\")且tag(\"b\")", r#"line 1, column 9: expected "and" or "or" between conditions, found 且tag: put a space after 且, 或 or 非"#),
            ("\"VIP\"", r#"line 1, column 1: expected a condition, found "VIP": a condition starts with a trait name (spend(30d), gender), event(...), tag(...) or segment(...)"#),
        ];
        for (text, expected) in cases {
            assert_eq!(&err(text), expected, "for {text:?}");
        }
    }

    #[test]
    fn positions_count_characters_across_lines() {
        let e = parse("tag(\"高價值\")\n  and 會員等級 是 3").unwrap_err();
        assert_eq!((e.line, e.column), (2, 12));
        assert!(e.message.contains("after 會員等級"), "{e}");
        assert!(e.expected.contains(&"not in".to_string()));
    }

    #[test]
    fn limits() {
        let long = format!("tag(\"{}\")", "x".repeat(MAX_INPUT_BYTES));
        assert!(err(&long).contains("too long"));
        let deep = |n: usize| format!("{}tag(\"a\"){}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&deep(MAX_DEPTH)).is_ok());
        assert!(err(&deep(MAX_DEPTH + 1)).contains("nested too deeply"));
        let nots = |n: usize| format!("{}tag(\"a\")", "not ".repeat(n));
        assert!(parse(&nots(MAX_DEPTH)).is_ok());
        assert!(err(&nots(MAX_DEPTH + 1)).contains("nested too deeply"));
        assert!(err("x = 1e400").contains("unknown unit"));
        assert!(err(&format!("x = 1{}", "0".repeat(400))).contains("too large"));
        assert!(err("x within 99999999999d").contains("too long a duration"));
        assert!(err("event(\"X\") > 99999999999").contains("too large"));
        assert!(err("x > 100000000000000 元").contains("too large an amount"));
    }

    #[test]
    fn lone_durations() {
        assert_eq!(parse_duration("30d"), Ok(days(30)));
        assert_eq!(
            parse_duration("45m"),
            Ok(Duration {
                amount: 45,
                unit: DurationUnit::Minutes
            })
        );
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("30d x").is_err());
        assert!(parse_duration("all").is_err());
    }

    #[test]
    fn bought_is_a_shorthand_for_contains_on_the_bought_traits() {
        let contains = |name: &str, window: Option<Duration>, v: &str| {
            Expr::Cond(Cond::Contains {
                trait_ref: TraitRef {
                    name: name.into(),
                    window: window.map(WindowArg::Last),
                },
                value: Value::Str(v.into()),
            })
        };
        assert_eq!(
            ok(r#"bought category "彩妝" within 90d"#),
            contains("categories_bought", Some(days(90)), "彩妝")
        );
        assert_eq!(
            ok(r#"BOUGHT Brand "雪花秀""#),
            contains("brands_bought", None, "雪花秀")
        );
        assert_eq!(
            ok(r#"bought sku ["S1", "S2",] within 2w"#),
            Expr::Or(vec![
                contains(
                    "skus_bought",
                    Some(Duration {
                        amount: 2,
                        unit: DurationUnit::Weeks
                    }),
                    "S1"
                ),
                contains(
                    "skus_bought",
                    Some(Duration {
                        amount: 2,
                        unit: DurationUnit::Weeks
                    }),
                    "S2"
                ),
            ])
        );
        // Inside other operators; printed in the canonical form, which reads back.
        let e = ok(r#"tag("a") or not bought product ["P1", "P2"] and bought category "母嬰""#);
        assert_eq!(
            e.to_string(),
            r#"tag("a") or not (products_bought contains "P1" or products_bought contains "P2") and categories_bought contains "母嬰""#
        );
        assert_eq!(parse(&e.to_string()), Ok(e));
        // A trait named bought still works with an operator after it.
        assert_eq!(
            cond("bought = 1"),
            Cond::Compare {
                trait_ref: named("bought"),
                op: CmpOp::Eq,
                value: Value::Number(1.0)
            }
        );
        assert_eq!(
            err(r#"bought colour "紅""#),
            "line 1, column 8: expected category, brand, sku or product after bought, found colour"
        );
        assert!(err("bought category 彩妝").contains("text values need double quotes"));
        assert!(err(r#"bought category "彩妝" within 90"#).contains("needs a unit"));
        assert!(err(r#"bought category []"#).contains("empty list"));
    }
}
