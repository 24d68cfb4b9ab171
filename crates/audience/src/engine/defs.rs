//! The registry of tags and segments: their definitions, checked plans, evaluation
//! order (a definition comes after every tag or segment it refers to, and cycles are
//! refused), and the event counters their `event(...)` conditions need.

use std::collections::{BTreeSet, HashMap};

use flywheel_core::ErrorCode;

use crate::counter::{CounterId, CounterSpec};
use crate::definitions::{SegmentDef, TagDef};
use crate::dsl::ast::Duration;
use crate::plan::{Leaf, NumPred, Plan};
use crate::traits::Measure;
use crate::{Error, Result};

/// A tag or a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DefKind {
    /// A tag (rule or manual).
    Tag,
    /// A saved segment.
    Segment,
}

impl DefKind {
    /// `tag` or `segment` (stored kind, transition kind).
    pub fn as_str(self) -> &'static str {
        match self {
            DefKind::Tag => "tag",
            DefKind::Segment => "segment",
        }
    }
}

/// One registered definition.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Tag or segment.
    pub kind: DefKind,
    /// The name.
    pub name: String,
    /// The tag definition (tags only).
    pub tag: Option<TagDef>,
    /// The segment definition (segments only).
    pub segment: Option<SegmentDef>,
    /// The checked rule; `None` for a manual tag.
    pub plan: Option<Plan>,
}

/// What the plans in use need from the index.
#[derive(Debug, Default, Clone)]
pub struct Needs {
    /// Measures whose columns must exist.
    pub measures: BTreeSet<Measure>,
    /// `within`/`before` windows over time measures: a row's value leaves them as time passes.
    pub time_windows: Vec<(Measure, Duration)>,
}

/// Every tag and segment, in evaluation order.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    entries: Vec<Entry>,
    counters: Vec<(CounterId, CounterSpec)>,
}

fn refs(plan: &Plan) -> Vec<(DefKind, String)> {
    plan.references()
        .into_iter()
        .filter_map(|l| match l {
            Leaf::Tag(n) => Some((DefKind::Tag, n.clone())),
            Leaf::Segment(n) => Some((DefKind::Segment, n.clone())),
            _ => None,
        })
        .collect()
}

impl Registry {
    /// Every entry in evaluation order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry `kind`/`name`.
    pub fn get(&self, kind: DefKind, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.kind == kind && e.name == name)
    }

    /// Registered counters.
    pub fn counters(&self) -> &[(CounterId, CounterSpec)] {
        &self.counters
    }

    /// The id of the counter `spec`, if registered.
    pub fn counter_id(&self, spec: &CounterSpec) -> Option<CounterId> {
        let key = spec.key();
        self.counters
            .iter()
            .find(|(_, s)| s.key() == key)
            .map(|(id, _)| *id)
    }

    /// Registers `spec` when new; returns its id and whether it is new.
    pub fn register_counter(&mut self, spec: CounterSpec) -> (CounterId, bool) {
        if let Some(id) = self.counter_id(&spec) {
            return (id, false);
        }
        let id = CounterId(self.counters.iter().map(|(i, _)| i.0 + 1).max().unwrap_or(0));
        self.counters.push((id, spec));
        (id, true)
    }

    /// Counter specs of `plan` not yet registered.
    pub fn new_counters(&self, plan: &Plan) -> Vec<CounterSpec> {
        let mut out: Vec<CounterSpec> = Vec::new();
        for l in plan.leaves() {
            if let Leaf::Event { spec, .. } = l {
                if self.counter_id(spec).is_none() && !out.iter().any(|s| s.key() == spec.key()) {
                    out.push(spec.clone());
                }
            }
        }
        out
    }

    /// Inserts or replaces an entry, keeping evaluation order; refuses a cycle.
    pub fn put(&mut self, entry: Entry) -> Result<()> {
        let mut entries: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| !(e.kind == entry.kind && e.name == entry.name))
            .cloned()
            .collect();
        entries.push(entry);
        self.entries = order(entries)?;
        Ok(())
    }

    /// Removes an entry; refuses when another definition refers to it.
    pub fn remove(&mut self, kind: DefKind, name: &str) -> Result<Entry> {
        let users: Vec<String> = self
            .entries
            .iter()
            .filter(|e| {
                e.plan
                    .as_ref()
                    .is_some_and(|p| refs(p).contains(&(kind, name.to_owned())))
            })
            .map(|e| format!("{} {:?}", e.kind.as_str(), e.name))
            .collect();
        if !users.is_empty() {
            return Err(Error::refused(
                ErrorCode::InUse,
                format!(
                    "{} {name:?} is used by {}; change or delete those first",
                    kind.as_str(),
                    users.join(", ")
                ),
            ));
        }
        let at = self
            .entries
            .iter()
            .position(|e| e.kind == kind && e.name == name)
            .ok_or_else(|| Error::NotFound(format!("{} {name:?}", kind.as_str())))?;
        Ok(self.entries.remove(at))
    }

    /// What the index must maintain for the plans in use.
    pub fn needs(&self) -> Needs {
        let mut needs = Needs::default();
        for plan in self.entries.iter().filter_map(|e| e.plan.as_ref()) {
            for l in plan.leaves() {
                match l {
                    Leaf::Num { measure, pred } => {
                        needs.measures.insert(measure.clone());
                        if let NumPred::Within(d) | NumPred::Before(d) = pred {
                            if !needs.time_windows.contains(&(measure.clone(), *d)) {
                                needs.time_windows.push((measure.clone(), *d));
                            }
                        }
                    }
                    Leaf::Cat { measure, .. }
                    | Leaf::IsSet { measure, .. }
                    | Leaf::Contains { measure, .. } => {
                        needs.measures.insert(measure.clone());
                    }
                    Leaf::Event { .. } | Leaf::Tag(_) | Leaf::Segment(_) => {}
                }
            }
        }
        needs
    }
}

/// Sorts entries so each comes after what it refers to (stable otherwise).
fn order(entries: Vec<Entry>) -> Result<Vec<Entry>> {
    let pos: HashMap<(DefKind, String), usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| ((e.kind, e.name.clone()), i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut mark = vec![0u8; entries.len()];
    let mut out = Vec::with_capacity(entries.len());
    fn visit(
        i: usize,
        entries: &[Entry],
        pos: &HashMap<(DefKind, String), usize>,
        mark: &mut [u8],
        out: &mut Vec<usize>,
    ) -> Result<()> {
        match mark[i] {
            2 => return Ok(()),
            1 => {
                return Err(Error::refused(
                    ErrorCode::CyclicDefinition,
                    format!(
                        "{} {:?} would refer to itself through other tags or segments",
                        entries[i].kind.as_str(),
                        entries[i].name
                    ),
                ))
            }
            _ => {}
        }
        mark[i] = 1;
        if let Some(p) = &entries[i].plan {
            for r in refs(p) {
                if let Some(&j) = pos.get(&r) {
                    visit(j, entries, pos, mark, out)?;
                }
            }
        }
        mark[i] = 2;
        out.push(i);
        Ok(())
    }
    for i in 0..entries.len() {
        visit(i, &entries, &pos, &mut mark, &mut out)?;
    }
    let mut slots: Vec<Option<Entry>> = entries.into_iter().map(Some).collect();
    Ok(out.into_iter().filter_map(|i| slots[i].take()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &str, plan: Plan) -> Entry {
        Entry {
            kind: DefKind::Segment,
            name: name.into(),
            tag: None,
            segment: None,
            plan: Some(plan),
        }
    }

    #[test]
    fn referenced_definitions_come_first_and_cycles_are_refused() {
        let mut r = Registry::default();
        r.put(seg("b", Plan::Leaf(Leaf::Tag("x".into())))).unwrap();
        r.put(seg("a", Plan::Leaf(Leaf::Segment("b".into())))).unwrap();
        // Redefine b to use a later-defined c.
        r.put(seg("c", Plan::Leaf(Leaf::Tag("x".into())))).unwrap();
        r.put(seg("b", Plan::Leaf(Leaf::Segment("c".into())))).unwrap();
        let names: Vec<&str> = r.entries().iter().map(|e| e.name.as_str()).collect();
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert!(at("c") < at("b") && at("b") < at("a"), "{names:?}");
        let err = r
            .put(seg("c", Plan::Leaf(Leaf::Segment("a".into()))))
            .unwrap_err();
        assert!(err.to_string().contains("refer to itself"), "{err}");
        assert!(matches!(
            r.remove(DefKind::Segment, "c"),
            Err(Error::Refused {
                code: ErrorCode::InUse,
                ..
            })
        ));
        assert!(r.remove(DefKind::Segment, "a").is_ok());
    }
}
