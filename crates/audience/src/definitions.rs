//! Tag and segment definitions as stored and as served by the API.

use flywheel_core::bus::{DomainEvent, Membership};
use serde::{Deserialize, Serialize};

/// How a tag gets its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagKind {
    /// Members are the profiles matching `rule`, re-evaluated continuously.
    Rule,
    /// Members are assigned by the API, the CLI or an import.
    Manual,
}

/// A tag (標簽).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagDef {
    /// Unique name, e.g. 高價值客戶.
    pub name: String,
    /// Rule or manual.
    pub kind: TagKind,
    /// Tag group (標簽組), e.g. 行為標簽, 性別, 年齡段.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The segment expression of a rule tag (canonical text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// What it means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Shipped with Flywheel (from the seed rules); its rule comes from the configuration.
    #[serde(default)]
    pub builtin: bool,
}

/// A saved segment (人群).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentDef {
    /// Unique name.
    pub name: String,
    /// The segment expression (canonical text).
    pub expression: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A change of membership, published on the bus as `segment.entered`,
/// `segment.exited`, `tag.added` or `tag.removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// Increasing number of the transition since start.
    pub seq: u64,
    /// `segment` or `tag`.
    pub kind: &'static str,
    /// The segment or tag name.
    pub name: String,
    /// The profile.
    pub profile_id: String,
    /// Entered (true) or left (false).
    pub entered: bool,
    /// When it was detected (ms).
    pub at: i64,
    /// What caused it: arriving data, time alone, a merge, a manual assignment, a
    /// replaced definition, or the reconciliation at start.
    pub cause: flywheel_store::transitions::Cause,
}

impl Transition {
    /// The domain event this transition is published as.
    pub fn event(&self) -> DomainEvent {
        let m = Membership {
            seq: self.seq,
            name: self.name.clone(),
            profile_id: self.profile_id.clone(),
            at: self.at,
            cause: self.cause,
        };
        match (self.kind, self.entered) {
            ("segment", true) => DomainEvent::SegmentEntered(m),
            ("segment", false) => DomainEvent::SegmentExited(m),
            (_, true) => DomainEvent::TagAdded(m),
            (_, false) => DomainEvent::TagRemoved(m),
        }
    }

    /// The bus subject of this transition.
    pub fn subject(&self) -> &'static str {
        self.event().subject()
    }
}
