//! E-commerce records materialised from the Segment e-commerce spec v2 events.

use serde::{Deserialize, Serialize};

use crate::{Fen, Timestamp};

/// A paid order's event name.
pub const ORDER_COMPLETED: &str = "Order Completed";
/// A refund's event name.
pub const ORDER_REFUNDED: &str = "Order Refunded";
/// A cancellation's event name.
pub const ORDER_CANCELLED: &str = "Order Cancelled";

/// Whether `event_name` is a money-moving fact (`Order Completed`, `Order Refunded`,
/// `Order Cancelled`): from a client key it is behaviour only, so workflows that move
/// money or credit conversions (journey triggers, waits and goals) must not act on it.
pub fn is_commerce_fact(event_name: &str) -> bool {
    [ORDER_COMPLETED, ORDER_REFUNDED, ORDER_CANCELLED].contains(&event_name)
}

/// The state of an order, derived from its completion and its adjustments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Paid (`Order Completed`), nothing refunded.
    Completed,
    /// Part of the amount refunded.
    PartiallyRefunded,
    /// The whole amount refunded.
    Refunded,
    /// Cancelled (`Order Cancelled`).
    Cancelled,
    /// Only adjustments have arrived so far; the completion is still on its way.
    Pending,
}

impl OrderStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Completed => "completed",
            OrderStatus::PartiallyRefunded => "partially_refunded",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Pending => "pending",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<OrderStatus> {
        Some(match s {
            "completed" => OrderStatus::Completed,
            "partially_refunded" => OrderStatus::PartiallyRefunded,
            "refunded" => OrderStatus::Refunded,
            "cancelled" => OrderStatus::Cancelled,
            "pending" => OrderStatus::Pending,
            _ => return None,
        })
    }

    /// Whether an order of `total` (fen) with `refunded` returned is a purchase: not
    /// cancelled and not fully refunded. An order of 0 元 (a free gift, a fully discounted
    /// basket) is one, as `lifetimes` counts every transaction; a refund that leaves
    /// nothing paid takes an order out. The one rule of reports, segments, RFM and CLV.
    pub fn is_purchase(total: i64, refunded: i64, cancelled: bool) -> bool {
        !cancelled && (total <= 0 || refunded < total)
    }

    /// The status of an order of `total` with `refunded` returned, or cancelled.
    pub fn derive(completed: bool, cancelled: bool, total: Fen, refunded: Fen) -> OrderStatus {
        if cancelled {
            OrderStatus::Cancelled
        } else if !completed {
            OrderStatus::Pending
        } else if refunded.0 <= 0 {
            OrderStatus::Completed
        } else if refunded >= total {
            OrderStatus::Refunded
        } else {
            OrderStatus::PartiallyRefunded
        }
    }
}

/// One line of an order (`products[]` of `Order Completed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// `product_id`.
    pub product_id: Option<String>,
    /// `sku`.
    pub sku: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `category`.
    pub category: Option<String>,
    /// `brand`.
    pub brand: Option<String>,
    /// Unit price.
    pub price: Fen,
    /// Quantity (at least 1).
    pub quantity: i64,
}

/// A paid order (`Order Completed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The shop's order id.
    pub order_id: String,
    /// The buyer's user id, if known.
    pub user_id: Option<String>,
    /// The buyer's anonymous id, if any.
    pub anonymous_id: Option<String>,
    /// Amount paid: `total`, else `revenue` + shipping + tax, else the sum of lines − discount.
    pub total: Fen,
    /// `revenue` (sub-total after discounts, before shipping and tax) or `total` when absent.
    pub revenue: Fen,
    /// `discount`.
    pub discount: Fen,
    /// `shipping`.
    pub shipping: Fen,
    /// `tax`.
    pub tax: Fen,
    /// `coupon` code used, if any.
    pub coupon: Option<String>,
    /// ISO-4217 currency (default `CNY`).
    pub currency: String,
    /// When it was placed (the event timestamp).
    pub placed_at: Timestamp,
    /// The lines.
    pub lines: Vec<OrderLine>,
    /// The `messageId` of the completing event.
    pub message_id: String,
}

/// What an adjustment does to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderAdjustmentKind {
    /// `Order Refunded`: money returned.
    Refund,
    /// `Order Cancelled`: the order is void.
    Cancel,
}

/// A refund or cancellation (`Order Refunded`, `Order Cancelled`).
///
/// Adjustments are kept as their own records so that they may arrive before the
/// order itself; the order's refunded amount and status are derived from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAdjustment {
    /// The order it applies to.
    pub order_id: String,
    /// Refund or cancel.
    pub kind: OrderAdjustmentKind,
    /// Amount refunded. For a refund without an amount: the refunded lines' value, or
    /// the whole order when neither is given (`None` here means "the whole order").
    pub amount: Option<Fen>,
    /// When it happened.
    pub at: Timestamp,
    /// The `messageId` of the event.
    pub message_id: String,
}

/// A catalogue entry, upserted from product events (`Product Viewed`, order lines, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// `product_id` (or `sku` when no id is sent).
    pub product_id: String,
    /// `sku`.
    pub sku: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `category`.
    pub category: Option<String>,
    /// `brand`.
    pub brand: Option<String>,
    /// Current list price.
    pub price: Option<Fen>,
    /// Unit cost, when the shop sends it (`cost` property); margin guard uses it.
    pub cost: Option<Fen>,
    /// Time of the event that last described it (later descriptions win).
    pub updated_at: Timestamp,
}
