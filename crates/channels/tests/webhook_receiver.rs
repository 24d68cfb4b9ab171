//! A webhook provider against a real local HTTP receiver: the receiver checks every
//! signature, answers from a script of statuses, and records what it got.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flywheel_channels::{verify, Outcome, RetryPolicy, WebhookProvider};
use serde_json::json;

const SECRET: &[u8] = b"whsec_local";

/// What the receiver saw: (signature verified, body) per request.
type Seen = Arc<Mutex<Vec<(bool, String)>>>;

/// Serves one connection per scripted status; records (signature ok, body) per request.
fn receiver(statuses: Vec<u16>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for status in statuses {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut signature) = (0usize, String::new());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    match k.to_ascii_lowercase().as_str() {
                        "content-length" => length = v.trim().parse().unwrap(),
                        "x-flywheel-signature" => signature = v.trim().to_string(),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
            let ok = verify(SECRET, &signature, &body, now, Duration::from_secs(60)).is_ok();
            log.lock().unwrap().push((ok, String::from_utf8(body).unwrap()));
            let status = if ok { status } else { 401 };
            let mut out = stream;
            write!(
                out,
                "HTTP/1.1 {status} X\r\nContent-Length: 7\r\nConnection: close\r\n\r\nanswer."
            )
            .unwrap();
        }
    });
    (url, seen)
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_delay_ms: 10,
        max_delay_ms: 40,
    }
}

#[test]
fn retries_server_errors_until_delivered_with_valid_signatures() {
    let (url, seen) = receiver(vec![503, 500, 200]);
    let provider = WebhookProvider::new(&url, SECRET, fast()).unwrap();
    let body = json!({"to": "13800000000", "text": "您的優惠券即將過期"});
    let mut waits = Vec::new();
    let outcome = provider.send(&body, |d| {
        waits.push(d);
        std::thread::sleep(d)
    });
    assert_eq!(
        outcome,
        Outcome::Delivered {
            attempts: 3,
            status: 200
        }
    );
    assert_eq!(waits, vec![Duration::from_millis(10), Duration::from_millis(20)]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|(ok, b)| *ok && b.contains("您的優惠券")));
}

#[test]
fn client_errors_fail_at_once_and_retries_run_out() {
    let (url, seen) = receiver(vec![422]);
    let provider = WebhookProvider::new(&url, SECRET, fast()).unwrap();
    let outcome = provider.send(&json!({"x": 1}), std::thread::sleep);
    assert!(
        matches!(&outcome, Outcome::Failed { attempts: 1, error } if error.starts_with("HTTP 422")),
        "{outcome:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);

    let (url, _) = receiver(vec![500, 502, 503, 504]);
    let provider = WebhookProvider::new(&url, SECRET, fast()).unwrap();
    let outcome = provider.send(&json!({"x": 2}), std::thread::sleep);
    assert!(
        matches!(&outcome, Outcome::Failed { attempts: 4, error } if error.starts_with("HTTP 504")),
        "{outcome:?}"
    );
}

#[test]
fn a_wrong_secret_is_refused_by_the_receiver() {
    let (url, seen) = receiver(vec![200]);
    let provider = WebhookProvider::new(&url, b"not-the-secret", fast()).unwrap();
    let outcome = provider.send(&json!({"x": 3}), std::thread::sleep);
    assert!(
        matches!(outcome, Outcome::Failed { attempts: 1, .. }),
        "{outcome:?}"
    );
    assert!(!seen.lock().unwrap()[0].0);
}

#[test]
fn an_unreachable_provider_is_retried_then_failed() {
    // Bind and drop to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = WebhookProvider::new(&format!("http://127.0.0.1:{port}/"), SECRET, fast()).unwrap();
    let mut sleeps = 0;
    let outcome = provider.send(&json!({}), |_| sleeps += 1);
    assert!(
        matches!(outcome, Outcome::Failed { attempts: 4, .. }),
        "{outcome:?}"
    );
    assert_eq!(sleeps, 3);
}
