//! `flywheel loyalty …`, `flywheel flash-sale …`, `flywheel group-buy …`, `flywheel referral …`:
//! the same services the admin API serves, on the store, from the command line.

use std::sync::Arc;

use anyhow::Result;
use flywheel_core::SystemClock;
use flywheel_promotions::coupons::CouponService;
use serde::Serialize;

use crate::cli::{FlashSaleCommand, GroupBuyCommand, LoyaltyCommand, ReferralCommand};
use crate::config::Settings;
use crate::{commands, output, BadInput};

fn show<T: Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(file: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| BadInput(format!("cannot read {}: {e}", file.display())))?;
    Ok(serde_json::from_str(&text).map_err(|e| BadInput(format!("{}: {e}", file.display())))?)
}

/// Maps a domain error with a stable code to exit 2 when the caller is at fault (a 4xx
/// code), else to exit 1 (store and server failures).
fn refused(code: flywheel_core::ErrorCode, message: String) -> anyhow::Error {
    if code.status() >= 500 {
        anyhow::anyhow!(message)
    } else {
        BadInput(format!("{message} ({code})")).into()
    }
}

fn promo(e: flywheel_promotions::Error) -> anyhow::Error {
    refused(e.code(), e.to_string())
}

fn loyal(e: flywheel_loyalty::Error) -> anyhow::Error {
    refused(e.code(), e.to_string())
}

/// Runs a loyalty command.
pub async fn loyalty(cmd: LoyaltyCommand, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let l = flywheel_loyalty::Loyalty::new(store, Arc::new(SystemClock), settings.loyalty.clone())
        .map_err(loyal)?;
    match cmd {
        LoyaltyCommand::Points { user, format } => {
            let b = l.balance(&user, None, 20).await.map_err(loyal)?;
            let rows: Vec<Vec<String>> = b
                .entries
                .iter()
                .map(|e| {
                    vec![
                        e.at.to_rfc3339(),
                        format!("{:?}", e.kind).to_lowercase(),
                        e.source.to_string(),
                        e.points.to_string(),
                    ]
                })
                .collect();
            if format == crate::cli::OutputFormat::Table {
                println!("balance {}", b.balance);
            }
            output::print(
                format,
                &["at", "kind", "source", "points"],
                &rows,
                &serde_json::to_value(&b)?,
            );
        }
        LoyaltyCommand::CheckIn { user } => show(&l.check_in(&user).await.map_err(loyal)?)?,
        LoyaltyCommand::Tier { user } => show(&l.tier_of(&user, chrono::Utc::now()).await.map_err(loyal)?)?,
    }
    Ok(())
}

/// Runs a flash-sale command.
pub async fn flash_sale(cmd: FlashSaleCommand, settings: Settings) -> Result<()> {
    use flywheel_promotions::flash::{FlashSales, MemoryStock};
    let store = commands::open_store(&settings).await?;
    let sales = FlashSales::open(store, Arc::new(MemoryStock::default()), Arc::new(SystemClock))
        .await
        .map_err(promo)?;
    match cmd {
        FlashSaleCommand::Create { file } => show(&sales.create(read_json(&file)?).await.map_err(promo)?)?,
        FlashSaleCommand::List { format } => {
            let list = sales.list().await.map_err(promo)?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|(s, left)| {
                    vec![
                        s.id.clone(),
                        s.product.clone(),
                        s.price.to_string(),
                        s.stock.to_string(),
                        left.to_string(),
                    ]
                })
                .collect();
            let json: Vec<_> = list
                .iter()
                .map(|(s, left)| serde_json::json!({"sale": s, "remaining": left}))
                .collect();
            output::print(
                format,
                &["id", "product", "price", "stock", "left"],
                &rows,
                &serde_json::json!(json),
            );
        }
    }
    Ok(())
}

/// Runs a group-buy command.
pub async fn group_buy(cmd: GroupBuyCommand, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let groups = flywheel_promotions::group::GroupBuys::new(store, Arc::new(SystemClock));
    match cmd {
        GroupBuyCommand::CreateDeal { file } => {
            show(&groups.create_deal(read_json(&file)?).await.map_err(promo)?)
        }
        GroupBuyCommand::Open { deal, user } => show(&groups.open(&deal, &user).await.map_err(promo)?),
        GroupBuyCommand::Join { group, user } => show(&groups.join(&group, &user).await.map_err(promo)?),
        GroupBuyCommand::Show { group } => show(&groups.group(&group).await.map_err(promo)?),
    }
}

/// Runs a referral command.
pub async fn referral(cmd: ReferralCommand, settings: Settings) -> Result<()> {
    let store = commands::open_store(&settings).await?;
    let clock: Arc<dyn flywheel_core::Clock> = Arc::new(SystemClock);
    let refs = flywheel_promotions::referral::Referrals::new(
        store.clone(),
        clock.clone(),
        CouponService::new(store, clock),
    );
    match cmd {
        ReferralCommand::Code { user } => println!("{}", refs.invite_code(&user).await.map_err(promo)?),
        ReferralCommand::Show { invitee } => show(&refs.get(&invitee).await.map_err(promo)?)?,
        ReferralCommand::List { inviter, format } => {
            let list = refs.of_inviter(&inviter).await.map_err(promo)?;
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|r| {
                    vec![
                        r.invitee.clone(),
                        r.state.to_string(),
                        r.flags.join(","),
                        r.order_id.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::print(
                format,
                &["invitee", "state", "flags", "order"],
                &rows,
                &serde_json::to_value(&list)?,
            );
        }
    }
    Ok(())
}
