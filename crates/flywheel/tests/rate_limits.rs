//! Rate limits on the HTTP edges through the real binary and its router: a write key or
//! admin caller over its `[limits]` gets 429 `rate_limited` with `Retry-After`, counted
//! on `/metrics`; a request without a valid admin token is counted against its address,
//! not the shop's token; with `--redis` two processes share one allowance.
//!
//! The rates are chosen so no assertion depends on timing: the admin rate is one a
//! minute (the burst is all a test ever gets), and the tracking checks ask only that a
//! refusal comes somewhere in a run far faster than the sustained rate could absorb.

mod common;

use std::path::PathBuf;

use common::{basic, Backend, Server, Site, ADMIN_TOKEN};
use serde_json::{json, Value};

/// An answer with what these tests look at.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    code: Option<String>,
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> Answer {
    let resp = match r {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = resp.status();
    let retry_after = resp
        .header("retry-after")
        .map(|v| v.parse().expect("Retry-After is seconds"));
    let body: Value = resp.into_json().unwrap_or(Value::Null);
    let code = body["code"].as_str().map(String::from);
    Answer {
        status,
        retry_after,
        code,
    }
}

fn track(s: &Server, key: &str) -> Answer {
    let body = json!({"userId": "u1", "event": "Product Viewed"}).to_string();
    answer(
        ureq::post(&format!("{}/v1/track", s.url))
            .set("Authorization", &basic(key))
            .set("Content-Type", "application/json")
            .send_string(&body),
    )
}

/// A batch whose key comes in the body, not the header.
fn batch_with_body_key(s: &Server, key: &str) -> Answer {
    let body =
        json!({"writeKey": key, "batch": [{"type": "track", "userId": "u2", "event": "Product Viewed"}]});
    answer(
        ureq::post(&format!("{}/v1/batch", s.url))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string()),
    )
}

fn admin_get(s: &Server, token: &str) -> Answer {
    answer(
        ureq::get(&format!("{}/api/v1/tags", s.url))
            .set("Authorization", &format!("Bearer {token}"))
            .call(),
    )
}

fn admin_post(s: &Server, token: &str) -> Answer {
    answer(
        ureq::post(&format!("{}/api/v1/segments/count", s.url))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json")
            .send_string(&json!({"expression": "spend(30d) >= 1000 元"}).to_string()),
    )
}

fn metric(s: &Server, series: &str) -> u64 {
    let text = ureq::get(&format!("{}/metrics", s.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from /metrics:\n{text}"))
}

/// A settings file with these `[limits]` (and `redis_prefix`, when given).
fn settings(site: &Site, limits: &str, redis_prefix: Option<&str>) -> PathBuf {
    let path = site.data_dir.join("limits.toml");
    let prefix = redis_prefix.map_or(String::new(), |p| format!("redis_prefix = \"{p}\"\n"));
    std::fs::create_dir_all(&site.data_dir).unwrap();
    std::fs::write(&path, format!("{prefix}[limits]\n{limits}\n")).unwrap();
    path
}

fn assert_limited(a: &Answer, max_wait: u64) {
    assert_eq!(
        (a.status, a.code.as_deref()),
        (429, Some("rate_limited")),
        "{a:?}"
    );
    let wait = a.retry_after.expect("a 429 says when to come back");
    assert!((1..=max_wait).contains(&wait), "Retry-After {wait}");
}

/// Sends `n` requests; the answers.
fn burst(n: usize, mut send: impl FnMut(usize) -> Answer) -> Vec<Answer> {
    (0..n).map(&mut send).collect()
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

#[test]
fn over_the_rate_is_429_with_retry_after_and_counted() {
    let site = Site::new(Backend::Sqlite, "rate_limits").unwrap();
    let config = settings(
        &site,
        "tracking_per_second = 1\ntracking_burst = 3\nadmin_per_minute = 1\nadmin_burst = 4",
        None,
    );
    let (key_a, key_b) = (site.write_key(), site.write_key());
    let s = site.serve(&["--config", config.to_str().unwrap()]);

    // Tracking: the burst of 3 goes through, then refusals long before 10 more could be
    // absorbed at 1 a second; the key in the body is counted the same way.
    let first = burst(3, |_| track(&s, &key_a));
    assert!(first.iter().all(|a| a.status == 200), "{first:?}");
    let more = burst(10, |_| track(&s, &key_a));
    let refused: Vec<&Answer> = more.iter().filter(|a| a.status == 429).collect();
    assert!(!refused.is_empty(), "{more:?}");
    refused.iter().for_each(|a| assert_limited(a, 1));
    let in_body = burst(10, |_| batch_with_body_key(&s, &key_a));
    assert!(count(&in_body, 429) > 0, "{in_body:?}");
    assert_eq!(track(&s, &key_b).status, 200, "each key has its own allowance");
    let tracking_refused = count(&more, 429) + count(&in_body, 429);

    // Admin: wrong tokens use up their address's allowance (401 then 429) and not the
    // shop's token's, which then has its own 4 (GET and body routes alike).
    let wrong = burst(5, |_| admin_get(&s, "not-the-token"));
    assert_eq!(count(&wrong[..4], 401), 4, "{wrong:?}");
    assert_limited(&wrong[4], 60);
    let right = burst(5, |i| {
        if i.is_multiple_of(2) {
            admin_get(&s, ADMIN_TOKEN)
        } else {
            admin_post(&s, ADMIN_TOKEN)
        }
    });
    assert_eq!(count(&right[..4], 200), 4, "{right:?}");
    assert_limited(&right[4], 60);

    assert_eq!(
        metric(&s, "flywheel_rate_limited_total{edge=\"tracking\"}"),
        tracking_refused as u64
    );
    assert_eq!(metric(&s, "flywheel_rate_limited_total{edge=\"admin\"}"), 2);
    assert_eq!(metric(&s, "flywheel_rate_limit_unavailable_total"), 0);
    assert_eq!(metric(&s, "flywheel_journey_cap_unshared_total"), 0);
}

#[test]
fn two_processes_share_one_allowance_through_redis() {
    if std::net::TcpStream::connect("127.0.0.1:6379").is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Redis is required when CI=true"
        );
        eprintln!("SKIPPED shared rate limits: nothing on 127.0.0.1:6379");
        return;
    }
    // Two api processes serve one PostgreSQL database, as in a scale-out deployment.
    let Some(site) = Site::new(Backend::Postgres, "rate_shared") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("fwtest-rates-{}-{nanos}", std::process::id());
    let config = settings(
        &site,
        "tracking_per_second = 1\ntracking_burst = 4\nadmin_per_minute = 1\nadmin_burst = 4",
        Some(&prefix),
    );
    let key = site.write_key();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--redis",
        "redis://127.0.0.1:6379",
    ];
    let (a, b) = (site.serve(&args), site.serve(&args));
    let either = |i: usize| if i.is_multiple_of(2) { &a } else { &b };

    // Admin, one a minute with 4 at once: exactly 4 of 8 go through, whichever process
    // answers (each process alone would let its 4 through).
    let admin = burst(8, |i| admin_get(either(i), ADMIN_TOKEN));
    assert_eq!(count(&admin, 200), 4, "{admin:?}");
    admin
        .iter()
        .filter(|x| x.status != 200)
        .for_each(|x| assert_limited(x, 60));

    // Tracking, 4 at once: 8 alternating requests (4 to each process) are refused
    // somewhere, which separate allowances never would.
    let tracking = burst(8, |i| track(either(i), &key));
    assert!(count(&tracking, 429) > 0, "{tracking:?}");
    let refused = metric(&a, "flywheel_rate_limited_total{edge=\"admin\"}")
        + metric(&b, "flywheel_rate_limited_total{edge=\"admin\"}");
    assert_eq!(refused, 4);
}
