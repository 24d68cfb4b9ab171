//! Channels and budgets (R11.2): each channel's ROI for a month, and a budget
//! reallocation toward the better channels.
//!
//! - Monthly channel ROI = revenue attributed to the channel in the month ÷ the channel's
//!   spend in the month (send cost + ad spend), n/a without spend ([`roi`], the one
//!   definition).
//! - Budget: the configured monthly budget, else (none configured) the month's spend.
//! - Suggested budget [SUGGESTED DEFAULT], paid channels only (an owned channel's cost is
//!   per message, not a budget): the total budget of the paid channels that have both a
//!   budget and an ROI is split among them in proportion to budget × ROI — each channel's
//!   share of the return — so money moves from channels below the average ROI to those
//!   above it ("優先保障高回報渠道的投入, 動態調整資源分配"); a channel without an ROI
//!   keeps its budget. Amounts are rounded down to whole fen; the remainder goes to the
//!   best channel, so the total is unchanged.

use serde::Serialize;

use crate::campaign::{roi, CampaignRow};
use crate::config::{AnalyticsConfig, ChannelKind};

/// One channel in one month.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ChannelRow {
    /// The channel.
    pub channel: String,
    /// Owned or paid.
    pub kind: ChannelKind,
    /// Spend in the month, fen.
    pub spend: i64,
    /// Attributed revenue in the month, fen.
    pub revenue: i64,
    /// revenue ÷ spend.
    pub roi: Option<f64>,
    /// The configured monthly budget, fen.
    pub budget: i64,
    /// The suggested budget, fen.
    pub suggested_budget: i64,
}

/// Channel rows from the month's campaign rows (their per-channel parts): every
/// registered channel, plus any other channel that had spend or revenue.
pub fn channel_rows(campaigns: &[CampaignRow], config: &AnalyticsConfig) -> Vec<ChannelRow> {
    let mut rows: Vec<ChannelRow> = config
        .channels
        .iter()
        .map(|(name, c)| ChannelRow {
            channel: name.clone(),
            kind: c.kind,
            spend: 0,
            revenue: 0,
            roi: None,
            budget: c.monthly_budget_fen,
            suggested_budget: c.monthly_budget_fen,
        })
        .collect();
    for c in campaigns.iter().flat_map(|c| &c.by_channel) {
        let i = match rows.iter().position(|r| r.channel == c.channel) {
            Some(i) => i,
            None => {
                let cfg = config.channel(&c.channel);
                rows.push(ChannelRow {
                    channel: c.channel.clone(),
                    kind: cfg.kind,
                    spend: 0,
                    revenue: 0,
                    roi: None,
                    budget: cfg.monthly_budget_fen,
                    suggested_budget: cfg.monthly_budget_fen,
                });
                rows.len() - 1
            }
        };
        rows[i].spend = rows[i].spend.saturating_add(c.metrics.spend);
        rows[i].revenue = rows[i].revenue.saturating_add(c.metrics.revenue);
    }
    for r in &mut rows {
        r.roi = roi(r.revenue, r.spend);
        if r.budget == 0 {
            r.budget = r.spend;
        }
        r.suggested_budget = r.budget;
    }
    reallocate(&mut rows);
    rows
}

fn reallocate(rows: &mut [ChannelRow]) {
    let movable: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].kind == ChannelKind::Paid && rows[i].budget > 0 && rows[i].roi.is_some())
        .collect();
    let total: i64 = movable.iter().map(|&i| rows[i].budget).sum();
    let weight_of = |r: &ChannelRow| r.budget as f64 * r.roi.unwrap_or(0.0);
    let weight: f64 = movable.iter().map(|&i| weight_of(&rows[i])).sum();
    if movable.len() < 2 || weight <= 0.0 {
        return;
    }
    let mut given = 0i64;
    for &i in &movable {
        let share = weight_of(&rows[i]) / weight;
        rows[i].suggested_budget = (total as f64 * share).floor() as i64;
        given += rows[i].suggested_budget;
    }
    let best = movable.iter().copied().max_by(|&a, &b| {
        rows[a]
            .roi
            .partial_cmp(&rows[b].roi)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if let Some(b) = best {
        rows[b].suggested_budget += total - given;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChannelConfig;

    fn campaign(channel: &str, spend: i64, revenue: i64) -> CampaignRow {
        let metrics = crate::campaign::Metrics {
            spend,
            revenue,
            ..Default::default()
        };
        crate::campaign::one_channel_row("c", channel, None, metrics)
    }

    #[test]
    fn budget_moves_toward_the_higher_roi_channel() {
        let mut config = AnalyticsConfig::default();
        let paid = |budget| ChannelConfig {
            kind: ChannelKind::Paid,
            unit_cost_fen: 0,
            monthly_budget_fen: budget,
            monthly_cap_fen: None,
        };
        config.channels.insert("douyin".into(), paid(100_000));
        config.channels.insert("baidu".into(), paid(100_000));
        config.channels.insert("jd".into(), paid(50_000)); // no spend: keeps its budget
        let rows = channel_rows(
            &[
                campaign("douyin", 100_000, 300_000),
                campaign("baidu", 100_000, 100_000),
            ],
            &config,
        );
        let get = |n: &str| rows.iter().find(|r| r.channel == n).unwrap();
        assert_eq!(get("douyin").roi, Some(3.0));
        assert_eq!(get("baidu").roi, Some(1.0));
        assert_eq!(get("douyin").suggested_budget, 150_000);
        assert_eq!(get("baidu").suggested_budget, 50_000);
        assert_eq!(get("jd").suggested_budget, 50_000);
        assert_eq!(get("email").roi, None, "no spend: n/a");
        // Without budgets, the month's spend is what gets reallocated.
        let unbudgeted = channel_rows(
            &[
                campaign("douyin", 100_000, 300_000),
                campaign("baidu", 100_000, 100_000),
            ],
            &AnalyticsConfig::default(),
        );
        let get = |n: &str| unbudgeted.iter().find(|r| r.channel == n).unwrap();
        assert_eq!(
            (get("douyin").budget, get("douyin").suggested_budget),
            (100_000, 150_000)
        );
        // Owned channels are not reallocated, however high their ROI.
        let owned = channel_rows(
            &[
                campaign("sms", 100, 100_000),
                campaign("baidu", 100_000, 100_000),
                campaign("douyin", 300_000, 300_000),
            ],
            &AnalyticsConfig::default(),
        );
        let get = |n: &str| owned.iter().find(|r| r.channel == n).unwrap();
        assert_eq!(get("sms").suggested_budget, 100);
        assert_eq!(
            get("baidu").suggested_budget,
            100_000,
            "both at ROI 1: nothing moves"
        );
    }
}
