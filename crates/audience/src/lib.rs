//! Audience: who the shop's users are and which groups they fall into.
//!
//! Owns computed traits, tags (rule and manual), the segment expression language,
//! RFM scores and lifecycle stages, all evaluated over an in-memory columnar +
//! roaring-bitmap index of every profile.

pub mod column;
pub mod config;
pub mod counter;
pub mod definitions;
pub mod dsl;
pub mod engine;
pub mod facts;
pub mod index;
pub mod naive;
pub mod plan;
pub mod rfm;
pub mod small;
pub mod traits;
pub mod window;

pub use engine::{Audience, DefKind, SegmentInput, TagInput};

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
    /// The change conflicts with what exists (the name is taken, it is built in, others use it).
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] flywheel_store::Error),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
