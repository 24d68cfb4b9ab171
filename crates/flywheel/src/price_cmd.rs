//! `flywheel price FILE`: the pricing engine on a cart file, nothing stored. The file is
//! read as the admin API reads `POST /api/v1/cart/price` ([`PriceRequest`]); with
//! `"wallet": true` the store is opened to add the buyer's usable coupons.

use std::io::Read;

use anyhow::{Context, Result};
use std::sync::Arc;

use flywheel_promotions::coupons::{CouponService, PriceRequest};

use crate::cli::{OutputFormat, PriceArgs};
use crate::config::Settings;
use crate::{commands, output, BadInput};

fn input(e: flywheel_promotions::Error) -> anyhow::Error {
    match e {
        flywheel_promotions::Error::Store(s) => anyhow::Error::new(s),
        other => BadInput(format!("{other} ({})", other.code())).into(),
    }
}

/// Runs `flywheel price`.
pub async fn run(args: PriceArgs, settings: Settings) -> Result<()> {
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading stdin")?;
        s
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| BadInput(format!("cannot read {}: {e}", args.file.display())))?
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| BadInput(format!("{}: {e}", args.file.display())))?;
    let mut req =
        PriceRequest::parse(value).map_err(|e| BadInput(format!("{}: {e}", args.file.display())))?;
    req.input.best_combination |= args.best;
    let quote = if req.wallet {
        let store = commands::open_store(&settings).await?;
        CouponService::new(store, Arc::new(flywheel_core::SystemClock))
            .quote_request(req)
            .await
            .map_err(input)?
    } else {
        flywheel_promotions::quote(&req.input).map_err(input)?
    };
    let json = serde_json::to_value(&quote)?;
    if args.format != OutputFormat::Table {
        let rows: Vec<Vec<String>> = quote
            .lines
            .iter()
            .map(|l| {
                vec![
                    l.line_id.clone(),
                    l.product.clone(),
                    l.quantity.to_string(),
                    l.amount.to_string(),
                    l.discount.to_string(),
                    l.payable.to_string(),
                ]
            })
            .collect();
        output::print(
            args.format,
            &["line", "product", "quantity", "amount", "discount", "payable"],
            &rows,
            &json,
        );
        return Ok(());
    }
    let mut rows: Vec<Vec<String>> = quote
        .lines
        .iter()
        .map(|l| {
            let name = if l.gift {
                format!("{} (贈品)", l.product)
            } else {
                l.product.clone()
            };
            vec![
                l.line_id.clone(),
                name,
                l.quantity.to_string(),
                l.amount.to_string(),
                l.discount.to_string(),
                l.payable.to_string(),
            ]
        })
        .collect();
    rows.push(vec![
        "".into(),
        "subtotal".into(),
        "".into(),
        quote.subtotal.to_string(),
        quote.discount.to_string(),
        (quote.subtotal - quote.discount).to_string(),
    ]);
    if quote.shipping.0 > 0 {
        rows.push(vec![
            "".into(),
            "shipping".into(),
            "".into(),
            quote.shipping.to_string(),
            quote.shipping_discount.to_string(),
            (quote.shipping - quote.shipping_discount).to_string(),
        ]);
    }
    rows.push(vec![
        "".into(),
        "payable".into(),
        "".into(),
        "".into(),
        "".into(),
        quote.payable.to_string(),
    ]);
    output::print(
        OutputFormat::Table,
        &["line", "product", "quantity", "amount", "discount", "payable"],
        &rows,
        &json,
    );
    for a in &quote.applied {
        println!("applied      {} ({:?}): −{}", a.id, a.kind, a.amount);
    }
    for n in &quote.not_applied {
        println!("not applied  {}: {} — {}", n.id, n.reason, n.message);
    }
    for v in &quote.margin_violations {
        println!(
            "margin       line {}: pays {}, floor {}",
            v.line_id, v.payable, v.floor
        );
    }
    if quote.refused {
        return Err(BadInput("refused by the margin guard (margin_floor)".into()).into());
    }
    Ok(())
}
