//! Write keys (tracking API credentials) and stored settings.
//!
//! Only a SHA-256 hash of a key's secret is stored; the secret is shown once, when
//! the key is created.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::conn::{Conn, Param};
use crate::{Error, Result, WriteKey};

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
pub fn create(conn: &mut dyn Conn, name: &str, now_ms: i64) -> Result<(WriteKey, String)> {
    let secret = new_secret("wk_");
    let id = format!("key_{}", &hash_secret(&secret)[..12]);
    let prefix = secret[..9].to_string();
    conn.execute(
        "INSERT INTO write_keys (id, name, secret_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[
            Param::Text(&id),
            Param::Text(name),
            Param::Text(&hash_secret(&secret)),
            Param::Text(&prefix),
            Param::I64(now_ms),
        ],
    )?;
    let key = WriteKey {
        id,
        name: name.to_string(),
        prefix,
        created_at: flywheel_core::time::from_millis(now_ms),
        revoked_at: None,
    };
    Ok((key, secret))
}

/// All keys, oldest first.
pub fn list(conn: &mut dyn Conn) -> Result<Vec<WriteKey>> {
    conn.query(
        "SELECT id, name, prefix, created_at, revoked_at FROM write_keys ORDER BY created_at, id",
        &[],
    )?
    .into_iter()
    .map(|r| {
        Ok(WriteKey {
            id: r.text(0)?,
            name: r.text(1)?,
            prefix: r.text(2)?,
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

/// The id of the active key with this secret.
pub fn authenticate(conn: &mut dyn Conn, secret: &str) -> Result<Option<String>> {
    let rows = conn.query(
        "SELECT id FROM write_keys WHERE secret_hash = $1 AND revoked_at IS NULL",
        &[Param::Text(&hash_secret(secret))],
    )?;
    rows.first().map(|r| r.text(0)).transpose()
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
