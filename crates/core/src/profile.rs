//! A merged user profile as the read API returns it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ProfileId, Timestamp};

/// One person: every id linked to them, merged traits, first and last seen.
///
/// Traits are merged key by key: the value from the event with the latest timestamp
/// wins (ties broken by the larger `messageId`, so arrival order never matters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Canonical id (see [`crate::identity`]).
    pub id: ProfileId,
    /// Every known `userId`.
    pub user_ids: Vec<String>,
    /// Every known `anonymousId`.
    pub anonymous_ids: Vec<String>,
    /// Merged traits.
    pub traits: Map<String, Value>,
    /// Timestamp of the earliest event.
    pub first_seen: Timestamp,
    /// Timestamp of the latest event.
    pub last_seen: Timestamp,
    /// The first thing the customer did (the system's own writes, such as computed or
    /// imported traits, are not activity); `None` until they do something.
    pub first_active: Option<Timestamp>,
    /// The last thing the customer did; what `last_active` in segments reads.
    pub last_active: Option<Timestamp>,
    /// Number of stored events.
    pub event_count: i64,
}

/// A line of the profile list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileSummary {
    /// Canonical id.
    pub id: ProfileId,
    /// Timestamp of the earliest event.
    pub first_seen: Timestamp,
    /// Timestamp of the latest event.
    pub last_seen: Timestamp,
    /// Number of stored events.
    pub event_count: i64,
}
