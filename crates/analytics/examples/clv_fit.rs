//! Fits BG/NBD and Gamma-Gamma on an RFM summary CSV and prints every customer's P(alive),
//! expected purchases, expected average profit, CLV and churn-risk band as JSON (the parity
//! harness of `tests/clv/test_clv_parity.py` against Python `lifetimes` 0.11.3).
//!
//! ```text
//! cargo run -p flywheel-analytics --example clv_fit -- summary.csv \
//!     [--horizon-days 90] [--clv-months 12] [--discount-rate 0.01] [--penalizer-coef 0] \
//!     [--churn-high 0.3] [--churn-medium 0.7]
//! ```
//!
//! The CSV has a header naming at least `id,frequency,recency,T,monetary_value` (any order,
//! extra columns ignored): `lifetimes`' summary, time in days, money in 元. Output:
//! `{"bgnbd":{"r","alpha","a","b"},"gamma_gamma":{"p","q","v"},"customers":[{"id",
//! "p_alive","expected_purchases","expected_average_profit","clv","churn_risk"}]}`, `id` as
//! the CSV's text. A bad file or flag exits with status 1 and a message on stderr.

use std::process::ExitCode;

use flywheel_analytics::clv::{ChurnThresholds, ClvConfig, ClvModel, CustomerRfm};
use serde_json::{json, Value};

struct Args {
    path: String,
    config: ClvConfig,
    penalizer_coef: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut path = None;
    let mut config = ClvConfig::default();
    let mut penalizer_coef = 0.0;
    let (mut high, mut medium) = (config.churn.high_below, config.churn.medium_below);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<f64, String> {
            let raw = it.next().ok_or_else(|| format!("{name} needs a value"))?;
            raw.parse::<f64>()
                .map_err(|_| format!("{name}: not a number: {raw:?}"))
        };
        match arg.as_str() {
            "--horizon-days" => config.horizon_days = value("--horizon-days")?,
            "--clv-months" => {
                let m = value("--clv-months")?;
                if !(m >= 0.0 && m <= f64::from(u32::MAX) && m.fract() == 0.0) {
                    return Err(format!("--clv-months must be a whole number ≥ 0, got {m}"));
                }
                config.clv_months = m as u32;
            }
            "--discount-rate" => config.monthly_discount_rate = value("--discount-rate")?,
            "--penalizer-coef" => penalizer_coef = value("--penalizer-coef")?,
            "--churn-high" => high = value("--churn-high")?,
            "--churn-medium" => medium = value("--churn-medium")?,
            "-h" | "--help" => {
                return Err("usage: clv_fit SUMMARY.csv [--horizon-days 90] [--clv-months 12] \
                            [--discount-rate 0.01] [--penalizer-coef 0] [--churn-high 0.3] [--churn-medium 0.7]"
                    .into())
            }
            other if other.starts_with("--") => return Err(format!("unknown flag {other}")),
            other => {
                if path.replace(other.to_string()).is_some() {
                    return Err("give exactly one CSV path".into());
                }
            }
        }
    }
    config.churn = ChurnThresholds::new(high, medium).map_err(|e| e.to_string())?;
    let path = path.ok_or("missing the CSV path (usage: clv_fit SUMMARY.csv [flags])")?;
    Ok(Args {
        path,
        config,
        penalizer_coef,
    })
}

/// `(ids, summaries)` from the CSV text.
fn read_summary(text: &str) -> Result<(Vec<String>, Vec<CustomerRfm>), String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("the file is empty (expected a header)")?;
    let names: Vec<&str> = header
        .split(',')
        .map(|h| h.trim().trim_start_matches('\u{feff}'))
        .collect();
    let column = |want: &str| {
        names.iter().position(|n| *n == want).ok_or_else(|| {
            format!("header {header:?} lacks column {want:?} (need id,frequency,recency,T,monetary_value)")
        })
    };
    let cols = [
        column("id")?,
        column("frequency")?,
        column("recency")?,
        column("T")?,
        column("monetary_value")?,
    ];
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    for (n, line) in lines {
        let line_no = n + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(format!(
                "line {line_no}: {} fields, the header has {}",
                fields.len(),
                names.len()
            ));
        }
        let number = |k: usize, what: &str| -> Result<f64, String> {
            let raw = fields[cols[k]];
            match raw.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(format!("line {line_no}: {what} is not a finite number: {raw:?}")),
            }
        };
        let frequency = number(1, "frequency")?;
        if !(frequency >= 0.0 && frequency.fract() == 0.0 && frequency <= f64::from(u32::MAX)) {
            return Err(format!(
                "line {line_no}: frequency must be a whole number ≥ 0, got {frequency}"
            ));
        }
        ids.push(fields[cols[0]].to_string());
        rows.push(CustomerRfm {
            frequency: frequency as u32,
            recency: number(2, "recency")?,
            age: number(3, "T")?,
            monetary: number(4, "monetary_value")?,
        });
    }
    if rows.is_empty() {
        return Err("no customer rows after the header".into());
    }
    Ok((ids, rows))
}

fn run() -> Result<Value, String> {
    let args = parse_args()?;
    let text = std::fs::read_to_string(&args.path).map_err(|e| format!("cannot read {}: {e}", args.path))?;
    let (ids, rows) = read_summary(&text).map_err(|e| format!("{}: {e}", args.path))?;
    let at_line = |e: flywheel_analytics::clv::ClvError| match e {
        flywheel_analytics::clv::ClvError::InvalidInput { index, reason } => {
            format!(
                "{}: customer {:?} (data row {}): {reason}",
                args.path,
                ids[index.min(ids.len() - 1)],
                index + 1
            )
        }
        other => other.to_string(),
    };
    let model = ClvModel::fit(&rows, args.penalizer_coef).map_err(at_line)?;
    let scores = model.score_all(&rows, &args.config).map_err(at_line)?;
    let customers: Vec<Value> = ids
        .iter()
        .zip(&scores)
        .map(|(id, s)| {
            json!({
                "id": id,
                "p_alive": s.p_alive,
                "expected_purchases": s.expected_purchases,
                "expected_average_profit": s.expected_average_profit,
                "clv": s.clv,
                "churn_risk": s.churn_risk.as_str(),
            })
        })
        .collect();
    let (bg, gg) = (model.bgnbd, model.gamma_gamma);
    Ok(json!({
        "bgnbd": {"r": bg.r, "alpha": bg.alpha, "a": bg.a, "b": bg.b},
        "gamma_gamma": {"p": gg.p, "q": gg.q, "v": gg.v},
        "customers": customers,
    }))
}

fn main() -> ExitCode {
    match run() {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("clv_fit: error: {message}");
            ExitCode::FAILURE
        }
    }
}
