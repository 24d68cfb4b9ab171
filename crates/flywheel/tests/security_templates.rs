//! Templates cannot take the server down (issue 14 §1), on the real binary.
//!
//! Templates that loop without end, render or allocate hundreds of megabytes, or can
//! never render are refused at save within a second or two while `/healthz` keeps
//! answering; a template that blows up only on one customer's data fails that message
//! (once, not again after a SIGKILL and restart), the other journeys keep sending, and
//! SIGTERM stops the server promptly.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A webhook provider that answers 200 to everything and counts what it got.
fn receiver() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got = Arc::new(AtomicUsize::new(0));
    let count = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let count = count.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = vec![0u8; 65536];
                let mut seen = Vec::new();
                // Headers, then Content-Length bytes of body.
                loop {
                    let Ok(n) = conn.read(&mut buf) else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let _ =
                    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            });
        }
    });
    (port, got)
}

fn configure(site: &Site, port: u16) -> std::path::PathBuf {
    std::fs::create_dir_all(&site.data_dir).expect("data dir");
    let path = site.data_dir.join("flywheel.toml");
    std::fs::write(
        &path,
        format!(
            "[journeys.providers.webhook]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"whsec_test\"\n"
        ),
    )
    .expect("write config");
    path
}

fn serve(site: &Site, config: &std::path::Path) -> Server {
    let mut c = site.command();
    c.arg("--config").arg(config);
    serve_with(c, &[])
}

fn admin(s: &Server, method: &str, path: &str, body: &Value) -> Reply {
    let req = ureq::request(method, &format!("{}{path}", s.url))
        .timeout(Duration::from_secs(30))
        .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"));
    let r = if body.is_null() {
        req.call()
    } else {
        req.send_json(body.clone())
    };
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = resp.status();
    let body = resp.into_json().unwrap_or(Value::Null);
    Reply { status, body }
}

fn journey(name: &str, text: &str) -> Value {
    json!({"name": name, "trigger": {"event": {"name": "Signed Up"}}, "entry": "once",
           "steps": [{"id": "say", "type": "send", "channels": ["webhook"],
                      "category": "transactional", "text": text}]})
}

/// `/healthz` answers 200 within a second.
fn healthy(s: &Server) -> bool {
    ureq::get(&format!("{}/healthz", s.url))
        .timeout(Duration::from_secs(1))
        .call()
        .is_ok_and(|r| r.status() == 200)
}

/// Templates refused at save: what they do, the text, the refusal's code (a render
/// limit, or minijinja's own bound on a range: a template that cannot render).
const REFUSED: [(&str, &str, &str); 6] = [
    (
        "nested loops",
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "template_over_limit",
    ),
    ("a 100 MB string", "{{ \"x\" * 100000000 }}", "template_over_limit"),
    (
        "a 100-million-item list",
        "{{ (range(100000)|list) * 1000 }}",
        "template_over_limit",
    ),
    (
        "a list materialised",
        "{{ ((range(100000)|list) * 1000)|list|length }}",
        "template_over_limit",
    ),
    (
        "a range that can never render",
        "{{ range(100000000) }}",
        "invalid_message_template",
    ),
    (
        "doubling through set",
        "{% set a = \"x\" * 1000000 %}{% set b = a~a~a~a~a~a~a~a %}{% set c = b~b~b~b~b~b~b~b %}{{ c|length }}",
        "template_over_limit",
    ),
];

fn refused_at_save(site: Site) {
    let (port, _) = receiver();
    let config = configure(&site, port);
    let s = serve(&site, &config);
    for (what, text, code) in REFUSED {
        let started = Instant::now();
        let r = admin(&s, "POST", "/api/v1/journeys", &journey("bomb", text));
        let took = started.elapsed();
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some(code)),
            "{what}: {:?}",
            r.body
        );
        let message = r.body["message"].as_str().unwrap_or_default();
        assert!(message.contains("step \"say\""), "{what}: {message}");
        assert!(took < Duration::from_secs(3), "{what} took {took:?}");
        assert!(healthy(&s), "{what}: the server stopped answering");
    }
    // A constant folded while compiling is bounded too (compiling happens in the sandbox).
    let folded = "{{ (\"x\" * 100000000) ~ (\"x\" * 100000000) ~ (\"x\" * 100000000) }}";
    let r = admin(&s, "POST", "/api/v1/journeys", &journey("bomb", folded));
    assert_eq!(r.status, 400, "{:?}", r.body);
    // Ordinary templates still save.
    let ok = "{{ profile.id }}：{% for t in tags %}{{ t }} {% endfor %}{{ shop.name }}";
    assert_eq!(
        admin(&s, "POST", "/api/v1/journeys", &journey("fine", ok)).status,
        201
    );
    assert_eq!(
        admin(&s, "GET", "/api/v1/journeys/bomb", &Value::Null).status,
        404,
        "a refused journey was stored"
    );
    // The server's own memory did not take the blows.
    let rss = rss_kib(s.pid());
    assert!(rss < 400 * 1024, "server RSS {rss} KiB after the bombs");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn messages(s: &Server, user: &str) -> Vec<Value> {
    admin(
        s,
        "GET",
        &format!("/api/v1/messages?user_id={user}"),
        &Value::Null,
    )
    .body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_for(mut pred: impl FnMut() -> bool, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if pred() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    pred()
}

fn bad_data_fails_one_message(site: Site) {
    let (port, delivered) = receiver();
    let config = configure(&site, port);
    let key = site.write_key();
    let s = serve(&site, &config);
    // Each saves: the sample customer has no `n`, so the trial render only misses a value.
    let loops = "{% for i in range(traits.n) %}{% for j in range(traits.n) %}.{% endfor %}{% endfor %}";
    let huge = "{{ \"x\" * traits.n }}";
    for (name, text) in [("loops", loops), ("huge", huge), ("hello", "hi {{ profile.id }}")] {
        let r = admin(&s, "POST", "/api/v1/journeys", &journey(name, text));
        assert_eq!(r.status, 201, "{name}: {:?}", r.body);
        assert_eq!(
            admin(&s, "POST", &format!("/api/v1/journeys/{name}/start"), &json!({})).status,
            200
        );
    }
    // Previewing for a customer whose data blows the template up answers an error fast.
    let traits = [("u_loop", 100_000), ("u_huge", 99_999_999)];
    let batch: Vec<Value> = traits
        .iter()
        .map(|(u, n)| json!({"type": "identify", "userId": u, "traits": {"n": n}}))
        .collect();
    assert_eq!(
        s.post("/v1/batch", Some(&key), &json!({"batch": batch})).status,
        200
    );
    let preview = |name: &str, user: &str| {
        let started = Instant::now();
        let r = admin(
            &s,
            "POST",
            &format!("/api/v1/journeys/{name}/preview"),
            &json!({"user_id": user, "step": "say"}),
        );
        (r, started.elapsed())
    };
    let (r, took) = preview("loops", "u_loop");
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.body["message"].as_str().unwrap_or_default().contains("steps"),
        "{:?}",
        r.body
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    let (r, took) = preview("huge", "u_huge");
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.body["message"].as_str().unwrap_or_default().contains("memory"),
        "{:?}",
        r.body
    );
    assert!(took < Duration::from_secs(3), "{took:?}");

    // Both customers enter every journey: the bad renders fail, the good ones are sent.
    let signups: Vec<Value> = traits
        .iter()
        .map(|(u, _)| json!({"type": "track", "userId": u, "event": "Signed Up"}))
        .collect();
    assert_eq!(
        s.post("/v1/batch", Some(&key), &json!({"batch": signups})).status,
        200
    );
    let settled = |s: &Server, u: &str| {
        let m = messages(s, u);
        m.len() >= 3 && m.iter().all(|m| m["status"] != "queued")
    };
    assert!(
        wait_for(|| settled(&s, "u_loop") && settled(&s, "u_huge"), 30),
        "{:?} {:?}",
        messages(&s, "u_loop"),
        messages(&s, "u_huge")
    );
    assert!(healthy(&s));
    let status_of = |s: &Server, u: &str, journey: &str| -> (String, String) {
        let m = messages(s, u)
            .into_iter()
            .find(|m| m["journey"] == journey)
            .unwrap_or_else(|| panic!("{u} has no message from {journey}"));
        (
            m["status"].as_str().unwrap_or_default().to_string(),
            m["reason"].as_str().unwrap_or_default().to_string(),
        )
    };
    let (status, reason) = status_of(&s, "u_loop", "loops");
    assert_eq!(status, "failed");
    assert!(reason.contains("steps"), "{reason}");
    let (status, reason) = status_of(&s, "u_huge", "huge");
    assert_eq!(status, "failed");
    assert!(reason.contains("memory"), "{reason}");
    for u in ["u_loop", "u_huge"] {
        assert_eq!(status_of(&s, u, "hello").0, "sent");
    }
    assert!(delivered.load(Ordering::SeqCst) >= 2);

    // SIGKILL and restart: up at once, and the failed messages are not tried again.
    s.kill();
    let s = serve(&site, &config);
    std::thread::sleep(Duration::from_secs(3));
    assert!(healthy(&s), "the server is down again after a restart");
    for u in ["u_loop", "u_huge"] {
        assert_eq!(messages(&s, u).len(), 3, "{:?}", messages(&s, u));
    }
    // A graceful stop finishes promptly, even with a client holding a request open.
    let mut stalled = std::net::TcpStream::connect(s.url.trim_start_matches("http://")).expect("connect");
    stalled
        .write_all(b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
        .expect("send");
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

on_each_backend!(templates_refused_at_save, refused_at_save);
on_each_backend!(templates_failing_on_customer_data, bad_data_fails_one_message);
