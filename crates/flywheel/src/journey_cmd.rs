//! `flywheel journey …`, `flywheel messages`, `flywheel consent`: journeys, the message
//! log and consent, on the store. A running server re-reads definitions every second.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use flywheel_core::SystemClock;
use flywheel_journeys::db::{MessageFilter, Status};
use flywheel_journeys::{Engine, Journey, Providers};
use flywheel_store::Store;

use crate::cli::{ConsentArgs, JourneyCommand, MessagesArgs};
use crate::config::Settings;
use crate::{commands, output, BadInput};

fn input(e: flywheel_journeys::Error) -> anyhow::Error {
    match e {
        flywheel_journeys::Error::Store(s) => anyhow::Error::new(s),
        other => BadInput(other.to_string()).into(),
    }
}

/// An engine that is not running (no workers): the CLI only reads and saves.
pub(crate) async fn engine(store: &Store, settings: &Settings, with_audience: bool) -> Result<Engine> {
    let audience = if with_audience {
        Some(crate::serve::open_audience(store, settings.audience.clone()).await?)
    } else {
        None
    };
    let clock: Arc<dyn flywheel_core::Clock> = Arc::new(SystemClock);
    let services = flywheel_workers::journey_ports::services(
        audience,
        Some(flywheel_promotions::coupons::CouponService::new(
            store.clone(),
            clock.clone(),
        )),
        None,
        None,
    );
    let providers = Providers {
        renderer: crate::serve::renderer(settings.journeys.rendering),
        ..Providers::default()
    };
    let engine = Engine::new(
        store.clone(),
        clock,
        settings.journeys.clone(),
        providers,
        services,
        Vec::new(),
    );
    engine.reload().await.map_err(input)?;
    Ok(engine)
}

fn read_definition(file: &Path) -> Result<Journey> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading stdin")?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| BadInput(format!("cannot read {}: {e}", file.display())))?
    };
    Journey::parse(&text).map_err(|e| BadInput(format!("{}: {e}", file.display())).into())
}

async fn save(e: &Engine, j: &Journey, start: bool) -> Result<()> {
    let (version, created) = e.save(j).await.map_err(input)?;
    if created {
        println!("saved journey {:?} version {version}", j.name);
    } else {
        println!("journey {:?} unchanged (version {version})", j.name);
    }
    if start {
        e.set_status(&j.name, Status::Active).await.map_err(input)?;
        println!("started {:?}", j.name);
    }
    Ok(())
}

/// Runs a journey command.
pub async fn run(cmd: JourneyCommand, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    match cmd {
        JourneyCommand::List { format } => {
            let e = engine(&store, &settings, false).await?;
            let list = e.list().await.map_err(input)?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|j| {
                    vec![
                        j.row.name.clone(),
                        j.row.version.to_string(),
                        j.row.status.as_str().into(),
                        trigger_text(&j.definition),
                        j.definition.steps.len().to_string(),
                    ]
                })
                .collect();
            output::print(
                format,
                &["journey", "version", "status", "trigger", "steps"],
                &rows,
                &serde_json::to_value(&list)?,
            );
        }
        JourneyCommand::Show { name } => {
            let e = engine(&store, &settings, false).await?;
            let j = e.get(&name).await.map_err(input)?;
            println!("{}", serde_json::to_string_pretty(&j.definition)?);
        }
        JourneyCommand::Save { file, start } => {
            let j = read_definition(&file)?;
            let e = engine(&store, &settings, true).await?;
            save(&e, &j, start).await?;
        }
        JourneyCommand::Start { name } => set(&store, &settings, &name, Status::Active).await?,
        JourneyCommand::Pause { name } => set(&store, &settings, &name, Status::Paused).await?,
        JourneyCommand::Stop { name } => set(&store, &settings, &name, Status::Stopped).await?,
        JourneyCommand::Delete { name } => {
            let e = engine(&store, &settings, false).await?;
            e.delete(&name).await.map_err(input)?;
            println!("deleted {name:?}");
        }
        JourneyCommand::DryRun { name, users, file } => {
            let e = engine(&store, &settings, true).await?;
            let j = match file {
                Some(f) => read_definition(&f)?,
                None => e.get(&name).await.map_err(input)?.definition,
            };
            for p in e.dry_run(&j, &users).await.map_err(input)? {
                println!(
                    "{}: {} → {}",
                    crate::log_fields::escape_controls(&p.user_id),
                    p.path.join(" → "),
                    p.outcome
                );
            }
        }
        JourneyCommand::Preview { name, step, user } => {
            let e = engine(&store, &settings, true).await?;
            let j = e.get(&name).await.map_err(input)?.definition;
            let p = e.preview(&j, &step, &user).await.map_err(input)?;
            if let Some(s) = &p.subject {
                println!("subject: {s}");
            }
            println!("text: {}", p.text);
            if let Some(h) = &p.html {
                println!("html:\n{h}");
            }
        }
        JourneyCommand::Stats { name, format } => {
            let e = engine(&store, &settings, false).await?;
            let s = e.journey_stats(&name).await.map_err(input)?;
            let mut rows: Vec<Vec<String>> = s
                .steps
                .iter()
                .map(|(k, n)| vec!["step".into(), k.clone(), n.to_string()])
                .collect();
            rows.extend(
                s.states
                    .iter()
                    .map(|(k, n)| vec!["runs".into(), k.to_string(), n.to_string()]),
            );
            rows.extend(
                s.messages
                    .iter()
                    .map(|(k, n)| vec!["messages".into(), k.to_string(), n.to_string()]),
            );
            rows.push(vec!["goal".into(), "converted".into(), s.converted.to_string()]);
            output::print(
                format,
                &["what", "name", "count"],
                &rows,
                &serde_json::to_value(&s)?,
            );
        }
        JourneyCommand::Templates => {
            for j in flywheel_journeys::seeds::journeys().map_err(|e| anyhow::anyhow!(e))? {
                println!("{:<18} {}", j.name, j.description);
            }
        }
        JourneyCommand::Install { names, start } => install_seeds(&store, &settings, &names, start).await?,
    }
    Ok(())
}

/// Saves the seed journeys (all, or `names`) with the coupon templates they issue, as
/// drafts unless `start` (`flywheel journey install`; the demo installs them as drafts).
pub async fn install_seeds(store: &Store, settings: &Settings, names: &[String], start: bool) -> Result<()> {
    // The seeds' expressions are held valid by their tests: no audience index to build.
    let e = engine(store, settings, false).await?;
    let coupons = flywheel_promotions::coupons::CouponService::new(store.clone(), Arc::new(SystemClock));
    let existing: Vec<String> = coupons
        .templates()
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .into_iter()
        .map(|(t, _)| t.id)
        .collect();
    let templates: Vec<flywheel_promotions::coupons::CouponTemplate> =
        serde_json::from_str(flywheel_journeys::seeds::COUPON_TEMPLATES)?;
    for t in templates {
        if !existing.contains(&t.id) {
            let id = t.id.clone();
            coupons.create_template(t).await.map_err(|e| anyhow::anyhow!(e))?;
            println!("created coupon template {id:?}");
        }
    }
    let seeds = flywheel_journeys::seeds::journeys().map_err(|e| anyhow::anyhow!(e))?;
    for n in names {
        if !seeds.iter().any(|j| &j.name == n) {
            return Err(BadInput(format!(
                "no seed template {n:?} (see `flywheel journey templates`)"
            ))
            .into());
        }
    }
    for j in seeds
        .iter()
        .filter(|j| names.is_empty() || names.contains(&j.name))
    {
        save(&e, j, start).await?;
    }
    Ok(())
}

async fn set(store: &Store, settings: &Settings, name: &str, status: Status) -> Result<()> {
    let e = engine(store, settings, false).await?;
    let j = e.set_status(name, status).await.map_err(input)?;
    println!("{} is {}", j.row.name, j.row.status.as_str());
    Ok(())
}

fn trigger_text(j: &Journey) -> String {
    use flywheel_journeys::definition::Trigger;
    match &j.trigger {
        Trigger::Event(e) => format!("event {}", e.name),
        Trigger::Segment { name, on } => format!("segment {name} {on:?}").to_lowercase(),
        Trigger::Tag { name, on } => format!("tag {name} {on:?}").to_lowercase(),
        Trigger::Schedule(s) => format!("schedule {}", s.cron.clone().unwrap_or_else(|| "once".into())),
        Trigger::Date(d) => {
            use flywheel_journeys::definition::DateKind;
            let what = match &d.date {
                DateKind::Birthday => "birthday".to_string(),
                DateKind::CouponExpiry => "coupon expiry".into(),
                DateKind::FirstOrderAnniversary => "first order anniversary".into(),
                DateKind::Trait(t) => format!("trait {t}"),
                DateKind::NoSignIn { months } => format!("no sign-in for {months} months"),
            };
            match d.days_before {
                0 => format!("date {what}"),
                n => format!("date {what} -{n}d"),
            }
        }
    }
}

/// `flywheel messages`.
pub async fn messages(a: MessagesArgs, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let e = engine(&store, &settings, false).await?;
    let (filter, value) = match (&a.user, &a.journey, &a.run) {
        (Some(u), _, _) => (MessageFilter::User, u),
        (_, Some(j), _) => (MessageFilter::Journey, j),
        (_, _, Some(r)) => (MessageFilter::Run, r),
        _ => return Err(BadInput("give --user, --journey or --run".into()).into()),
    };
    let rows = e.messages(filter, value, a.limit).await.map_err(input)?;
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|m| {
            vec![
                flywheel_core::time::from_millis(m.created_at).to_rfc3339(),
                m.user_id.clone(),
                m.journey.clone().unwrap_or_default(),
                m.channel.clone(),
                m.status.to_string(),
                m.reason.clone().unwrap_or_default(),
                [
                    ("opened", m.opened_at),
                    ("clicked", m.clicked_at),
                    ("converted", m.converted_at),
                ]
                .iter()
                .filter(|(_, t)| t.is_some())
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(","),
            ]
        })
        .collect();
    output::print(
        a.format,
        &["at", "user", "journey", "channel", "status", "reason", "after"],
        &table,
        &serde_json::to_value(&rows)?,
    );
    Ok(())
}

/// `flywheel consent`.
pub async fn consent(a: ConsentArgs, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let e = engine(&store, &settings, false).await?;
    if let (Some(channel), Some(state)) = (&a.channel, &a.state) {
        e.set_consent(&a.user, channel, state, "cli")
            .await
            .map_err(input)?;
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&e.consent(&a.user).await.map_err(input)?)?
    );
    Ok(())
}
