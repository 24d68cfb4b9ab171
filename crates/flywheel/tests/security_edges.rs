//! The server's edges against misuse, on the real binary: unauthenticated and slow
//! connections keep memory bounded (docs/operations.md gives the bound), stalled
//! connections are closed, huge report ranges are refused at once, the data directory is
//! private, and the admin token stays out of stdout.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{serve_capturing, Backend, Server, Site};

const MIB: u64 = 1024 * 1024;

/// The server's resident memory (VmRSS), bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// Raises this process's open-file limit (inherited by the server it starts) to `want`
/// when the hard limit allows; returns the soft limit in force.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere
fn raise_open_files(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if (lim.rlim_cur as u64) < want {
            let raised = libc::rlimit {
                rlim_cur: want.min(lim.rlim_max as u64) as libc::rlim_t,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur as u64;
            }
        }
    }
    lim.rlim_cur as u64
}

/// A client connection that writes without blocking and remembers what it has not
/// sent yet (the server may not be reading).
struct Slow {
    stream: Option<TcpStream>,
    pending: Vec<u8>,
}

impl Slow {
    fn open(url: &str, head: String) -> Slow {
        let addr = url.trim_start_matches("http://");
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nonblocking(true).expect("nonblocking");
        let mut s = Slow {
            stream: Some(stream),
            pending: head.into_bytes(),
        };
        s.pump();
        s
    }

    fn queue(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        self.pump();
    }

    /// Writes what the socket takes now; a closed connection drops what is left.
    fn pump(&mut self) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        while !self.pending.is_empty() {
            match stream.write(&self.pending) {
                Ok(0) => break,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.stream = None;
                    self.pending.clear();
                    break;
                }
            }
        }
    }
}

/// Samples the server's RSS every 50 ms for `d`, pumping the clients meanwhile; the peak.
fn hold(pid: u32, clients: &mut [Slow], d: Duration) -> u64 {
    let end = Instant::now() + d;
    let mut peak = 0;
    while Instant::now() < end {
        clients.iter_mut().for_each(Slow::pump);
        peak = peak.max(rss(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    peak
}

/// The bound docs/operations.md states: RSS above idle at most twice the in-flight body
/// budget plus 64 KiB per open connection.
fn documented_bound(budget: u64, connections: u64) -> u64 {
    2 * budget + connections * 64 * 1024
}

/// 1,000 connections without credentials (or with wrong ones) each send headers and part
/// of a 400 KB body, slowly: the server's memory stays within the documented bound while
/// they are open and falls back once they close. Before the body budget, the same load
/// took 650 MB and kept 200 MB after the connections closed.
#[test]
fn slow_unauthenticated_bodies_keep_memory_bounded() {
    let wanted = 1000u64;
    let limit = raise_open_files(wanted + 200);
    // Each connection takes a descriptor here and one in the server (same limit).
    let n = if limit >= wanted + 100 {
        wanted as usize
    } else {
        eprintln!("open-file limit {limit}: testing with fewer connections");
        limit.saturating_sub(100) as usize
    };
    let site = Site::new(Backend::Sqlite, "slow_bodies").expect("sqlite");
    let s = site.serve(&[]);
    let pid = s.pid();
    std::thread::sleep(Duration::from_millis(1500));
    let idle = rss(pid);
    let body_len = 400_000;
    let mut clients: Vec<Slow> = (0..n)
        .map(|i| {
            let head = match i % 4 {
                // No credentials: the write key could be in the body, so it is read
                // within the budget.
                0 | 1 => format!(
                    "POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {body_len}\r\n\r\n"
                ),
                2 => "POST /v1/track HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_string(),
                // Wrong credentials in the headers: refused before the body is read.
                _ if i % 8 == 3 => format!(
                    "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: {body_len}\r\n\r\n",
                    common::basic("wk_not_a_key")
                ),
                _ => format!(
                    "POST /api/v1/tags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: {body_len}\r\n\r\n"
                ),
            };
            Slow::open(&s.url, head)
        })
        .collect();
    // Three slices of 100 KB each, a second apart.
    let piece = vec![b' '; 100_000];
    let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
    chunk.extend_from_slice(&piece);
    chunk.extend_from_slice(b"\r\n");
    let mut peak = 0;
    for _ in 0..3 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.queue(if i % 4 == 2 { &chunk } else { &piece });
        }
        peak = peak.max(hold(pid, &mut clients, Duration::from_secs(1)));
    }
    let budget = 64 * MIB; // the default --max-inflight-body-bytes
    let bound = documented_bound(budget, n as u64);
    eprintln!(
        "{n} connections: idle {} MiB, peak {} MiB (+{} MiB; bound +{} MiB)",
        idle / MIB,
        peak / MIB,
        peak.saturating_sub(idle) / MIB,
        bound / MIB
    );
    assert!(
        peak <= idle + bound,
        "RSS peaked at {} MiB, idle {} MiB: more than the documented {} MiB above idle",
        peak / MIB,
        idle / MIB,
        bound / MIB
    );
    drop(clients);
    // Freed body memory goes back to the system within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut after = rss(pid);
    while after > idle + 24 * MIB && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        after = rss(pid);
    }
    eprintln!("after closing: {} MiB", after / MIB);
    assert!(
        after <= idle + 24 * MIB,
        "RSS stayed at {} MiB after the connections closed (idle {} MiB)",
        after / MIB,
        idle / MIB
    );
    // The server still serves.
    assert_eq!(s.get("/api/v1/profiles").status, 200);
}

/// Reads what the server sends until it closes the connection or `within` passes;
/// `(text, closed, elapsed)`.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool, Duration) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < within {
        match stream.read(&mut buf) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    true,
                    started.elapsed(),
                )
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    true,
                    started.elapsed(),
                )
            }
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        false,
        started.elapsed(),
    )
}

fn connect(s: &Server) -> TcpStream {
    TcpStream::connect(s.url.trim_start_matches("http://")).expect("connect")
}

/// A connection that stalls in its request head, one idle after a response, and one
/// whose body stalls are all closed after their timeouts; wrong credentials in the
/// headers are answered at once, without waiting for the body, and close the connection.
#[test]
fn stalled_connections_are_closed_and_credentials_come_first() {
    let site = Site::new(Backend::Sqlite, "stalled").expect("sqlite");
    let s = site.serve(&["--header-timeout-secs", "1", "--body-idle-timeout-secs", "1"]);

    // Half a request head, then nothing.
    let mut c = connect(&s);
    c.write_all(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (_, closed, took) = read_until_closed(&mut c, Duration::from_secs(6));
    assert!(closed, "a stalled request head kept its connection");
    assert!(took >= Duration::from_millis(800), "closed too early: {took:?}");

    // Idle after a complete exchange (keep-alive).
    let mut c = connect(&s);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (text, closed, _) = read_until_closed(&mut c, Duration::from_secs(6));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed, "an idle keep-alive connection stayed open");

    // A body that stops arriving: 408 and the connection closed.
    let mut c = connect(&s);
    c.write_all(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"batch\": [")
        .unwrap();
    let (text, closed, _) = read_until_closed(&mut c, Duration::from_secs(6));
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"body_timeout\""), "{text}");
    assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    assert!(closed);

    // Wrong credentials with a body announced but not sent: refused at once.
    for head in [
        format!(
            "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 400000\r\n\r\n",
            common::basic("wk_wrong")
        ),
        "POST /api/v1/tags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 400000\r\n\r\n"
            .to_string(),
    ] {
        let mut c = connect(&s);
        c.write_all(head.as_bytes()).unwrap();
        let (text, closed, took) = read_until_closed(&mut c, Duration::from_secs(6));
        assert!(text.starts_with("HTTP/1.1 401"), "{head}: {text}");
        assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
        assert!(closed && took < Duration::from_millis(900), "{head}: {took:?}");
    }
}

/// Bodies beyond the in-flight budget are refused with 503, `Retry-After` and a stable
/// code; once the held ones are done, the budget is free again.
#[test]
fn bodies_beyond_the_budget_are_refused_with_503() {
    let site = Site::new(Backend::Sqlite, "budget").expect("sqlite");
    let key = site.write_key();
    let s = site.serve(&["--max-inflight-body-bytes", "1048576"]);
    let head = |len: usize| {
        format!(
            "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
            common::basic(&key)
        )
    };
    // Two bodies of 500,000 bytes take 1,000,000 of the 1,048,576: held while they arrive.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = connect(&s);
            c.write_all(head(500_000).as_bytes()).unwrap();
            c.write_all(b"{\"batch\": [").unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let body = serde_json::json!({"batch": [{"type": "track", "userId": "u", "event": "E"}]})
        .to_string()
        .into_bytes();
    let padded = {
        let mut b = body.clone();
        b.resize(100_000, b' ');
        b
    };
    let mut c = connect(&s);
    c.write_all(head(padded.len()).as_bytes()).unwrap();
    c.write_all(&padded).unwrap();
    let (text, _, _) = read_until_closed(&mut c, Duration::from_secs(5));
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"body_budget_exhausted\""), "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after: 1"), "{text}");
    held.clear();
    std::thread::sleep(Duration::from_millis(300));
    let r = s.post_raw("/v1/batch", Some(&key), &[], &padded);
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// The probe: every report over 0001-01-01..9999-12-31 is refused at once with
/// `range_too_large`, and memory stays flat; a year is still served.
#[test]
fn huge_report_ranges_are_refused_at_once() {
    let site = Site::new(Backend::Sqlite, "ranges").expect("sqlite");
    let s = site.serve(&[]);
    let pid = s.pid();
    let before = rss(pid);
    let huge = "from=0001-01-01&to=9999-12-31";
    for route in [
        "kpi",
        "cohort",
        "funnel",
        "ltv",
        "campaigns",
        "channels",
        "attribution",
        "uplift?journey=j&",
        "spend",
    ] {
        let sep = if route.ends_with('&') { "" } else { "?" };
        let started = Instant::now();
        let r = s.get(&format!("/api/v1/analytics/{route}{sep}{huge}"));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{route}: {:?}",
            started.elapsed()
        );
        assert_eq!(r.status, 400, "{route}: {:?}", r.body);
        assert_eq!(r.body["code"], "range_too_large", "{route}: {:?}", r.body);
        let m = r.body["message"].as_str().unwrap_or_default();
        assert!(m.contains("366 days"), "the limit is said: {m}");
    }
    // From alone, far back, is as long.
    assert_eq!(
        s.get("/api/v1/analytics/kpi?from=1970-01-01").body["code"],
        "range_too_large"
    );
    // Backwards, out of bounds, absurd: 400s, not crashes.
    for (q, code) in [
        ("kpi?from=2026-02-01&to=2026-01-01", "invalid_date"),
        ("kpi?from=0001-01-01&to=0001-01-31", "invalid_date"),
        ("review?day=262143-12-31", "invalid_date"),
        ("review?day=-262000-01-01&cadence=monthly", "invalid_date"),
        ("cohort?days=4294967295", "invalid_cohort"),
    ] {
        let r = s.get(&format!("/api/v1/analytics/{q}"));
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (400, Some(code)),
            "{q}: {:?}",
            r.body
        );
    }
    // A year (leap day included) is fine.
    assert_eq!(
        s.get("/api/v1/analytics/kpi?from=2024-01-01&to=2024-12-31")
            .status,
        200
    );
    let after = rss(pid);
    assert!(
        after < before + 32 * MIB,
        "RSS grew from {} to {} MiB",
        before / MIB,
        after / MIB
    );
    drop(s);
    // The CLI refuses it too, as bad input (exit 2).
    let out = site.cli(&["report", "kpi", "--from", "0001-01-01", "--to", "9999-12-31"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("366 days"));
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

/// Every file in the data directory is 0600 and the directory 0700: after the CLI
/// created the store, after `serve` started (an earlier 0644/0755 is narrowed at start)
/// and after more CLI use.
#[cfg(unix)]
#[test]
fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new(Backend::Sqlite, "modes").expect("sqlite");
    let check = |when: &str| {
        assert_eq!(mode(&site.data_dir), 0o700, "{when}: the data directory");
        let mut files = 0;
        for e in std::fs::read_dir(&site.data_dir).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(mode(&p), 0o600, "{when}: {}", p.display());
            files += 1;
        }
        files
    };
    let key = site.write_key();
    assert!(check("after keys create") >= 1);
    // Someone widened them: the next start narrows them again.
    std::fs::set_permissions(&site.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        site.data_dir.join("flywheel.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut serve = site.command();
    serve.env_remove("FLYWHEEL_ADMIN_TOKEN");
    let s = common::serve_with(serve, &[]);
    let r = s.post(
        "/v1/track",
        Some(&key),
        &serde_json::json!({"userId": "u", "event": "E"}),
    );
    assert_eq!(r.status, 200);
    let files = check("while serving");
    assert!(files >= 4, "db, wal, shm, admin token: {files}");
    assert!(site.data_dir.join("admin_token").exists());
    drop(s);
    let out = site.cli(&["keys", "list"]);
    assert!(out.status.success());
    check("after more CLI use");
}

/// A generated admin token is saved (0600) and its path printed, never the token;
/// `flywheel token show` prints it; `--print-admin-token` prints it on request.
#[test]
fn the_admin_token_is_not_printed() {
    let site = Site::new(Backend::Sqlite, "token").expect("sqlite");
    let mut command = site.command();
    command.env_remove("FLYWHEEL_ADMIN_TOKEN");
    let (s, printed) = serve_capturing(command, &[]);
    let saved = site.data_dir.join("admin_token");
    let token = std::fs::read_to_string(&saved)
        .expect("token saved")
        .trim()
        .to_string();
    assert!(token.len() > 20);
    #[cfg(unix)]
    assert_eq!(mode(&saved), 0o600);
    let all = printed.join("\n");
    assert!(!all.contains(&token), "the token was printed: {all}");
    assert!(
        all.contains(&saved.display().to_string()),
        "where it is saved: {all}"
    );
    assert_eq!(
        s.get_with("/api/v1/profiles", Some(&format!("Bearer {token}")))
            .status,
        200
    );
    drop(s);

    let mut show = site.command();
    show.env_remove("FLYWHEEL_ADMIN_TOKEN");
    let out = show.args(["token", "show"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), token);

    // Asked for, on a fresh site.
    let other = Site::new(Backend::Sqlite, "token_print").expect("sqlite");
    let mut command = other.command();
    command.env_remove("FLYWHEEL_ADMIN_TOKEN");
    let (s, printed) = serve_capturing(command, &["--print-admin-token"]);
    let token = std::fs::read_to_string(other.data_dir.join("admin_token")).unwrap();
    assert!(printed.join("\n").contains(token.trim()));
    drop(s);

    // Nothing saved (the token came from the environment): a clear refusal.
    let none = Site::new(Backend::Sqlite, "token_none").expect("sqlite");
    let out = none.cli(&["token", "show"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_token"));
}
