//! The reports the CLI (`flywheel report …`) and the HTTP API (`/api/v1/analytics/…`)
//! both serve: facts read from the store, metrics computed by the pure modules, one
//! serializable answer each. docs/analytics.md documents every formula.

mod clv;
mod funnel;
mod marketing;
mod review;
mod shop;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use flywheel_store::Store;

use crate::config::AnalyticsConfig;
use crate::kpi::Period;

pub use clv::{Band, ClvReport, CustomerPrediction};
pub use marketing::{AttributionReport, AttributionRow, ChannelReport};
pub use review::{Review, ReviewEntry};
pub use shop::{DailyRow, GoalProgress, KpiReport, LtvReport};

/// What can go wrong producing a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] flywheel_store::Error),
    /// The request is not valid (bad date, unknown journey …).
    #[error("{0}")]
    Invalid(String),
}

/// A report result.
pub type Result<T> = std::result::Result<T, Error>;

/// What a report is restricted to (issue 7: "every metric filterable by time range,
/// segment, channel, campaign").
#[derive(Debug, Clone)]
pub struct Filter {
    /// The half-open period.
    pub period: Period,
    /// Only these user ids (a segment's members), if set.
    pub users: Option<Arc<HashSet<String>>>,
    /// Only this channel (campaign reports).
    pub channel: Option<String>,
    /// Only this campaign (campaign reports).
    pub campaign: Option<String>,
}

impl Filter {
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
        }
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
        let from = from.unwrap_or(to - chrono::Duration::days(29));
        self.days(from, to)
    }

    /// Shop-local `month` (`YYYY-MM`) as a period.
    pub fn month(&self, month: &str) -> Result<Period> {
        let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .map_err(|_| Error::Invalid(format!("month {month:?}: use YYYY-MM")))?;
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .ok_or_else(|| Error::Invalid(format!("month {month:?} is out of range")))?;
        Ok(Period {
            from: self.day_start(first),
            to: self.day_start(next),
        })
    }

    /// The period from the start of shop-local day `from` to the end of `to`.
    pub fn days(&self, from: NaiveDate, to: NaiveDate) -> Result<Period> {
        if to < from {
            return Err(Error::Invalid(format!(
                "the period ends ({to}) before it starts ({from})"
            )));
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
