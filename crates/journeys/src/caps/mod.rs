//! Frequency caps that hold across processes: before a marketing message goes out, it
//! **reserves** a slot in each cap it counts towards — per (user, cap, local period) —
//! in a [`CapReservations`] backend: [`MemoryCapReservations`] in-process (the embedded
//! mode is one process) or [`RedisCapReservations`] (`--redis`, shared by every process).
//!
//! The rule, for each cap a message counts towards: the messages counted in the period
//! are those the store's message log holds as sent in it (`sending`, `sent`,
//! `delivered`) together with those reserved in it; a message goes only when it is
//! already one of them or joins them without exceeding the limit. The check and the
//! join are one atomic step per backend, so two processes sending to one user at the
//! same moment cannot both take the last slot. The log's messages are added to the
//! reservations at each check (by message id, so nothing counts twice), which is why a
//! backend that lost its memory (a Redis restart) still counts what was sent.
//!
//! - A slot is held by the message id (derived from the step's effect key): a retried
//!   send of the same message finds its own slot and takes no second one.
//! - A send that does not go out (render failure, no provider, rejection, retries run
//!   out) gives its slots back; one waiting for a provider retry keeps them.
//! - A reservation lives until its period ends (plus a day's margin for clocks); a
//!   process that dies between reserving and sending leaves its slot taken until then,
//!   which errs on the side of sending less.

pub(crate) mod hold;
mod memory;
mod redis;
#[cfg(test)]
mod suite;

use chrono::NaiveDate;
use chrono_tz::Tz;
use flywheel_channels::Channel;
use flywheel_core::Timestamp;

use crate::delivery::{CapPeriod, CapRule, CapScope, DeliveryPolicy, SentRecord};
use crate::ports::PortFuture;

pub use memory::MemoryCapReservations;
pub use redis::RedisCapReservations;

/// How long past the end of its period a reservation is kept (clocks of processes and
/// Redis may differ a little; a day is far more than they should).
pub const RESERVATION_MARGIN_SECS: i64 = 24 * 3600;

/// One cap's slots for one user in one local period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapSlot {
    /// `cap:<scope>:<period>:<first local day>:<user>` (a backend may prefix it).
    pub key: String,
    /// How many messages the period allows.
    pub limit: u32,
    /// When the period ends; the reservation is kept [`RESERVATION_MARGIN_SECS`] longer.
    pub until: Timestamp,
    /// Ids of the messages the store's log holds as sent in the period (they count).
    pub counted: Vec<String>,
}

impl CapSlot {
    /// Unix seconds after which nothing needs the reservation any more.
    pub fn expires_at(&self) -> i64 {
        self.until.timestamp() + RESERVATION_MARGIN_SECS
    }
}

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// The holder has a slot in every cap (newly, or from an earlier try).
    Held,
    /// The slot at this index is full: nothing was reserved.
    Full(usize),
}

/// Where cap reservations are kept: atomic per call, shared by every process that
/// sends to the same users (see the module documentation for the rule).
pub trait CapReservations: Send + Sync {
    /// Gives `holder` a slot in every one of `slots`, all or none: first adds each
    /// slot's `counted` messages, then fails on the first slot that is full and does not
    /// hold `holder` already. `now` is the caller's clock (expiry of in-process slots).
    fn reserve<'a>(
        &'a self,
        holder: &'a str,
        slots: &'a [CapSlot],
        now: Timestamp,
    ) -> PortFuture<'a, Reserved>;
    /// Gives `holder`'s slots back (its message did not go out).
    fn release<'a>(&'a self, holder: &'a str, slots: &'a [CapSlot]) -> PortFuture<'a, ()>;
}

/// The local day a cap's period containing `at` starts on.
fn first_day(period: CapPeriod, at: Timestamp, tz: Tz) -> NaiveDate {
    period.bounds(at, tz).0.with_timezone(&tz).date_naive()
}

fn scope_name(scope: CapScope) -> &'static str {
    match scope {
        CapScope::All => "all",
        CapScope::Channel(c) => c.as_str(),
    }
}

fn period_name(period: CapPeriod) -> &'static str {
    match period {
        CapPeriod::Day => "day",
        CapPeriod::Week => "week",
    }
}

/// The slots a marketing message to `user` on `channel` at `at` must hold: one per cap
/// of `policy` it counts towards, each with the logged messages (`history`: message id
/// and record) that cap counts in its period. Days and weeks are counted in `tz`.
pub fn slots_for(
    policy: &DeliveryPolicy,
    user: &str,
    channel: Channel,
    at: Timestamp,
    tz: Tz,
    history: &[(String, SentRecord)],
) -> Vec<(CapRule, CapSlot)> {
    policy
        .caps
        .iter()
        .filter(|cap| cap.applies_to(channel))
        .map(|cap| {
            let (start, end) = cap.period.bounds(at, tz);
            let counted = history
                .iter()
                .filter(|(_, r)| start <= r.at && r.at < end && cap.counts(r))
                .map(|(id, _)| id.clone())
                .collect();
            let key = format!(
                "cap:{}:{}:{}:{user}",
                scope_name(cap.scope),
                period_name(cap.period),
                first_day(cap.period, at, tz)
            );
            let slot = CapSlot {
                key,
                limit: cap.limit,
                until: end,
                counted,
            };
            (*cap, slot)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::CapAction;
    use flywheel_channels::Category;
    use flywheel_core::time::parse_timestamp;

    fn t(s: &str) -> Timestamp {
        parse_timestamp(s).unwrap()
    }

    fn sent(id: &str, at: &str, channel: Channel) -> (String, SentRecord) {
        let record = SentRecord {
            at: t(at),
            channel,
            category: Category::Marketing,
        };
        (id.to_owned(), record)
    }

    #[test]
    fn slots_name_user_cap_and_local_period_and_count_the_log_in_that_period() {
        let policy = DeliveryPolicy {
            quiet_hours: None,
            caps: vec![
                CapRule {
                    scope: CapScope::All,
                    period: CapPeriod::Day,
                    limit: 2,
                    action: CapAction::Defer,
                },
                CapRule {
                    scope: CapScope::Channel(Channel::Sms),
                    period: CapPeriod::Week,
                    limit: 3,
                    action: CapAction::Skip,
                },
            ],
        };
        let sh = chrono_tz::Asia::Shanghai;
        // Wednesday 2026-12-02, 07:30 in Shanghai (23:30 UTC the day before).
        let at = t("2026-12-01T23:30:00Z");
        let history = [
            sent("m1", "2026-12-01T16:00:00Z", Channel::Email), // 00:00 local, today
            sent("m2", "2026-12-01T15:59:59Z", Channel::Sms),   // yesterday, this week
            sent("m3", "2026-11-29T16:00:00Z", Channel::Sms),   // Monday 00:00, this week
            sent("m4", "2026-11-29T15:00:00Z", Channel::Sms),   // last week
        ];
        let email = slots_for(&policy, "u:1", Channel::Email, at, sh, &history);
        assert_eq!(email.len(), 1, "the SMS cap does not apply to email");
        assert_eq!(email[0].1.key, "cap:all:day:2026-12-02:u:1");
        assert_eq!(email[0].1.counted, vec!["m1".to_string()]);
        assert_eq!(email[0].1.until, t("2026-12-02T16:00:00Z"));
        let sms = slots_for(&policy, "u:1", Channel::Sms, at, sh, &history);
        assert_eq!(sms[1].1.key, "cap:sms:week:2026-11-30:u:1");
        assert_eq!(sms[1].1.counted, vec!["m2".to_string(), "m3".to_string()]);
        assert_eq!(sms[1].1.limit, 3);
        assert_eq!(
            sms[1].1.expires_at(),
            t("2026-12-06T16:00:00Z").timestamp() + RESERVATION_MARGIN_SECS
        );
        // Counted in UTC, the same instant is still Tuesday.
        let utc = slots_for(&policy, "u:1", Channel::Email, at, chrono_tz::UTC, &history);
        assert_eq!(utc[0].1.key, "cap:all:day:2026-12-01:u:1");
    }
}
