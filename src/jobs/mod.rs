//! Jobs in Hume's v0 shape: the request, the `/v0/batch/jobs` routes, and for the local engine
//! storage, the engine itself, workers, callbacks and artifacts.

pub mod artifacts;
pub mod callback;
pub mod engine;
pub mod request;
pub mod routes;
pub mod store;
pub mod v0;
pub mod worker;

/// Idempotency keys are remembered this long.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// Now, in Unix epoch milliseconds (v0's timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
