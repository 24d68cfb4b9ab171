//! The engine's state saved to a file (`audience.snapshot` in the data directory), so a
//! start loads it instead of replaying the store.
//!
//! What is saved is what the store would otherwise be replayed for: profile ids and user
//! ids, every profile's encoded facts with their dictionaries, manual tag members, the
//! event names seen, the kept trait keys, the registered counters and pending refunds.
//! Columns, rule memberships and RFM scores are derived from those at load (as after a
//! rebuild). Definitions are not saved: they are read from the store as always, and the
//! file is only used when the configuration and the stored definitions are those it was
//! saved with (their fingerprint) and its counters are the ones they register.
//!
//! The encoding is hand-rolled: the facts are already byte strings (see
//! [`crate::packed`]), so a generic serializer would add nothing but a walk over ten
//! million boxes; everything else is lengths and little-endian integers. A header holds
//! a magic, the format version, the fingerprint, the log position (the highest event
//! `seq` folded in) and a CRC-32 of the payload; the file is written to a temporary name,
//! synced and renamed, so a crash leaves the old file or the new one.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::bytes::{put_bitmap, put_bytes, put_strs, put_u64, Cursor};

use super::ids::ProfileIds;
use super::state::{Installed, State};
use crate::config::AudienceConfig;
use crate::packed::{Dict, FactTable};
use crate::{Error, Result};

/// The file name in the data directory.
pub const FILE: &str = "audience.snapshot";

const MAGIC: &[u8; 8] = b"FWAUDSNP";

/// The format version; a file of another version is not read (the state is rebuilt).
pub const VERSION: u32 = 2;

const HEADER: usize = 8 + 4 + 8 + 8 + 8 + 4;

/// The path of the snapshot in `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// FNV-1a, 64 bits: a stable fingerprint (the same in every process and release).
fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The fingerprint of what a state depends on besides the log: the settings and the
/// stored definitions `(name, JSON)`.
pub fn fingerprint(config: &AudienceConfig, tags: &[(String, String)], segments: &[(String, String)]) -> u64 {
    let settings = serde_json::to_string(config).unwrap_or_default();
    let mut parts: Vec<&[u8]> = vec![settings.as_bytes()];
    let mut defs: Vec<&(String, String)> = tags.iter().chain(segments).collect();
    defs.sort();
    for (n, b) in defs {
        parts.push(n.as_bytes());
        parts.push(b.as_bytes());
    }
    fnv(&parts)
}

/// Encodes the parts of `state` a load needs.
fn payload(state: &State) -> Vec<u8> {
    let mut out = Vec::with_capacity(state.facts.len() * 160 + 1024);
    let (text, ends, cleared, users) = state.ids.parts();
    put_bytes(&mut out, text);
    put_u64(&mut out, ends.len() as u64);
    for e in ends {
        put_u64(&mut out, *e);
    }
    put_bitmap(&mut out, cleared);
    put_u64(&mut out, users.len() as u64);
    for (row, u) in users {
        put_u64(&mut out, u64::from(*row));
        match u {
            None => out.push(0),
            Some(u) => {
                out.push(1);
                put_bytes(&mut out, u.as_bytes());
            }
        }
    }
    put_strs(&mut out, state.facts.keys.names().iter().map(|s| &**s));
    put_strs(&mut out, state.facts.values.names().iter().map(|s| &**s));
    put_u64(&mut out, state.facts.raw_rows().len() as u64);
    for r in state.facts.raw_rows() {
        put_bytes(&mut out, r);
    }
    let mut events: Vec<&str> = state.events_seen.iter().map(String::as_str).collect();
    events.sort_unstable();
    put_strs(&mut out, events.into_iter());
    let mut keys: Vec<&str> = state.trait_keys.iter().map(String::as_str).collect();
    keys.sort_unstable();
    put_strs(&mut out, keys.into_iter());
    let counters: Vec<String> = state.registry.counters().iter().map(|(_, s)| s.key()).collect();
    put_strs(&mut out, counters.iter().map(String::as_str));
    put_u64(&mut out, state.pending_adjustments.len() as u64);
    for (order, adjustments) in &state.pending_adjustments {
        put_bytes(&mut out, order.as_bytes());
        put_u64(&mut out, adjustments.len() as u64);
        for (m, cancel, amount) in adjustments {
            put_bytes(&mut out, m.as_bytes());
            out.push(u8::from(*cancel) | u8::from(amount.is_some()) << 1);
            put_u64(&mut out, amount.unwrap_or(0) as u64);
        }
    }
    state.index.write(&mut out);
    let (rfm, scheduled, day) = state.saved_rows();
    put_u64(&mut out, rfm.len() as u64);
    for s in rfm {
        match s {
            None => out.extend_from_slice(&[0, 0, 0, 0]),
            Some(s) => out.extend_from_slice(&[1, s.r, s.f, s.m]),
        }
    }
    put_u64(&mut out, scheduled.len() as u64);
    for t in scheduled {
        put_u64(&mut out, *t as u64);
    }
    put_u64(&mut out, day as u64);
    out.push(u8::from(state.rfm_dirty));
    out
}

/// Saves `state` at log position `position` with `fingerprint` to `path`, atomically.
pub fn save(state: &State, path: &Path, fingerprint: u64, position: i64) -> Result<()> {
    let body = payload(state);
    let mut head = Vec::with_capacity(HEADER);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    put_u64(&mut head, fingerprint);
    put_u64(&mut head, position as u64);
    put_u64(&mut head, body.len() as u64);
    head.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    let tmp = path.with_extension("snapshot.tmp");
    let io = |what: &str, e: std::io::Error| Error::Internal(format!("{what} {}: {e}", tmp.display()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
    f.write_all(&head).map_err(|e| io("writing", e))?;
    f.write_all(&body).map_err(|e| io("writing", e))?;
    f.sync_all().map_err(|e| io("syncing", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io("renaming", e))?;
    Ok(())
}

/// A saved state as read, before it is checked against the store.
pub struct Saved {
    /// The fingerprint it was saved with.
    pub fingerprint: u64,
    /// The highest event `seq` folded into it.
    pub position: i64,
    body: Vec<u8>,
}

/// Reads the file at `path` and checks its header and checksum (`Err` says why not).
pub fn read(path: &Path) -> std::result::Result<Saved, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut head = [0u8; HEADER];
    f.read_exact(&mut head)
        .map_err(|e| format!("short header: {e}"))?;
    if &head[..8] != MAGIC {
        return Err("not an audience snapshot".into());
    }
    let u32_at = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap_or_default());
    let version = u32_at(8);
    if version != VERSION {
        return Err(format!("format version {version}, this release reads {VERSION}"));
    }
    let (fingerprint, position, len, crc) = (u64_at(12), u64_at(20) as i64, u64_at(28), u32_at(36));
    let mut body = Vec::with_capacity(usize::try_from(len).map_err(|_| "too large")?);
    f.read_to_end(&mut body).map_err(|e| format!("reading: {e}"))?;
    if body.len() as u64 != len || crc32fast::hash(&body) != crc {
        return Err("truncated or damaged (checksum)".into());
    }
    Ok(Saved {
        fingerprint,
        position,
        body,
    })
}

/// Installs a saved payload into `state` (built-in tags and stored definitions already
/// registered, no profile yet); `Err` says why it does not fit.
pub fn install(state: &mut State, saved: &Saved) -> std::result::Result<(), String> {
    let bad = || "damaged payload".to_owned();
    let mut c = Cursor::new(&saved.body);
    let text = c.bytes().ok_or_else(bad)?.to_vec();
    let ends: Vec<u64> = (0..c.count().ok_or_else(bad)?)
        .map(|_| c.u64())
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let cleared = c.bitmap().ok_or_else(bad)?;
    let mut users = HashMap::new();
    for _ in 0..c.count().ok_or_else(bad)? {
        let row = u32::try_from(c.u64().ok_or_else(bad)?).map_err(|_| bad())?;
        let user = match c.byte().ok_or_else(bad)? {
            0 => None,
            _ => Some(Box::<str>::from(c.str().ok_or_else(bad)?)),
        };
        users.insert(row, user);
    }
    let ids = ProfileIds::from_parts(text, ends, cleared, users).ok_or_else(bad)?;
    let keys = Dict::from_names(c.strs().ok_or_else(bad)?);
    let values = Dict::from_names(c.strs().ok_or_else(bad)?);
    let rows: Vec<Box<[u8]>> = (0..c.count().ok_or_else(bad)?)
        .map(|_| c.bytes().map(Into::into))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    if rows.len() != ids.len() {
        return Err(bad());
    }
    let mut owners = super::ids::OrderOwners::default();
    let facts = FactTable::from_raw(rows, keys, values, |row, f| {
        for o in &f.orders {
            owners.insert(&o.order_id, row);
        }
    })
    .ok_or_else(|| "unreadable facts".to_owned())?;
    let events = c.strs().ok_or_else(bad)?;
    let trait_keys = c.strs().ok_or_else(bad)?;
    let counters = c.strs().ok_or_else(bad)?;
    let registered: Vec<String> = state.registry.counters().iter().map(|(_, s)| s.key()).collect();
    if counters.len() != registered.len() || counters.iter().zip(&registered).any(|(a, b)| **a != **b) {
        return Err("its event counters are not those the definitions register".into());
    }
    let mut pending = HashMap::new();
    for _ in 0..c.count().ok_or_else(bad)? {
        let order = c.str().ok_or_else(bad)?.to_owned();
        let mut list = Vec::new();
        for _ in 0..c.count().ok_or_else(bad)? {
            let m = c.str().ok_or_else(bad)?.to_owned();
            let bits = c.byte().ok_or_else(bad)?;
            let amount = c.u64().ok_or_else(bad)? as i64;
            list.push((m, bits & 1 != 0, (bits & 2 != 0).then_some(amount)));
        }
        pending.insert(order, list);
    }
    let index = crate::index::Index::read(&mut c).ok_or_else(bad)?;
    let n = c.count().ok_or_else(bad)?;
    let mut rfm = Vec::with_capacity(n);
    for _ in 0..n {
        let b: Vec<u8> = (0..4).map(|_| c.byte()).collect::<Option<_>>().ok_or_else(bad)?;
        rfm.push((b[0] != 0).then_some(crate::rfm::score::RfmScore {
            r: b[1],
            f: b[2],
            m: b[3],
        }));
    }
    let scheduled: Vec<i64> = (0..c.count().ok_or_else(bad)?)
        .map(|_| c.u64().map(|t| t as i64))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let day = c.u64().ok_or_else(bad)? as i32;
    let rfm_dirty = c.byte().ok_or_else(bad)? != 0;
    let rows = ids.len();
    if !c.at_end() || index.rows() as usize != rows || rfm.len() != rows || scheduled.len() != rows {
        return Err(bad());
    }
    state.install_saved(Installed {
        ids,
        facts,
        owners,
        pending,
        index,
        rfm,
        scheduled,
        day,
        rfm_dirty,
    });
    state.events_seen.extend(events.into_iter().map(String::from));
    state.want_traits(trait_keys.into_iter().map(String::from));
    Ok(())
}

/// Derives what a state keeps besides its facts: columns, RFM scores, memberships (taken
/// silently, as at every start).
pub(super) fn derive(state: &mut State, now: i64) {
    state.refresh_needs();
    state.refresh_all(now);
    super::rfm::rescore(state, now);
    state.evaluate_all(
        now,
        |_| true,
        false,
        flywheel_store::transitions::Cause::Definition,
    );
    state.shrink_to_fit();
}

/// Builds the state from the snapshot in `dir` when it fits the store (same settings and
/// definitions, and the log where it was saved); `Err` says why it was not used.
pub(super) async fn load(
    store: &flywheel_store::Store,
    config: &AudienceConfig,
    now: i64,
    stored: &super::snapshot::StoredDefinitions,
    dir: &Path,
    following: bool,
) -> std::result::Result<State, String> {
    let saved = read(&path_in(dir))?;
    if saved.fingerprint != fingerprint(config, &stored.tags, &stored.segments) {
        return Err("the settings or the stored definitions changed since it was saved".into());
    }
    let (head, followable) = store
        .read_with(|c| {
            Ok((
                flywheel_store::batch_log::head(c)?,
                flywheel_store::batch_log::oldest_followable(c)?,
            ))
        })
        .await
        .map_err(|e| e.to_string())?;
    // Checked before the load's work; the state is handed to `catch_up` after it.
    catch_up_from(saved.position, head, followable, following)?;
    let mut state =
        super::manage::seeded(config.clone(), now, stored.event_names.clone()).map_err(|e| e.to_string())?;
    super::manage::register_definitions(&mut state, stored.tags.clone(), stored.segments.clone())
        .map_err(|e| e.to_string())?;
    state.refresh_needs();
    install(&mut state, &saved)?;
    state.position = saved.position;
    state.catch_up_time(now);
    Ok(state)
}

/// Whether a state saved at log position `position` can be brought to the log's `head`:
/// when nothing was committed since, or — for a process following the shared log of
/// committed batches ([`flywheel_store::batch_log`]), whose follower folds every batch
/// after the state's position in order, through the same path as live batches — when
/// those batches are still kept (`followable`: the oldest position the log can be
/// followed from). A process that only hears its own commits rebuilds instead.
pub fn catch_up_from(
    position: i64,
    head: i64,
    followable: Option<i64>,
    following: bool,
) -> std::result::Result<(), String> {
    if position == head {
        return Ok(());
    }
    if position > head {
        return Err(format!(
            "it stands at seq {position}, after the store's last event {head} (another store?)"
        ));
    }
    if !following {
        return Err(format!(
            "events were stored since it was saved (seq {position}, now {head})"
        ));
    }
    match followable {
        Some(oldest) if oldest <= position => Ok(()),
        _ => Err(format!(
            "the shared log no longer holds the batches after seq {position} (pruned)"
        )),
    }
}

impl State {
    /// Saves this state to `path` at log position `position`, with the fingerprint of
    /// the settings and stored definitions `(name, JSON)` it was built with (the
    /// benchmark; the server saves through [`super::Audience::save_snapshot`]).
    pub fn save_to(
        &self,
        path: &Path,
        tags: &[(String, String)],
        segments: &[(String, String)],
        position: i64,
    ) -> Result<()> {
        save(self, path, fingerprint(&self.config, tags, segments), position)
    }

    /// Loads a state saved by [`State::save_to`] at `now` under `config` and the stored
    /// definitions `(name, JSON)`, without a store (the benchmark); with its position.
    pub fn load_from(
        path: &Path,
        config: AudienceConfig,
        now: i64,
        tags: Vec<(String, String)>,
        segments: Vec<(String, String)>,
    ) -> std::result::Result<(State, i64), String> {
        let saved = read(path)?;
        if saved.fingerprint != fingerprint(&config, &tags, &segments) {
            return Err("the settings or the definitions differ".into());
        }
        let mut state = super::manage::seeded(config, now, Vec::new()).map_err(|e| e.to_string())?;
        super::manage::register_definitions(&mut state, tags, segments).map_err(|e| e.to_string())?;
        state.refresh_needs();
        install(&mut state, &saved)?;
        state.position = saved.position;
        Ok((state, saved.position))
    }
}

impl super::Audience {
    /// Saves the engine's state to `audience.snapshot` in the data directory (when the
    /// server gave one) with the log position it stands at (the highest event `seq`
    /// folded in, read under the same lock), so the next start loads it instead of
    /// replaying the store. Returns whether it saved.
    pub async fn save_snapshot(&self) -> Result<bool> {
        let Some(dir) = self.read().config.snapshot_dir.clone() else {
            return Ok(false);
        };
        // Whatever was handed over so far is folded first (not needed for consistency:
        // the state and its position are read together).
        self.flush().await;
        let stored = self.store().read_with(super::snapshot::read_definitions).await?;
        let shared = self.shared.clone();
        let started = std::time::Instant::now();
        let head = tokio::task::spawn_blocking(move || {
            let s = shared.state.read().unwrap_or_else(|p| p.into_inner());
            let fp = fingerprint(&s.config, &stored.tags, &stored.segments);
            save(&s, &path_in(&dir), fp, s.position).map(|()| s.position)
        })
        .await
        .map_err(|e| Error::Internal(format!("saving the audience snapshot: {e}")))??;
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            position = head,
            "audience snapshot saved"
        );
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::catch_up_from;

    #[test]
    fn a_saved_state_is_used_only_when_the_log_since_can_be_folded() {
        assert!(catch_up_from(40, 40, None, false).is_ok(), "nothing stored since");
        assert!(catch_up_from(40, 40, None, true).is_ok());
        assert!(
            catch_up_from(41, 40, Some(0), true).is_err(),
            "ahead of the store"
        );
        assert!(
            catch_up_from(40, 45, Some(0), false).is_err(),
            "no follower to fold 41..=45"
        );
        assert!(catch_up_from(40, 45, Some(40), true).is_ok(), "41.. still kept");
        assert!(catch_up_from(40, 45, Some(12), true).is_ok());
        assert!(catch_up_from(40, 45, Some(41), true).is_err(), "41 pruned");
        assert!(catch_up_from(40, 45, None, true).is_err(), "nothing kept");
    }
}
