//! Channels and budgets (R11.2): each channel's ROI for a month, and a budget
//! reallocation toward the better channels.
//!
//! - Monthly channel ROI = revenue attributed to the channel in the month ÷ the channel's
//!   spend in the month (send cost + ad spend), n/a without spend.
//! - Suggested budget [SUGGESTED DEFAULT]: the month's total budget of the channels that
//!   have both a budget and an ROI is split among them in proportion to their ROI
//!   ("優先保障高回報渠道的投入, 動態調整資源分配"); a channel without an ROI keeps its
//!   budget. Amounts are rounded down to whole fen; the remainder goes to the best channel,
//!   so the total is unchanged.

use serde::Serialize;

use crate::campaign::CampaignRow;
use crate::config::{AnalyticsConfig, ChannelKind};

/// One channel in one month.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Channel rows from the month's campaign rows: every registered channel, plus any other
/// channel that had spend or revenue.
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
    for c in campaigns {
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
        rows[i].spend = rows[i].spend.saturating_add(c.spend);
        rows[i].revenue = rows[i].revenue.saturating_add(c.revenue);
    }
    for r in &mut rows {
        r.roi = (r.spend > 0).then(|| r.revenue as f64 / r.spend as f64);
    }
    reallocate(&mut rows);
    rows
}

fn reallocate(rows: &mut [ChannelRow]) {
    let movable: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].budget > 0 && rows[i].roi.is_some())
        .collect();
    let total: i64 = movable.iter().map(|&i| rows[i].budget).sum();
    let weight: f64 = movable.iter().filter_map(|&i| rows[i].roi).sum();
    if movable.len() < 2 || weight <= 0.0 {
        return;
    }
    let mut given = 0i64;
    for &i in &movable {
        let share = rows[i].roi.unwrap_or(0.0) / weight;
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
        let mut r = blank();
        r.channel = channel.into();
        r.spend = spend;
        r.revenue = revenue;
        r
    }

    fn blank() -> CampaignRow {
        CampaignRow {
            campaign: "c".into(),
            channel: String::new(),
            journey: None,
            status: "-".into(),
            sent: 0,
            delivered: 0,
            opened: 0,
            clicked: 0,
            converted: 0,
            orders: 0,
            open_rate: crate::Ratio::NotApplicable,
            ctr: crate::Ratio::NotApplicable,
            cvr: crate::Ratio::NotApplicable,
            revenue: 0,
            spend: 0,
            send_cost: 0,
            ad_spend: 0,
            coupon_cost: 0,
            points_cost: 0,
            true_cost: 0,
            cpa: None,
            roi: None,
            roas: None,
            profit_roi: None,
        }
    }

    #[test]
    fn budget_moves_toward_the_higher_roi_channel() {
        let mut config = AnalyticsConfig::default();
        let paid = |budget| ChannelConfig {
            kind: ChannelKind::Paid,
            unit_cost_fen: 0,
            monthly_budget_fen: budget,
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
    }
}
