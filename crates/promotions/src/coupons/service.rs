//! The coupon service: the state machine of a coupon over the store.

use std::sync::Arc;

use flywheel_core::Clock;
use flywheel_core::ErrorCode;
use flywheel_store::coupons::{self as q, CouponAction, CouponRow, CouponRowState as RowState};
use flywheel_store::Store;
use rand::Rng;
use serde::Serialize;

use super::template::{CouponTemplate, RefundPolicy};
use crate::rules::{Coupon, Scope};
use crate::{Error, Result};

/// The state of a coupon as the user sees it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponState {
    /// A code nobody has claimed yet.
    Unclaimed,
    /// Held and usable (also after a lapsed reservation or a refund that restored it).
    Issued,
    /// Held for an order at checkout until `reserved_until`.
    Reserved,
    /// Spent on an order.
    Redeemed,
    /// Past its validity without being spent.
    Expired,
    /// Taken back before use (a referral reward clawed back after a refund).
    Void,
}

/// A coupon with its template's terms.
#[derive(Debug, Clone, Serialize)]
pub struct CouponInstance {
    /// Coupon id.
    pub id: String,
    /// Its template.
    pub template_id: String,
    /// Who holds it.
    pub owner: Option<String>,
    /// Its code, if issued as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Its state now.
    pub state: CouponState,
    /// The order reserving or having redeemed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// A reservation lapses at (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_until: Option<String>,
    /// The terms, ready for the pricing engine.
    pub coupon: Coupon,
}

/// One entry of a coupon's audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// `issued`, `generated`, `claimed`, `reserved`, `released`, `redeemed`, `returned`,
    /// `voided`.
    pub action: CouponAction,
    /// Who did it (an admin, a journey, a user).
    pub actor: Option<String>,
    /// The order concerned.
    pub order_id: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// Coupon operations over the store.
#[derive(Clone)]
pub struct CouponService {
    store: Store,
    clock: Arc<dyn Clock>,
}

/// Code alphabet: no 0/O, 1/I; 12 characters carry 60 random bits.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const CODE_LEN: usize = 12;
/// At most this many codes per request.
pub const MAX_CODES: i64 = 100_000;

fn new_code() -> String {
    let mut rng = rand::thread_rng();
    (0..CODE_LEN)
        .map(|_| char::from(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())]))
        .collect()
}

fn new_id() -> String {
    flywheel_store::new_secret("cpn_")[..20].to_owned()
}

fn rfc3339(ms: i64) -> String {
    flywheel_core::time::from_millis(ms).to_rfc3339()
}

fn conflict(code: ErrorCode, message: impl Into<String>) -> Error {
    Error::Conflict {
        code,
        message: message.into(),
    }
}

fn template_of(body: &str) -> Result<CouponTemplate> {
    serde_json::from_str(body)
        .map_err(|e| Error::invalid(ErrorCode::InvalidTemplate, format!("stored template: {e}")))
}

/// The state of a stored coupon at `now`: lapsed reservations count as issued, anything
/// not redeemed past its window as expired.
fn state_at(c: &CouponRow, now: i64) -> CouponState {
    match c.state {
        RowState::Redeemed => CouponState::Redeemed,
        RowState::Void => CouponState::Void,
        _ if c.valid_until.is_some_and(|u| now >= u) => CouponState::Expired,
        _ if c.owner.is_none() => CouponState::Unclaimed,
        RowState::Reserved if c.reserved_until.is_some_and(|r| now < r) => CouponState::Reserved,
        _ => CouponState::Issued,
    }
}

impl CouponService {
    /// A service over `store`, telling time by `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> CouponService {
        CouponService { store, clock }
    }

    fn now(&self) -> i64 {
        flywheel_core::time::to_millis(self.clock.now())
    }

    /// Runs `f` in one write transaction; an error of `f` rolls everything back.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn flywheel_store::conn::Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.store.write_tx(f).await
    }

    /// Stores a new template.
    pub async fn create_template(&self, t: CouponTemplate) -> Result<CouponTemplate> {
        t.check()?;
        let body = serde_json::to_string(&t)
            .map_err(|e| Error::invalid(ErrorCode::InvalidTemplate, e.to_string()))?;
        let now = self.now();
        let (id, total, per_user) = (t.id.clone(), t.total_quantity, t.per_user_limit);
        let created = self
            .write(move |c| q::insert_template(c, &id, &body, total, per_user, now).map_err(Error::Store))
            .await?;
        if !created {
            return Err(conflict(
                ErrorCode::TemplateExists,
                format!("template {:?} already exists", t.id),
            ));
        }
        Ok(t)
    }

    /// One template.
    pub async fn template(&self, id: &str) -> Result<CouponTemplate> {
        let tid = id.to_owned();
        let row = self
            .store
            .read_with(move |c| q::template(c, &tid))
            .await
            .map_err(Error::Store)?;
        let (_, body, _, _, _) = row.ok_or_else(|| Error::NotFound(format!("template {id:?}")))?;
        template_of(&body)
    }

    /// The template of a redemption code.
    pub async fn template_of_code(&self, code: &str) -> Result<CouponTemplate> {
        let code = code.trim().to_uppercase();
        let row = self
            .store
            .read_with(move |c| q::coupon_by_code(c, &code))
            .await
            .map_err(Error::Store)?;
        let row = row.ok_or_else(|| Error::NotFound("coupon code".into()))?;
        self.template(&row.template_id).await
    }

    /// Every template with how many were issued.
    pub async fn templates(&self) -> Result<Vec<(CouponTemplate, i64)>> {
        let rows = self.store.read_with(q::templates).await.map_err(Error::Store)?;
        rows.into_iter()
            .map(|(_, body, _, _, issued)| Ok((template_of(&body)?, issued)))
            .collect()
    }

    /// Issues one coupon of `template_id` to `owner` (total and per-user limits hold).
    pub async fn issue(&self, template_id: &str, owner: &str, actor: &str) -> Result<CouponInstance> {
        let now = self.now();
        let (tid, owner, actor) = (template_id.to_owned(), owner.to_owned(), actor.to_owned());
        self.write(move |c| issue_in(c, &tid, &owner, &actor, now)).await
    }

    /// [`CouponService::issue`] once per `key`: the coupon's id is derived from `key`, so a
    /// repeat (a workflow applying the same step again after a failure) answers the coupon
    /// issued the first time and takes no quantity.
    pub async fn issue_once(
        &self,
        template_id: &str,
        owner: &str,
        actor: &str,
        key: &str,
    ) -> Result<CouponInstance> {
        self.issue_keyed(template_id, owner, actor, key, None).await
    }

    /// [`CouponService::issue_once`] of a coupon that covers only `products` (指定商品),
    /// whatever its template covers: a journey's coupon for the products left in a cart
    /// (R3.6 "推送加購商品的優惠券"). `invalid_rule` when `products` is empty, longer than
    /// [`MAX_SCOPE_PRODUCTS`] or names an empty product.
    pub async fn issue_once_for_products(
        &self,
        template_id: &str,
        owner: &str,
        actor: &str,
        key: &str,
        products: Vec<String>,
    ) -> Result<CouponInstance> {
        if products.is_empty()
            || products.len() > MAX_SCOPE_PRODUCTS
            || products.iter().any(|p| p.trim().is_empty())
        {
            return Err(Error::invalid(
                ErrorCode::InvalidRule,
                format!("a coupon's own products must be 1 to {MAX_SCOPE_PRODUCTS} non-empty ids"),
            ));
        }
        let scope = Scope::Products { products };
        self.issue_keyed(template_id, owner, actor, key, Some(scope))
            .await
    }

    async fn issue_keyed(
        &self,
        template_id: &str,
        owner: &str,
        actor: &str,
        key: &str,
        scope: Option<Scope>,
    ) -> Result<CouponInstance> {
        let id = format!("cpn_{}", &flywheel_store::hash_secret(key)[..16]);
        let now = self.now();
        let scope = scope
            .map(|s| serde_json::to_string(&s))
            .transpose()
            .map_err(|e| Error::invalid(ErrorCode::InvalidRule, e.to_string()))?;
        let (tid, owner, actor) = (template_id.to_owned(), owner.to_owned(), actor.to_owned());
        self.write(move |c| {
            let keyed = Keyed {
                id: &id,
                scope: scope.as_deref(),
            };
            issue_keyed_in(c, &tid, &owner, &actor, Some(keyed), now)
        })
        .await
    }

    /// Generates `n` unclaimed codes of a template (counted against its total quantity).
    pub async fn generate_codes(&self, template_id: &str, n: i64, actor: &str) -> Result<Vec<String>> {
        if !(1..=MAX_CODES).contains(&n) {
            return Err(Error::invalid(
                ErrorCode::InvalidCount,
                format!("generate 1 to {MAX_CODES} codes at a time"),
            ));
        }
        let now = self.now();
        let (tid, actor) = (template_id.to_owned(), actor.to_owned());
        self.write(move |c| {
            let (_, body, _, _, _) =
                q::template(c, &tid)?.ok_or_else(|| Error::NotFound(format!("template {tid:?}")))?;
            let t = template_of(&body)?;
            if !q::take_quantity(c, &tid, n)? {
                return Err(conflict(
                    ErrorCode::SoldOut,
                    format!("fewer than {n} coupons of {tid:?} are left"),
                ));
            }
            let mut codes = Vec::with_capacity(n as usize);
            while codes.len() < n as usize {
                let code = new_code();
                if q::coupon_by_code(c, &code)?.is_some() {
                    continue;
                }
                let window = match t.validity {
                    super::Validity::Window { .. } => t.window(now),
                    super::Validity::DaysAfterIssue { .. } => (now, i64::MAX),
                };
                let row = CouponRow {
                    id: new_id(),
                    template_id: tid.clone(),
                    owner: None,
                    code: Some(code.clone()),
                    state: RowState::Issued,
                    valid_from: Some(window.0),
                    valid_until: (window.1 != i64::MAX).then_some(window.1),
                    order_id: None,
                    reserved_until: None,
                    issued_at: now,
                    updated_at: now,
                    scope: None,
                };
                q::insert_coupon(c, &row)?;
                q::audit(c, &row.id, CouponAction::Generated, Some(&actor), None, now)?;
                codes.push(code);
            }
            Ok(codes)
        })
        .await
    }

    /// Claims a code for `owner` (once; the per-user limit holds).
    pub async fn claim(&self, code: &str, owner: &str) -> Result<CouponInstance> {
        let now = self.now();
        let (code, owner) = (code.trim().to_uppercase(), owner.to_owned());
        let (t, row) = self
            .write(move |c| {
                let mut row =
                    q::coupon_by_code(c, &code)?.ok_or_else(|| Error::NotFound("coupon code".into()))?;
                if row.owner.as_deref() == Some(owner.as_str()) {
                    let (_, body, _, _, _) = q::template(c, &row.template_id)?
                        .ok_or_else(|| Error::NotFound("template".into()))?;
                    return Ok((template_of(&body)?, row));
                }
                if row.owner.is_some() {
                    return Err(conflict(ErrorCode::AlreadyClaimed, "this code has been claimed"));
                }
                let (_, body, _, per_user, _) =
                    q::template(c, &row.template_id)?.ok_or_else(|| Error::NotFound("template".into()))?;
                let t = template_of(&body)?;
                if state_at(&row, now) == CouponState::Expired {
                    return Err(conflict(ErrorCode::Expired, "this code has expired"));
                }
                if per_user.is_some_and(|limit| {
                    q::count_owned(c, &row.template_id, &owner).unwrap_or(i64::MAX) >= limit
                }) {
                    return Err(conflict(
                        ErrorCode::PerUserLimit,
                        "the most coupons of this kind allowed are already held",
                    ));
                }
                let before = row.clone();
                row.owner = Some(owner.clone());
                row.updated_at = now;
                if matches!(t.validity, super::Validity::DaysAfterIssue { .. }) {
                    let (from, until) = t.window(now);
                    row.valid_from = Some(from);
                    row.valid_until = Some(until);
                    q::set_window(c, &row.id, from, until)?;
                }
                if !q::update(c, &row, before.state, before.order_id.as_deref())? {
                    return Err(conflict(ErrorCode::AlreadyClaimed, "this code has been claimed"));
                }
                q::audit(c, &row.id, CouponAction::Claimed, Some(&owner), None, now)?;
                Ok((t, row))
            })
            .await?;
        instance_of(&t, &row, now)
    }

    /// Applies a state change to a coupon `owner` holds, in one transaction.
    async fn change(
        &self,
        coupon_id: &str,
        owner: Option<&str>,
        action: CouponAction,
        f: impl FnOnce(&CouponTemplate, &mut CouponRow, CouponState, i64) -> Result<bool> + Send + 'static,
    ) -> Result<CouponInstance> {
        let now = self.now();
        let (id, owner) = (coupon_id.to_owned(), owner.map(str::to_owned));
        let (t, row) = self
            .write(move |c| {
                let mut row = q::coupon(c, &id)?.ok_or_else(|| Error::NotFound(format!("coupon {id:?}")))?;
                if owner.is_some() && row.owner != owner {
                    return Err(conflict(
                        ErrorCode::NotOwner,
                        "this coupon belongs to another user",
                    ));
                }
                let (_, body, _, _, _) =
                    q::template(c, &row.template_id)?.ok_or_else(|| Error::NotFound("template".into()))?;
                let t = template_of(&body)?;
                let before = row.clone();
                let state = state_at(&row, now);
                if f(&t, &mut row, state, now)? {
                    row.updated_at = now;
                    if !q::update(c, &row, before.state, before.order_id.as_deref())? {
                        return Err(conflict(
                            ErrorCode::ConcurrentChange,
                            "the coupon changed meanwhile; try again",
                        ));
                    }
                    let actor = row.owner.clone();
                    q::audit(
                        c,
                        &row.id,
                        action,
                        actor.as_deref(),
                        row.order_id.as_deref().or(before.order_id.as_deref()),
                        now,
                    )?;
                }
                Ok((t, row))
            })
            .await?;
        instance_of(&t, &row, now)
    }

    /// Holds a coupon for an order at checkout for `hold_ms`; idempotent for the same order.
    pub async fn reserve(
        &self,
        coupon_id: &str,
        owner: &str,
        order_id: &str,
        hold_ms: i64,
    ) -> Result<CouponInstance> {
        let order = order_id.to_owned();
        self.change(
            coupon_id,
            Some(owner),
            CouponAction::Reserved,
            move |_, row, state, now| match state {
                CouponState::Issued => {
                    row.state = RowState::Reserved;
                    row.order_id = Some(order);
                    row.reserved_until = Some(now + hold_ms);
                    Ok(true)
                }
                CouponState::Reserved if row.order_id.as_deref() == Some(order.as_str()) => Ok(false),
                CouponState::Reserved => Err(conflict(
                    ErrorCode::Reserved,
                    "the coupon is held for another order",
                )),
                other => Err(unusable(other)),
            },
        )
        .await
    }

    /// Spends a coupon on an order. Idempotent: redeeming again for the same order answers
    /// the same success; for another order it is refused (`already_redeemed`).
    pub async fn redeem(&self, coupon_id: &str, owner: &str, order_id: &str) -> Result<CouponInstance> {
        let order = order_id.to_owned();
        self.change(
            coupon_id,
            Some(owner),
            CouponAction::Redeemed,
            move |_, row, state, now| match state {
                CouponState::Redeemed if row.order_id.as_deref() == Some(order.as_str()) => Ok(false),
                CouponState::Redeemed => Err(conflict(
                    ErrorCode::AlreadyRedeemed,
                    "the coupon was spent on another order",
                )),
                CouponState::Reserved if row.order_id.as_deref() != Some(order.as_str()) => Err(conflict(
                    ErrorCode::Reserved,
                    "the coupon is held for another order",
                )),
                CouponState::Issued | CouponState::Reserved => {
                    let _ = now;
                    row.state = RowState::Redeemed;
                    row.order_id = Some(order);
                    row.reserved_until = None;
                    Ok(true)
                }
                other => Err(unusable(other)),
            },
        )
        .await
    }

    /// Releases a reservation (checkout abandoned or payment timed out).
    pub async fn release(&self, coupon_id: &str, order_id: &str) -> Result<CouponInstance> {
        let order = order_id.to_owned();
        self.change(coupon_id, None, CouponAction::Released, move |_, row, _, _| {
            if row.state != RowState::Reserved || row.order_id.as_deref() != Some(order.as_str()) {
                return Ok(false);
            }
            row.state = RowState::Issued;
            row.order_id = None;
            row.reserved_until = None;
            Ok(true)
        })
        .await
    }

    /// The order a coupon was spent on was refunded: by the template's refund policy the
    /// coupon is returned to its holder (usable while still valid) or stays spent.
    pub async fn refund(&self, coupon_id: &str, order_id: &str) -> Result<CouponInstance> {
        let order = order_id.to_owned();
        self.change(coupon_id, None, CouponAction::Returned, move |t, row, _, _| {
            if row.state != RowState::Redeemed
                || row.order_id.as_deref() != Some(order.as_str())
                || t.refund_policy == RefundPolicy::Keep
            {
                return Ok(false);
            }
            row.state = RowState::Issued;
            row.order_id = None;
            Ok(true)
        })
        .await
    }

    /// Takes an unspent coupon back (`void`); a spent one stays spent (`already_redeemed`).
    pub async fn void(&self, coupon_id: &str, actor: &str) -> Result<CouponInstance> {
        let _ = actor;
        self.change(
            coupon_id,
            None,
            CouponAction::Voided,
            move |_, row, state, _| match state {
                CouponState::Void => Ok(false),
                CouponState::Redeemed => Err(conflict(
                    ErrorCode::AlreadyRedeemed,
                    "the coupon was already spent",
                )),
                _ => {
                    row.state = RowState::Void;
                    row.order_id = None;
                    row.reserved_until = None;
                    Ok(true)
                }
            },
        )
        .await
    }

    /// One coupon with its terms and state now.
    pub async fn get(&self, coupon_id: &str) -> Result<CouponInstance> {
        let id = coupon_id.to_owned();
        let now = self.now();
        let (body, row) = self
            .store
            .read_with(move |c| {
                let Some(row) = q::coupon(c, &id)? else {
                    return Ok(None);
                };
                Ok(q::template(c, &row.template_id)?.map(|(_, body, _, _, _)| (body, row)))
            })
            .await
            .map_err(Error::Store)?
            .ok_or_else(|| Error::NotFound(format!("coupon {coupon_id:?}")))?;
        instance_of(&template_of(&body)?, &row, now)
    }

    /// A user's coupons, with their state now.
    pub async fn coupons_of(&self, owner: &str) -> Result<Vec<CouponInstance>> {
        let owner = owner.to_owned();
        let now = self.now();
        let pairs = self
            .store
            .read_with(move |c| {
                let rows = q::coupons_of(c, &owner)?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    if let Some((_, body, _, _, _)) = q::template(c, &r.template_id)? {
                        out.push((body, r));
                    }
                }
                Ok(out)
            })
            .await
            .map_err(Error::Store)?;
        pairs
            .into_iter()
            .map(|(body, r)| instance_of(&template_of(&body)?, &r, now))
            .collect()
    }

    /// A coupon's audit trail.
    pub async fn audit(&self, coupon_id: &str) -> Result<Vec<AuditEntry>> {
        let id = coupon_id.to_owned();
        let rows = self
            .store
            .read_with(move |c| q::audit_of(c, &id))
            .await
            .map_err(Error::Store)?;
        Ok(rows
            .into_iter()
            .map(|(action, actor, order_id, at)| AuditEntry {
                action,
                actor,
                order_id,
                at: rfc3339(at),
            })
            .collect())
    }
}

/// A stored coupon with its template's terms, as the user sees it at `now`.
fn instance_of(t: &CouponTemplate, r: &CouponRow, now: i64) -> Result<CouponInstance> {
    let window = (
        r.valid_from.unwrap_or(i64::MIN),
        r.valid_until.unwrap_or(i64::MAX),
    );
    let state = state_at(r, now);
    let mut coupon = t.coupon(&r.id, r.owner.as_deref(), window);
    if let Some(scope) = &r.scope {
        coupon.scope = serde_json::from_str(scope).map_err(|e| {
            Error::Store(flywheel_store::Error::Corrupt(format!(
                "coupon {}: stored scope: {e}",
                r.id
            )))
        })?;
    }
    Ok(CouponInstance {
        id: r.id.clone(),
        template_id: r.template_id.clone(),
        owner: r.owner.clone(),
        code: r.code.clone(),
        state,
        order_id: r
            .order_id
            .clone()
            .filter(|_| matches!(state, CouponState::Reserved | CouponState::Redeemed)),
        reserved_until: r
            .reserved_until
            .filter(|_| state == CouponState::Reserved)
            .map(rfc3339),
        coupon,
    })
}

fn unusable(state: CouponState) -> Error {
    match state {
        CouponState::Expired => conflict(ErrorCode::Expired, "the coupon has expired"),
        CouponState::Unclaimed => conflict(ErrorCode::Unclaimed, "the code has not been claimed"),
        CouponState::Void => conflict(ErrorCode::Void, "the coupon was taken back"),
        _ => conflict(ErrorCode::Unusable, "the coupon cannot be used"),
    }
}

/// Issues one coupon of `template_id` to `owner` inside the caller's write transaction
/// (total and per-user limits hold; `actor` goes to the audit trail). A workflow that
/// must issue a coupon together with another write (the points exchange) calls this in
/// its own transaction, so both are stored or neither.
pub fn issue_in(
    c: &mut dyn flywheel_store::conn::Conn,
    template_id: &str,
    owner: &str,
    actor: &str,
    now: i64,
) -> Result<CouponInstance> {
    issue_keyed_in(c, template_id, owner, actor, None, now)
}

/// The most products a coupon's own scope may name.
pub const MAX_SCOPE_PRODUCTS: usize = 200;

/// A coupon issued once per key: its id, and its own scope (JSON) if narrower than the
/// template's.
struct Keyed<'a> {
    id: &'a str,
    scope: Option<&'a str>,
}

/// [`issue_in`] with the coupon's id given: when a coupon of that id exists it is
/// answered as it is (nothing taken, nothing audited), so a step applied again issues once.
fn issue_keyed_in(
    c: &mut dyn flywheel_store::conn::Conn,
    template_id: &str,
    owner: &str,
    actor: &str,
    keyed: Option<Keyed<'_>>,
    now: i64,
) -> Result<CouponInstance> {
    if owner.trim().is_empty() {
        return Err(Error::invalid(ErrorCode::InvalidOwner, "a coupon needs an owner"));
    }
    let (_, body, _, per_user, _) =
        q::template(c, template_id)?.ok_or_else(|| Error::NotFound(format!("template {template_id:?}")))?;
    let t = template_of(&body)?;
    if let Some(done) = keyed.as_ref().map(|k| q::coupon(c, k.id)).transpose()?.flatten() {
        return instance_of(&t, &done, now);
    }
    if per_user.is_some_and(|limit| q::count_owned(c, template_id, owner).unwrap_or(i64::MAX) >= limit) {
        return Err(conflict(
            ErrorCode::PerUserLimit,
            format!("{owner} already holds the most coupons of {template_id:?} allowed"),
        ));
    }
    if !q::take_quantity(c, template_id, 1)? {
        return Err(conflict(
            ErrorCode::SoldOut,
            format!("every coupon of {template_id:?} has been issued"),
        ));
    }
    let (from, until) = t.window(now);
    let row = CouponRow {
        id: keyed.as_ref().map_or_else(new_id, |k| k.id.to_owned()),
        template_id: template_id.to_owned(),
        owner: Some(owner.to_owned()),
        code: None,
        state: RowState::Issued,
        valid_from: Some(from),
        valid_until: Some(until),
        order_id: None,
        reserved_until: None,
        issued_at: now,
        updated_at: now,
        scope: keyed.and_then(|k| k.scope).map(str::to_owned),
    };
    q::insert_coupon(c, &row)?;
    q::audit(c, &row.id, CouponAction::Issued, Some(actor), None, now)?;
    instance_of(&t, &row, now)
}
