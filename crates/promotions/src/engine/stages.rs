//! The stages of pricing, in the order [`super::price`] runs them.

use flywheel_core::ErrorCode;
use flywheel_core::{Fen, Timestamp};

use super::{percent_off, yuan, Line, Work};
use crate::cart::{Buyer, CartLine};
use crate::quote::Share;
use crate::rules::{Coupon, CouponBenefit, ItemDiscounts, PointsUse, Promotion, PromotionKind, RuleKind};

/// Whether a promotion is live for this buyer now; records why not.
pub(super) fn eligible(w: &mut Work<'_>, p: &Promotion, buyer: &Buyer, now: Timestamp) -> bool {
    let kind = p.rule_kind();
    if p.starts_at.is_some_and(|s| now < s) {
        w.refuse(
            &p.id,
            kind,
            &p.name,
            ErrorCode::NotStarted,
            format!(
                "starts at {}",
                p.starts_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            ),
        );
        return false;
    }
    if p.ends_at.is_some_and(|e| now >= e) {
        w.refuse(
            &p.id,
            kind,
            &p.name,
            ErrorCode::Expired,
            format!(
                "ended at {}",
                p.ends_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            ),
        );
        return false;
    }
    if let Some(tag) = &p.audience_tag {
        if !buyer.tags.contains(tag) {
            w.refuse(
                &p.id,
                kind,
                &p.name,
                ErrorCode::Audience,
                format!("only for buyers tagged {tag:?}"),
            );
            return false;
        }
    }
    true
}

/// Stage 1: unit-price changes.
pub(super) fn item_stage(w: &mut Work<'_>, active: &[&Promotion], buyer: &Buyer) {
    // Per promotion, the discount it would give each line (on the price before this stage
    // when the best one wins, on what is left when they stack).
    let mut offers: Vec<(&Promotion, Vec<(usize, i64)>)> = Vec::new();
    for p in active.iter().filter(|p| p.rule_kind() == RuleKind::ItemDiscount) {
        let lines = w.scope_lines(&p.scope, &p.exclude_products);
        if lines.is_empty() {
            w.refuse(
                &p.id,
                RuleKind::ItemDiscount,
                &p.name,
                ErrorCode::OutOfScope,
                "no line of the cart is covered".into(),
            );
            continue;
        }
        let base = |w: &Work<'_>, i: usize| match w.policy.item_discounts {
            ItemDiscounts::Best => w.lines[i].line.amount(),
            ItemDiscounts::Stack => w.lines[i].current(),
        };
        let per_line: Vec<(usize, i64)> = match &p.kind {
            PromotionKind::PriceCut {
                percent: Some(pc), ..
            } => lines.iter().map(|&i| (i, percent_off(base(w, i), *pc))).collect(),
            PromotionKind::PriceCut { price: Some(to), .. } => lines
                .iter()
                .map(|&i| {
                    let l = &w.lines[i].line;
                    (i, ((l.unit_price.0 - to.0).max(0) * l.quantity).min(base(w, i)))
                })
                .collect(),
            PromotionKind::TierDiscount { percents } => {
                let Some(pc) = buyer.tier.as_ref().and_then(|t| percents.get(t)) else {
                    let tier = buyer.tier.clone().unwrap_or_else(|| "none".into());
                    w.refuse(
                        &p.id,
                        RuleKind::ItemDiscount,
                        &p.name,
                        ErrorCode::TierNotEligible,
                        format!("tier {tier} has no member price"),
                    );
                    continue;
                };
                lines.iter().map(|&i| (i, percent_off(base(w, i), *pc))).collect()
            }
            PromotionKind::MultiBuy { steps } => {
                let items: i64 = lines.iter().map(|&i| w.lines[i].line.quantity).sum();
                let Some(step) = steps
                    .iter()
                    .filter(|s| s.quantity <= items)
                    .max_by_key(|s| s.quantity)
                else {
                    let need = steps.iter().map(|s| s.quantity).min().unwrap_or(1);
                    w.refuse(
                        &p.id,
                        RuleKind::ItemDiscount,
                        &p.name,
                        ErrorCode::BelowQuantity,
                        format!("{items} items in scope; {need} needed"),
                    );
                    continue;
                };
                lines
                    .iter()
                    .map(|&i| (i, percent_off(base(w, i), step.percent)))
                    .collect()
            }
            _ => continue,
        };
        match w.policy.item_discounts {
            ItemDiscounts::Stack => {
                let mut total = 0;
                for (i, off) in per_line.into_iter().filter(|(_, off)| *off > 0) {
                    w.lines[i].shares.push(Share {
                        rule: p.id.clone(),
                        amount: Fen(off),
                    });
                    total += off;
                }
                if total > 0 {
                    w.record(&p.id, RuleKind::ItemDiscount, &p.name, total);
                } else {
                    w.refuse(
                        &p.id,
                        RuleKind::ItemDiscount,
                        &p.name,
                        ErrorCode::NothingToDiscount,
                        "the price is already lower".into(),
                    );
                }
            }
            ItemDiscounts::Best => offers.push((p, per_line)),
        }
    }
    // Best per line: the largest discount wins; ties go to the earlier promotion.
    let mut winner: Vec<Option<(usize, i64)>> = vec![None; w.lines.len()];
    for (k, (_, per_line)) in offers.iter().enumerate() {
        for &(i, off) in per_line {
            if off > 0 && winner[i].is_none_or(|(_, best)| off > best) {
                winner[i] = Some((k, off));
            }
        }
    }
    for (k, (p, _)) in offers.iter().enumerate() {
        let mut total = 0;
        for (i, win) in winner.iter().enumerate() {
            if let Some((wk, off)) = win {
                if *wk == k {
                    w.lines[i].shares.push(Share {
                        rule: p.id.clone(),
                        amount: Fen(*off),
                    });
                    total += off;
                }
            }
        }
        if total > 0 {
            w.record(&p.id, RuleKind::ItemDiscount, &p.name, total);
        } else {
            w.refuse(
                &p.id,
                RuleKind::ItemDiscount,
                &p.name,
                ErrorCode::BetterItemDiscount,
                "another price change gives these lines a lower price".into(),
            );
        }
    }
}

/// Stage 2: 買贈 gift lines.
pub(super) fn gift_stage(w: &mut Work<'_>, active: &[&Promotion]) {
    for p in active.iter().filter(|p| p.rule_kind() == RuleKind::Gift) {
        let PromotionKind::BuyGift {
            buy,
            gift_product,
            gift_name,
            gift_quantity,
            max_gifts,
        } = &p.kind
        else {
            continue;
        };
        if let Some(by) = w.excluded_by(RuleKind::Gift) {
            w.refuse(
                &p.id,
                RuleKind::Gift,
                &p.name,
                ErrorCode::ExcludedBy,
                format!("does not combine with {by}"),
            );
            continue;
        }
        let lines = w.scope_lines(&p.scope, &p.exclude_products);
        let items: i64 = lines.iter().map(|&i| w.lines[i].line.quantity).sum();
        let mut gifts = items / buy * gift_quantity;
        if let Some(m) = max_gifts {
            gifts = gifts.min(*m);
        }
        if gifts <= 0 {
            let reason = if lines.is_empty() {
                ErrorCode::OutOfScope
            } else {
                ErrorCode::BelowQuantity
            };
            w.refuse(
                &p.id,
                RuleKind::Gift,
                &p.name,
                reason,
                format!("{items} items in scope; {buy} needed per gift"),
            );
            continue;
        }
        let shop = lines
            .first()
            .map(|&i| w.lines[i].line.shop.clone())
            .unwrap_or_default();
        w.lines.push(Line {
            line: CartLine {
                line_id: Some(format!("gift:{}", p.id)),
                shop,
                product: gift_product.clone(),
                category: gift_name.clone(),
                unit_price: Fen(0),
                unit_cost: None,
                quantity: gifts,
            },
            shares: Vec::new(),
            gift: true,
        });
        w.record(&p.id, RuleKind::Gift, &p.name, 0);
    }
}

/// Stages 3 and 4: 滿減 ladders and 每滿 of one kind; `base` overrides what the
/// threshold is measured on (per line).
pub(super) fn reduction_stage(w: &mut Work<'_>, active: &[&Promotion], kind: RuleKind, base: Option<&[i64]>) {
    for p in active.iter().filter(|p| p.rule_kind() == kind) {
        if let Some(by) = w.excluded_by(kind) {
            w.refuse(
                &p.id,
                kind,
                &p.name,
                ErrorCode::ExcludedBy,
                format!("does not combine with {by}"),
            );
            continue;
        }
        let lines = w.scope_lines(&p.scope, &p.exclude_products);
        if lines.is_empty() {
            w.refuse(
                &p.id,
                kind,
                &p.name,
                ErrorCode::OutOfScope,
                "no line of the cart is covered".into(),
            );
            continue;
        }
        let current: i64 = lines.iter().map(|&i| w.lines[i].current()).sum();
        let measured: i64 = match base {
            Some(b) => lines.iter().map(|&i| b[i]).sum(),
            None => current,
        };
        let (off, short) = match &p.kind {
            PromotionKind::Ladder { steps } => {
                let best = steps
                    .iter()
                    .filter(|s| s.min.0 <= measured)
                    .max_by_key(|s| (s.min.0, s.off.0));
                let lowest = steps.iter().map(|s| s.min.0).min().unwrap_or(0);
                (best.map_or(0, |s| s.off.0), lowest - measured)
            }
            PromotionKind::EveryFull { per, off, cap } => {
                let total = measured / per.0 * off.0;
                (cap.map_or(total, |c| total.min(c.0)), per.0 - measured)
            }
            _ => continue,
        };
        if off <= 0 {
            w.refuse(
                &p.id,
                kind,
                &p.name,
                ErrorCode::BelowThreshold,
                format!("{} more needed", yuan(short.max(0))),
            );
            continue;
        }
        let taken = w.take(&p.id, &lines, off.min(current));
        if taken <= 0 {
            w.refuse(
                &p.id,
                kind,
                &p.name,
                ErrorCode::NothingToDiscount,
                "nothing left to take off".into(),
            );
            continue;
        }
        w.record(&p.id, kind, &p.name, taken);
    }
}

/// Stage 5: coupons, shop coupons first, then category, then platform ones.
pub(super) fn coupon_stage(
    w: &mut Work<'_>,
    coupons: &[Coupon],
    buyer: &Buyer,
    shipping: i64,
    now: Timestamp,
) {
    let mut ordered: Vec<&Coupon> = coupons.iter().collect();
    ordered.sort_by_key(|c| c.rule_kind());
    let mut groups: Vec<String> = Vec::new();
    let mut exclusive_used = false;
    for c in ordered {
        let kind = c.rule_kind();
        let refuse =
            |w: &mut Work<'_>, reason, message: String| w.refuse(&c.id, kind, &c.name, reason, message);
        if c.owner.is_some() && c.owner != buyer.user_id {
            refuse(
                w,
                ErrorCode::NotOwner,
                "this coupon belongs to another user".into(),
            );
            continue;
        }
        if c.valid_from.is_some_and(|t| now < t) {
            refuse(w, ErrorCode::NotStarted, "not usable yet".into());
            continue;
        }
        if c.valid_until.is_some_and(|t| now >= t) {
            refuse(w, ErrorCode::Expired, "the coupon has expired".into());
            continue;
        }
        if exclusive_used || (c.exclusive && !groups.is_empty()) {
            refuse(
                w,
                ErrorCode::Exclusive,
                "an exclusive coupon combines with no other coupon".into(),
            );
            continue;
        }
        let group = c.group();
        if groups.contains(&group) {
            refuse(
                w,
                ErrorCode::GroupTaken,
                format!("another coupon of group {group:?} is used"),
            );
            continue;
        }
        if let Some(by) = w.excluded_by(kind) {
            refuse(w, ErrorCode::ExcludedBy, format!("does not combine with {by}"));
            continue;
        }
        let lines = w.scope_lines(&c.scope, &c.exclude_products);
        if lines.is_empty() {
            refuse(w, ErrorCode::OutOfScope, "no line of the cart is covered".into());
            continue;
        }
        let base: i64 = lines.iter().map(|&i| w.lines[i].current()).sum();
        let min_spend = match &c.benefit {
            CouponBenefit::Amount { min_spend, .. }
            | CouponBenefit::Percent { min_spend, .. }
            | CouponBenefit::FreeShipping { min_spend } => min_spend.map_or(0, |m| m.0),
        };
        if base < min_spend {
            refuse(
                w,
                ErrorCode::BelowThreshold,
                format!("{} more needed in scope", yuan(min_spend - base)),
            );
            continue;
        }
        let taken = match &c.benefit {
            CouponBenefit::Amount { off, .. } => w.take(&c.id, &lines, off.0.min(base)),
            CouponBenefit::Percent { percent, cap, .. } => {
                let off = percent_off(base, *percent);
                w.take(&c.id, &lines, cap.map_or(off, |m| off.min(m.0)))
            }
            CouponBenefit::FreeShipping { .. } => {
                let off = shipping - w.shipping_discount;
                w.shipping_discount += off;
                off
            }
        };
        if taken <= 0 {
            refuse(w, ErrorCode::NothingToDiscount, "nothing left to take off".into());
            continue;
        }
        groups.push(group);
        exclusive_used |= c.exclusive;
        w.record(&c.id, kind, &c.name, taken);
    }
}

/// Stage 6: 首購立減.
pub(super) fn first_order_stage(w: &mut Work<'_>, active: &[&Promotion], buyer: &Buyer) {
    for p in active.iter().filter(|p| p.rule_kind() == RuleKind::FirstOrder) {
        let PromotionKind::FirstOrder { off } = &p.kind else {
            continue;
        };
        if !buyer.first_order {
            w.refuse(
                &p.id,
                RuleKind::FirstOrder,
                &p.name,
                ErrorCode::NotFirstOrder,
                "only the first paid order qualifies".into(),
            );
            continue;
        }
        if let Some(by) = w.excluded_by(RuleKind::FirstOrder) {
            w.refuse(
                &p.id,
                RuleKind::FirstOrder,
                &p.name,
                ErrorCode::ExcludedBy,
                format!("does not combine with {by}"),
            );
            continue;
        }
        let lines = w.scope_lines(&p.scope, &p.exclude_products);
        let base: i64 = lines.iter().map(|&i| w.lines[i].current()).sum();
        if base <= 0 {
            w.refuse(
                &p.id,
                RuleKind::FirstOrder,
                &p.name,
                ErrorCode::NothingToDiscount,
                "nothing left to take off".into(),
            );
            continue;
        }
        let taken = w.take(&p.id, &lines, off.0.min(base));
        if taken <= 0 {
            w.refuse(
                &p.id,
                RuleKind::FirstOrder,
                &p.name,
                ErrorCode::NothingToDiscount,
                "nothing to take off".into(),
            );
            continue;
        }
        w.record(&p.id, RuleKind::FirstOrder, &p.name, taken);
    }
}

/// Stage 7: 積分抵現 — whole fen of `points / points_per_yuan × 100`, at most
/// `max_percent` of what is left to pay, apportioned like any order-level discount;
/// the points actually used are `⌈fen × points_per_yuan / 100⌉`.
pub(super) fn points_stage(w: &mut Work<'_>, p: PointsUse) {
    const ID: &str = "points";
    if p.points <= 0 || p.points_per_yuan <= 0 {
        return;
    }
    if let Some(by) = w.excluded_by(RuleKind::Points) {
        w.refuse(
            ID,
            RuleKind::Points,
            "積分抵現",
            ErrorCode::ExcludedBy,
            format!("does not combine with {by}"),
        );
        return;
    }
    let lines = w.scope_lines(&crate::rules::Scope::All, &[]);
    let left: i64 = lines.iter().map(|&i| w.lines[i].current()).sum();
    let worth = (i128::from(p.points) * 100 / i128::from(p.points_per_yuan)) as i64;
    let cap = (i128::from(left) * i128::from(p.max_percent.min(100)) / 100) as i64;
    let off = worth.min(cap);
    if off <= 0 {
        w.refuse(
            ID,
            RuleKind::Points,
            "積分抵現",
            ErrorCode::NothingToDiscount,
            "nothing left that points may pay".into(),
        );
        return;
    }
    let taken = w.take(ID, &lines, off);
    let used = (i128::from(taken) * i128::from(p.points_per_yuan) + 99) / 100;
    w.record(ID, RuleKind::Points, &format!("積分抵現（{used} 積分）"), taken);
}
