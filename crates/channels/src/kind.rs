//! What a message is: its channel and its category.

use serde::{Deserialize, Serialize};

/// How a message is meant: marketing (capped, quiet hours) or transactional (neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Promotions, newsletters, win-back: subject to caps, quiet hours and consent.
    Marketing,
    /// Order and account messages the user expects: always sent at once.
    Transactional,
}

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email over SMTP.
    Email,
    /// SMS through a provider webhook.
    Sms,
    /// App push through a provider webhook.
    Push,
    /// WeChat template message through a provider webhook.
    Wechat,
    /// A generic outgoing webhook.
    Webhook,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 5] = [
        Channel::Email,
        Channel::Sms,
        Channel::Push,
        Channel::Wechat,
        Channel::Webhook,
    ];

    /// The channel's name as configuration and the API spell it (`email`, `sms`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Wechat => "wechat",
            Channel::Webhook => "webhook",
        }
    }
}
