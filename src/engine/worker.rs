//! The worker pool: claims queued jobs, runs them, stores the outcome, sends callbacks.
//!
//! `HUME_ACTION_WORKERS` is the number of jobs measured at once (measuring slots). Twice as
//! many jobs are claimed at once, so that jobs waiting on their downloads, which hold no slot
//! (`super::pipeline`), never keep the slots idle: a job full of slow URLs delays no other job,
//! and every run is bounded by the download and job deadlines.
//!
//! On shutdown (SIGTERM), workers stop claiming and abandon the job at hand, which goes back to
//! `QUEUED` without counting as an interruption: a job's run has no effect outside this
//! database until it is finished, so running it again is safe. On start, jobs still left
//! `IN_PROGRESS` are those of an unclean end (killed, crashed): they go back in the queue and
//! count toward the crash-loop guard ([`MAX_RUNS`]), and undelivered callbacks are re-sent.
//!
//! A job whose outcome cannot be stored (too large for the store, a store error) ends `FAILED`
//! with that reason; when even that cannot be stored, it is queued again and given up after
//! [`MAX_RUNS`] such runs, never re-run forever.
//!
//! While a job runs, its worker renews the job's lease ([`super::lease`], every third of
//! `HUME_ACTION_LEASE_SECS`). With replicas on PostgreSQL, a replica that dies leaves its jobs'
//! leases to expire; another replica's claim then takes them over (counted as an unclean end).
//! A worker whose renewal finds the lease gone (it was cut off long enough for a takeover)
//! abandons the run at once, and its store writes are refused, so a job never runs on two
//! replicas at once past a lease, and a stale worker never overwrites the new owner's work.
//!
//! Callbacks: the finishing replica delivers its job's callback (claimed in the same write as
//! the end); every replica also sweeps, at start and every [`CALLBACK_SWEEP`] (or the lease, if
//! shorter), for pending callbacks nobody holds: those of a replica that died mid-delivery.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::callback::Callbacks;
use super::give_back_memory;
use super::pipeline::Engine;
use crate::job::now_ms;
use crate::job::state::JobState;
use crate::store::{JobRecord, Store, StoreError, MAX_RUNS};

/// How long an idle worker sleeps before looking at the queue without being woken (or half the
/// lease, if shorter: jobs of a dead replica are found soon after their lease expires).
const IDLE_POLL: Duration = Duration::from_secs(5);
/// How often every replica looks for pending callbacks nobody is delivering (or the lease, if
/// shorter).
pub const CALLBACK_SWEEP: Duration = Duration::from_secs(30);
/// Jobs claimed at once per measuring slot: the others download while one measures.
pub const CLAIMS_PER_SLOT: usize = 2;

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

    /// Recovers interrupted work, then starts workers that measure `workers` jobs at once.
    pub async fn start(&self, workers: usize) -> Result<(), StoreError> {
        let measuring_slots = Arc::new(Semaphore::new(workers));
        let requeued = self.store.requeue_interrupted(now_ms()).await?;
        if requeued > 0 {
            tracing::warn!(
                requeued,
                "the last run of the server ended uncleanly; its jobs in progress are queued again"
            );
        }
        self.tasks.spawn(sweep_callbacks(
            self.store.clone(),
            self.callbacks.clone(),
            self.stop.clone(),
            self.tasks.clone(),
        ));
        let idle_poll = IDLE_POLL.min(self.store.lease() / 2);
        for worker in 0..workers * CLAIMS_PER_SLOT {
            let worker = Worker {
                id: worker,
                measuring_slots: measuring_slots.clone(),
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
                                _ = tokio::time::sleep(idle_poll) => {}
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
                        Step::Ended | Step::Abandoned => {}
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
    /// Put back in the queue at shutdown, uncounted; it runs again on the next start.
    Stopped,
    /// Its lease was lost to another replica: left to that replica, nothing stored.
    Abandoned,
}

/// Claims pending callbacks nobody holds, at start and then every [`CALLBACK_SWEEP`] (or the
/// lease, if shorter), and delivers them, until the pool stops.
async fn sweep_callbacks(
    store: Arc<dyn Store>,
    callbacks: Arc<Callbacks>,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    let every = CALLBACK_SWEEP.min(store.lease());
    while !stop.is_cancelled() {
        match store.claim_callbacks().await {
            Ok(jobs) => {
                for job in jobs {
                    let callbacks = callbacks.clone();
                    tasks.spawn(async move { callbacks.deliver(&job).await });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for pending callbacks; trying again later"),
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One worker's handles on the pool's parts.
struct Worker {
    id: usize,
    measuring_slots: Arc<Semaphore>,
    store: Arc<dyn Store>,
    engine: Arc<Engine>,
    callbacks: Arc<Callbacks>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Worker {
    /// Runs one claimed job to its end, stores the outcome and sends its callback.
    async fn run(&self, job: JobRecord) -> Step {
        if job.runs > MAX_RUNS {
            return self.give_up(job).await;
        }
        tracing::info!("job started");
        let started = std::time::Instant::now();
        // A panic in a model must not take the worker down with it.
        let run = std::panic::AssertUnwindSafe(self.engine.run(&job, &self.measuring_slots)).catch_unwind();
        let store = self.store.clone();
        let lost = super::lease::hold(store.lease(), "job", || store.renew(&job.id));
        let outcome = tokio::select! {
            outcome = run => outcome,
            _ = lost => return Step::Abandoned,
            _ = self.stop.cancelled() => {
                match self.store.requeue_stopped(&job.id).await {
                    Ok(()) => tracing::info!("shutting down: the job is queued again and runs on the next start"),
                    Err(e) => tracing::warn!(error = %e, "shutting down: the job runs again on the next start"),
                }
                return Step::Stopped;
            }
        };
        let state = match outcome {
            Ok(Ok(state)) => state,
            Ok(Err(e)) if e.is_lease_lost() => {
                tracing::warn!("another replica took the job over; abandoning this run");
                return Step::Abandoned;
            }
            // Its results could not be stored (or its uploads read): end it with that reason.
            Ok(Err(e)) => failed_with(&job, cannot_store(&e)),
            Err(_) => {
                tracing::error!("job panicked; failing it");
                failed_by_panic(&job)
            }
        };
        let state = match self.store_outcome(&job, state).await {
            Outcome::Stored(state) => state,
            Outcome::Requeued => return Step::Requeued,
            Outcome::Abandoned => return Step::Abandoned,
        };
        tracing::info!(status = state.status().as_str(), "job ended");
        crate::telemetry::metrics::job_ended(state.status().as_str(), started.elapsed());
        give_back_memory();
        if job.callback_url.is_some() {
            let job = JobRecord { state, ..job };
            let callbacks = self.callbacks.clone();
            self.tasks.spawn(async move { callbacks.deliver(&job).await });
        }
        Step::Ended
    }
}

impl Worker {
    /// Stores a job's end; when that fails, stores its failure with the reason instead.
    /// [`Outcome::Requeued`] (the run counted) when not even that can be stored;
    /// [`Outcome::Abandoned`] when another replica holds the job now.
    async fn store_outcome(&self, job: &JobRecord, state: JobState) -> Outcome {
        let e = match self.store.finish(&job.id, &state).await {
            Ok(()) => return Outcome::Stored(state),
            Err(e) if e.is_lease_lost() => return abandoned(),
            Err(e) => e,
        };
        let failed = failed_with(job, cannot_store(&e));
        match self.store.finish(&job.id, &failed).await {
            Ok(()) => Outcome::Stored(failed),
            Err(again) if again.is_lease_lost() => abandoned(),
            Err(again) => {
                tracing::error!(error = %again, "could not store the job's failure either; queued again");
                let _ = self.store.requeue(&job.id, &format!("its outcome could not be stored: {e}")).await;
                Outcome::Requeued
            }
        }
    }

    /// Fails a job that ran [`MAX_RUNS`] times without its outcome being stored.
    async fn give_up(&self, job: JobRecord) -> Step {
        let problem = job.last_problem.as_deref().unwrap_or("no reason was recorded");
        let message = format!(
            "The job ran {} times without an outcome that could be stored, so it was given up; the last problem: {problem}. \
             Start it again, perhaps with fewer or smaller sources, and tell the operator if it repeats.",
            job.runs - 1
        );
        tracing::error!(runs = job.runs - 1, problem, "giving the job up");
        let state = failed_with(&job, message);
        if let Err(e) = self.store.finish(&job.id, &state).await {
            if e.is_lease_lost() {
                abandoned();
                return Step::Abandoned;
            }
            tracing::error!(error = %e, "could not store that the job was given up; queued again");
            let _ = self.store.requeue(&job.id, problem).await;
            return Step::Requeued;
        }
        crate::telemetry::metrics::job_ended(state.status().as_str(), std::time::Duration::ZERO);
        if job.callback_url.is_some() {
            let job = JobRecord { state, ..job };
            let callbacks = self.callbacks.clone();
            self.tasks.spawn(async move { callbacks.deliver(&job).await });
        }
        Step::Ended
    }
}

/// What became of a run's outcome.
enum Outcome {
    /// Stored as this end.
    Stored(JobState),
    /// Not stored; the job is queued again.
    Requeued,
    /// Not stored: another replica holds the job now.
    Abandoned,
}

/// Logs that a run's outcome is dropped because the job's lease moved on.
fn abandoned() -> Outcome {
    tracing::warn!("another replica took the job over before its end was stored; abandoning this run");
    Outcome::Abandoned
}

/// A `FAILED` end of `job` with `message`.
fn failed_with(job: &JobRecord, message: String) -> JobState {
    let ended_ms = now_ms();
    let (created_ms, started_ms) = job.state.created_and_started(ended_ms);
    JobState::Failed { created_ms, started_ms, ended_ms, message }
}

/// Why a job whose outcome could not be stored failed.
fn cannot_store(e: &StoreError) -> String {
    tracing::error!(error = %e, "could not store the job's outcome; failing it with that reason");
    format!(
        "The job ran, but its outcome could not be stored ({e}), so it was not run again. \
         Start it again with fewer or smaller sources, and tell the operator if it repeats."
    )
}

/// The end of a job whose run panicked.
fn failed_by_panic(job: &JobRecord) -> JobState {
    let message =
        "An internal error stopped this job; it was not retried. Start it again, and report it if it repeats.";
    failed_with(job, message.to_owned())
}
