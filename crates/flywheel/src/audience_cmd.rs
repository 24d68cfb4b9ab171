//! `flywheel segment …`, `flywheel tag …` and `flywheel rfm`: the audience engine over the
//! store, from the command line. Each command rebuilds the engine from the store (the same
//! code a server runs at start), answers, and exits.

use std::io::Write;

use anyhow::{Context, Result};
use flywheel_audience::{Audience, DefKind, SegmentInput, TagInput};
use flywheel_core::time::{from_millis, parse_observation_end, to_millis};
use serde_json::json;

use crate::cli::{OutputFormat, RfmArgs, SegmentCommand, TagCommand};
use crate::config::Settings;
use crate::{commands, output, serve, BadInput};

async fn open(settings: &Settings) -> Result<Audience> {
    let store = commands::open_store(settings).await?;
    serve::open_audience(&store, settings.audience.clone()).await
}

/// Maps the engine's refusals of the input (a 4xx code) to exit code 2, its failures to 1.
fn input(e: flywheel_audience::Error) -> anyhow::Error {
    match e {
        flywheel_audience::Error::Store(s) => anyhow::Error::new(s),
        other if other.code().status() >= 500 => anyhow::anyhow!(other.to_string()),
        other => BadInput(other.to_string()).into(),
    }
}

/// Runs a segment command.
pub async fn segment(cmd: SegmentCommand, settings: Settings) -> Result<()> {
    let audience = open(&settings).await?;
    match cmd {
        SegmentCommand::Count { expression, format } => {
            let adhoc = SegmentInput::text(&expression);
            audience.prepare(&adhoc).await.map_err(input)?;
            let n = audience.count(&adhoc).map_err(input)?;
            let rows = vec![vec![expression.clone(), n.to_string()]];
            output::print(
                format,
                &["expression", "count"],
                &rows,
                &json!({"expression": expression, "count": n}),
            );
        }
        SegmentCommand::Export { expression, name } => {
            let text = match (expression, name) {
                (Some(e), _) => e,
                (None, Some(n)) => audience.segment(&n).map_err(input)?.def.expression,
                (None, None) => return Err(BadInput("give an expression or --name".into()).into()),
            };
            let adhoc = SegmentInput::text(text);
            audience.prepare(&adhoc).await.map_err(input)?;
            let csv = audience.export_csv(&adhoc).map_err(input)?;
            std::io::stdout().write_all(&csv).context("writing to stdout")?;
        }
        SegmentCommand::List { format } => {
            let list = audience.segments();
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    vec![
                        s.def.name.clone(),
                        s.members.to_string(),
                        s.def.expression.clone(),
                    ]
                })
                .collect();
            output::print(
                format,
                &["name", "members", "expression"],
                &rows,
                &serde_json::to_value(&list)?,
            );
        }
        SegmentCommand::Create {
            name,
            expression,
            description,
            replace,
        } => {
            let def = audience
                .put_segment(name, &SegmentInput::text(expression), description, replace)
                .await
                .map_err(input)?;
            let members = audience.segment(&def.name).map_err(input)?.members;
            println!(
                "saved segment {:?} ({members} members): {}",
                def.name, def.expression
            );
        }
        SegmentCommand::Delete { name } => {
            audience.delete(DefKind::Segment, &name).await.map_err(input)?;
            println!("deleted segment {name:?}");
        }
    }
    Ok(())
}

/// Runs a tag command.
pub async fn tag(cmd: TagCommand, settings: Settings) -> Result<()> {
    let audience = open(&settings).await?;
    match cmd {
        TagCommand::List { format } => {
            let list = audience.tags();
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    vec![
                        t.def.name.clone(),
                        t.def.group.clone().unwrap_or_default(),
                        t.members.to_string(),
                        t.def.rule.clone().unwrap_or_else(|| "(manual)".into()),
                    ]
                })
                .collect();
            output::print(
                format,
                &["name", "group", "members", "rule"],
                &rows,
                &serde_json::to_value(&list)?,
            );
        }
        TagCommand::Create {
            name,
            rule,
            group,
            description,
            replace,
        } => {
            let tag = TagInput {
                name,
                kind: None,
                group,
                rule,
                rule_ast: None,
                description,
            };
            let def = audience.put_tag(tag, replace).await.map_err(input)?;
            println!("saved tag {:?}", def.name);
        }
        TagCommand::Delete { name } => {
            audience.delete(DefKind::Tag, &name).await.map_err(input)?;
            println!("deleted tag {name:?}");
        }
        TagCommand::Add {
            name,
            mut profiles,
            file,
        } => {
            if let Some(path) = file {
                profiles.extend(ids_in_file(&path)?);
            }
            let done = audience.assign(&name, &profiles, false).await.map_err(input)?;
            println!("tagged {} profiles with {name:?}", done.len());
        }
        TagCommand::Remove { name, profiles } => {
            let done = audience.assign(&name, &profiles, true).await.map_err(input)?;
            println!("untagged {} profiles from {name:?}", done.len());
        }
    }
    Ok(())
}

/// The ids in the first column of a CSV file, without a header line.
fn ids_in_file(path: &std::path::Path) -> Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .map_err(|e| BadInput(format!("cannot read {}: {e}", path.display())))?;
    let mut ids = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| BadInput(format!("{}: {e}", path.display())))?;
        let Some(id) = record.get(0).map(str::trim).filter(|id| !id.is_empty()) else {
            continue;
        };
        if i == 0 && matches!(id, "profile_id" | "user_id" | "id") {
            continue;
        }
        ids.push(id.to_owned());
    }
    if ids.is_empty() {
        return Err(BadInput(format!("{} holds no ids", path.display())).into());
    }
    Ok(ids)
}

/// Runs `flywheel rfm`.
pub async fn rfm(args: RfmArgs, settings: Settings) -> Result<()> {
    let as_of = match &args.as_of {
        Some(t) => to_millis(
            parse_observation_end(t, settings.audience.timezone)
                .map_err(|e| BadInput(format!("--as-of {t:?}: {e}")))?,
        ),
        None => to_millis(chrono::Utc::now()),
    };
    let audience = open(&settings).await?;
    let report = audience.rfm_report(as_of);
    let rows: Vec<Vec<String>> = report
        .iter()
        .map(|r| {
            vec![
                r.profile_id.clone(),
                r.user_id.clone().unwrap_or_default(),
                r.summary.frequency.to_string(),
                r.summary.recency_days.to_string(),
                r.summary.t_days.to_string(),
                format!("{:.6}", r.summary.monetary_fen / 100.0),
                r.score.r.to_string(),
                r.score.f.to_string(),
                r.score.m.to_string(),
                r.segment.to_string(),
            ]
        })
        .collect();
    let json = json!({"as_of": from_millis(as_of).to_rfc3339(), "buyers": report.len(), "rows": report});
    let headers = [
        "profile_id",
        "user_id",
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "r",
        "f",
        "m",
        "segment",
    ];
    match args.format {
        OutputFormat::Table if rows.len() > 50 => {
            output::print(args.format, &headers, &rows[..50], &json);
            eprintln!(
                "… {} buyers in all; use --format csv or json for every row",
                rows.len()
            );
        }
        f => output::print(f, &headers, &rows, &json),
    }
    Ok(())
}
