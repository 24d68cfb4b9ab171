//! User identities and profile ids.
//!
//! A profile is the set of identities linked by events (an event carrying both
//! `anonymousId` and `userId`, or an `alias` call). Its id is the canonical member
//! identity: the least under [`Identity::canonical_cmp`] (user ids before anonymous
//! ids, then by value). Because the least member of a union is the least of the
//! members' least, the id of a merged profile does not depend on the order in which
//! links arrived.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 255;

/// One identifier of a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Identity {
    /// The shop's own user id (`userId`).
    User(String),
    /// A device or browser id assigned before sign-in (`anonymousId`).
    Anonymous(String),
}

impl Identity {
    /// Builds a user identity from untrusted text: non-empty after trimming, at most 255 bytes.
    pub fn user(value: &str) -> Result<Identity> {
        check("userId", value).map(Identity::User)
    }

    /// Builds an anonymous identity from untrusted text.
    pub fn anonymous(value: &str) -> Result<Identity> {
        check("anonymousId", value).map(Identity::Anonymous)
    }

    /// The stored key: `user:<id>` or `anon:<id>`.
    pub fn key(&self) -> String {
        match self {
            Identity::User(v) => format!("user:{v}"),
            Identity::Anonymous(v) => format!("anon:{v}"),
        }
    }

    /// Reads a stored key back.
    pub fn from_key(key: &str) -> Option<Identity> {
        if let Some(v) = key.strip_prefix("user:") {
            Some(Identity::User(v.to_string()))
        } else {
            key.strip_prefix("anon:")
                .map(|v| Identity::Anonymous(v.to_string()))
        }
    }

    /// The raw id value.
    pub fn value(&self) -> &str {
        match self {
            Identity::User(v) | Identity::Anonymous(v) => v,
        }
    }

    /// The order that picks a profile's canonical id: user ids first, then by value.
    pub fn canonical_cmp(&self, other: &Identity) -> Ordering {
        let rank = |i: &Identity| matches!(i, Identity::Anonymous(_)) as u8;
        rank(self)
            .cmp(&rank(other))
            .then_with(|| self.value().cmp(other.value()))
    }
}

fn check(kind: &'static str, value: &str) -> Result<String> {
    if value.trim().is_empty() {
        return Err(Error::InvalidIdentity {
            kind,
            reason: "must not be empty",
        });
    }
    if value.len() > MAX_ID_LEN {
        return Err(Error::InvalidIdentity {
            kind,
            reason: "must be at most 255 bytes",
        });
    }
    if value.chars().any(char::is_control) {
        return Err(Error::InvalidIdentity {
            kind,
            reason: "must not contain control characters",
        });
    }
    Ok(value.to_string())
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// The id of a profile: the key of its canonical identity (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfileId(pub String);

impl ProfileId {
    /// The profile id a single identity would have on its own.
    pub fn of(identity: &Identity) -> ProfileId {
        ProfileId(identity.key())
    }

    /// The canonical of two profile ids (the one whose identity sorts first).
    pub fn canonical(a: ProfileId, b: ProfileId) -> ProfileId {
        match (Identity::from_key(&a.0), Identity::from_key(&b.0)) {
            (Some(ia), Some(ib)) if ib.canonical_cmp(&ia) == Ordering::Less => b,
            (Some(_), Some(_)) => a,
            _ => a.min(b),
        }
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ids() {
        assert!(Identity::user("u1").is_ok());
        assert!(Identity::user("  ").is_err());
        assert!(Identity::user(&"x".repeat(256)).is_err());
        assert!(Identity::anonymous("a\u{0}b").is_err());
        assert_eq!(Identity::user("張三").unwrap().key(), "user:張三");
    }

    #[test]
    fn keys_round_trip() {
        for i in [Identity::User("a:b".into()), Identity::Anonymous("user:x".into())] {
            assert_eq!(Identity::from_key(&i.key()), Some(i));
        }
    }

    #[test]
    fn canonical_prefers_user_ids_and_is_order_free() {
        let u = ProfileId::of(&Identity::User("zed".into()));
        let a = ProfileId::of(&Identity::Anonymous("aaa".into()));
        assert_eq!(ProfileId::canonical(u.clone(), a.clone()), u);
        assert_eq!(ProfileId::canonical(a, u.clone()), u);
        let u2 = ProfileId::of(&Identity::User("amy".into()));
        assert_eq!(ProfileId::canonical(u.clone(), u2.clone()), u2);
        assert_eq!(ProfileId::canonical(u2.clone(), u), u2);
    }
}
