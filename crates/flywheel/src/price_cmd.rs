//! `flywheel price FILE`: the pricing engine on a cart file, nothing stored.

use std::io::Read;

use anyhow::{Context, Result};
use flywheel_promotions::PricingInput;

use crate::cli::{OutputFormat, PriceArgs};
use crate::{output, BadInput};

/// Runs `flywheel price`.
pub fn run(args: PriceArgs) -> Result<()> {
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading stdin")?;
        s
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| BadInput(format!("cannot read {}: {e}", args.file.display())))?
    };
    let mut input: PricingInput =
        serde_json::from_str(&text).map_err(|e| BadInput(format!("{}: {e}", args.file.display())))?;
    input.best_combination |= args.best;
    let quote = flywheel_promotions::quote(&input).map_err(|e| BadInput(format!("{} ({})", e, e.code())))?;
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
