//! Delivery rules: when a message may go out (issue 6 §2).
//!
//! A [`DeliveryPolicy`] answers one question for one prospective send: send now, wait
//! until a given time, or skip. It knows
//!
//! - **quiet hours** ([`QuietHours`], default `22:00-08:00` local time, half-open: a
//!   message at 21:59:59 goes, one at 22:00 waits until 08:00, one at 08:00 goes);
//! - **frequency caps** ([`CapRule`]): at most N marketing messages per local calendar
//!   day or ISO week (Monday first), per channel or over all channels; a full cap either
//!   defers to the start of the next period or skips the message (the caller logs it);
//! - **categories** ([`Category`]): transactional messages (order confirmations, a
//!   coupon the user asked for) ignore caps and quiet hours, and do not count towards
//!   the marketing caps.
//!
//! "Local" is the timezone the caller passes: the shop's, or the user's when it is known
//! and the shop prefers it. Times that do not exist locally (a DST gap) resolve to the
//! first instant after the gap.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use flywheel_channels::{Category, Channel};
use flywheel_core::Timestamp;
use serde::{Deserialize, Serialize};

/// A bad delivery-rule configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Quiet hours not written as `HH:MM-HH:MM`.
    #[error("quiet hours {0:?} are not of the form HH:MM-HH:MM (e.g. 22:00-08:00)")]
    BadQuietHours(String),
    /// A cap that would block every message.
    #[error("a frequency cap needs a limit of at least 1 (to send nothing, pause the journey)")]
    ZeroLimit,
}

/// The local time window in which marketing messages are held back, `[start, end)`.
///
/// A window with `start > end` spans midnight (`22:00-08:00`); `start == end` is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: NaiveTime,
    end: NaiveTime,
}

impl QuietHours {
    /// The window `[start, end)` in local time.
    pub fn new(start: NaiveTime, end: NaiveTime) -> Self {
        Self { start, end }
    }

    /// Whether a local time of day falls inside the window.
    pub fn contains(&self, local: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= local && local < self.end
        } else {
            local >= self.start || local < self.end
        }
    }

    /// The first instant at or after `at` outside the window, in timezone `tz`.
    pub fn next_allowed(&self, at: Timestamp, tz: Tz) -> Timestamp {
        let local = at.with_timezone(&tz).naive_local();
        if !self.contains(local.time()) {
            return at;
        }
        // Inside a window that spans midnight, the window ends tomorrow unless we are
        // already past midnight.
        let end_date = if self.start > self.end && local.time() >= self.start {
            local.date().succ_opt().unwrap_or(local.date())
        } else {
            local.date()
        };
        resolve_local(end_date.and_time(self.end), tz).max(at)
    }
}

impl Default for QuietHours {
    /// 22:00–08:00, our default for marketing (REQUIREMENTS open question 14).
    fn default() -> Self {
        Self::new(
            NaiveTime::from_hms_opt(22, 0, 0).unwrap_or(NaiveTime::MIN),
            NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN),
        )
    }
}

impl FromStr for QuietHours {
    type Err = Error;

    /// Parses `HH:MM-HH:MM`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::BadQuietHours(s.to_string());
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let parse = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        Ok(Self::new(parse(a)?, parse(b)?))
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start.format("%H:%M"), self.end.format("%H:%M"))
    }
}

impl Serialize for QuietHours {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for QuietHours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a frequency cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapScope {
    /// Marketing messages on every channel together.
    All,
    /// Marketing messages on one channel.
    Channel(Channel),
}

/// The calendar period a cap counts over, in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapPeriod {
    /// A local calendar day, from midnight.
    Day,
    /// An ISO week, from Monday midnight.
    Week,
}

impl CapPeriod {
    /// The local date the period containing `date` starts on.
    fn first_day(self, date: NaiveDate) -> NaiveDate {
        match self {
            CapPeriod::Day => date,
            CapPeriod::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        }
    }

    /// The `[start, end)` instants of the period containing `at`.
    pub(crate) fn bounds(self, at: Timestamp, tz: Tz) -> (Timestamp, Timestamp) {
        let first = self.first_day(at.with_timezone(&tz).date_naive());
        let next = match self {
            CapPeriod::Day => first + Duration::days(1),
            CapPeriod::Week => first + Duration::days(7),
        };
        (
            resolve_local(first.and_time(NaiveTime::MIN), tz),
            resolve_local(next.and_time(NaiveTime::MIN), tz),
        )
    }
}

/// What to do with a message a full cap would exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapAction {
    /// Hold it until the period rolls over (then quiet hours and other caps apply).
    #[default]
    Defer,
    /// Drop it; the caller logs it as suppressed by this cap.
    Skip,
}

/// At most `limit` marketing messages per `period` in `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapRule {
    /// What is counted.
    pub scope: CapScope,
    /// Over which calendar period.
    pub period: CapPeriod,
    /// How many messages the period allows (at least 1).
    pub limit: u32,
    /// What happens to the message that would exceed it.
    #[serde(default)]
    pub action: CapAction,
}

impl CapRule {
    /// Whether `record` is one of the messages this cap counts.
    pub(crate) fn counts(&self, record: &SentRecord) -> bool {
        record.category == Category::Marketing && self.applies_to(record.channel)
    }

    /// Whether a message on `channel` counts towards this cap.
    pub(crate) fn applies_to(&self, channel: Channel) -> bool {
        match self.scope {
            CapScope::All => true,
            CapScope::Channel(c) => c == channel,
        }
    }
}

impl fmt::Display for CapRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = match self.scope {
            CapScope::All => "all channels".to_string(),
            CapScope::Channel(c) => c.as_str().to_string(),
        };
        let period = match self.period {
            CapPeriod::Day => "day",
            CapPeriod::Week => "week",
        };
        write!(f, "{} per {period} ({scope})", self.limit)
    }
}

/// A message already sent (or scheduled) to the user, as the caps count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentRecord {
    /// When it went out (or is scheduled to).
    pub at: Timestamp,
    /// On which channel.
    pub channel: Channel,
    /// Marketing or transactional (only marketing counts).
    pub category: Category,
}

/// The answer for one prospective send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send it now.
    SendNow,
    /// Send it at this later time (quiet hours or a deferring cap).
    DeferUntil(Timestamp),
    /// Do not send it; the cap that stopped it, for the message log.
    Skip(CapRule),
}

/// Quiet hours and frequency caps for marketing messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPolicy {
    /// Quiet hours, or none.
    #[serde(default = "default_quiet_hours")]
    pub quiet_hours: Option<QuietHours>,
    /// Frequency caps, all of which must hold.
    #[serde(default = "default_caps")]
    pub caps: Vec<CapRule>,
}

fn default_quiet_hours() -> Option<QuietHours> {
    Some(QuietHours::default())
}

fn default_caps() -> Vec<CapRule> {
    vec![
        CapRule {
            scope: CapScope::All,
            period: CapPeriod::Day,
            limit: 2,
            action: CapAction::Defer,
        },
        CapRule {
            scope: CapScope::All,
            period: CapPeriod::Week,
            limit: 5,
            action: CapAction::Defer,
        },
    ]
}

impl Default for DeliveryPolicy {
    /// Quiet hours 22:00–08:00, at most 2 marketing messages a day and 5 a week over all
    /// channels, deferring (our defaults: the seeds give no numbers, R5.10).
    fn default() -> Self {
        Self {
            quiet_hours: default_quiet_hours(),
            caps: default_caps(),
        }
    }
}

/// How many periods a deferral looks ahead; each round moves forward by at least a day
/// boundary, so a message whose next 64 periods are all full is skipped, not looped on.
const MAX_ROUNDS: usize = 64;

impl DeliveryPolicy {
    /// Checks the caps have usable limits.
    pub fn validate(&self) -> Result<(), Error> {
        if self.caps.iter().any(|c| c.limit == 0) {
            return Err(Error::ZeroLimit);
        }
        Ok(())
    }

    /// When a message of `category` on `channel`, due `now`, may go out to a user whose
    /// earlier sends are `history`, with days and hours counted in `tz`.
    pub fn decide(
        &self,
        category: Category,
        channel: Channel,
        now: Timestamp,
        history: &[SentRecord],
        tz: Tz,
    ) -> Decision {
        if category == Category::Transactional {
            return Decision::SendNow;
        }
        let mut at = now;
        let mut blocking = None;
        for _ in 0..MAX_ROUNDS {
            if let Some(quiet) = self.quiet_hours {
                at = quiet.next_allowed(at, tz);
            }
            match self.full_cap(channel, at, history, tz) {
                None if at == now => return Decision::SendNow,
                None => return Decision::DeferUntil(at),
                Some(cap) if cap.action == CapAction::Skip => return Decision::Skip(*cap),
                Some(cap) => {
                    at = cap.period.bounds(at, tz).1;
                    blocking = Some(*cap);
                }
            }
        }
        // Every period for MAX_ROUNDS ahead is full (sends already scheduled far ahead):
        // skip on the cap that kept deferring rather than look further.
        match blocking {
            Some(cap) => Decision::Skip(cap),
            None => Decision::DeferUntil(at),
        }
    }

    /// The first cap for `channel` already full in its period containing `at`.
    fn full_cap(&self, channel: Channel, at: Timestamp, history: &[SentRecord], tz: Tz) -> Option<&CapRule> {
        self.caps.iter().filter(|c| c.applies_to(channel)).find(|cap| {
            let (start, end) = cap.period.bounds(at, tz);
            let used = history
                .iter()
                .filter(|r| start <= r.at && r.at < end && cap.counts(r))
                .count();
            used >= cap.limit as usize
        })
    }
}

/// The instant of a local date-time in `tz`: the earlier of two in a DST fold, the first
/// instant after the gap when it does not exist.
fn resolve_local(local: NaiveDateTime, tz: Tz) -> Timestamp {
    let mut probe = local;
    // DST gaps are at most a few hours; step forward a minute at a time past it.
    for _ in 0..(24 * 60) {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&chrono::Utc);
        }
        probe += Duration::minutes(1);
    }
    chrono::Utc.from_utc_datetime(&local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::time::parse_timestamp;

    fn t(s: &str) -> Timestamp {
        parse_timestamp(s).unwrap()
    }

    const SH: Tz = chrono_tz::Asia::Shanghai;

    fn sent(at: &str, channel: Channel) -> SentRecord {
        SentRecord {
            at: t(at),
            channel,
            category: Category::Marketing,
        }
    }

    #[test]
    fn quiet_hours_are_half_open_in_shop_time() {
        let p = DeliveryPolicy {
            caps: vec![],
            ..DeliveryPolicy::default()
        };
        let d = |at: &str| p.decide(Category::Marketing, Channel::Email, t(at), &[], SH);
        assert_eq!(d("2026-11-30T21:59:59+08:00"), Decision::SendNow);
        assert_eq!(
            d("2026-11-30T22:00:00+08:00"),
            Decision::DeferUntil(t("2026-12-01T08:00:00+08:00"))
        );
        assert_eq!(
            d("2026-12-01T03:00:00+08:00"),
            Decision::DeferUntil(t("2026-12-01T08:00:00+08:00"))
        );
        assert_eq!(
            d("2026-12-01T07:59:59+08:00"),
            Decision::DeferUntil(t("2026-12-01T08:00:00+08:00"))
        );
        assert_eq!(d("2026-12-01T08:00:00+08:00"), Decision::SendNow);
    }

    #[test]
    fn transactional_ignores_quiet_hours_and_caps() {
        let p = DeliveryPolicy::default();
        let history = [
            sent("2026-11-30T09:00:00+08:00", Channel::Email),
            sent("2026-11-30T10:00:00+08:00", Channel::Email),
        ];
        let at = t("2026-11-30T23:00:00+08:00");
        assert_eq!(
            p.decide(Category::Transactional, Channel::Email, at, &history, SH),
            Decision::SendNow
        );
    }

    #[test]
    fn daily_cap_defers_to_next_morning_after_quiet_hours() {
        let p = DeliveryPolicy::default();
        let history = [
            sent("2026-11-30T09:00:00+08:00", Channel::Email),
            sent("2026-11-30T10:00:00+08:00", Channel::Sms),
        ];
        let at = t("2026-11-30T12:00:00+08:00");
        // Full today → tomorrow 00:00 → quiet hours → 08:00.
        assert_eq!(
            p.decide(Category::Marketing, Channel::Push, at, &history, SH),
            Decision::DeferUntil(t("2026-12-01T08:00:00+08:00"))
        );
        // One sent today: the second still fits.
        assert_eq!(
            p.decide(Category::Marketing, Channel::Push, at, &history[..1], SH),
            Decision::SendNow
        );
    }

    #[test]
    fn transactional_history_does_not_count() {
        let p = DeliveryPolicy::default();
        let mut history = vec![sent("2026-11-30T09:00:00+08:00", Channel::Email); 3];
        for r in &mut history {
            r.category = Category::Transactional;
        }
        let at = t("2026-11-30T12:00:00+08:00");
        assert_eq!(
            p.decide(Category::Marketing, Channel::Email, at, &history, SH),
            Decision::SendNow
        );
    }

    #[test]
    fn days_are_counted_in_the_given_timezone() {
        let p = DeliveryPolicy {
            quiet_hours: None,
            caps: vec![CapRule {
                scope: CapScope::All,
                period: CapPeriod::Day,
                limit: 1,
                action: CapAction::Defer,
            }],
        };
        // 23:30 UTC on the 29th is 07:30 on the 30th in Shanghai: same local day as 12:00.
        let history = [sent("2026-11-29T23:30:00Z", Channel::Email)];
        let at = t("2026-11-30T12:00:00+08:00");
        assert_eq!(
            p.decide(Category::Marketing, Channel::Email, at, &history, SH),
            Decision::DeferUntil(t("2026-12-01T00:00:00+08:00"))
        );
        // In UTC it was the previous day.
        assert_eq!(
            p.decide(Category::Marketing, Channel::Email, at, &history, chrono_tz::UTC),
            Decision::SendNow
        );
    }

    #[test]
    fn weekly_cap_rolls_over_on_monday_and_channel_caps_only_count_their_channel() {
        let p = DeliveryPolicy {
            quiet_hours: Some(QuietHours::default()),
            caps: vec![
                CapRule {
                    scope: CapScope::Channel(Channel::Sms),
                    period: CapPeriod::Week,
                    limit: 2,
                    action: CapAction::Defer,
                },
                CapRule {
                    scope: CapScope::Channel(Channel::Email),
                    period: CapPeriod::Day,
                    limit: 1,
                    action: CapAction::Skip,
                },
            ],
        };
        // 2026-11-30 is a Monday; two SMS this week (Mon, Wed).
        let history = [
            sent("2026-11-30T09:00:00+08:00", Channel::Sms),
            sent("2026-12-02T09:00:00+08:00", Channel::Sms),
            sent("2026-12-03T09:00:00+08:00", Channel::Email),
        ];
        let at = t("2026-12-03T12:00:00+08:00");
        assert_eq!(
            p.decide(Category::Marketing, Channel::Sms, at, &history, SH),
            Decision::DeferUntil(t("2026-12-07T08:00:00+08:00"))
        );
        assert_eq!(
            p.decide(Category::Marketing, Channel::Push, at, &history, SH),
            Decision::SendNow
        );
        assert_eq!(
            p.decide(Category::Marketing, Channel::Email, at, &history, SH),
            Decision::Skip(p.caps[1])
        );
    }

    #[test]
    fn a_deferral_that_finds_every_period_full_skips_on_that_cap() {
        let p = DeliveryPolicy {
            quiet_hours: None,
            caps: vec![CapRule {
                scope: CapScope::All,
                period: CapPeriod::Day,
                limit: 1,
                action: CapAction::Defer,
            }],
        };
        let start = t("2026-11-30T12:00:00+08:00");
        let full: Vec<_> = (0..MAX_ROUNDS as i64 + 1)
            .map(|d| SentRecord {
                at: start + Duration::days(d),
                channel: Channel::Sms,
                category: Category::Marketing,
            })
            .collect();
        assert_eq!(
            p.decide(Category::Marketing, Channel::Email, start, &full, SH),
            Decision::Skip(p.caps[0])
        );
        // With the last day free, it defers to that day.
        assert_eq!(
            p.decide(
                Category::Marketing,
                Channel::Email,
                start,
                &full[..MAX_ROUNDS - 1],
                SH
            ),
            Decision::DeferUntil(t("2026-11-30T00:00:00+08:00") + Duration::days(MAX_ROUNDS as i64 - 1))
        );
    }

    #[test]
    fn quiet_hours_across_a_dst_gap_end_after_the_gap() {
        // New York springs forward at 02:00 on 2026-03-08; quiet hours ending 02:30 end at
        // 03:00 local (the first instant after the gap).
        let ny = chrono_tz::America::New_York;
        let q: QuietHours = "22:00-02:30".parse().unwrap();
        let at = t("2026-03-08T01:00:00-05:00");
        assert_eq!(q.next_allowed(at, ny), t("2026-03-08T03:00:00-04:00"));
    }

    #[test]
    fn policy_config_round_trips_and_rejects_bad_input() {
        let json = r#"{"quiet_hours":"21:30-09:00","caps":[{"scope":{"channel":"sms"},"period":"week","limit":3,"action":"skip"}]}"#;
        let p: DeliveryPolicy = serde_json::from_str(json).unwrap();
        assert_eq!(p.quiet_hours.unwrap().to_string(), "21:30-09:00");
        assert_eq!(p.caps[0].to_string(), "3 per week (sms)");
        assert_eq!(serde_json::to_string(&p).unwrap(), json);
        let defaults: DeliveryPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(defaults, DeliveryPolicy::default());
        assert!(serde_json::from_str::<DeliveryPolicy>(r#"{"quiet_hours":"late"}"#).is_err());
        let zero = DeliveryPolicy {
            caps: vec![CapRule {
                limit: 0,
                ..p.caps[0]
            }],
            ..p
        };
        assert_eq!(zero.validate(), Err(Error::ZeroLimit));
        let empty: QuietHours = "08:00-08:00".parse().unwrap();
        assert!(!empty.contains(NaiveTime::from_hms_opt(8, 0, 0).unwrap()));
    }
}
