//! Event ingestion: from Segment-compatible wire payloads (HTTP bodies or import
//! files) to stored events.
//!
//! * [`request`] reads a request body (gzip allowed, size limits as Segment's) into
//!   messages and the write key carried in the body, if any;
//! * [`exact`] reads ids sent as JSON numbers from their exact text;
//! * [`message`] validates one message into a [`flywheel_core::Event`], applying
//!   Segment's clock-skew correction;
//! * [`ecommerce`] reads the Segment e-commerce spec v2 events into orders,
//!   refunds/cancellations and products;
//! * [`pipeline`] is the bounded write queue: handlers submit validated batches and
//!   are answered once their batch is durable (group commit);
//! * [`import`] reads CSV and JSONL files through the same validation;
//! * [`trust`] is the boundary between client (browser, app) and server write keys:
//!   what a public key's messages may not change.
//!
//! Nothing here speaks SQL: storage is the `store` crate's.

pub mod ecommerce;
mod error;
pub mod exact;
pub mod import;
pub mod message;
pub mod pipeline;
pub mod request;
pub mod trust;

pub use error::{Error, Result};
pub use pipeline::{Pipeline, PipelineConfig};
pub use request::{Limits, ParsedRequest};
