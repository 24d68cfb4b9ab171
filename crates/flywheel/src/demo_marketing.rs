//! The demo shop's marketing history, so the console opens on meaningful campaign and
//! channel numbers: a log of past broadcast messages (email newsletter, SMS win-back,
//! WeChat posts) whose opens and clicks follow the orders the shoppers really placed
//! afterwards, and monthly ad spend on the paid channels sized from the revenue those
//! channels' utm traffic brought (ROI differs by channel; 抖音 runs below 1, so its
//! guardrail has something to say).

use std::collections::HashMap;

use anyhow::Result;
use chrono::Datelike;
use flywheel_analytics::campaign_facts::Spend;
use flywheel_analytics::kpi::Period;
use flywheel_analytics::reports::{Filter, Reports};
use flywheel_journeys::db::{MessageRow, MessageStatus};
use flywheel_store::Store;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DAY: i64 = 86_400_000;

/// A broadcast campaign: name, channel, subject, days between sends, share of users.
const BROADCASTS: &[(&str, &str, &str, i64, f64)] = &[
    ("會員周刊", "email", "本周會員專享：新品與好價", 7, 0.35),
    ("短信召回", "sms", "好久不見，送你一張 20 元券", 30, 0.15),
    ("公眾號推文", "wechat", "雙 11 預熱清單", 14, 0.25),
];

/// Target ROI of each paid channel's spend: spend = attributed revenue ÷ ROI.
const PAID_ROI: &[(&str, f64)] = &[
    ("baidu", 3.1),
    ("douyin", 0.85),
    ("xiaohongshu", 1.9),
    ("weibo", 1.25),
];

/// Writes the demo's message log for the 90 days before `end` and the paid channels'
/// spend for the last 12 months. Returns (messages, spend entries).
pub async fn generate(store: &Store, reports: &Reports, seed: u64, end: i64) -> Result<(usize, usize)> {
    let (users, orders) = store
        .read_with(|c| {
            let users = flywheel_store::read::user_ids_in_log(c)?;
            Ok((users, flywheel_analytics::load::orders(c, true)?.0))
        })
        .await?;
    let mut placed: HashMap<&str, Vec<i64>> = HashMap::new();
    for o in orders.iter().filter(|o| !o.cancelled) {
        placed.entry(o.user.as_str()).or_default().push(o.placed_at);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d61_726b);
    let mut rows: Vec<MessageRow> = Vec::new();
    for (c, (campaign, channel, subject, every, share)) in BROADCASTS.iter().enumerate() {
        let mut at = end - 90 * DAY + (c as i64) * DAY + 10 * 3_600_000;
        let mut send = 0;
        while at < end - DAY {
            for u in &users {
                if !rng.gen_bool(*share) {
                    continue;
                }
                let buys = placed
                    .get(u.as_str())
                    .is_some_and(|ts| ts.iter().any(|t| *t > at && *t <= at + 7 * DAY));
                let bounced = rng.gen_bool(0.03);
                let opened = !bounced && rng.gen_bool(if buys { 0.6 } else { 0.2 });
                let clicked = opened && rng.gen_bool(if buys { 0.55 } else { 0.08 });
                let converted = clicked && buys;
                let delay = rng.gen_range(60_000..6 * 3_600_000);
                rows.push(MessageRow {
                    id: format!("demo-{c}-{send}-{u}"),
                    user_id: u.clone(),
                    journey: None,
                    run_id: None,
                    step: None,
                    channel: (*channel).to_string(),
                    category: "marketing".into(),
                    campaign: Some((*campaign).to_string()),
                    status: if bounced {
                        MessageStatus::Bounced
                    } else {
                        MessageStatus::Delivered
                    },
                    reason: None,
                    address: None,
                    subject: Some((*subject).to_string()),
                    created_at: at,
                    updated_at: at,
                    delivered_at: (!bounced).then_some(at + 5_000),
                    opened_at: opened.then_some(at + delay),
                    clicked_at: clicked.then_some(at + delay + 30_000),
                    converted_at: converted.then_some(at + delay + 600_000),
                });
            }
            at += every * DAY;
            send += 1;
        }
    }
    let n = rows.len();
    store
        .write_with(move |c| {
            for m in &rows {
                flywheel_journeys::db::record_history(c, m)?;
            }
            Ok(())
        })
        .await?;
    // Paid spend, month by month, from what each paid channel's traffic brought.
    let mut entries = 0;
    let today = reports.day_of(end);
    for back in 0..12u32 {
        let Some(first) = today
            .with_day(1)
            .and_then(|d| d.checked_sub_months(chrono::Months::new(back)))
        else {
            continue;
        };
        let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
        let period = Period {
            from: reports.day_start(first),
            to: reports.day_start(next).min(end),
        };
        let rows = reports.campaigns(&Filter::period(period)).await?;
        for (campaign, part) in rows
            .iter()
            .flat_map(|r| r.by_channel.iter().map(move |p| (&r.campaign, p)))
        {
            let Some((_, roi)) = PAID_ROI.iter().find(|(ch, _)| *ch == part.channel) else {
                continue;
            };
            if part.metrics.revenue <= 0 {
                continue;
            }
            let jitter = rng.gen_range(0.9..1.1);
            let spend = (part.metrics.revenue as f64 / (roi * jitter)).round() as i64;
            // The month's budget over the month's days, as an ad platform bills it.
            let entry = Spend {
                channel: part.channel.clone(),
                campaign: Some(campaign.clone()),
                at: period.from,
                until: Some(period.to),
                amount: spend,
                note: Some("demo".into()),
            };
            reports.add_cost(entry, end).await?;
            entries += 1;
        }
    }
    Ok((n, entries))
}
