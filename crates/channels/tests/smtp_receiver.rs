//! The SMTP mailer against a real local SMTP receiver: the receiver speaks enough SMTP
//! to take a message (or to refuse it with a scripted reply), records the envelope and
//! the raw message, and the test parses what arrived with an independent MIME parser.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use flywheel_channels::{EmailError, EmailMessage, EmailOutcome, SmtpEmail, SmtpSettings, SmtpTls};
use mailparse::{addrparse_header, parse_mail, MailAddr, MailHeaderMap};

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Takes every message.
    Accept,
    /// Answers RCPT with 550 (no such user).
    RejectRcpt,
    /// Answers the end of DATA with 451 (try again later).
    DeferData,
    /// Offers AUTH and refuses every login with 535.
    RefuseLogin,
}

/// What the receiver got.
#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    mail_from: Vec<String>,
    rcpt_to: Vec<String>,
    /// Each message's raw text, dot-stuffing undone.
    data: Vec<String>,
}

/// Listens on 127.0.0.1:0 and serves connections one at a time until the test ends.
fn receiver(mode: Mode) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            log.lock().unwrap().connections += 1;
            // A client that hangs up mid-session ends the session, not the receiver.
            let _ = session(stream, mode, &log);
        }
    });
    (port, seen)
}

fn session(stream: TcpStream, mode: Mode, log: &Mutex<Seen>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    out.write_all(b"220 test.local ESMTP\r\n")?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => match mode {
                Mode::RefuseLogin => out.write_all(b"250-test.local\r\n250 AUTH PLAIN LOGIN\r\n")?,
                _ => out.write_all(b"250 test.local\r\n")?,
            },
            "AUTH" => out.write_all(b"535 5.7.8 Authentication credentials invalid\r\n")?,
            "MAIL" => {
                log.lock().unwrap().mail_from.push(command);
                out.write_all(b"250 2.1.0 Ok\r\n")?
            }
            "RCPT" => {
                log.lock().unwrap().rcpt_to.push(command);
                match mode {
                    Mode::RejectRcpt => out.write_all(b"550 5.1.1 <buyer@example.com>: no such user\r\n")?,
                    _ => out.write_all(b"250 2.1.5 Ok\r\n")?,
                }
            }
            "DATA" => {
                out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if reader.read_line(&mut l)? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                log.lock().unwrap().data.push(data);
                match mode {
                    Mode::DeferData => out.write_all(b"451 4.3.0 Try again later\r\n")?,
                    _ => out.write_all(b"250 2.0.0 Ok: queued as 4F2A1\r\n")?,
                }
            }
            "QUIT" => {
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"250 2.0.0 Ok\r\n")?,
        }
    }
}

fn settings(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "優選商店 <shop@example.com>".into(),
        timeout_secs: 5,
        max_connections: 4,
    }
}

const SUBJECT: &str = "您的購物車還有商品";
const TEXT: &str = "王小明您好：\n\n您的購物車還有 2 件商品，結帳享 9 折。\n.此行以句點開頭\n退訂：https://shop.example/u/tok\n";
const HTML: &str = "<html><body><p>王小明您好：</p><p>您的購物車還有 <b>2</b> 件商品，結帳享 9 折。</p><a href=\"https://shop.example/u/tok\">退訂</a></body></html>";

fn message(id: &str) -> EmailMessage<'_> {
    EmailMessage {
        to: "王小明 <buyer@example.com>",
        subject: SUBJECT,
        html: HTML,
        text: TEXT,
        message_id: id,
        unsubscribe_url: Some("https://shop.example/u/tok"),
        unsubscribe_mailto: Some("unsubscribe@shop.example?subject=unsubscribe"),
        headers: vec![
            ("X-Flywheel-Campaign", "cart-abandon-42".to_string()),
            ("X-Flywheel-Journey", "雙11 挽回".to_string()),
        ],
    }
}

#[test]
fn a_chinese_multipart_message_arrives_intact_over_one_pooled_connection() {
    let (port, seen) = receiver(Mode::Accept);
    let mailer = SmtpEmail::new(&settings(port)).unwrap();
    for id in ["run123.step4@flywheel", "run123.step5@flywheel"] {
        let outcome = mailer.send(&message(id));
        assert_eq!(
            outcome,
            EmailOutcome::Delivered {
                response: "250 2.0.0 Ok: queued as 4F2A1".into()
            }
        );
    }
    let seen = seen.lock().unwrap();
    // The pool kept the first connection for the second message.
    assert_eq!(seen.connections, 1);
    assert_eq!(seen.mail_from, vec!["MAIL FROM:<shop@example.com>"; 2]);
    assert_eq!(seen.rcpt_to, vec!["RCPT TO:<buyer@example.com>"; 2]);
    assert_eq!(seen.data.len(), 2);
    let raw = &seen.data[0];
    assert!(raw.is_ascii(), "the message must be 7-bit:\n{raw}");

    let mail = parse_mail(raw.as_bytes()).unwrap();
    let h = &mail.headers;
    assert_eq!(h.get_first_value("Subject").as_deref(), Some(SUBJECT));
    assert_eq!(
        h.get_first_value("Message-ID").as_deref(),
        Some("<run123.step4@flywheel>")
    );
    let unsubscribe = h.get_first_value("List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with("<https://shop.example/u/tok>"),
        "{unsubscribe}"
    );
    assert!(
        unsubscribe.contains("<mailto:unsubscribe@shop.example?subject=unsubscribe>"),
        "{unsubscribe}"
    );
    assert_eq!(
        h.get_first_value("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        h.get_first_value("X-Flywheel-Campaign").as_deref(),
        Some("cart-abandon-42")
    );
    assert_eq!(
        h.get_first_value("X-Flywheel-Journey").as_deref(),
        Some("雙11 挽回")
    );
    assert!(h.get_first_value("Date").is_some());
    let from = addrparse_header(h.get_first_header("From").unwrap()).unwrap();
    match &from[..] {
        [MailAddr::Single(s)] => {
            assert_eq!(s.addr, "shop@example.com");
            assert_eq!(s.display_name.as_deref(), Some("優選商店"));
        }
        other => panic!("{other:?}"),
    }
    let to = addrparse_header(h.get_first_header("To").unwrap()).unwrap();
    assert_eq!(to.extract_single_info().unwrap().addr, "buyer@example.com");

    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    let parts: Vec<(String, String)> = mail
        .subparts
        .iter()
        .map(|p| (p.ctype.mimetype.clone(), p.get_body().unwrap()))
        .collect();
    assert_eq!(parts.len(), 2, "{parts:?}");
    // Text first: clients show the last alternative they can render.
    assert_eq!(parts[0].0, "text/plain");
    assert_eq!(parts[1].0, "text/html");
    // Line ends travel as CRLF; compare with the source's LF.
    assert_eq!(parts[0].1.replace("\r\n", "\n"), TEXT);
    assert_eq!(parts[1].1.replace("\r\n", "\n"), HTML);

    let second = parse_mail(seen.data[1].as_bytes()).unwrap();
    assert_eq!(
        second.headers.get_first_value("Message-ID").as_deref(),
        Some("<run123.step5@flywheel>")
    );
}

#[test]
fn a_550_recipient_is_rejected_for_good() {
    let (port, seen) = receiver(Mode::RejectRcpt);
    let mailer = SmtpEmail::new(&settings(port)).unwrap();
    let outcome = mailer.send(&message("run1.step1@flywheel"));
    match &outcome {
        EmailOutcome::Rejected { code, message } => {
            assert_eq!(*code, 550);
            assert!(message.contains("no such user"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!outcome.is_retryable());
    assert!(seen.lock().unwrap().data.is_empty());
}

#[test]
fn a_451_at_end_of_data_fails_retryably() {
    let (port, seen) = receiver(Mode::DeferData);
    let mailer = SmtpEmail::new(&settings(port)).unwrap();
    let outcome = mailer.send(&message("run1.step2@flywheel"));
    assert!(
        matches!(&outcome, EmailOutcome::Failed { error } if error.contains("451")),
        "{outcome:?}"
    );
    assert!(outcome.is_retryable());
    assert_eq!(seen.lock().unwrap().data.len(), 1);
}

#[test]
fn a_refused_login_fails_retryably_as_the_settings_are_at_fault() {
    let (port, seen) = receiver(Mode::RefuseLogin);
    let mailer = SmtpEmail::new(&SmtpSettings {
        username: Some("shop".into()),
        password: Some("wrong".into()),
        ..settings(port)
    })
    .unwrap();
    let outcome = mailer.send(&message("run1.step6@flywheel"));
    assert!(
        matches!(&outcome, EmailOutcome::Failed { error } if error.contains("535")),
        "{outcome:?}"
    );
    let seen = seen.lock().unwrap();
    assert!(seen.mail_from.is_empty() && seen.data.is_empty());
}

#[test]
fn a_refused_connection_fails_retryably() {
    // Bind and drop to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mailer = SmtpEmail::new(&settings(port)).unwrap();
    let outcome = mailer.send(&message("run1.step3@flywheel"));
    assert!(
        matches!(&outcome, EmailOutcome::Failed { error } if error.contains(&port.to_string())),
        "{outcome:?}"
    );
}

#[test]
fn a_bad_sender_is_refused_at_setup() {
    for from in ["shop", "Shop <shop@>", "<>", ""] {
        let err = SmtpEmail::new(&SmtpSettings {
            from: from.into(),
            ..settings(25)
        })
        .unwrap_err();
        assert!(matches!(err, EmailError::BadAddress(_)), "{from:?}: {err:?}");
    }
}
