//! The numbers an operator watches, as `GET /metrics` serves them (Prometheus text format).
//!
//! Why a module of its own: the code that does the work (HTTP layer, upstream client, workers,
//! pipeline, callbacks) calls one function here per event, so each of those files carries one
//! line of instrumentation and every series' name, labels and buckets live in one place.
//!
//! The recorder is the process's global `metrics` recorder, installed once ([`install`]):
//! several apps in one process (the tests) share it. No exporter listener runs; the
//! `/metrics` handler renders the [`PrometheusHandle`].
//!
//! Labels are closed sets only: route templates (never the raw path or query), methods, status
//! codes, API versions, attempt numbers, model names, job states, outcomes. No API key, token,
//! URL, query string or limiter key (a hash per caller) is ever a label.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::job::status::JobStatus;

/// HTTP requests answered, by `method`, `route` (template) and `status`.
pub const HTTP_REQUESTS: &str = "hume_action_http_requests_total";
/// Time to answer an HTTP request (until the response head), by `method`, `route`, `status`.
pub const HTTP_DURATION: &str = "hume_action_http_request_duration_seconds";
/// Requests sent to Hume, by `api` (`v0`, `v1`), `status` (or `error`) and `attempt`.
pub const UPSTREAM_REQUESTS: &str = "hume_action_upstream_requests_total";
/// Time of one request to Hume (send to whole answer read), by `api`.
pub const UPSTREAM_DURATION: &str = "hume_action_upstream_request_duration_seconds";
/// Calls waiting for the rate limiter right now, by `api`.
pub const LIMITER_QUEUE: &str = "hume_action_limiter_queue_depth";
/// Time a call waited for the rate limiter before it could be sent, by `api`.
pub const LIMITER_WAIT: &str = "hume_action_limiter_wait_seconds";
/// Calls the rate limiter refused (its queue too long), by `api`.
pub const LIMITER_REFUSED: &str = "hume_action_limiter_refused_total";
/// Jobs in each state (`status`), counted in the store at scrape time.
pub const JOBS: &str = "hume_action_jobs";
/// Whether the store answered the job count at the last scrape (1) or not (0).
pub const JOBS_COUNTED: &str = "hume_action_jobs_counted";
/// Time a job's run took, claim to stored end, by final `status`.
pub const JOB_DURATION: &str = "hume_action_job_duration_seconds";
/// Time an analyzer took on one file, by `model` and `outcome` (`ok`, `error`).
pub const ANALYSIS_DURATION: &str = "hume_action_analysis_duration_seconds";
/// Job-end callbacks, by `outcome` (`delivered`, `failed`).
pub const CALLBACKS: &str = "hume_action_callbacks_total";
/// Gauge: requests waiting now for a job to end (`GET /v1/jobs/{id}/summary?wait=`, `wait_seconds`).
pub const SUMMARY_WAITS: &str = "hume_action_summary_waits";

/// The route label of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

const FAST_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const WAIT_BUCKETS: [f64; 12] = [0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
const JOB_BUCKETS: [f64; 12] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0];
const ANALYSIS_BUCKETS: [f64; 12] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder, once (later calls return the same handle), describes every
/// series, and starts the thread that keeps histogram samples from piling up between scrapes.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        for (name, buckets) in [
            (HTTP_DURATION, &FAST_BUCKETS),
            (UPSTREAM_DURATION, &FAST_BUCKETS),
            (LIMITER_WAIT, &WAIT_BUCKETS),
            (JOB_DURATION, &JOB_BUCKETS),
            (ANALYSIS_DURATION, &ANALYSIS_BUCKETS),
        ] {
            builder =
                builder.set_buckets_for_metric(Matcher::Full(name.into()), buckets).expect("buckets are not empty");
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder was installed first; GET /metrics shows no series");
        }
        describe();
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            upkeep.run_upkeep();
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no metrics upkeep thread; histograms are folded at each scrape only");
        }
        handle
    })
}

/// Every series in Prometheus text format.
pub fn render() -> String {
    install().render()
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by method, route template and status.");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "Time to answer an HTTP request (until the response head).");
    describe_counter!(UPSTREAM_REQUESTS, "Requests sent to Hume, by api (v0, v1), status (or error) and attempt.");
    describe_histogram!(UPSTREAM_DURATION, Unit::Seconds, "Time of one request to Hume, until its answer is read.");
    describe_gauge!(LIMITER_QUEUE, "Calls to Hume waiting for the rate limiter now, by api.");
    describe_histogram!(LIMITER_WAIT, Unit::Seconds, "Time a call to Hume waited for the rate limiter, by api.");
    describe_counter!(LIMITER_REFUSED, "Calls to Hume the rate limiter refused (queue too long), by api.");
    describe_gauge!(JOBS, "Jobs in each state, counted in the job store at scrape time (every replica's).");
    describe_gauge!(JOBS_COUNTED, "1 when the job store answered the count at this scrape, else 0.");
    describe_histogram!(JOB_DURATION, Unit::Seconds, "Time a job's run took from claim to stored end, by status.");
    describe_histogram!(ANALYSIS_DURATION, Unit::Seconds, "Time an analyzer took on one file, by model and outcome.");
    describe_counter!(CALLBACKS, "Job-end callbacks, by outcome (delivered, failed after retries).");
    describe_gauge!(SUMMARY_WAITS, "Requests waiting now for a job to end (summary wait, action wait_seconds).");
}

/// One HTTP request answered. `route` is the matched route template, `None` when none matched.
pub fn http_request(method: &axum::http::Method, route: Option<&str>, status: u16, elapsed: Duration) {
    let method = match method.as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "other",
    };
    let route = route.unwrap_or(UNMATCHED_ROUTE).to_owned();
    let labels = [("method", method.to_owned()), ("route", route), ("status", status.to_string())];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(elapsed);
}

tokio::task_local! {
    /// The attempt number of the upstream call running in this task.
    static ATTEMPT: u32;
}

/// Runs one attempt of an upstream call, numbered `n` (1 for the first) for the requests it sends.
pub async fn attempt<F: Future>(n: u32, attempt: F) -> F::Output {
    ATTEMPT.scope(n, attempt).await
}

/// The API a Hume path belongs to: `v0` or `v1` (its first segment), else `other`.
fn api_of(path: &str) -> &'static str {
    match path.trim_start_matches('/').split('/').next() {
        Some("v0") => "v0",
        Some("v1") => "v1",
        _ => "other",
    }
}

/// One request sent to Hume at `path` (only its API is kept): its HTTP status, or `None` when
/// no answer came (transport failure); the attempt is the one [`attempt`] runs, else 1.
pub fn upstream_request(path: &str, status: Option<u16>, elapsed: Duration) {
    let api = api_of(path);
    let attempt = ATTEMPT.try_with(|n| *n).unwrap_or(1);
    let attempt = if attempt > 9 { "10+".to_owned() } else { attempt.to_string() };
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    counter!(UPSTREAM_REQUESTS, "api" => api, "status" => status, "attempt" => attempt).increment(1);
    histogram!(UPSTREAM_DURATION, "api" => api).record(elapsed);
}

/// A call waiting for the rate limiter: counted in the queue depth until it is dropped.
pub struct LimiterWait {
    api: &'static str,
    since: Instant,
}

impl LimiterWait {
    /// A call to Hume at `path` starts waiting for its rate limit.
    pub fn start(path: &str) -> Self {
        let api = api_of(path);
        gauge!(LIMITER_QUEUE, "api" => api).increment(1.0);
        Self { api, since: Instant::now() }
    }

    /// The limiter answered: a permit (`true`; its wait is recorded) or a refusal.
    pub fn done(self, permitted: bool) {
        if permitted {
            histogram!(LIMITER_WAIT, "api" => self.api).record(self.since.elapsed());
        } else {
            counter!(LIMITER_REFUSED, "api" => self.api).increment(1);
        }
    }
}

impl Drop for LimiterWait {
    fn drop(&mut self) {
        gauge!(LIMITER_QUEUE, "api" => self.api).decrement(1.0);
    }
}

/// The jobs per state, as the store counted them (`None`: the store did not answer).
pub fn jobs_by_status(counts: Option<&[(JobStatus, i64)]>) {
    let Some(counts) = counts else {
        gauge!(JOBS_COUNTED).set(0.0);
        return;
    };
    for status in JobStatus::ALL {
        let n = counts.iter().filter(|(s, _)| *s == status).map(|(_, n)| *n).sum::<i64>();
        gauge!(JOBS, "status" => status.as_str()).set(n as f64);
    }
    gauge!(JOBS_COUNTED).set(1.0);
}

/// One more request (`1.0`) or one fewer (`-1.0`) waits for a job's end.
pub fn summary_waits(change: f64) {
    gauge!(SUMMARY_WAITS).increment(change);
}

/// A job's run ended with `status` after `elapsed`.
pub fn job_ended(status: &'static str, elapsed: Duration) {
    histogram!(JOB_DURATION, "status" => status).record(elapsed);
}

/// Runs one analyzer on one file for `models` (their v0 names) and records its time under each
/// of them (an analyzer serving several models in one call, as Hume's voice API does prosody and
/// burst, records that call's time for each). Names, not `job::models::Model`: telemetry stays a
/// leaf that the upstream client can call without an import cycle.
pub async fn analysis<T, E>(models: &[&'static str], run: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    let since = Instant::now();
    let result = run.await;
    let (elapsed, outcome) = (since.elapsed(), if result.is_ok() { "ok" } else { "error" });
    for model in models {
        histogram!(ANALYSIS_DURATION, "model" => *model, "outcome" => outcome).record(elapsed);
    }
    result
}

/// A job-end callback was delivered, or failed for good.
pub fn callback(delivered: bool) {
    counter!(CALLBACKS, "outcome" => if delivered { "delivered" } else { "failed" }).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_label_is_the_first_path_segment_and_nothing_else() {
        assert_eq!(api_of("/v0/batch/jobs"), "v0");
        assert_eq!(api_of("/v0/batch/jobs/abc/predictions"), "v0");
        assert_eq!(api_of("/v1/expression/audio/file"), "v1");
        assert_eq!(api_of("v1/x"), "v1");
        assert_eq!(api_of("/secret-key/v0"), "other");
    }
}
