//! The reports the CLI (`flywheel report …`) and the HTTP API (`/api/v1/analytics/…`)
//! both serve: facts read from the store, metrics computed by the pure modules, one
//! serializable answer each. docs/analytics.md documents every formula.

mod clv;
mod funnel;
mod marketing;
mod review;
mod saved_funnel;
mod shop;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use flywheel_core::ErrorCode as C;
use flywheel_store::Store;

use crate::config::AnalyticsConfig;
use crate::kpi::Period;

pub use clv::{Band, ClvReport, CustomerPrediction};
pub use funnel::{window_of_hours, MAX_WINDOW_HOURS};
pub use marketing::{AttributionReport, AttributionRow, ChannelReport};
pub use review::{Review, ReviewEntry};
pub use saved_funnel::{SavedFunnel, MAX_FUNNEL_NAME};
pub use shop::{CohortReport, CohortSpec, DailyRow, GoalProgress, KpiReport, LtvReport};

/// What can go wrong producing a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] flywheel_store::Error),
    /// A query parameter is not valid (`invalid_query`).
    #[error("{0}")]
    Invalid(String),
    /// A refusal with its own code: a bad date, an unknown journey, a funnel or cohort
    /// out of bounds, a negative spend, a CLV model that does not fit.
    #[error("{message}")]
    Refused {
        /// The refusal's stable code.
        code: flywheel_core::ErrorCode,
        /// Human explanation.
        message: String,
    },
    /// The period asked for is longer than `[analytics] max_range_days`.
    #[error("the period {from}..{to} covers {days} days; a report covers at most {limit} days per request (setting `[analytics] max_range_days`): ask for shorter periods")]
    RangeTooLarge {
        /// First day asked for.
        from: NaiveDate,
        /// Last day asked for.
        to: NaiveDate,
        /// Days in the period.
        days: i64,
        /// The limit.
        limit: u32,
    },
}

impl Error {
    /// An [`Error::Refused`] with `code`.
    pub fn refused(code: flywheel_core::ErrorCode, message: impl Into<String>) -> Error {
        Error::Refused {
            code,
            message: message.into(),
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> flywheel_core::ErrorCode {
        use flywheel_core::ErrorCode as C;
        match self {
            Error::Store(e) => e.code(),
            Error::Invalid(_) => C::InvalidQuery,
            Error::Refused { code, .. } => *code,
            Error::RangeTooLarge { .. } => C::RangeTooLarge,
        }
    }
}

/// The earliest day a report may start (events are stored as milliseconds since 1970).
pub const EARLIEST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// The latest day a report may end.
pub const LATEST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2999, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// A report result.
pub type Result<T> = std::result::Result<T, Error>;

/// What a report is restricted to (issue 7: "every metric filterable by time range,
/// segment, channel, campaign").
#[derive(Debug, Clone)]
pub struct Filter {
    /// The half-open period.
    pub period: Period,
    /// Only these persons (profile ids: a segment's members), if set.
    pub users: Option<Arc<HashSet<String>>>,
    /// Only this channel (campaign reports).
    pub channel: Option<String>,
    /// Only this campaign (campaign reports).
    pub campaign: Option<String>,
}

impl Filter {
    /// When a model fitted on this scope observes the shop: the last instant of the
    /// period (a report "to" day D is scored at the end of D), or `now` when that is
    /// earlier (a period reaching into the future is scored as of now).
    pub fn observed_at(&self, now: i64) -> i64 {
        self.period.to.saturating_sub(1).min(now)
    }

    /// Everything in `period`.
    pub fn period(period: Period) -> Filter {
        Filter {
            period,
            users: None,
            channel: None,
            campaign: None,
        }
    }

    /// Whether `user` passes the segment filter.
    pub fn user(&self, user: &str) -> bool {
        self.users.as_ref().is_none_or(|u| u.contains(user))
    }

    fn campaign_row(&self, campaign: &str, channel: &str) -> bool {
        self.campaign.as_deref().is_none_or(|c| c == campaign)
            && self.channel.as_deref().is_none_or(|c| c == channel)
    }
}

/// The report service: the store, the settings, the shop timezone.
#[derive(Clone)]
pub struct Reports {
    store: Store,
    config: Arc<AnalyticsConfig>,
    tz: Tz,
    signup_events: Arc<Vec<String>>,
    count_zero_value_orders: bool,
}

impl Reports {
    /// Reports over `store`; days are shop-local in `tz`; a user signs up with the first
    /// of `signup_events`.
    pub fn new(store: Store, config: AnalyticsConfig, tz: Tz, signup_events: Vec<String>) -> Reports {
        Reports {
            store,
            config: Arc::new(config),
            tz,
            signup_events: Arc::new(signup_events),
            count_zero_value_orders: true,
        }
    }

    /// With `count` false, orders of 0 元 are no purchases in any report (`[audience]
    /// count_zero_value_orders`; default true, as `lifetimes` counts them).
    pub fn counting_zero_value_orders(mut self, count: bool) -> Reports {
        self.count_zero_value_orders = count;
        self
    }

    /// Every order by person and each person's first purchase, under this shop's rule for
    /// orders of 0 元 ([`load::orders`]).
    pub(crate) async fn orders_and_first(
        &self,
    ) -> Result<(Vec<crate::kpi::OrderFact>, HashMap<String, i64>)> {
        let count = self.count_zero_value_orders;
        Ok(self
            .store
            .read_with(move |c| crate::load::orders(c, count))
            .await?)
    }

    /// The settings.
    pub fn config(&self) -> &AnalyticsConfig {
        &self.config
    }

    /// The shop timezone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The first instant of shop-local day `d` (ms).
    pub fn day_start(&self, d: NaiveDate) -> i64 {
        start_of(d, self.tz)
    }

    /// The shop-local day of instant `ms`.
    pub fn day_of(&self, ms: i64) -> NaiveDate {
        flywheel_core::time::from_millis(ms)
            .with_timezone(&self.tz)
            .date_naive()
    }

    /// The period a report covers when asked for days `from`..=`to`: `to` defaults to the
    /// shop-local day of `now`, `from` to 29 days before `to` (30 days in all).
    pub fn days_or_recent(&self, from: Option<NaiveDate>, to: Option<NaiveDate>, now: i64) -> Result<Period> {
        let to = to.unwrap_or_else(|| self.day_of(now));
        let from = from.unwrap_or(to.checked_sub_days(chrono::Days::new(29)).unwrap_or(to));
        self.days(from, to)
    }

    /// Shop-local `month` (`YYYY-MM`) as a period.
    pub fn month(&self, month: &str) -> Result<Period> {
        let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .map_err(|_| Error::refused(C::InvalidDate, format!("month {month:?}: use YYYY-MM")))?;
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .ok_or_else(|| Error::refused(C::InvalidDate, format!("month {month:?} is out of range")))?;
        Ok(Period {
            from: self.day_start(first),
            to: self.day_start(next),
        })
    }

    /// The period from the start of shop-local day `from` to the end of `to`, as a request
    /// asks for it: at most `[analytics] max_range_days` days, `from` not after `to`,
    /// both within [`EARLIEST_DAY`]..=[`LATEST_DAY`].
    pub fn days(&self, from: NaiveDate, to: NaiveDate) -> Result<Period> {
        if to < from {
            return Err(Error::refused(
                C::InvalidDate,
                format!("the period ends ({to}) before it starts ({from})"),
            ));
        }
        let days = (to - from).num_days() + 1;
        let limit = self.config.max_range_days;
        if days > i64::from(limit) {
            return Err(Error::RangeTooLarge {
                from,
                to,
                days,
                limit,
            });
        }
        self.span(from, to)
    }

    /// The period of days `from`..=`to` without the length limit (the reports' own
    /// look-backs), both days within [`EARLIEST_DAY`]..=[`LATEST_DAY`].
    fn span(&self, from: NaiveDate, to: NaiveDate) -> Result<Period> {
        for d in [from, to] {
            if !(EARLIEST_DAY..=LATEST_DAY).contains(&d) {
                return Err(Error::refused(
                    C::InvalidDate,
                    format!("day {d} is out of range: use days from {EARLIEST_DAY} to {LATEST_DAY}"),
                ));
            }
        }
        if to < from {
            return Err(Error::refused(
                C::InvalidDate,
                format!("the period ends ({to}) before it starts ({from})"),
            ));
        }
        Ok(Period {
            from: self.day_start(from),
            to: self.day_start(to + chrono::Duration::days(1)),
        })
    }
}

/// The first instant of shop-local day `d` in `tz` (ms); the earliest one across a DST gap.
pub fn start_of(d: NaiveDate, tz: Tz) -> i64 {
    tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or(0, |t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[tokio::test]
    async fn a_period_is_bounded_in_length_and_in_time() {
        let store = flywheel_store::testing::sqlite("reports_days").await;
        let config = AnalyticsConfig {
            max_range_days: 31,
            ..AnalyticsConfig::default()
        };
        let r = Reports::new(store, config, chrono_tz::Asia::Shanghai, vec![]);
        // Exactly the limit: fine; one day more: refused with the numbers.
        assert!(r.days(d("2026-01-01"), d("2026-01-31")).is_ok());
        match r.days(d("2026-01-01"), d("2026-02-01")) {
            Err(Error::RangeTooLarge { days, limit, .. }) => assert_eq!((days, limit), (32, 31)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.days(d("0001-01-01"), d("9999-12-31")),
            Err(Error::RangeTooLarge { .. })
        ));
        match r.days(d("0001-01-01"), d("0001-01-05")) {
            Err(Error::Refused {
                code: C::InvalidDate,
                message: m,
            }) => assert!(m.contains("out of range"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(r.days(d("2999-12-01"), d("2999-12-31")).is_ok());
        assert!(matches!(
            r.days(d("2999-12-31"), d("3000-01-01")),
            Err(Error::Refused {
                code: C::InvalidDate,
                ..
            })
        ));
        assert!(matches!(
            r.days(d("2026-02-01"), d("2026-01-01")),
            Err(Error::Refused {
                code: C::InvalidDate,
                ..
            })
        ));
        // No `from`: the 30 days ending `to`; `from` alone far back: too long.
        assert!(r.days_or_recent(None, Some(d("2026-01-31")), 0).is_ok());
        assert!(matches!(
            r.days_or_recent(Some(d("1999-01-01")), Some(d("2026-01-31")), 0),
            Err(Error::RangeTooLarge { .. })
        ));
        assert_eq!(
            AnalyticsConfig::default().max_range_days,
            crate::config::DEFAULT_MAX_RANGE_DAYS
        );
    }
}
