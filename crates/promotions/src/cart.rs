//! What is being priced: a cart of lines from one or more shops, and who is buying.
//!
//! Built from JSON at the edge and checked once ([`Cart::check`]): prices and costs are
//! whole fen and not negative, quantities are at least 1, line ids are unique.

use flywheel_core::ErrorCode;
use flywheel_core::Fen;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One line of a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartLine {
    /// Unique within the cart (default: the line's position).
    #[serde(default)]
    pub line_id: Option<String>,
    /// The shop selling it (店鋪).
    pub shop: String,
    /// Product id.
    pub product: String,
    /// Category (品類), for category scopes.
    #[serde(default)]
    pub category: Option<String>,
    /// Unit price before any discount, in fen.
    pub unit_price: Fen,
    /// Unit cost, in fen, for the margin guard.
    #[serde(default)]
    pub unit_cost: Option<Fen>,
    /// Quantity, at least 1.
    pub quantity: i64,
}

/// A cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cart {
    /// The lines.
    pub lines: Vec<CartLine>,
    /// Shipping fee, in fen (a free-shipping coupon takes it off).
    #[serde(default)]
    pub shipping: Fen,
}

/// Who is buying, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Buyer {
    /// The user id (coupons belong to a user).
    #[serde(default)]
    pub user_id: Option<String>,
    /// Member tier (青銅 / 白銀 / 黃金 / 鉑金), for member prices.
    #[serde(default)]
    pub tier: Option<String>,
    /// Whether this would be the user's first paid order (首購立減).
    #[serde(default)]
    pub first_order: bool,
    /// Tags the user carries (promotions may be limited to a tag, e.g. 老用戶).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The longest cart priced, in lines.
pub const MAX_LINES: usize = 500;

impl Cart {
    /// Checks the cart and fills in missing line ids (`"1"`, `"2"`, … by position).
    pub fn check(mut self) -> Result<Cart> {
        if self.lines.is_empty() {
            return Err(Error::invalid(ErrorCode::EmptyCart, "the cart has no lines"));
        }
        if self.lines.len() > MAX_LINES {
            return Err(Error::invalid(
                ErrorCode::CartTooLarge,
                format!("a cart has at most {MAX_LINES} lines"),
            ));
        }
        if self.shipping.0 < 0 {
            return Err(Error::invalid(
                ErrorCode::NegativeAmount,
                "shipping must not be negative",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, l) in self.lines.iter_mut().enumerate() {
            let id = l.line_id.get_or_insert_with(|| (i + 1).to_string()).clone();
            let at = format!("line {id}");
            if !seen.insert(id.clone()) {
                return Err(Error::invalid(
                    ErrorCode::DuplicateLine,
                    format!("{at}: line ids must be unique"),
                ));
            }
            if l.unit_price.0 < 0 || l.unit_cost.is_some_and(|c| c.0 < 0) {
                return Err(Error::invalid(
                    ErrorCode::NegativeAmount,
                    format!("{at}: prices and costs must not be negative"),
                ));
            }
            if !(1..=100_000).contains(&l.quantity) {
                return Err(Error::invalid(
                    ErrorCode::InvalidQuantity,
                    format!("{at}: quantity must be 1 to 100000"),
                ));
            }
            if l.unit_price
                .0
                .checked_mul(l.quantity)
                .is_none_or(|a| a > 1_000_000_000_000)
            {
                return Err(Error::invalid(
                    ErrorCode::AmountTooLarge,
                    format!("{at}: the line amount is too large"),
                ));
            }
            if l.shop.trim().is_empty() || l.product.trim().is_empty() {
                return Err(Error::invalid(
                    ErrorCode::InvalidLine,
                    format!("{at}: shop and product are required"),
                ));
            }
        }
        Ok(self)
    }
}

impl CartLine {
    /// `unit_price × quantity`, in fen.
    pub fn amount(&self) -> i64 {
        self.unit_price.0 * self.quantity
    }

    /// The line id (set by [`Cart::check`]).
    pub fn id(&self) -> &str {
        self.line_id.as_deref().unwrap_or("")
    }
}
