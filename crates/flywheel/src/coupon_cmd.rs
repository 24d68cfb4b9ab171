//! `flywheel coupon …`: coupon templates, issuing, codes and a user's coupons, on the store.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result};
use flywheel_core::SystemClock;
use flywheel_promotions::coupons::{CouponService, CouponTemplate};

use crate::audience_on_demand::AudienceOnDemand;
use crate::cli::CouponCommand;
use crate::config::Settings;
use crate::{commands, output, BadInput};

/// Who the CLI acts as in coupon audit trails.
const CLI_ACTOR: &str = "cli";

fn input(e: flywheel_promotions::Error) -> anyhow::Error {
    match e {
        flywheel_promotions::Error::Store(s) => anyhow::Error::new(s),
        other => BadInput(format!("{other} ({})", other.code())).into(),
    }
}

/// Runs a coupon command.
pub async fn run(cmd: CouponCommand, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let svc = CouponService::new(store.clone(), Arc::new(SystemClock));
    match cmd {
        CouponCommand::CreateTemplate { file } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).context("reading stdin")?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| BadInput(format!("cannot read {}: {e}", file.display())))?
            };
            let t: CouponTemplate =
                serde_json::from_str(&text).map_err(|e| BadInput(format!("{}: {e}", file.display())))?;
            let t = svc.create_template(t).await.map_err(input)?;
            println!("created template {:?}", t.id);
        }
        CouponCommand::Templates { format } => {
            let list = svc.templates().await.map_err(input)?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|(t, issued)| {
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        issued.to_string(),
                        t.total_quantity.map_or_else(|| "∞".into(), |n| n.to_string()),
                    ]
                })
                .collect();
            let json: Vec<_> = list
                .iter()
                .map(|(t, n)| serde_json::json!({"template": t, "issued": n}))
                .collect();
            output::print(
                format,
                &["id", "name", "issued", "total"],
                &rows,
                &serde_json::json!(json),
            );
        }
        CouponCommand::Issue { template, user } => {
            let gate = AudienceOnDemand::new(store, settings.audience.clone());
            let c = svc
                .issue_to_member(&gate, &template, &user, CLI_ACTOR)
                .await
                .map_err(input)?;
            println!("{}", serde_json::to_string_pretty(&c)?);
        }
        CouponCommand::Claim { code, user } => {
            let gate = AudienceOnDemand::new(store, settings.audience.clone());
            let c = svc.claim_as_member(&gate, &code, &user).await.map_err(input)?;
            println!("{}", serde_json::to_string_pretty(&c)?);
        }
        CouponCommand::Codes { template, count } => {
            for code in svc
                .generate_codes(&template, count, CLI_ACTOR)
                .await
                .map_err(input)?
            {
                println!("{code}");
            }
        }
        CouponCommand::List { user, format } => {
            let list = svc.coupons_of(&user).await.map_err(input)?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|c| {
                    vec![
                        c.id.clone(),
                        c.template_id.clone(),
                        format!("{:?}", c.state).to_lowercase(),
                        c.order_id.clone().unwrap_or_default(),
                        c.coupon.valid_until.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    ]
                })
                .collect();
            output::print(
                format,
                &["id", "template", "state", "order", "valid until"],
                &rows,
                &serde_json::to_value(&list)?,
            );
        }
        CouponCommand::Audit { id, format } => {
            let trail = svc.audit(&id).await.map_err(input)?;
            let rows: Vec<Vec<String>> = trail
                .iter()
                .map(|e| {
                    vec![
                        e.at.clone(),
                        e.action.to_string(),
                        e.actor.clone().unwrap_or_default(),
                        e.order_id.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::print(
                format,
                &["at", "action", "actor", "order"],
                &rows,
                &serde_json::to_value(&trail)?,
            );
        }
    }
    Ok(())
}
