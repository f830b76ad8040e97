//! The domain types of a job, below everything that uses them: what is asked ([`spec::JobSpec`],
//! typed once at the edge from the v0 [`request::InferenceRequest`] or the action's input, and
//! [`JobRequest`], a spec with its uploads on its way in), who asked, and the job's state.

pub mod list;
pub mod models;
pub mod request;
pub mod spec;
pub mod state;
pub mod status;

use bytes::Bytes;

use crate::config::{KeyHash, Secret};
use crate::error::ApiError;
use crate::idempotency::IdempotencyClaim;
use spec::JobSpec;

/// The most URLs the action's `urls` field takes (the manifest's `max_items`); every job is also
/// held to `HUME_ACTION_MAX_JOB_SOURCES` (`crate::intake`).
pub const MAX_URLS: usize = 100;

/// Idempotency keys are remembered this long.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// Now, in Unix epoch milliseconds (v0's timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A job to start: what it asks, plus its uploads.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// What the job asks, checked.
    pub spec: JobSpec,
    /// Files uploaded with a multipart request.
    pub files: Vec<UploadedFile>,
    /// The `Idempotency-Key` this start claims, for a backend that records it with the job.
    pub idempotency: Option<IdempotencyClaim>,
    /// What the job-end callback carries.
    pub callback_body: CallbackBody,
}

impl JobRequest {
    /// A request with no uploads, called back with v0's body.
    pub fn new(spec: JobSpec) -> Self {
        Self { spec, files: Vec::new(), idempotency: None, callback_body: CallbackBody::Predictions }
    }

    /// A request with these uploads, which its echo lists.
    pub fn with_files(mut spec: JobSpec, files: Vec<UploadedFile>) -> Self {
        spec.files = files.iter().map(spec::FileEcho::of).collect();
        Self { files, ..Self::new(spec) }
    }
}

/// What a job-end callback carries: v0's `{job_id, status, predictions}` (the default of
/// `POST /v0/batch/jobs`, as on Hume), or `{job_id, status, summary}` (the action's default),
/// small enough for the webhook that resumes a paused workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallbackBody {
    #[default]
    Predictions,
    Summary,
}

impl CallbackBody {
    /// As stored with the job.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Predictions => "predictions",
            Self::Summary => "summary",
        }
    }

    /// From its stored form; a job stored before it existed (`None`) is called back with v0's body.
    pub fn from_stored(stored: Option<&str>) -> Self {
        match stored {
            Some("summary") => Self::Summary,
            _ => Self::Predictions,
        }
    }
}

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// Who is calling: the Hume API key from the request header or the server's configuration.
#[derive(Debug, Clone)]
pub struct Caller {
    pub api_key: Option<Secret>,
    key_hash: Option<KeyHash>,
}

/// A job's id: a UUID on the engine backends, the upstream's id on `hume-batch`. Stored as
/// text; read from the path as it is written, since the backend that owns it says what exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct JobId(String);

impl JobId {
    /// A new id for a job the engine runs.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for JobId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for JobId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for JobId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for JobId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Who a job belongs to on the engine backends: `sha256:<hex>` of the API key it was submitted
/// with, or `no-key`. Only that caller lists, reads, downloads or is called back about it, as Hume
/// scoped jobs to the account behind the key; the key itself is never kept for this.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::Type)]
#[sqlx(transparent)]
pub struct Owner(String);

impl Owner {
    /// The owner of the jobs of callers without a key.
    pub fn without_key() -> Self {
        Self("no-key".to_owned())
    }

    /// The owner as stored with the job.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Caller {
    /// A caller with this key (or none), its hash taken once.
    pub fn new(api_key: Option<Secret>) -> Self {
        let key_hash = api_key.as_ref().map(Secret::hash);
        Self { api_key, key_hash }
    }

    /// The hash of the caller's key, when it has one.
    pub fn key_hash(&self) -> Option<&KeyHash> {
        self.key_hash.as_ref()
    }

    /// The owner of the jobs this caller starts, and the only jobs it may see.
    pub fn owner(&self) -> Owner {
        match &self.key_hash {
            Some(hash) => Owner(format!("sha256:{}", hash.hex())),
            None => Owner::without_key(),
        }
    }

    /// The API key, or the error that says both ways to give one.
    pub fn require_api_key(&self) -> Result<&Secret, ApiError> {
        self.api_key.as_ref().ok_or(ApiError::MissingApiKey)
    }
}
