//! Where an event goes: partition `fnv1a64(profile) mod P` (partition 0 for events about
//! no profile) and the subject `<prefix>.<partition>.<event subject>`. The hash is fixed
//! here, not `std`'s (whose output may change between Rust releases), because every
//! process of a deployment, of every version, must put one profile in one partition.

use flywheel_core::bus::DomainEvent;

/// The partition of an event about `profile` among `partitions` (0 when there is no
/// profile). `partitions` of 0 is treated as 1.
pub fn partition_of(profile: Option<&str>, partitions: u32) -> u32 {
    match profile {
        None => 0,
        Some(p) => (fnv1a64(p.as_bytes()) % u64::from(partitions.max(1))) as u32,
    }
}

/// FNV-1a, 64 bits: small, stable, and spreads short ids well enough for partitioning.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The NATS subject an event is published on.
pub(crate) fn subject_of(prefix: &str, event: &DomainEvent, partitions: u32) -> String {
    let p = partition_of(event.profile(), partitions);
    format!("{prefix}.{p}.{}", event.subject())
}

/// The partition token of a subject published by [`subject_of`].
pub(crate) fn partition_in(subject: &str) -> Option<u32> {
    subject.split('.').nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flywheel_core::bus::{LogAdvanced, Membership, TransitionCause};

    #[test]
    fn the_hash_is_the_published_fnv1a() {
        // Reference values of FNV-1a 64 (a change here moves every profile's partition).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn one_profile_one_partition_and_profiles_spread() {
        let p = partition_of(Some("u-42"), 16);
        assert!(p < 16);
        assert_eq!(partition_of(Some("u-42"), 16), p);
        assert_eq!(partition_of(None, 16), 0);
        assert_eq!(partition_of(Some("u-42"), 1), 0);
        let mut seen = [0u32; 16];
        for i in 0..1600 {
            seen[partition_of(Some(&format!("user{i}")), 16) as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
    }

    #[test]
    fn subjects_carry_prefix_partition_and_event_subject() {
        let m = Membership {
            seq: 1,
            name: "vip".into(),
            profile_id: "张三".into(),
            at: 0,
            cause: TransitionCause::Event,
        };
        let e = DomainEvent::SegmentEntered(m);
        let p = partition_of(Some("张三"), 8);
        let s = subject_of("FW", &e, 8);
        assert_eq!(s, format!("FW.{p}.segment.entered"));
        assert_eq!(partition_in(&s), Some(p));
        let log = DomainEvent::LogAdvanced(LogAdvanced { seq: 3 });
        assert_eq!(subject_of("FW", &log, 8), "FW.0.log.advanced");
    }
}
