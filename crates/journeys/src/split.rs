//! Random split with a holdout (issue 6 §1): which branch a user takes at a split step.
//!
//! The choice is a pure function of (journey, step, user): SHA-256 of the three, read as
//! a number in `[0, 10000)` basis points and mapped onto the branches' cumulative
//! weights. So a user re-evaluated after a restart, or on another process, lands on the
//! same branch, and different splits are independent of each other.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Basis points in a whole (weights are in basis points: 1000 = 10 %).
pub const WHOLE: u32 = 10_000;

/// A split's branches and their weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Branch names with weights in basis points, summing to [`WHOLE`]. A holdout is a
    /// branch like any other whose path sends nothing (by convention named `holdout`).
    pub branches: Vec<(String, u32)>,
}

/// A split whose weights do not add up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("split weights sum to {0} basis points; they must sum to 10000 (100 %)")]
pub struct BadWeights(pub u32);

impl Split {
    /// Checks the weights sum to 100 %.
    pub fn validate(&self) -> Result<(), BadWeights> {
        let sum = self
            .branches
            .iter()
            .map(|(_, w)| *w)
            .fold(0u32, u32::saturating_add);
        if sum == WHOLE && !self.branches.is_empty() {
            Ok(())
        } else {
            Err(BadWeights(sum))
        }
    }

    /// The branch `user` takes at `step` of `journey`.
    pub fn branch_for(&self, journey: &str, step: &str, user: &str) -> Option<&str> {
        let point = bucket(journey, step, user);
        let mut upto = 0u32;
        for (name, weight) in &self.branches {
            upto = upto.saturating_add(*weight);
            if point < upto {
                return Some(name);
            }
        }
        None
    }
}

/// The user's point in `[0, WHOLE)` for this split.
pub fn bucket(journey: &str, step: &str, user: &str) -> u32 {
    let mut h = Sha256::new();
    for part in [journey, step, user] {
        // Length-prefixed so ("ab", "c") and ("a", "bc") differ.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_le_bytes(first) % u64::from(WHOLE)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split() -> Split {
        Split {
            branches: vec![
                ("a".into(), 4_500),
                ("b".into(), 4_500),
                ("holdout".into(), 1_000),
            ],
        }
    }

    #[test]
    fn assignment_is_stable_and_close_to_the_weights() {
        let s = split();
        s.validate().unwrap();
        let mut counts = std::collections::BTreeMap::new();
        for i in 0..100_000 {
            let user = format!("u{i}");
            let b = s.branch_for("welcome", "split1", &user).unwrap();
            assert_eq!(s.branch_for("welcome", "split1", &user), Some(b));
            *counts.entry(b).or_insert(0u32) += 1;
        }
        // Binomial sd at n=100k, p=0.1 is ~95; allow 5 sd.
        let holdout = counts["holdout"];
        assert!((9_525..=10_475).contains(&holdout), "{counts:?}");
        assert!((44_200..=45_800).contains(&counts["a"]), "{counts:?}");
    }

    #[test]
    fn different_splits_are_independent() {
        let s = split();
        let same = (0..10_000)
            .filter(|i| {
                let u = format!("u{i}");
                s.branch_for("j", "split1", &u) == Some("holdout")
                    && s.branch_for("j", "split2", &u) == Some("holdout")
            })
            .count();
        // Independent: ~1 % in both holdouts (100 of 10,000), not 10 %.
        assert!((50..=160).contains(&same), "{same}");
    }

    #[test]
    fn weights_must_sum_to_whole() {
        let bad = Split {
            branches: vec![("a".into(), 5_000), ("holdout".into(), 1_000)],
        };
        assert_eq!(bad.validate(), Err(BadWeights(6_000)));
        assert_eq!(Split { branches: vec![] }.validate(), Err(BadWeights(0)));
    }
}
