//! Where jobs run. Each backend takes the same v0-shaped job request and answers the same reads,
//! so the action and the `/v0/batch/jobs` routes never care which one is configured.

pub mod batch;
pub mod engine;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;

use crate::error::ApiError;
use crate::job::list::ListQuery;
use crate::job::{Caller, JobRequest};
use crate::summary::Summary;

/// A body passed back as it is, with its content type; large ones are streamed.
#[derive(Debug)]
pub struct RawBody {
    pub content_type: String,
    pub body: Body,
    /// A `Link` header: the next page of a list (`<url>; rel="next"`).
    pub link: Option<String>,
}

impl RawBody {
    /// A JSON body.
    pub fn json(bytes: impl Into<Bytes>) -> Self {
        Self { content_type: "application/json".into(), body: Body::from(bytes.into()), link: None }
    }

    /// A body sent as `stream` yields it.
    pub fn stream<E>(content_type: &str, stream: impl Stream<Item = Result<Bytes, E>> + Send + 'static) -> Self
    where
        E: Into<axum::BoxError>,
    {
        Self { content_type: content_type.into(), body: Body::from_stream(stream), link: None }
    }
}

impl IntoResponse for RawBody {
    fn into_response(self) -> Response {
        let mut response = ([(header::CONTENT_TYPE, self.content_type)], self.body).into_response();
        if let Some(link) = self.link.and_then(|l| header::HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LINK, link);
        }
        response
    }
}

/// What `GET /v1/jobs/{id}/summary` asks (the wait already within `HUME_ACTION_SUMMARY_MAX_WAIT_SECS`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SummaryQuery {
    /// How long to hold the answer for the job to end.
    pub wait: std::time::Duration,
    /// The timeline's window in seconds; `None` chooses per file.
    pub window_secs: Option<f64>,
}

/// A place jobs run.
/// What `/readyz` lists: each part a backend runs on, and its state in words.
pub type Components = std::collections::BTreeMap<&'static str, String>;

#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Starts a job and returns its id.
    async fn submit(&self, caller: &Caller, job: JobRequest) -> Result<String, ApiError>;
    /// `GET /v0/batch/jobs` with the caller's query.
    async fn list_jobs(&self, caller: &Caller, query: &ListQuery) -> Result<RawBody, ApiError>;
    /// `GET /v0/batch/jobs/{id}`.
    async fn job(&self, caller: &Caller, id: &str) -> Result<RawBody, ApiError>;
    /// `GET /v0/batch/jobs/{id}/predictions`.
    async fn predictions(&self, caller: &Caller, id: &str) -> Result<RawBody, ApiError>;
    /// `GET /v0/batch/jobs/{id}/artifacts` (a zip).
    async fn artifacts(&self, caller: &Caller, id: &str) -> Result<RawBody, ApiError>;
    /// `GET /v1/jobs/{id}/summary`: once the job ended or `query.wait` passed, what it found.
    async fn summary(&self, caller: &Caller, id: &str, query: SummaryQuery) -> Result<Summary, ApiError>;
    /// Whether `submit` commits `JobRequest::idempotency` together with the job itself.
    fn records_idempotency_keys(&self) -> bool {
        false
    }
    /// Whether the backend can take work now, with the state of each part it runs on (models,
    /// ffmpeg, store); the reason when it cannot.
    async fn ready(&self) -> Result<Components, String> {
        Ok(Components::new())
    }
    /// How many jobs are in each state, in every replica's store, for `/metrics`: `None` when
    /// this backend keeps no jobs (pass-through), `Some(Err)` when its store did not answer.
    async fn jobs_by_status(&self) -> Option<Result<Vec<(String, i64)>, String>> {
        None
    }
    /// Stops background work after in-flight jobs reach a safe point.
    async fn shutdown(&self) {}
}
