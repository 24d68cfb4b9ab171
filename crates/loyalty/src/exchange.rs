//! Points for a coupon (積分兌換) as one idempotent operation.
//!
//! The client names each exchange with an idempotency key ([`ExchangeKey`]). The spend
//! (ledger source key `exchange:<key>`), the coupon and the exchange's record with the
//! answer it gave are written in **one** store write transaction, so a crash at any
//! point leaves all three or none: never a coupon without the spend, never points spent
//! without a coupon. A retry with the same key answers the saved first answer and writes
//! nothing; the same key for another user, template or amount is refused
//! (`idempotency_key_reused`). A refusal (too few points, sold out, not in the audience)
//! writes nothing, so the same key may be retried later.
//!
//! Coupons belong to promotions, which this crate does not import: the exchange asks the
//! [`CouponIssuer`] port, which the binary wires to the coupon service (issuing inside
//! this transaction) and the audience gate.
//!
//! For tests only, [`ExchangeFault`] makes the process abort at a named point inside the
//! transaction, to prove that a crash there leaves nothing behind.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use flywheel_core::ErrorCode;
use flywheel_store::conn::Conn;
use flywheel_store::points_exchanges::{self as q, ExchangeRow};
use serde_json::{json, Value};

use crate::ledger::{need, spend_in, Loyalty};
use crate::{Error, Result};

/// Longest idempotency key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A client's idempotency key: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeKey(String);

impl ExchangeKey {
    /// Parses a key: `invalid_idempotency_key` for an empty, too long or non-ASCII one.
    pub fn parse(s: &str) -> Result<ExchangeKey> {
        if s.is_empty() || s.len() > MAX_KEY_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                ErrorCode::InvalidIdempotencyKey,
                format!("an idempotency key is 1 to {MAX_KEY_LEN} visible ASCII characters"),
            ));
        }
        Ok(ExchangeKey(s.to_owned()))
    }

    /// The key as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an exchange asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRequest {
    /// Whose points.
    pub user_id: String,
    /// The coupon template bought.
    pub template_id: String,
    /// Its price in points (at least 1).
    pub points: i64,
}

/// A coupon issued inside the exchange's transaction.
#[derive(Debug, Clone)]
pub struct IssuedCoupon {
    /// Coupon id.
    pub id: String,
    /// The coupon as the coupon API shows it.
    pub json: Value,
}

/// A boxed future of the [`CouponIssuer`] port.
pub type IssuerFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// The port through which the exchange issues coupons (owned here, wired by the binary).
pub trait CouponIssuer: Send + Sync {
    /// Refuses, before anything is written, a user who may not hold coupons of the
    /// template (`not_in_audience`, `not_found`).
    fn admit<'a>(&'a self, template_id: &'a str, user_id: &'a str) -> IssuerFuture<'a>;

    /// Issues one coupon of `template_id` to `user_id` inside the caller's write
    /// transaction (`sold_out`, `per_user_limit` refuse it), `actor` in its audit trail.
    fn issue_in(
        &self,
        c: &mut dyn Conn,
        template_id: &str,
        user_id: &str,
        actor: &str,
        now: i64,
    ) -> Result<IssuedCoupon>;
}

/// A named point inside the exchange's transaction where the process aborts (tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeFault {
    /// After the spend is written, before the coupon is issued.
    AfterSpend,
    /// After the coupon is issued, before the exchange is recorded.
    AfterIssue,
}

impl ExchangeFault {
    /// The fault named `name` (`exchange_after_spend`, `exchange_after_issue`).
    pub fn named(name: &str) -> Option<ExchangeFault> {
        match name.trim() {
            "exchange_after_spend" => Some(ExchangeFault::AfterSpend),
            "exchange_after_issue" => Some(ExchangeFault::AfterIssue),
            _ => None,
        }
    }
}

/// The answer of an exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchanged {
    /// `{"exchange_key", "coupon", "points"}`, the same for every retry.
    pub response: Value,
    /// True when this answers a retry (nothing was written).
    pub replayed: bool,
}

/// Points-for-coupon exchanges over the ledger and a [`CouponIssuer`].
#[derive(Clone)]
pub struct PointsExchange {
    loyalty: Loyalty,
    issuer: Arc<dyn CouponIssuer>,
    fault: Option<ExchangeFault>,
}

impl std::fmt::Debug for PointsExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PointsExchange")
            .field("fault", &self.fault)
            .finish()
    }
}

/// The saved answer of `row` if it is the same request, else `idempotency_key_reused`.
fn replay(row: ExchangeRow, req: &ExchangeRequest) -> Result<Exchanged> {
    if row.user_id != req.user_id || row.template_id != req.template_id || row.points != req.points {
        return Err(Error::conflict(
            ErrorCode::IdempotencyKeyReused,
            format!(
                "idempotency key {:?} was used for another exchange ({} points of {:?} for {})",
                row.key, row.points, row.template_id, row.user_id
            ),
        ));
    }
    let response = serde_json::from_str(&row.response).map_err(|e| {
        Error::Store(flywheel_store::Error::Corrupt(format!(
            "saved answer of exchange {:?}: {e}",
            row.key
        )))
    })?;
    Ok(Exchanged {
        response,
        replayed: true,
    })
}

impl PointsExchange {
    /// Exchanges over `loyalty`'s ledger, issuing through `issuer`.
    pub fn new(loyalty: Loyalty, issuer: Arc<dyn CouponIssuer>) -> PointsExchange {
        PointsExchange {
            loyalty,
            issuer,
            fault: None,
        }
    }

    /// The same, aborting the process at `fault` (tests only).
    pub fn with_fault(mut self, fault: Option<ExchangeFault>) -> PointsExchange {
        self.fault = fault;
        self
    }

    /// Spends `req.points` of `req.user_id` for one coupon of `req.template_id`, once per
    /// `key` (see the module doc). Refusals: `invalid_points`, `invalid_id`,
    /// `insufficient_points`, `idempotency_key_reused`, and the issuer's (`not_found`,
    /// `not_in_audience`, `sold_out`, `per_user_limit`).
    pub async fn exchange(&self, key: &ExchangeKey, req: ExchangeRequest) -> Result<Exchanged> {
        need(&req.user_id, "user id")?;
        need(&req.template_id, "template id")?;
        if req.points < 1 {
            return Err(Error::invalid(
                ErrorCode::InvalidPoints,
                "points must be at least 1",
            ));
        }
        let k = key.as_str().to_owned();
        let done = self.loyalty.store.read_with(move |c| q::by_key(c, &k)).await?;
        if let Some(row) = done {
            return replay(row, &req);
        }
        self.issuer.admit(&req.template_id, &req.user_id).await?;
        let (issuer, fault, key) = (self.issuer.clone(), self.fault, key.clone());
        let now = self.loyalty.now();
        self.loyalty
            .write(move |c| run(c, issuer.as_ref(), fault, &key, &req, now))
            .await
    }
}

fn crash_at(point: ExchangeFault, fault: Option<ExchangeFault>) {
    if fault == Some(point) {
        eprintln!("FLYWHEEL_FAULTS: aborting at {point:?} (test fault injection)");
        std::process::abort();
    }
}

/// The exchange inside one write transaction.
fn run(
    c: &mut dyn Conn,
    issuer: &dyn CouponIssuer,
    fault: Option<ExchangeFault>,
    key: &ExchangeKey,
    req: &ExchangeRequest,
    now: i64,
) -> Result<Exchanged> {
    if let Some(row) = q::by_key(c, key.as_str())? {
        return replay(row, req);
    }
    let source_key = format!("exchange:{}", key.as_str());
    let posted = spend_in(
        c,
        &req.user_id,
        req.points,
        source_key.clone(),
        flywheel_store::loyalty::EntrySource::Exchange,
        now,
    )?;
    if posted.repeated {
        return Err(Error::Store(flywheel_store::Error::Corrupt(format!(
            "{source_key} is in the ledger without its exchange"
        ))));
    }
    crash_at(ExchangeFault::AfterSpend, fault);
    let coupon = issuer.issue_in(c, &req.template_id, &req.user_id, &source_key, now)?;
    crash_at(ExchangeFault::AfterIssue, fault);
    let response = json!({"exchange_key": key.as_str(), "coupon": coupon.json, "points": posted});
    let row = ExchangeRow {
        key: key.as_str().to_owned(),
        user_id: req.user_id.clone(),
        template_id: req.template_id.clone(),
        points: req.points,
        coupon_id: coupon.id,
        response: response.to_string(),
        created_at: now,
    };
    if !q::insert(c, &row)? {
        return Err(Error::conflict(
            ErrorCode::ExchangeInProgress,
            format!(
                "an exchange with idempotency key {:?} is being written; retry",
                key.as_str()
            ),
        ));
    }
    Ok(Exchanged {
        response,
        replayed: false,
    })
}
