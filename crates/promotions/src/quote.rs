//! The answer of the pricing engine: every line's payable amount with the share of each
//! discount it carries, every rule that applied with its amount, and why each other
//! candidate did not.

use flywheel_core::Fen;
use serde::Serialize;

use crate::rules::RuleKind;

/// One rule's share of one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Share {
    /// The promotion or coupon id.
    pub rule: String,
    /// Its amount on this line.
    pub amount: Fen,
}

/// A priced line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotedLine {
    /// The cart's line id (a gift line: `gift:<promotion>`).
    pub line_id: String,
    /// Shop.
    pub shop: String,
    /// Product.
    pub product: String,
    /// Quantity.
    pub quantity: i64,
    /// Unit price before discounts.
    pub unit_price: Fen,
    /// `unit_price × quantity`.
    pub amount: Fen,
    /// Every discount on the line (their sum is `discount`).
    pub discounts: Vec<Share>,
    /// Total discount on the line.
    pub discount: Fen,
    /// `amount − discount`, never negative.
    pub payable: Fen,
    /// A gift added by a 買贈 promotion (price 0.00).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gift: bool,
}

/// A rule that applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The promotion or coupon id.
    pub id: String,
    /// Its stage.
    pub kind: RuleKind,
    /// Its name.
    pub name: String,
    /// The amount it took off (a gift promotion: 0; free shipping: the fee).
    pub amount: Fen,
}

/// A candidate that did not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotApplied {
    /// The promotion or coupon id.
    pub id: String,
    /// Its stage.
    pub kind: RuleKind,
    /// Its name.
    pub name: String,
    /// Stable reason code: `below_threshold`, `out_of_scope`, `not_started`, `expired`,
    /// `not_owner`, `group_taken`, `exclusive`, `excluded_by`, `not_first_order`,
    /// `tier_not_eligible`, `audience`, `below_quantity`, `better_item_discount`,
    /// `not_in_best_combination`, `nothing_to_discount`.
    pub reason: flywheel_core::ErrorCode,
    /// Human explanation.
    pub message: String,
}

/// A line priced below the margin floor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarginViolation {
    /// The line.
    pub line_id: String,
    /// Its payable amount.
    pub payable: Fen,
    /// The floor: cost × quantity × floor percent.
    pub floor: Fen,
}

/// The priced cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    /// Lines, cart order, then gift lines.
    pub lines: Vec<QuotedLine>,
    /// Σ line amounts before discounts.
    pub subtotal: Fen,
    /// Σ line discounts.
    pub discount: Fen,
    /// Shipping before a free-shipping coupon.
    pub shipping: Fen,
    /// Shipping taken off.
    pub shipping_discount: Fen,
    /// What the buyer pays: subtotal − discount + shipping − shipping discount.
    pub payable: Fen,
    /// Rules that applied, in stage order.
    pub applied: Vec<Applied>,
    /// Candidates that did not apply.
    pub not_applied: Vec<NotApplied>,
    /// Lines below the margin floor (when the guard is on).
    pub margin_violations: Vec<MarginViolation>,
    /// Refused by the margin guard (`action = refuse` and a violation).
    pub refused: bool,
}
