//! Channels (REQUIREMENTS §5, issue 6 §4): how a message leaves Flywheel.
//!
//! This first part is the HTTP webhook provider ([`webhook`]) that SMS, app push and
//! WeChat template messages go through: a JSON body signed with HMAC-SHA256
//! ([`sign`], [`verify`]), retried with exponential backoff on transport errors, 408,
//! 429 and 5xx ([`RetryPolicy`]), and failed at once on other 4xx answers.
//!
//! Messages are written as [`MessageTemplate`]s (`minijinja`), checked against a
//! [`VariableCatalog`] when saved so a misspelt variable never reaches a user.
//!
//! Email goes over SMTP ([`email`]): a 7-bit `multipart/alternative` message with a
//! deterministic `Message-ID` and RFC 8058 one-click unsubscribe headers, sent through a
//! pooled relay connection, with 5xx replies rejected for good and 4xx or transport
//! errors left to retry ([`EmailOutcome`]).

pub mod consent;
pub mod email;
mod kind;
pub mod limits;
pub mod links;
pub mod route;
pub mod sandbox;
pub mod seal;
pub mod template;
pub mod webhook;

pub use consent::{
    read_unsubscribe_token, unsubscribe_token, Consent, ConsentPolicy, Subscription, Suppressed,
};
pub use email::{EmailError, EmailMessage, EmailOutcome, SmtpEmail, SmtpSettings, SmtpTls};
pub use kind::{Category, Channel};
pub use limits::{Limit, RenderLimits};
pub use route::{pick_channel, PassedOver, Reachability};
pub use sandbox::{RenderSandbox, Renderer};
pub use template::{MessageTemplate, RenderedMessage, TemplateError, TemplateSource, VariableCatalog};
pub use webhook::{sign, verify, verify_timestamp, Attempt, Error, Outcome, RetryPolicy, WebhookProvider};

/// An HMAC-SHA256 keyed with `secret` (webhook signatures, unsubscribe tokens).
pub(crate) fn hmac_sha256(secret: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    use hmac::KeyInit as _;
    match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}
