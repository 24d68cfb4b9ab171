//! Configuration precedence: flag, then FLYWHEEL_* environment, then the TOML file,
//! then the default; bad configuration is refused with exit code 2.

mod common;

use common::{Backend, Site};
use serde_json::json;

fn message(bytes: usize) -> serde_json::Value {
    json!({"type": "track", "userId": "c", "event": "E", "properties": {"pad": "x".repeat(bytes)}})
}

#[test]
fn toml_file_then_environment_then_flag() {
    let Some(site) = Site::new(Backend::Sqlite, "config") else {
        return;
    };
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let toml = site.data_dir.join("flywheel.toml");
    std::fs::write(&toml, "max_message_bytes = 1024\nmax_batch_bytes = 200000\n").unwrap();
    let key = site.write_key();
    let config = toml.to_str().unwrap();

    // The file's limit applies.
    let s = site.serve(&["--config", config]);
    let r = s.post("/v1/track", Some(&key), &message(2000));
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (400, Some("message_too_large"))
    );
    drop(s);

    // The environment beats the file.
    let mut cmd = site.command();
    cmd.env("FLYWHEEL_MAX_MESSAGE_BYTES", "4096");
    let s = common::serve_with(cmd, &["--config", config]);
    assert_eq!(s.post("/v1/track", Some(&key), &message(2000)).status, 200);
    assert_eq!(
        s.post("/v1/track", Some(&key), &message(5000)).body["code"],
        "message_too_large"
    );
    drop(s);

    // The flag beats both.
    let mut cmd = site.command();
    cmd.env("FLYWHEEL_MAX_MESSAGE_BYTES", "4096");
    let s = common::serve_with(cmd, &["--config", config, "--max-message-bytes", "8192"]);
    assert_eq!(s.post("/v1/track", Some(&key), &message(5000)).status, 200);
}

#[test]
fn bad_configuration_exits_with_2() {
    let Some(site) = Site::new(Backend::Sqlite, "badconfig") else {
        return;
    };
    std::fs::create_dir_all(&site.data_dir).unwrap();
    let toml = site.data_dir.join("bad.toml");
    std::fs::write(&toml, "no_such_option = 1\n").unwrap();
    let out = site.cli(&["--config", toml.to_str().unwrap(), "keys", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_option"));
    let out = site.cli(&["serve", "--max-batch-bytes", "99999999"]);
    assert_eq!(out.status.code(), Some(2));
    let out = site.cli(&["--store", "mysql://nope", "keys", "list"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = site.cli(&["keys", "revoke", "key_missing"]);
    assert_eq!(out.status.code(), Some(2));
    let out = site.cli(&["profile", "show", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
}
