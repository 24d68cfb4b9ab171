//! The report tables shared by `flywheel report …` and the sent reviews: one function per
//! table, giving its headers and rows as text.

use flywheel_analytics::campaign::CampaignRow;
use flywheel_analytics::campaign_facts::Alert;
use flywheel_analytics::channel::ChannelRow;
use flywheel_analytics::reports::GoalProgress;
use flywheel_analytics::Ratio;
use flywheel_core::Fen;

/// A table: headers and rows of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<&'static str>,
    /// Rows, one cell per header.
    pub rows: Vec<Vec<String>>,
}

/// Fen as 元 with two decimals.
pub fn fen(f: i64) -> String {
    Fen(f).to_yuan_string()
}

/// A quotient with two decimals, or n/a.
pub fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.2}"))
}

/// Campaign metrics (`report campaign`).
pub fn campaigns(rows: &[CampaignRow]) -> Table {
    Table {
        headers: vec![
            "campaign",
            "channel",
            "status",
            "sent",
            "delivered",
            "open rate",
            "CTR",
            "CVR",
            "revenue (元)",
            "spend (元)",
            "true cost (元)",
            "CPA (元)",
            "ROI",
            "ROAS",
            "profit ROI",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.campaign.clone(),
                    r.channel.clone(),
                    r.status.clone(),
                    r.sent.to_string(),
                    r.delivered.to_string(),
                    r.open_rate.to_string(),
                    r.ctr.to_string(),
                    r.cvr.to_string(),
                    fen(r.revenue),
                    fen(r.spend),
                    fen(r.true_cost),
                    r.cpa.map_or_else(|| "n/a".into(), fen),
                    opt(r.roi),
                    opt(r.roas),
                    opt(r.profit_roi),
                ]
            })
            .collect(),
    }
}

/// Spend, revenue, ROI and budgets per channel (`report channel`).
pub fn channels(rows: &[ChannelRow]) -> Table {
    Table {
        headers: vec![
            "channel",
            "kind",
            "spend (元)",
            "revenue (元)",
            "ROI",
            "budget (元)",
            "suggested (元)",
        ],
        rows: rows
            .iter()
            .map(|c| {
                vec![
                    c.channel.clone(),
                    format!("{:?}", c.kind).to_lowercase(),
                    fen(c.spend),
                    fen(c.revenue),
                    opt(c.roi),
                    fen(c.budget),
                    fen(c.suggested_budget),
                ]
            })
            .collect(),
    }
}

/// Goals with their progress (`report goals`).
pub fn goals(goals: &[GoalProgress]) -> Table {
    Table {
        headers: vec!["goal", "quarter", "target", "current", "progress", "met"],
        rows: goals
            .iter()
            .map(|g| {
                vec![
                    g.name.clone(),
                    g.quarter.clone(),
                    Ratio::Value(g.target).to_string(),
                    g.current.map_or(Ratio::NotApplicable, Ratio::Value).to_string(),
                    g.progress.map_or(Ratio::NotApplicable, Ratio::Value).to_string(),
                    if g.met { "yes" } else { "no" }.into(),
                ]
            })
            .collect(),
    }
}

/// Alerts (`report alerts`).
pub fn alerts(alerts: &[Alert]) -> Table {
    Table {
        headers: vec!["at", "campaign", "rule", "action", "detail"],
        rows: alerts
            .iter()
            .map(|a| {
                vec![
                    flywheel_core::time::from_millis(a.at).to_rfc3339(),
                    a.campaign.clone(),
                    a.rule.clone(),
                    a.action.clone(),
                    a.detail.clone(),
                ]
            })
            .collect(),
    }
}
