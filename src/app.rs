//! The application state every handler shares: built once at start-up, read-only afterwards.

use std::ops::Deref;
use std::sync::Arc;

use axum::http::HeaderMap;
use md5::{Digest, Md5};
use serde_json::json;

use crate::backend::Backend;
use crate::config::{Config, Secret};
use crate::error::ApiError;
use crate::idempotency::{Idempotency, IdempotencyKey, Started};
use crate::intake::Intake;
use crate::job::{Caller, JobId, JobRequest};
use crate::upstream::SharedLimits;

/// Everything the server holds for its lifetime.
pub struct App {
    /// The configuration the server started with.
    pub config: Config,
    /// Where jobs run (`local`, `hume` or `hume-batch`).
    pub backend: Arc<dyn Backend>,
    /// Replays of an `Idempotency-Key` get the first job id back.
    pub idempotency: Arc<Idempotency>,
    /// The budgets and the callback check every job passes before it is accepted.
    pub intake: Intake,
    /// The Redis that holds the fleet's rate limits, when configured (`/readyz` checks it).
    pub shared_limits: Option<Arc<SharedLimits>>,
}

/// Cheap-to-clone handle on [`App`], the axum state.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    /// The caller of this request: its `X-Hume-Api-Key`, else the server's `HUME_API_KEY`.
    pub fn caller(&self, headers: &HeaderMap) -> Caller {
        let from_header =
            headers.get("x-hume-api-key").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<Secret>().ok());
        Caller::new(from_header.or_else(|| self.config.hume_api_key.clone()))
    }

    /// Starts a job on the backend, at most once per idempotency key, once it passed intake.
    pub async fn start_job(
        &self,
        caller: &Caller,
        key: Option<IdempotencyKey>,
        job: JobRequest,
    ) -> Result<JobId, ApiError> {
        self.intake.check(&job).await?;
        let scope = caller.key_hash().map_or("anonymous", |hash| hash.short()).to_owned();
        let files: Vec<String> = job.files.iter().map(|f| hex::encode(Md5::digest(&f.bytes))).collect();
        let fingerprint = json!({ "request": job.spec.to_v0_request(), "files": files });
        let (backend, caller) = (self.backend.clone(), caller.clone());
        let start = move |claim| async move {
            let job_id = backend.submit(&caller, JobRequest { idempotency: claim, ..job }).await?;
            Ok(Started { job_id, recorded: backend.records_idempotency_keys() })
        };
        self.idempotency.run(&scope, key.as_ref(), &fingerprint, start).await
    }
}
