//! The `flywheel` binary: command-line parsing and wiring only; every rule lives in
//! the library crates. Exit codes: 0 success, 2 bad input, 1 any other failure.

mod audience_cmd;
mod audience_on_demand;
mod cli;
mod commands;
mod config;
mod coupon_cmd;
mod dead_letter_cmd;
mod demo;
mod demo_data;
mod demo_marketing;
mod funnel_cmd;
mod growth_cmd;
mod journey_cmd;
mod log_fields;
mod memory;
mod output;
mod price_cmd;
mod private;
mod report_cmd;
mod review;
mod running;
mod serve;
mod shared_limits;
mod tables;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, LogFormat};

/// An error caused by the user's input (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Logs to stderr; user values in log lines have their control characters escaped
/// ([`log_fields`]).
fn init_logging(filter: &str, format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = matches!(format, LogFormat::Json);
    log_fields::subscriber(filter, json, std::io::stderr().is_terminal(), std::io::stderr).init();
}

fn main() -> ExitCode {
    // A render sandbox child (see flywheel_channels::sandbox): no CLI, no config, no logs.
    if std::env::args_os().nth(1).as_deref() == Some(flywheel_channels::sandbox::WORKER_ARG.as_ref()) {
        return match flywheel_channels::sandbox::run_worker() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(1),
        };
    }
    // Before anything is created: the data directory holds secrets.
    private::restrict_umask();
    let cli = Cli::parse();
    let file = match config::FileConfig::load(cli.global.config.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let settings = match config::settings(&cli.global, &file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings.log, settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(commands::run(cli.command, settings, file));
    // Blocking work still running (a provider call, a store write) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
