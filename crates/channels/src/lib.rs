//! Channels (REQUIREMENTS §5, issue 6 §4): how a message leaves Flywheel.
//!
//! This first part is the HTTP webhook provider ([`webhook`]) that SMS, app push and
//! WeChat template messages go through: a JSON body signed with HMAC-SHA256
//! ([`sign`], [`verify`]), retried with exponential backoff on transport errors, 408,
//! 429 and 5xx ([`RetryPolicy`]), and failed at once on other 4xx answers.
//!
//! Messages are written as [`MessageTemplate`]s (`minijinja`), checked against a
//! [`VariableCatalog`] when saved so a misspelt variable never reaches a user.

pub mod consent;
mod kind;
pub mod template;
pub mod webhook;

pub use consent::{
    read_unsubscribe_token, unsubscribe_token, Consent, ConsentPolicy, Subscription, Suppressed,
};
pub use kind::{Category, Channel};
pub use template::{MessageTemplate, RenderedMessage, TemplateError, VariableCatalog};
pub use webhook::{sign, verify, Attempt, Error, Outcome, RetryPolicy, WebhookProvider};
