//! The one shutdown signal: every service, the ingest-free loops of the binary and
//! anything else that runs until the process stops watch the same [`Shutdown`]; one
//! call of [`ShutdownTrigger::trigger`] stops them all.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// Sends the shutdown signal (held by whoever stops the process).
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Observes the shutdown signal; cheap to clone, one per loop.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new signal, not yet sent: the trigger and its first observer.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Sends the signal; every observer sees it, also those made later.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Another observer of this signal.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Whether the signal was sent.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once the signal is sent (at once if it was; also when the trigger is
    /// dropped, which only happens as the process ends).
    pub async fn triggered(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Sleeps `d`; returns `false` when the signal cut the sleep short.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.triggered() => false,
        }
    }

    /// Runs `f` until it completes or the signal is sent; `None` when the signal won.
    pub async fn or_stop<T>(&self, f: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            v = f => Some(v),
            () = self.triggered() => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_observer_sees_the_signal() {
        let (trigger, first) = channel();
        let later = trigger.subscribe();
        assert!(!first.is_triggered());
        trigger.trigger();
        first.triggered().await;
        later.triggered().await;
        assert!(later.is_triggered());
        assert!(!first.sleep(Duration::from_secs(3600)).await);
    }
}
