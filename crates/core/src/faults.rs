//! Test-only fault injection: named points where a workflow fails on purpose a given
//! number of times, so end-to-end tests can prove that a failure there loses and doubles
//! nothing.
//!
//! The binary reads the list once at start from `FLYWHEEL_FAULTS` (comma-separated
//! `POINT:COUNT`, documented in docs/operations.md) and arms each component's [`Fault`];
//! in production nothing is armed and [`Fault::take`] is one atomic load.

use std::sync::atomic::{AtomicI64, Ordering};

/// A countdown of injected failures at one point (disarmed by default).
#[derive(Debug, Default)]
pub struct Fault {
    left: AtomicI64,
}

impl Fault {
    /// Arms the point to fail `count` more times.
    pub fn arm(&self, count: i64) {
        self.left.store(count.max(0), Ordering::SeqCst);
    }

    /// Whether this attempt fails (taking one of the failures left).
    pub fn take(&self) -> bool {
        self.left.load(Ordering::Relaxed) > 0
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n > 0).then(|| n - 1))
                .is_ok()
    }
}

/// The count `spec` gives `point` (`"a:3, b.c:2"` gives `b.c` 2), or 0.
pub fn count(spec: &str, point: &str) -> i64 {
    spec.split(',')
        .filter_map(|part| part.trim().rsplit_once(':'))
        .filter(|(p, _)| *p == point)
        .filter_map(|(_, n)| n.parse::<i64>().ok())
        .next_back()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_fails_as_often_as_armed() {
        let spec = "order_hooks:3, transitions.append:2,bogus";
        assert_eq!(count(spec, "transitions.append"), 2);
        assert_eq!(count(spec, "order_hooks"), 3);
        assert_eq!(count(spec, "transitions"), 0);
        let f = Fault::default();
        assert!(!f.take());
        f.arm(count(spec, "transitions.append"));
        assert!(f.take() && f.take());
        assert!(!f.take());
    }
}
