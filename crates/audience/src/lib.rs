//! Audience: who the shop's users are and which groups they fall into.
//!
//! Owns computed traits, tags (rule and manual), the segment expression language,
//! RFM scores and lifecycle stages, all evaluated over an in-memory columnar +
//! roaring-bitmap index of every profile.

pub mod bytes;
pub mod column;
pub mod config;
pub mod counter;
pub mod definitions;
pub mod dsl;
pub mod engine;
pub mod facts;
pub mod index;
pub mod naive;
pub mod packed;
pub mod plan;
pub mod rfm;
pub mod small;
pub mod traits;
pub mod window;

pub use engine::{Audience, DefKind, EventDecoder, Following, SegmentInput, TagInput};
use flywheel_core::ErrorCode;

/// Errors of the audience engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A segment expression could not be parsed.
    #[error("{0}")]
    Parse(#[from] dsl::ParseError),
    /// An expression or definition is well-formed but wrong (unknown trait, wrong type, ...).
    #[error("{0}")]
    Invalid(String),
    /// A tag or segment does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A refusal with its own code: an unknown trait, event, tag or segment, a name
    /// taken, a built-in tag, a definition others use, a cycle.
    #[error("{message}")]
    Refused {
        /// The refusal's stable code.
        code: ErrorCode,
        /// Human explanation.
        message: String,
    },
    /// The engine failed (not the caller's input).
    #[error("{0}")]
    Internal(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] flywheel_store::Error),
}

impl Error {
    /// An [`Error::Refused`] with `code`.
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Error {
        Error::Refused {
            code,
            message: message.into(),
        }
    }

    /// The stable code: each refusal its own, a malformed expression
    /// `invalid_expression`, other wrong definitions `invalid_segment`.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Parse(_) => ErrorCode::InvalidExpression,
            Error::Invalid(_) => ErrorCode::InvalidSegment,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Refused { code, .. } => *code,
            Error::Internal(_) => ErrorCode::Internal,
            Error::Store(e) => e.code(),
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
