//! Cap reservations in this process (the embedded mode, and any process started without
//! `--redis`): one map under one mutex, so a reservation is atomic against every other
//! send of the process. Bounded: past [`MAX_SLOTS`] entries, periods that ended are
//! dropped, then the least recently used half — safe, because each check adds the
//! store's logged messages back; only reservations of messages still on their way could
//! be forgotten, and those are the most recently used.

use std::collections::HashMap;
use std::sync::Mutex;

use flywheel_core::Timestamp;

use super::{CapReservations, CapSlot, Reserved};
use crate::ports::PortFuture;

/// The most (user, cap, period) entries kept.
pub const MAX_SLOTS: usize = 200_000;

#[derive(Debug)]
struct Entry {
    holders: Vec<String>,
    expires_at: i64,
    used: u64,
}

#[derive(Debug, Default)]
struct Slots {
    entries: HashMap<String, Entry>,
    clock: u64,
}

impl Slots {
    fn trim(&mut self, now: i64) {
        if self.entries.len() < MAX_SLOTS {
            return;
        }
        self.entries.retain(|_, e| e.expires_at > now);
        if self.entries.len() < MAX_SLOTS {
            return;
        }
        let mut used: Vec<u64> = self.entries.values().map(|e| e.used).collect();
        let mid = used.len() / 2;
        let (_, cut, _) = used.select_nth_unstable(mid);
        let cut = *cut;
        self.entries.retain(|_, e| e.used > cut);
    }

    fn reserve(&mut self, holder: &str, slots: &[CapSlot], now: i64) -> Reserved {
        self.trim(now);
        self.clock += 1;
        for (i, slot) in slots.iter().enumerate() {
            let e = self.entries.entry(slot.key.clone()).or_insert_with(|| Entry {
                holders: Vec::new(),
                expires_at: slot.expires_at(),
                used: 0,
            });
            if e.expires_at <= now {
                e.holders.clear();
            }
            e.expires_at = slot.expires_at();
            e.used = self.clock;
            for id in &slot.counted {
                if !e.holders.contains(id) {
                    e.holders.push(id.clone());
                }
            }
            let holds = e.holders.iter().any(|h| h == holder);
            if !holds && e.holders.len() >= slot.limit as usize {
                return Reserved::Full(i);
            }
        }
        for slot in slots {
            if let Some(e) = self.entries.get_mut(&slot.key) {
                if !e.holders.iter().any(|h| h == holder) {
                    e.holders.push(holder.to_owned());
                }
            }
        }
        Reserved::Held
    }

    fn release(&mut self, holder: &str, slots: &[CapSlot]) {
        for slot in slots {
            if let Some(e) = self.entries.get_mut(&slot.key) {
                e.holders.retain(|h| h != holder);
            }
        }
    }
}

/// Reservations held in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryCapReservations {
    slots: Mutex<Slots>,
}

impl MemoryCapReservations {
    fn with<T>(&self, f: impl FnOnce(&mut Slots) -> T) -> T {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut slots)
    }

    /// How many (user, cap, period) entries are kept.
    pub fn len(&self) -> usize {
        self.with(|s| s.entries.len())
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CapReservations for MemoryCapReservations {
    fn reserve<'a>(
        &'a self,
        holder: &'a str,
        slots: &'a [CapSlot],
        now: Timestamp,
    ) -> PortFuture<'a, Reserved> {
        let out = self.with(|s| s.reserve(holder, slots, now.timestamp()));
        Box::pin(async move { Ok(out) })
    }

    fn release<'a>(&'a self, holder: &'a str, slots: &'a [CapSlot]) -> PortFuture<'a, ()> {
        self.with(|s| s.release(holder, slots));
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::caps::suite;

    #[tokio::test]
    async fn shares_one_cap_between_concurrent_senders() {
        let caps = Arc::new(MemoryCapReservations::default());
        suite::one_slot_many_senders(caps.clone(), caps, "m").await;
    }

    #[tokio::test]
    async fn a_retry_keeps_its_slot_and_a_release_frees_it() {
        suite::retry_release_and_counted(&MemoryCapReservations::default(), "m").await;
    }

    #[tokio::test]
    async fn all_caps_or_none() {
        suite::all_or_none(&MemoryCapReservations::default(), "m").await;
    }

    #[test]
    fn stays_bounded_and_forgets_ended_periods_first() {
        let mut s = Slots::default();
        let slot = |key: String, expires: i64| CapSlot {
            key,
            limit: 1,
            until: flywheel_core::time::from_millis((expires - super::super::RESERVATION_MARGIN_SECS) * 1000),
            counted: vec![],
        };
        for i in 0..MAX_SLOTS {
            let at = if i == 7 { 50 } else { 1_000 };
            assert_eq!(s.reserve("h", &[slot(format!("k{i}"), at)], 10), Reserved::Held);
        }
        assert_eq!(s.entries.len(), MAX_SLOTS);
        // At 100, k7's period has ended: it alone goes.
        assert_eq!(s.reserve("h", &[slot("new".into(), 1_000)], 100), Reserved::Held);
        assert_eq!(s.entries.len(), MAX_SLOTS);
        assert!(!s.entries.contains_key("k7"));
        // Nothing has ended: the older half goes, the newest stay.
        assert_eq!(
            s.reserve("h", &[slot("newer".into(), 1_000)], 100),
            Reserved::Held
        );
        assert!(s.entries.len() <= MAX_SLOTS / 2 + 1, "{}", s.entries.len());
        assert!(s.entries.contains_key("new") && s.entries.contains_key("newer"));
        assert!(!s.entries.contains_key("k0"));
    }
}
