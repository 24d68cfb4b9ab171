//! Consent (issue 6 §6): who may receive what, and the one-click unsubscribe token.
//!
//! - A user globally suppressed (hard bounce, spam complaint, erasure request) gets
//!   nothing, transactional included.
//! - Transactional messages otherwise go out.
//! - Marketing needs the channel's consent. An explicit unsubscribe always wins. A user
//!   who never said either way counts as **not consenting** by default: 《廣告法》第四十三條
//!   forbids sending advertising by electronic message without the recipient's consent
//!   or request, so opt-in is the default on every channel; a shop outside that rule may
//!   set [`ConsentPolicy::opt_out_channels`] (e.g. email).
//!
//! Every refusal carries a [`Suppressed`] reason for the message log.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::kind::{Category, Channel};

/// A user's answer for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subscription {
    /// Never asked or never answered.
    #[default]
    Unknown,
    /// Opted in.
    Subscribed,
    /// Opted out (unsubscribe link, reply TD, preference centre).
    Unsubscribed,
}

/// A user's consent across channels.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Consent {
    /// Per-channel answers; a channel not listed is [`Subscription::Unknown`].
    #[serde(default)]
    pub channels: BTreeMap<Channel, Subscription>,
    /// Set when nothing at all may be sent, with why (e.g. `hard_bounce`).
    #[serde(default)]
    pub suppressed: Option<String>,
}

/// Why a message was not sent, for the message log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Suppressed {
    /// The user is on the global suppression list.
    GlobalSuppression {
        /// Why they are on it.
        why: String,
    },
    /// The user unsubscribed from this channel.
    Unsubscribed {
        /// The channel.
        channel: Channel,
    },
    /// Marketing on an opt-in channel to a user who never opted in.
    NoConsent {
        /// The channel.
        channel: Channel,
    },
}

/// Which channels treat "never answered" as consent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsentPolicy {
    /// Channels where marketing may go to users who never opted out (empty by default:
    /// opt-in everywhere, per 《廣告法》第四十三條).
    #[serde(default)]
    pub opt_out_channels: BTreeSet<Channel>,
}

impl ConsentPolicy {
    /// Whether a message of `category` on `channel` may go to a user with `consent`.
    pub fn check(&self, consent: &Consent, category: Category, channel: Channel) -> Result<(), Suppressed> {
        if let Some(why) = &consent.suppressed {
            return Err(Suppressed::GlobalSuppression { why: why.clone() });
        }
        if category == Category::Transactional {
            return Ok(());
        }
        match consent.channels.get(&channel).copied().unwrap_or_default() {
            Subscription::Subscribed => Ok(()),
            Subscription::Unsubscribed => Err(Suppressed::Unsubscribed { channel }),
            Subscription::Unknown if self.opt_out_channels.contains(&channel) => Ok(()),
            Subscription::Unknown => Err(Suppressed::NoConsent { channel }),
        }
    }
}

/// Bytes of HMAC kept in an unsubscribe token (128 bits: unguessable, short links).
/// The token in a one-click unsubscribe link (RFC 8058) for `profile` on `channel`:
/// `<channel>:<profile>` sealed under `secret` ([`crate::seal`]).
pub fn unsubscribe_token(secret: &[u8], profile: &str, channel: Channel) -> String {
    crate::seal::seal(secret, "unsubscribe", &format!("{}:{profile}", channel.as_str()))
}

/// The profile and channel of a genuine unsubscribe token, or `None` for a forged,
/// truncated or garbled one.
pub fn read_unsubscribe_token(secret: &[u8], token: &str) -> Option<(String, Channel)> {
    let payload = crate::seal::unseal(secret, "unsubscribe", token)?;
    let (channel, profile) = payload.split_once(':')?;
    let channel = Channel::ALL.into_iter().find(|c| c.as_str() == channel)?;
    Some((profile.to_string(), channel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn consent(pairs: &[(Channel, Subscription)]) -> Consent {
        Consent {
            channels: pairs.iter().copied().collect(),
            suppressed: None,
        }
    }

    #[test]
    fn marketing_needs_consent_and_unsubscribe_wins() {
        let p = ConsentPolicy::default();
        let c = consent(&[
            (Channel::Email, Subscription::Subscribed),
            (Channel::Sms, Subscription::Unsubscribed),
        ]);
        assert_eq!(p.check(&c, Category::Marketing, Channel::Email), Ok(()));
        assert_eq!(
            p.check(&c, Category::Marketing, Channel::Sms),
            Err(Suppressed::Unsubscribed {
                channel: Channel::Sms
            })
        );
        assert_eq!(
            p.check(&c, Category::Marketing, Channel::Push),
            Err(Suppressed::NoConsent {
                channel: Channel::Push
            })
        );
        // Transactional ignores marketing consent.
        assert_eq!(p.check(&c, Category::Transactional, Channel::Sms), Ok(()));
    }

    #[test]
    fn opt_out_channels_accept_unknown_but_not_unsubscribed() {
        let p = ConsentPolicy {
            opt_out_channels: [Channel::Email].into_iter().collect(),
        };
        assert_eq!(
            p.check(&Consent::default(), Category::Marketing, Channel::Email),
            Ok(())
        );
        let c = consent(&[(Channel::Email, Subscription::Unsubscribed)]);
        assert!(p.check(&c, Category::Marketing, Channel::Email).is_err());
    }

    #[test]
    fn global_suppression_blocks_even_transactional() {
        let c = Consent {
            suppressed: Some("hard_bounce".into()),
            ..consent(&[(Channel::Email, Subscription::Subscribed)])
        };
        assert_eq!(
            ConsentPolicy::default().check(&c, Category::Transactional, Channel::Email),
            Err(Suppressed::GlobalSuppression {
                why: "hard_bounce".into()
            })
        );
    }

    #[test]
    fn unsubscribe_tokens_round_trip_and_refuse_forgeries() {
        let secret = b"fw-secret";
        let token = unsubscribe_token(secret, "user:王小明", Channel::Email);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            read_unsubscribe_token(secret, &token),
            Some(("user:王小明".to_string(), Channel::Email))
        );
        assert_eq!(read_unsubscribe_token(b"other", &token), None);
        // Another user's id with the first user's MAC.
        let mut forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token)
            .unwrap();
        forged[6] ^= 1;
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
        assert_eq!(read_unsubscribe_token(secret, &forged), None);
        assert_eq!(read_unsubscribe_token(secret, "short"), None);
        assert_eq!(read_unsubscribe_token(secret, "!!!"), None);
    }

    #[test]
    fn consent_serialises_per_channel() {
        let c = consent(&[(Channel::Wechat, Subscription::Subscribed)]);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"channels":{"wechat":"subscribed"},"suppressed":null}"#);
        assert_eq!(serde_json::from_str::<Consent>(&json).unwrap(), c);
    }
}
