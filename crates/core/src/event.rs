//! A validated tracking event in the Segment spec's shape.
//!
//! Built by the `ingest` crate from wire payloads; once an [`Event`] exists its ids
//! are valid, its `timestamp` is skew-corrected, and its JSON parts are objects.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Identity, Timestamp};

/// The Segment call types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// `track`: the user did something (`event` names it).
    Track,
    /// `identify`: who the user is, with traits.
    Identify,
    /// `page`: a web page view.
    Page,
    /// `screen`: an app screen view.
    Screen,
    /// `group`: the user belongs to a group (`groupId`).
    Group,
    /// `alias`: `previousId` and `userId` are the same person.
    Alias,
}

impl EventKind {
    /// The wire name (`track`, `identify`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Track => "track",
            EventKind::Identify => "identify",
            EventKind::Page => "page",
            EventKind::Screen => "screen",
            EventKind::Group => "group",
            EventKind::Alias => "alias",
        }
    }

    /// Reads a wire name.
    pub fn parse(s: &str) -> Option<EventKind> {
        Some(match s {
            "track" => EventKind::Track,
            "identify" => EventKind::Identify,
            "page" => EventKind::Page,
            "screen" => EventKind::Screen,
            "group" => EventKind::Group,
            "alias" => EventKind::Alias,
            _ => return None,
        })
    }
}

/// One accepted tracking event (the stored form of a Segment message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique id of the message; a repeated id is a retry and is stored once.
    pub message_id: String,
    /// The call type.
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The shop's user id, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The device/browser id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    /// The action name of a `track` call (e.g. `Order Completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The page or screen name of `page`/`screen` calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The group of a `group` call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The earlier id of an `alias` call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<String>,
    /// When it happened, corrected for client clock skew (Segment's rule).
    pub timestamp: Timestamp,
    /// The client's own clock reading, if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_timestamp: Option<Timestamp>,
    /// When the client sent it, if sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
    /// When the server received it.
    pub received_at: Timestamp,
    /// `context` object.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
    /// `properties` object (track, page, screen).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    /// `traits` object (identify, group).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub traits: Map<String, Value>,
    /// `integrations` object.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub integrations: Map<String, Value>,
}

impl Event {
    /// A bare event of `user_id` (`kind`, `name` for a track call, at `at` ms, received
    /// then), with no properties, traits or context: what tests, benchmarks and fixtures
    /// start from before filling in what they need.
    pub fn of_user(message_id: &str, kind: EventKind, user_id: &str, name: Option<&str>, at: i64) -> Event {
        let ts = crate::time::from_millis(at);
        Event {
            message_id: message_id.to_owned(),
            kind,
            user_id: Some(user_id.to_owned()),
            anonymous_id: None,
            event: name.map(str::to_owned),
            name: None,
            group_id: None,
            previous_id: None,
            timestamp: ts,
            original_timestamp: None,
            sent_at: None,
            received_at: ts,
            context: Map::new(),
            properties: Map::new(),
            traits: Map::new(),
            integrations: Map::new(),
        }
    }

    /// The identities this event names (user first), for identity resolution.
    ///
    /// `alias` names `userId` and `previousId`; a `previousId` is read as a user id
    /// unless it equals the event's `anonymousId`.
    pub fn identities(&self) -> Vec<Identity> {
        let mut ids = Vec::with_capacity(3);
        if let Some(u) = &self.user_id {
            ids.push(Identity::User(u.clone()));
        }
        if let Some(a) = &self.anonymous_id {
            ids.push(Identity::Anonymous(a.clone()));
        }
        if self.kind == EventKind::Alias {
            if let Some(p) = &self.previous_id {
                if self.anonymous_id.as_deref() != Some(p.as_str()) {
                    ids.push(Identity::User(p.clone()));
                }
            }
        }
        ids
    }

    /// The user traits this event carries: `traits` of an `identify`, plus
    /// `context.traits` of any call (where Segment SDKs put cached traits).
    /// Traits in `traits` win over `context.traits` when both name a key.
    pub fn user_traits(&self) -> Map<String, Value> {
        let mut out = Map::new();
        if let Some(Value::Object(ct)) = self.context.get("traits") {
            out.extend(ct.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if self.kind == EventKind::Identify {
            out.extend(self.traits.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// The display name: `event` for track, `name` for page/screen, else the type.
    pub fn display_name(&self) -> &str {
        self.event
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or(self.kind.as_str())
    }
}
