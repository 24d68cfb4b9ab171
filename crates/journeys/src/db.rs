//! What journeys keep in the store — definitions by version and their status, runs, the
//! message log, consent and the event cursor — and what they read from other contexts'
//! tables. The statements live in [`flywheel_store::journeys`] (only the store speaks
//! SQL); this module names them for the engine, which composes them into one
//! transaction per step.

pub use flywheel_store::journeys::consent::{consents, set_consent, ConsentRow, ConsentState, GLOBAL};
pub use flywheel_store::journeys::cursor::{
    event_cursor, events_after, last_event_seq, set_event_cursor, TailEvent,
};
pub use flywheel_store::journeys::definitions::{
    delete, fingerprint, journey, journeys, save, set_status, version, JourneyRow, JourneyStatus as Status,
};
pub use flywheel_store::journeys::facts::{
    activity_since, coupons_expiring, first_orders, last_sign_ins, profile_of_user, tracked_of, trait_values,
    user_of_profile, Tracked,
};
pub use flywheel_store::journeys::messages::{
    apply_change, credit_conversion, log_message, message, messages, record_history, sent_since,
    status_counts, MessageChange, MessageFilter, MessageRow, MessageStatus,
};
pub use flywheel_store::journeys::runs::{
    active_runs, convert_run, converted_runs, entry_history, insert_run, list_runs, run, run_counts, runs,
    unconverted, update_run, versions_in_progress, waiting_for, EntryHistory, RunRow, RunState,
};
