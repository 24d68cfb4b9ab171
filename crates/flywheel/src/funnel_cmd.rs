//! `flywheel funnel save|list|show|delete`: saved funnels (docs/analytics.md), run with
//! `flywheel report funnel --saved NAME`.

use anyhow::Result;
use flywheel_analytics::reports::SavedFunnel;

use crate::cli::FunnelCommand;
use crate::config::Settings;
use crate::report_cmd::{now, report_error};
use crate::{commands, output};

/// The conversion window of `--window-hours` in ms (refused: exit 2).
pub fn window_ms(hours: f64) -> Result<i64> {
    flywheel_analytics::reports::window_of_hours(hours).map_err(report_error)
}

/// Runs a saved funnel command.
pub async fn run(cmd: FunnelCommand, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let reports = crate::serve::reports_of(&store, &settings);
    match cmd {
        FunnelCommand::Save {
            name,
            steps,
            window_hours,
            breakdown,
        } => {
            let funnel = SavedFunnel {
                name,
                steps: steps.into_iter().map(|s| s.trim().to_string()).collect(),
                window_ms: window_ms(window_hours)?,
                breakdown: breakdown.filter(|b| !b.trim().is_empty()),
                created_at: 0,
            };
            let saved = reports.save_funnel(funnel, now()).await.map_err(report_error)?;
            println!(
                "saved funnel {:?}: {} ({} h)",
                saved.name,
                saved.steps.join(" → "),
                saved.window_ms as f64 / 3_600_000.0
            );
        }
        FunnelCommand::List { format } => {
            let list = reports.saved_funnels().await.map_err(report_error)?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|f| {
                    vec![
                        f.name.clone(),
                        f.steps.join(" → "),
                        format!("{}", f.window_ms as f64 / 3_600_000.0),
                        f.breakdown.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            output::print(
                format,
                &["name", "steps", "window hours", "breakdown"],
                &rows,
                &serde_json::json!({ "funnels": list }),
            );
        }
        FunnelCommand::Show { name } => {
            let f = reports.saved_funnel(&name).await.map_err(report_error)?;
            println!("{}", serde_json::to_string_pretty(&f)?);
        }
        FunnelCommand::Delete { name } => {
            reports.delete_saved_funnel(&name).await.map_err(report_error)?;
            println!("deleted funnel {name:?}");
        }
    }
    Ok(())
}
