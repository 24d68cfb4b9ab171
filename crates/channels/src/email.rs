//! Email over SMTP (issue 6 §4): a multipart message handed to a relay.
//!
//! A message ([`SmtpEmail::build`]) is `multipart/alternative` with a plain-text and an
//! HTML part, both UTF-8; non-ASCII headers are RFC 2047 encoded and bodies quoted-
//! printable or base64, so the whole message is 7-bit and any relay takes it. Its
//! `Message-ID` is the caller's deterministic id, so a retried send is recognisably the
//! same message. Marketing mail carries `List-Unsubscribe` (RFC 2369) and, with an https
//! link, `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), which mailbox
//! providers require of bulk senders.
//!
//! A send ([`SmtpEmail::send`]) is one attempt over a pooled connection on the calling
//! thread (callers run it on a blocking thread) and comes to an [`EmailOutcome`]: a 2xx
//! delivers, a permanent 5xx rejects (retrying cannot help), and a transient 4xx or a
//! transport error fails retryably.

use std::error::Error as _;
use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{Message, SmtpTransport, Transport};
use serde::{Deserialize, Serialize};

/// How the connection to the relay is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text: a relay on this machine or a trusted network (ports 25, 1025).
    None,
    /// Plain text upgraded with STARTTLS, which the relay must offer (port 587).
    StartTls,
    /// TLS from the first byte, "implicit TLS" (port 465).
    Tls,
}

impl SmtpTls {
    /// The encryption conventional on `port`: [`SmtpTls::Tls`] on 465 and
    /// [`SmtpTls::StartTls`] on 587 (RFC 8314), [`SmtpTls::None`] elsewhere (25, 1025).
    pub fn default_for_port(port: u16) -> Self {
        match port {
            465 => SmtpTls::Tls,
            587 => SmtpTls::StartTls,
            _ => SmtpTls::None,
        }
    }
}

/// How to reach the SMTP relay.
///
/// In configuration `tls` may be left out: it is then the encryption conventional on the
/// port ([`SmtpTls::default_for_port`]); `timeout_secs` defaults to 10. `Debug` shows
/// the password as `***`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SmtpSettingsFile")]
pub struct SmtpSettings {
    /// The relay's host name or IP address (also the name its TLS certificate must bear).
    pub host: String,
    /// The relay's port.
    pub port: u16,
    /// How the connection is encrypted.
    pub tls: SmtpTls,
    /// The login, when the relay wants one (with `password`).
    pub username: Option<String>,
    /// The password, when the relay wants one (with `username`).
    pub password: Option<String>,
    /// The sender, e.g. `Shop <shop@example.com>`: the `From` header and the envelope
    /// sender.
    pub from: String,
    /// The longest the relay may take to connect or to answer one command, in seconds.
    pub timeout_secs: u64,
    /// Connections kept open to the relay, and sends in flight at once (default 4):
    /// relays limit concurrent connections, and a message whose connection drops before
    /// its `250` may still be delivered — fewer in flight, fewer such doubts.
    pub max_connections: u32,
}

/// [`SmtpSettings`] as written in configuration, with the defaults still to apply.
#[derive(Deserialize)]
struct SmtpSettingsFile {
    host: String,
    port: u16,
    #[serde(default)]
    tls: Option<SmtpTls>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    from: String,
    #[serde(default = "default_timeout_secs")]
    timeout_secs: u64,
    #[serde(default = "default_max_connections")]
    max_connections: u32,
}

fn default_max_connections() -> u32 {
    4
}

fn default_timeout_secs() -> u64 {
    10
}

impl From<SmtpSettingsFile> for SmtpSettings {
    fn from(f: SmtpSettingsFile) -> Self {
        Self {
            tls: f.tls.unwrap_or(SmtpTls::default_for_port(f.port)),
            host: f.host,
            port: f.port,
            username: f.username,
            password: f.password,
            from: f.from,
            timeout_secs: f.timeout_secs,
            max_connections: f.max_connections,
        }
    }
}

impl std::fmt::Debug for SmtpSettings {
    /// Every field but the password, which shows as `***` when set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// One email to one recipient, as rendered for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage<'a> {
    /// The recipient, `buyer@example.com` or `王小明 <buyer@example.com>`.
    pub to: &'a str,
    /// The subject (any Unicode; encoded per RFC 2047).
    pub subject: &'a str,
    /// The HTML part.
    pub html: &'a str,
    /// The plain-text part.
    pub text: &'a str,
    /// The `Message-ID` without angle brackets, `left@right` in dot-atoms, derived by
    /// the caller from the effect key (e.g. `run123.step4@flywheel`), so a retry of the
    /// same send carries the same id.
    pub message_id: &'a str,
    /// The unsubscribe link; with `https://` it is also announced as one-click (RFC 8058).
    pub unsubscribe_url: Option<&'a str>,
    /// The unsubscribe mailbox, `unsubscribe@shop.example` (a leading `mailto:` is
    /// accepted), optionally with `?subject=…`.
    pub unsubscribe_mailto: Option<&'a str>,
    /// Extra headers, e.g. `("X-Flywheel-Campaign", "c42")`; a name the message already
    /// sets (From, To, Subject, …) or an address header (Cc, Bcc, …) is refused.
    pub headers: Vec<(&'a str, String)>,
}

/// What one send came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailOutcome {
    /// The relay accepted the message.
    Delivered {
        /// The relay's reply, e.g. `250 2.0.0 Ok: queued as 4F2A1`.
        response: String,
    },
    /// Refused for good: a permanent 5xx reply, or a message that could not be built.
    /// Retrying cannot help.
    Rejected {
        /// The SMTP reply code, or 0 when the message never reached the relay (it could
        /// not be built, e.g. a malformed recipient address).
        code: u16,
        /// The relay's text, or why the message could not be built.
        message: String,
    },
    /// Not sent this time: a transient 4xx reply, a timeout, a refused connection or a
    /// TLS failure. Worth retrying.
    Failed {
        /// What went wrong.
        error: String,
    },
}

impl EmailOutcome {
    /// Whether a later attempt may succeed (only [`EmailOutcome::Failed`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, EmailOutcome::Failed { .. })
    }
}

/// Why a mailer could not be set up or a message could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    /// A sender or recipient that is not a mailbox (`Name <local@domain>` or
    /// `local@domain`).
    #[error("bad address: {0}")]
    BadAddress(String),
    /// Settings that cannot work (no host, a zero timeout, half a login, a password
    /// over plain text to another machine).
    #[error("bad SMTP settings: {0}")]
    BadSettings(String),
    /// A message that cannot be built (a malformed Message-ID, unsubscribe link or
    /// extra header).
    #[error("cannot build the email: {0}")]
    Build(String),
}

/// A mailer: a pooled connection to one relay and the sender it sends as.
#[derive(Clone)]
pub struct SmtpEmail {
    transport: SmtpTransport,
    from: Mailbox,
    relay: String,
    slots: std::sync::Arc<Slots>,
}

/// A counting semaphore for blocking threads: at most `max_connections` sends at once
/// (lettre's pool caps idle connections, not concurrent ones).
#[derive(Debug)]
struct Slots {
    free: std::sync::Mutex<u32>,
    freed: std::sync::Condvar,
}

impl Slots {
    fn take(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.0.freed.notify_one();
    }
}

impl std::fmt::Debug for SmtpEmail {
    /// The relay and the sender (never the credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpEmail")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// Headers [`SmtpEmail::build`] sets itself, or that would add recipients or senders:
/// an extra header may not use these names.
const RESERVED_HEADERS: [&str; 16] = [
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Return-Path",
    "DKIM-Signature",
];

/// Permanent replies that refuse the login or demand TLS first (RFC 4954 §6: 530, 534,
/// 535, 538): every message would meet them until the settings are fixed, so a send that
/// meets one fails retryably instead of rejecting the message.
pub const SETUP_CODES: [u16; 4] = [530, 534, 535, 538];

impl SmtpEmail {
    /// A mailer for `settings`: checks the sender and the settings and prepares the
    /// connection pool (nothing connects until the first send).
    pub fn new(settings: &SmtpSettings) -> Result<Self, EmailError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| EmailError::BadAddress(format!("from {:?}: {e}", settings.from)))?;
        let host = settings.host.trim();
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(EmailError::BadSettings(format!("host {:?}", settings.host)));
        }
        if settings.port == 0 {
            return Err(EmailError::BadSettings("port 0".into()));
        }
        if settings.timeout_secs == 0 {
            return Err(EmailError::BadSettings("timeout_secs must be at least 1".into()));
        }
        if settings.max_connections == 0 {
            return Err(EmailError::BadSettings(
                "max_connections must be at least 1".into(),
            ));
        }
        let credentials = match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.clone())),
            (None, None) => None,
            _ => {
                return Err(EmailError::BadSettings(
                    "username and password go together".into(),
                ))
            }
        };
        if credentials.is_some() && settings.tls == SmtpTls::None && !is_loopback(host) {
            return Err(EmailError::BadSettings(format!(
                "a password would cross the network in plain text to {host}: set tls to starttls or tls"
            )));
        }
        let tls_parameters =
            || TlsParameters::new(host.to_string()).map_err(|e| EmailError::BadSettings(format!("TLS: {e}")));
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder = SmtpTransport::builder_dangerous(host)
            .port(settings.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(settings.timeout_secs)))
            .pool_config(PoolConfig::new().max_size(settings.max_connections));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        Ok(Self {
            transport: builder.build(),
            from,
            relay: format!("{host}:{}", settings.port),
            slots: std::sync::Arc::new(Slots {
                free: std::sync::Mutex::new(settings.max_connections),
                freed: std::sync::Condvar::new(),
            }),
        })
    }

    /// The sender every message goes out as.
    pub fn sender(&self) -> &Mailbox {
        &self.from
    }

    /// The message for `msg`: `multipart/alternative` (text, then HTML), `From` the
    /// configured sender, `Message-ID: <message_id>`, a `Date`, the unsubscribe headers
    /// when a link or mailbox is given, and the extra headers.
    pub fn build(&self, msg: &EmailMessage) -> Result<Message, EmailError> {
        let to: Mailbox = msg
            .to
            .parse()
            .map_err(|e| EmailError::BadAddress(format!("to {:?}: {e}", msg.to)))?;
        check_message_id(msg.message_id)?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject)
            .date_now()
            .message_id(Some(format!("<{}>", msg.message_id)));
        let mut unsubscribe = Vec::new();
        if let Some(url) = msg.unsubscribe_url {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(str::is_empty) {
                return Err(EmailError::Build(format!(
                    "unsubscribe URL {url:?} must be http:// or https://"
                )));
            }
            check_uri("unsubscribe URL", url)?;
            unsubscribe.push(format!("<{url}>"));
        }
        if let Some(mailto) = msg.unsubscribe_mailto {
            let address = mailto.strip_prefix("mailto:").unwrap_or(mailto);
            check_uri("unsubscribe mailto", address)?;
            if !address.split('?').next().is_some_and(|a| a.contains('@')) {
                return Err(EmailError::Build(format!(
                    "unsubscribe mailto {mailto:?} has no address"
                )));
            }
            unsubscribe.push(format!("<mailto:{address}>"));
        }
        if !unsubscribe.is_empty() {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                unsubscribe.join(", "),
            ));
        }
        // RFC 8058: one-click only over HTTPS (a plain-http link is still listed, for a
        // development server, but mail providers will not POST to it).
        if msg.unsubscribe_url.is_some_and(|u| u.starts_with("https://")) {
            builder = builder.raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_string(),
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in &msg.headers {
            if RESERVED_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                return Err(EmailError::Build(format!(
                    "extra header {name:?} is set by the mailer or would change who sends or gets the message"
                )));
            }
            if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                return Err(EmailError::Build(format!("extra header {name:?} given twice")));
            }
            seen.push(name);
            builder = builder.raw_header(HeaderValue::new(header_name(name)?, check_value(name, value)?));
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                msg.text.to_string(),
                msg.html.to_string(),
            ))
            .map_err(|e| EmailError::Build(e.to_string()))
    }

    /// Builds and sends `msg` in one attempt. A message that cannot be built is
    /// [`EmailOutcome::Rejected`] with code 0; a permanent (5xx) reply is `Rejected`
    /// with its code, except a refused login or a demand for TLS ([`SETUP_CODES`]),
    /// which fault the relay settings rather than the message; that and anything else
    /// that stops it (4xx, timeout, connection, TLS) is [`EmailOutcome::Failed`], to be
    /// retried.
    pub fn send(&self, msg: &EmailMessage) -> EmailOutcome {
        let _slot = self.slots.take();
        let message = match self.build(msg) {
            Ok(m) => m,
            Err(e) => {
                return EmailOutcome::Rejected {
                    code: 0,
                    message: e.to_string(),
                }
            }
        };
        match self.transport.send(&message) {
            Ok(response) => {
                let text: Vec<&str> = response.message().collect();
                EmailOutcome::Delivered {
                    response: format!("{} {}", response.code(), text.join(" "))
                        .trim_end()
                        .to_string(),
                }
            }
            Err(e)
                if e.is_permanent() && !e.status().is_some_and(|c| SETUP_CODES.contains(&u16::from(c))) =>
            {
                EmailOutcome::Rejected {
                    code: e.status().map(u16::from).unwrap_or(500),
                    message: e.source().map(|s| s.to_string()).unwrap_or_else(|| e.to_string()),
                }
            }
            Err(e) => EmailOutcome::Failed {
                error: format!("{}: {e}", self.relay),
            },
        }
    }
}

/// Whether `host` is this machine (`localhost` or a loopback address).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// RFC 5322 `atext`: what a dot-atom is made of besides dots.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

/// A Message-ID without its brackets must be `dot-atom@dot-atom` (RFC 5322 §3.6.4).
fn check_message_id(id: &str) -> Result<(), EmailError> {
    let dot_atom = |s: &str| !s.is_empty() && s.split('.').all(|a| !a.is_empty() && a.chars().all(is_atext));
    match id.split_once('@') {
        Some((left, right)) if dot_atom(left) && dot_atom(right) => Ok(()),
        _ => Err(EmailError::Build(format!(
            "message id {id:?} is not left@right in dot-atoms (without angle brackets)"
        ))),
    }
}

/// A URI inside `<…>` in List-Unsubscribe: visible ASCII without `<`, `>` or `,`
/// (RFC 2369 wants commas and whitespace percent-encoded).
fn check_uri(what: &str, uri: &str) -> Result<(), EmailError> {
    if !uri.is_empty() && uri.bytes().all(|b| b.is_ascii_graphic() && !b"<>,".contains(&b)) {
        Ok(())
    } else {
        Err(EmailError::Build(format!(
            "{what} {uri:?} must be visible ASCII without <, > or , (percent-encode them)"
        )))
    }
}

/// An extra header's name: visible ASCII without `:` (RFC 5322 `ftext`).
fn header_name(name: &str) -> Result<HeaderName, EmailError> {
    let bad = || {
        EmailError::Build(format!(
            "extra header name {name:?} is not visible ASCII without ':'"
        ))
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(bad());
    }
    HeaderName::new_from_ascii(name.to_string()).map_err(|_| bad())
}

/// An extra header's value: any text without control characters (no line breaks that
/// could start another header); non-ASCII is RFC 2047 encoded.
fn check_value(name: &str, value: &str) -> Result<String, EmailError> {
    if value.chars().any(char::is_control) {
        return Err(EmailError::Build(format!(
            "extra header {name:?} has a control character in its value"
        )));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: 1025,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "優選商店 <shop@example.com>".into(),
            timeout_secs: 10,
            max_connections: 4,
        }
    }

    fn message() -> EmailMessage<'static> {
        EmailMessage {
            to: "王小明 <buyer@example.com>",
            subject: "您的購物車還有商品",
            html: "<p>您好</p>",
            text: "您好",
            message_id: "run123.step4@flywheel",
            unsubscribe_url: Some("https://shop.example/u/abc_-123"),
            unsubscribe_mailto: Some("mailto:unsubscribe@shop.example?subject=unsubscribe"),
            headers: vec![("X-Flywheel-Campaign", "c42".to_string())],
        }
    }

    fn raw(m: &Message) -> String {
        String::from_utf8(m.formatted()).unwrap()
    }

    #[test]
    fn settings_default_tls_by_port_and_timeout_and_spell_tls_lowercase() {
        let s: SmtpSettings =
            serde_json::from_str(r#"{"host":"smtp.example.com","port":465,"from":"a@b.c"}"#).unwrap();
        assert_eq!((s.tls, s.timeout_secs), (SmtpTls::Tls, 10));
        let s: SmtpSettings =
            serde_json::from_str(r#"{"host":"smtp.example.com","port":587,"from":"a@b.c"}"#).unwrap();
        assert_eq!(s.tls, SmtpTls::StartTls);
        for port in [25, 1025] {
            let json = format!(r#"{{"host":"localhost","port":{port},"from":"a@b.c"}}"#);
            let s: SmtpSettings = serde_json::from_str(&json).unwrap();
            assert_eq!(s.tls, SmtpTls::None);
        }
        let s: SmtpSettings = serde_json::from_str(
            r#"{"host":"h","port":2525,"tls":"starttls","from":"a@b.c","timeout_secs":3}"#,
        )
        .unwrap();
        assert_eq!((s.tls, s.timeout_secs), (SmtpTls::StartTls, 3));
        let back: SmtpSettings = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(serde_json::to_string(&SmtpTls::None).unwrap(), r#""none""#);
        assert_eq!(serde_json::to_string(&SmtpTls::Tls).unwrap(), r#""tls""#);
    }

    #[test]
    fn debug_hides_the_password() {
        let s = SmtpSettings {
            username: Some("u".into()),
            password: Some("hunter2".into()),
            ..settings()
        };
        let shown = format!("{s:?} {:?}", SmtpEmail::new(&s).unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("***"));
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let bad = |s: SmtpSettings| SmtpEmail::new(&s).unwrap_err();
        assert!(matches!(
            bad(SmtpSettings {
                from: "not an address".into(),
                ..settings()
            }),
            EmailError::BadAddress(_)
        ));
        assert!(matches!(
            bad(SmtpSettings {
                host: " ".into(),
                ..settings()
            }),
            EmailError::BadSettings(_)
        ));
        assert!(matches!(
            bad(SmtpSettings {
                timeout_secs: 0,
                ..settings()
            }),
            EmailError::BadSettings(_)
        ));
        assert!(matches!(
            bad(SmtpSettings {
                username: Some("u".into()),
                ..settings()
            }),
            EmailError::BadSettings(_)
        ));
        // A password in plain text may go to this machine, not across the network.
        let login = SmtpSettings {
            username: Some("u".into()),
            password: Some("p".into()),
            ..settings()
        };
        assert!(SmtpEmail::new(&login).is_ok());
        assert!(matches!(
            bad(SmtpSettings {
                host: "smtp.example.com".into(),
                ..login.clone()
            }),
            EmailError::BadSettings(_)
        ));
        assert!(SmtpEmail::new(&SmtpSettings {
            host: "smtp.example.com".into(),
            port: 587,
            tls: SmtpTls::StartTls,
            ..login
        })
        .is_ok());
    }

    #[test]
    fn builds_a_seven_bit_multipart_with_the_list_headers() {
        let mailer = SmtpEmail::new(&settings()).unwrap();
        let m = mailer.build(&message()).unwrap();
        let raw = raw(&m);
        assert!(raw.is_ascii(), "{raw}");
        assert!(raw.contains("Message-ID: <run123.step4@flywheel>\r\n"), "{raw}");
        assert!(raw.contains(
            "List-Unsubscribe: <https://shop.example/u/abc_-123>,\r\n <mailto:unsubscribe@shop.example?subject=unsubscribe>\r\n"
        ) || raw.contains(
            "List-Unsubscribe: <https://shop.example/u/abc_-123>, <mailto:unsubscribe@shop.example?subject=unsubscribe>\r\n"
        ), "{raw}");
        assert!(
            raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{raw}"
        );
        assert!(raw.contains("X-Flywheel-Campaign: c42\r\n"), "{raw}");
        assert!(raw.contains("Subject: =?utf-8?"), "{raw}");
        assert!(raw.contains("Content-Type: multipart/alternative;"), "{raw}");
        assert!(raw.contains("\r\nDate: "), "{raw}");
        assert_eq!(m.envelope().to().len(), 1);
        assert_eq!(
            m.envelope().from().map(|a| a.to_string()),
            Some("shop@example.com".into())
        );
    }

    #[test]
    fn one_click_needs_a_url_and_mailto_alone_gets_no_post_header() {
        let mailer = SmtpEmail::new(&settings()).unwrap();
        let m = mailer
            .build(&EmailMessage {
                unsubscribe_url: None,
                unsubscribe_mailto: Some("unsubscribe@shop.example"),
                ..message()
            })
            .unwrap();
        let raw = raw(&m);
        assert!(
            raw.contains("List-Unsubscribe: <mailto:unsubscribe@shop.example>\r\n"),
            "{raw}"
        );
        assert!(!raw.contains("List-Unsubscribe-Post"), "{raw}");
        let m = mailer
            .build(&EmailMessage {
                unsubscribe_url: None,
                unsubscribe_mailto: None,
                headers: vec![],
                ..message()
            })
            .unwrap();
        assert!(!raw_has(&m, "List-Unsubscribe"));
    }

    fn raw_has(m: &Message, name: &str) -> bool {
        m.headers().get_raw(name).is_some()
    }

    #[test]
    fn malformed_inputs_are_refused_before_sending() {
        let mailer = SmtpEmail::new(&settings()).unwrap();
        let build = |m: EmailMessage| mailer.build(&m).unwrap_err();
        assert!(matches!(
            build(EmailMessage {
                to: "nobody",
                ..message()
            }),
            EmailError::BadAddress(_)
        ));
        for id in [
            "<run1@flywheel>",
            "run1",
            "run1@",
            "a..b@c",
            "run 1@flywheel",
            "a@b@c",
        ] {
            assert!(
                matches!(
                    build(EmailMessage {
                        message_id: id,
                        ..message()
                    }),
                    EmailError::Build(_)
                ),
                "{id}"
            );
        }
        for url in [
            "ftp://shop.example/u/1",
            "https://",
            "https://shop.example/u/a b",
            "https://x/<y>",
        ] {
            assert!(
                matches!(
                    build(EmailMessage {
                        unsubscribe_url: Some(url),
                        ..message()
                    }),
                    EmailError::Build(_)
                ),
                "{url}"
            );
        }
        assert!(matches!(
            build(EmailMessage {
                unsubscribe_mailto: Some("mailto:?subject=x"),
                ..message()
            }),
            EmailError::Build(_)
        ));
        for (name, value) in [
            ("Bcc", "spy@example.com"),
            ("subject", "another"),
            ("X-A\r\nBcc", "spy@example.com"),
            ("X-A:", "v"),
            ("", "v"),
            ("X-Ok", "line\r\nBcc: spy@example.com"),
        ] {
            let err = build(EmailMessage {
                headers: vec![(name, value.to_string())],
                ..message()
            });
            assert!(matches!(err, EmailError::Build(_)), "{name:?}: {err:?}");
        }
        assert!(matches!(
            build(EmailMessage {
                headers: vec![("X-A", "1".into()), ("x-a", "2".into())],
                ..message()
            }),
            EmailError::Build(_)
        ));
    }

    #[test]
    fn a_message_that_cannot_be_built_is_rejected_without_connecting() {
        // Port 9 on loopback: nothing connects, as the build fails first.
        let mailer = SmtpEmail::new(&SmtpSettings {
            port: 9,
            ..settings()
        })
        .unwrap();
        let outcome = mailer.send(&EmailMessage {
            to: "nobody",
            ..message()
        });
        assert!(
            matches!(&outcome, EmailOutcome::Rejected { code: 0, message } if message.contains("nobody")),
            "{outcome:?}"
        );
        assert!(!outcome.is_retryable());
    }
}
