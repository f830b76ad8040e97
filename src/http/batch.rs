//! The v0-compatible batch routes (`/v0/batch/jobs...`), served by whichever backend is set:
//! JSON or multipart in, the job started through idempotency; the backend's jobs, pages and
//! downloads written out in v0's shapes (a page's next one in a `Link` header).

use axum::body::Body;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::action::idempotency_key;
use crate::app::AppState;
use crate::backend::{Download, Format, JobPage};
use crate::budget::{Limit, LimitExceeded};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::http::error::ErrorBody;
use crate::http::extract::{check_declared_length, JsonBody, PathJobId};
use crate::http::openapi::{
    ApiKeyHeader, IdempotencyKeyHeader, JobIdPath, JobStarted, MultipartJobDoc, ReadErrors, UpstreamErrors, ZipArchive,
};
use crate::job::list::ListQuery;
use crate::job::request::InferenceRequest;
use crate::job::spec::JobSpec;
use crate::job::state::JobView;
use crate::job::{JobRequest, UploadedFile};
use crate::predictions::SourceResult;

/// `POST /v0/batch/jobs`, as JSON (capped at `HUME_ACTION_MAX_BODY_BYTES`) or as multipart
/// (`json` part plus `file` parts, capped at `HUME_ACTION_MAX_UPLOAD_BYTES`).
#[utoipa::path(
    post,
    path = "/v0/batch/jobs",
    operation_id = "start_job",
    tag = "v0",
    summary = "Start a v0 job: JSON, or multipart with uploaded files",
    request_body(content(
        (InferenceRequest = "application/json"),
        (MultipartJobDoc = "multipart/form-data"),
    )),
    params(ApiKeyHeader, IdempotencyKeyHeader),
    responses(
        (status = 200, description = "The job was accepted (or, for a replayed `Idempotency-Key`, the first job).", body = JobStarted),
        (status = 400, description = "The body is not JSON or multipart that can be read.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token, or no Hume API key where one is needed.", body = ErrorBody),
        (status = 413, description = "The body, an upload, or the job is over a size budget.", body = ErrorBody),
        (status = 415, description = "The body is neither `application/json` nor `multipart/form-data`.", body = ErrorBody),
        (status = 422, description = "The request is invalid (the error names the field), over a budget, or its `Idempotency-Key` was used with another body.", body = ErrorBody),
        UpstreamErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn start(
    State(app): State<AppState>,
    headers: HeaderMap,
    request: Request,
) -> Result<Json<JobStarted>, ApiError> {
    let job = if is_multipart(&headers) {
        from_multipart(request, app.config.max_upload_bytes as u64).await?
    } else {
        let JsonBody(body) = JsonBody::<Value>::from_request(request, &app).await?;
        JobRequest::new(JobSpec::from_v0(body, false)?)
    };
    let job_id = app.start_job(&app.caller(&headers), idempotency_key(&headers)?, job).await?;
    Ok(Json(JobStarted { job_id }))
}

fn is_multipart(headers: &HeaderMap) -> bool {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    content_type.is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// `GET /v0/batch/jobs`.
#[utoipa::path(
    get,
    path = "/v0/batch/jobs",
    operation_id = "list_jobs",
    tag = "v0",
    summary = "List the caller's jobs, newest first, a page at a time",
    params(ListQuery, ApiKeyHeader),
    responses(
        (status = 200, description = "A page of the caller's jobs.", body = Vec<JobView>, headers(("Link" = String, description = "`<...>; rel=\"next\"`: the next page, when there is one."))),
        ReadErrors,
        UpstreamErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn list(State(app): State<AppState>, headers: HeaderMap, query: ListQuery) -> Result<Response, ApiError> {
    let page = app.backend.list_jobs(&app.caller(&headers), &query).await?;
    Ok(page_response(&query, page))
}

/// A page as v0's JSON array, its next page linked in a `Link` header.
fn page_response(query: &ListQuery, page: JobPage) -> Response {
    let mut response = v0_json(&page.jobs, page.received);
    if let Some(link) = page.next_page_token.and_then(|token| HeaderValue::try_from(next_page_link(query, &token)).ok())
    {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// The caller's query with `page_token` moved on to `token`, as a `Link` header.
fn next_page_link(query: &ListQuery, token: &str) -> String {
    let mut next = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in query.pairs_without_page_token() {
        next.append_pair(key, &value);
    }
    next.append_pair("page_token", token);
    format!("</v0/batch/jobs?{}>; rel=\"next\"", next.finish())
}

/// `GET /v0/batch/jobs/{id}`.
#[utoipa::path(
    get,
    path = "/v0/batch/jobs/{id}",
    operation_id = "get_job",
    tag = "v0",
    summary = "A job and its state",
    params(JobIdPath, ApiKeyHeader),
    responses(
        (status = 200, description = "The job.", body = JobView),
        ReadErrors,
        UpstreamErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn details(
    State(app): State<AppState>,
    headers: HeaderMap,
    PathJobId(id): PathJobId,
) -> Result<Response, ApiError> {
    let job = app.backend.job(&app.caller(&headers), &id).await?;
    let received = job.received.clone();
    Ok(v0_json(&job, received))
}

/// `value` as JSON; or, when it was read from an upstream, the bytes it came as.
fn v0_json(value: &impl serde::Serialize, received: Option<bytes::Bytes>) -> Response {
    match received {
        Some(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        None => Json(value).into_response(),
    }
}

/// `GET /v0/batch/jobs/{id}/predictions`.
#[utoipa::path(
    get,
    path = "/v0/batch/jobs/{id}/predictions",
    operation_id = "get_job_predictions",
    tag = "v0",
    summary = "An ended job's predictions, one entry per source in request order",
    params(JobIdPath, ApiKeyHeader),
    responses(
        (status = 200, description = "The predictions.", body = Vec<SourceResult>),
        ReadErrors,
        UpstreamErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn predictions(
    State(app): State<AppState>,
    headers: HeaderMap,
    PathJobId(id): PathJobId,
) -> Result<Download, ApiError> {
    app.backend.predictions(&app.caller(&headers), &id).await
}

/// `GET /v0/batch/jobs/{id}/artifacts`.
#[utoipa::path(
    get,
    path = "/v0/batch/jobs/{id}/artifacts",
    operation_id = "get_job_artifacts",
    tag = "v0",
    summary = "An ended job's predictions as CSV files in a zip archive",
    params(JobIdPath, ApiKeyHeader),
    responses(
        (status = 200, description = "A zip archive of CSV files.", content_type = "application/octet-stream", body = ZipArchive),
        ReadErrors,
        UpstreamErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn artifacts(
    State(app): State<AppState>,
    headers: HeaderMap,
    PathJobId(id): PathJobId,
) -> Result<Download, ApiError> {
    app.backend.artifacts(&app.caller(&headers), &id).await
}

/// A download, streamed with its content type: JSON, or a zip as v0 sent it
/// (`application/octet-stream`).
impl IntoResponse for Download {
    fn into_response(self) -> Response {
        let content_type = match self.format {
            Format::Json => "application/json",
            Format::Zip => "application/octet-stream",
        };
        ([(header::CONTENT_TYPE, content_type)], Body::from_stream(self.bytes)).into_response()
    }
}

async fn from_multipart(request: Request, max: u64) -> Result<JobRequest, ApiError> {
    check_declared_length(request.headers(), max, Limit::UploadBytes, "file")?;
    let read_error = |e: MultipartError| multipart_error(e.status(), e, max);
    let mut parts = Multipart::from_request(request, &()).await.map_err(|e| multipart_rejection(e, max))?;
    let mut request = Value::Object(Default::default());
    let mut files = Vec::new();
    while let Some(part) = parts.next_field().await.map_err(read_error)? {
        match part.name().unwrap_or_default() {
            // The `json` part comes as a text field (TS SDK, curl) or as a file part (Python SDK).
            "json" => {
                let bytes = part.bytes().await.map_err(read_error)?;
                request = serde_json::from_slice(&bytes).map_err(|e| {
                    FieldError::new(ErrorCode::InvalidJson, "json", format!("The `json` part is not valid JSON: {e}."))
                })?;
            }
            "file" => {
                let filename = part.file_name().map(str::to_owned);
                let content_type = part.content_type().map(str::to_owned);
                let bytes = part.bytes().await.map_err(read_error)?;
                files.push(UploadedFile { filename, content_type, bytes });
            }
            _ => {}
        }
    }
    if files.is_empty() {
        return Err(
            FieldError::new(ErrorCode::MissingFile, "file", "A multipart job needs at least one `file` part.").into()
        );
    }
    Ok(JobRequest::with_files(JobSpec::from_v0(request, true)?, files))
}

fn multipart_rejection(rejection: MultipartRejection, max: u64) -> ApiError {
    multipart_error(rejection.status(), rejection, max)
}

/// A multipart body that could not be read; past the upload cap, that limit.
fn multipart_error(status: StatusCode, detail: impl std::fmt::Display, max: u64) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return LimitExceeded::new(Limit::UploadBytes, max, max + 1, "file").at_least().into();
    }
    let message = format!("The multipart body could not be read: {detail}.");
    ApiError::BadRequest { code: ErrorCode::InvalidMultipart, message }
}
