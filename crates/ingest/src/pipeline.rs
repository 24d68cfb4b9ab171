//! The write pipeline: a bounded queue in front of one writer task.
//!
//! Request handlers [`Pipeline::submit`] a validated batch and wait for the answer,
//! which comes once the batch is committed: an acknowledged event is durable. The
//! writer takes whatever jobs are queued (up to `max_group_events`) and commits them
//! in one transaction (group commit), which is what makes small batches cheap. When
//! a group fails, its jobs are retried one by one so one bad batch cannot sink the
//! others. A full queue is refused at once ([`Error::Overloaded`], HTTP 503) rather
//! than buffered without bound. [`Pipeline::shutdown`] stops taking work, drains the
//! queue and waits for the last commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flywheel_store::{ApplyOutcome, NewEvent, Store};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::{Error, Result};

/// Settings of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// Batches that may wait in the queue before submitters get `Overloaded`.
    pub queue_capacity: usize,
    /// Most events committed in one transaction.
    pub max_group_events: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_capacity: 4096,
            max_group_events: 20_000,
        }
    }
}

/// Told about every committed batch, after the commit and before the submitters are
/// answered (so a reader that waits for the answer sees its effect queued). Implementations
/// must not block: hand the batch to a worker.
pub trait CommitObserver: Send + Sync {
    /// `events[range]` were committed with `outcome` (per event of the range).
    fn committed(&self, events: &Arc<Vec<NewEvent>>, range: std::ops::Range<usize>, outcome: &ApplyOutcome);
}

struct Job {
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<ApplyOutcome>>,
}

/// Counters of the pipeline, for `/metrics`.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Events stored.
    pub inserted: AtomicU64,
    /// Events dropped as duplicates.
    pub duplicates: AtomicU64,
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Batches refused because the queue was full.
    pub overloaded: AtomicU64,
    /// Server-only traits (contact details, tier, predicted CLV) dropped from client-key
    /// messages (the trust boundary).
    pub client_traits_dropped: AtomicU64,
    /// Orders, refunds and cancellations from client keys stored as plain events only.
    pub client_commerce_ignored: AtomicU64,
}

impl PipelineStats {
    /// Counts what the trust boundary withheld from one accepted request.
    pub fn record_withheld(&self, withheld: crate::trust::Withheld) {
        self.client_traits_dropped
            .fetch_add(withheld.traits as u64, Ordering::Relaxed);
        self.client_commerce_ignored
            .fetch_add(withheld.commerce_facts as u64, Ordering::Relaxed);
    }

    fn record(&self, outcome: &ApplyOutcome) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.inserted.fetch_add(outcome.inserted, Ordering::Relaxed);
        self.duplicates.fetch_add(outcome.duplicates, Ordering::Relaxed);
    }
}

/// Handle to the pipeline; cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    sender: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    stats: Arc<PipelineStats>,
}

impl Pipeline {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Store, config: PipelineConfig) -> Pipeline {
        Pipeline::start_observed(store, config, None)
    }

    /// Starts the writer task; `observer` hears of every committed batch.
    pub fn start_observed(
        store: Store,
        config: PipelineConfig,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Pipeline {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let stats = Arc::new(PipelineStats::default());
        let writer = tokio::spawn(run_writer(
            store,
            rx,
            config.max_group_events.max(1),
            stats.clone(),
            observer,
        ));
        Pipeline {
            sender: Arc::new(Mutex::new(Some(tx))),
            writer: Arc::new(Mutex::new(Some(writer))),
            stats,
        }
    }

    /// The pipeline's counters.
    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// Queues a batch and waits until it is committed.
    pub async fn submit(&self, events: Vec<NewEvent>) -> Result<ApplyOutcome> {
        if events.is_empty() {
            return Ok(ApplyOutcome::default());
        }
        let (reply, answer) = oneshot::channel();
        {
            let guard = self.sender.lock().await;
            let Some(tx) = guard.as_ref() else {
                return Err(Error::ShuttingDown);
            };
            tx.try_send(Job { events, reply }).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    self.stats.overloaded.fetch_add(1, Ordering::Relaxed);
                    Error::Overloaded
                }
                mpsc::error::TrySendError::Closed(_) => Error::ShuttingDown,
            })?;
        }
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Queues a batch, waiting for room instead of failing when the queue is full
    /// (for bulk import, which is its own back-pressure).
    pub async fn submit_waiting(&self, events: Vec<NewEvent>) -> Result<ApplyOutcome> {
        if events.is_empty() {
            return Ok(ApplyOutcome::default());
        }
        let (reply, answer) = oneshot::channel();
        let tx = self.sender.lock().await.clone().ok_or(Error::ShuttingDown)?;
        tx.send(Job { events, reply })
            .await
            .map_err(|_| Error::ShuttingDown)?;
        answer.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Stops accepting batches, commits everything queued, and waits for the writer.
    pub async fn shutdown(&self) {
        self.sender.lock().await.take();
        if let Some(w) = self.writer.lock().await.take() {
            if let Err(e) = w.await {
                tracing::error!(error = %e, "ingest writer ended abnormally");
            }
        }
    }
}

async fn run_writer(
    store: Store,
    mut rx: mpsc::Receiver<Job>,
    max_group: usize,
    stats: Arc<PipelineStats>,
    observer: Option<Arc<dyn CommitObserver>>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut size = jobs[0].events.len();
        while size < max_group {
            match rx.try_recv() {
                Ok(j) => {
                    size += j.events.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        commit_group(&store, jobs, &stats, observer.as_deref()).await;
    }
    tracing::debug!("ingest writer drained");
}

async fn commit_group(
    store: &Store,
    jobs: Vec<Job>,
    stats: &PipelineStats,
    observer: Option<&dyn CommitObserver>,
) {
    let mut all = Vec::with_capacity(jobs.iter().map(|j| j.events.len()).sum());
    let mut waiting = Vec::with_capacity(jobs.len());
    for job in jobs {
        let range = all.len()..all.len() + job.events.len();
        all.extend(job.events);
        waiting.push((job.reply, range));
    }
    let all = Arc::new(all);
    let len = all.len();
    match store.apply_shared(all.clone(), 0..len).await {
        Ok(outcome) => {
            stats.record(&outcome);
            if let Some(o) = observer {
                o.committed(&all, 0..len, &outcome);
            }
            for (reply, range) in waiting {
                let _ = reply.send(Ok(outcome.slice(range)));
            }
        }
        Err(e) if waiting.len() > 1 => {
            tracing::warn!(error = %e, jobs = waiting.len(), "group commit failed; retrying batches one by one");
            for (reply, range) in waiting {
                let result = store
                    .apply_shared(all.clone(), range.clone())
                    .await
                    .map_err(Error::from);
                if let Ok(o) = &result {
                    stats.record(o);
                    if let Some(obs) = observer {
                        obs.committed(&all, range, o);
                    }
                }
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "commit failed");
            for (reply, _) in waiting {
                let _ = reply.send(Err(Error::Store(flywheel_store::Error::Database(e.to_string()))));
            }
        }
    }
}
