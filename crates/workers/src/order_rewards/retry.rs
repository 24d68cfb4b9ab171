//! Applying a dead-lettered order-rewards event again on request (admin API and CLI):
//! success removes it from the list, a failure keeps it with one more attempt.

use flywheel_store::dead_letters;
use flywheel_store::order_hooks;
use flywheel_store::Store;

use super::apply::{OrderRewards, RewardFailure, WORKFLOW};

/// What retrying a dead letter came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// Applied: removed from the list.
    Applied,
    /// Failed again: kept, with one more attempt.
    Failed {
        /// Why it failed.
        error: String,
        /// Attempts so far.
        attempts: i64,
    },
    /// Resumed: it left the list and its workflow does it again in the background (a
    /// journey step; listed again if it keeps failing).
    Resumed,
    /// No dead letter has this id.
    NotFound,
}

/// Applies dead letter `id` again now: success removes it from the list, a failure
/// keeps it with one more attempt. A store failure reading or writing the list is an
/// `Err`.
pub async fn retry_dead_letter(
    store: &Store,
    rewards: &OrderRewards,
    id: i64,
) -> Result<Retried, flywheel_store::Error> {
    let Some(dead) = store.read_with(move |c| dead_letters::get(c, id)).await? else {
        return Ok(Retried::NotFound);
    };
    let seq = dead.seq.unwrap_or_default();
    let event = store.read_with(move |c| order_hooks::event_at(c, seq)).await?;
    let outcome = match (dead.workflow.as_str(), event) {
        (WORKFLOW, Some(e)) => rewards.apply(&[e]).await.map(|_| ()),
        (WORKFLOW, None) => Err(RewardFailure::item(format!("event {seq} is no longer stored"))),
        (other, _) => Err(RewardFailure::item(format!("unknown workflow {other:?}"))),
    };
    match outcome {
        Ok(()) => {
            store.write_with(move |c| dead_letters::remove(c, id)).await?;
            tracing::info!(id, seq, workflow = %dead.workflow, "dead letter applied on retry");
            Ok(Retried::Applied)
        }
        Err(f) => {
            let (error, at) = (f.message.clone(), chrono::Utc::now().timestamp_millis());
            store
                .write_with(move |c| dead_letters::failed_again(c, id, &error, at))
                .await?;
            tracing::warn!(id, seq, error = %f.message, "dead letter failed again on retry");
            Ok(Retried::Failed {
                error: f.message,
                attempts: dead.attempts + 1,
            })
        }
    }
}
