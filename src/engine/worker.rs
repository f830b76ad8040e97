//! The worker pool: claims queued jobs, runs them, stores the outcome, sends callbacks.
//!
//! On start it puts jobs a stopped process left `IN_PROGRESS` back in the queue and re-sends
//! callbacks that were never delivered. On shutdown, workers stop claiming and abandon the job
//! at hand, which stays `IN_PROGRESS` and runs again on the next start: a job's run has no
//! effect outside this database until it is finished, so running it twice is safe.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::callback::Callbacks;
use super::pipeline::Engine;
use crate::job::now_ms;
use crate::job::state::JobState;
use crate::store::{JobRecord, Store, StoreError};

/// How long an idle worker sleeps before looking at the queue without being woken.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Runs jobs in the background.
pub struct WorkerPool {
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    callbacks: Arc<Callbacks>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl WorkerPool {
    /// A pool over the given parts; nothing runs until [`WorkerPool::start`].
    pub fn new(store: Arc<dyn Store>, engine: Arc<Engine>, callbacks: Arc<Callbacks>) -> Self {
        Self {
            store,
            engine,
            callbacks,
            wake: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// Recovers interrupted work, then starts `workers` workers.
    pub async fn start(&self, workers: usize) -> Result<(), StoreError> {
        let requeued = self.store.requeue_interrupted(now_ms()).await?;
        if requeued > 0 {
            tracing::info!(requeued, "jobs interrupted by the last stop are queued again");
        }
        for job in self.store.pending_callbacks().await? {
            let callbacks = self.callbacks.clone();
            self.tasks.spawn(async move { callbacks.deliver(&job).await });
        }
        for worker in 0..workers {
            let worker = Worker {
                id: worker,
                store: self.store.clone(),
                engine: self.engine.clone(),
                callbacks: self.callbacks.clone(),
                stop: self.stop.clone(),
                tasks: self.tasks.clone(),
            };
            let wake = self.wake.clone();
            self.tasks.spawn(async move {
                while !worker.stop.is_cancelled() {
                    let job = match worker.store.claim_next(now_ms()).await {
                        Ok(Some(job)) => job,
                        Ok(None) => {
                            tokio::select! {
                                _ = wake.notified() => {}
                                _ = worker.stop.cancelled() => {}
                                _ = tokio::time::sleep(IDLE_POLL) => {}
                            }
                            continue;
                        }
                        Err(e) => {
                            tracing::error!(worker = worker.id, error = %e, "cannot claim a job; retrying");
                            tokio::time::sleep(IDLE_POLL).await;
                            continue;
                        }
                    };
                    let span = tracing::info_span!("job", job_id = %job.id, worker = worker.id);
                    match worker.run(job).instrument(span).await {
                        Step::Ended => {}
                        Step::Requeued => tokio::time::sleep(IDLE_POLL).await, // the store is failing: give it a moment
                        Step::Stopped => break,
                    }
                }
            });
        }
        Ok(())
    }

    /// Tells an idle worker that a job was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops the workers and waits (bounded) for them and for callbacks under way.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(10), self.tasks.wait()).await.is_err() {
            tracing::warn!("background work did not stop within 10 s; leaving it to the next start");
        }
    }
}

/// What became of a claimed job.
enum Step {
    /// Stored as COMPLETED or FAILED.
    Ended,
    /// Put back in the queue: it could not run or its outcome could not be stored.
    Requeued,
    /// Abandoned at shutdown; it runs again on the next start.
    Stopped,
}

/// One worker's handles on the pool's parts.
struct Worker {
    id: usize,
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    callbacks: Arc<Callbacks>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Worker {
    /// Runs one claimed job to its end, stores the outcome and sends its callback.
    async fn run(&self, job: JobRecord) -> Step {
        tracing::info!("job started");
        // A panic in a model must not take the worker down with it.
        let run = std::panic::AssertUnwindSafe(self.engine.run(&job)).catch_unwind();
        let outcome = tokio::select! {
            outcome = run => outcome,
            _ = self.stop.cancelled() => {
                tracing::info!("shutting down: the job will run again on the next start");
                return Step::Stopped;
            }
        };
        let state = match outcome {
            Ok(Ok(state)) => state,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "job could not run; queued again");
                let _ = self.store.requeue(&job.id).await;
                return Step::Requeued;
            }
            Err(_) => {
                tracing::error!("job panicked; failing it");
                failed_by_panic(&job)
            }
        };
        if let Err(e) = self.store.finish(&job.id, &state).await {
            tracing::error!(error = %e, "could not store the job's outcome; queued again");
            let _ = self.store.requeue(&job.id).await;
            return Step::Requeued;
        }
        tracing::info!(status = state.status(), "job ended");
        give_back_memory();
        if job.callback_url.is_some() {
            let job = JobRecord { state, ..job };
            let callbacks = self.callbacks.clone();
            self.tasks.spawn(async move { callbacks.deliver(&job).await });
        }
        Step::Ended
    }
}

/// The end of a job whose run panicked.
fn failed_by_panic(job: &JobRecord) -> JobState {
    let ended_ms = now_ms();
    let (created_ms, started_ms) = job.state.created_and_started(ended_ms);
    let message =
        "An internal error stopped this job; it was not retried. Start it again, and report it if it repeats."
            .to_owned();
    JobState::Failed { created_ms, started_ms, ended_ms, message }
}

/// Returns the heap a job freed to the operating system: glibc keeps freed memory of large jobs
/// for reuse otherwise, and the process would stay at its peak.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it is thread-safe and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
