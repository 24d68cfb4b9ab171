//! Errors of the segment language: where a text expression went wrong and why, in
//! words a shop operator can act on, and why a money literal was refused.

use serde::Serialize;

/// A text expression could not be read.
///
/// Displays as `line L, column C: message`. Lines and columns are 1-based and
/// columns count characters (not bytes), so they match what an editor shows for
/// Chinese text too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// The line of the offending text (1-based).
    pub line: u32,
    /// The column of the offending text (1-based, in characters).
    pub column: u32,
    /// What is wrong, for a person: `expected a comparison (=, !=, <, <=, >, >=) after
    /// spend(30d), found "1000"`.
    pub message: String,
    /// What would have been accepted at that point (`"and"`, `"or"`, `")"`), for
    /// editors that offer completions; empty when there is no short list.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expected: Vec<String>,
}

impl ParseError {
    /// An error at `line`, `column` with `message` and no list of expected tokens.
    pub fn new(line: u32, column: u32, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            column,
            message: message.into(),
            expected: Vec::new(),
        }
    }

    /// The same error listing what would have been accepted.
    pub fn expecting<I, S>(mut self, expected: I) -> ParseError
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.expected = expected.into_iter().map(Into::into).collect();
        self
    }
}

/// A money literal (`1000.01 元`, `{"yuan": "1000.01"}`, `{"fen": 100001}`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a decimal number.
    #[error("{0:?} is not an amount of money: write digits such as 1000 or 1000.01")]
    Invalid(String),
    /// More than two decimals: not a whole number of fen.
    #[error("{0} 元 has more than 2 decimals: money is counted in whole fen (0.01 元)")]
    TooManyDecimals(String),
    /// An amount in fen with decimals.
    #[error("an amount in fen must be a whole number, found {0} fen")]
    FenNotWhole(String),
    /// Beyond ±10^13 元 (10^15 fen).
    #[error("{0} is too large an amount: at most 10000000000000 元 (10^15 fen) either way")]
    OutOfRange(String),
}
