//! Creating, changing and deleting tags and segments, manual tag assignment, and the
//! start-up rebuild that replays the stored definitions.
//!
//! Every change is checked against a copy of the registry first (unknown names, wrong
//! types, cycles), then written to the store, then applied to the live state, so a
//! refused change leaves nothing behind and a stored one is never lost on restart.

use flywheel_core::ErrorCode;
use std::collections::HashSet;

use flywheel_store::audience as q;
use flywheel_store::transitions::Cause;
use flywheel_store::Store;
use serde::Deserialize;

use super::defs::{DefKind, Entry, Registry};
use super::fold::{fold_counters, StoredAction};
use super::recorder::{kind_of, Record};
use super::snapshot;
use super::state::{plan_measures, plan_trait_keys, State};
use super::Audience;
use crate::config::AudienceConfig;
use crate::counter::CounterSpec;
use crate::definitions::{SegmentDef, TagDef, TagKind};
use crate::dsl::{self, Expr};
use crate::plan::{self, Names, Plan};
use crate::{Error, Result};

/// The longest tag or segment name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A segment expression as the API and the CLI send it: text or the JSON tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    /// The text form (`docs/segments.md`).
    #[serde(default)]
    pub expression: Option<String>,
    /// The JSON form of the same tree.
    #[serde(default)]
    pub ast: Option<Expr>,
}

impl SegmentInput {
    /// From text.
    pub fn text(s: impl Into<String>) -> SegmentInput {
        SegmentInput {
            expression: Some(s.into()),
            ast: None,
        }
    }

    /// The tree: parsed from text or taken from JSON (exactly one must be given).
    pub fn expr(&self) -> Result<Expr> {
        match (&self.expression, &self.ast) {
            (Some(t), None) => Ok(dsl::parse(t)?),
            (None, Some(e)) => Ok(e.clone()),
            (Some(_), Some(_)) => Err(Error::Invalid(
                "give either \"expression\" or \"ast\", not both".into(),
            )),
            (None, None) => Err(Error::Invalid(
                "give the segment as \"expression\" (text) or \"ast\" (JSON tree)".into(),
            )),
        }
    }
}

/// A tag to create or replace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagInput {
    /// Unique name.
    pub name: String,
    /// `rule` (default when a rule is given) or `manual`.
    #[serde(default)]
    pub kind: Option<TagKind>,
    /// Tag group.
    #[serde(default)]
    pub group: Option<String>,
    /// Rule as text.
    #[serde(default)]
    pub rule: Option<String>,
    /// Rule as the JSON tree.
    #[serde(default)]
    pub rule_ast: Option<Expr>,
    /// What it means.
    #[serde(default)]
    pub description: Option<String>,
}

/// The names an expression may use: the registry's tags and segments, the events seen.
struct StateNames<'a> {
    registry: &'a Registry,
    events: &'a HashSet<String>,
}

impl Names for StateNames<'_> {
    fn has_tag(&self, name: &str) -> bool {
        self.registry.get(DefKind::Tag, name).is_some()
    }
    fn has_segment(&self, name: &str) -> bool {
        self.registry.get(DefKind::Segment, name).is_some()
    }
    fn has_event(&self, name: &str) -> bool {
        self.events.contains(name)
    }
    fn event_names(&self) -> Vec<String> {
        self.events.iter().cloned().collect()
    }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    let n = name.chars().count();
    if name.trim().is_empty() || name.trim() != name {
        return Err(Error::refused(
            ErrorCode::InvalidName,
            format!("a {what} name must not be empty or start/end with spaces"),
        ));
    }
    if n > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::refused(
            ErrorCode::InvalidName,
            format!("a {what} name has at most {MAX_NAME_CHARS} characters and no control characters"),
        ));
    }
    Ok(())
}

/// Checks `expr` against the state's definitions and event names into a plan.
pub fn compile(state: &State, expr: &Expr) -> Result<Plan> {
    let names = StateNames {
        registry: &state.registry,
        events: &state.events_seen,
    };
    plan::check(expr, &names, state.windowing.tz)
}

pub(super) fn tag_entry(def: TagDef, state: &State) -> Result<Entry> {
    let plan = match (&def.kind, &def.rule) {
        (TagKind::Rule, Some(r)) => Some(compile(state, &dsl::parse(r)?)?),
        (TagKind::Rule, None) => {
            return Err(Error::refused(ErrorCode::InvalidTag, "a rule tag needs a rule"))
        }
        (TagKind::Manual, Some(_)) => {
            return Err(Error::refused(ErrorCode::InvalidTag, "a manual tag has no rule"))
        }
        (TagKind::Manual, None) => None,
    };
    Ok(Entry {
        kind: DefKind::Tag,
        name: def.name.clone(),
        tag: Some(def),
        segment: None,
        plan,
    })
}

pub(super) fn segment_entry(def: SegmentDef, state: &State) -> Result<Entry> {
    let plan = compile(state, &dsl::parse(&def.expression)?)?;
    Ok(Entry {
        kind: DefKind::Segment,
        name: def.name.clone(),
        tag: None,
        segment: Some(def),
        plan: Some(plan),
    })
}

fn register_counters(
    state: &mut State,
    plan: Option<&Plan>,
) -> Vec<(crate::counter::CounterId, CounterSpec)> {
    let mut fresh = Vec::new();
    if let Some(p) = plan {
        for spec in state.registry.new_counters(p) {
            let (id, new) = state.registry.register_counter(spec.clone());
            if new {
                fresh.push((id, spec));
            }
        }
    }
    fresh
}

/// Registers the event counters `plan` uses that are new and counts `backfill` (read by
/// `read_backfill`) into them, remembering which messages it counted so their live
/// copies are not counted twice; true when a counter was new. A saved rule and an
/// ad-hoc count alike: an unsaved `event(...)` condition counts the stored events too.
fn apply_backfill(state: &mut State, plan: Option<&Plan>, backfill: &[q::EventRow], now: i64) -> bool {
    let fresh = register_counters(state, plan);
    for (id, spec) in &fresh {
        let mut seen = HashSet::new();
        let one = [(*id, spec.clone())];
        for (pid, name, ts, mid, body) in backfill {
            let Some(row) = state.ids.row(pid) else { continue };
            if let Ok(action) = serde_json::from_str::<StoredAction>(body) {
                state
                    .facts
                    .edit(row, |f| fold_counters(f, name, *ts, &action.properties, &one));
                seen.insert(mid.clone());
            }
        }
        state.note_backfill(*id, now, seen);
    }
    !fresh.is_empty()
}

/// An empty state at `now` that knows the event names `events_seen`, with the built-in
/// tags of `config` registered (no profile, no stored definition): where a rebuild starts.
pub fn seeded(config: AudienceConfig, now: i64, events_seen: Vec<String>) -> Result<State> {
    let mut state = State::new(config, now);
    state.events_seen.extend(events_seen);
    for b in state.config.builtin_tags.clone() {
        let def = TagDef {
            name: b.name.clone(),
            kind: TagKind::Rule,
            group: Some(b.group.clone()),
            rule: Some(b.rule.clone()),
            description: Some(b.description.clone()),
            builtin: true,
        };
        let entry = tag_entry(def, &state)
            .map_err(|e| Error::Invalid(format!("built-in tag {:?} in the configuration: {e}", b.name)))?;
        register_counters(&mut state, entry.plan.as_ref());
        state.registry.put(entry)?;
    }
    Ok(state)
}

/// Registers stored definitions `(name, JSON)` (those that no longer check are logged
/// and left out).
pub fn register_definitions(
    state: &mut State,
    tags: Vec<(String, String)>,
    segments: Vec<(String, String)>,
) -> Result<()> {
    // Stored definitions only refer to ones that existed when they were saved: retry
    // until no more can be placed.
    let mut pending: Vec<(DefKind, String, String)> = tags
        .into_iter()
        .map(|(n, b)| (DefKind::Tag, n, b))
        .chain(segments.into_iter().map(|(n, b)| (DefKind::Segment, n, b)))
        .collect();
    loop {
        let before = pending.len();
        let mut left = Vec::new();
        for (kind, name, body) in pending {
            let entry = match kind {
                DefKind::Tag => serde_json::from_str::<TagDef>(&body)
                    .map_err(|e| Error::Invalid(e.to_string()))
                    .and_then(|d| tag_entry(d, state)),
                DefKind::Segment => serde_json::from_str::<SegmentDef>(&body)
                    .map_err(|e| Error::Invalid(e.to_string()))
                    .and_then(|d| segment_entry(d, state)),
            };
            match entry {
                Ok(e) if state.registry.get(kind, &name).is_none() => {
                    register_counters(state, e.plan.as_ref());
                    state.registry.put(e)?;
                }
                Ok(_) => tracing::warn!(%name, "stored definition shadows a built-in tag; ignored"),
                Err(e) => left.push((kind, name, body, e.to_string())),
            }
        }
        let progress = left.len() < before;
        pending = left
            .iter()
            .map(|(k, n, b, _)| (*k, n.clone(), b.clone()))
            .collect();
        if pending.is_empty() || !progress {
            for (kind, name, _, why) in left {
                tracing::warn!(kind = kind.as_str(), %name, error = %why, "stored definition no longer checks; not loaded");
            }
            break;
        }
    }
    Ok(())
}

/// Builds the state from the store: built-in tags from `config`, stored definitions,
/// then every profile's facts, columns and memberships (no transitions).
///
/// When `config.snapshot_dir` holds a saved state that fits, that state is loaded instead
/// (`following`: the shared log is followed from the state's position, so a state saved
/// before later batches still fits); the flag says which it was.
pub async fn open_state(
    store: &Store,
    config: AudienceConfig,
    now: i64,
    following: bool,
) -> Result<(State, bool)> {
    let stored = store.read_with(snapshot::read_definitions).await?;
    if let Some(dir) = config.snapshot_dir.clone() {
        let started = std::time::Instant::now();
        match super::persist::load(store, &config, now, &stored, &dir, following).await {
            Ok(state) => {
                tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    profiles = state.index.alive().len(),
                    "audience state loaded from its snapshot"
                );
                return Ok((state, true));
            }
            Err(why) => tracing::info!(%why, "audience snapshot not used; rebuilding from the store"),
        }
    }
    let (tags, segments) = (stored.tags, stored.segments);
    let mut state = seeded(config, now, stored.event_names)?;

    register_definitions(&mut state, tags, segments)?;
    let counter_names: Vec<String> = state
        .registry
        .counters()
        .iter()
        .map(|(_, s)| s.name.clone())
        .collect();
    let config = state.config.clone();
    let started = std::time::Instant::now();
    let snap = store
        .read_with(move |c| snapshot::read(c, &config, &counter_names))
        .await?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "audience snapshot read"
    );
    state.refresh_needs();
    state.position = snap.position;
    snapshot::fold(&mut state, &snap);
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "audience facts folded");
    for (tag, pid) in &snap.manual_tags {
        if let Some(row) = state.ids.row(pid) {
            state.index.tag_mut(tag).insert(row);
        }
    }
    drop(snap);
    super::persist::derive(&mut state, now);
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "audience memberships evaluated"
    );
    Ok((state, false))
}

impl Audience {
    /// Checks a segment expression into a plan (nothing is changed).
    pub fn compile(&self, input: &SegmentInput) -> Result<(Expr, Plan)> {
        let expr = input.expr()?;
        let plan = compile(&self.read(), &expr)?;
        Ok((expr, plan))
    }

    /// Creates (or with `replace`, replaces) a tag.
    pub async fn put_tag(&self, input: TagInput, replace: bool) -> Result<TagDef> {
        check_name("tag", &input.name)?;
        let rule = match (&input.rule, &input.rule_ast) {
            (Some(t), None) => Some(dsl::parse(t)?.to_string()),
            (None, Some(e)) => Some(e.to_string()),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(Error::refused(
                    ErrorCode::InvalidTag,
                    "give either \"rule\" or \"rule_ast\", not both",
                ))
            }
        };
        let kind = input.kind.unwrap_or(if rule.is_some() {
            TagKind::Rule
        } else {
            TagKind::Manual
        });
        let def = TagDef {
            name: input.name,
            kind,
            group: input.group.filter(|g| !g.trim().is_empty()),
            rule,
            description: input.description,
            builtin: false,
        };
        let entry = {
            let s = self.read();
            if let Some(old) = s.registry.get(DefKind::Tag, &def.name) {
                if old.tag.as_ref().is_some_and(|t| t.builtin) {
                    return Err(Error::refused(
                        ErrorCode::BuiltIn,
                        format!(
                            "tag {:?} is built in; change its rule under [audience] in flywheel.toml",
                            def.name
                        ),
                    ));
                }
                if !replace {
                    return Err(Error::refused(
                        ErrorCode::NameTaken,
                        format!("tag {:?} already exists", def.name),
                    ));
                }
            } else if replace {
                return Err(Error::NotFound(format!("tag {:?}", def.name)));
            }
            tag_entry(def.clone(), &s)?
        };
        self.install(entry, replace).await?;
        Ok(def)
    }

    /// Creates (or with `replace`, replaces) a segment.
    pub async fn put_segment(
        &self,
        name: String,
        input: &SegmentInput,
        description: Option<String>,
        replace: bool,
    ) -> Result<SegmentDef> {
        check_name("segment", &name)?;
        let expr = input.expr()?;
        let def = SegmentDef {
            name,
            expression: expr.to_string(),
            description,
        };
        let entry = {
            let s = self.read();
            match (s.registry.get(DefKind::Segment, &def.name), replace) {
                (Some(_), false) => {
                    return Err(Error::refused(
                        ErrorCode::NameTaken,
                        format!("segment {:?} already exists", def.name),
                    ))
                }
                (None, true) => return Err(Error::NotFound(format!("segment {:?}", def.name))),
                _ => {}
            }
            segment_entry(def.clone(), &s)?
        };
        self.install(entry, replace).await?;
        Ok(def)
    }

    /// The `traits.NAME` keys `plan` reads that were not kept yet — kept from now on — and
    /// their stored values.
    async fn load_new_traits(&self, plan: &Plan) -> Result<(HashSet<String>, Vec<q::TraitRow>)> {
        let new_traits: HashSet<String> = self
            .write()
            .want_traits(plan_trait_keys(plan))
            .into_iter()
            .collect();
        if new_traits.is_empty() {
            return Ok((new_traits, Vec::new()));
        }
        let mut tops: Vec<String> = new_traits
            .iter()
            .map(|k| k.split('.').next().unwrap_or(k).to_owned())
            .collect();
        tops.sort();
        tops.dedup();
        let rows = self.store().read_with(move |c| q::traits_keyed(c, &tops)).await?;
        Ok((new_traits, rows))
    }

    /// Makes an ad-hoc expression's columns part of the index: raw profile traits
    /// (`traits.NAME` that no saved rule reads yet, with their stored values) and
    /// windows no rule keeps (`categories_bought(60d)`, `spend(45d)`), so a count,
    /// preview or export of it sees their values instead of nobody.
    pub async fn prepare(&self, input: &SegmentInput) -> Result<()> {
        let (_, plan) = self.compile(input)?;
        let (new_traits, rows) = self.load_new_traits(&plan).await?;
        let now = self.now();
        let fresh_specs = self.read().registry.new_counters(&plan);
        let backfill = self.read_backfill(&fresh_specs, now).await?;
        let mut s = self.write();
        let new_columns = s.want_measures(plan_measures(&plan));
        let new_counters = apply_backfill(&mut s, Some(&plan), &backfill, now);
        if new_traits.is_empty() && !new_columns && !new_counters {
            return Ok(());
        }
        snapshot::fold_traits(&mut s, &rows, &new_traits);
        s.refresh_all(now);
        Ok(())
    }

    /// The stored events that back-fill the event counters `specs` (not registered yet):
    /// those of their names inside the widest of their windows.
    async fn read_backfill(&self, specs: &[CounterSpec], now: i64) -> Result<Vec<q::EventRow>> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let since = {
            let s = self.read();
            specs
                .iter()
                .map(|sp| sp.window.map_or(i64::MIN, |w| s.windowing.start(now, w)))
                .min()
                .unwrap_or(i64::MIN)
        };
        Ok(self
            .store()
            .read_with(move |c| q::events_named(c, &names, since))
            .await?)
    }

    /// Stores and applies a checked definition: backfills new counters, builds new
    /// columns, evaluates it (silently when new; with transitions when replaced).
    async fn install(&self, entry: Entry, replace: bool) -> Result<()> {
        // Dry run: cycles are refused before anything is stored.
        let fresh_specs = {
            let s = self.read();
            let mut probe = Registry::clone(&s.registry);
            probe.put(entry.clone())?;
            entry
                .plan
                .as_ref()
                .map(|p| s.registry.new_counters(p))
                .unwrap_or_default()
        };
        let now = self.now();
        // Profile traits the rule reads that were not kept: kept from now on (live events
        // fold them at once), and their stored values read back below.
        let (new_traits, trait_rows) = match &entry.plan {
            Some(p) => self.load_new_traits(p).await?,
            None => (HashSet::new(), Vec::new()),
        };
        let backfill = self.read_backfill(&fresh_specs, now).await?;
        let body = match (&entry.tag, &entry.segment) {
            (Some(t), _) => serde_json::to_string(t),
            (_, Some(sg)) => serde_json::to_string(sg),
            _ => Ok(String::new()),
        }
        .map_err(|e| Error::Internal(e.to_string()))?;
        let (kind, name) = (entry.kind.as_str(), entry.name.clone());
        self.store()
            .write_with(move |c| q::put_definition(c, kind, &name, &body, now))
            .await?;
        self.invalidate(flywheel_core::bus::CacheKind::Definitions, &entry.name);
        self.fold_installed(entry, replace, false, new_traits, trait_rows, backfill, now)
    }

    /// Applies a definition stored by another process (see [`Audience::sync_from_store`]):
    /// what [`Audience::install`] does after its store write.
    pub(super) async fn apply_installed(&self, entry: Entry, replace: bool) -> Result<()> {
        let fresh_specs = entry
            .plan
            .as_ref()
            .map(|p| self.read().registry.new_counters(p))
            .unwrap_or_default();
        let now = self.now();
        let (new_traits, trait_rows) = match &entry.plan {
            Some(p) => self.load_new_traits(p).await?,
            None => (HashSet::new(), Vec::new()),
        };
        let backfill = self.read_backfill(&fresh_specs, now).await?;
        self.fold_installed(entry, replace, true, new_traits, trait_rows, backfill, now)
    }

    /// Puts a checked, stored definition into the live state: backfilled counters, new
    /// trait columns, its evaluation (silent when new; with transitions when replaced). A
    /// new definition found in the store (`synced`: another process created it) is
    /// reconciled with the membership its creator seeded, so whoever crossed it since is
    /// logged.
    #[allow(clippy::too_many_arguments)]
    fn fold_installed(
        &self,
        entry: Entry,
        replace: bool,
        synced: bool,
        new_traits: HashSet<String>,
        trait_rows: Vec<q::TraitRow>,
        backfill: Vec<q::EventRow>,
        now: i64,
    ) -> Result<()> {
        {
            let mut s = self.write();
            apply_backfill(&mut s, entry.plan.as_ref(), &backfill, now);
            snapshot::fold_traits(&mut s, &trait_rows, &new_traits);
            let (kind, name) = (entry.kind, entry.name.clone());
            s.registry.put(entry)?;
            s.refresh_needs();
            s.refresh_all(now);
            if replace {
                let transitions = s.evaluate_all(now, |_| true, true, Cause::Definition);
                self.record(transitions);
            } else {
                s.evaluate_all(
                    now,
                    |e| e.kind == kind && e.name == name,
                    false,
                    Cause::Definition,
                );
                let members = s.member_ids(kind, &name);
                if synced {
                    self.record_definition(Record::Reconcile(
                        vec![(kind_of(kind), name, members)],
                        now,
                        false,
                    ));
                } else {
                    self.record_definition(Record::Seed((kind_of(kind), name, members)));
                }
            }
        }
        Ok(())
    }

    /// Deletes a tag or segment (refused for built-in tags and while others use it).
    pub async fn delete(&self, kind: DefKind, name: &str) -> Result<()> {
        {
            let s = self.read();
            let entry = s
                .registry
                .get(kind, name)
                .ok_or_else(|| Error::NotFound(format!("{} {name:?}", kind.as_str())))?;
            if entry.tag.as_ref().is_some_and(|t| t.builtin) {
                return Err(Error::refused(
                    ErrorCode::BuiltIn,
                    format!(
                        "tag {name:?} is built in; remove it from [audience] builtin_tags in flywheel.toml"
                    ),
                ));
            }
            Registry::clone(&s.registry).remove(kind, name)?;
        }
        let owned = name.to_owned();
        self.store()
            .write_with(move |c| {
                q::delete_definition(c, kind.as_str(), &owned)?;
                if kind == DefKind::Tag {
                    q::clear_manual_tag(c, &owned)?;
                }
                Ok(())
            })
            .await?;
        self.invalidate(flywheel_core::bus::CacheKind::Definitions, name);
        self.apply_deleted(kind, name);
        Ok(())
    }

    /// Removes a definition deleted from the store (here or by another process).
    pub(super) fn apply_deleted(&self, kind: DefKind, name: &str) {
        let mut s = self.write();
        if s.registry.remove(kind, name).is_err() {
            return;
        }
        match kind {
            DefKind::Tag => s.index.remove_tag(name),
            DefKind::Segment => s.index.remove_segment(name),
        }
        s.refresh_needs();
        self.record_definition(Record::Forget(kind_of(kind), name.to_owned()));
    }

    /// Adds (or with `remove`, removes) a manual tag on profiles given by any of their
    /// ids; unknown ids are refused before anything changes. Returns the profile ids.
    pub async fn assign(&self, tag: &str, ids: &[String], remove: bool) -> Result<Vec<String>> {
        {
            let s = self.read();
            let entry = s
                .registry
                .get(DefKind::Tag, tag)
                .ok_or_else(|| Error::NotFound(format!("tag {tag:?}")))?;
            if entry.plan.is_some() {
                return Err(Error::refused(
                    ErrorCode::NotManualTag,
                    format!("tag {tag:?} is a rule tag: its members follow its rule"),
                ));
            }
        }
        let mut profiles = Vec::with_capacity(ids.len());
        let mut unknown = Vec::new();
        for id in ids {
            match self.store().find_profile_id(id).await? {
                Some(p) => profiles.push(p.0),
                None => unknown.push(id.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(Error::NotFound(format!(
                "profiles {:?}",
                unknown.iter().take(10).collect::<Vec<_>>()
            )));
        }
        let now = self.now();
        let (t, p) = (tag.to_owned(), profiles.clone());
        self.store()
            .write_with(move |c| q::set_manual_tag(c, &t, &p, remove, now))
            .await?;
        self.invalidate(flywheel_core::bus::CacheKind::ManualTags, tag);
        {
            let mut s = self.write();
            let mut out = Vec::new();
            let mut rows = Vec::new();
            for pid in &profiles {
                let row = s.row_of(pid);
                rows.push(row);
                out.extend(s.set_manual_tag(tag, row, !remove, now));
            }
            out.extend(s.evaluate_rows(&rows, now, Cause::Event));
            self.record(out);
        }
        Ok(profiles)
    }
}
