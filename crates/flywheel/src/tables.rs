//! The report tables shared by `flywheel report …` and the sent reviews: one function per
//! table, giving its headers and rows as text.

use flywheel_analytics::campaign::{CampaignRow, Metrics};
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

/// The metric columns of a campaign (or of one of its channels) after its name and
/// channel(s).
const CAMPAIGN_METRICS: [&str; 13] = [
    "sent",
    "delivered",
    "open rate",
    "CTR",
    "CVR",
    "revenue (元)",
    "spend (元)",
    "ad spend (元)",
    "true cost (元)",
    "CPA (元)",
    "ROI",
    "ROAS",
    "profit ROI",
];

fn metric_cells(m: &Metrics) -> Vec<String> {
    vec![
        m.sent.to_string(),
        m.delivered.to_string(),
        m.open_rate.to_string(),
        m.ctr.to_string(),
        m.cvr.to_string(),
        fen(m.revenue),
        fen(m.spend),
        fen(m.ad_spend),
        fen(m.true_cost),
        m.cpa.map_or_else(|| "n/a".into(), fen),
        opt(m.roi),
        opt(m.roas),
        opt(m.profit_roi),
    ]
}

/// Campaign metrics (`report campaign`): one row per campaign across its channels, or
/// with `by_channel` one row per campaign and channel.
pub fn campaigns(rows: &[CampaignRow], by_channel: bool) -> Table {
    let mut headers = vec![
        "campaign",
        if by_channel { "channel" } else { "channels" },
        "status",
    ];
    headers.extend(CAMPAIGN_METRICS);
    let mut out = Vec::new();
    for r in rows {
        let mut line = |channel: String, m: &Metrics| {
            let mut cells = vec![r.campaign.clone(), channel, r.status.clone()];
            cells.extend(metric_cells(m));
            out.push(cells);
        };
        if by_channel {
            for p in &r.by_channel {
                line(p.channel.clone(), &p.metrics);
            }
        } else {
            line(r.channels.join("+"), &r.metrics);
        }
    }
    Table { headers, rows: out }
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
