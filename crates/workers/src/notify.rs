//! Sending reviews (R10.5) and alerts (R11.4 guardrails, R10.6 benchmarks) to the people
//! who act on them (`[analytics.notify]`): by email through the `[journeys.email]` SMTP
//! relay, and as a signed JSON POST to a webhook (the journeys' signature scheme,
//! `X-Flywheel-Signature`). Sends are blocking, so they run on the blocking pool.
//!
//! How a review reads (its subject, text and HTML) is the caller's ([`ReviewLetter`]):
//! the CLI prints the same tables it sends.

use std::sync::Arc;

use flywheel_analytics::campaign_facts::Alert;
use flywheel_analytics::config::NotifyConfig;
use flywheel_analytics::reports::Review;
use flywheel_channels::email::SmtpSettings;
use flywheel_channels::email::{EmailMessage, EmailOutcome, SmtpEmail};
use flywheel_channels::webhook::{Outcome, RetryPolicy, WebhookProvider};
use serde_json::json;

use crate::Error;

/// How a review reads in the email and the webhook that carry it.
pub trait ReviewLetter: Send + Sync {
    /// The subject line.
    fn subject(&self, r: &Review) -> String;
    /// The plain-text body.
    fn text(&self, r: &Review) -> String;
    /// The HTML body.
    fn html(&self, r: &Review) -> String;
}

/// `s` with the HTML special characters escaped.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What sending one review or alert came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// One clause per way (`email: sent to 2 of 2; webhook: HTTP 200`), or `not sent` with
    /// nowhere to send.
    pub summary: String,
    /// Every recipient and the webhook took it.
    pub ok: bool,
}

/// Where reviews and alerts go; empty when `[analytics.notify]` names nobody.
#[derive(Clone, Default)]
pub struct Notifier {
    letter: Option<Arc<dyn ReviewLetter>>,
    email: Option<Arc<SmtpEmail>>,
    recipients: Vec<String>,
    webhook: Option<Arc<WebhookProvider>>,
}

impl Notifier {
    /// The notifier of `[analytics.notify]` (`n`) over the `[journeys.email]` relay
    /// (`smtp`), writing reviews as `letter`. Email recipients without a relay, or a
    /// webhook that is not http(s), are setting errors.
    pub fn new(
        n: &NotifyConfig,
        smtp: Option<&SmtpSettings>,
        letter: Arc<dyn ReviewLetter>,
    ) -> crate::Result<Notifier> {
        let email = match (smtp, n.email.is_empty()) {
            (_, true) => None,
            (Some(smtp), false) => Some(Arc::new(
                SmtpEmail::new(smtp).map_err(|e| Error::Setting(format!("[journeys.email]: {e}")))?,
            )),
            (None, false) => {
                return Err(Error::Setting(
                    "[analytics.notify] email needs an SMTP relay under [journeys.email]".into(),
                ))
            }
        };
        let webhook = n
            .webhook
            .as_deref()
            .map(|url| {
                WebhookProvider::new(url, n.webhook_secret.as_bytes(), RetryPolicy::default())
                    .map(Arc::new)
                    .map_err(|e| Error::Setting(format!("[analytics.notify] webhook: {e}")))
            })
            .transpose()?;
        Ok(Notifier {
            letter: Some(letter),
            email,
            recipients: n.email.clone(),
            webhook,
        })
    }

    /// Whether there is anywhere to send.
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.webhook.is_none()
    }

    /// Sends review `id`; returns what that came to.
    pub async fn review(&self, id: i64, r: &Review) -> Delivery {
        let Some(letter) = &self.letter else {
            return Delivery {
                summary: "not sent".into(),
                ok: false,
            };
        };
        let subject = letter.subject(r);
        let body = json!({"type": "review", "id": id, "subject": subject, "review": r});
        let text = letter.text(r);
        let html = letter.html(r);
        let message_id = format!("review{id}.{}@flywheel", r.cadence.as_str());
        self.send("review", subject, text, html, message_id, body).await
    }

    /// Sends an alert; returns what that came to.
    pub async fn alert(&self, a: &Alert) -> Delivery {
        let subject = format!("Flywheel alert: {} — {} ({})", a.campaign, a.rule, a.action);
        let text = format!("{subject}\n\n{}\n", a.detail);
        let html = format!(
            "<p><b>{}</b></p><p>{}</p>",
            escape_html(&subject),
            escape_html(&a.detail)
        );
        // Alerts raised in one pass share `at` and often `rule` (two missed benchmarks,
        // two campaigns tripping a guardrail): the campaign and detail tell them apart,
        // else receivers that de-duplicate by Message-ID drop all but one.
        let message_id = format!(
            "alert{}.{}.{:016x}@flywheel",
            a.at,
            a.rule,
            fnv1a(&[a.campaign.as_bytes(), a.detail.as_bytes()])
        );
        let body = json!({"type": "alert", "alert": a});
        self.send("alert", subject, text, html, message_id, body).await
    }

    async fn send(
        &self,
        kind: &'static str,
        subject: String,
        text: String,
        html: String,
        message_id: String,
        body: serde_json::Value,
    ) -> Delivery {
        if self.is_empty() {
            return Delivery {
                summary: "not sent".into(),
                ok: false,
            };
        }
        let me = self.clone();
        let sent = tokio::task::spawn_blocking(move || {
            let mut parts = Vec::new();
            let mut all = true;
            if let Some(mailer) = &me.email {
                let mut ok = 0;
                let mut errors = Vec::new();
                for to in &me.recipients {
                    let msg = EmailMessage {
                        to,
                        subject: &subject,
                        html: &html,
                        text: &text,
                        message_id: &message_id,
                        unsubscribe_url: None,
                        unsubscribe_mailto: None,
                        headers: vec![("X-Flywheel-Report", kind.to_string())],
                    };
                    match mailer.send(&msg) {
                        EmailOutcome::Delivered { .. } => ok += 1,
                        EmailOutcome::Rejected { code, message } => {
                            errors.push(format!("{to}: {code} {message}"))
                        }
                        EmailOutcome::Failed { error } => errors.push(format!("{to}: {error}")),
                    }
                }
                all &= ok == me.recipients.len();
                let mut part = format!("email: sent to {ok} of {}", me.recipients.len());
                if !errors.is_empty() {
                    part.push_str(&format!(" ({})", errors.join("; ")));
                }
                parts.push(part);
            }
            if let Some(hook) = &me.webhook {
                parts.push(match hook.send(&body, std::thread::sleep) {
                    Outcome::Delivered { status, .. } => format!("webhook: HTTP {status}"),
                    Outcome::Failed { attempts, error } => {
                        all = false;
                        format!("webhook: failed after {attempts} attempts ({error})")
                    }
                });
            }
            Delivery {
                summary: parts.join("; "),
                ok: all,
            }
        })
        .await;
        let d = sent.unwrap_or_else(|e| Delivery {
            summary: format!("sending failed: {e}"),
            ok: false,
        });
        if d.ok {
            tracing::info!(summary = %d.summary, "notification sent");
        } else {
            tracing::warn!(summary = %d.summary, "notification not sent to everyone");
        }
        d
    }
}

/// 64-bit FNV-1a of `parts` (each followed by a 0 byte): a stable, ASCII-safe tag for
/// Message-IDs.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}
