//! Read-only questions to the engine: how many and which profiles match, what a
//! profile's computed traits, tags, segments, RFM and lifecycle stage are, the
//! definitions with their sizes, the RFM report and recent transitions.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::defs::DefKind;
use super::manage::SegmentInput;
use super::rfm::{report, RfmRow};
use super::Audience;
use crate::definitions::{SegmentDef, TagDef, Transition};
use crate::index::base_measures;
use crate::traits::{Measure, ValueType};
use crate::{Error, Result};

/// A page of matching profiles.
#[derive(Debug, Clone, Serialize)]
pub struct MemberPage {
    /// How many match in all.
    pub total: u64,
    /// This page: `{profile_id, user_id}`.
    pub members: Vec<Member>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One member of a segment or tag.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// The profile.
    pub profile_id: String,
    /// Its user id, if known.
    pub user_id: Option<String>,
}

/// A tag with its current size.
#[derive(Debug, Clone, Serialize)]
pub struct TagInfo {
    /// The definition.
    #[serde(flatten)]
    pub def: TagDef,
    /// Current members.
    pub members: u64,
}

/// A segment with its current size.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentInfo {
    /// The definition.
    #[serde(flatten)]
    pub def: SegmentDef,
    /// Current members.
    pub members: u64,
}

/// Everything the audience engine says about one profile.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileAudience {
    /// The profile.
    pub profile_id: String,
    /// Computed traits by expression name (money in fen, times RFC 3339, ratios 0–1).
    pub traits: BTreeMap<String, Value>,
    /// Tags carried.
    pub tags: Vec<String>,
    /// Saved segments it is in.
    pub segments: Vec<String>,
    /// Lifecycle stage.
    pub lifecycle: Option<String>,
    /// RFM scores and segment name (buyers only).
    pub rfm: Option<Value>,
}

fn cursor_row(cursor: Option<&str>) -> Result<u32> {
    match cursor {
        None => Ok(0),
        Some(c) => c
            .strip_prefix('r')
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| {
                Error::refused(
                    flywheel_core::ErrorCode::InvalidCursor,
                    format!("invalid cursor {c:?}"),
                )
            }),
    }
}

/// The name a measure is written with in expressions (`spend(30d)`, `gender`).
fn expression_name(m: &Measure) -> String {
    let key = m.key();
    match m {
        Measure::Spend(_)
        | Measure::Orders(_)
        | Measure::Aov(_)
        | Measure::PromoShare(_)
        | Measure::UnboughtCartItems(_)
        | Measure::Bought(..) => key.replace("(all)", ""),
        _ => crate::traits::CATALOGUE
            .iter()
            .find(|e| {
                crate::plan::measure(&crate::dsl::TraitRef {
                    name: e.name.into(),
                    window: None,
                })
                .ok()
                .as_ref()
                    == Some(m)
            })
            .map(|e| e.name.to_owned())
            .unwrap_or(key),
    }
}

fn json_value(ty: ValueType, v: i64) -> Value {
    match ty {
        ValueType::Time => json!(flywheel_core::time::from_millis(v).to_rfc3339()),
        ValueType::Ratio => json!(v as f64 / 1_000_000.0),
        _ => json!(v),
    }
}

impl Audience {
    /// How many profiles match.
    pub fn count(&self, input: &SegmentInput) -> Result<u64> {
        self.count_at(input).map(|(n, _)| n)
    }

    /// The count and the shared log position it was taken at, read together (processes
    /// on one store answer the same count at the same position).
    pub fn count_at(&self, input: &SegmentInput) -> Result<(u64, i64)> {
        let (_, plan) = self.compile(input)?;
        let s = self.read();
        Ok((s.index.count(&plan, &s.eval_ctx(self.now())), s.position))
    }

    /// Whether the profile `profile_id` matches now (false for a profile not indexed yet).
    pub fn is_member(&self, input: &SegmentInput, profile_id: &str) -> Result<bool> {
        let (_, plan) = self.compile(input)?;
        let s = self.read();
        Ok(s.ids
            .row(profile_id)
            .is_some_and(|row| s.index.row_matches(&plan, row, &s.eval_ctx(self.now()))))
    }

    /// A page of matching profiles, in row order; `cursor` from the previous page.
    pub fn members(&self, input: &SegmentInput, cursor: Option<&str>, limit: usize) -> Result<MemberPage> {
        let (_, plan) = self.compile(input)?;
        let from = cursor_row(cursor)?;
        let s = self.read();
        let hits = s.index.eval(&plan, &s.eval_ctx(self.now()));
        Ok(page(&s, &hits, from, limit))
    }

    /// A page of the members of a saved tag or segment.
    pub fn members_of(
        &self,
        kind: DefKind,
        name: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<MemberPage> {
        let from = cursor_row(cursor)?;
        let s = self.read();
        if s.registry.get(kind, name).is_none() {
            return Err(Error::NotFound(format!("{} {name:?}", kind.as_str())));
        }
        let bm = match kind {
            DefKind::Tag => s.index.tag(name).cloned(),
            DefKind::Segment => s.index.segment(name).cloned(),
        }
        .unwrap_or_default();
        Ok(page(&s, &(bm & s.index.alive()), from, limit))
    }

    /// The profile ids of the members of saved segment `name`, anonymous members
    /// included: the analytics segment filter (issue 7), which counts per person.
    pub fn segment_profile_ids(&self, name: &str) -> Result<std::collections::HashSet<String>> {
        let s = self.read();
        if s.registry.get(DefKind::Segment, name).is_none() {
            return Err(Error::NotFound(format!("segment {name:?}")));
        }
        let bm = s.index.segment(name).cloned().unwrap_or_default() & s.index.alive();
        Ok(bm
            .iter()
            .map(|row| s.ids.id(row))
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// Every member as CSV (`profile_id,user_id`, header first).
    pub fn export_csv(&self, input: &SegmentInput) -> Result<Vec<u8>> {
        let (_, plan) = self.compile(input)?;
        let s = self.read();
        let hits = s.index.eval(&plan, &s.eval_ctx(self.now()));
        let mut w = csv::Writer::from_writer(Vec::with_capacity(hits.len() as usize * 32));
        let csv_err = |e: csv::Error| Error::Internal(format!("writing CSV: {e}"));
        w.write_record(["profile_id", "user_id"]).map_err(csv_err)?;
        for row in hits.iter() {
            let user = s.ids.user_id(row).unwrap_or("");
            w.write_record([s.ids.id(row), user]).map_err(csv_err)?;
        }
        w.into_inner()
            .map_err(|e| Error::Internal(format!("writing CSV: {e}")))
    }

    /// Tags with their sizes, in evaluation order.
    pub fn tags(&self) -> Vec<TagInfo> {
        let s = self.read();
        s.registry
            .entries()
            .iter()
            .filter_map(|e| e.tag.clone())
            .map(|def| TagInfo {
                members: s.index.tag(&def.name).map_or(0, |b| (b & s.index.alive()).len()),
                def,
            })
            .collect()
    }

    /// The shared log position and, read at that same position, the size of every
    /// segment and tag as `(kind, name, members)` (what processes compare: the same
    /// position gives the same sizes).
    pub fn sizes_at(&self) -> (i64, Vec<(DefKind, String, u64)>) {
        let s = self.read();
        let sizes = s
            .registry
            .entries()
            .iter()
            .map(|e| {
                let members = match e.kind {
                    DefKind::Tag => s.index.tag(&e.name).map_or(0, |b| (b & s.index.alive()).len()),
                    DefKind::Segment => s.index.segment(&e.name).map_or(0, |b| b.len()),
                };
                (e.kind, e.name.clone(), members)
            })
            .collect();
        (s.position, sizes)
    }

    /// Segments with their sizes.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        let s = self.read();
        s.registry
            .entries()
            .iter()
            .filter_map(|e| e.segment.clone())
            .map(|def| SegmentInfo {
                members: s.index.segment(&def.name).map_or(0, |b| b.len()),
                def,
            })
            .collect()
    }

    /// One tag.
    pub fn tag(&self, name: &str) -> Result<TagInfo> {
        self.tags()
            .into_iter()
            .find(|t| t.def.name == name)
            .ok_or_else(|| Error::NotFound(format!("tag {name:?}")))
    }

    /// One segment.
    pub fn segment(&self, name: &str) -> Result<SegmentInfo> {
        self.segments()
            .into_iter()
            .find(|t| t.def.name == name)
            .ok_or_else(|| Error::NotFound(format!("segment {name:?}")))
    }

    /// The audience view of a profile (by its profile id).
    pub fn profile(&self, profile_id: &str) -> Result<ProfileAudience> {
        let s = self.read();
        let row = s
            .ids
            .row(profile_id)
            .ok_or_else(|| Error::NotFound(format!("profile {profile_id:?}")))?;
        let mut traits = BTreeMap::new();
        let facts = s.facts.get(row);
        for m in base_measures() {
            let key = m.key();
            let v = if let Some(c) = s.index.num_column(&key) {
                c.get(row).map_or(Value::Null, |v| json_value(m.value_type(), v))
            } else if let Some(c) = s.index.cat_column(&key) {
                c.get(row).map_or(Value::Null, |v| json!(v))
            } else {
                match crate::traits::compute(
                    &m,
                    &facts,
                    &crate::traits::ComputeCtx {
                        now: self.now(),
                        windowing: &s.windowing,
                        config: &s.config,
                    },
                ) {
                    crate::traits::TraitValue::Multi(v) => json!(v),
                    _ => Value::Null,
                }
            };
            traits.insert(expression_name(&m), v);
        }
        let lifecycle = s
            .index
            .cat_column(&Measure::Lifecycle.key())
            .and_then(|c| c.get(row))
            .map(str::to_owned);
        let rfm = s.rfm[row as usize].map(|sc| {
            let name = s
                .index
                .cat_column(&Measure::RfmSegment.key())
                .and_then(|c| c.get(row));
            json!({"r": sc.r, "f": sc.f, "m": sc.m, "segment": name})
        });
        Ok(ProfileAudience {
            profile_id: profile_id.to_owned(),
            traits,
            tags: s.index.tags_of(row),
            segments: s.index.segments_of(row),
            lifecycle,
            rfm,
        })
    }

    /// The RFM report as of `as_of` (ms).
    pub fn rfm_report(&self, as_of: i64) -> Vec<RfmRow> {
        report(&self.read(), as_of)
    }

    /// Membership changes after `seq` (the last 10,000 are kept).
    pub fn transitions(&self, after: u64, limit: usize) -> Vec<Transition> {
        self.read().transitions_after(after, limit)
    }

    /// Profiles indexed.
    pub fn profiles(&self) -> u64 {
        self.read().index.alive().len()
    }

    /// Checks an expression and returns its canonical text and JSON tree.
    pub fn explain(&self, input: &SegmentInput) -> Result<Value> {
        let (expr, _) = self.compile(input)?;
        Ok(json!({"expression": expr.to_string(), "ast": expr}))
    }
}

fn page(s: &super::State, hits: &roaring::RoaringBitmap, from: u32, limit: usize) -> MemberPage {
    let mut members = Vec::with_capacity(limit.min(1000));
    let mut next = None;
    for row in hits.iter().skip_while(|r| *r < from) {
        if members.len() == limit {
            next = Some(format!("r{row}"));
            break;
        }
        members.push(Member {
            profile_id: s.ids.id(row).to_owned(),
            user_id: s.ids.user_id(row).map(str::to_owned),
        });
    }
    MemberPage {
        total: hits.len(),
        members,
        next_cursor: next,
    }
}
