//! Starting the real `flywheel` binary for end-to-end tests, on SQLite (a temporary
//! data dir) or PostgreSQL (a fresh schema in FLYWHEEL_TEST_PG, default
//! postgres://postgres@127.0.0.1:5432/test). With CI=true a missing PostgreSQL fails.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const ADMIN_TOKEN: &str = "test-admin-token";
static COUNTER: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's data lives; survives server restarts.
#[derive(Debug, Clone)]
pub struct Site {
    pub data_dir: PathBuf,
    pub store: Option<String>,
}

impl Site {
    /// On PostgreSQL, names this site's server connections after `test` (so that only they
    /// are terminated) and returns the database URL and that name for a
    /// [`ConnectionKiller`]; None on SQLite.
    pub fn name_connections(&mut self, test: &str) -> Option<(String, String)> {
        let app = format!("fw_{test}_{}", std::process::id());
        let store = self.store.as_mut()?;
        let base = store.split('?').next().unwrap_or(store).to_owned();
        store.push_str(&format!("&application_name={app}"));
        Some((base, app))
    }

    /// A fresh site, or None when PostgreSQL is unreachable outside CI.
    pub fn new(backend: Backend, name: &str) -> Option<Site> {
        let id = format!(
            "e{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            name
        );
        let data_dir = flywheel_store::testing::fresh_dir(&format!("flywheel-e2e-{id}"));
        let store = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let base = std::env::var("FLYWHEEL_TEST_PG")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
                Some(format!("{base}?schema={id}"))
            }
        };
        let site = Site { data_dir, store };
        if backend == Backend::Postgres {
            let out = site.cli(&["keys", "list", "--format", "json"]);
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "PostgreSQL is required when CI=true: {err}"
                );
                eprintln!("SKIPPED postgres backend for {name}: {err}");
                return None;
            }
        }
        Some(site)
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_flywheel"));
        c.arg("--data-dir").arg(&self.data_dir);
        if let Some(s) = &self.store {
            c.arg("--store").arg(s);
        }
        c.env("FLYWHEEL_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("FLYWHEEL_LOG", "warn")
            .env_remove("FLYWHEEL_CONFIG");
        c
    }

    /// Runs a CLI command to completion.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.command().args(args).output().expect("run flywheel")
    }

    /// Runs a CLI command that must succeed and print JSON; the JSON.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Creates a server-scoped write key (the shop's backend: orders and contact details
    /// too) and returns its secret.
    pub fn write_key(&self) -> String {
        self.scoped_write_key("server")
    }

    /// Creates a write key of `scope` (`client` or `server`) and returns its secret.
    pub fn scoped_write_key(&self, scope: &str) -> String {
        let out = self.cli(&["keys", "create", scope, "--scope", scope, "--format", "json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).expect("keys create json");
        v["secret"].as_str().expect("secret").to_string()
    }

    /// Starts `flywheel serve` on a free port.
    pub fn serve(&self, extra: &[&str]) -> Server {
        serve_with(self.command(), extra)
    }
}

/// Starts `serve` from a prepared command (global options and environment already set).
pub fn serve_with(command: Command, extra: &[&str]) -> Server {
    serve_capturing(command, extra).0
}

/// [`serve_with`], also returning every stdout line printed before `listening on`.
pub fn serve_capturing(mut command: Command, extra: &[&str]) -> (Server, Vec<String>) {
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start flywheel serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut before = Vec::new();
    let url = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .expect("read stdout");
        if let Some(u) = line.strip_prefix("listening on ") {
            break u.trim().to_string();
        }
        before.push(line);
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (
        Server {
            child: Some(child),
            url,
        },
        before,
    )
}

pub struct Server {
    child: Option<Child>,
    pub url: String,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build()
}

fn reply(r: Result<ureq::Response, ureq::Error>) -> Reply {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body }
}

pub fn basic(key: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

impl Server {
    /// POSTs raw bytes with optional write key (Basic) and extra headers.
    pub fn post_raw(&self, path: &str, key: Option<&str>, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = agent()
            .post(&format!("{}{path}", self.url))
            .set("Content-Type", "application/json");
        if let Some(k) = key {
            req = req.set("Authorization", &basic(k));
        }
        for (h, v) in headers {
            req = req.set(h, v);
        }
        reply(req.send_bytes(body))
    }

    pub fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Reply {
        self.post_raw(path, key, &[], body.to_string().as_bytes())
    }

    /// Polls the admin API `path` until `ok` accepts its answer (15 s at most), and
    /// returns that answer.
    pub fn wait_for(&self, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_within(path, Duration::from_secs(15), ok)
    }

    /// [`Server::wait_for`] with a deadline of its own (retries that wait out outages
    /// take longer).
    pub fn wait_for_within(&self, path: &str, within: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let v = self.get(path).body;
            if ok(&v) {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path} never became what was expected: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// POSTs `body` as JSON to an admin API path with the admin token.
    pub fn admin_post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(
            path,
            None,
            &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            body.to_string().as_bytes(),
        )
    }

    /// GETs an admin API path with the admin token.
    pub fn get(&self, path: &str) -> Reply {
        reply(
            agent()
                .get(&format!("{}{path}", self.url))
                .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
                .call(),
        )
    }

    pub fn get_with(&self, path: &str, auth: Option<&str>) -> Reply {
        let mut req = agent().get(&format!("{}{path}", self.url));
        if let Some(a) = auth {
            req = req.set("Authorization", a);
        }
        reply(req.call())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("child");
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        c.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Server {
    /// Sends one tracking message until it is accepted (the store may be failing), 60 s
    /// at most.
    pub fn track_until_accepted(&self, key: &str, body: &Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.post("/v1/track", Some(key), body);
            if r.status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never accepted: {} {}",
                r.status,
                r.body
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Terminates a server's PostgreSQL connections over and over, for a stretch of a test.
pub struct ConnectionKiller {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl ConnectionKiller {
    /// Starts terminating the connections of `site`'s server (named by
    /// [`Site::name_connections`]) every 50 ms; None on SQLite.
    pub fn start(named: Option<(String, String)>) -> Option<ConnectionKiller> {
        let (url, app) = named?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect to PostgreSQL");
            let mut killed = 0u64;
            while !flag.load(Ordering::SeqCst) {
                let rows = client
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1",
                        &[&app],
                    )
                    .expect("terminate");
                killed += rows.len() as u64;
                std::thread::sleep(Duration::from_millis(50));
            }
            killed
        });
        Some(ConnectionKiller { stop, thread })
    }

    /// Goes on for `stretch` more, stops, and checks that it terminated at least one.
    pub fn finish_after(self, stretch: Duration) {
        std::thread::sleep(stretch);
        self.stop.store(true, Ordering::SeqCst);
        let killed = self.thread.join().expect("connection killer");
        assert!(killed > 0, "no connection of the server was terminated");
    }
}

/// Declares `$name` as two tests, one per backend, each calling `$body(site)`.
#[macro_export]
macro_rules! on_each_backend {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[test]
            fn sqlite() {
                if let Some(site) = Site::new(Backend::Sqlite, stringify!($name)) {
                    $body(site);
                }
            }
            #[test]
            fn postgres() {
                if let Some(site) = Site::new(Backend::Postgres, stringify!($name)) {
                    $body(site);
                }
            }
        }
    };
}

/// The instant `days_ago` days before now, as RFC 3339.
pub fn days_ago(days_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days_ago)).to_rfc3339()
}
