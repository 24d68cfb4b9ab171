//! Issue 14, items 3, 7 and 8, on the real binary (SQLite and PostgreSQL where the store
//! is involved):
//!
//! - a delivery-status callback signed with one provider's secret for a message of
//!   another channel is refused and changes nothing;
//! - a signed callback replayed within its window is refused and changes nothing; a
//!   failure report never overwrites `delivered` (nor an open); a 500 KB `reason` is not
//!   stored whole; the route's body is bounded;
//! - forged tracking and unsubscribe tokens write nothing;
//! - a campaign name with a newline and an ANSI escape stays on its log line (text and
//!   JSON log formats).
//!
//! Messages come from a journey that sends to a local webhook provider (SMS and app
//! push) answering 200.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Backend, Server, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

const SMS_SECRET: &str = "whsec_sms_provider";
const PUSH_SECRET: &str = "whsec_push_provider";

/// A webhook provider that takes every message (200) until the test ends.
fn provider() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/send", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut out = stream;
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    url
}

/// A server whose journey has sent one SMS (to `s`) and one push (to `p`).
struct Shop {
    server: Server,
    sms: String,
    push: String,
}

fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn admin_post(s: &Server, path: &str, body: &Value) -> common::Reply {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    s.post_raw(
        path,
        None,
        &[("Authorization", &auth)],
        body.to_string().as_bytes(),
    )
}

fn message(s: &Server, user: &str) -> Value {
    let r = s.get(&format!("/api/v1/messages?user_id={user}"));
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["messages"][0].clone()
}

impl Shop {
    fn start(site: &Site) -> Shop {
        std::fs::create_dir_all(&site.data_dir).unwrap();
        let url = provider();
        let config = site.data_dir.join("flywheel.toml");
        std::fs::write(
            &config,
            format!(
                "[journeys.delivery]\nquiet_hours = \"00:00-00:00\"\n\n\
                 [journeys.providers.sms]\nurl = \"{url}\"\nsecret = \"{SMS_SECRET}\"\n\n\
                 [journeys.providers.push]\nurl = \"{url}\"\nsecret = \"{PUSH_SECRET}\"\n"
            ),
        )
        .unwrap();
        let key = site.write_key();
        let server = site.serve(&["--config", config.to_str().unwrap()]);
        let journey = json!({
            "name": "order_notice",
            "trigger": {"event": {"name": "Order Completed"}},
            "steps": [{"id": "notice", "type": "send", "channels": ["push", "sms"],
                       "category": "transactional", "subject": "訂單", "text": "您的訂單已確認"}]
        });
        let r = admin_post(&server, "/api/v1/journeys", &journey);
        assert_eq!(r.status, 201, "{:?}", r.body);
        let r = admin_post(&server, "/api/v1/journeys/order_notice/start", &json!({}));
        assert_eq!(r.status, 200, "{:?}", r.body);
        let batch = json!({"batch": [
            {"type": "identify", "userId": "s", "messageId": "id-s", "traits": {"phone": "13900000001"}},
            {"type": "identify", "userId": "p", "messageId": "id-p", "traits": {"push_token": "tok-p"}},
            {"type": "track", "userId": "s", "event": "Order Completed", "messageId": "o-s",
             "properties": {"order_id": "o-s", "total": 10, "products": []}},
            {"type": "track", "userId": "p", "event": "Order Completed", "messageId": "o-p",
             "properties": {"order_id": "o-p", "total": 10, "products": []}}
        ]});
        let r = server.post("/v1/batch", Some(&key), &batch);
        assert_eq!(r.status, 200, "{:?}", r.body);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, p) = (message(&server, "s"), message(&server, "p"));
            if s["status"] == "sent" && p["status"] == "sent" {
                assert_eq!(
                    (s["channel"].as_str(), p["channel"].as_str()),
                    (Some("sms"), Some("push"))
                );
                let (sms, push) = (s["id"].as_str().unwrap().into(), p["id"].as_str().unwrap().into());
                return Shop { server, sms, push };
            }
            assert!(Instant::now() < deadline, "messages not sent: {s} {p}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Posts `body` to `channel`'s callback, signed with `secret` at time `t`.
    fn callback_at(&self, channel: &str, secret: &str, t: i64, body: &[u8]) -> common::Reply {
        let signature = flywheel_channels::sign(secret.as_bytes(), t, body);
        self.server.post_raw(
            &format!("/v1/channels/{channel}/status"),
            None,
            &[("X-Flywheel-Signature", &signature)],
            body,
        )
    }

    fn callback(&self, channel: &str, secret: &str, body: &Value) -> common::Reply {
        self.callback_at(channel, secret, now_s(), body.to_string().as_bytes())
    }

    fn row(&self, user: &str) -> Value {
        message(&self.server, user)
    }
}

/// Issue 14 item 3: the SMS provider's secret cannot change a push message, whatever it
/// reports, and the refusal comes before any write.
fn cross_channel_callback_changes_nothing(site: Site) {
    let shop = Shop::start(&site);
    let before = shop.row("p");
    for status in ["bounced", "failed", "rejected", "delivered", "opened", "clicked"] {
        let body = json!({"message_id": shop.push, "status": status, "reason": "550 via sms"});
        let r = shop.callback("sms", SMS_SECRET, &body);
        assert_eq!(
            shop.row("p"),
            before,
            "{status} on the wrong channel changed the message"
        );
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (404, Some("not_found")),
            "{status}: {:?}",
            r.body
        );
        // The push provider's secret on the SMS route is a bad signature.
        let r = shop.callback("sms", PUSH_SECRET, &body);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (401, Some("bad_signature")),
            "{:?}",
            r.body
        );
        assert_eq!(
            shop.row("p"),
            before,
            "{status} on the wrong channel changed the message"
        );
    }
    // The right provider on the right route still works afterwards.
    let body = json!({"message_id": shop.push, "status": "delivered"});
    let r = shop.callback("push", PUSH_SECRET, &body);
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("delivered")),
        "{:?}",
        r.body
    );
}
on_each_backend!(cross_channel, cross_channel_callback_changes_nothing);

/// Issue 14 item 8: a byte-identical signed callback is applied once; its replays are
/// 409 and change nothing, also after a restart.
fn replayed_callback_is_refused(site: Site) {
    let shop = Shop::start(&site);
    let t = now_s();
    let body = json!({"message_id": shop.sms, "status": "delivered"}).to_string();
    let r = shop.callback_at("sms", SMS_SECRET, t, body.as_bytes());
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("delivered")),
        "{:?}",
        r.body
    );
    let after = shop.row("s");
    for _ in 0..3 {
        let r = shop.callback_at("sms", SMS_SECRET, t, body.as_bytes());
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (409, Some("callback_replayed")),
            "{:?}",
            r.body
        );
    }
    assert_eq!(shop.row("s"), after, "a replay changed the message");
    // A replayed failure report (captured before delivery) changes nothing either.
    let bounce = json!({"message_id": shop.push, "status": "bounced", "reason": "first"}).to_string();
    let r = shop.callback_at("push", PUSH_SECRET, t, bounce.as_bytes());
    assert_eq!(r.status, 200, "{:?}", r.body);
    let bounced = shop.row("p");
    assert_eq!(bounced["reason"], "first");
    let Shop { server, .. } = shop;
    drop(server);
    // Across a restart the replay is still known.
    let config = site.data_dir.join("flywheel.toml");
    let server = site.serve(&["--config", config.to_str().unwrap()]);
    let signature = flywheel_channels::sign(PUSH_SECRET.as_bytes(), t, bounce.as_bytes());
    let r = server.post_raw(
        "/v1/channels/push/status",
        None,
        &[("X-Flywheel-Signature", &signature)],
        bounce.as_bytes(),
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (409, Some("callback_replayed")),
        "{:?}",
        r.body
    );
    assert_eq!(message(&server, "p"), bounced);
    // A provider retrying signs again with a fresh timestamp: accepted, idempotent.
    let r = server.post_raw(
        "/v1/channels/push/status",
        None,
        &[(
            "X-Flywheel-Signature",
            &flywheel_channels::sign(PUSH_SECRET.as_bytes(), t + 1, bounce.as_bytes()),
        )],
        bounce.as_bytes(),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        message(&server, "p"),
        bounced,
        "a re-signed repeat changes nothing"
    );
}
on_each_backend!(replay, replayed_callback_is_refused);

/// Issue 14 item 8: failures never overwrite `delivered` or an open; the first failure
/// stays; `delivered` does not revive a bounced message.
fn status_only_moves_forward(site: Site) {
    let shop = Shop::start(&site);
    let report = |channel: &str, secret: &str, id: &str, status: &str, reason: &str| {
        let r = shop.callback(
            channel,
            secret,
            &json!({"message_id": id, "status": status, "reason": reason}),
        );
        assert_eq!(r.status, 200, "{status}: {:?}", r.body);
        r.body
    };
    let delivered = report("sms", SMS_SECRET, &shop.sms, "delivered", "ok");
    assert_eq!(delivered["status"], "delivered");
    for late in ["bounced", "failed", "rejected"] {
        let now = report("sms", SMS_SECRET, &shop.sms, late, "late bounce");
        assert_eq!(now, delivered, "{late} overwrote delivered");
    }
    // Push: bounced first stays bounced with its reason; later reports do not move it.
    let bounced = report("push", PUSH_SECRET, &shop.push, "bounced", "550 unknown device");
    assert_eq!(
        (bounced["status"].as_str(), bounced["reason"].as_str()),
        (Some("bounced"), Some("550 unknown device"))
    );
    for later in ["delivered", "failed"] {
        let now = report("push", PUSH_SECRET, &shop.push, later, "other");
        assert_eq!(
            (now["status"].as_str(), now["reason"].as_str()),
            (Some("bounced"), Some("550 unknown device")),
            "{later}"
        );
        assert!(now["delivered_at"].is_null());
    }
}
on_each_backend!(status_order, status_only_moves_forward);

/// Issue 14 item 8: a 500 KB reason is cut to 1,000 characters; an oversized message id
/// is refused; a body over 64 KiB is 413; none of them writes anything else.
fn callback_fields_are_bounded(site: Site) {
    let shop = Shop::start(&site);
    let huge = "退信".repeat(125_000); // 250,000 characters, 750,000 bytes
    let body = json!({"message_id": shop.sms, "status": "bounced", "reason": huge}).to_string();
    // The server answers 413 from the declared length without reading the body, so the
    // client may instead see its upload cut off (a broken pipe) — either way a refusal.
    let signature = flywheel_channels::sign(SMS_SECRET.as_bytes(), now_s(), body.as_bytes());
    let sent = ureq::post(&format!("{}/v1/channels/sms/status", shop.server.url))
        .set("X-Flywheel-Signature", &signature)
        .set("Content-Type", "application/json")
        .send_bytes(body.as_bytes());
    match sent {
        Err(ureq::Error::Status(413, r)) => {
            let v: Value = r.into_json().unwrap_or(Value::Null);
            assert_eq!(v["code"], "body_too_large", "{v}");
        }
        Err(ureq::Error::Transport(t)) => eprintln!("oversized upload cut off: {t}"),
        other => panic!("an oversized callback was not refused: {other:?}"),
    }
    assert_eq!(shop.row("s")["status"], "sent");
    let fits = "退".repeat(15_000); // 45,000 bytes: under the body limit, over the reason limit
    let r = shop.callback(
        "sms",
        SMS_SECRET,
        &json!({"message_id": shop.sms, "status": "bounced", "reason": fits}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let stored = shop.row("s")["reason"].as_str().unwrap().to_string();
    assert_eq!(stored.chars().count(), 1_000);
    assert!(stored.chars().all(|c| c == '退'));
    let long_id = "m".repeat(300);
    let r = shop.callback(
        "push",
        PUSH_SECRET,
        &json!({"message_id": long_id, "status": "delivered"}),
    );
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("invalid_delivery_report")),
        "{:?}",
        r.body
    );
    let msg = r.body["message"].as_str().unwrap_or_default();
    assert!(msg.len() < 200, "the refusal does not echo the id: {msg}");
    assert_eq!(shop.row("p")["status"], "sent");
}
on_each_backend!(field_limits, callback_fields_are_bounded);

/// Forged open, click and unsubscribe tokens are refused before anything is written.
fn forged_tokens_write_nothing(site: Site) {
    let shop = Shop::start(&site);
    let before = (shop.row("s"), shop.server.get("/api/v1/consent/s").body);
    let r = shop.server.get_with("/t/c/forged-token", None);
    assert_eq!(r.status, 404, "{:?}", r.body);
    let r = shop.server.get_with(&format!("/t/o/{}", shop.sms), None);
    assert_eq!(r.status, 200, "the pixel answers a GIF whatever the token");
    let r = shop.server.post_raw(
        "/unsubscribe/forged-token",
        None,
        &[],
        b"List-Unsubscribe=One-Click",
    );
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert_eq!((shop.row("s"), shop.server.get("/api/v1/consent/s").body), before);
}
on_each_backend!(forged_tokens, forged_tokens_write_nothing);

/// Issue 14 item 7: a campaign name with a newline and an ANSI escape, logged at WARN by
/// the guardrail, stays on its line in both log formats.
#[test]
fn log_lines_escape_user_values() {
    let evil = "雙11\n2026-01-01T00:00:00Z  WARN forged: admin token leaked\x1b[31m\u{2028}red";
    for format in ["text", "json"] {
        // A site each: a campaign without a journey is alerted once a day.
        let Some(site) = Site::new(Backend::Sqlite, &format!("log_injection_{format}")) else {
            return;
        };
        let out = site.cli(&[
            "spend",
            "--channel",
            "douyin",
            "--amount",
            "1200",
            "--campaign",
            evil,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = site
            .command()
            .args(["--log-format", format, "guardrails"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("guardrail")).collect();
        assert_eq!(lines.len(), 1, "{format}: one guardrail line: {stderr:?}");
        assert!(
            !stderr
                .lines()
                .any(|l| l.trim_start().starts_with("2026-01-01T00:00:00Z")),
            "{format}: the name started a line: {stderr:?}"
        );
        for c in ['\x1b', '\u{2028}', '\r'] {
            assert!(!stderr.contains(c), "{format}: raw {c:?} in {stderr:?}");
        }
        assert!(lines[0].contains("雙11"), "{format}: {stderr}");
        if format == "json" {
            let v: Value = serde_json::from_str(lines[0]).unwrap();
            assert_eq!(v["fields"]["campaign"], evil, "JSON keeps the value, escaped");
        }
    }
}
