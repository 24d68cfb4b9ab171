//! Checking rules and coupons once, before pricing: percents 1–100, no negative
//! amounts, ladders with steps, unique ids.

use flywheel_core::ErrorCode;
use flywheel_core::Fen;

use super::PricingInput;
use crate::rules::{CouponBenefit, PromotionKind};
use crate::{Error, Result};

fn check_percent(p: u32, id: &str) -> Result<()> {
    if (1..=100).contains(&p) {
        Ok(())
    } else {
        Err(Error::invalid(
            ErrorCode::InvalidRule,
            format!("{id}: a percent paid is 1 to 100, not {p}"),
        ))
    }
}

fn check_money(f: Fen, id: &str) -> Result<()> {
    if f.0 < 0 {
        return Err(Error::invalid(
            ErrorCode::NegativeAmount,
            format!("{id}: amounts must not be negative"),
        ));
    }
    Ok(())
}

/// Checks every rule and coupon once, before pricing.
pub(super) fn validate(input: &PricingInput) -> Result<()> {
    let mut ids = std::collections::HashSet::new();
    for p in &input.promotions {
        if !ids.insert(p.id.as_str()) {
            return Err(Error::invalid(
                ErrorCode::DuplicateRule,
                format!("rule id {:?} is used twice", p.id),
            ));
        }
        match &p.kind {
            PromotionKind::Ladder { steps } => {
                if steps.is_empty() {
                    return Err(Error::invalid(
                        ErrorCode::InvalidRule,
                        format!("{}: a ladder needs steps", p.id),
                    ));
                }
                for s in steps {
                    check_money(s.min, &p.id)?;
                    check_money(s.off, &p.id)?;
                }
            }
            PromotionKind::EveryFull { per, off, cap } => {
                if per.0 <= 0 {
                    return Err(Error::invalid(
                        ErrorCode::InvalidRule,
                        format!("{}: 每滿 needs a positive amount", p.id),
                    ));
                }
                check_money(*off, &p.id)?;
                if let Some(c) = cap {
                    check_money(*c, &p.id)?;
                }
            }
            PromotionKind::MultiBuy { steps } => {
                if steps.is_empty() || steps.iter().any(|s| s.quantity < 1) {
                    return Err(Error::invalid(
                        ErrorCode::InvalidRule,
                        format!("{}: 多件折扣 needs steps of 1 item or more", p.id),
                    ));
                }
                for s in steps {
                    check_percent(s.percent, &p.id)?;
                }
            }
            PromotionKind::BuyGift {
                buy, gift_quantity, ..
            } => {
                if *buy < 1 || *gift_quantity < 1 {
                    return Err(Error::invalid(
                        ErrorCode::InvalidRule,
                        format!("{}: 買贈 needs buy ≥ 1 and gifts ≥ 1", p.id),
                    ));
                }
            }
            PromotionKind::PriceCut { percent, price } => match (percent, price) {
                (Some(pc), None) => check_percent(*pc, &p.id)?,
                (None, Some(pr)) => check_money(*pr, &p.id)?,
                _ => {
                    return Err(Error::invalid(
                        ErrorCode::InvalidRule,
                        format!("{}: a price cut has either a percent or a price", p.id),
                    ))
                }
            },
            PromotionKind::TierDiscount { percents } => {
                for pc in percents.values() {
                    check_percent(*pc, &p.id)?;
                }
            }
            PromotionKind::FirstOrder { off } => check_money(*off, &p.id)?,
        }
    }
    for c in &input.coupons {
        if !ids.insert(c.id.as_str()) {
            return Err(Error::invalid(
                ErrorCode::DuplicateRule,
                format!("coupon id {:?} is used twice", c.id),
            ));
        }
        match &c.benefit {
            CouponBenefit::Amount { off, min_spend } => {
                check_money(*off, &c.id)?;
                if let Some(m) = min_spend {
                    check_money(*m, &c.id)?;
                }
            }
            CouponBenefit::Percent {
                percent,
                cap,
                min_spend,
            } => {
                check_percent(*percent, &c.id)?;
                for m in cap.iter().chain(min_spend) {
                    check_money(*m, &c.id)?;
                }
            }
            CouponBenefit::FreeShipping { min_spend } => {
                if let Some(m) = min_spend {
                    check_money(*m, &c.id)?;
                }
            }
        }
    }
    if let Some(p) = input.points {
        if p.points < 0 || p.points_per_yuan < 1 || p.max_percent > 100 {
            return Err(Error::invalid(
                ErrorCode::InvalidPoints,
                "points must not be negative, points_per_yuan at least 1, max_percent at most 100",
            ));
        }
    }
    Ok(())
}
