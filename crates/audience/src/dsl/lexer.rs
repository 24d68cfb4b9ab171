//! Splits segment text into tokens, with the line and column of each.
//!
//! Words become keywords only when the whole word is one (`index` is a name, `in`
//! a keyword), case-insensitively; `&&`, `||`, `!` and the Chinese `且`, `或`, `非`
//! are synonyms of `and`, `or`, `not`. A number keeps a unit written right after it
//! (`30d`, `1000元`) so the parser can tell `30d` from `30 d`.

use super::ast::CmpOp;
use super::error::ParseError;

/// A line and column, both 1-based; columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    /// An error at this position.
    pub fn error(self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.line, self.column, message)
    }
}

/// Reserved words of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kw {
    And,
    Or,
    Not,
    In,
    Contains,
    Within,
    Before,
    Is,
    Set,
    True,
    False,
    All,
    Event,
    Tag,
    Segment,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A name that is not a keyword.
    Ident(String),
    /// A keyword or its symbol.
    Kw(Kw),
    /// A quoted string, escapes resolved.
    Str(String),
    /// A number as written (`-12.5`) and a unit written right after it (`d`, `元`).
    Number {
        text: String,
        unit: Option<String>,
    },
    Cmp(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// Byte range in the source, for quoting the text in messages.
    pub start: usize,
    pub end: usize,
}

const KEYWORDS: &[(&str, Kw)] = &[
    ("and", Kw::And),
    ("or", Kw::Or),
    ("not", Kw::Not),
    ("in", Kw::In),
    ("contains", Kw::Contains),
    ("within", Kw::Within),
    ("before", Kw::Before),
    ("is", Kw::Is),
    ("set", Kw::Set),
    ("true", Kw::True),
    ("false", Kw::False),
    ("all", Kw::All),
    ("event", Kw::Event),
    ("tag", Kw::Tag),
    ("segment", Kw::Segment),
    ("且", Kw::And),
    ("或", Kw::Or),
    ("非", Kw::Not),
];

/// The keyword a word is, if any (case-insensitive).
pub(crate) fn keyword(word: &str) -> Option<Kw> {
    KEYWORDS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(word))
        .map(|&(_, kw)| kw)
}

/// Full-width ASCII forms (U+FF01..U+FF5E), typed when a Chinese input method is in
/// full-width mode; never part of a name, refused with a hint.
fn is_full_width(c: char) -> bool {
    ('\u{FF01}'..='\u{FF5E}').contains(&c)
}

/// Can `c` start a name? ASCII letters, `_`, and letters of other scripts (会员等级).
pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!c.is_ascii() && c.is_alphabetic() && !is_full_width(c))
}

/// Can `c` continue a name? Also digits and `.` (`traits.vip_level`).
pub(crate) fn is_ident_continue(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '.'
}

/// Is `name` a word the lexer reads as one name (keywords included)?
pub(crate) fn is_word(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_ident_start) && chars.all(is_ident_continue)
}

/// Whether `name` can name a trait in the text language: a word (letters — any
/// script —, digits, `_` and `.`, not starting with a digit or `.`) that is not a
/// reserved word (`and`, `in`, `tag`, `且`, ... in any letter case).
pub fn is_valid_trait_name(name: &str) -> bool {
    is_word(name) && keyword(name).is_none()
}

struct Lexer<'a> {
    src: &'a str,
    offset: usize,
    line: u32,
    column: u32,
    tokens: Vec<Token>,
}

/// Splits `src` into tokens ending with [`Tok::Eof`].
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer {
        src,
        offset: 0,
        line: 1,
        column: 1,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

impl Lexer<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.offset..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.src[self.offset..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.bump();
            } else if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    fn run(&mut self) -> Result<(), ParseError> {
        // The end of the text is reported right after the last token, not after
        // trailing blank lines and comments.
        let mut after_last = Pos { line: 1, column: 1 };
        loop {
            self.skip_blanks();
            let pos = self.pos();
            let start = self.offset;
            let Some(c) = self.peek() else {
                self.tokens.push(Token {
                    tok: Tok::Eof,
                    pos: after_last,
                    start,
                    end: start,
                });
                return Ok(());
            };
            let tok = self.token(c, pos)?;
            self.tokens.push(Token {
                tok,
                pos,
                start,
                end: self.offset,
            });
            after_last = self.pos();
        }
    }

    /// Reads one token starting with `c` at `pos`.
    fn token(&mut self, c: char, pos: Pos) -> Result<Tok, ParseError> {
        let next = self.peek2();
        let two = |lexer: &mut Self, tok: Tok| {
            lexer.bump();
            lexer.bump();
            Ok(tok)
        };
        let one = |lexer: &mut Self, tok: Tok| {
            lexer.bump();
            Ok(tok)
        };
        match c {
            '(' => one(self, Tok::LParen),
            ')' => one(self, Tok::RParen),
            '[' => one(self, Tok::LBracket),
            ']' => one(self, Tok::RBracket),
            '{' => one(self, Tok::LBrace),
            '}' => one(self, Tok::RBrace),
            ',' => one(self, Tok::Comma),
            ':' => one(self, Tok::Colon),
            '=' if next == Some('=') => two(self, Tok::Cmp(CmpOp::Eq)),
            '=' => one(self, Tok::Cmp(CmpOp::Eq)),
            '!' if next == Some('=') => two(self, Tok::Cmp(CmpOp::Ne)),
            '!' => one(self, Tok::Kw(Kw::Not)),
            '<' if next == Some('=') => two(self, Tok::Cmp(CmpOp::Le)),
            '<' if next == Some('>') => two(self, Tok::Cmp(CmpOp::Ne)),
            '<' => one(self, Tok::Cmp(CmpOp::Lt)),
            '>' if next == Some('=') => two(self, Tok::Cmp(CmpOp::Ge)),
            '>' => one(self, Tok::Cmp(CmpOp::Gt)),
            '&' if next == Some('&') => two(self, Tok::Kw(Kw::And)),
            '|' if next == Some('|') => two(self, Tok::Kw(Kw::Or)),
            '&' => Err(pos.error(r#"a single "&" is not an operator: write and (or &&)"#)),
            '|' => Err(pos.error(r#"a single "|" is not an operator: write or (or ||)"#)),
            '"' => self.string('"', pos),
            '“' => self.string('”', pos),
            '「' => self.string('」', pos),
            '-' if next.is_some_and(|c| c.is_ascii_digit()) => self.number(pos),
            '-' => Err(pos.error(r#"unexpected "-": a negative number is written like -5, with no space"#)),
            c if c.is_ascii_digit() => self.number(pos),
            c if is_ident_start(c) => Ok(self.word()),
            c => Err(pos.error(unexpected_char(c))),
        }
    }

    fn string(&mut self, close: char, start: Pos) -> Result<Tok, ParseError> {
        self.bump();
        let mut text = String::new();
        loop {
            let here = self.pos();
            match self.bump() {
                None => {
                    return Err(start.error(format!(
                        "unterminated string starting at line {}, column {}: close it with {close}",
                        start.line, start.column
                    )))
                }
                Some(c) if c == close => return Ok(Tok::Str(text)),
                Some('\\') => text.push(self.escape(here, close)?),
                Some(c) => text.push(c),
            }
        }
    }

    /// Reads what follows a backslash at `at`.
    fn escape(&mut self, at: Pos, close: char) -> Result<char, ParseError> {
        let bad = |what: String| {
            at.error(format!(
                r#"unknown escape "\{what}" in a string: use \" \\ \n \t or \u{{XXXX}}"#
            ))
        };
        match self.bump() {
            Some('"') => Ok('"'),
            Some('\\') => Ok('\\'),
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('r') => Ok('\r'),
            Some(c) if c == close => Ok(c),
            Some('u') => {
                if self.bump() != Some('{') {
                    return Err(at.error(r"write a character code as \u{XXXX}, e.g. \u{4E2D}"));
                }
                let mut hex = String::new();
                while let Some(c) = self.peek().filter(|c| c.is_ascii_hexdigit() && hex.len() < 6) {
                    hex.push(c);
                    self.bump();
                }
                if hex.is_empty() || self.bump() != Some('}') {
                    return Err(
                        at.error(r"write a character code as \u{XXXX}: 1 to 6 hex digits, e.g. \u{4E2D}")
                    );
                }
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| at.error(format!(r#""\u{{{hex}}}" is not a character"#)))
            }
            Some(c) => Err(bad(c.to_string())),
            None => Err(bad(String::new())),
        }
    }

    fn number(&mut self, start: Pos) -> Result<Tok, ParseError> {
        let from = self.offset;
        if self.peek() == Some('-') {
            self.bump();
        }
        self.digits();
        if self.peek() == Some('.') {
            self.bump();
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(start.error(format!(
                    "expected digits after the decimal point in \"{}\"",
                    &self.src[from..self.offset]
                )));
            }
            self.digits();
        }
        let text = self.src[from..self.offset].to_string();
        let unit = match self.peek() {
            Some(c @ ('元' | '分')) => {
                self.bump();
                Some(c.to_string())
            }
            Some(c) if is_ident_start(c) || c.is_ascii_digit() => {
                let unit_from = self.offset;
                while self.peek().is_some_and(|c| is_ident_continue(c) && c != '.') {
                    self.bump();
                }
                Some(self.src[unit_from..self.offset].to_string())
            }
            _ => None,
        };
        Ok(Tok::Number { text, unit })
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
    }

    fn word(&mut self) -> Tok {
        let from = self.offset;
        while self.peek().is_some_and(is_ident_continue) {
            self.bump();
        }
        let word = &self.src[from..self.offset];
        match keyword(word) {
            Some(kw) => Tok::Kw(kw),
            None => Tok::Ident(word.to_string()),
        }
    }
}

/// The message for a character that starts no token.
fn unexpected_char(c: char) -> String {
    if ('０'..='９').contains(&c) {
        let ascii = char::from_u32(c as u32 - 0xFEE0).unwrap_or('0');
        return format!(
            "full-width digit \"{c}\" is not accepted: type numbers with half-width digits, like {ascii}"
        );
    }
    if is_full_width(c) {
        let ascii = char::from_u32(c as u32 - 0xFEE0).unwrap_or('?');
        return format!(
            "full-width \"{c}\" is not accepted: switch the input method to half-width and type \"{ascii}\""
        );
    }
    let hint = match c {
        '≥' => ": write >=",
        '≤' => ": write <=",
        '≠' => ": write !=",
        '，' => ": write a half-width comma \",\"",
        '”' | '」' => ": a string opens with “ or 「 before it closes",
        '\'' | '‘' | '’' => ": strings use double quotes, like \"上海\"",
        '。' | '、' | '；' => ": conditions are joined with and / or",
        _ => "",
    };
    format!("unexpected character \"{}\"{hint}", c.escape_debug())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn err(src: &str) -> String {
        lex(src).unwrap_err().to_string()
    }

    #[test]
    fn words_and_keywords() {
        assert_eq!(
            toks("index IN And 且 非會員 traits.vip_level"),
            vec![
                Tok::Ident("index".into()),
                Tok::Kw(Kw::In),
                Tok::Kw(Kw::And),
                Tok::Kw(Kw::And),
                Tok::Ident("非會員".into()),
                Tok::Ident("traits.vip_level".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn operators() {
        use CmpOp::*;
        assert_eq!(
            toks("= == != <> < <= > >= && || !"),
            vec![
                Tok::Cmp(Eq),
                Tok::Cmp(Eq),
                Tok::Cmp(Ne),
                Tok::Cmp(Ne),
                Tok::Cmp(Lt),
                Tok::Cmp(Le),
                Tok::Cmp(Gt),
                Tok::Cmp(Ge),
                Tok::Kw(Kw::And),
                Tok::Kw(Kw::Or),
                Tok::Kw(Kw::Not),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn numbers_keep_an_attached_unit() {
        let num = |text: &str, unit: Option<&str>| Tok::Number {
            text: text.into(),
            unit: unit.map(Into::into),
        };
        assert_eq!(
            toks("30d -1.5 1000元 5 fen 2w)"),
            vec![
                num("30", Some("d")),
                num("-1.5", None),
                num("1000", Some("元")),
                num("5", None),
                Tok::Ident("fen".into()),
                num("2", Some("w")),
                Tok::RParen,
                Tok::Eof
            ]
        );
        assert_eq!(toks("30days")[0], num("30", Some("days")));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            toks(r#""a\"b\\c\n\t\u{4E2D}""#)[0],
            Tok::Str("a\"b\\c\n\t中".into())
        );
        assert_eq!(toks("“上海”")[0], Tok::Str("上海".into()));
        assert_eq!(toks("「北京」")[0], Tok::Str("北京".into()));
        assert_eq!(toks("\"say “hi”\"")[0], Tok::Str("say “hi”".into()));
        assert_eq!(toks(r#"“a\”b”"#)[0], Tok::Str("a”b".into()));
    }

    #[test]
    fn comments_and_positions() {
        let tokens = lex("# comment\n  會員等級 >= 3 # trailing\n").unwrap();
        assert_eq!(tokens[0].pos, Pos { line: 2, column: 3 });
        assert_eq!(tokens[1].pos, Pos { line: 2, column: 8 });
        assert_eq!(tokens.len(), 4);
    }

    #[test]
    fn errors() {
        assert_eq!(
            err("tag(\"abc"),
            "line 1, column 5: unterminated string starting at line 1, column 5: close it with \""
        );
        assert!(
            err("a = ３").contains("full-width digit \"３\""),
            "{}",
            err("a = ３")
        );
        assert!(err("a ＝ 1").contains("half-width"));
        assert!(err("a ≥ 1").contains("write >="));
        assert!(err(r#""\q""#).contains(r#"unknown escape "\q""#));
        assert!(err(r#""\u{D800}""#).contains("is not a character"));
        assert!(err("a = 1.").contains("digits after the decimal point"));
        assert!(err("a & b").contains("&&"));
        assert!(err("a = - 1").contains("negative"));
    }

    #[test]
    fn trait_names() {
        assert!(is_valid_trait_name("spend"));
        assert!(is_valid_trait_name("traits.vip_level"));
        assert!(is_valid_trait_name("會員等級"));
        assert!(is_valid_trait_name("_x1"));
        assert!(!is_valid_trait_name("AND"));
        assert!(!is_valid_trait_name("tag"));
        assert!(!is_valid_trait_name("或"));
        assert!(!is_valid_trait_name("1x"));
        assert!(!is_valid_trait_name(".x"));
        assert!(!is_valid_trait_name("a b"));
        assert!(!is_valid_trait_name(""));
        assert!(!is_valid_trait_name("ｓｐｅｎｄ"));
    }
}
