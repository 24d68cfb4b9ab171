//! Channel fallback (issue 6 §2): a send step lists channels in order of preference
//! (e.g. push, then SMS); the message goes on the first one the user can be reached on
//! and has consented to. "Push → SMS when there is no device token."

use serde::{Deserialize, Serialize};

use crate::consent::{Consent, ConsentPolicy, Suppressed};
use crate::kind::{Category, Channel};

/// The addresses Flywheel holds for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reachability {
    /// An email address.
    pub email: bool,
    /// A mobile number.
    pub phone: bool,
    /// An app push device token.
    pub push_token: bool,
    /// A WeChat openid.
    pub wechat_openid: bool,
}

impl Reachability {
    /// Whether the user has an address on `channel` (a generic webhook needs none).
    pub fn reaches(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email,
            Channel::Sms => self.phone,
            Channel::Push => self.push_token,
            Channel::Wechat => self.wechat_openid,
            Channel::Webhook => true,
        }
    }
}

/// Why a channel in the list was passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "why")]
pub enum PassedOver {
    /// No address on that channel.
    NoAddress {
        /// The channel.
        channel: Channel,
    },
    /// Consent refused it.
    Suppressed {
        /// The consent reason.
        reason: Suppressed,
    },
}

/// The first channel in `preference` that reaches the user with consent, or every reason
/// the channels were passed over (for the message log) when none does.
pub fn pick_channel(
    preference: &[Channel],
    reach: &Reachability,
    consent: &Consent,
    policy: &ConsentPolicy,
    category: Category,
) -> Result<Channel, Vec<PassedOver>> {
    let mut passed = Vec::new();
    for &channel in preference {
        if !reach.reaches(channel) {
            passed.push(PassedOver::NoAddress { channel });
            continue;
        }
        match policy.check(consent, category, channel) {
            Ok(()) => return Ok(channel),
            Err(reason) => passed.push(PassedOver::Suppressed { reason }),
        }
    }
    Err(passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::Subscription;

    fn consent(pairs: &[(Channel, Subscription)]) -> Consent {
        Consent {
            channels: pairs.iter().copied().collect(),
            suppressed: None,
        }
    }

    const PREF: [Channel; 3] = [Channel::Push, Channel::Sms, Channel::Email];

    #[test]
    fn push_falls_back_to_sms_without_a_device_token() {
        let reach = Reachability {
            phone: true,
            email: true,
            ..Reachability::default()
        };
        let c = consent(&[
            (Channel::Push, Subscription::Subscribed),
            (Channel::Sms, Subscription::Subscribed),
        ]);
        let p = ConsentPolicy::default();
        assert_eq!(
            pick_channel(&PREF, &reach, &c, &p, Category::Marketing),
            Ok(Channel::Sms)
        );
        let with_token = Reachability {
            push_token: true,
            ..reach
        };
        assert_eq!(
            pick_channel(&PREF, &with_token, &c, &p, Category::Marketing),
            Ok(Channel::Push)
        );
    }

    #[test]
    fn consent_is_checked_per_channel_and_every_reason_is_kept() {
        let reach = Reachability {
            phone: true,
            email: true,
            ..Reachability::default()
        };
        let c = consent(&[(Channel::Sms, Subscription::Unsubscribed)]);
        let p = ConsentPolicy::default();
        assert_eq!(
            pick_channel(&PREF, &reach, &c, &p, Category::Marketing),
            Err(vec![
                PassedOver::NoAddress {
                    channel: Channel::Push
                },
                PassedOver::Suppressed {
                    reason: Suppressed::Unsubscribed {
                        channel: Channel::Sms
                    }
                },
                PassedOver::Suppressed {
                    reason: Suppressed::NoConsent {
                        channel: Channel::Email
                    }
                },
            ])
        );
        // Transactional: SMS goes despite the marketing unsubscribe.
        assert_eq!(
            pick_channel(&PREF, &reach, &c, &p, Category::Transactional),
            Ok(Channel::Sms)
        );
        assert_eq!(
            pick_channel(&[], &reach, &c, &p, Category::Transactional),
            Err(vec![])
        );
    }
}
