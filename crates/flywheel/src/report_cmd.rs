//! `flywheel report …`: shop KPIs and cohort retention from the store (docs/analytics.md).

use anyhow::Result;
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use flywheel_analytics::{kpis, load, retention, Period};

use crate::cli::ReportCommand;
use crate::config::Settings;
use crate::{commands, output, BadInput};

fn day(text: &str, flag: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| BadInput(format!("--{flag} {text:?}: use YYYY-MM-DD")).into())
}

/// The half-open period from the start of `from` to the end of `to`, shop-local.
fn period(from: &str, to: &str, tz: Tz) -> Result<Period> {
    let (a, b) = (day(from, "from")?, day(to, "to")?);
    if b < a {
        return Err(BadInput(format!("--to {to} is before --from {from}")).into());
    }
    let start = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map_or(0, |t| t.timestamp_millis())
    };
    Ok(Period {
        from: start(a),
        to: start(b + chrono::Duration::days(1)),
    })
}

fn fen(f: flywheel_core::Fen) -> String {
    f.to_yuan_string()
}

/// Runs a report command.
pub async fn run(cmd: ReportCommand, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let tz = settings.audience.timezone;
    match cmd {
        ReportCommand::Kpi { from, to, format } => {
            let p = period(&from, &to, tz)?;
            let ((orders, first), visitors) = store
                .read_with(move |c| Ok((load::orders(c)?, load::visitors(c, p)?)))
                .await?;
            let k = kpis(&orders, &first, visitors, p);
            let rows = vec![
                vec!["GMV (元)".into(), fen(k.gmv)],
                vec!["net revenue (元)".into(), fen(k.net_revenue)],
                vec!["orders".into(), k.orders.to_string()],
                vec!["buyers".into(), k.buyers.to_string()],
                vec!["AOV 客單價 (元)".into(), k.aov.map_or_else(|| "n/a".into(), fen)],
                vec!["repurchase rate 復購率".into(), k.repurchase_rate.to_string()],
                vec!["new buyers".into(), k.new_buyers.to_string()],
                vec!["returning buyers".into(), k.returning_buyers.to_string()],
                vec!["visitors".into(), k.visitors.to_string()],
                vec!["conversion".into(), k.conversion.to_string()],
            ];
            output::print(format, &["metric", "value"], &rows, &serde_json::to_value(&k)?);
        }
        ReportCommand::Cohort {
            from,
            to,
            days,
            format,
        } => {
            let p = period(&from, &to, tz)?;
            let signup_events: Vec<String> = settings.audience.sign_up_events.clone();
            let (signups, active) = store
                .read_with(move |c| {
                    let names: Vec<&str> = signup_events.iter().map(String::as_str).collect();
                    load::cohorts(c, &names, p, tz)
                })
                .await?;
            let today = chrono::Utc::now().with_timezone(&tz).date_naive();
            let rows = retention(&signups, &active, &days, today);
            let mut headers = vec!["signup day".to_string(), "users".to_string()];
            headers.extend(days.iter().map(|n| format!("D{n}")));
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut row = vec![r.day.to_string(), r.size.to_string()];
                    row.extend(r.retained.iter().map(|(_, _, ratio)| ratio.to_string()));
                    row
                })
                .collect();
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            output::print(format, &headers, &table, &serde_json::to_value(&rows)?);
        }
    }
    Ok(())
}
