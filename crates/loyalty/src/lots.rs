//! Lots inside one write transaction: expiring a user's due lots and consuming lots
//! first-to-expire first. Every debit records which lots it consumed
//! ([`flywheel_store::loyalty::use_lot`]), so what is left of a lot is derived.

use flywheel_store::conn::Conn;
use flywheel_store::loyalty::{self as q, EntryRow, LotRow};

use crate::Result;

/// Writes an `expire` entry (key `expire:<lot id>`) for what is left of a due lot.
pub(crate) fn write_expire(c: &mut dyn Conn, lot: &LotRow, now: i64) -> Result<bool> {
    let entry = EntryRow {
        id: 0,
        user_id: lot.user_id.clone(),
        delta: -lot.left,
        kind: flywheel_store::loyalty::EntryKind::Expire,
        source: flywheel_store::loyalty::EntrySource::Expiry,
        source_key: format!("expire:{}", lot.id),
        lot_expires_at: None,
        streak: None,
        shortfall: None,
        at: now,
    };
    match q::insert_entry(c, &entry)? {
        Some(id) => {
            q::use_lot(c, id, lot.id, lot.left)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Expires a user's lots due at `now`; returns the lots still usable, first to expire first.
pub(crate) fn expire_user(c: &mut dyn Conn, user: &str, now: i64) -> Result<Vec<LotRow>> {
    let mut usable = Vec::new();
    for lot in q::lots(c, user)? {
        if lot.expires_at <= now {
            write_expire(c, &lot, now)?;
        } else {
            usable.push(lot);
        }
    }
    Ok(usable)
}

/// Records debit `entry_id` consuming `points` from `lots` in the order given; returns
/// how many points it found (less than `points` only when the lots run out).
pub(crate) fn consume(c: &mut dyn Conn, entry_id: i64, lots: &[LotRow], points: i64) -> Result<i64> {
    let mut need = points;
    for lot in lots {
        if need <= 0 {
            break;
        }
        let take = lot.left.min(need);
        if take > 0 {
            q::use_lot(c, entry_id, lot.id, take)?;
            need -= take;
        }
    }
    Ok(points - need)
}
