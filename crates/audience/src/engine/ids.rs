//! Profile ids by row and rows by profile id, compactly: every id's text once in one
//! arena, a hash table of bare row numbers (the text is compared in the arena), and
//! user ids only where they are not the profile id's own (`user:ID` → `ID`).
//!
//! A profile merged away keeps its row (rows are never reused) but loses its id.

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Profile ids by row, rows by id, user ids by row.
#[derive(Debug, Default)]
pub struct ProfileIds {
    /// Every id's text, one after the other.
    text: Vec<u8>,
    /// Row → end of its id in `text` (its start is the previous row's end).
    ends: Vec<u64>,
    /// Rows whose id was cleared (merged away).
    cleared: roaring::RoaringBitmap,
    /// Id → row (rows only; the ids are read from `text`).
    table: HashTable<u32>,
    hasher: std::hash::RandomState,
    /// User ids that are not the one the profile id carries (`None`: none known).
    users: HashMap<u32, Option<Box<str>>>,
}

/// The parts of [`ProfileIds`] that are saved: id texts, their ends by row, cleared
/// rows, user ids that differ from the profile id's own.
pub type IdParts<'a> = (
    &'a [u8],
    &'a [u64],
    &'a roaring::RoaringBitmap,
    &'a HashMap<u32, Option<Box<str>>>,
);

/// The text of row `i` in `text` (empty when unknown).
fn text_at<'a>(text: &'a [u8], ends: &[u64], i: usize) -> &'a str {
    let Some(&end) = ends.get(i) else { return "" };
    let start = if i == 0 { 0 } else { ends[i - 1] };
    text.get(start as usize..end as usize)
        .and_then(|b| std::str::from_utf8(b).ok())
        .unwrap_or("")
}

impl ProfileIds {
    fn text_of(&self, row: u32) -> &str {
        text_at(&self.text, &self.ends, row as usize)
    }

    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The profile id of `row` (empty when merged away or unknown).
    pub fn id(&self, row: u32) -> &str {
        if self.cleared.contains(row) {
            ""
        } else {
            self.text_of(row)
        }
    }

    /// The row of `id`.
    pub fn row(&self, id: &str) -> Option<u32> {
        let h = self.hash(id);
        self.table.find(h, |&r| self.text_of(r) == id).copied()
    }

    /// Adds a row for `id` (not known yet); returns it.
    pub fn push(&mut self, id: &str) -> u32 {
        let row = self.ends.len() as u32;
        self.text.extend_from_slice(id.as_bytes());
        self.ends.push(self.text.len() as u64);
        let h = self.hash(id);
        let (text, ends, hasher) = (&self.text, &self.ends, &self.hasher);
        self.table
            .insert_unique(h, row, |r| hasher.hash_one(text_at(text, ends, *r as usize)));
        row
    }

    /// Forgets `id` (merged away): its row keeps no id. Returns the row.
    pub fn remove(&mut self, id: &str) -> Option<u32> {
        let h = self.hash(id);
        let (text, ends) = (&self.text, &self.ends);
        let found = self
            .table
            .find_entry(h, |&r| text_at(text, ends, r as usize) == id);
        let (row, _) = found.ok()?.remove();
        self.cleared.insert(row);
        Some(row)
    }

    /// The first user id known for `row`.
    pub fn user_id(&self, row: u32) -> Option<&str> {
        match self.users.get(&row) {
            Some(u) => u.as_deref(),
            None => self.text_of(row).strip_prefix("user:"),
        }
    }

    /// Sets the user id of `row`.
    pub fn set_user_id(&mut self, row: u32, user: Option<&str>) {
        if user == self.text_of(row).strip_prefix("user:") {
            self.users.remove(&row);
        } else {
            self.users.insert(row, user.map(Into::into));
        }
    }

    /// Gives back the room kept for growth.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> u64 {
        (self.text.capacity() + self.ends.capacity() * 8 + self.table.capacity() * 5) as u64
    }

    /// The parts to persist: id texts by row, cleared rows, user ids that differ.
    pub fn parts(&self) -> IdParts<'_> {
        (&self.text, &self.ends, &self.cleared, &self.users)
    }

    /// Rebuilt from [`ProfileIds::parts`]; `None` when they do not fit together.
    pub fn from_parts(
        text: Vec<u8>,
        ends: Vec<u64>,
        cleared: roaring::RoaringBitmap,
        users: HashMap<u32, Option<Box<str>>>,
    ) -> Option<ProfileIds> {
        let mut prev = 0u64;
        for &e in &ends {
            if e < prev || e > text.len() as u64 {
                return None;
            }
            std::str::from_utf8(&text[prev as usize..e as usize]).ok()?;
            prev = e;
        }
        let mut ids = ProfileIds {
            text,
            ends,
            cleared,
            table: HashTable::with_capacity(0),
            hasher: std::hash::RandomState::new(),
            users,
        };
        let mut table = HashTable::with_capacity(ids.ends.len());
        let (text, ends, hasher) = (&ids.text, &ids.ends, &ids.hasher);
        let hash = |r: u32| hasher.hash_one(text_at(text, ends, r as usize));
        for row in 0..ends.len() as u32 {
            if !ids.cleared.contains(row) {
                table.insert_unique(hash(row), row, |r| hash(*r));
            }
        }
        ids.table = table;
        Some(ids)
    }
}

/// Order id → the row that placed it, as `(hash of the id, row)` pairs: the id itself
/// lives in that row's facts, which a look-up checks (`owns`).
#[derive(Debug, Default)]
pub struct OrderOwners {
    table: HashTable<(u32, u32)>,
    hasher: std::hash::RandomState,
}

/// Spreads a 32-bit hash over the 64 bits the table reads.
fn widen(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl OrderOwners {
    fn h32(&self, id: &str) -> u32 {
        self.hasher.hash_one(id) as u32
    }

    /// The row that placed order `id`; `owns(row)` says whether a row with the same
    /// hash really holds it.
    pub fn get(&self, id: &str, owns: impl Fn(u32) -> bool) -> Option<u32> {
        let h = self.h32(id);
        self.table
            .iter_hash(widen(h))
            .filter(|(x, _)| *x == h)
            .map(|(_, r)| *r)
            .find(|r| owns(*r))
    }

    /// Records that `row` placed order `id` (not known yet).
    pub fn insert(&mut self, id: &str, row: u32) {
        let h = self.h32(id);
        self.table.insert_unique(widen(h), (h, row), |(x, _)| widen(*x));
    }

    /// Order `id` moved from row `from` to row `to` (a merge).
    pub fn moved(&mut self, id: &str, from: u32, to: u32) {
        let h = self.h32(id);
        if let Some(e) = self.table.find_mut(widen(h), |(x, r)| *x == h && *r == from) {
            e.1 = to;
        }
    }

    /// Number of orders.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there is no order.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_rows_and_user_ids_round_trip_and_survive_merges() {
        let mut ids = ProfileIds::default();
        for i in 0..5_000 {
            let id = if i % 2 == 0 {
                format!("user:u{i}")
            } else {
                format!("anon:a{i}")
            };
            assert_eq!(ids.push(&id), i);
        }
        assert_eq!(ids.row("user:u42"), Some(42));
        assert_eq!(ids.row("anon:a43"), Some(43));
        assert_eq!(ids.row("user:u43"), None);
        assert_eq!(ids.user_id(42), Some("u42"));
        assert_eq!(ids.user_id(43), None);
        ids.set_user_id(43, Some("u-late"));
        assert_eq!(ids.user_id(43), Some("u-late"));
        assert_eq!(ids.remove("anon:a43"), Some(43));
        assert_eq!(ids.row("anon:a43"), None);
        assert_eq!(ids.id(43), "");
        assert_eq!(ids.remove("anon:a43"), None);
        ids.set_user_id(42, None);
        assert_eq!(ids.user_id(42), None);
        let (t, e, c, u) = ids.parts();
        let back = ProfileIds::from_parts(t.to_vec(), e.to_vec(), c.clone(), u.clone()).unwrap();
        for row in 0..5_000 {
            assert_eq!(back.id(row), ids.id(row));
            assert_eq!(back.user_id(row), ids.user_id(row));
            if !ids.id(row).is_empty() {
                assert_eq!(back.row(ids.id(row)), Some(row));
            }
        }
        assert_eq!(back.row("anon:a43"), None);
    }
}
