//! `flywheel report …`, `flywheel spend`, `flywheel guardrails`: the analytics reports
//! from the store (docs/analytics.md), as tables or `--format json|csv`.

use std::sync::Arc;

use anyhow::Result;
use chrono::NaiveDate;
use flywheel_analytics::campaign_facts::Spend;
use flywheel_analytics::config::Model;
use flywheel_analytics::reports::{CohortSpec, Filter, Reports};
use flywheel_analytics::retention::CohortPeriod;
use flywheel_analytics::review::Cadence;
use flywheel_core::Fen;

use crate::cli::{OutputFormat, ReportCommand, ReportScope, SpendArgs};
use crate::config::Settings;
use crate::tables::{self, fen};
use crate::{commands, output, BadInput};

fn day(text: &str, flag: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| BadInput(format!("--{flag} {text:?}: use YYYY-MM-DD")).into())
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A report refused for the caller's input exits 2 (a 4xx code); a failure exits 1.
pub(crate) fn report_error(e: flywheel_analytics::reports::Error) -> anyhow::Error {
    if e.code().status() < 500 {
        BadInput(e.to_string()).into()
    } else {
        e.into()
    }
}

/// The filter of `scope`: `--from`/`--to` (default the 30 days ending today) and the
/// members of `--segment`.
async fn filter(reports: &Reports, scope: &ReportScope, settings: &Settings) -> Result<Filter> {
    let to = scope.to.as_deref().map(|t| day(t, "to")).transpose()?;
    let from = scope.from.as_deref().map(|f| day(f, "from")).transpose()?;
    let mut f = Filter::period(reports.days_or_recent(from, to, now()).map_err(report_error)?);
    if let Some(name) = &scope.segment {
        let audience = crate::serve::open_audience(reports.store(), settings.audience.clone()).await?;
        let ids = audience
            .segment_profile_ids(name)
            .map_err(|e| BadInput(e.to_string()))?;
        f.users = Some(Arc::new(ids));
    }
    f.channel.clone_from(&scope.channel);
    f.campaign.clone_from(&scope.campaign);
    Ok(f)
}

fn json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(v)?)
}

/// Runs a report command.
pub async fn run(cmd: ReportCommand, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let reports = crate::serve::reports_of(&store, &settings);
    match cmd {
        ReportCommand::Kpi { scope, daily } => {
            let f = filter(&reports, &scope, &settings).await?;
            let r = reports.kpi(&f).await.map_err(report_error)?;
            let k = &r.kpis;
            if daily {
                let rows: Vec<Vec<String>> = r
                    .daily
                    .iter()
                    .map(|d| {
                        vec![
                            d.day.to_string(),
                            fen(d.gmv.0),
                            fen(d.net_revenue.0),
                            d.orders.to_string(),
                            d.buyers.to_string(),
                            d.visitors.to_string(),
                        ]
                    })
                    .collect();
                let headers = [
                    "day",
                    "GMV (元)",
                    "net revenue (元)",
                    "orders",
                    "buyers",
                    "visitors",
                ];
                output::print(scope.format, &headers, &rows, &json(&r)?);
                return Ok(());
            }
            let rows = vec![
                vec!["GMV (元)".into(), fen(k.gmv.0)],
                vec!["net revenue (元)".into(), fen(k.net_revenue.0)],
                vec!["orders".into(), k.orders.to_string()],
                vec!["buyers".into(), k.buyers.to_string()],
                vec![
                    "AOV 客單價 (元)".into(),
                    k.aov.map_or_else(|| "n/a".into(), |a| fen(a.0)),
                ],
                vec!["repurchase rate 復購率".into(), k.repurchase_rate.to_string()],
                vec!["new buyers".into(), k.new_buyers.to_string()],
                vec!["returning buyers".into(), k.returning_buyers.to_string()],
                vec!["visitors".into(), k.visitors.to_string()],
                vec!["conversion".into(), k.conversion.to_string()],
                vec!["churn rate 流失率".into(), r.churn.rate.to_string()],
            ];
            output::print(scope.format, &["metric", "value"], &rows, &json(&r)?);
        }
        ReportCommand::Cohort {
            scope,
            days,
            by,
            cohort,
        } => {
            let spec = CohortSpec {
                days,
                by: by.parse().map_err(|e| BadInput(format!("--by: {e}")))?,
                basis: cohort.parse().map_err(|e| BadInput(format!("--cohort: {e}")))?,
            };
            let f = filter(&reports, &scope, &settings).await?;
            let today = reports.day_of(now());
            let r = reports
                .cohort_report(&f, &spec, today)
                .await
                .map_err(report_error)?;
            let prefix = match spec.by {
                CohortPeriod::Day => "D",
                CohortPeriod::Week => "W",
                CohortPeriod::Month => "M",
            };
            let mut headers = vec![
                format!("{} {}", spec.basis.as_str(), spec.by.as_str()),
                "users".to_string(),
            ];
            headers.extend(spec.days.iter().map(|n| format!("{prefix}{n}")));
            let cells = |retained: &[(u32, i64, flywheel_analytics::Ratio)]| {
                retained
                    .iter()
                    .map(|(_, _, ratio)| ratio.to_string())
                    .collect::<Vec<_>>()
            };
            let mut table: Vec<Vec<String>> = r
                .rows
                .iter()
                .map(|row| {
                    let mut line = vec![row.day.to_string(), row.size.to_string()];
                    line.extend(cells(&row.retained));
                    line
                })
                .collect();
            let mut avg = vec!["average".to_string(), r.average.size.to_string()];
            avg.extend(cells(&r.average.retained));
            table.push(avg);
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            output::print(scope.format, &headers, &table, &json(&r)?);
        }
        ReportCommand::Funnel {
            scope,
            steps,
            window_hours,
            breakdown,
            saved,
        } => {
            let f = filter(&reports, &scope, &settings).await?;
            let r = match saved {
                Some(name) => reports.run_saved_funnel(&f, &name).await,
                None => {
                    let window_ms = crate::funnel_cmd::window_ms(window_hours)?;
                    reports.funnel(&f, &steps, window_ms, breakdown.as_deref()).await
                }
            }
            .map_err(report_error)?;
            let mut rows = Vec::new();
            let mut push = |group: &str, steps: &[flywheel_analytics::columnar::FunnelStep]| {
                for (i, s) in steps.iter().enumerate() {
                    rows.push(vec![
                        group.to_string(),
                        format!("{}. {}", i + 1, s.name),
                        s.users.to_string(),
                        s.from_first.to_string(),
                        s.from_previous.to_string(),
                        s.dropped.to_string(),
                        s.median_seconds_from_previous
                            .map_or_else(|| "-".into(), |m| format!("{m:.0}")),
                    ]);
                }
            };
            push("all", &r.steps);
            for g in &r.groups {
                push(g.value.as_deref().unwrap_or("(none)"), &g.steps);
            }
            let headers = [
                "group",
                "step",
                "users",
                "conversion",
                "from previous",
                "dropped",
                "median s",
            ];
            output::print(scope.format, &headers, &rows, &json(&r)?);
        }
        ReportCommand::Ltv {
            scope,
            clv,
            top,
            save_traits,
        } => {
            let f = filter(&reports, &scope, &settings).await?;
            if clv {
                let at = f.observed_at(now());
                let r = reports.clv(&f, at).await.map_err(report_error)?;
                if save_traits {
                    let pipeline = flywheel_ingest::Pipeline::start(store.clone(), Default::default());
                    let saved = flywheel_workers::clv_refresh::save(&pipeline, r.identify_messages(at)).await;
                    pipeline.shutdown().await;
                    let saved = saved?;
                    eprintln!("saved CLV traits on {saved} profiles");
                }
                let rows: Vec<Vec<String>> = r
                    .predictions
                    .iter()
                    .take(top)
                    .map(|p| {
                        vec![
                            p.user_id
                                .clone()
                                .or_else(|| p.anonymous_id.clone())
                                .unwrap_or_default(),
                            p.frequency.to_string(),
                            format!("{:.3}", p.p_alive),
                            format!("{:.3}", p.expected_purchases),
                            fen(p.clv),
                            p.churn_risk.to_string(),
                        ]
                    })
                    .collect();
                let headers = [
                    "customer",
                    "repeat days",
                    "P(alive)",
                    "expected purchases",
                    "CLV (元)",
                    "churn risk",
                ];
                let shown = serde_json::json!({
                    "bgnbd": r.bgnbd, "gamma_gamma": r.gamma_gamma, "penalizer": r.penalizer, "customers": r.customers,
                    "horizon_days": r.horizon_days, "bands": r.bands,
                    "predictions": r.predictions.iter().take(top).collect::<Vec<_>>(),
                });
                if scope.format == OutputFormat::Table {
                    eprintln!(
                        "BG/NBD r={:.4} α={:.4} a={:.4} b={:.4}; Gamma-Gamma p={:.4} q={:.4} v={:.4}; {} customers",
                        r.bgnbd.r, r.bgnbd.alpha, r.bgnbd.a, r.bgnbd.b, r.gamma_gamma.p, r.gamma_gamma.q, r.gamma_gamma.v, r.customers
                    );
                }
                output::print(scope.format, &headers, &rows, &shown);
                return Ok(());
            }
            let r = reports.ltv(&f, now()).await.map_err(report_error)?;
            let rows: Vec<Vec<String>> = r
                .cohorts
                .iter()
                .map(|c| vec![c.month.clone(), c.users.to_string(), fen(c.revenue), fen(c.ltv)])
                .collect();
            output::print(
                scope.format,
                &["first order month", "customers", "revenue (元)", "LTV (元)"],
                &rows,
                &json(&r)?,
            );
        }
        ReportCommand::Campaign { scope, by_channel } => {
            let f = filter(&reports, &scope, &settings).await?;
            let rows = reports.campaigns(&f).await.map_err(report_error)?;
            let t = tables::campaigns(&rows, by_channel);
            output::print(
                scope.format,
                &t.headers,
                &t.rows,
                &serde_json::json!({ "rows": rows }),
            );
        }
        ReportCommand::Channel { month, format } => {
            let month = month.unwrap_or_else(|| reports.day_of(now()).format("%Y-%m").to_string());
            let f = Filter::period(flywheel_analytics::Period { from: 0, to: 0 });
            let r = reports.channels(&month, &f).await.map_err(report_error)?;
            let t = tables::channels(&r.rows);
            output::print(format, &t.headers, &t.rows, &json(&r)?);
        }
        ReportCommand::Attribution {
            scope,
            model,
            window_days,
        } => {
            let f = filter(&reports, &scope, &settings).await?;
            let defaults = &reports.config().attribution;
            let model: Model = match model {
                Some(m) => m.parse().map_err(BadInput)?,
                None => defaults.model,
            };
            let window = window_days.unwrap_or(defaults.window_days);
            let r = reports
                .attribution(&f, model, window)
                .await
                .map_err(report_error)?;
            let rows: Vec<Vec<String>> = r
                .rows
                .iter()
                .map(|a| {
                    vec![
                        a.campaign.clone(),
                        a.channel.clone(),
                        a.orders.to_string(),
                        fen(a.revenue),
                    ]
                })
                .collect();
            output::print(
                scope.format,
                &["campaign", "channel", "orders", "revenue (元)"],
                &rows,
                &json(&r)?,
            );
        }
        ReportCommand::Uplift { journey, scope } => {
            let f = filter(&reports, &scope, &settings).await?;
            let u = reports.uplift(&journey, &f).await.map_err(report_error)?;
            let pct = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{:+.2} pp", v * 100.0));
            let rows = vec![
                vec![
                    "treated".into(),
                    u.treated.users.to_string(),
                    u.treated.converted.to_string(),
                    u.treated.rate.to_string(),
                ],
                vec![
                    "holdout".into(),
                    u.holdout.users.to_string(),
                    u.holdout.converted.to_string(),
                    u.holdout.rate.to_string(),
                ],
                vec!["uplift".into(), String::new(), String::new(), pct(u.uplift)],
                vec![
                    "95% interval".into(),
                    String::new(),
                    String::new(),
                    format!("{} … {}", pct(u.ci_low), pct(u.ci_high)),
                ],
            ];
            output::print(
                scope.format,
                &["arm", "users", "converted", "rate"],
                &rows,
                &json(&u)?,
            );
        }
        ReportCommand::Goals { format } => {
            let goals = reports.goals(now()).await.map_err(report_error)?;
            let t = tables::goals(&goals);
            output::print(
                format,
                &t.headers,
                &t.rows,
                &serde_json::json!({ "goals": goals }),
            );
        }
        ReportCommand::Review {
            cadence,
            day: on,
            save,
            send,
            format,
        } => {
            let cadence: Cadence = cadence.parse().map_err(BadInput)?;
            let at = now();
            let on = match on {
                Some(d) => day(&d, "day")?,
                None => cadence.last_complete(reports.day_of(at)).0,
            };
            let review = reports.review(cadence, on, at).await.map_err(report_error)?;
            if save || send {
                let notifier = crate::review::notifier(&settings)?;
                match reports.save_review(&review).await.map_err(report_error)? {
                    Some(id) => {
                        eprintln!("saved review {id}");
                        if send {
                            if let Some(d) =
                                flywheel_workers::reviews::send(&reports, &notifier, id, 0, &review, now())
                                    .await?
                            {
                                eprintln!("{}", d.summary);
                            }
                        }
                    }
                    None => eprintln!(
                        "the {} review of {} – {} was already saved; not saved again",
                        cadence.as_str(),
                        review.from,
                        review.to
                    ),
                }
            }
            match format {
                OutputFormat::Table => print!("{}", crate::review::text(&review)),
                _ => {
                    let sections = crate::review::sections(&review);
                    let (_, kpis) = &sections[0];
                    output::print(format, &kpis.headers, &kpis.rows, &json(&review)?);
                }
            }
        }
        ReportCommand::Reviews { limit, format } => {
            let list = reports
                .reviews(limit.clamp(1, 10_000))
                .await
                .map_err(report_error)?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.cadence.clone(),
                        r.from.clone(),
                        r.to.clone(),
                        flywheel_core::time::from_millis(r.created_at).to_rfc3339(),
                        r.delivery.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            output::print(
                format,
                &["id", "cadence", "from", "to", "written", "delivery"],
                &rows,
                &serde_json::json!({ "reviews": list }),
            );
        }
        ReportCommand::Alerts { limit, format } => {
            let alerts = reports
                .alerts(limit.clamp(1, 10_000))
                .await
                .map_err(report_error)?;
            let t = tables::alerts(&alerts);
            output::print(
                format,
                &t.headers,
                &t.rows,
                &serde_json::json!({ "alerts": alerts }),
            );
        }
    }
    Ok(())
}

/// `flywheel spend`: records spend on a channel, lists a month's entries, or deletes one.
pub async fn spend(args: SpendArgs, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let reports = crate::serve::reports_of(&store, &settings);
    if let Some(id) = args.delete {
        return match reports.delete_cost(id, now()).await.map_err(report_error)? {
            Some(e) => {
                println!(
                    "deleted entry {id}: {} 元 on {}",
                    fen(e.spend.amount),
                    e.spend.channel
                );
                Ok(())
            }
            None => Err(BadInput(format!("no spend entry {id}")).into()),
        };
    }
    if let Some(month) = &args.list {
        let month = if month.is_empty() {
            reports.day_of(now()).format("%Y-%m").to_string()
        } else {
            month.clone()
        };
        let period = reports.month(&month).map_err(report_error)?;
        let entries = reports.spend_entries(period).await.map_err(report_error)?;
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                let days = match e.spend.until {
                    Some(u) => format!(
                        "{}..{}",
                        reports.day_of(e.spend.at),
                        reports.day_of(u.saturating_sub(1))
                    ),
                    None => reports.day_of(e.spend.at).to_string(),
                };
                vec![
                    e.id.to_string(),
                    days,
                    e.spend.channel.clone(),
                    e.spend.campaign.clone().unwrap_or_else(|| "-".into()),
                    fen(e.spend.amount),
                    e.spend.note.clone().unwrap_or_default(),
                ]
            })
            .collect();
        output::print(
            args.format,
            &["id", "days", "channel", "campaign", "amount (元)", "note"],
            &rows,
            &serde_json::json!({ "spend": entries }),
        );
        return Ok(());
    }
    let (Some(channel), Some(amount_text)) = (args.channel, args.amount) else {
        return Err(BadInput("--channel and --amount are required".into()).into());
    };
    let amount =
        Fen::parse_decimal(&amount_text).map_err(|e| BadInput(format!("--amount {amount_text:?}: {e}")))?;
    let (at, until) = match (&args.day, &args.from, &args.to) {
        (_, Some(from), Some(to)) => {
            let (first, last) = (day(from, "from")?, day(to, "to")?);
            let next = last
                .succ_opt()
                .ok_or_else(|| BadInput(format!("--to {to:?} is out of range")))?;
            (reports.day_start(first), Some(reports.day_start(next)))
        }
        (Some(d), _, _) => (reports.day_start(day(d, "day")?), None),
        _ => (now(), None),
    };
    let spend = Spend {
        channel: channel.clone(),
        campaign: args.campaign,
        at,
        until,
        amount: amount.0,
        note: args.note,
    };
    let id = reports.add_cost(spend, now()).await.map_err(report_error)?;
    println!(
        "recorded {} 元 on {channel} (entry {id})",
        amount.to_yuan_string()
    );
    Ok(())
}

/// `flywheel guardrails`: one guardrail check.
pub async fn guardrails(settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let reports = crate::serve::reports_of(&store, &settings);
    let journeys = crate::journey_cmd::engine(&store, &settings, false).await?;
    let alerts = flywheel_workers::guardrails::enforce(&reports, &journeys, now()).await?;
    if alerts.is_empty() {
        println!("no campaign tripped a guardrail");
    }
    for a in alerts {
        let esc = crate::log_fields::escape_controls;
        println!(
            "{}: {} ({}) — {}",
            esc(&a.campaign),
            a.action,
            a.rule,
            esc(&a.detail)
        );
    }
    Ok(())
}
