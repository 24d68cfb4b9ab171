//! Credentials: write keys for the tracking API, the admin token for `/api/v1`.
//!
//! A write key arrives as HTTP Basic (key as user name, empty password, as Segment's
//! SDKs send it) or as `writeKey` in the body (per batch or per item). Checked keys
//! are cached for a few seconds so a key revoked from the CLI stops working within
//! that time without a database read per request. A key's scope (client or server,
//! `docs/ingest.md`) is cached with it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine;
use flywheel_core::ErrorCode;
use flywheel_store::{KeyScope, Store};
use secrecy::{ExposeSecret, SecretString};

use crate::error::ApiError;

/// How long a checked write key is trusted without asking the store again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// An active write key, as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedKey {
    /// Its id (`key_…`), stored as each event's source.
    pub id: String,
    /// What its events may change.
    pub scope: KeyScope,
}

/// Checks write keys against the store, with a short-lived cache.
#[derive(Debug)]
pub struct WriteKeys {
    store: Store,
    cache: Mutex<HashMap<String, (Option<CheckedKey>, Instant)>>,
}

impl WriteKeys {
    /// A checker over `store`.
    pub fn new(store: Store) -> Self {
        WriteKeys {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The id and scope of an active secret, or a 401.
    pub async fn check(&self, secret: &str) -> Result<CheckedKey, ApiError> {
        let cached = self.cache.lock().ok().and_then(|c| c.get(secret).cloned());
        let id = match cached {
            Some((id, at)) if at.elapsed() < KEY_CACHE_TTL => id,
            _ => {
                let id = self
                    .store
                    .authenticate_write_key(secret.to_string())
                    .await?
                    .map(|(id, scope)| CheckedKey { id, scope });
                if let Ok(mut c) = self.cache.lock() {
                    if c.len() > 10_000 {
                        c.clear();
                    }
                    c.insert(secret.to_string(), (id.clone(), Instant::now()));
                }
                id
            }
        };
        id.ok_or_else(|| ApiError::new(ErrorCode::InvalidWriteKey, "the write key is unknown or revoked"))
    }
}

/// The write key of an `Authorization: Basic` header (user name part), if any.
pub fn basic_write_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidAuthorization,
            "Authorization must be Basic base64(writeKey:)",
        )
    };
    let text = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = text
        .strip_prefix("Basic ")
        .or_else(|| text.strip_prefix("basic "))
    else {
        return Err(bad());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let key = decoded.split_once(':').map(|(k, _)| k).unwrap_or(&decoded);
    Ok((!key.is_empty()).then(|| key.to_string()))
}

/// The admin credential: the SHA-256 of the token, compared in constant time.
#[derive(Debug)]
pub struct AdminToken {
    hash: SecretString,
}

impl AdminToken {
    /// From the stored hash of the token.
    pub fn from_hash(hash: String) -> Self {
        AdminToken {
            hash: SecretString::from(hash),
        }
    }

    /// A short, stable name of the token (16 hex digits of its hash), telling the rate
    /// buckets of installations sharing one Redis apart; it reveals nothing of the token.
    pub fn id(&self) -> &str {
        let hash = self.hash.expose_secret();
        hash.get(..16).unwrap_or(hash)
    }

    /// Checks `Authorization: Bearer <token>`.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let missing = || {
            ApiError::new(
                ErrorCode::Unauthorized,
                "send the admin token as Authorization: Bearer <token>",
            )
        };
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(missing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|t| t.strip_prefix("Bearer "))
            .ok_or_else(missing)?;
        let given = flywheel_store::hash_secret(token.trim());
        let want = self.hash.expose_secret();
        let same = given.len() == want.len()
            && given
                .bytes()
                .zip(want.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::Unauthorized, "the admin token is wrong"))
        }
    }
}
