//! Campaign metrics (REQUIREMENTS §10, §11; issue 7), one row per (campaign, channel):
//!
//! | metric | formula |
//! |---|---|
//! | sent | messages handed to a provider (status not `failed`, `suppressed` or `skipped`) |
//! | delivered | sent − bounced/rejected (a sent message without a bounce report counts as delivered) |
//! | opened | delivered messages opened or clicked (a click implies an open) |
//! | open rate 打開率 | opened ÷ delivered |
//! | CTR 點擊率 | clicked ÷ delivered |
//! | CVR | converted ÷ clicked (converted: the journey's goal was reached after the message) |
//! | revenue | net revenue of orders attributed to the campaign (attribution model, default last touch, 7 days) |
//! | send cost | sent × the channel's unit cost |
//! | ad spend | spend entered for the campaign (paid channels) |
//! | spend 營銷投入 | send cost + ad spend |
//! | coupon cost | discounts of orders that redeemed a coupon the campaign issued |
//! | points cost | points the campaign awarded × the value of a point |
//! | true cost | spend + coupon cost + points cost |
//! | CPA 成本每轉化 | spend ÷ converted |
//! | **ROI** 投入產出比 | revenue ÷ spend (seed 003: "銷售額與營銷投入比") |
//! | ROAS | revenue ÷ ad spend |
//! | profit ROI | (revenue − true cost) ÷ true cost |
//!
//! Every quotient with a zero denominator is n/a (`None`), never NaN or ∞.

use std::collections::{BTreeMap, HashMap};

use flywheel_store::journeys::JourneyStatus;
use serde::Serialize;

pub use flywheel_store::analytics::campaigns::Delivery;

use crate::attribution::Credit;
use crate::config::AnalyticsConfig;
use crate::ratio::{fen_per, Ratio};

/// One message as the campaign metrics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFact {
    /// The recipient.
    pub user: String,
    /// The campaign (the send's `campaign`, else the journey's name).
    pub campaign: String,
    /// The channel.
    pub channel: String,
    /// The journey that sent it.
    pub journey: Option<String>,
    /// How far it got (from its status in the message log).
    pub delivery: Delivery,
    /// Opened (pixel) — a click counts too.
    pub opened: bool,
    /// Clicked (tracked link).
    pub clicked: bool,
    /// The journey's goal was reached after it.
    pub converted: bool,
}

/// Which cost a [`CostFact`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostKind {
    /// Spend entered for a paid channel (ads).
    Ad,
    /// Discount of an order that redeemed a coupon the campaign issued.
    Coupon,
    /// Points the campaign awarded, already valued in fen.
    Points,
}

/// One cost of a campaign, fen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostFact {
    /// The campaign.
    pub campaign: String,
    /// The channel ("" when not known: coupon and points costs go to the campaign's
    /// main channel).
    pub channel: String,
    /// The kind.
    pub kind: CostKind,
    /// Amount, fen.
    pub amount: i64,
}

/// The metrics of one campaign on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CampaignRow {
    /// The campaign.
    pub campaign: String,
    /// The channel.
    pub channel: String,
    /// The journey sending it, if any.
    pub journey: Option<String>,
    /// The journey's status (`active`, `paused`, …) or `-`.
    pub status: String,
    /// Messages sent.
    pub sent: i64,
    /// Messages delivered.
    pub delivered: i64,
    /// Messages opened.
    pub opened: i64,
    /// Messages clicked.
    pub clicked: i64,
    /// Messages converted.
    pub converted: i64,
    /// Attributed orders.
    pub orders: i64,
    /// opened ÷ delivered.
    pub open_rate: Ratio,
    /// clicked ÷ delivered.
    pub ctr: Ratio,
    /// converted ÷ clicked.
    pub cvr: Ratio,
    /// Attributed net revenue, fen.
    pub revenue: i64,
    /// send cost + ad spend, fen.
    pub spend: i64,
    /// Sent × unit cost, fen.
    pub send_cost: i64,
    /// Entered ad spend, fen.
    pub ad_spend: i64,
    /// Coupon discounts, fen.
    pub coupon_cost: i64,
    /// Points awarded, valued, fen.
    pub points_cost: i64,
    /// spend + coupon cost + points cost, fen.
    pub true_cost: i64,
    /// spend ÷ converted, fen.
    pub cpa: Option<i64>,
    /// revenue ÷ spend.
    pub roi: Option<f64>,
    /// revenue ÷ ad spend.
    pub roas: Option<f64>,
    /// (revenue − true cost) ÷ true cost.
    pub profit_roi: Option<f64>,
}

fn quotient(num: i64, den: i64) -> Option<f64> {
    (den != 0).then(|| num as f64 / den as f64)
}

#[derive(Default)]
struct Tally {
    journey: Option<String>,
    sent: i64,
    delivered: i64,
    opened: i64,
    clicked: i64,
    converted: i64,
    ad: i64,
    coupon: i64,
    points: i64,
}

/// The rows of every campaign with messages, costs or credit. `credits` come from
/// [`crate::attribution::attribute`]; `status` maps a journey name to its status.
pub fn campaign_rows(
    messages: &[MessageFact],
    costs: &[CostFact],
    credits: &BTreeMap<(String, String), Credit>,
    status: &HashMap<String, JourneyStatus>,
    config: &AnalyticsConfig,
) -> Vec<CampaignRow> {
    let mut tally: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut main_channel: HashMap<&str, (&str, i64)> = HashMap::new();
    for m in messages {
        let t = tally.entry((m.campaign.clone(), m.channel.clone())).or_default();
        if t.journey.is_none() {
            t.journey.clone_from(&m.journey);
        }
        if !m.delivery.is_sent() {
            continue;
        }
        t.sent += 1;
        let mc = main_channel.entry(&m.campaign).or_insert((&m.channel, 0));
        if mc.0 == m.channel {
            mc.1 += 1;
        }
        if m.delivery != Delivery::Delivered {
            continue;
        }
        t.delivered += 1;
        t.opened += i64::from(m.opened || m.clicked);
        t.clicked += i64::from(m.clicked);
        t.converted += i64::from(m.converted);
    }
    for c in costs {
        let channel = if c.channel.is_empty() {
            main_channel
                .get(c.campaign.as_str())
                .map_or("", |(ch, _)| *ch)
                .to_string()
        } else {
            c.channel.clone()
        };
        let t = tally.entry((c.campaign.clone(), channel)).or_default();
        match c.kind {
            CostKind::Ad => t.ad = t.ad.saturating_add(c.amount),
            CostKind::Coupon => t.coupon = t.coupon.saturating_add(c.amount),
            CostKind::Points => t.points = t.points.saturating_add(c.amount),
        }
    }
    for key in credits.keys() {
        tally.entry(key.clone()).or_default();
    }
    tally
        .into_iter()
        .map(|((campaign, channel), t)| {
            let credit = credits
                .get(&(campaign.clone(), channel.clone()))
                .cloned()
                .unwrap_or_default();
            let send_cost = t.sent.saturating_mul(config.channel(&channel).unit_cost_fen);
            let spend = send_cost.saturating_add(t.ad);
            let true_cost = spend.saturating_add(t.coupon).saturating_add(t.points);
            CampaignRow {
                status: t
                    .journey
                    .as_ref()
                    .and_then(|j| status.get(j).map(|s| s.as_str().to_string()))
                    .unwrap_or_else(|| "-".into()),
                journey: t.journey,
                sent: t.sent,
                delivered: t.delivered,
                opened: t.opened,
                clicked: t.clicked,
                converted: t.converted,
                orders: credit.orders,
                open_rate: Ratio::of(t.opened, t.delivered),
                ctr: Ratio::of(t.clicked, t.delivered),
                cvr: Ratio::of(t.converted, t.clicked),
                revenue: credit.revenue,
                spend,
                send_cost,
                ad_spend: t.ad,
                coupon_cost: t.coupon,
                points_cost: t.points,
                true_cost,
                cpa: fen_per(spend, t.converted),
                roi: quotient(credit.revenue, spend),
                roas: quotient(credit.revenue, t.ad),
                profit_roi: quotient(credit.revenue.saturating_sub(true_cost), true_cost),
                campaign,
                channel,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(status: &str, opened: bool, clicked: bool, converted: bool) -> MessageFact {
        let status = status.parse().expect("a message status");
        MessageFact {
            user: "u".into(),
            campaign: "c".into(),
            channel: "sms".into(),
            journey: Some("j".into()),
            delivery: Delivery::of_status(status),
            opened,
            clicked,
            converted,
        }
    }

    #[test]
    fn hand_computed_campaign() {
        let messages = vec![
            msg("sent", true, true, true),
            msg("delivered", false, true, false), // a click without a pixel still opened
            msg("delivered", true, false, false),
            msg("sent", false, false, false),
            msg("bounced", false, false, false), // sent, not delivered
            msg("failed", false, false, false),  // not sent
            msg("suppressed", false, false, false),
        ];
        let costs = vec![
            CostFact {
                campaign: "c".into(),
                channel: String::new(),
                kind: CostKind::Coupon,
                amount: 300,
            },
            CostFact {
                campaign: "c".into(),
                channel: String::new(),
                kind: CostKind::Points,
                amount: 200,
            },
        ];
        let credits: BTreeMap<_, _> = [(
            ("c".to_string(), "sms".to_string()),
            Credit {
                orders: 1,
                revenue: 1_000,
            },
        )]
        .into();
        let status: HashMap<String, JourneyStatus> = [("j".to_string(), JourneyStatus::Active)].into();
        let rows = campaign_rows(&messages, &costs, &credits, &status, &AnalyticsConfig::default());
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(
            (r.sent, r.delivered, r.opened, r.clicked, r.converted),
            (5, 4, 3, 2, 1)
        );
        assert_eq!(r.open_rate, Ratio::Value(0.75));
        assert_eq!(r.ctr, Ratio::Value(0.5));
        assert_eq!(r.cvr, Ratio::Value(0.5));
        assert_eq!(r.send_cost, 25, "5 SMS × 5 fen");
        assert_eq!((r.spend, r.true_cost), (25, 525));
        assert_eq!(r.cpa, Some(25));
        assert_eq!(r.roi, Some(40.0));
        assert_eq!(r.roas, None, "no ad spend");
        let profit = (1_000.0 - 525.0) / 525.0;
        assert!((r.profit_roi.unwrap() - profit).abs() < 1e-12);
        assert_eq!(r.status, "active");
    }

    #[test]
    fn a_paid_campaign_without_messages() {
        let costs = vec![CostFact {
            campaign: "k".into(),
            channel: "douyin".into(),
            kind: CostKind::Ad,
            amount: 100_000,
        }];
        let credits: BTreeMap<_, _> = [(
            ("k".to_string(), "douyin".to_string()),
            Credit {
                orders: 3,
                revenue: 90_000,
            },
        )]
        .into();
        let rows = campaign_rows(
            &[],
            &costs,
            &credits,
            &HashMap::new(),
            &AnalyticsConfig::default(),
        );
        let r = &rows[0];
        assert_eq!(r.roi, Some(0.9));
        assert_eq!(r.roas, Some(0.9));
        assert_eq!(r.cvr, Ratio::NotApplicable);
        assert_eq!(r.cpa, None);
        assert_eq!(r.status, "-");
    }
}
