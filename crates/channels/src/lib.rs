//! Channels (REQUIREMENTS §5, issue 6 §4): how a message leaves Flywheel.
//!
//! This first part is the HTTP webhook provider ([`webhook`]) that SMS, app push and
//! WeChat template messages go through: a JSON body signed with HMAC-SHA256
//! ([`sign`], [`verify`]), retried with exponential backoff on transport errors, 408,
//! 429 and 5xx ([`RetryPolicy`]), and failed at once on other 4xx answers.

pub mod webhook;

pub use webhook::{sign, verify, Attempt, Error, Outcome, RetryPolicy, WebhookProvider};
