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
