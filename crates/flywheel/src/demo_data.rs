//! PLACEHOLDER so the crate compiles until the real generator lands (helper is writing this file; overwrite freely).
/// Options.
pub struct DemoOptions {
    /// Users.
    pub users: usize,
    /// Seed.
    pub seed: u64,
    /// End.
    pub end: chrono::DateTime<chrono::Utc>,
}
/// Generates nothing yet.
pub fn generate(_opts: &DemoOptions) -> Vec<serde_json::Value> {
    Vec::new()
}
