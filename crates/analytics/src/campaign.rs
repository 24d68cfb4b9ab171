//! Campaign metrics (REQUIREMENTS §10, §11; issue 7), one row per campaign across its
//! channels (a campaign sent by email and by newsletter is one row), with the same
//! metrics per channel beside it (`by_channel`). A campaign's ratios are ratios of its
//! channels' sums.
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
//! | paid revenue | the part of revenue credited to touches on paid channels |
//! | send cost | sent × the channel's unit cost |
//! | ad spend | spend entered for the campaign (paid channels), spread over its days |
//! | spend 營銷投入 | send cost + ad spend |
//! | coupon cost | discounts of orders that redeemed a coupon the campaign issued |
//! | points cost | points the campaign awarded × the value of a point |
//! | true cost | spend + coupon cost + points cost |
//! | CPA 成本每轉化 | spend ÷ converted, rounded half-up to the fen |
//! | **ROI** 投入產出比 | [`roi`]: revenue ÷ spend (seed 003: "銷售額與營銷投入比") |
//! | ROAS | [`roas`]: paid revenue ÷ ad spend |
//! | profit ROI | [`profit_roi`]: (revenue − true cost) ÷ true cost |
//!
//! Every quotient with a zero denominator is n/a (`None`), never NaN or ∞.

use std::collections::{BTreeMap, HashMap};

use flywheel_store::journeys::JourneyStatus;
use serde::Serialize;

pub use flywheel_store::analytics::campaigns::Delivery;

use crate::attribution::Credit;
use crate::config::{AnalyticsConfig, ChannelKind};
use crate::ratio::{fen_per, Ratio};

/// One message as the campaign metrics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFact {
    /// The recipient's person (profile id).
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

/// A campaign's metrics, over all its channels or on one of them (the columns of
/// [`CampaignRow`] and of each of its [`ChannelPart`]s, serialized flat).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Metrics {
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
    /// The part of `revenue` credited to touches on paid channels, fen.
    #[serde(default)]
    pub paid_revenue: i64,
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
    /// spend ÷ converted, fen ([`fen_per`]: rounded half-up).
    pub cpa: Option<i64>,
    /// [`roi`]: revenue ÷ spend.
    pub roi: Option<f64>,
    /// [`roas`]: paid revenue ÷ ad spend.
    pub roas: Option<f64>,
    /// [`profit_roi`]: (revenue − true cost) ÷ true cost.
    pub profit_roi: Option<f64>,
}

/// One campaign on one of its channels.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ChannelPart {
    /// The channel.
    pub channel: String,
    /// The campaign's metrics on it.
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// One campaign across its channels: the metrics summed over them (ratios of the sums),
/// and the same metrics per channel.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CampaignRow {
    /// The campaign.
    pub campaign: String,
    /// Its channels, by name.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The journey sending it, if any.
    pub journey: Option<String>,
    /// The journey's status (`active`, `paused`, …) or `-`.
    pub status: String,
    /// Over all its channels.
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Per channel, by name.
    #[serde(default)]
    pub by_channel: Vec<ChannelPart>,
}

/// **ROI** 投入產出比 = revenue ÷ spend (seed 003's "銷售額與營銷投入比": attributed sales
/// over everything spent on marketing, send costs and ad spend; the guardrail trips below
/// 1); n/a without spend. The one definition every report uses.
pub fn roi(revenue: i64, spend: i64) -> Option<f64> {
    quotient(revenue, spend)
}

/// **ROAS** = revenue credited to paid channels ÷ ad spend: what the ads alone returned
/// per 元 of ad spend; n/a without ad spend. It differs from [`roi`] whenever a campaign
/// also sends on owned channels (their revenue and send costs are left out), and agrees
/// with it on a campaign that runs on paid channels alone.
pub fn roas(paid_revenue: i64, ad_spend: i64) -> Option<f64> {
    quotient(paid_revenue, ad_spend)
}

/// **Profit ROI** = (revenue − true cost) ÷ true cost: the return after every cost,
/// coupons and points included; n/a without cost.
pub fn profit_roi(revenue: i64, true_cost: i64) -> Option<f64> {
    quotient(revenue.saturating_sub(true_cost), true_cost)
}

fn quotient(num: i64, den: i64) -> Option<f64> {
    (den != 0).then(|| num as f64 / den as f64)
}

#[derive(Default, Clone)]
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
    send_cost: i64,
    orders: i64,
    revenue: i64,
    paid_revenue: i64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        if self.journey.is_none() {
            self.journey.clone_from(&o.journey);
        }
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.opened += o.opened;
        self.clicked += o.clicked;
        self.converted += o.converted;
        self.ad = self.ad.saturating_add(o.ad);
        self.coupon = self.coupon.saturating_add(o.coupon);
        self.points = self.points.saturating_add(o.points);
        self.send_cost = self.send_cost.saturating_add(o.send_cost);
        self.orders += o.orders;
        self.revenue = self.revenue.saturating_add(o.revenue);
        self.paid_revenue = self.paid_revenue.saturating_add(o.paid_revenue);
    }

    /// The metrics of these sums (every ratio of sums, never an average of ratios).
    fn metrics(&self) -> Metrics {
        let spend = self.send_cost.saturating_add(self.ad);
        let true_cost = spend.saturating_add(self.coupon).saturating_add(self.points);
        Metrics {
            sent: self.sent,
            delivered: self.delivered,
            opened: self.opened,
            clicked: self.clicked,
            converted: self.converted,
            orders: self.orders,
            open_rate: Ratio::of(self.opened, self.delivered),
            ctr: Ratio::of(self.clicked, self.delivered),
            cvr: Ratio::of(self.converted, self.clicked),
            revenue: self.revenue,
            paid_revenue: self.paid_revenue,
            spend,
            send_cost: self.send_cost,
            ad_spend: self.ad,
            coupon_cost: self.coupon,
            points_cost: self.points,
            true_cost,
            cpa: fen_per(spend, self.converted),
            roi: roi(self.revenue, spend),
            roas: roas(self.paid_revenue, self.ad),
            profit_roi: profit_roi(self.revenue, true_cost),
        }
    }
}

/// One row per campaign with messages, costs or credit, by campaign name, with its
/// channels' breakdown; only the (campaign, channel) pairs `keep` accepts count (a
/// report narrowed to a channel sums that channel alone). `credits` come from
/// [`crate::attribution::attribute`] per (campaign, channel); `status` maps a journey
/// name to its status.
pub fn campaign_rows(
    messages: &[MessageFact],
    costs: &[CostFact],
    credits: &BTreeMap<(String, String), Credit>,
    status: &HashMap<String, JourneyStatus>,
    config: &AnalyticsConfig,
    keep: impl Fn(&str, &str) -> bool,
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
    for (key, credit) in credits {
        let t = tally.entry(key.clone()).or_default();
        t.orders = credit.orders;
        t.revenue = credit.revenue;
    }
    tally.retain(|(campaign, channel), _| keep(campaign, channel));
    let mut rows: Vec<CampaignRow> = Vec::new();
    let mut total = Tally::default();
    for ((campaign, channel), mut t) in tally {
        let cfg = config.channel(&channel);
        t.send_cost = t.sent.saturating_mul(cfg.unit_cost_fen);
        if cfg.kind == ChannelKind::Paid {
            t.paid_revenue = t.revenue;
        }
        if rows.last().is_some_and(|r| r.campaign != campaign) {
            finish(rows.last_mut(), &total, status);
            total = Tally::default();
        }
        if rows.last().is_none_or(|r| r.campaign != campaign) {
            rows.push(CampaignRow {
                campaign,
                channels: Vec::new(),
                journey: None,
                status: String::new(),
                metrics: Metrics::default(),
                by_channel: Vec::new(),
            });
        }
        total.add(&t);
        if let Some(row) = rows.last_mut() {
            row.channels.push(channel.clone());
            row.by_channel.push(ChannelPart {
                channel,
                metrics: t.metrics(),
            });
        }
    }
    finish(rows.last_mut(), &total, status);
    rows
}

/// Fills a campaign row from its channels' summed tallies.
fn finish(row: Option<&mut CampaignRow>, total: &Tally, status: &HashMap<String, JourneyStatus>) {
    if let Some(row) = row {
        row.metrics = total.metrics();
        row.journey.clone_from(&total.journey);
        row.status = total
            .journey
            .as_ref()
            .and_then(|j| status.get(j).map(|s| s.as_str().to_string()))
            .unwrap_or_else(|| "-".into());
    }
}

/// A campaign on one channel (the other modules' test fixtures).
#[cfg(test)]
pub(crate) fn one_channel_row(
    campaign: &str,
    channel: &str,
    journey: Option<String>,
    metrics: Metrics,
) -> CampaignRow {
    CampaignRow {
        campaign: campaign.into(),
        channels: vec![channel.into()],
        journey,
        status: "-".into(),
        metrics: metrics.clone(),
        by_channel: vec![ChannelPart {
            channel: channel.into(),
            metrics,
        }],
    }
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
        let rows = campaign_rows(
            &messages,
            &costs,
            &credits,
            &status,
            &AnalyticsConfig::default(),
            |_, _| true,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, "active");
        let r = &rows[0].metrics;
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
            |_, _| true,
        );
        assert_eq!(rows[0].status, "-");
        let r = &rows[0].metrics;
        assert_eq!(r.roi, Some(0.9));
        assert_eq!(r.roas, Some(0.9), "paid channels alone: ROAS is ROI");
        assert_eq!(r.cvr, Ratio::NotApplicable);
        assert_eq!(r.cpa, None);
    }

    #[test]
    fn one_row_per_campaign_across_its_channels() {
        // 雙11 sends 4 emails and 2 newsletters and buys 100 元 of douyin ads; orders
        // credited: 300 元 by email, 100 元 by newsletter, 200 元 by douyin.
        let on = |channel: &str, status: &str, clicked: bool, converted: bool| MessageFact {
            campaign: "雙11".into(),
            channel: channel.into(),
            ..msg(status, false, clicked, converted)
        };
        let messages = vec![
            on("email", "delivered", true, true),
            on("email", "delivered", true, false),
            on("email", "delivered", false, false),
            on("email", "bounced", false, false),
            on("newsletter", "delivered", true, true),
            on("newsletter", "delivered", false, false),
        ];
        let costs = vec![CostFact {
            campaign: "雙11".into(),
            channel: "douyin".into(),
            kind: CostKind::Ad,
            amount: 10_000,
        }];
        let credit = |channel: &str, orders, revenue| {
            (
                ("雙11".to_string(), channel.to_string()),
                Credit { orders, revenue },
            )
        };
        let credits: BTreeMap<_, _> = [
            credit("email", 2, 30_000),
            credit("newsletter", 1, 10_000),
            credit("douyin", 1, 20_000),
        ]
        .into();
        let mut config = AnalyticsConfig::default();
        config.channels.insert(
            "newsletter".into(),
            crate::config::ChannelConfig {
                kind: ChannelKind::Owned,
                unit_cost_fen: 10,
                monthly_budget_fen: 0,
                monthly_cap_fen: None,
            },
        );
        let rows = campaign_rows(&messages, &costs, &credits, &HashMap::new(), &config, |_, _| true);
        assert_eq!(rows.len(), 1, "one campaign, one row");
        let row = &rows[0];
        assert_eq!(row.channels, ["douyin", "email", "newsletter"]);
        let m = &row.metrics;
        assert_eq!((m.sent, m.delivered, m.clicked, m.converted), (6, 5, 3, 2));
        assert_eq!(m.cvr, Ratio::of(2, 3), "a ratio of the sums");
        assert_eq!((m.orders, m.revenue, m.paid_revenue), (4, 60_000, 20_000));
        // Send cost: 4 emails × 0 + 2 newsletters × 10 fen; ad spend 100 元.
        assert_eq!((m.send_cost, m.ad_spend, m.spend), (20, 10_000, 10_020));
        assert_eq!(m.cpa, Some(5_010));
        assert_eq!(m.roi, roi(60_000, 10_020), "all revenue over all spend");
        assert_eq!(m.roas, Some(2.0), "the ads' 200 元 over their 100 元");
        assert_ne!(m.roi, m.roas);
        let part = |c: &str| &row.by_channel.iter().find(|p| p.channel == c).unwrap().metrics;
        assert_eq!((part("email").sent, part("email").revenue), (4, 30_000));
        assert_eq!(part("email").roi, None, "email costs nothing to send");
        assert_eq!(part("newsletter").roi, Some(500.0));
        assert_eq!((part("douyin").roi, part("douyin").roas), (Some(2.0), Some(2.0)));
        // Narrowed to a channel: that channel's numbers alone.
        let email = campaign_rows(&messages, &costs, &credits, &HashMap::new(), &config, |_, ch| {
            ch == "email"
        });
        assert_eq!(email[0].channels, ["email"]);
        assert_eq!((email[0].metrics.sent, email[0].metrics.revenue), (4, 30_000));
    }

    #[test]
    fn roi_roas_and_profit_roi_each_have_one_definition() {
        assert_eq!(roi(90_000, 100_000), Some(0.9));
        assert_eq!(roi(1, 0), None);
        assert_eq!(roas(20_000, 10_000), Some(2.0));
        assert_eq!(roas(0, 0), None);
        assert_eq!(profit_roi(1_000, 500), Some(1.0));
        assert_eq!(profit_roi(250, 500), Some(-0.5));
        assert_eq!(profit_roi(1, 0), None);
    }
}
