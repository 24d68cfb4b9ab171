//! The pricing engine: applies promotions and coupons to a cart in a fixed order of
//! stages (docs/pricing.md), each on what the previous stages left:
//!
//! 1. unit-price changes: 限時折扣 / 老用戶專享價 (`price_cut`), 會員價 (`tier_discount`),
//!    多件折扣 (`multi_buy`) — per line the best one, or stacked by policy;
//! 2. 買贈 gifts (lines at 0.00);
//! 3. 店鋪滿減 (ladders and 每滿 over one shop, category or products);
//! 4. 跨店滿減 (over the whole cart; threshold measured before shop 滿減 by default);
//! 5. coupons: shop coupons, then category/product coupons, then platform coupons;
//! 6. 首購立減.
//!
//! Every order-level discount is apportioned to the lines it covers
//! ([`crate::apportion`]); a line never goes below 0, so the payable total is never
//! negative and never above the undiscounted total. Percent discounts round the
//! discount down to the fen (the buyer never gets more than the rate says).

use flywheel_core::{Fen, Timestamp};
use serde::{Deserialize, Serialize};

mod stages;
mod validate;

use crate::apportion::apportion;
use crate::cart::{Buyer, Cart, CartLine};
use crate::quote::{Applied, MarginViolation, NotApplied, Quote, QuotedLine, Share};
use crate::rules::{
    Coupon, CrossShopBase, MarginAction, PointsUse, Promotion, RuleKind, Scope, StackingPolicy,
};
use crate::Result;

/// Everything a price depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingInput {
    /// The cart.
    pub cart: Cart,
    /// The buyer.
    #[serde(default)]
    pub buyer: Buyer,
    /// Active promotions.
    #[serde(default)]
    pub promotions: Vec<Promotion>,
    /// Coupons to use (all of them; or the best combination, see [`crate::best`]).
    #[serde(default)]
    pub coupons: Vec<Coupon>,
    /// Stacking rules and the margin guard.
    #[serde(default)]
    pub policy: StackingPolicy,
    /// The instant of pricing (time windows, coupon validity); default now.
    #[serde(default)]
    pub now: Option<Timestamp>,
    /// Use the combination of `coupons` that pays least instead of all of them.
    #[serde(default)]
    pub best_combination: bool,
    /// Points paying part of the order (積分抵現), applied last.
    #[serde(default)]
    pub points: Option<PointsUse>,
}

/// Prices `input`: with the best combination of its coupons when it asks for it
/// ([`crate::best::best_combination`]), else with all of them ([`price`]).
pub fn quote(input: &PricingInput) -> Result<Quote> {
    if input.best_combination {
        crate::best::best_combination(input)
    } else {
        price(input)
    }
}

/// A line while being priced.
struct Line {
    line: CartLine,
    shares: Vec<Share>,
    gift: bool,
}

impl Line {
    fn current(&self) -> i64 {
        self.line.amount() - self.shares.iter().map(|s| s.amount.0).sum::<i64>()
    }
}

struct Work<'a> {
    lines: Vec<Line>,
    policy: &'a StackingPolicy,
    applied: Vec<Applied>,
    not_applied: Vec<NotApplied>,
    shipping_discount: i64,
}

fn in_scope(line: &CartLine, scope: &Scope, exclude: &[String]) -> bool {
    if exclude.contains(&line.product) {
        return false;
    }
    match scope {
        Scope::All => true,
        Scope::Shop { shop } => line.shop == *shop,
        Scope::Categories { categories } => line.category.as_ref().is_some_and(|c| categories.contains(c)),
        Scope::Products { products } => products.contains(&line.product),
    }
}

/// `amount × (100 − percent) / 100`, rounded down: the discount of paying `percent`.
fn percent_off(amount: i64, percent: u32) -> i64 {
    (i128::from(amount) * i128::from(100 - percent.min(100)) / 100) as i64
}

fn yuan(fen: i64) -> String {
    Fen(fen).to_string()
}

impl Work<'_> {
    fn refuse(
        &mut self,
        id: &str,
        kind: RuleKind,
        name: &str,
        reason: flywheel_core::ErrorCode,
        message: String,
    ) {
        self.not_applied.push(NotApplied {
            id: id.to_owned(),
            kind,
            name: name.to_owned(),
            reason,
            message,
        });
    }

    /// The applied rule of a kind `kind` excludes, if any.
    fn excluded_by(&self, kind: RuleKind) -> Option<String> {
        self.applied
            .iter()
            .find(|a| self.policy.excludes(a.kind, kind))
            .map(|a| a.id.clone())
    }

    fn scope_lines(&self, scope: &Scope, exclude: &[String]) -> Vec<usize> {
        (0..self.lines.len())
            .filter(|&i| !self.lines[i].gift && in_scope(&self.lines[i].line, scope, exclude))
            .collect()
    }

    /// Takes `off` from `lines`, apportioned by their current amounts; returns the amount taken.
    fn take(&mut self, id: &str, lines: &[usize], off: i64) -> i64 {
        let amounts: Vec<i64> = lines.iter().map(|&i| self.lines[i].current()).collect();
        let shares = apportion(off, &amounts);
        let mut taken = 0;
        for (&i, s) in lines.iter().zip(shares) {
            if s > 0 {
                self.lines[i].shares.push(Share {
                    rule: id.to_owned(),
                    amount: Fen(s),
                });
                taken += s;
            }
        }
        taken
    }

    fn record(&mut self, id: &str, kind: RuleKind, name: &str, amount: i64) {
        self.applied.push(Applied {
            id: id.to_owned(),
            kind,
            name: name.to_owned(),
            amount: Fen(amount),
        });
    }
}

/// Prices the cart with every promotion and every coupon of `input` (see the module doc).
pub fn price(input: &PricingInput) -> Result<Quote> {
    validate::validate(input)?;
    let cart = input.cart.clone().check()?;
    let now = input.now.unwrap_or_else(chrono::Utc::now);
    let mut w = Work {
        lines: cart
            .lines
            .into_iter()
            .map(|line| Line {
                line,
                shares: Vec::new(),
                gift: false,
            })
            .collect(),
        policy: &input.policy,
        applied: Vec::new(),
        not_applied: Vec::new(),
        shipping_discount: 0,
    };
    let active: Vec<&Promotion> = input
        .promotions
        .iter()
        .filter(|p| stages::eligible(&mut w, p, &input.buyer, now))
        .collect();
    stages::item_stage(&mut w, &active, &input.buyer);
    stages::gift_stage(&mut w, &active);
    let after_items: Vec<i64> = w.lines.iter().map(Line::current).collect();
    stages::reduction_stage(&mut w, &active, RuleKind::ShopFullReduction, None);
    let base = match input.policy.cross_shop_base {
        CrossShopBase::BeforeShopReductions => Some(after_items.as_slice()),
        CrossShopBase::AfterShopReductions => None,
    };
    stages::reduction_stage(&mut w, &active, RuleKind::CrossShopFullReduction, base);
    stages::coupon_stage(&mut w, &input.coupons, &input.buyer, cart.shipping.0, now);
    stages::first_order_stage(&mut w, &active, &input.buyer);
    if let Some(p) = input.points {
        stages::points_stage(&mut w, p);
    }
    Ok(finish(w, cart.shipping.0))
}

fn finish(w: Work<'_>, shipping: i64) -> Quote {
    let policy = w.policy;
    let mut violations = Vec::new();
    let lines: Vec<QuotedLine> = w
        .lines
        .into_iter()
        .map(|l| {
            let discount: i64 = l.shares.iter().map(|s| s.amount.0).sum();
            let amount = l.line.amount();
            let payable = amount - discount;
            if let (Some(floor), Some(cost), false) = (policy.margin_floor, l.line.unit_cost, l.gift) {
                let need = i128::from(cost.0) * i128::from(l.line.quantity) * i128::from(floor.cost_percent);
                if i128::from(payable) * 100 < need {
                    violations.push(MarginViolation {
                        line_id: l.line.id().to_owned(),
                        payable: Fen(payable),
                        floor: Fen(((need + 99) / 100) as i64),
                    });
                }
            }
            QuotedLine {
                line_id: l.line.id().to_owned(),
                shop: l.line.shop,
                product: l.line.product,
                quantity: l.line.quantity,
                unit_price: l.line.unit_price,
                amount: Fen(amount),
                discounts: l.shares,
                discount: Fen(discount),
                payable: Fen(payable),
                gift: l.gift,
            }
        })
        .collect();
    let subtotal: i64 = lines.iter().map(|l| l.amount.0).sum();
    let discount: i64 = lines.iter().map(|l| l.discount.0).sum();
    let refused = !violations.is_empty()
        && policy
            .margin_floor
            .is_some_and(|f| f.action == MarginAction::Refuse);
    Quote {
        lines,
        subtotal: Fen(subtotal),
        discount: Fen(discount),
        shipping: Fen(shipping),
        shipping_discount: Fen(w.shipping_discount),
        payable: Fen(subtotal - discount + shipping - w.shipping_discount),
        applied: w.applied,
        not_applied: w.not_applied,
        margin_violations: violations,
        refused,
    }
}
