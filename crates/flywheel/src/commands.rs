//! Running each command.

use anyhow::{Context, Result};
use flywheel_core::time::parse_timestamp_in;
use flywheel_ingest::import::columns::ColumnMap;
use flywheel_ingest::import::{
    check_header, import_file, ImportFormat, ImportKind, ImportOptions, ImportSummary,
};
use flywheel_ingest::Pipeline;
use flywheel_store::Store;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::cli::{
    Command, FormatArg, ImportArgs, KeysCommand, KindArg, OutputFormat, ProfileCommand, TokenCommand,
};
use crate::config::{self, FileConfig, Settings};
use crate::{output, serve, BadInput};

/// Opens the store named by the settings (creating and migrating it).
pub async fn open_store(settings: &Settings) -> Result<Store> {
    let sqlite = match &settings.store {
        flywheel_store::StoreConfig::Sqlite(o) => Some(o.path.as_path()),
        flywheel_store::StoreConfig::Postgres(_) => None,
    };
    crate::private::secure(&settings.data_dir, sqlite)?;
    tracing::info!(store = %settings.store.describe(), "opening store");
    Store::open(settings.store.clone())
        .await
        .context("opening the store")
}

/// Runs one command.
pub async fn run(command: Command, settings: Settings, file: FileConfig) -> Result<()> {
    match command {
        Command::Serve(args) => {
            let server = config::server(&args, &file).map_err(|e| BadInput(format!("{e:#}")))?;
            let store = open_store(&settings).await?;
            let admin = serve::admin_token(
                &store,
                args.admin_token.as_deref(),
                &settings.data_dir,
                args.print_admin_token,
            )
            .await?;
            serve::start(store, admin, &server, &settings)
                .await?
                .run_until_signal()
                .await
        }
        Command::Demo(args) => crate::demo::run(args, settings, file).await,
        Command::Import(args) => import(args, settings).await,
        Command::Keys(k) => keys(k, settings).await,
        Command::Token(TokenCommand::Show) => token_show(&settings),
        Command::Profile(p) => profile(p, settings).await,
        Command::Segment(c) => crate::audience_cmd::segment(c, settings).await,
        Command::Tag(c) => crate::audience_cmd::tag(c, settings).await,
        Command::Rfm(a) => crate::audience_cmd::rfm(a, settings).await,
        Command::Price(a) => crate::price_cmd::run(a, settings).await,
        Command::Coupon(c) => crate::coupon_cmd::run(c, settings).await,
        Command::Journey(c) => crate::journey_cmd::run(c, settings).await,
        Command::Report(c) => crate::report_cmd::run(c, settings).await,
        Command::Spend(a) => crate::report_cmd::spend(a, settings).await,
        Command::Funnel(c) => crate::funnel_cmd::run(c, settings).await,
        Command::Guardrails => crate::report_cmd::guardrails(settings).await,
        Command::Messages(a) => crate::journey_cmd::messages(a, settings).await,
        Command::Consent(a) => crate::journey_cmd::consent(a, settings).await,
        Command::Loyalty(c) => crate::growth_cmd::loyalty(c, settings).await,
        Command::FlashSale(c) => crate::growth_cmd::flash_sale(c, settings).await,
        Command::GroupBuy(c) => crate::growth_cmd::group_buy(c, settings).await,
        Command::Referral(c) => crate::growth_cmd::referral(c, settings).await,
        Command::DeadLetters(a) => crate::dead_letter_cmd::run(a, settings).await,
    }
}

async fn import(args: ImportArgs, settings: Settings) -> Result<()> {
    let format = match args.format {
        Some(FormatArg::Csv) => ImportFormat::Csv,
        Some(FormatArg::Jsonl) => ImportFormat::Jsonl,
        None => ImportFormat::from_path(&args.file).ok_or_else(|| {
            BadInput(format!(
                "cannot tell the format of {}: use --format csv|jsonl",
                args.file.display()
            ))
        })?,
    };
    let kind = match args.kind {
        KindArg::Users => ImportKind::Users,
        KindArg::Orders => ImportKind::Orders,
        KindArg::Events => ImportKind::Events,
    };
    let tz = settings.audience.timezone;
    let not_before = match args.not_before.as_ref().or(settings.import.not_before.as_ref()) {
        Some(t) => Some(
            parse_timestamp_in(t, &tz)
                .map_err(|_| BadInput(format!("--not-before {t:?}: use YYYY-MM-DD or an RFC 3339 time")))?,
        ),
        None => None,
    };
    let mut options = ImportOptions::new(kind, format);
    options.columns = ColumnMap::new(args.map.clone()).map_err(|e| BadInput(e.to_string()))?;
    options.not_before = not_before;
    options.timezone = tz;
    let size = std::fs::metadata(&args.file)
        .map_err(|e| BadInput(format!("cannot read {}: {e}", args.file.display())))?
        .len();
    check_header(&args.file, &options).map_err(|e| BadInput(e.to_string()))?;
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = if args.dry_run {
        // Nothing is opened for writing: not even the store.
        let result = import_file(None, &args.file, &options, |n| bar.set_position(n)).await;
        bar.finish_and_clear();
        result?
    } else {
        let store = open_store(&settings).await?;
        let pipeline = Pipeline::start(store.clone(), Default::default());
        let result = import_file(Some(&pipeline), &args.file, &options, |n| bar.set_position(n)).await;
        bar.finish_and_clear();
        pipeline.shutdown().await;
        // A large import leaves no WAL behind (SQLite).
        if let Err(e) = store.close().await {
            tracing::warn!(error = %e, "closing the store failed; the next start checkpoints the WAL");
        }
        result?
    };
    print_summary(&args, &summary)
}

/// Prints an import's summary: the counts (and, for a dry run, how each column was
/// understood) on stdout; the file's problems and the first rejections on stderr.
fn print_summary(args: &ImportArgs, summary: &ImportSummary) -> Result<()> {
    let table = args.output == OutputFormat::Table;
    if table && args.dry_run {
        println!("dry run: nothing was written");
        let rows: Vec<Vec<String>> = summary
            .columns
            .iter()
            .map(|c| {
                vec![
                    c.column.clone(),
                    c.field.clone().unwrap_or_else(|| "-".into()),
                    c.meaning.clone(),
                ]
            })
            .collect();
        print!("{}", output::table(&["column", "read as", "meaning"], &rows));
        println!();
    }
    let accepted = if summary.dry_run {
        "would be accepted"
    } else {
        "accepted"
    };
    let mut rows = vec![
        vec!["records".to_string(), summary.records.to_string()],
        vec![accepted.to_string(), summary.accepted.to_string()],
    ];
    if !summary.dry_run {
        rows.push(vec!["duplicates".to_string(), summary.duplicates.to_string()]);
    }
    rows.push(vec!["rejected".to_string(), summary.rejected_total.to_string()]);
    output::print(
        args.output,
        &["", "count"],
        &rows,
        &serde_json::to_value(summary)?,
    );
    if table {
        for p in &summary.problems {
            eprintln!("{p}");
        }
        for r in summary.rejected.iter().take(20) {
            eprintln!("line {}: {} ({})", r.line, r.reason, r.code);
        }
        if summary.rejected_total > 20 {
            eprintln!("… and {} more", summary.rejected_total - 20);
        }
        if let Some(p) = &summary.reject_file {
            eprintln!("rejected records written to {}", p.display());
        }
    }
    Ok(())
}

async fn keys(cmd: KeysCommand, settings: Settings) -> Result<()> {
    let store = open_store(&settings).await?;
    match cmd {
        KeysCommand::Create { name, scope, format } => {
            if name.trim().is_empty() {
                return Err(BadInput("the key name must not be empty".into()).into());
            }
            let (key, secret) = store.create_write_key(name, scope.into()).await?;
            let row = vec![
                key.id.clone(),
                key.name.clone(),
                key.scope.to_string(),
                secret.clone(),
            ];
            let json = json!({"id": key.id, "name": key.name, "scope": key.scope, "secret": secret,
                              "created_at": key.created_at});
            output::print(
                format,
                &["id", "name", "scope", "secret (shown once)"],
                &[row],
                &json,
            );
        }
        KeysCommand::List { format } => {
            let keys = store.list_write_keys().await?;
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        k.name.clone(),
                        k.scope.to_string(),
                        format!("{}…", k.prefix),
                        k.created_at.to_rfc3339(),
                        k.revoked_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "active".into()),
                    ]
                })
                .collect();
            output::print(
                format,
                &["id", "name", "scope", "prefix", "created", "revoked"],
                &rows,
                &serde_json::to_value(&keys)?,
            );
        }
        KeysCommand::Revoke { id } => match store.revoke_write_key(id.clone()).await {
            Ok(()) => println!("revoked {id}"),
            Err(flywheel_store::Error::NotFound(what)) => {
                return Err(BadInput(format!("{what} not found")).into())
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

/// `flywheel token show`: the admin token the server generated and saved in the data dir.
fn token_show(settings: &Settings) -> Result<()> {
    let path = crate::private::admin_token_file(&settings.data_dir);
    let token = std::fs::read_to_string(&path).map_err(|e| {
        BadInput(format!(
            "no saved admin token at {} ({e}): it is generated on the first `flywheel serve` \
             without --admin-token / FLYWHEEL_ADMIN_TOKEN",
            path.display()
        ))
    })?;
    println!("{}", token.trim());
    Ok(())
}

async fn profile(cmd: ProfileCommand, settings: Settings) -> Result<()> {
    let ProfileCommand::Show { id, format, events } = cmd;
    let store = open_store(&settings).await?;
    let found = match store.find_profile_id(&id).await? {
        Some(pid) => store.profile(pid).await?,
        None => None,
    };
    let profile = found.ok_or_else(|| BadInput(format!("no profile has the id {id:?}")))?;
    let page = store
        .profile_events(profile.id.clone(), None, events.max(1))
        .await?;
    let orders = store.orders_of(profile.id.clone()).await?;
    let audience = serve::open_audience(&store, settings.audience.clone())
        .await?
        .profile(&profile.id.0)
        .ok();
    let json = json!({"profile": profile, "events": page.events.iter().take(events).collect::<Vec<_>>(),
        "orders": orders, "audience": audience});
    let mut rows = vec![
        vec!["id".to_string(), profile.id.0.clone()],
        vec!["user ids".to_string(), profile.user_ids.join(", ")],
        vec!["anonymous ids".to_string(), profile.anonymous_ids.join(", ")],
        vec!["first seen".to_string(), profile.first_seen.to_rfc3339()],
        vec!["last seen".to_string(), profile.last_seen.to_rfc3339()],
        vec![
            "last active".to_string(),
            profile
                .last_active
                .map_or_else(|| "-".to_string(), |t| t.to_rfc3339()),
        ],
        vec!["events".to_string(), profile.event_count.to_string()],
        vec!["orders".to_string(), orders.len().to_string()],
    ];
    if let Some(a) = &audience {
        rows.push(vec![
            "lifecycle".to_string(),
            a.lifecycle.clone().unwrap_or_default(),
        ]);
        rows.push(vec!["tags".to_string(), a.tags.join(", ")]);
        rows.push(vec!["segments".to_string(), a.segments.join(", ")]);
        if let Some(r) = &a.rfm {
            rows.push(vec![
                "rfm".to_string(),
                format!(
                    "R{} F{} M{} {}",
                    r["r"],
                    r["f"],
                    r["m"],
                    r["segment"].as_str().unwrap_or("")
                ),
            ]);
        }
        for key in ["spend", "spend(30d)", "aov"] {
            if let Some(fen) = a.traits.get(key).and_then(serde_json::Value::as_i64) {
                rows.push(vec![key.to_string(), flywheel_core::Fen(fen).to_string()]);
            }
        }
        for key in ["orders", "last_order", "last_sign_in", "age_band"] {
            if let Some(v) = a.traits.get(key).filter(|v| !v.is_null()) {
                rows.push(vec![
                    key.to_string(),
                    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
                ]);
            }
        }
    }
    for (k, v) in &profile.traits {
        rows.push(vec![
            format!("trait {k}"),
            v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
        ]);
    }
    for e in page.events.iter().take(events) {
        rows.push(vec![
            format!("event {}", e.event.timestamp.to_rfc3339()),
            e.event.display_name().to_string(),
        ]);
    }
    output::print(format, &["field", "value"], &rows, &json);
    Ok(())
}
