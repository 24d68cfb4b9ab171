//! Test-only fault injection for the order-rewards workflow, read once from
//! `FLYWHEEL_FAULTS` at start (unset in production: no fault is ever injected).

use std::sync::atomic::{AtomicI64, Ordering};

use super::apply::{Hook, RewardFailure};

/// Test-only fault injection, read once from `FLYWHEEL_FAULTS` at start (unset in
/// production: no fault is ever injected). Comma-separated `POINT:COUNT`:
///
/// - `order_hooks:N`: the next N applications fail as a store outage would, before
///   anything is written;
/// - `order_hooks.after_points:N`: the next N applications fail as a store outage,
///   after the points of the stretch were posted (a half-applied stretch);
/// - `order_hooks.poison=ORDER:N`: the first N applications touching order ORDER fail
///   with an error of the event's own, after its points were posted.
///
/// The end-to-end tests use it to prove that no order is skipped and none doubled.
#[derive(Debug, Default)]
pub struct Faults {
    pub(crate) before: AtomicI64,
    pub(crate) after_points: AtomicI64,
    poison: Option<(String, AtomicI64)>,
}

impl Faults {
    /// The faults of `FLYWHEEL_FAULTS` (none when unset or unreadable).
    pub fn from_env() -> Faults {
        match std::env::var("FLYWHEEL_FAULTS") {
            Ok(spec) => {
                tracing::warn!(faults = %spec, "FLYWHEEL_FAULTS is set: injecting test faults");
                Faults::parse(&spec)
            }
            Err(_) => Faults::default(),
        }
    }

    pub(crate) fn parse(spec: &str) -> Faults {
        let mut f = Faults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((point, n)) = part.rsplit_once(':') else {
                continue;
            };
            let Ok(n) = n.parse::<i64>() else { continue };
            match point.split_once('=') {
                Some(("order_hooks.poison", order)) => {
                    f.poison = Some((order.to_owned(), AtomicI64::new(n)));
                }
                _ if point == "order_hooks" => f.before = AtomicI64::new(n),
                _ if point == "order_hooks.after_points" => f.after_points = AtomicI64::new(n),
                _ => {}
            }
        }
        f
    }

    /// Takes one of `left`, if any are left.
    pub(crate) fn take(left: &AtomicI64) -> bool {
        left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n > 0).then(|| n - 1))
            .is_ok()
    }

    pub(crate) fn outage(left: &AtomicI64, point: &str) -> Result<(), RewardFailure> {
        if Faults::take(left) {
            return Err(RewardFailure {
                transient: true,
                message: format!("injected store fault at {point}"),
            });
        }
        Ok(())
    }

    pub(crate) fn poisoned(&self, hooks: &[Hook]) -> Result<(), RewardFailure> {
        if let Some((order, left)) = &self.poison {
            if hooks.iter().any(|h| h.order() == order) && Faults::take(left) {
                return Err(RewardFailure::item(format!("injected fault for order {order}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fault_spec() {
        let f = Faults::parse("order_hooks:3, order_hooks.after_points:2,order_hooks.poison=O-9:6,bogus");
        assert_eq!(f.before.load(Ordering::SeqCst), 3);
        assert_eq!(f.after_points.load(Ordering::SeqCst), 2);
        let (order, n) = f.poison.as_ref().unwrap();
        assert_eq!((order.as_str(), n.load(Ordering::SeqCst)), ("O-9", 6));
        assert!(Faults::outage(&f.before, "x").is_err());
        assert!(Faults::outage(&Faults::default().before, "x").is_ok());
    }
}
