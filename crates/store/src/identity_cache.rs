//! The writer's memory of which profile each identity belongs to.
//!
//! Identity resolution looks up every id of every event; most ids were seen before.
//! The SQLite writer keeps what it learned (lookups, new identities, merges) so those
//! lookups skip the database. It is only ever a copy of committed state: it is dropped
//! when a write transaction rolls back, and when `PRAGMA data_version` shows another
//! connection (another process) committed since this one last wrote.

use std::collections::HashMap;

/// Entries kept before the cache starts over (bounds memory: ~100 bytes an entry).
const MAX_ENTRIES: usize = 4_000_000;

/// Identity key → profile id, plus profile renames from merges.
#[derive(Debug, Default)]
pub struct IdentityCache {
    profile_of: HashMap<String, String>,
    renamed: HashMap<String, String>,
}

impl IdentityCache {
    /// The current profile of an identity key, if cached.
    pub fn get(&self, key: &str) -> Option<String> {
        let mut p = self.profile_of.get(key)?;
        while let Some(next) = self.renamed.get(p) {
            p = next;
        }
        Some(p.clone())
    }

    /// Remembers that `key` belongs to `profile`.
    pub fn insert(&mut self, key: String, profile: String) {
        if self.profile_of.len() >= MAX_ENTRIES {
            self.clear();
        }
        self.profile_of.insert(key, profile);
    }

    /// Remembers that profile `from` was merged into `to`.
    pub fn rename(&mut self, from: String, to: String) {
        if from != to {
            self.renamed.insert(from, to);
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.profile_of.clear();
        self.renamed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_renames() {
        let mut c = IdentityCache::default();
        c.insert("anon:a".into(), "anon:a".into());
        c.insert("user:u".into(), "user:u".into());
        c.rename("anon:a".into(), "user:u".into());
        c.rename("user:u".into(), "user:t".into());
        assert_eq!(c.get("anon:a").as_deref(), Some("user:t"));
        assert_eq!(c.get("user:x"), None);
        c.clear();
        assert_eq!(c.get("anon:a"), None);
    }
}
