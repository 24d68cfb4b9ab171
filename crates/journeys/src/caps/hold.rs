//! The send step's side of cap reservations: reserve the slots of a marketing message
//! the delivery rules let go now, and give them back when it does not go out.
//!
//! When the reservations backend cannot be reached (Redis down), the message is decided
//! by the store's log alone — as before reservations existed — with a warning (at most
//! one every [`WARN_EVERY_MS`]) and the `flywheel_journey_cap_unshared_total` count:
//! a marketing message is not held back for hours by an outage of a counter, and the
//! log still stops every send beyond the cap but the ones racing at that moment.

use std::sync::atomic::Ordering;

use chrono_tz::Tz;
use flywheel_channels::Channel;
use flywheel_core::Timestamp;

use super::{slots_for, CapSlot, Reserved};
use crate::delivery::{CapAction, Decision, DeliveryPolicy, SentRecord};
use crate::engine::Engine;

/// The least time between two warnings that reservations could not be made.
pub const WARN_EVERY_MS: i64 = 60_000;

/// Slots a message holds until it goes out or is given up.
#[derive(Debug)]
pub(crate) struct Held {
    holder: String,
    slots: Vec<CapSlot>,
}

/// What the reservation came to.
pub(crate) enum CapCheck {
    /// Go: with the slots held, if any were needed and could be reserved.
    Clear(Option<Held>),
    /// A cap is full after all (another process took the last slot): this decision.
    Full(Decision),
}

/// What a marketing message to one user is, for its reservation.
pub(crate) struct Prospect<'a> {
    /// The user.
    pub user: &'a str,
    /// The channel picked.
    pub channel: Channel,
    /// The message id (the same on every retry of the step).
    pub holder: &'a str,
    /// When it would go.
    pub at: Timestamp,
    /// The timezone days and weeks are counted in.
    pub tz: Tz,
}

impl Engine {
    /// Reserves the slots `p` needs under `policy`, with the logged `history` counted.
    pub(crate) async fn hold_caps(
        &self,
        policy: &DeliveryPolicy,
        p: &Prospect<'_>,
        history: &[(String, SentRecord)],
    ) -> CapCheck {
        let pairs = slots_for(policy, p.user, p.channel, p.at, p.tz, history);
        if pairs.is_empty() {
            return CapCheck::Clear(None);
        }
        let slots: Vec<CapSlot> = pairs.iter().map(|(_, s)| s.clone()).collect();
        match self.0.caps.reserve(p.holder, &slots, p.at).await {
            Ok(Reserved::Held) => CapCheck::Clear(Some(Held {
                holder: p.holder.to_owned(),
                slots,
            })),
            Ok(Reserved::Full(i)) => {
                let Some((cap, slot)) = pairs.get(i) else {
                    return CapCheck::Clear(None);
                };
                CapCheck::Full(match cap.action {
                    CapAction::Skip => Decision::Skip(*cap),
                    CapAction::Defer => {
                        let next = policy
                            .quiet_hours
                            .map_or(slot.until, |q| q.next_allowed(slot.until, p.tz));
                        Decision::DeferUntil(next)
                    }
                })
            }
            Err(e) => {
                self.0.stats.cap_unshared.fetch_add(1, Ordering::Relaxed);
                self.warn_caps(&e.message);
                CapCheck::Clear(None)
            }
        }
    }

    /// Gives back the slots of a message that did not go out.
    pub(crate) async fn release_caps(&self, held: Held) {
        if let Err(e) = self.0.caps.release(&held.holder, &held.slots).await {
            // The slot stays taken until its period ends: fewer messages, never more.
            self.warn_caps(&e.message);
        }
    }

    fn warn_caps(&self, error: &str) {
        let now = self.now();
        let last = self.0.cap_warned_at.load(Ordering::Relaxed);
        if now - last >= WARN_EVERY_MS
            && self
                .0
                .cap_warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                %error,
                "frequency-cap reservations unavailable: caps are checked against the message log only"
            );
        }
    }
}
