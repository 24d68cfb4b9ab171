//! Flash sales over a stock backend and the store.

use std::sync::Arc;

use flywheel_core::ErrorCode;
use flywheel_core::{Clock, Fen, Timestamp};
use flywheel_store::flash::{self as q, FlashOrderRow, FlashOrderState};
use flywheel_store::Store;
use serde::{Deserialize, Serialize};

use super::stock::{StockBackend, Take};
use crate::{Error, Result};

/// A flash sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashSale {
    /// Unique id.
    pub id: String,
    /// The product sold.
    pub product: String,
    /// The sale price per unit.
    pub price: Fen,
    /// Units for sale.
    pub stock: i64,
    /// Opens (inclusive).
    pub starts_at: Timestamp,
    /// Closes (exclusive).
    pub ends_at: Timestamp,
    /// Units one buyer may hold or have bought.
    #[serde(default = "one")]
    pub per_user_limit: i64,
    /// An unpaid order gives its units back after this many seconds.
    #[serde(default = "default_hold")]
    pub hold_seconds: i64,
}

fn one() -> i64 {
    1
}

fn default_hold() -> i64 {
    900
}

/// An order of a flash sale.
#[derive(Debug, Clone, Serialize)]
pub struct FlashOrder {
    /// Order id.
    pub id: String,
    /// The sale.
    pub sale_id: String,
    /// The buyer.
    pub user_id: String,
    /// Units.
    pub quantity: i64,
    /// `held` (pay before `expires_at`), `paid`, `released`.
    pub state: FlashOrderState,
    /// When an unpaid hold lapses (RFC 3339).
    pub expires_at: String,
}

impl From<FlashOrderRow> for FlashOrder {
    fn from(r: FlashOrderRow) -> Self {
        FlashOrder {
            id: r.id,
            sale_id: r.sale_id,
            user_id: r.user_id,
            quantity: r.quantity,
            state: r.state,
            expires_at: flywheel_core::time::from_millis(r.expires_at).to_rfc3339(),
        }
    }
}

fn conflict(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::Conflict {
        code,
        message: message.into(),
    }
}

/// Flash sales over a stock backend `B`.
pub struct FlashSales<B: StockBackend> {
    store: Store,
    stock: Arc<B>,
    clock: Arc<dyn Clock>,
    sales: std::sync::RwLock<std::collections::HashMap<String, FlashSale>>,
}

impl<B: StockBackend> FlashSales<B> {
    /// Loads every sale from the store and opens its counters (held and paid units taken).
    pub async fn open(store: Store, stock: Arc<B>, clock: Arc<dyn Clock>) -> Result<Self> {
        let sales = FlashSales {
            store,
            stock,
            clock,
            sales: std::sync::RwLock::new(std::collections::HashMap::new()),
        };
        sales.load_new().await?;
        Ok(sales)
    }

    /// Loads the stored sales this process does not know yet (created through another
    /// process on the same store) and opens their counters; a shared stock (Redis)
    /// keeps counters already open.
    async fn load_new(&self) -> Result<()> {
        let rows = self.store.read_with(q::sales).await?;
        for (id, body) in rows {
            if self.sale(&id).is_ok() {
                continue;
            }
            let sale: FlashSale = serde_json::from_str(&body)
                .map_err(|e| Error::invalid(ErrorCode::InvalidSale, e.to_string()))?;
            let sid = id.clone();
            let live = self.store.read_with(move |c| q::live_orders(c, &sid)).await?;
            let held: Vec<(String, i64)> = live.into_iter().map(|o| (o.user_id, o.quantity)).collect();
            self.stock.open(&id, sale.stock, &held).await?;
            self.sales
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, sale);
        }
        Ok(())
    }

    /// The sale `id`, loaded from the store when another process created it.
    async fn sale_of(&self, id: &str) -> Result<FlashSale> {
        if let Ok(s) = self.sale(id) {
            return Ok(s);
        }
        self.load_new().await?;
        self.sale(id)
    }

    fn now(&self) -> i64 {
        flywheel_core::time::to_millis(self.clock.now())
    }

    fn sale(&self, id: &str) -> Result<FlashSale> {
        self.sales
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("flash sale {id:?}")))
    }

    /// Creates a sale.
    pub async fn create(&self, sale: FlashSale) -> Result<FlashSale> {
        if sale.id.trim().is_empty() || sale.product.trim().is_empty() {
            return Err(Error::invalid(
                ErrorCode::InvalidSale,
                "a sale needs an id and a product",
            ));
        }
        if sale.stock < 0
            || sale.price.0 < 0
            || sale.per_user_limit < 1
            || !(1..=86_400).contains(&sale.hold_seconds)
        {
            return Err(Error::invalid(
                ErrorCode::InvalidSale,
                "stock and price must not be negative, per_user_limit ≥ 1, hold_seconds 1 to 86400",
            ));
        }
        if sale.ends_at <= sale.starts_at {
            return Err(Error::invalid(
                ErrorCode::InvalidSale,
                "the sale ends before it starts",
            ));
        }
        let body = serde_json::to_string(&sale)
            .map_err(|e| Error::invalid(ErrorCode::InvalidSale, e.to_string()))?;
        let (id, stock, now) = (sale.id.clone(), sale.stock, self.now());
        if !self
            .store
            .write_with(move |c| q::insert_sale(c, &id, &body, stock, now))
            .await?
        {
            return Err(conflict(
                ErrorCode::SaleExists,
                format!("flash sale {:?} already exists", sale.id),
            ));
        }
        self.stock.open(&sale.id, sale.stock, &[]).await?;
        self.sales
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sale.id.clone(), sale.clone());
        Ok(sale)
    }

    /// Every sale with its units left.
    pub async fn list(&self) -> Result<Vec<(FlashSale, i64)>> {
        self.load_new().await?;
        let sales: Vec<FlashSale> = self
            .sales
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(sales.len());
        for s in sales {
            let left = self.stock.remaining(&s.id).await?;
            out.push((s, left));
        }
        out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(out)
    }

    /// Buys `quantity` units for `user`: taken from the stock atomically, recorded as a
    /// `held` order, to be paid within the hold time.
    pub async fn buy(&self, sale_id: &str, user: &str, quantity: i64) -> Result<FlashOrder> {
        let sale = self.sale_of(sale_id).await?;
        if user.trim().is_empty() || quantity < 1 {
            return Err(Error::invalid(
                ErrorCode::InvalidOrder,
                "an order needs a user and a quantity of at least 1",
            ));
        }
        let now = self.now();
        if now < sale.starts_at.timestamp_millis() {
            return Err(conflict(ErrorCode::NotStarted, "the sale has not started"));
        }
        if now >= sale.ends_at.timestamp_millis() {
            return Err(conflict(ErrorCode::Ended, "the sale has ended"));
        }
        match self
            .stock
            .take(sale_id, user, quantity, sale.per_user_limit)
            .await?
        {
            Take::SoldOut => return Err(conflict(ErrorCode::SoldOut, "sold out")),
            Take::LimitReached => {
                return Err(conflict(
                    ErrorCode::PerUserLimit,
                    format!("at most {} per buyer", sale.per_user_limit),
                ))
            }
            Take::Taken => {}
        }
        let row = FlashOrderRow {
            id: flywheel_store::new_secret("fso_")[..20].to_owned(),
            sale_id: sale_id.to_owned(),
            user_id: user.to_owned(),
            quantity,
            state: FlashOrderState::Held,
            expires_at: now + sale.hold_seconds * 1000,
            created_at: now,
        };
        let record = row.clone();
        if let Err(e) = self.store.write_with(move |c| q::insert_order(c, &record)).await {
            // Not durable, not sold: the units go back.
            self.stock.give_back(sale_id, user, quantity).await?;
            return Err(e.into());
        }
        Ok(row.into())
    }

    /// Pays a held order (before its hold lapses).
    pub async fn pay(&self, order_id: &str) -> Result<FlashOrder> {
        let now = self.now();
        let id = order_id.to_owned();
        let row = self
            .store
            .write_with(move |c| {
                let Some(mut o) = q::order(c, &id)? else {
                    return Ok(None);
                };
                if o.state == FlashOrderState::Held
                    && o.expires_at > now
                    && q::transition(c, &id, FlashOrderState::Held, FlashOrderState::Paid, now)?
                {
                    o.state = FlashOrderState::Paid;
                }
                Ok(Some(o))
            })
            .await?
            .ok_or_else(|| Error::NotFound(format!("order {order_id:?}")))?;
        match row.state {
            FlashOrderState::Paid => Ok(row.into()),
            FlashOrderState::Released => Err(conflict(
                ErrorCode::Released,
                "the hold lapsed and the units went back",
            )),
            _ => Err(conflict(ErrorCode::Expired, "the hold has lapsed")),
        }
    }

    /// Releases every held order whose hold lapsed; returns how many.
    pub async fn sweep(&self) -> Result<usize> {
        let now = self.now();
        let released = self
            .store
            .write_with(move |c| {
                let mut out = Vec::new();
                for o in q::lapsed(c, now)? {
                    if q::transition(c, &o.id, FlashOrderState::Held, FlashOrderState::Released, now)? {
                        out.push(o);
                    }
                }
                Ok(out)
            })
            .await?;
        for o in &released {
            self.stock.give_back(&o.sale_id, &o.user_id, o.quantity).await?;
        }
        Ok(released.len())
    }

    /// Units left in a sale.
    pub async fn remaining(&self, sale_id: &str) -> Result<i64> {
        self.sale_of(sale_id).await?;
        self.stock.remaining(sale_id).await
    }
}
