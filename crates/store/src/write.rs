//! Applying a batch of accepted events in one write transaction.
//!
//! In order: insert events, skipping `messageId`s already stored (dedupe); resolve
//! identities of the new events (union-find over the batch plus the stored graph,
//! merging profiles that the batch links); update profile first/last seen and
//! counts; merge traits (latest timestamp wins per key, ties by larger `messageId`);
//! materialise products, orders and their adjustments. Every step is an upsert with a
//! deterministic winner, so a batch applied twice, or batches applied in another
//! order, give the same state.
//!
//! One exception, the trust boundary: an event from a client-scoped write key never
//! joins two profiles that each already have a `userId` (a browser could otherwise
//! merge any two customers, and with them one's contact details into the other's
//! profile); its other links are made as usual. Which of its links are refused can
//! depend on what arrived before it.

use crate::conn::Sql;
use std::collections::{BTreeMap, HashMap, HashSet};

use flywheel_core::time::to_millis;
use flywheel_core::{Identity, OrderAdjustmentKind, ProfileId};

use crate::conn::{Conn, Param};
use crate::{ApplyOutcome, NewEvent, Result};

/// Applies `batch` inside the caller's write transaction.
pub fn apply(conn: &mut dyn Conn, batch: &[NewEvent]) -> Result<ApplyOutcome> {
    let mut seen = HashSet::with_capacity(batch.len());
    let first: Vec<bool> = batch
        .iter()
        .map(|e| seen.insert(e.event().message_id.as_str()))
        .collect();
    let unique: Vec<&NewEvent> = batch
        .iter()
        .zip(&first)
        .filter(|(_, f)| **f)
        .map(|(e, _)| e)
        .collect();
    let before = crate::log_cursor::last_seq(conn)?;
    let inserted_ids = insert_events(conn, &unique)?;
    let inserted: Vec<bool> = batch
        .iter()
        .zip(&first)
        .map(|(e, f)| *f && inserted_ids.contains(e.event().message_id.as_str()))
        .collect();
    let fresh: Vec<&NewEvent> = batch
        .iter()
        .zip(&inserted)
        .filter(|(_, i)| **i)
        .map(|(e, _)| e)
        .collect();
    let outcome = ApplyOutcome::from_flags(inserted);
    if fresh.is_empty() {
        return Ok(outcome);
    }
    // Each event's identities, built once for resolution and for the profile updates.
    let ids: Vec<Vec<Identity>> = fresh.iter().map(|e| e.event().identities()).collect();
    let trusted: Vec<bool> = fresh.iter().map(|e| e.scope().is_server()).collect();
    let (profile_of, merges) = resolve_identities(conn, &ids, &trusted)?;
    update_profiles(conn, &fresh, &ids, &profile_of)?;
    crate::commerce::apply(conn, &fresh)?;
    let mut resolved = ids
        .iter()
        .map(|i| i.first().and_then(|first| profile_of.get(first).cloned()));
    let profiles: Vec<Option<ProfileId>> = outcome
        .stored
        .iter()
        .map(|stored| if *stored { resolved.next().flatten() } else { None })
        .collect();
    let by_message: HashMap<&str, &ProfileId> = batch
        .iter()
        .zip(&profiles)
        .filter_map(|(e, p)| Some((e.event().message_id.as_str(), p.as_ref()?)))
        .collect();
    // When it was recorded (wall clock, not the events' own times: imported history
    // would otherwise look old at once and be pruned before every process read it).
    let at = to_millis(chrono::Utc::now());
    let last_seq = crate::batch_log::record(conn, before, &by_message, &merges, at)?;
    Ok(ApplyOutcome {
        profiles,
        merges,
        last_seq,
        ..outcome
    })
}

fn insert_events(conn: &mut dyn Conn, events: &[&NewEvent]) -> Result<HashSet<String>> {
    const COLS: usize = 12;
    let mut params = Vec::with_capacity(events.len() * COLS);
    for e in events {
        let ev = e.event();
        params.extend([
            Param::Text(&ev.message_id),
            Param::Text(ev.kind.as_str()),
            Param::OptText(ev.event.as_deref().or(ev.name.as_deref())),
            Param::OptText(ev.user_id.as_deref()),
            Param::OptText(ev.anonymous_id.as_deref()),
            Param::I64(to_millis(ev.timestamp)),
            Param::I64(to_millis(ev.received_at)),
            Param::OptText(e.source()),
            Param::Text(e.body()),
            Param::OptText(e.campaign().map(|c| c.name.as_str())),
            Param::OptText(e.campaign().and_then(|c| c.source.as_deref())),
            Param::I64(i64::from(e.is_system_write())),
        ]);
    }
    let rows = conn.insert_rows(
        "INSERT INTO events (message_id, kind, name, user_id, anonymous_id, ts, received_at, source, body, \
         campaign_name, campaign_source, system_write)",
        COLS,
        "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        &params,
    )?;
    let mut inserted = HashSet::with_capacity(rows.len());
    for row in rows {
        inserted.insert(row.text(0)?);
    }
    Ok(inserted)
}

/// Union-find over profile ids; the root of a set is its canonical id.
#[derive(Default)]
struct Links {
    parent: HashMap<ProfileId, ProfileId>,
}

impl Links {
    fn find(&mut self, p: &ProfileId) -> ProfileId {
        let mut cur = p.clone();
        while let Some(next) = self.parent.get(&cur) {
            if *next == cur {
                break;
            }
            cur = next.clone();
        }
        // Path compression.
        let mut walk = p.clone();
        while walk != cur {
            let next = self
                .parent
                .insert(walk, cur.clone())
                .unwrap_or_else(|| cur.clone());
            walk = next;
        }
        cur
    }

    /// Whether `a` and `b` are in different sets that each hold a user id (a profile's
    /// canonical id is a user id whenever it has one).
    fn joins_two_customers(&mut self, a: &ProfileId, b: &ProfileId) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        ra != rb && ra.0.starts_with("user:") && rb.0.starts_with("user:")
    }

    fn union(&mut self, a: &ProfileId, b: &ProfileId) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let root = ProfileId::canonical(ra.clone(), rb.clone());
            let child = if root == ra { rb } else { ra };
            self.parent.insert(child, root.clone());
            self.parent.entry(root.clone()).or_insert(root);
        }
    }
}

/// Resolves every identity of `events` to its final profile, merging profiles the batch
/// links; an event that is not `trusted` (client key) never joins two customers.
#[allow(clippy::type_complexity)]
fn resolve_identities(
    conn: &mut dyn Conn,
    events: &[Vec<Identity>],
    trusted: &[bool],
) -> Result<(HashMap<Identity, ProfileId>, Vec<(ProfileId, ProfileId)>)> {
    let mut idents: Vec<Identity> = events.iter().flatten().cloned().collect();
    idents.sort();
    idents.dedup();
    let keys: Vec<String> = idents.iter().map(Identity::key).collect();
    let mut stored: HashMap<String, ProfileId> = HashMap::with_capacity(keys.len());
    let mut missing: Vec<&str> = Vec::new();
    match conn.identity_cache() {
        Some(cache) => {
            for k in &keys {
                match cache.get(k) {
                    Some(p) => {
                        stored.insert(k.clone(), ProfileId(p));
                    }
                    None => missing.push(k),
                }
            }
        }
        None => missing.extend(keys.iter().map(String::as_str)),
    }
    let mut looked_up = Vec::new();
    for row in conn.select_in("SELECT id, profile_id FROM identities", "id", &missing)? {
        let (key, profile) = (row.text(0)?, row.text(1)?);
        looked_up.push((key.clone(), profile.clone()));
        stored.insert(key, ProfileId(profile));
    }
    if let Some(cache) = conn.identity_cache() {
        for (key, profile) in looked_up {
            cache.insert(key, profile);
        }
    }
    // Each identity starts at its stored profile, or at a profile of its own.
    let start: HashMap<&Identity, ProfileId> = idents
        .iter()
        .zip(&keys)
        .map(|(i, k)| (i, stored.get(k).cloned().unwrap_or_else(|| ProfileId::of(i))))
        .collect();
    let node = |i: &Identity| start.get(i).cloned().unwrap_or_else(|| ProfileId::of(i));
    let mut links = Links::default();
    for (ids, trusted) in events.iter().zip(trusted) {
        let Some((head, rest)) = ids.split_first() else {
            continue;
        };
        let first = node(head);
        links.find(&first);
        for other in rest {
            let other = node(other);
            if !trusted && links.joins_two_customers(&first, &other) {
                tracing::debug!(profile = %first.0, other = %other.0, "client key may not join two customers; link not made");
                continue;
            }
            links.union(&first, &other);
        }
    }
    // Stored profiles whose set now has another canonical id are merged into it.
    let existing: HashSet<ProfileId> = stored.values().cloned().collect();
    let mut merges: BTreeMap<ProfileId, Vec<ProfileId>> = BTreeMap::new();
    for p in &existing {
        let root = links.find(p);
        if root != *p {
            merges.entry(root).or_default().push(p.clone());
        }
    }
    for (winner, losers) in &merges {
        for loser in losers {
            merge_profile(conn, loser, winner)?;
        }
    }
    let mut profile_of = HashMap::with_capacity(idents.len());
    let mut new_rows: Vec<(String, ProfileId)> = Vec::new();
    for (ident, key) in idents.iter().zip(&keys) {
        let root = links.find(&node(ident));
        if !stored.contains_key(key) {
            new_rows.push((key.clone(), root.clone()));
        }
        profile_of.insert(ident.clone(), root);
    }
    let params: Vec<Param> = new_rows
        .iter()
        .flat_map(|(k, p)| [Param::Text(k), Param::Text(&p.0)])
        .collect();
    conn.insert_rows(
        "INSERT INTO identities (id, profile_id)",
        2,
        "ON CONFLICT (id) DO NOTHING",
        &params,
    )?;
    let merged: Vec<(ProfileId, ProfileId)> = merges
        .iter()
        .flat_map(|(w, ls)| ls.iter().map(move |l| (l.clone(), w.clone())))
        .collect();
    if let Some(cache) = conn.identity_cache() {
        for (winner, losers) in merges {
            for loser in losers {
                cache.rename(loser.0, winner.0.clone());
            }
        }
        for (key, profile) in new_rows {
            cache.insert(key, profile.0);
        }
    }
    Ok((profile_of, merged))
}

const TRAIT_NEWER: &str = "ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value, \
     ts = excluded.ts, message_id = excluded.message_id \
     WHERE excluded.ts > profile_traits.ts \
     OR (excluded.ts = profile_traits.ts AND excluded.message_id > profile_traits.message_id)";

const PROFILE_UPSERT: &str = "ON CONFLICT (id) DO UPDATE SET \
     first_seen = CASE WHEN excluded.first_seen < profiles.first_seen THEN excluded.first_seen ELSE profiles.first_seen END, \
     last_seen = CASE WHEN excluded.last_seen > profiles.last_seen THEN excluded.last_seen ELSE profiles.last_seen END, \
     event_count = profiles.event_count + excluded.event_count, \
     first_active = COALESCE(CASE WHEN excluded.first_active < profiles.first_active THEN excluded.first_active \
         ELSE profiles.first_active END, excluded.first_active), \
     last_active = COALESCE(CASE WHEN excluded.last_active > profiles.last_active THEN excluded.last_active \
         ELSE profiles.last_active END, excluded.last_active)";

/// Moves everything of profile `loser` into `winner` (which may not exist yet).
fn merge_profile(conn: &mut dyn Conn, loser: &ProfileId, winner: &ProfileId) -> Result<()> {
    tracing::debug!(%loser, %winner, "merging profiles");
    let (w, l) = (Param::Text(&winner.0), Param::Text(&loser.0));
    conn.execute(
        "UPDATE identities SET profile_id = $1 WHERE profile_id = $2",
        &[w.clone(), l.clone()],
    )?;
    conn.execute(
        &format!(
            "INSERT INTO profile_traits (profile_id, key, value, ts, message_id) \
             SELECT $1, key, value, ts, message_id FROM profile_traits WHERE profile_id = $2 {TRAIT_NEWER}"
        ),
        &[w.clone(), l.clone()],
    )?;
    conn.execute(
        "DELETE FROM profile_traits WHERE profile_id = $1",
        std::slice::from_ref(&l),
    )?;
    conn.execute(
        &format!(
            "INSERT INTO profiles (id, first_seen, last_seen, event_count, first_active, last_active) \
             SELECT $1, first_seen, last_seen, event_count, first_active, last_active FROM profiles WHERE id = $2 \
             {PROFILE_UPSERT}"
        ),
        &[w, l.clone()],
    )?;
    conn.execute(
        "INSERT INTO manual_tags (tag, profile_id, at) SELECT tag, $1, at FROM manual_tags WHERE profile_id = $2 \
         ON CONFLICT (tag, profile_id) DO NOTHING",
        &[Param::Text(&winner.0), l.clone()],
    )?;
    conn.execute(
        "DELETE FROM manual_tags WHERE profile_id = $1",
        std::slice::from_ref(&l),
    )?;
    conn.execute("DELETE FROM profiles WHERE id = $1", &[l])?;
    Ok(())
}

/// A profile's change from this batch: first/last event, count, and first/last
/// customer event (system writes leave those out).
struct ProfileDelta {
    first: i64,
    last: i64,
    count: i64,
    first_active: Option<i64>,
    last_active: Option<i64>,
}

/// The winning value of one trait in this batch: (timestamp, messageId, JSON text).
type TraitValue<'a> = (i64, &'a str, String);

fn update_profiles(
    conn: &mut dyn Conn,
    events: &[&NewEvent],
    ids: &[Vec<Identity>],
    profile_of: &HashMap<Identity, ProfileId>,
) -> Result<()> {
    let mut deltas: BTreeMap<&ProfileId, ProfileDelta> = BTreeMap::new();
    let mut traits: BTreeMap<(&ProfileId, String), TraitValue> = BTreeMap::new();
    for (e, ids) in events.iter().zip(ids) {
        let Some(profile) = ids.first().and_then(|i| profile_of.get(i)) else {
            continue;
        };
        let ts = to_millis(e.event().timestamp);
        let d = deltas.entry(profile).or_insert(ProfileDelta {
            first: ts,
            last: ts,
            count: 0,
            first_active: None,
            last_active: None,
        });
        d.first = d.first.min(ts);
        d.last = d.last.max(ts);
        d.count += 1;
        if !e.is_system_write() {
            d.first_active = Some(d.first_active.map_or(ts, |t| t.min(ts)));
            d.last_active = Some(d.last_active.map_or(ts, |t| t.max(ts)));
        }
        for (key, value) in e.event().user_traits() {
            let candidate = (ts, e.event().message_id.as_str(), value.to_string());
            let slot = traits.entry((profile, key));
            match slot {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(candidate);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let cur = o.get();
                    if (candidate.0, candidate.1) > (cur.0, cur.1) {
                        o.insert(candidate);
                    }
                }
            }
        }
    }
    let params: Vec<Param> = deltas
        .iter()
        .flat_map(|(p, d)| {
            [
                Param::Text(&p.0),
                Param::I64(d.first),
                Param::I64(d.last),
                Param::I64(d.count),
                Param::OptI64(d.first_active),
                Param::OptI64(d.last_active),
            ]
        })
        .collect();
    conn.insert_rows(
        "INSERT INTO profiles (id, first_seen, last_seen, event_count, first_active, last_active)",
        6,
        PROFILE_UPSERT,
        &params,
    )?;
    let params: Vec<Param> = traits
        .iter()
        .flat_map(|((p, k), (ts, mid, v))| {
            [
                Param::Text(&p.0),
                Param::Text(k),
                Param::Text(v),
                Param::I64(*ts),
                Param::Text(mid),
            ]
        })
        .collect();
    conn.insert_rows(
        "INSERT INTO profile_traits (profile_id, key, value, ts, message_id)",
        5,
        TRAIT_NEWER,
        &params,
    )?;
    Ok(())
}

/// Stored name of an adjustment kind.
pub(crate) fn adjustment_kind(kind: OrderAdjustmentKind) -> &'static str {
    match kind {
        OrderAdjustmentKind::Refund => "refund",
        OrderAdjustmentKind::Cancel => "cancel",
    }
}
