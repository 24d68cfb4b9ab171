//! A review (R10.5) as people read it: its sections as tables, and the plain-text and
//! HTML bodies of the email that carries it ([`Letter`], how the workers' notifier
//! writes reviews).

use flywheel_analytics::reports::Review;
use flywheel_analytics::review::{show_change, Cadence};

use flywheel_workers::notify::{escape_html as escape, Notifier, ReviewLetter};

use crate::config::Settings;
use crate::output;
use crate::tables::{self, Table};

/// The metric names shown for `MetricChange::metric`.
fn metric_label(metric: &str) -> &str {
    match metric {
        "gmv" => "GMV (元)",
        "net_revenue" => "net revenue (元)",
        "orders" => "orders",
        "buyers" => "buyers",
        "aov" => "AOV 客單價 (元)",
        "new_buyers" => "new buyers",
        "returning_buyers" => "returning buyers",
        "repurchase_rate" => "repurchase rate 復購率",
        "visitors" => "visitors",
        "conversion" => "conversion",
        "churn_rate" => "churn rate 流失率",
        other => other,
    }
}

/// The email subject: `Flywheel 週復盤 2026-11-23 – 2026-11-29`.
pub fn subject(r: &Review) -> String {
    let kind = match r.cadence {
        Cadence::Weekly => "週復盤 weekly review",
        Cadence::Monthly => "月復盤 monthly review",
    };
    format!("Flywheel {kind} {} – {}", r.from, r.to)
}

/// The review's sections in reading order, each a title and a table.
pub fn sections(r: &Review) -> Vec<(String, Table)> {
    let kpis = Table {
        headers: vec!["metric", "this period", "previous", "change"],
        rows: r
            .changes
            .iter()
            .map(|c| {
                vec![
                    metric_label(&c.metric).to_string(),
                    c.current.to_string(),
                    c.previous.to_string(),
                    show_change(c),
                ]
            })
            .collect(),
    };
    let retention = Table {
        headers: vec!["retention", "users", "retained", "rate"],
        rows: r
            .retention
            .iter()
            .map(|x| {
                vec![
                    format!("D{}", x.day_n),
                    x.users.to_string(),
                    x.retained.to_string(),
                    x.rate.to_string(),
                ]
            })
            .collect(),
    };
    let benchmarks = Table {
        headers: vec!["benchmark", "metric", "value", "benchmark value", "missed"],
        rows: r
            .benchmarks
            .iter()
            .map(|b| {
                vec![
                    b.name.clone(),
                    b.metric.as_str().to_string(),
                    b.value.to_string(),
                    flywheel_analytics::Ratio::Value(b.benchmark).to_string(),
                    if b.missed { "MISSED" } else { "ok" }.into(),
                ]
            })
            .collect(),
    };
    let mut out = vec![
        (
            format!(
                "KPIs {} – {} vs {} – {}",
                r.from, r.to, r.previous_from, r.previous_to
            ),
            kpis,
        ),
        ("Retention observed in the period".to_string(), retention),
        ("Campaigns".to_string(), tables::campaigns(&r.campaigns, false)),
        ("Channels".to_string(), tables::channels(&r.channels)),
        ("Goals".to_string(), tables::goals(&r.goals)),
    ];
    if !r.benchmarks.is_empty() {
        out.push(("Benchmarks".to_string(), benchmarks));
    }
    out.push((
        "Alerts raised in the period".to_string(),
        tables::alerts(&r.alerts),
    ));
    out
}

/// The plain-text body: the subject, then each section's title and aligned table.
pub fn text(r: &Review) -> String {
    let mut out = subject(r);
    if !r.complete {
        out.push_str(" (period not over yet)");
    }
    out.push_str("\n\n");
    for (title, t) in sections(r) {
        out.push_str(&title);
        out.push('\n');
        if t.rows.is_empty() {
            out.push_str("(none)\n\n");
            continue;
        }
        out.push_str(&output::table(&t.headers, &t.rows));
        out.push('\n');
    }
    out
}

/// The HTML body: each section as a heading and a table.
pub fn html(r: &Review) -> String {
    let mut out = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title></head>\
         <body style=\"font-family:sans-serif\"><h1>{0}</h1>",
        escape(&subject(r))
    );
    for (title, t) in sections(r) {
        out.push_str(&format!("<h2>{}</h2>", escape(&title)));
        if t.rows.is_empty() {
            out.push_str("<p>(none)</p>");
            continue;
        }
        out.push_str("<table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse\"><tr>");
        for h in &t.headers {
            out.push_str(&format!("<th>{}</th>", escape(h)));
        }
        out.push_str("</tr>");
        for row in &t.rows {
            out.push_str("<tr>");
            for c in row {
                out.push_str(&format!("<td>{}</td>", escape(c)));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>");
    out
}

/// Reviews written as [`subject`], [`text`] and [`html`].
pub struct Letter;

impl ReviewLetter for Letter {
    fn subject(&self, r: &Review) -> String {
        subject(r)
    }

    fn text(&self, r: &Review) -> String {
        text(r)
    }

    fn html(&self, r: &Review) -> String {
        html(r)
    }
}

/// The notifier of `[analytics.notify]` over the `[journeys.email]` relay; a setting it
/// cannot use is bad input.
pub fn notifier(settings: &Settings) -> Result<Notifier, crate::BadInput> {
    Notifier::new(
        &settings.analytics.notify,
        settings.journeys.email.as_ref(),
        std::sync::Arc::new(Letter),
    )
    .map_err(|e| crate::BadInput(e.to_string()))
}
