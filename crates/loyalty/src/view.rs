//! Reading a user's points and the expiry sweep.

use flywheel_core::time::{from_millis, to_millis};
use flywheel_core::ErrorCode;
use flywheel_core::Timestamp;
use flywheel_store::conn::Conn;
use flywheel_store::loyalty::{self as q, EntryRow};

use crate::entry::{Balance, Entry, Lot};
use crate::ledger::{need, Loyalty};
use crate::lots::write_expire;
use crate::{Error, Result};

impl Loyalty {
    /// A user's usable balance, lots and a page of entries (newest first, `limit` clamped to
    /// 1..=500; `cursor` from the previous page, else `invalid_cursor`). Read-only: lots past
    /// their expiry are left out of the balance already.
    pub async fn balance(&self, user: &str, cursor: Option<&str>, limit: usize) -> Result<Balance> {
        need(user, "user id")?;
        let before = cursor
            .map(|s| {
                s.parse::<i64>()
                    .map_err(|_| Error::invalid(ErrorCode::InvalidCursor, format!("bad cursor {s:?}")))
            })
            .transpose()?;
        let limit = limit.clamp(1, 500) as i64;
        let now = self.now();
        let user_id = user.to_owned();
        let user = user.to_owned();
        let (stored, lots, mut rows) = self
            .store
            .read_with(move |c| {
                c.begin_read()?;
                let out = snapshot(c, &user, before, limit + 1);
                c.rollback();
                out
            })
            .await?;
        let overdue: i64 = lots.iter().filter(|l| l.expires_at <= now).map(|l| l.left).sum();
        let next_cursor = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(Balance {
            user_id,
            balance: stored - overdue,
            lots: lots
                .into_iter()
                .filter(|l| l.expires_at > now)
                .map(|l| Lot {
                    entry_id: l.id,
                    source: l.source,
                    points: l.points,
                    left: l.left,
                    expires_at: from_millis(l.expires_at),
                })
                .collect(),
            entries: rows.into_iter().map(Entry::of).collect::<Result<_>>()?,
            next_cursor,
        })
    }

    /// The expiry sweep: writes `expire` entries for every lot of any user due at `now`,
    /// in transactions of up to 500 lots. Returns how many lots it expired.
    pub async fn expire_due(&self, now: Timestamp) -> Result<u64> {
        let now = to_millis(now);
        let mut total = 0;
        loop {
            let n = self
                .write(move |c| {
                    let mut n = 0;
                    for lot in q::due_lots(c, now, 500)? {
                        n += u64::from(write_expire(c, &lot, now)?);
                    }
                    Ok(n)
                })
                .await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
        }
    }
}

/// A user's stored balance, lots and entries, read together.
fn snapshot(
    c: &mut dyn Conn,
    user: &str,
    before: Option<i64>,
    limit: i64,
) -> flywheel_store::Result<(i64, Vec<q::LotRow>, Vec<EntryRow>)> {
    Ok((
        q::balance(c, user)?,
        q::lots(c, user)?,
        q::entries(c, user, before, limit)?,
    ))
}
