//! What analytics reads and writes, as typed statements: the facts its reports are
//! computed on (orders, activity, funnel steps, the message log, touches, costs,
//! holdouts) and the tables it owns (`channel_costs`, `campaign_alerts`, `audit_log`,
//! `reviews`, `saved_funnels`). Analytics never writes SQL of its own (only `store` speaks SQL): each
//! function here is one statement family with a row struct and its mapper beside the
//! column list, and every status or state string another context stores (order status,
//! message status, coupon state, run state) stays inside these statements and constants;
//! callers get typed values.
//!
//! Every function takes a connection, so a report composes several reads in one view
//! ([`crate::Store::read_with`]) and a write composes with its audit entry in one
//! transaction ([`crate::Store::write_with`]). Times are milliseconds since the epoch,
//! periods half-open `[from, to)`.

pub mod activity;
pub mod alerts;
pub mod audit;
pub mod campaigns;
pub mod event_names;
pub mod funnel;
pub mod orders;
pub mod reviews;
pub mod saved_funnels;
pub mod spend;
pub mod touches;
