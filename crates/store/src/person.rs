//! Who a stored row belongs to: the resolved profile (the person), by the CURRENT
//! identities graph (DESIGN.md, "Rules of the house": one person, one row). An event or
//! order row names a user id and/or an anonymous id as it arrived; the person is the
//! profile of its user id, else of its anonymous id, as the profile API and the audience
//! engine resolve it. Because the graph is read when the report runs, events and orders
//! that arrived before a merge (anonymous browsing, then a sign-in or an `alias`) belong
//! to the merged person.
//!
//! A profile id is its canonical identity key (`user:<lowest user id>` when the profile
//! has a user id, else `anon:<lowest anonymous id>`), so [`Person`] shows it readably.

use flywheel_core::Identity;

/// The profile an `events` row aliased `e` belongs to (by its user id, else its
/// anonymous id); NULL only when neither id is in the identities graph.
pub const EVENT_PROFILE: &str = "COALESCE(\
    (SELECT i.profile_id FROM identities i WHERE i.id = 'user:' || e.user_id), \
    (SELECT i.profile_id FROM identities i WHERE i.id = 'anon:' || e.anonymous_id))";

/// The profile an `orders` row aliased `o` belongs to (by its user id, else its
/// anonymous id); NULL only when neither id is in the identities graph.
pub const ORDER_PROFILE: &str = "COALESCE(\
    (SELECT i.profile_id FROM identities i WHERE i.id = 'user:' || o.user_id), \
    (SELECT i.profile_id FROM identities i WHERE i.id = 'anon:' || o.anonymous_id))";

/// The person of an `events` row aliased `e`: [`EVENT_PROFILE`], and for a row whose ids
/// the graph has never seen, the profile id that row would get (its own identity key),
/// so no row is ever dropped from a count.
pub const EVENT_PERSON: &str = "COALESCE(\
    (SELECT i.profile_id FROM identities i WHERE i.id = 'user:' || e.user_id), \
    (SELECT i.profile_id FROM identities i WHERE i.id = 'anon:' || e.anonymous_id), \
    'user:' || e.user_id, 'anon:' || e.anonymous_id)";

/// The person of an `orders` row aliased `o`, as [`EVENT_PERSON`] for events.
pub const ORDER_PERSON: &str = "COALESCE(\
    (SELECT i.profile_id FROM identities i WHERE i.id = 'user:' || o.user_id), \
    (SELECT i.profile_id FROM identities i WHERE i.id = 'anon:' || o.anonymous_id), \
    'user:' || o.user_id, 'anon:' || o.anonymous_id)";

/// The person a message or journey run addressed to the user id in column `m.user_id`
/// belongs to (the profile of that user id, else `user:<id>`).
pub const RECIPIENT_PERSON: &str =
    "COALESCE((SELECT i.profile_id FROM identities i WHERE i.id = 'user:' || m.user_id), 'user:' || m.user_id)";

/// A person as a report shows it: the user id when the profile has one (its lowest,
/// which is the profile's canonical id), else its anonymous id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Person {
    /// The person's (lowest) user id.
    User(String),
    /// An anonymous-only person's (lowest) anonymous id.
    Anonymous(String),
}

impl Person {
    /// The readable identity of profile id `profile` (a canonical identity key); an id
    /// that is not an identity key shows as itself, as a user id.
    pub fn of_profile(profile: &str) -> Person {
        match Identity::from_key(profile) {
            Some(Identity::User(u)) => Person::User(u),
            Some(Identity::Anonymous(a)) => Person::Anonymous(a),
            None => Person::User(profile.to_string()),
        }
    }

    /// The id shown (user id, else anonymous id).
    pub fn id(&self) -> &str {
        match self {
            Person::User(v) | Person::Anonymous(v) => v,
        }
    }

    /// The user id, if the person has one.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Person::User(v) => Some(v),
            Person::Anonymous(_) => None,
        }
    }

    /// The anonymous id of an anonymous-only person.
    pub fn anonymous_id(&self) -> Option<&str> {
        match self {
            Person::Anonymous(v) => Some(v),
            Person::User(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_id_shows_as_its_user_id_else_its_anonymous_id() {
        assert_eq!(Person::of_profile("user:u1"), Person::User("u1".into()));
        assert_eq!(Person::of_profile("anon:a1"), Person::Anonymous("a1".into()));
        assert_eq!(Person::of_profile("user:u1").user_id(), Some("u1"));
        assert_eq!(Person::of_profile("anon:a1").anonymous_id(), Some("a1"));
        assert_eq!(Person::of_profile("anon:a1").id(), "a1");
    }
}
