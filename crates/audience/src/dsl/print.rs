//! Canonical text of segment expressions (`Display`), which parses back to the same
//! tree.
//!
//! Money prints as yuan with only the decimals it needs (`1000 元`, `1000.01 元`),
//! durations as `30d`, strings in double quotes with escapes, comparisons with `=`
//! and `!=`, and a bare `event("X")` for a count of `>= 1`. Parentheses appear only
//! where the tree needs them: around an `and` or `or` inside an `and`, an `or`
//! inside an `or`, and either inside `not`.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{CmpOp, Cond, Duration, Expr, Money, PropertyFilter, TraitRef, Value, WindowArg};
use super::lexer::is_valid_trait_name;

/// Where an expression is printed, which decides whether it needs parentheses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Top,
    OrOperand,
    AndOperand,
    NotOperand,
}

impl Display for Expr {
    /// Canonical text that [`super::parse`] reads back to an equal tree, for every
    /// tree the parser or the JSON reader accepts. An `and`/`or` with a single
    /// operand (which neither produces) prints as that operand; an empty one prints
    /// as `()`, which does not parse.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_expr(f, self, Context::Top)
    }
}

fn write_expr(f: &mut Formatter<'_>, expr: &Expr, context: Context) -> fmt::Result {
    if let Expr::And(operands) | Expr::Or(operands) = expr {
        if let [only] = operands.as_slice() {
            return write_expr(f, only, context);
        }
    }
    match expr {
        Expr::And(operands) => {
            let parens = matches!(context, Context::AndOperand | Context::NotOperand);
            write_chain(f, operands, " and ", Context::AndOperand, parens)
        }
        Expr::Or(operands) => write_chain(f, operands, " or ", Context::OrOperand, context != Context::Top),
        Expr::Not(operand) => {
            f.write_str("not ")?;
            write_expr(f, operand, Context::NotOperand)
        }
        Expr::Cond(cond) => cond.fmt(f),
    }
}

fn write_chain(
    f: &mut Formatter<'_>,
    operands: &[Expr],
    sep: &str,
    context: Context,
    parens: bool,
) -> fmt::Result {
    let parens = parens || operands.is_empty();
    if parens {
        f.write_char('(')?;
    }
    for (i, operand) in operands.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write_expr(f, operand, context)?;
    }
    if parens {
        f.write_char(')')?;
    }
    Ok(())
}

impl Display for Cond {
    /// The condition as it is written in the text language.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Cond::Compare { trait_ref, op, value } => write!(f, "{trait_ref} {op} {value}"),
            Cond::In {
                trait_ref,
                values,
                negated,
            } => {
                let not = if *negated { "not " } else { "" };
                write!(f, "{trait_ref} {not}in ")?;
                write_list(f, values)
            }
            Cond::Contains { trait_ref, value } => write!(f, "{trait_ref} contains {value}"),
            Cond::Within { trait_ref, window } => write!(f, "{trait_ref} within {window}"),
            Cond::Before { trait_ref, window } => write!(f, "{trait_ref} before {window}"),
            Cond::IsSet { trait_ref, negated } => {
                let not = if *negated { "not " } else { "" };
                write!(f, "{trait_ref} is {not}set")
            }
            Cond::Event {
                name,
                within,
                filters,
                op,
                count,
            } => write_event(f, name, *within, filters, *op, *count),
            Cond::Tag { name } => {
                f.write_str("tag(")?;
                write_quoted(f, name)?;
                f.write_char(')')
            }
            Cond::Segment { name } => {
                f.write_str("segment(")?;
                write_quoted(f, name)?;
                f.write_char(')')
            }
        }
    }
}

fn write_event(
    f: &mut Formatter<'_>,
    name: &str,
    within: Option<Duration>,
    filters: &[PropertyFilter],
    op: CmpOp,
    count: u32,
) -> fmt::Result {
    f.write_str("event(")?;
    write_quoted(f, name)?;
    if let Some(window) = within {
        write!(f, ", within: {window}")?;
    }
    if !filters.is_empty() {
        f.write_str(", where: {")?;
        for (i, filter) in filters.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if is_valid_trait_name(&filter.property) {
                f.write_str(&filter.property)?;
            } else {
                write_quoted(f, &filter.property)?;
            }
            f.write_str(": ")?;
            match filter.values.as_slice() {
                [value] => value.fmt(f)?,
                values => write_list(f, values)?,
            }
        }
        f.write_char('}')?;
    }
    f.write_char(')')?;
    if (op, count) != (CmpOp::Ge, 1) {
        write!(f, " {op} {count}")?;
    }
    Ok(())
}

fn write_list(f: &mut Formatter<'_>, values: &[Value]) -> fmt::Result {
    f.write_char('[')?;
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        value.fmt(f)?;
    }
    f.write_char(']')
}

/// `text` in double quotes, escaping `"`, `\`, newlines, tabs and other control
/// characters.
fn write_quoted(f: &mut Formatter<'_>, text: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{{{:X}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl Display for TraitRef {
    /// `spend(30d)`, `orders(all)`, `gender`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match self.window {
            Some(window) => write!(f, "({window})"),
            None => Ok(()),
        }
    }
}

impl Display for WindowArg {
    /// `all` or a duration such as `30d`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            WindowArg::All(_) => f.write_str("all"),
            WindowArg::Last(duration) => duration.fmt(f),
        }
    }
}

impl Display for Duration {
    /// `30d`, `12h`, `45m`, `2w`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

impl Display for CmpOp {
    /// `=`, `!=`, `<`, `<=`, `>`, `>=`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        })
    }
}

impl Display for Value {
    /// `"上海"`, `true`, `2.5`, `1000.01 元`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(text) => write_quoted(f, text),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Money(money) => money.fmt(f),
            // Rust prints the shortest text that reads back to the same f64, never
            // with an exponent.
            Value::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Display for Money {
    /// Yuan with only the decimals needed: `1000 元`, `1000.1 元`, `1000.01 元`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let sign = if self.fen < 0 { "-" } else { "" };
        let abs = self.fen.unsigned_abs();
        let (yuan, fen) = (abs / 100, abs % 100);
        match fen {
            0 => write!(f, "{sign}{yuan} 元"),
            f10 if f10 % 10 == 0 => write!(f, "{sign}{yuan}.{} 元", f10 / 10),
            _ => write!(f, "{sign}{yuan}.{fen:02} 元"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ast::DurationUnit;
    use super::*;

    fn spend30() -> TraitRef {
        TraitRef {
            name: "spend".into(),
            window: Some(WindowArg::Last(Duration {
                amount: 30,
                unit: DurationUnit::Days,
            })),
        }
    }

    fn tag(name: &str) -> Expr {
        Expr::Cond(Cond::Tag { name: name.into() })
    }

    #[test]
    fn money_uses_only_needed_decimals() {
        let text = |fen| Money { fen }.to_string();
        assert_eq!(text(100_000), "1000 元");
        assert_eq!(text(100_001), "1000.01 元");
        assert_eq!(text(100_010), "1000.1 元");
        assert_eq!(text(-5), "-0.05 元");
        assert_eq!(text(0), "0 元");
        assert_eq!(text(i64::MIN), "-92233720368547758.08 元");
    }

    #[test]
    fn conditions() {
        let compare = Cond::Compare {
            trait_ref: spend30(),
            op: CmpOp::Gt,
            value: Value::Money(Money { fen: 100_000 }),
        };
        assert_eq!(compare.to_string(), "spend(30d) > 1000 元");
        let event = Cond::Event {
            name: "Product Added".into(),
            within: Some(Duration {
                amount: 7,
                unit: DurationUnit::Days,
            }),
            filters: vec![
                PropertyFilter {
                    property: "category".into(),
                    values: vec![Value::Str("護膚".into())],
                },
                PropertyFilter {
                    property: "in".into(),
                    values: vec![Value::Number(1.5), Value::Bool(true)],
                },
            ],
            op: CmpOp::Ge,
            count: 2,
        };
        assert_eq!(
            event.to_string(),
            r#"event("Product Added", within: 7d, where: {category: "護膚", "in": [1.5, true]}) >= 2"#
        );
        let bare = Cond::Event {
            name: "X".into(),
            within: None,
            filters: vec![],
            op: CmpOp::Ge,
            count: 1,
        };
        assert_eq!(bare.to_string(), r#"event("X")"#);
        let is_set = Cond::IsSet {
            trait_ref: TraitRef {
                name: "city".into(),
                window: None,
            },
            negated: true,
        };
        assert_eq!(is_set.to_string(), "city is not set");
        let in_list = Cond::In {
            trait_ref: TraitRef {
                name: "region".into(),
                window: None,
            },
            values: vec![Value::Str("上海".into()), Value::Str("北京".into())],
            negated: true,
        };
        assert_eq!(in_list.to_string(), r#"region not in ["上海", "北京"]"#);
    }

    #[test]
    fn strings_are_escaped() {
        let cond = Cond::Tag {
            name: "a\"b\\c\nd\te\u{1}f“g”".into(),
        };
        assert_eq!(cond.to_string(), r#"tag("a\"b\\c\nd\te\u{1}f“g”")"#);
    }

    #[test]
    fn parentheses_only_where_needed() {
        let (a, b, c) = (tag("a"), tag("b"), tag("c"));
        let or_in_and = Expr::And(vec![Expr::Or(vec![a.clone(), b.clone()]), c.clone()]);
        assert_eq!(or_in_and.to_string(), r#"(tag("a") or tag("b")) and tag("c")"#);
        let and_in_or = Expr::Or(vec![Expr::And(vec![a.clone(), b.clone()]), c.clone()]);
        assert_eq!(and_in_or.to_string(), r#"tag("a") and tag("b") or tag("c")"#);
        let nested_and = Expr::And(vec![Expr::And(vec![a.clone(), b.clone()]), c.clone()]);
        assert_eq!(nested_and.to_string(), r#"(tag("a") and tag("b")) and tag("c")"#);
        let not_and = Expr::Not(Box::new(Expr::And(vec![a.clone(), b.clone()])));
        assert_eq!(not_and.to_string(), r#"not (tag("a") and tag("b"))"#);
        let not_not = Expr::Not(Box::new(Expr::Not(Box::new(a.clone()))));
        assert_eq!(not_not.to_string(), r#"not not tag("a")"#);
        assert_eq!(Expr::And(vec![a]).to_string(), r#"tag("a")"#);
        assert_eq!(Expr::Or(vec![]).to_string(), "()");
    }
}
