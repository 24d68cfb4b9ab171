//! How much one message's rendering may cost (issue 14 §1): template rendering is bounded
//! so that no template — and no customer data fed to one — can hold up or take down the
//! server.
//!
//! Four bounds, each with a documented default (docs/channels.md, "Rendering limits"):
//! - **steps**: minijinja's fuel, one unit per instruction executed; it ends runaway loops
//!   (`{% for i in range(100000) %}{% for j in range(100000) %}…`) within milliseconds;
//! - **output**: the bytes one part (subject, HTML, text) may render to;
//! - **time** and **memory**: enforced by the render sandbox ([`crate::sandbox`]), a child
//!   process the server renders in, which is stopped when a render takes longer than the
//!   time limit and cannot allocate more than the memory limit. A single template
//!   operation can allocate a large value (`{{ "x" * 99999999 }}`) before any step or
//!   output check sees it; only a separate process bounds that.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The bounds on rendering one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenderLimits {
    /// Template instructions one part may execute (minijinja fuel).
    pub max_steps: u64,
    /// Bytes one part may render to.
    pub max_output_bytes: usize,
    /// Wall-clock milliseconds one message may take to render (sandbox only).
    pub timeout_ms: u64,
    /// Heap bytes the render sandbox process may hold (sandbox only).
    pub max_memory_bytes: u64,
}

impl Default for RenderLimits {
    /// 100,000 steps, 256 KiB a part, 1 second, 64 MiB.
    fn default() -> Self {
        RenderLimits {
            max_steps: 100_000,
            max_output_bytes: 256 * 1024,
            timeout_ms: 1_000,
            max_memory_bytes: 64 * 1024 * 1024,
        }
    }
}

impl RenderLimits {
    /// The time limit as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Which bound a render ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "limit", content = "value", rename_all = "snake_case")]
pub enum Limit {
    /// More template steps than allowed.
    Steps(u64),
    /// More output bytes than allowed.
    Output(usize),
    /// Longer than allowed (milliseconds).
    Time(u64),
    /// More memory than allowed (bytes).
    Memory(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Steps(n) => write!(
                f,
                "rendering took more than {n} template steps (a loop too long or endless?)"
            ),
            Limit::Output(n) => write!(f, "rendering produced more than {} KiB", n / 1024),
            Limit::Time(ms) => write!(f, "rendering took longer than {ms} ms"),
            Limit::Memory(n) => write!(
                f,
                "rendering needed more than {} MiB of memory",
                n / (1024 * 1024)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_from_partial_settings_keep_the_other_defaults() {
        let l: RenderLimits = serde_json::from_str(r#"{"timeout_ms": 250}"#).unwrap();
        assert_eq!(l.timeout(), Duration::from_millis(250));
        assert_eq!(l.max_steps, RenderLimits::default().max_steps);
        assert!(serde_json::from_str::<RenderLimits>(r#"{"fuel": 1}"#).is_err());
    }

    #[test]
    fn limit_messages_name_the_bound() {
        assert!(Limit::Output(256 * 1024).to_string().contains("256 KiB"));
        assert!(Limit::Memory(64 << 20).to_string().contains("64 MiB"));
        assert!(Limit::Time(1000).to_string().contains("1000 ms"));
    }
}
