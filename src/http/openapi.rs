//! The OpenAPI 3.1 document `GET /openapi.json` serves, generated from the code: each handler
//! carries its `#[utoipa::path]` beside its code, and `super::router` registers routes and
//! document together (`utoipa_axum::routes!`), so a route cannot exist undocumented.
//!
//! Why some schemas here are written for the document only: the action's builder input is
//! coerced by hand (`crate::action::input`), not deserialised, so [`ActionInputDoc`] states the
//! forms it takes. Typed bodies (the v0 request and job, predictions, errors) derive their
//! schema where they are defined.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::error::ErrorBody;
use crate::job::status::JobStatus;
use crate::job::JobId;

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "hume-action",
        description = "The server behind the no-code \"Hume Expression Measurement\" action: start a job from builder input, and Hume's v0 batch API (`/v0/batch/jobs`), answered by the configured backend (the embedded engine, or Hume itself).\n\nEvery error answers `{\"error\": {...}}` (schema `ErrorBody`). When the server runs with `HUME_ACTION_TOKEN`, the action and `/v0` routes need `Authorization: Bearer <token>`; `/healthz`, `/readyz`, `/metrics` and `/openapi.json` never do.",
        license(name = "MIT"),
    ),
    modifiers(&BearerToken),
    tags(
        (name = "action", description = "The workflow action."),
        (name = "v0", description = "Hume's v0 batch API, compatible with its SDKs."),
        (name = "operations", description = "Health, readiness, metrics and this document."),
    )
)]
pub struct ApiDoc;

/// The security scheme name of the optional bearer token.
pub const BEARER: &str = "bearer";

/// Adds the bearer token scheme (`HUME_ACTION_TOKEN`).
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "The server's HUME_ACTION_TOKEN. Required only when the server was started with one; without it, the routes are open.",
            ))
            .build();
        components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// `{"job_id": ...}`: the job a start made (or the one an `Idempotency-Key` replay names).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStarted {
    /// The job's id: read it with `GET /v0/batch/jobs/{id}`.
    pub job_id: JobId,
}

/// The action's answer: `{"job_id"}`; with `wait_seconds`, also the job's `status`, and its
/// `summary` when it ended within them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionStarted {
    /// The job's id: read it with `GET /v1/jobs/{id}/summary` or `GET /v0/batch/jobs/{id}`.
    pub job_id: JobId,
    /// With `wait_seconds`: `QUEUED`, `IN_PROGRESS`, `COMPLETED` or `FAILED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    /// With `wait_seconds`, when the job ended within them: what `GET /v1/jobs/{id}/summary` answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<crate::summary::Summary>,
}

/// The action's input, as a workflow builder sends it. Fields come in the many forms builders
/// produce after filling templates; unknown fields are ignored.
#[allow(dead_code)] // the schema is all that is used
#[derive(Deserialize, ToSchema)]
pub struct ActionInputDoc {
    /// One to 100 distinct http(s) URLs of audio, video, image or text files (or archives of
    /// them): a JSON array of URLs (or of `{"url": ...}` objects), one URL, or one string with
    /// URLs separated by commas or new lines, or holding a JSON array.
    #[schema(schema_with = urls_schema)]
    urls: Vec<String>,
    /// Run the face model: Yes or No (also true/false, 1/0, on/off). Default: the manifest's.
    #[schema(schema_with = toggle_schema)]
    models_face: Option<String>,
    /// Run the speech prosody model: Yes or No. Default: the manifest's.
    #[schema(schema_with = toggle_schema)]
    models_prosody: Option<String>,
    /// Run the language model: Yes or No. Default: the manifest's.
    #[schema(schema_with = toggle_schema)]
    models_language: Option<String>,
    /// An http(s) URL to POST `{job_id, status, predictions}` to when the job ends; empty or
    /// null for none.
    #[schema(schema_with = callback_schema)]
    callback_url: Option<String>,
    /// What the callback carries: `Summary` (default: `{job_id, status, summary}`, under 1 MB)
    /// or `Predictions` (v0's `{job_id, status, predictions}`).
    #[schema(
        pattern = r"^\s*([Ss][Uu][Mm][Mm][Aa][Rr][Yy]|[Pp][Rr][Ee][Dd][Ii][Cc][Tt][Ii][Oo][Nn][Ss])?\s*$",
        nullable
    )]
    callback_body: Option<String>,
    /// Seconds to wait for the job to end before answering (0 by default; at most
    /// `HUME_ACTION_SUMMARY_MAX_WAIT_SECS`, 25, more is lowered): a number, or a string holding one.
    #[schema(value_type = Option<f64>, minimum = 0)]
    wait_seconds: Option<f64>,
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn null() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Null)
}

/// An http(s) URL, blanks around it allowed; an empty item is skipped.
const URL_ITEM: &str = r"^\s*(https?://\S+)?\s*$";
/// One string of URLs: the first one starts it, or a JSON array does.
const URL_LIST: &str = r"^\s*(https?://\S|\[)";

fn urls_schema() -> impl Into<RefOr<Schema>> {
    let url = || string().pattern(Some(URL_ITEM));
    let object = ObjectBuilder::new().schema_type(Type::Object).property("url", url()).required("url");
    let item = OneOfBuilder::new().item(url()).item(object).item(null());
    OneOfBuilder::new()
        .item(string().pattern(Some(URL_LIST)))
        .item(ArrayBuilder::new().items(item).min_items(Some(1)))
        .description(Some(
            "One to 100 distinct http(s) URLs of audio, video, image or text files (or archives of them): a JSON array of URLs (or of `{\"url\": ...}` objects), one URL, or one string with URLs separated by commas or new lines, or holding a JSON array.",
        ))
}

fn toggle_schema() -> impl Into<RefOr<Schema>> {
    let words = string().pattern(Some(
        r"^\s*([Yy]([Ee][Ss])?|[Nn][Oo]?|[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[01]|[Oo][Nn]|[Oo][Ff][Ff])?\s*$",
    ));
    let number = ObjectBuilder::new().schema_type(Type::Number).enum_values(Some([0, 1]));
    OneOfBuilder::new()
        .item(words)
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(number)
        .item(null())
        .description(Some(
            "Run this model: Yes or No (any case; also y/n, true/false, 1/0, on/off). Empty or absent: the manifest's default.",
        ))
}

fn callback_schema() -> impl Into<RefOr<Schema>> {
    OneOfBuilder::new().item(string().pattern(Some(URL_ITEM))).item(null()).description(Some(
        "An http(s) URL to POST `{job_id, status, summary}` (or, with `callback_body` Predictions, `{job_id, status, predictions}`) to when the job ends; empty or null for none.",
    ))
}

/// A zip archive, as bytes.
#[allow(dead_code)] // the schema is all that is used
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ZipArchive(Vec<u8>);

/// A multipart job: the v0 request as a `json` part (text or file) and one or more `file`
/// parts, as Hume's v0 SDKs send them.
#[allow(dead_code)] // the schema is all that is used
#[derive(Deserialize, ToSchema)]
pub struct MultipartJobDoc {
    /// The v0 request (`InferenceRequest`) as JSON text; absent means every model.
    json: Option<String>,
    /// The files to measure (at least one), each with its file name and content type.
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// `/healthz`: the process answers.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// `/readyz`: ready, and the state of each part the backend runs on.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: &'static str,
    /// Each part (store, models, ffmpeg, ...) and its state in words.
    pub components: std::collections::BTreeMap<&'static str, String>,
}

/// The caller's Hume key header.
#[allow(dead_code)] // the parameters are all that is used
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ApiKeyHeader {
    /// The caller's Hume API key; without it, the server's HUME_API_KEY. Jobs belong to the
    /// key that started them: another key's jobs are not found.
    #[serde(rename = "X-Hume-Api-Key")]
    #[param(nullable = false)]
    api_key: Option<String>,
}

/// The idempotency header of the routes that start jobs.
#[allow(dead_code)] // the parameters are all that is used
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// Makes a retried start answer the first job instead of starting another (remembered
    /// 24 h, per API key; the same key with another body is refused with 422). Printable
    /// ASCII, 1 to 255 characters.
    #[serde(rename = "Idempotency-Key")]
    #[param(nullable = false, min_length = 1, max_length = 255, pattern = r"^[\x20-\x7E]+$")]
    idempotency_key: Option<String>,
}

/// The job id in the path.
#[allow(dead_code)] // the parameters are all that is used
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobIdPath {
    /// The `job_id` the job was started with.
    id: String,
}

/// The answers of the job reads besides success and [`UpstreamErrors`].
#[allow(dead_code)] // the responses are all that is used
#[derive(utoipa::IntoResponses)]
pub enum ReadErrors {
    /// A query parameter is invalid, the job id cannot be read, or the job has not ended yet
    /// (predictions, artifacts).
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody<'static>),
    /// Missing or wrong bearer token, or no Hume API key where one is needed.
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody<'static>),
    /// No such job for this caller.
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody<'static>),
    /// A query parameter is invalid (the error names it).
    #[response(status = 422)]
    Invalid(#[to_schema] ErrorBody<'static>),
}

/// The answers every route that may reach Hume or the store shares: Hume's own answers passed
/// on (pass-through backend), the rate limit, and the server's own failures.
#[allow(dead_code)] // the responses are all that is used
#[derive(utoipa::IntoResponses)]
pub enum UpstreamErrors {
    /// Hume's rate limit (pass-through backend): retry after `Retry-After` seconds.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds to wait before retrying.")))]
    RateLimited(#[to_schema] ErrorBody<'static>),
    /// Hume's own rejection, passed on (pass-through backend).
    #[response(status = "4XX")]
    Upstream(#[to_schema] ErrorBody<'static>),
    /// An internal error (details in the server's log).
    #[response(status = 500)]
    Internal(#[to_schema] ErrorBody<'static>),
    /// Hume did not answer successfully (pass-through backend).
    #[response(status = 502, headers(("Retry-After" = u64, description = "Seconds to wait, when Hume said.")))]
    BadGateway(#[to_schema] ErrorBody<'static>),
    /// A part the server needs is unavailable (the store, or the shared rate limit in Redis:
    /// `rate_limiter_unavailable`); retry later.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds to wait, when known.")))]
    Unavailable(#[to_schema] ErrorBody<'static>),
    /// Hume could not be reached in time (pass-through backend).
    #[response(status = 504)]
    GatewayTimeout(#[to_schema] ErrorBody<'static>),
}
