//! `Idempotency-Key`: a builder that retries a run must not start a second job.
//!
//! Calls with the same key (per API key) are serialised in-process; the first one's job id is
//! recorded in an [`IdempotencyStore`] together with a hash of the normalised request. A replay
//! with the same request gets the same job id and nothing is sent upstream; the same key with a
//! different request is refused. A failed call records nothing, so it can be retried.
//!
//! Across replicas the in-process serialisation is not enough. The engine backends record the
//! key in the same transaction as the job, under a unique constraint (`crate::store`). The
//! `hume-batch` backend cannot (its job is made upstream), so with a shared store it *claims the
//! key first* ([`Idempotency::claiming_first`]): one replica's claim wins, it starts the job and
//! fills in the job id; a concurrent call elsewhere waits (bounded) for that id. A claim whose
//! call failed is released; one whose replica died is taken over after [`STALE_CLAIM_MS`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::error::{ApiError, ErrorCode, FieldError, StoreError};
use crate::job::JobId;

/// What a key was first used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    pub job_id: JobId,
}

/// A key's first use, handed to the start so that a store able to record it in the same
/// transaction as the job does (the local engine), leaving no window for a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
}

/// What a start made: the job, and whether its key was already recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub job_id: JobId,
    /// The backend committed the claim together with the job; no separate record is needed.
    pub recorded: bool,
}

impl Started {
    /// A job whose key still has to be recorded.
    pub fn unrecorded(job_id: JobId) -> Self {
        Self { job_id, recorded: false }
    }
}

/// A claim on a key whose call has not recorded its job yet is taken over after this long (its
/// replica presumably died mid-call).
pub const STALE_CLAIM_MS: i64 = 10 * 60 * 1000;

/// How long a call waits for another replica's call with the same key to record its job.
const PENDING_WAIT: Duration = Duration::from_secs(60);

/// What an atomic claim of a key found ([`IdempotencyStore::claim`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key is this call's: start the job, then [`IdempotencyStore::put`] its id (or
    /// [`IdempotencyStore::release`] the claim if the start failed).
    Claimed,
    /// The key's job is recorded.
    Recorded(IdempotencyRecord),
    /// Another call holds the key and has not recorded its job yet.
    Pending { request_hash: String },
}

/// Where idempotency records are kept.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// The live record of `key` within `scope`, if any.
    async fn get(&self, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Records `key`'s first use (filling in this call's claim, if it claimed first).
    async fn put(&self, scope: &str, key: &str, record: IdempotencyRecord) -> Result<(), StoreError>;
    /// Claims `key` atomically among every process sharing the store; `None` when this store
    /// lives in one process (its in-process serialisation suffices).
    async fn claim(&self, _scope: &str, _key: &str, _request_hash: &str) -> Result<Option<KeyClaim>, StoreError> {
        Ok(None)
    }
    /// Gives up this call's claim on `key` (its start failed), so the key can be used again.
    async fn release(&self, _scope: &str, _key: &str, _request_hash: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// In-memory records that expire after a time to live (24 h in production).
pub struct MemoryIdempotencyStore {
    ttl: Duration,
    records: Mutex<HashMap<(String, String), (Instant, IdempotencyRecord)>>,
}

impl MemoryIdempotencyStore {
    /// A store whose records live for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, records: Mutex::default() }
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for MemoryIdempotencyStore {
    async fn get(&self, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let records = self.records.lock().expect("idempotency map poisoned");
        let live = records.get(&(scope.to_owned(), key.to_owned())).filter(|(at, _)| at.elapsed() < self.ttl);
        Ok(live.map(|(_, r)| r.clone()))
    }

    async fn put(&self, scope: &str, key: &str, record: IdempotencyRecord) -> Result<(), StoreError> {
        let mut records = self.records.lock().expect("idempotency map poisoned");
        records.retain(|_, (at, _)| at.elapsed() < self.ttl);
        records.insert((scope.to_owned(), key.to_owned()), (Instant::now(), record));
        Ok(())
    }
}

/// A key within its scope: (scope, key).
type Slot = (String, String);

/// The idempotent way to start a job.
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    in_progress: Mutex<HashMap<Slot, Arc<tokio::sync::Mutex<()>>>>,
    /// Claim each key in the store before starting its job (backends that cannot record the
    /// key with the job, on a store shared by replicas).
    claim_first: bool,
}

impl Idempotency {
    /// Idempotency over the given store.
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self { store, in_progress: Mutex::default(), claim_first: false }
    }

    /// Idempotency over a store shared by replicas, for a backend that cannot record the key
    /// together with its job (`hume-batch`): each key is claimed in the store before its job is
    /// started.
    pub fn claiming_first(store: Arc<dyn IdempotencyStore>) -> Self {
        Self { claim_first: true, ..Self::new(store) }
    }

    /// Claims the key in the store (waiting, bounded, while another replica's call holds it);
    /// `Ok(None)` once this call may start the job, else the answer.
    async fn claim_in_store(&self, slot: &Slot, request_hash: &str) -> Result<Option<JobId>, ApiError> {
        let deadline = Instant::now() + PENDING_WAIT;
        loop {
            match self.store.claim(&slot.0, &slot.1, request_hash).await? {
                None | Some(KeyClaim::Claimed) => return Ok(None),
                Some(KeyClaim::Recorded(record)) if record.request_hash == request_hash => {
                    return Ok(Some(record.job_id))
                }
                Some(KeyClaim::Recorded(_)) => return Err(ApiError::IdempotencyConflict),
                Some(KeyClaim::Pending { request_hash: theirs }) if theirs != request_hash => {
                    return Err(ApiError::IdempotencyConflict)
                }
                Some(KeyClaim::Pending { .. }) if Instant::now() >= deadline => return Err(StoreError::KeyInUse.into()),
                // Polling the shared store: the other replica cannot notify this one.
                Some(KeyClaim::Pending { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Runs `start` once per (`scope`, `key`); replays get the first job id back.
    ///
    /// The start and its record run in their own task, so a caller that hangs up midway
    /// (a builder's timeout) cannot leave a started job without its record.
    pub async fn run<F, Fut>(
        self: &Arc<Self>,
        scope: &str,
        key: Option<&IdempotencyKey>,
        request: &serde_json::Value,
        start: F,
    ) -> Result<JobId, ApiError>
    where
        F: FnOnce(Option<IdempotencyClaim>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Started, ApiError>> + Send + 'static,
    {
        let Some(key) = key else { return start(None).await.map(|s| s.job_id) };
        let request_hash = hex::encode(Sha256::digest(serde_json::to_vec(request).expect("JSON serialises")));
        let slot = (scope.to_owned(), key.0.clone());
        let this = self.clone();
        let task = tokio::spawn(async move {
            let lock =
                this.in_progress.lock().expect("idempotency locks poisoned").entry(slot.clone()).or_default().clone();
            let outcome = async {
                let _serialised = lock.lock().await;
                if let Some(record) = this.store.get(&slot.0, &slot.1).await? {
                    return if record.request_hash == request_hash {
                        Ok(record.job_id)
                    } else {
                        Err(ApiError::IdempotencyConflict)
                    };
                }
                if this.claim_first {
                    if let Some(job_id) = this.claim_in_store(&slot, &request_hash).await? {
                        return Ok(job_id);
                    }
                }
                let claim =
                    IdempotencyClaim { scope: slot.0.clone(), key: slot.1.clone(), request_hash: request_hash.clone() };
                let started = start(Some(claim)).await;
                if started.is_err() && this.claim_first {
                    if let Err(e) = this.store.release(&slot.0, &slot.1, &request_hash).await {
                        tracing::warn!(error = %e, "could not release the Idempotency-Key's claim; it frees itself later");
                    }
                }
                let Started { job_id, recorded } = started?;
                if !recorded {
                    this.store
                        .put(&slot.0, &slot.1, IdempotencyRecord { request_hash, job_id: job_id.clone() })
                        .await?;
                }
                Ok(job_id)
            }
            .await;
            let mut locks = this.in_progress.lock().expect("idempotency locks poisoned");
            if Arc::strong_count(&lock) == 2 {
                locks.remove(&slot); // nobody else is waiting on this key
            }
            outcome
        });
        task.await.map_err(|e| ApiError::internal("the idempotent start task failed", e))?
    }
}

/// A validated `Idempotency-Key` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl TryFrom<&str> for IdempotencyKey {
    type Error = FieldError;

    fn try_from(value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        if value.is_empty() || value.len() > 255 || !value.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(FieldError::new(
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key",
                "The Idempotency-Key header must be 1 to 255 printable ASCII characters, e.g. the workflow run id.",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_calls_with_one_key_start_one_job() {
        let idem = Arc::new(Idempotency::new(Arc::new(MemoryIdempotencyStore::new(Duration::from_secs(60)))));
        let starts = Arc::new(AtomicUsize::new(0));
        let key = IdempotencyKey::try_from("run-1").unwrap();
        let calls = (0..8).map(|_| {
            let (idem, starts, key) = (idem.clone(), starts.clone(), key.clone());
            tokio::spawn(async move {
                idem.run("scope", Some(&key), &json!({"a": 1}), |_| async move {
                    let n = starts.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Ok(Started::unrecorded(format!("job-{n}").into()))
                })
                .await
            })
        });
        let ids: Vec<JobId> = futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert!(ids.iter().all(|id| id == "job-0"));
        let other =
            idem.run("scope", Some(&key), &json!({"a": 2}), |_| async { Ok(Started::unrecorded("x".into())) }).await;
        assert!(matches!(other, Err(ApiError::IdempotencyConflict)));
        let other_scope =
            idem.run("scope-2", Some(&key), &json!({"a": 2}), |_| async { Ok(Started::unrecorded("y".into())) }).await;
        assert_eq!(other_scope.unwrap(), "y");
        assert!(idem.in_progress.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_call_records_nothing() {
        let idem = Arc::new(Idempotency::new(Arc::new(MemoryIdempotencyStore::new(Duration::from_secs(60)))));
        let key = IdempotencyKey::try_from("k").unwrap();
        let failed = idem.run("s", Some(&key), &json!({}), |_| async { Err(ApiError::internal("boom", "test")) }).await;
        assert!(failed.is_err());
        assert_eq!(
            idem.run("s", Some(&key), &json!({}), |_| async { Ok(Started::unrecorded("j".into())) }).await.unwrap(),
            "j"
        );
    }

    #[tokio::test]
    async fn a_caller_that_hangs_up_still_gets_its_job_recorded() {
        let idem = Arc::new(Idempotency::new(Arc::new(MemoryIdempotencyStore::new(Duration::from_secs(60)))));
        let key = IdempotencyKey::try_from("k").unwrap();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (started, has_started) = tokio::sync::oneshot::channel::<()>();
        let call = {
            let (idem, key) = (idem.clone(), key.clone());
            tokio::spawn(async move {
                idem.run("s", Some(&key), &json!({}), |_| async move {
                    started.send(()).unwrap();
                    released.await.unwrap();
                    Ok(Started::unrecorded("first".into()))
                })
                .await
            })
        };
        has_started.await.unwrap();
        call.abort(); // the builder timed out and hung up
        release.send(()).unwrap();
        let replay = idem
            .run("s", Some(&key), &json!({}), |_| async { Ok(Started::unrecorded("second".into())) })
            .await
            .unwrap();
        assert_eq!(replay, "first");
    }

    #[tokio::test(start_paused = true)]
    async fn records_expire() {
        let store = MemoryIdempotencyStore::new(Duration::from_secs(24 * 3600));
        let record = IdempotencyRecord { request_hash: "h".into(), job_id: "j".into() };
        store.put("s", "k", record.clone()).await.unwrap();
        assert_eq!(store.get("s", "k").await.unwrap(), Some(record));
        tokio::time::advance(Duration::from_secs(24 * 3600)).await;
        assert_eq!(store.get("s", "k").await.unwrap(), None);
    }

    #[test]
    fn key_validation() {
        assert!(IdempotencyKey::try_from("run 42 / item 3").is_ok());
        assert_eq!(IdempotencyKey::try_from("").unwrap_err().code, "invalid_idempotency_key");
        assert!(IdempotencyKey::try_from("x".repeat(256).as_str()).is_err());
    }
}
