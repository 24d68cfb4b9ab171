//! Write keys (tracking API credentials) and stored settings.
//!
//! Only a SHA-256 hash of a key's secret is stored; the secret is shown once, when
//! the key is created. Each key has a [`KeyScope`]: what its events may change
//! (`docs/ingest.md`, "Trust boundary: client and server keys").

use crate::conn::Sql;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::conn::{Conn, Param};
use crate::{Error, Result, WriteKey};

/// What a write key's events may change.
///
/// Segment-style write keys are public once they sit in a web page or an app, so a key
/// handed to browsers and apps must not move money or redirect messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Browsers and apps: behaviour only. Orders, refunds and cancellations are stored as
    /// plain events (no order, points, tier, spend or referral reward), contact traits
    /// (email, phone, push and WeChat ids) and tier and predicted-CLV traits are dropped, and two known customers are never
    /// merged into one profile by its events.
    Client,
    /// The shop's backend: everything, as the tracking API has always accepted.
    Server,
}

impl KeyScope {
    /// The stored and displayed name (`client`, `server`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Client => "client",
            KeyScope::Server => "server",
        }
    }

    /// Whether events of this scope are trusted with money and contact details.
    pub fn is_server(self) -> bool {
        self == KeyScope::Server
    }
}

impl std::str::FromStr for KeyScope {
    type Err = Error;

    fn from_str(s: &str) -> Result<KeyScope> {
        match s {
            "client" => Ok(KeyScope::Client),
            "server" => Ok(KeyScope::Server),
            other => Err(Error::Database(format!(
                "unknown write key scope {other:?} (client or server)"
            ))),
        }
    }
}

impl std::fmt::Display for KeyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hash of a secret as stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret with the given prefix (`wk_`, `adm_`): 32 hex chars of entropy.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// Creates a key; returns it with its secret.
pub fn create(conn: &mut dyn Conn, name: &str, scope: KeyScope, now_ms: i64) -> Result<(WriteKey, String)> {
    let secret = new_secret("wk_");
    let id = format!("key_{}", &hash_secret(&secret)[..12]);
    let prefix = secret[..9].to_string();
    conn.execute(
        "INSERT INTO write_keys (id, name, secret_hash, prefix, created_at, scope) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            Param::Text(&id),
            Param::Text(name),
            Param::Text(&hash_secret(&secret)),
            Param::Text(&prefix),
            Param::I64(now_ms),
            Param::Text(scope.as_str()),
        ],
    )?;
    let key = WriteKey {
        id,
        name: name.to_string(),
        prefix,
        scope,
        created_at: flywheel_core::time::from_millis(now_ms),
        revoked_at: None,
    };
    Ok((key, secret))
}

/// All keys, oldest first.
pub fn list(conn: &mut dyn Conn) -> Result<Vec<WriteKey>> {
    conn.query(
        "SELECT id, name, prefix, created_at, revoked_at, scope FROM write_keys ORDER BY created_at, id",
        &[],
    )?
    .into_iter()
    .map(|r| {
        Ok(WriteKey {
            id: r.text(0)?,
            name: r.text(1)?,
            prefix: r.text(2)?,
            scope: r.text(5)?.parse()?,
            created_at: flywheel_core::time::from_millis(r.i64(3)?),
            revoked_at: r.opt_i64(4)?.map(flywheel_core::time::from_millis),
        })
    })
    .collect()
}

/// Revokes the key with this id; an unknown id is an error, revoking twice is not.
pub fn revoke(conn: &mut dyn Conn, id: &str, now_ms: i64) -> Result<()> {
    let known = conn.query("SELECT id FROM write_keys WHERE id = $1", &[Param::Text(id)])?;
    if known.is_empty() {
        return Err(Error::NotFound(format!("write key {id}")));
    }
    conn.execute(
        "UPDATE write_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        &[Param::I64(now_ms), Param::Text(id)],
    )?;
    Ok(())
}

/// The id and scope of the active key with this secret.
pub fn authenticate(conn: &mut dyn Conn, secret: &str) -> Result<Option<(String, KeyScope)>> {
    let rows = conn.query(
        "SELECT id, scope FROM write_keys WHERE secret_hash = $1 AND revoked_at IS NULL",
        &[Param::Text(&hash_secret(secret))],
    )?;
    rows.first()
        .map(|r| Ok((r.text(0)?, r.text(1)?.parse()?)))
        .transpose()
}

/// A stored setting.
pub fn setting(conn: &mut dyn Conn, key: &str) -> Result<Option<String>> {
    let rows = conn.query("SELECT value FROM settings WHERE key = $1", &[Param::Text(key)])?;
    rows.first().map(|r| r.text(0)).transpose()
}

/// Stores a setting unless it is already set; returns whether it was stored.
pub fn set_setting_once(conn: &mut dyn Conn, key: &str, value: &str) -> Result<bool> {
    Ok(conn.execute(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[Param::Text(key), Param::Text(value)],
    )? == 1)
}
