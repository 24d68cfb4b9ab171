//! The points ledger (R7.3, fixture F16) over the store.
//!
//! Source keys (unique over the ledger; a repeat returns the first result and writes
//! nothing): `order:<order id>`, `checkin:<shop-local date>:<user>`, `review:<review id>`,
//! `share:<share id>`, `spend:<reason key>`, `clawback:<order id>`, `expire:<lot id>`.
//! A key already used by another user is refused (`source_key_taken`).
//!
//! Each operation first writes `expire` entries for the user's lots that are due, then
//! does its work, all in one write transaction (an error rolls all of it back).

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone};
use flywheel_core::time::{from_millis, to_millis};
use flywheel_core::ErrorCode;
use flywheel_core::{Clock, Fen};
use flywheel_store::conn::Conn;
use flywheel_store::loyalty::{self as q, EntryKind, EntryRow, EntrySource};
use flywheel_store::Store;

use crate::config::LoyaltyConfig;
use crate::entry::{debit_row, earn_row, Entry, Posted, DAY_MS};
use crate::lots::{consume, expire_user};
use crate::{Error, Result};

/// The loyalty programme over the store: points ledger, tiers and birthday perks.
#[derive(Debug, Clone)]
pub struct Loyalty {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Arc<LoyaltyConfig>,
    pub(crate) tz: chrono_tz::Tz,
}

pub(crate) fn need(value: &str, what: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::invalid(
            ErrorCode::InvalidId,
            format!("{what} must not be empty"),
        ));
    }
    Ok(())
}

/// Looks up a repeat of `key` for `user`; `Some` is the answer to return.
fn repeat(c: &mut dyn Conn, user: &str, key: &str) -> Result<Option<Posted>> {
    let Some(row) = q::entry_by_key(c, key)? else {
        return Ok(None);
    };
    if row.user_id != user {
        return Err(Error::conflict(
            ErrorCode::SourceKeyTaken,
            format!("{key} is already recorded for another user"),
        ));
    }
    let balance = q::balance(c, user)?;
    Ok(Some(Posted {
        entry: Some(Entry::of(row)?),
        balance,
        repeated: true,
    }))
}

/// Writes `row`, returning it with its id (the caller checked the key is free).
fn insert(c: &mut dyn Conn, mut row: EntryRow) -> Result<EntryRow> {
    row.id = q::insert_entry(c, &row)?.ok_or_else(|| {
        Error::conflict(
            ErrorCode::SourceKeyTaken,
            format!("{} is already recorded", row.source_key),
        )
    })?;
    Ok(row)
}

/// Credits `points` to `user` under `key` as a new lot expiring at `expires`, unless `key`
/// was seen (then the first posting is answered), inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
fn credit_in(
    c: &mut dyn Conn,
    user: &str,
    source: EntrySource,
    key: String,
    points: i64,
    expires: i64,
    streak: Option<i64>,
    now: i64,
) -> Result<Posted> {
    expire_user(c, user, now)?;
    if let Some(p) = repeat(c, user, &key)? {
        return Ok(p);
    }
    if points <= 0 {
        let balance = q::balance(c, user)?;
        return Ok(Posted {
            entry: None,
            balance,
            repeated: false,
        });
    }
    let row = insert(c, earn_row(user, source, key, points, expires, streak, now))?;
    posted(c, row)
}

fn posted(c: &mut dyn Conn, row: EntryRow) -> Result<Posted> {
    let balance = q::balance(c, &row.user_id)?;
    Ok(Posted {
        entry: Some(Entry::of(row)?),
        balance,
        repeated: false,
    })
}

/// Spends `points` of `user` under the ledger source key `key` (source `source`) inside
/// the caller's write transaction, consuming the lots that expire first. A repeat of
/// `key` answers the first entry (`key_reused` for another amount); `insufficient_points`
/// when the balance is short (the caller's transaction is then rolled back).
pub(crate) fn spend_in(
    c: &mut dyn Conn,
    user: &str,
    points: i64,
    key: String,
    source: EntrySource,
    now: i64,
) -> Result<Posted> {
    let lots = expire_user(c, user, now)?;
    if let Some(done) = repeat(c, user, &key)? {
        if done.entry.as_ref().is_some_and(|e| e.points != -points) {
            return Err(Error::conflict(
                ErrorCode::KeyReused,
                format!("{key} was used for another amount"),
            ));
        }
        return Ok(done);
    }
    let balance = q::balance(c, user)?;
    if balance < points {
        return Err(Error::conflict(
            ErrorCode::InsufficientPoints,
            format!("{points} points asked, {balance} available"),
        ));
    }
    let row = insert(
        c,
        debit_row(user, EntryKind::Spend, source, key, -points, None, now),
    )?;
    consume(c, row.id, &lots, points)?;
    posted(c, row)
}

impl Loyalty {
    /// A programme over `store` with `config` (checked first), telling time by `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: LoyaltyConfig) -> Result<Loyalty> {
        let tz = config.check()?;
        Ok(Loyalty {
            store,
            clock,
            config: Arc::new(config),
            tz,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &LoyaltyConfig {
        &self.config
    }

    pub(crate) fn now(&self) -> i64 {
        to_millis(self.clock.now())
    }

    /// The shop-local calendar date of `ms`.
    pub(crate) fn local_date(&self, ms: i64) -> NaiveDate {
        from_millis(ms).with_timezone(&self.tz).date_naive()
    }

    /// The instant the shop-local `date` starts (ms).
    fn day_start(&self, date: NaiveDate) -> i64 {
        let midnight = date.and_time(chrono::NaiveTime::MIN);
        self.tz
            .from_local_datetime(&midnight)
            .earliest()
            .map_or_else(|| midnight.and_utc().timestamp_millis(), |t| t.timestamp_millis())
    }

    /// Runs `f` in one write transaction; an error of `f` rolls everything back.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.store.write_tx(f).await
    }

    /// Credits `points` to `user` under `key` as a new lot, unless `key` was seen.
    async fn credit(
        &self,
        user: &str,
        source: EntrySource,
        key: String,
        points: i64,
        streak: Option<i64>,
    ) -> Result<Posted> {
        need(user, "user id")?;
        let now = self.now();
        let expires = now.saturating_add(self.config.points.lot_days.saturating_mul(DAY_MS));
        let user = user.to_owned();
        self.write(move |c| credit_in(c, &user, source, key, points, expires, streak, now))
            .await
    }

    /// The purchase points of an order paying `paid` (validated).
    fn order_points(&self, order_id: &str, paid: Fen) -> Result<i64> {
        need(order_id, "order id")?;
        if paid < Fen::ZERO {
            return Err(Error::invalid(
                ErrorCode::NegativeAmount,
                "the amount paid must not be negative",
            ));
        }
        paid.0
            .checked_mul(self.config.points.points_per_yuan)
            .map(|p| p / 100)
            .ok_or_else(|| Error::invalid(ErrorCode::AmountTooLarge, "the amount paid is too large"))
    }

    /// Purchase points (購買): `paid` × `points_per_yuan` / 100, rounded down, once per
    /// order. `negative_amount` for a negative `paid`. An order worth 0 points writes nothing.
    pub async fn earn_order(&self, user: &str, order_id: &str, paid: Fen) -> Result<Posted> {
        let points = self.order_points(order_id, paid)?;
        self.credit(
            user,
            EntrySource::Order,
            format!("order:{order_id}"),
            points,
            None,
        )
        .await
    }

    /// [`Loyalty::earn_order`] for many orders (user, order id, paid) in one write
    /// transaction, as the order hooks apply a stretch of the event log; the answer is
    /// per order, in order. A refused order (validation) is answered on its own and the
    /// rest go on; if the transaction itself fails, each order is tried on its own.
    pub async fn earn_orders(&self, orders: Vec<(String, String, Fen)>) -> Vec<Result<Posted>> {
        let now = self.now();
        let expires = now.saturating_add(self.config.points.lot_days.saturating_mul(DAY_MS));
        let mut answers: Vec<Option<Result<Posted>>> = Vec::with_capacity(orders.len());
        let mut batch = Vec::new();
        for (i, (user, order, paid)) in orders.iter().enumerate() {
            match need(user, "user id").and_then(|()| self.order_points(order, *paid)) {
                Ok(points) => {
                    answers.push(None);
                    batch.push((i, user.clone(), format!("order:{order}"), points));
                }
                Err(e) => answers.push(Some(Err(e))),
            }
        }
        let work = batch.clone();
        let done = self
            .write(move |c| {
                work.into_iter()
                    .map(|(i, user, key, points)| {
                        credit_in(c, &user, EntrySource::Order, key, points, expires, None, now)
                            .map(|p| (i, p))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await;
        match done {
            Ok(posted) => {
                for (i, p) in posted {
                    answers[i] = Some(Ok(p));
                }
            }
            Err(_) => {
                for (i, _, _, _) in batch {
                    let (user, order, paid) = &orders[i];
                    answers[i] = Some(self.earn_order(user, order, *paid).await);
                }
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(Error::invalid(ErrorCode::Internal, "not applied"))))
            .collect()
    }

    /// Points a campaign awards (a journey's points step), once per `key`: a repeat with
    /// the same key returns the first entry. The lot expires like any other.
    pub async fn award(&self, user: &str, key: &str, points: i64) -> Result<Posted> {
        need(key, "award key")?;
        if points <= 0 {
            return Err(Error::invalid(
                ErrorCode::InvalidPoints,
                "awarded points must be positive",
            ));
        }
        self.credit(
            user,
            EntrySource::Campaign,
            format!("campaign:{key}"),
            points,
            None,
        )
        .await
    }

    /// Daily check-in (簽到), once per shop-local calendar day: `checkin_points`, plus
    /// `streak_bonus` on every `streak_every`-th consecutive day. A missed day resets the
    /// streak to 1. A repeat the same day returns that day's entry.
    pub async fn check_in(&self, user: &str) -> Result<Posted> {
        need(user, "user id")?;
        let now = self.now();
        let today = self.local_date(now);
        let key = format!("checkin:{today}:{user}");
        let yesterday_key = today.pred_opt().map(|d| format!("checkin:{d}:{user}"));
        let p = self.config.points.clone();
        let expires = now.saturating_add(p.lot_days.saturating_mul(DAY_MS));
        let user = user.to_owned();
        self.write(move |c| {
            expire_user(c, &user, now)?;
            if let Some(done) = repeat(c, &user, &key)? {
                return Ok(done);
            }
            let before = match yesterday_key {
                Some(k) => q::entry_by_key(c, &k)?.and_then(|e| e.streak).unwrap_or(0),
                None => 0,
            };
            let streak = before + 1;
            let bonus = if streak % p.streak_every == 0 {
                p.streak_bonus
            } else {
                0
            };
            let row = earn_row(
                &user,
                EntrySource::Checkin,
                key,
                p.checkin_points.saturating_add(bonus),
                expires,
                Some(streak),
                now,
            );
            let row = insert(c, row)?;
            posted(c, row)
        })
        .await
    }

    /// Review points (評價), once per review id.
    pub async fn review(&self, user: &str, review_id: &str) -> Result<Posted> {
        need(review_id, "review id")?;
        let points = self.config.points.review_points;
        self.credit(
            user,
            EntrySource::Review,
            format!("review:{review_id}"),
            points,
            None,
        )
        .await
    }

    /// Share points (分享), once per share id and at most `shares_per_day` credited shares
    /// per shop-local day (`share_cap_reached` beyond; nothing is written).
    pub async fn share(&self, user: &str, share_id: &str) -> Result<Posted> {
        need(user, "user id")?;
        need(share_id, "share id")?;
        let now = self.now();
        let today = self.local_date(now);
        let from = self.day_start(today);
        let until = today.succ_opt().map_or(i64::MAX, |d| self.day_start(d));
        let p = self.config.points.clone();
        let expires = now.saturating_add(p.lot_days.saturating_mul(DAY_MS));
        let (user, key) = (user.to_owned(), format!("share:{share_id}"));
        self.write(move |c| {
            expire_user(c, &user, now)?;
            if let Some(done) = repeat(c, &user, &key)? {
                return Ok(done);
            }
            if q::count_between(c, &user, EntrySource::Share, from, until)? >= p.shares_per_day {
                return Err(Error::conflict(
                    ErrorCode::ShareCapReached,
                    format!("at most {} shares earn points per day", p.shares_per_day),
                ));
            }
            let row = insert(
                c,
                earn_row(&user, EntrySource::Share, key, p.share_points, expires, None, now),
            )?;
            posted(c, row)
        })
        .await
    }

    /// Spends (redeems) `points`, consuming the lots that expire first. Refused with
    /// `insufficient_points` when the balance is short (nothing is written), `invalid_points`
    /// for fewer than 1 point, `key_reused` when `reason_key` was used for another amount.
    pub async fn spend(&self, user: &str, points: i64, reason_key: &str) -> Result<Posted> {
        need(user, "user id")?;
        need(reason_key, "reason key")?;
        if points < 1 {
            return Err(Error::invalid(ErrorCode::InvalidPoints, "spend at least 1 point"));
        }
        let now = self.now();
        let (user, key) = (user.to_owned(), format!("spend:{reason_key}"));
        self.write(move |c| spend_in(c, &user, points, key, EntrySource::Redeem, now))
            .await
    }

    /// Takes back the points `order_id` earned (refund or cancellation), once. Points of
    /// that order's lot that already expired are not taken again. The rest is taken from
    /// the order's own lot first, then from the other lots first to expire first, but
    /// never below a balance of 0: when the member already spent them, what cannot be
    /// taken is recorded as the entry's `shortfall` (the balance is not made negative).
    /// An order that earned nothing gives `entry: None`.
    pub async fn claw_back_order(&self, user: &str, order_id: &str) -> Result<Posted> {
        need(user, "user id")?;
        need(order_id, "order id")?;
        let now = self.now();
        let user = user.to_owned();
        let (key, earn_key) = (format!("clawback:{order_id}"), format!("order:{order_id}"));
        self.write(move |c| {
            let mut lots = expire_user(c, &user, now)?;
            if let Some(done) = repeat(c, &user, &key)? {
                return Ok(done);
            }
            let Some(earned) = q::entry_by_key(c, &earn_key)? else {
                let balance = q::balance(c, &user)?;
                return Ok(Posted {
                    entry: None,
                    balance,
                    repeated: false,
                });
            };
            if earned.user_id != user {
                return Err(Error::conflict(
                    ErrorCode::SourceKeyTaken,
                    format!("{earn_key} belongs to another user"),
                ));
            }
            let owed = earned.delta - q::lot_used_by(c, earned.id, EntryKind::Expire)?;
            let take = owed.min(q::balance(c, &user)?.max(0)).max(0);
            // The order's own lot first, then the others in expiry order.
            lots.sort_by_key(|l| (l.id != earned.id, l.expires_at, l.id));
            let mut row = debit_row(
                &user,
                EntryKind::Clawback,
                EntrySource::Order,
                key,
                -take,
                None,
                now,
            );
            row.shortfall = Some(owed - take);
            let row = insert(c, row)?;
            consume(c, row.id, &lots, take)?;
            posted(c, row)
        })
        .await
    }
}
