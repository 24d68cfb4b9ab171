//! Journeys' tables (migration 010) and every statement the journey engine runs: journey
//! definitions by version and their status ([`definitions`]), runs ([`runs`]), the message
//! log ([`messages`]), per-channel consent ([`consent`]), the engine's position in the
//! event log ([`cursor`]), and what its triggers and sends read from other contexts'
//! tables ([`facts`]).
//!
//! Every function takes a connection so the engine composes them into one transaction;
//! rows come back as typed structs read by a mapper beside their column list, and every
//! status or state column is an enum ([`JourneyStatus`], [`RunState`], [`MessageStatus`],
//! [`ConsentState`]) that refuses text it does not know. Parameters are numbered in
//! ascending order of first use (SQLite).

/// Declares a status enum stored as text: `as_str` (the stored text), `Display`,
/// `FromStr` (unknown text is [`crate::Error::Corrupt`]) and serde as that text.
macro_rules! stored_text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::Error;

            /// Reads the stored text; anything else is corrupt data.
            fn from_str(s: &str) -> crate::Result<$name> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    other => Err(crate::Error::Corrupt(format!(concat!("unknown ", $what, " {:?}"), other))),
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = crate::Error;

            fn try_from(s: &str) -> crate::Result<$name> {
                s.parse()
            }
        }
    };
}

pub mod consent;
pub mod cursor;
pub mod definitions;
pub mod facts;
pub mod messages;
pub mod runs;

pub use consent::{ConsentRow, ConsentState};
pub use definitions::{JourneyRow, JourneyStatus};
pub use messages::{MessageChange, MessageFilter, MessageRow, MessageStatus};
pub use runs::{RunRow, RunState};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_its_stored_text_and_refuses_others() {
        fn round_trip<T>(all: &[T])
        where
            T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr<Err = crate::Error>,
        {
            for v in all {
                assert_eq!(v.to_string().parse::<T>().ok(), Some(*v));
            }
            assert!(matches!("nonsense".parse::<T>(), Err(crate::Error::Corrupt(_))));
        }
        round_trip(JourneyStatus::ALL);
        round_trip(RunState::ALL);
        round_trip(MessageStatus::ALL);
        round_trip(ConsentState::ALL);
        assert_eq!(
            serde_json::to_string(&MessageStatus::Delivered).ok().as_deref(),
            Some(r#""delivered""#)
        );
        assert_eq!(ConsentState::Cleared.as_str(), "none");
    }
}
