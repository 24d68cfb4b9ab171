//! The providers messages leave through (issue 6 §4): an SMTP relay for email, and an
//! HTTP webhook provider per other channel (SMS, app push, WeChat template messages,
//! generic webhooks), configured under `[journeys.email]` and `[journeys.providers.*]`.

use std::collections::BTreeMap;
use std::sync::Arc;

use flywheel_channels::email::{SmtpEmail, SmtpSettings};
use flywheel_channels::{Channel, Renderer, RetryPolicy, WebhookProvider};
use serde::{Deserialize, Serialize};

/// One webhook provider's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where messages are POSTed.
    pub url: String,
    /// The HMAC-SHA256 signing secret (also verifies this provider's delivery-status callbacks).
    pub secret: String,
}

/// Connected providers.
#[derive(Clone, Default)]
pub struct Providers {
    /// The mailer.
    pub email: Option<Arc<SmtpEmail>>,
    /// Webhook providers by channel.
    pub webhooks: BTreeMap<Channel, Arc<WebhookProvider>>,
    /// Their secrets (delivery-status callbacks are verified with them).
    pub secrets: BTreeMap<Channel, Vec<u8>>,
    /// Where messages are rendered: in the calling thread by default, in the render
    /// sandbox when the server sets it (time and memory bounded).
    pub renderer: Renderer,
}

impl Providers {
    /// Connects the relay and webhook providers configured; a bad setting is an error
    /// naming it.
    pub fn connect(
        email: Option<&SmtpSettings>,
        providers: &BTreeMap<Channel, WebhookSettings>,
        retry: RetryPolicy,
    ) -> Result<Providers, String> {
        let email = match email {
            Some(s) => Some(Arc::new(
                SmtpEmail::new(s).map_err(|e| format!("[journeys.email]: {e}"))?,
            )),
            None => None,
        };
        let mut webhooks = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for (channel, w) in providers {
            if *channel == Channel::Email {
                return Err("[journeys.providers.email]: email goes through [journeys.email] (SMTP)".into());
            }
            let p = WebhookProvider::new(&w.url, w.secret.as_bytes(), retry)
                .map_err(|e| format!("[journeys.providers.{}]: {e}", channel.as_str()))?;
            webhooks.insert(*channel, Arc::new(p));
            secrets.insert(*channel, w.secret.as_bytes().to_vec());
        }
        Ok(Providers {
            email,
            webhooks,
            secrets,
            renderer: Renderer::default(),
        })
    }

    /// Whether `channel` has a provider.
    pub fn has(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email.is_some(),
            other => self.webhooks.contains_key(&other),
        }
    }
}
