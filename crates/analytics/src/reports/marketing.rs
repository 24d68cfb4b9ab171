//! Marketing reports: campaigns, channels by month, attribution, journey uplift,
//! guardrail trips and alerts.

use chrono::Datelike;
use flywheel_core::ErrorCode;
use serde::Serialize;

use super::{Error, Filter, Reports, Result};
use crate::attribution::{attribute, Touch};
use crate::campaign::{campaign_rows, CampaignRow};
use crate::campaign_facts::{self as facts, Alert};
use crate::channel::{channel_rows, ChannelRow};
use crate::config::Model;
use crate::guardrail::{self, Trip};
use crate::kpi::Period;
use crate::uplift::{uplift, Uplift};

/// Channels in one month (R11.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelReport {
    /// `YYYY-MM`.
    pub month: String,
    /// One row per channel.
    pub rows: Vec<ChannelRow>,
}

/// Revenue credited to one campaign and channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributionRow {
    /// The campaign.
    pub campaign: String,
    /// The channel of the credited touches.
    pub channel: String,
    /// Orders credited.
    pub orders: i64,
    /// Their net revenue, fen.
    pub revenue: i64,
}

/// An attribution report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributionReport {
    /// First or last touch.
    pub model: Model,
    /// The window in days.
    pub window_days: u32,
    /// Per campaign and channel.
    pub rows: Vec<AttributionRow>,
}

impl Reports {
    /// The filter's messages, and every touch from `window_days` before its period to its
    /// end (messages handed to a provider, utm visits).
    async fn touches(
        &self,
        f: &Filter,
        window_days: u32,
    ) -> Result<(Vec<crate::campaign::MessageFact>, Vec<Touch>)> {
        let p = f.period;
        let touch_from = p.from.saturating_sub(i64::from(window_days) * 86_400_000);
        let (messages, mut touches, events) = self
            .store
            .read_with(move |c| {
                let (m, t) = facts::messages(c, p, touch_from)?;
                Ok((m, t, facts::event_touches(c, touch_from, p.to)?))
            })
            .await?;
        touches.extend(events);
        let messages = messages.into_iter().filter(|m| f.user(&m.user)).collect();
        Ok((messages, touches))
    }

    /// Every order of the filter's users.
    async fn orders(&self, f: &Filter) -> Result<Vec<crate::kpi::OrderFact>> {
        let (orders, _) = self.orders_and_first().await?;
        Ok(orders.into_iter().filter(|o| f.user(&o.user)).collect())
    }

    /// For the user-level reports (cohort, funnel, LTV, CLV): the filter with its
    /// campaign/channel turned into users — those the campaign or channel touched in the
    /// period (messages handed to a provider, utm visits), within the segment if one is set.
    /// The answer has no campaign or channel left, so resolving it again costs nothing
    /// (resolve once when one request runs several of these reports).
    pub async fn touched_scope(&self, f: &Filter) -> Result<Filter> {
        if f.campaign.is_none() && f.channel.is_none() {
            return Ok(f.clone());
        }
        let (_, touches) = self.touches(f, 0).await?;
        let users: std::collections::HashSet<String> = touches
            .iter()
            .filter(|t| f.period.contains(t.at) && f.campaign_row(&t.campaign, &t.channel) && f.user(&t.user))
            .map(|t| t.user.clone())
            .collect();
        let mut scoped = f.clone();
        scoped.users = Some(std::sync::Arc::new(users));
        scoped.campaign = None;
        scoped.channel = None;
        Ok(scoped)
    }

    /// Narrows shop facts to the filter's campaign and/or channel: the orders credited to
    /// it (configured model and window, every touch competing) and the visits of the users
    /// it touched in the period.
    pub(super) async fn campaign_scoped(
        &self,
        f: &Filter,
        orders: Vec<crate::kpi::OrderFact>,
        visits: Vec<(String, i64)>,
    ) -> Result<(Vec<crate::kpi::OrderFact>, Vec<(String, i64)>)> {
        let a = &self.config.attribution;
        let (_, touches) = self.touches(f, a.window_days).await?;
        let index = crate::attribution::TouchIndex::new(&touches);
        let window_ms = i64::from(a.window_days) * 86_400_000;
        let orders = orders
            .into_iter()
            .filter(|o| {
                index
                    .credited(&o.user, o.placed_at, a.model, window_ms)
                    .is_some_and(|t| f.campaign_row(&t.campaign, &t.channel))
            })
            .collect();
        let touched: std::collections::HashSet<&str> = touches
            .iter()
            .filter(|t| f.period.contains(t.at) && f.campaign_row(&t.campaign, &t.channel))
            .map(|t| t.user.as_str())
            .collect();
        let visits = visits
            .into_iter()
            .filter(|(u, _)| touched.contains(u.as_str()))
            .collect();
        Ok((orders, visits))
    }

    /// Campaign metrics (crate::campaign), one row per campaign across its channels, for
    /// the filter; revenue by the configured attribution model and window.
    pub async fn campaigns(&self, f: &Filter) -> Result<Vec<CampaignRow>> {
        let a = &self.config.attribution;
        let (messages, touches) = self.touches(f, a.window_days).await?;
        let orders = self.orders(f).await?;
        let (p, point, tz) = (f.period, self.config.point_value_fen, self.tz);
        let (costs, status) = self
            .store
            .read_with(move |c| Ok((facts::costs(c, p, point, tz)?, facts::journey_status(c)?)))
            .await?;
        let credits = attribute(&orders, &touches, a.model, a.window_days, p);
        Ok(campaign_rows(
            &messages,
            &costs,
            &credits,
            &status,
            &self.config,
            |campaign, channel| f.campaign_row(campaign, channel),
        ))
    }

    /// Each channel's spend, revenue, ROI and suggested budget in shop-local `month`
    /// (`YYYY-MM`).
    pub async fn channels(&self, month: &str, f: &Filter) -> Result<ChannelReport> {
        let mut f = f.clone();
        f.period = self.month(month)?;
        let campaigns = self.campaigns(&f).await?;
        Ok(ChannelReport {
            month: month.to_string(),
            rows: channel_rows(&campaigns, &self.config),
        })
    }

    /// Revenue credited per campaign under `model` and `window_days`.
    pub async fn attribution(&self, f: &Filter, model: Model, window_days: u32) -> Result<AttributionReport> {
        let (_, touches) = self.touches(f, window_days).await?;
        let orders = self.orders(f).await?;
        let credits = attribute(&orders, &touches, model, window_days, f.period);
        let mut rows: Vec<AttributionRow> = credits
            .into_iter()
            .filter(|((campaign, channel), _)| f.campaign_row(campaign, channel))
            .map(|((campaign, channel), c)| AttributionRow {
                campaign,
                channel,
                orders: c.orders,
                revenue: c.revenue,
            })
            .collect();
        rows.sort_by(|a, b| b.revenue.cmp(&a.revenue).then(a.campaign.cmp(&b.campaign)));
        Ok(AttributionReport {
            model,
            window_days,
            rows,
        })
    }

    /// The uplift of `journey` over its holdout among users who entered in the period.
    pub async fn uplift(&self, journey: &str, f: &Filter) -> Result<Uplift> {
        let (name, p) = (journey.to_string(), f.period);
        let (known, (treated, holdout)) = self
            .store
            .read_with(move |c| {
                let known = facts::journey_status(c)?.contains_key(&name);
                Ok((known, facts::holdout_arms(c, &name, p)?))
            })
            .await?;
        if !known {
            return Err(Error::refused(
                ErrorCode::UnknownJourney,
                format!("no journey {journey:?}"),
            ));
        }
        Ok(uplift(journey, treated, holdout))
    }

    /// The guardrail trips of campaigns at `now`: ROI and CVR (R11.4) over the last
    /// `lookback_days`, and spend caps (R11.3) over the shop-local month so far.
    pub async fn guardrail_trips(&self, now: i64) -> Result<Vec<Trip>> {
        let days = i64::from(self.config.guardrail.lookback_days);
        let f = Filter::period(Period {
            from: now.saturating_sub(days * 86_400_000),
            to: now.saturating_add(1),
        });
        let rows = self.campaigns(&f).await?;
        let mut trips = guardrail::check(&rows, &self.config);
        let capped = self
            .config
            .campaigns
            .values()
            .any(|c| c.monthly_cap_fen.is_some())
            || self.config.channels.values().any(|c| c.monthly_cap_fen.is_some());
        if capped {
            let today = self.day_of(now);
            let month = Filter::period(Period {
                from: self.day_start(today.with_day(1).unwrap_or(today)),
                to: now.saturating_add(1),
            });
            trips.extend(guardrail::check_caps(
                &self.campaigns(&month).await?,
                &self.config,
            ));
        }
        Ok(trips)
    }

    /// When `campaign` was last alerted for `rule`, if ever.
    pub async fn last_alert(&self, campaign: &str, rule: &str) -> Result<Option<i64>> {
        let (c, r) = (campaign.to_string(), rule.to_string());
        Ok(self
            .store
            .read_with(move |conn| facts::last_alert(conn, &c, &r))
            .await?)
    }

    /// Records an alert and its audit entry.
    pub async fn record_alert(&self, alert: Alert) -> Result<()> {
        Ok(self
            .store
            .write_with(move |c| facts::record_alert(c, &alert))
            .await?)
    }

    /// The latest alerts, newest first.
    pub async fn alerts(&self, limit: i64) -> Result<Vec<Alert>> {
        Ok(self.store.read_with(move |c| facts::alerts(c, limit)).await?)
    }

    /// Records a spend entry (refused: a negative amount, no channel, a period that ends
    /// before it starts or covers more than `[analytics] max_range_days` days); returns
    /// its id.
    pub async fn add_cost(&self, spend: facts::Spend, now: i64) -> Result<i64> {
        if let Some(until) = spend.until {
            if until <= spend.at {
                return Err(Error::refused(
                    ErrorCode::InvalidSpend,
                    "a spend period must end after it starts",
                ));
            }
            let (first, last) = crate::spread::days_of(spend.at, until, self.tz);
            let days = (last - first).num_days() + 1;
            if days > i64::from(self.config.max_range_days) {
                return Err(Error::refused(
                    ErrorCode::InvalidSpend,
                    format!(
                        "a spend period covers at most {} days (setting `[analytics] max_range_days`), not {days}",
                        self.config.max_range_days
                    ),
                ));
            }
        }
        if spend.amount < 0 {
            return Err(Error::refused(
                ErrorCode::InvalidSpend,
                "spend must not be negative",
            ));
        }
        if spend.channel.trim().is_empty() {
            return Err(Error::refused(ErrorCode::InvalidSpend, "a channel is required"));
        }
        Ok(self
            .store
            .write_with(move |c| facts::add_cost(c, &spend, now))
            .await?)
    }

    /// The spend entries dated in `period` or covering days in it, oldest first.
    pub async fn spend_entries(&self, period: Period) -> Result<Vec<facts::SpendEntry>> {
        Ok(self
            .store
            .read_with(move |c| facts::spend_entries(c, period))
            .await?)
    }

    /// Deletes spend entry `id` (a mistyped amount, a duplicate), with an audit entry;
    /// `None` when there is no such entry.
    pub async fn delete_cost(&self, id: i64, now: i64) -> Result<Option<facts::SpendEntry>> {
        Ok(self
            .store
            .write_with(move |c| facts::delete_cost(c, id, now))
            .await?)
    }
}
