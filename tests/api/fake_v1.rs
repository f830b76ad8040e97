//! A strict in-process fake of Hume's Expression Measurement **v1** HTTP API: the two upload endpoints
//! `POST /v1/expression/audio/file` and `POST /v1/expression/video/file`.
//!
//! It follows `hume-v1-api-notes.md` (§1 authentication, §2.1 audio upload, §2.2 image upload, §3 scores,
//! §5.1 HTTP errors, §6 limits): the same multipart parts, config fields and ranges, format checks, size
//! limits, response shapes and error bodies (`{"type":"error","code","message","request_id"}`, and the
//! gateway-style 401 `{"message","request_id"?}`). Where the notes are silent it picks one documented-looking
//! behaviour and says so in a comment. Measurements are deterministic so tests can assert on them:
//!
//! - audio: utterances are runs of 20 ms frames with RMS > 300 (gaps < 300 ms merged, runs < 100 ms dropped),
//!   measured every `measurement_timer_ms` of speech plus a final `speech_ended` measurement;
//! - images: one face in the centre half of each image, tracked by image size across images and `face_state`.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Map, Value};

const AUDIO_PATH: &str = "/v1/expression/audio/file";
const VIDEO_PATH: &str = "/v1/expression/video/file";
/// The whole multipart body, audio and video alike.
const MAX_BODY_BYTES: usize = 25_000_000;
/// Past this the fake stops reading a body (it has long since decided on 413).
const DRAIN_CAP_BYTES: usize = 128 * 1024 * 1024;
const MAX_IMAGE_BYTES: usize = 2_000_000;
const MAX_IMAGE_PIXELS: u64 = 8_294_400;
const SAMPLE_RATE: u64 = 16_000;
const SAMPLES_PER_MS: u64 = SAMPLE_RATE / 1000;
const FRAME_MS: u64 = 20;
const FRAME_SAMPLES: usize = (FRAME_MS * SAMPLES_PER_MS) as usize;
const SPEECH_RMS: f64 = 300.0;
const MERGE_GAP_MS: u64 = 300;
const MIN_UTTERANCE_MS: u64 = 100;
const WINDOW_MS: u64 = 10_000;
const SPEECH_ENDED_MIN_GAP_MS: u64 = 1_000;
const DEFAULT_TIMER_MS: u64 = 3_000;
const TIMER_RANGE_MS: (i64, i64) = (3_000, 10_000);
const FACE_CONFIDENCE: f64 = 0.97;
const DEFAULT_THRESHOLD: f64 = 0.9;
const DEFAULT_MIN_SIZE: u64 = 60;
const REMEMBERED_FACES: usize = 32;
const FACE_STATE_TTL_SECS: u64 = 24 * 3600;

/// Which v1 endpoint a request was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/expression/audio/file`.
    Audio,
    /// `/v1/expression/video/file`.
    Video,
    /// Any other path (answered 404 `not_found`, or 401 first when the credential is bad).
    Other,
}

/// One request the fake received, as recorded on arrival and completed when it was answered.
#[derive(Debug, Clone)]
pub struct Received {
    /// When the request's headers arrived.
    pub at: Instant,
    /// The endpoint addressed by the path (any method).
    pub endpoint: Endpoint,
    /// The `X-Hume-Api-Key` header, if one was sent.
    pub api_key: Option<String>,
    /// The status answered; 0 while the request is still in flight (or if the client gave up on it).
    pub status: u16,
    /// Bytes of request body read (the whole multipart body).
    pub body_bytes: usize,
    /// Number of `file` parts read.
    pub files: usize,
    /// Audio taken in (samples / 16), set once the audio decoded.
    pub audio_duration_ms: Option<u64>,
    /// The `config` part, once it parsed as JSON (valid or not by the schema).
    pub config: Option<Value>,
}

/// A running fake v1 server on `127.0.0.1`; it stops when dropped.
pub struct FakeV1 {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

struct Shared {
    keys: HashSet<String>,
    /// The fake's one organization: every key belongs to it, and `face_state` is bound to it.
    org: String,
    /// Keys the `face_state` checksum, so an altered state is detected.
    secret: String,
    mutable: Mutex<Mutable>,
}

#[derive(Default)]
struct Mutable {
    forbidden: HashSet<String>,
    fail: Option<InjectedFailure>,
    latency: Duration,
    requests: Vec<Received>,
}

#[derive(Clone, Copy)]
struct InjectedFailure {
    remaining: usize,
    status: u16,
    retry_after_secs: Option<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Mutable> {
        self.mutable.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl FakeV1 {
    /// Starts on 127.0.0.1:0 accepting the given API keys (`X-Hume-Api-Key`). Keys later listed with
    /// [`FakeV1::set_forbidden_keys`] get 403 `forbidden`.
    pub async fn start(keys: &[&str]) -> FakeV1 {
        let shared = Arc::new(Shared {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            org: uuid::Uuid::new_v4().to_string(),
            secret: uuid::Uuid::new_v4().to_string(),
            mutable: Mutex::new(Mutable::default()),
        });
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared)).layer(DefaultBodyLimit::disable());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("the fake v1 server binds");
        let addr = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "fake v1 server stopped");
            }
        });
        FakeV1 { addr, shared, server }
    }

    /// The base URI to configure as Hume's API base, e.g. `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the keys answered 403 `forbidden` (a real key without v1 access); they need not be in the
    /// accepted list.
    #[allow(dead_code)] // Kept for tests of 403 handling even while none uses it.
    pub fn set_forbidden_keys(&self, keys: &[&str]) {
        self.shared.lock().forbidden = keys.iter().map(|k| (*k).to_owned()).collect();
    }

    /// Answers the next `n` requests to the two upload endpoints (after authentication and routing) with
    /// `status`: 503 gives v1's `server_busy` body, 500 `internal_error`, 429 the gateway body
    /// `{"message":"API rate limit exceeded"}` (no `type`/`code`); `retry_after_secs` adds `Retry-After`.
    pub fn fail_next(&self, n: usize, status: u16, retry_after_secs: Option<u64>) {
        self.shared.lock().fail = Some(InjectedFailure { remaining: n, status, retry_after_secs });
    }

    /// Makes every answer (success or error) wait this long before it is sent. Default zero.
    pub fn set_latency(&self, d: Duration) {
        self.shared.lock().latency = d;
    }

    /// Every request received, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.lock().requests.clone()
    }

    /// The most requests that arrived within any sliding `window`: requests `a` and `b` share a window
    /// when `b.at - a.at < window`.
    pub fn max_in_window(&self, window: Duration) -> usize {
        let mut times: Vec<Instant> = self.shared.lock().requests.iter().map(|r| r.at).collect();
        times.sort();
        let (mut best, mut start) = (0, 0);
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= window {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }
}

impl Drop for FakeV1 {
    fn drop(&mut self) {
        self.server.abort();
    }
}

// ---------------------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------------------

/// A finished answer: status, JSON body and the optional headers the fake sets.
struct Reply {
    status: u16,
    body: Value,
    retry_after_secs: Option<u64>,
    allow: bool,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply { status: 200, body, retry_after_secs: None, allow: false }
    }

    fn raw(status: u16, body: Value) -> Reply {
        Reply { status, body, retry_after_secs: None, allow: false }
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.allow {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// What one request produced besides its answer, for [`Received`].
#[derive(Default)]
struct Outcome {
    files: usize,
    audio_duration_ms: Option<u64>,
    config: Option<Value>,
}

/// Builds v1 error answers carrying the request's id.
#[derive(Clone)]
struct Errors {
    request_id: String,
}

impl Errors {
    fn error(&self, status: u16, code: &str, message: impl Into<String>) -> Reply {
        let body = json!({"type": "error", "code": code, "message": message.into(), "request_id": self.request_id});
        Reply::raw(status, body)
    }

    fn message_invalid(&self, message: impl Into<String>) -> Reply {
        self.error(400, "message_invalid", message)
    }

    fn config_invalid(&self, message: impl Into<String>) -> Reply {
        self.error(400, "config_invalid", message)
    }

    fn audio_decode_failed(&self, message: impl Into<String>) -> Reply {
        self.error(400, "audio_decode_failed", message)
    }

    fn unsupported(&self, message: impl Into<String>) -> Reply {
        self.error(415, "unsupported_media_type", message)
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let endpoint = match parts.uri.path() {
        AUDIO_PATH => Endpoint::Audio,
        VIDEO_PATH => Endpoint::Video,
        _ => Endpoint::Other,
    };
    let api_key = parts.headers.get("x-hume-api-key").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let (index, latency) = {
        let mut state = shared.lock();
        state.requests.push(Received {
            at: Instant::now(),
            endpoint,
            api_key: api_key.clone(),
            status: 0,
            body_bytes: 0,
            files: 0,
            audio_duration_ms: None,
            config: None,
        });
        (state.requests.len() - 1, state.latency)
    };
    let errors = Errors { request_id: format!("req_{}", uuid::Uuid::new_v4()) };
    // The body is always read in full (up to a cap) so that an early error still reaches the client
    // instead of a reset connection.
    let read = read_body(body).await;
    let body_bytes = read.as_ref().map(|(_, total)| *total).unwrap_or(0);
    let mut outcome = Outcome::default();
    let reply = answer(&shared, &errors, endpoint, parts, read, &mut outcome).await.unwrap_or_else(|e| e);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    {
        let mut state = shared.lock();
        let record = &mut state.requests[index];
        record.status = reply.status;
        record.body_bytes = body_bytes;
        record.files = outcome.files;
        record.audio_duration_ms = outcome.audio_duration_ms;
        record.config = outcome.config;
    }
    tracing::debug!(status = reply.status, ?endpoint, request_id = %errors.request_id, "fake v1 answered");
    reply.into_response()
}

/// Reads the body: the bytes kept (at most one past the 25 MB limit) and the total length read.
async fn read_body(mut body: Body) -> Result<(Vec<u8>, usize), axum::Error> {
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame?.into_data() else { continue };
        total += data.len();
        if kept.len() <= MAX_BODY_BYTES {
            let room = MAX_BODY_BYTES + 1 - kept.len();
            kept.extend_from_slice(&data[..data.len().min(room)]);
        }
        if total > DRAIN_CAP_BYTES {
            break;
        }
    }
    Ok((kept, total))
}

async fn answer(
    shared: &Shared,
    errors: &Errors,
    endpoint: Endpoint,
    parts: axum::http::request::Parts,
    read: Result<(Vec<u8>, usize), axum::Error>,
    outcome: &mut Outcome,
) -> Result<Reply, Reply> {
    authenticate(shared, errors, &parts.headers)?;
    if endpoint == Endpoint::Other {
        return Err(errors.error(404, "not_found", format!("no such path: {}", parts.uri.path())));
    }
    if parts.method != Method::POST {
        let mut reply =
            errors.error(405, "method_not_allowed", format!("{} is not allowed here; use POST", parts.method));
        reply.allow = true;
        return Err(reply);
    }
    if let Some(reply) = injected_failure(shared, errors) {
        return Err(reply);
    }
    let (body, total) = read.map_err(|e| errors.message_invalid(format!("the request body could not be read: {e}")))?;
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if total > MAX_BODY_BYTES || declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(match endpoint {
            Endpoint::Audio => errors.error(
                413,
                "audio_too_long",
                "the request exceeds 25 MB (about 13 minutes of 16 kHz s16le audio); split the audio",
            ),
            // The notes name no code for an oversized image request; see the report.
            _ => errors.error(413, "invalid_request", "the request exceeds the 25 MB limit for the whole body"),
        });
    }
    let form = read_form(errors, parts, body, outcome).await?;
    match endpoint {
        Endpoint::Audio => measure_audio(errors, form, outcome),
        _ => measure_video(shared, errors, form),
    }
}

/// §1: exactly one credential; a missing or unknown one is a gateway 401 without `type`/`code`.
fn authenticate(shared: &Shared, errors: &Errors, headers: &HeaderMap) -> Result<(), Reply> {
    let key = headers.get("x-hume-api-key");
    if key.is_some() && headers.contains_key(header::AUTHORIZATION) {
        return Err(errors.error(
            400,
            "invalid_request",
            "send exactly one credential: either X-Hume-Api-Key or Authorization, not both",
        ));
    }
    let Some(key) = key else {
        // A Bearer token alone is not something this fake can mint, so it is rejected like a missing key:
        // `request_id` only comes with a rejected API key.
        return Err(Reply::raw(401, json!({"message": "Unauthorized"})));
    };
    let key = String::from_utf8_lossy(key.as_bytes());
    if shared.lock().forbidden.contains(key.as_ref()) {
        return Err(errors.error(403, "forbidden", "this API key does not have access to Expression Measurement v1"));
    }
    if !shared.keys.contains(key.as_ref()) {
        return Err(Reply::raw(401, json!({"message": "Unauthorized", "request_id": errors.request_id})));
    }
    Ok(())
}

fn injected_failure(shared: &Shared, errors: &Errors) -> Option<Reply> {
    let mut state = shared.lock();
    let fail = state.fail.as_mut().filter(|f| f.remaining > 0)?;
    fail.remaining -= 1;
    let InjectedFailure { status, retry_after_secs, .. } = *fail;
    drop(state);
    let mut reply = match status {
        429 => Reply::raw(429, json!({"message": "API rate limit exceeded"})),
        401 => Reply::raw(401, json!({"message": "Unauthorized", "request_id": errors.request_id})),
        503 => errors.error(503, "server_busy", "the server is at capacity; retry with backoff"),
        500 => errors.error(500, "internal_error", "internal server error; retry with backoff"),
        s => {
            let code = match s {
                403 => "forbidden",
                404 => "not_found",
                405 => "method_not_allowed",
                413 => "audio_too_long",
                415 => "unsupported_media_type",
                s if s >= 500 => "internal_error",
                _ => "invalid_request",
            };
            errors.error(s, code, format!("injected failure ({s})"))
        }
    };
    reply.retry_after_secs = retry_after_secs;
    Some(reply)
}

// ---------------------------------------------------------------------------------------------------------
// Multipart and config
// ---------------------------------------------------------------------------------------------------------

struct Form {
    files: Vec<(Option<String>, Bytes)>,
    config: Option<Map<String, Value>>,
}

/// Reads the `file` and `config` parts; anything else, or unreadable multipart, is `message_invalid`.
async fn read_form(
    errors: &Errors,
    parts: axum::http::request::Parts,
    body: Vec<u8>,
    outcome: &mut Outcome,
) -> Result<Form, Reply> {
    let request = Request::from_parts(parts, Body::from(body));
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| errors.message_invalid(format!("the body must be multipart/form-data: {e}")))?;
    let mut form = Form { files: Vec::new(), config: None };
    let mut saw_config = false;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| errors.message_invalid(format!("the multipart body could not be read: {e}")))?;
        let Some(field) = field else { break };
        let name = field.name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let data = field
            .bytes()
            .await
            .map_err(|e| errors.message_invalid(format!("the multipart body could not be read: {e}")))?;
        match name.as_deref() {
            Some("file") => {
                outcome.files += 1;
                form.files.push((content_type, data));
            }
            Some("config") => {
                if saw_config {
                    return Err(errors.message_invalid("more than one `config` part"));
                }
                saw_config = true;
                // Accepted with no part content type too (many clients send text fields bare); any other
                // declared type is refused.
                if content_type.as_deref().is_some_and(|t| essence(t) != "application/json") {
                    return Err(errors.config_invalid("the `config` part must have content type application/json"));
                }
                let value: Value = serde_json::from_slice(&data)
                    .map_err(|e| errors.config_invalid(format!("`config` is not valid JSON: {e}")))?;
                outcome.config = Some(value.clone());
                let Value::Object(map) = value else {
                    return Err(errors.config_invalid("invalid type: expected a JSON object for `config`"));
                };
                form.config = Some(map);
            }
            Some(other) => {
                return Err(errors.message_invalid(format!(
                    "unexpected part `{other}`: only `file` and `config` parts are accepted"
                )))
            }
            None => return Err(errors.message_invalid("a multipart part has no name")),
        }
    }
    Ok(form)
}

fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// serde's wording for the expected fields of a struct.
fn expected_fields(fields: &[&str]) -> String {
    let quoted: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
    match quoted.len() {
        0 => "there are no fields".to_owned(),
        1 => format!("expected {}", quoted[0]),
        2 => format!("expected {} or {}", quoted[0], quoted[1]),
        _ => format!("expected one of {}", quoted.join(", ")),
    }
}

/// Rejects fields outside `allowed` the way serde's `deny_unknown_fields` words it.
fn deny_unknown(errors: &Errors, map: &Map<String, Value>, allowed: &[&str]) -> Result<(), Reply> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(errors.config_invalid(format!("unknown field `{unknown}`, {}", expected_fields(allowed)))),
        None => Ok(()),
    }
}

/// A present, non-null field (null reads as "unset", as an `Option` field would).
fn field<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).filter(|v| !v.is_null())
}

fn integer_in(errors: &Errors, path: &str, value: &Value, min: i64, max: Option<i64>) -> Result<u64, Reply> {
    let Some(n) = value.as_i64().or_else(|| value.as_u64().map(|_| i64::MAX)) else {
        return Err(errors.config_invalid(format!("invalid type for `{path}`: {value}, expected an integer")));
    };
    let too_big = max.is_some_and(|m| n > m);
    if n < min || too_big {
        let range = match max {
            Some(m) => format!("between {min} and {m}"),
            None => format!("at least {min}"),
        };
        return Err(errors.config_invalid(format!("`{path}` must be {range}, got {value}")));
    }
    Ok(n as u64)
}

// ---------------------------------------------------------------------------------------------------------
// Audio (§2.1)
// ---------------------------------------------------------------------------------------------------------

fn measure_audio(errors: &Errors, form: Form, outcome: &mut Outcome) -> Result<Reply, Reply> {
    let mut timer_ms = DEFAULT_TIMER_MS;
    if let Some(config) = &form.config {
        deny_unknown(errors, config, &["measurement_timer_ms"])?;
        if let Some(v) = field(config, "measurement_timer_ms") {
            timer_ms = integer_in(errors, "measurement_timer_ms", v, TIMER_RANGE_MS.0, Some(TIMER_RANGE_MS.1))?;
        }
    }
    if form.files.len() != 1 {
        return Err(errors.message_invalid(format!("exactly one `file` part is required, got {}", form.files.len())));
    }
    let (content_type, data) = &form.files[0];
    let kind = content_type.as_deref().map(essence);
    if !matches!(kind.as_deref(), Some("audio/wav" | "application/octet-stream")) {
        return Err(errors.unsupported(format!(
            "the `file` part must be audio/wav or application/octet-stream, got {}",
            content_type.as_deref().unwrap_or("no content type")
        )));
    }
    let samples = decode_audio(errors, data)?;
    let duration_ms = samples.len() as u64 / SAMPLES_PER_MS;
    outcome.audio_duration_ms = Some(duration_ms);

    let utterances = find_utterances(&samples, duration_ms);
    let mut utterances_json = Vec::new();
    let mut measurements = Vec::new();
    for (utterance_id, &(start, end)) in utterances.iter().enumerate() {
        utterances_json.push(json!({"utterance_id": utterance_id, "audio_start_ms": start, "audio_end_ms": end}));
        let mut push = |window_end: u64, trigger: &str| {
            let window_start = start.max(window_end.saturating_sub(WINDOW_MS));
            measurements.push(json!({
                "measurement_id": measurements.len(),
                "utterance_id": utterance_id,
                "audio_start_ms": window_start,
                "audio_end_ms": window_end,
                "trigger": trigger,
                "expressions": audio_expressions(window_rms(&samples, window_start, window_end)),
                "voice_attributes": scores(&[("clear", 0.91), ("calm", 0.8)]),
            }));
        };
        let mut last_end = None;
        let mut at = start + timer_ms;
        while at <= end {
            push(at, "interval");
            last_end = Some(at);
            at += timer_ms;
        }
        if last_end.is_none_or(|last| end - last >= SPEECH_ENDED_MIN_GAP_MS) {
            push(end, "speech_ended");
        }
    }
    Ok(Reply::ok(json!({
        "request_id": errors.request_id,
        "run_id": uuid::Uuid::new_v4().to_string(),
        "received": {"audio_duration_ms": duration_ms},
        "utterances": utterances_json,
        "measurements": measurements,
    })))
}

/// WAV or headerless s16le samples; compressed formats and non-WAVE RIFF are 415.
fn decode_audio(errors: &Errors, data: &[u8]) -> Result<Vec<i16>, Reply> {
    let unsupported = |what: &str| {
        errors.unsupported(format!("{what} is not supported: send 16 kHz mono s16le PCM as WAV or headerless samples"))
    };
    if data.starts_with(b"ID3") || looks_like_mp3_frame(data) {
        return Err(unsupported("MP3"));
    }
    if data.starts_with(b"fLaC") {
        return Err(unsupported("FLAC"));
    }
    if data.starts_with(b"OggS") {
        return Err(unsupported("Ogg"));
    }
    if data.len() >= 8 && &data[4..8] == b"ftyp" {
        return Err(unsupported("MP4/M4A"));
    }
    let pcm = if data.starts_with(b"RIFF") {
        if data.len() < 12 {
            return Err(errors.audio_decode_failed("truncated RIFF header"));
        }
        if &data[8..12] != b"WAVE" {
            return Err(unsupported("a RIFF file that is not WAVE"));
        }
        wav_data(errors, data)?
    } else {
        data
    };
    if pcm.is_empty() {
        return Err(errors.audio_decode_failed("the audio is empty"));
    }
    if pcm.len() % 2 != 0 {
        return Err(errors.audio_decode_failed("the audio has an odd number of bytes; s16le samples take 2 bytes"));
    }
    Ok(pcm.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
}

/// An MPEG audio frame header: 11 sync bits, then a valid version, layer, bitrate and sample rate (so that
/// headerless samples such as -1, -1 are not mistaken for MP3).
fn looks_like_mp3_frame(data: &[u8]) -> bool {
    let [a, b, c, ..] = data else { return false };
    let (version, layer, bitrate, rate) = ((b >> 3) & 3, (b >> 1) & 3, c >> 4, (c >> 2) & 3);
    *a == 0xFF && b & 0xE0 == 0xE0 && version != 1 && layer != 0 && bitrate != 0 && bitrate != 0xF && rate != 3
}

/// The `data` chunk of a RIFF/WAVE file whose `fmt ` is PCM, mono, 16 kHz, 16-bit.
fn wav_data<'a>(errors: &Errors, data: &'a [u8]) -> Result<&'a [u8], Reply> {
    let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let mut pos = 12usize;
    let mut saw_fmt = false;
    loop {
        if pos + 8 > data.len() {
            return Err(errors.audio_decode_failed("truncated WAV: no `data` chunk"));
        }
        let id = &data[pos..pos + 4];
        let size = u32_at(pos + 4) as usize;
        pos += 8;
        let Some(chunk_end) = pos.checked_add(size).filter(|end| *end <= data.len()) else {
            return Err(errors.audio_decode_failed(format!(
                "truncated WAV: the `{}` chunk runs past the end of the file",
                String::from_utf8_lossy(id)
            )));
        };
        match id {
            b"fmt " => {
                if size < 16 {
                    return Err(errors.audio_decode_failed("malformed WAV: `fmt ` chunk is too short"));
                }
                let (format, channels, rate, bits) = (u16_at(pos), u16_at(pos + 2), u32_at(pos + 4), u16_at(pos + 14));
                if format == 0xFFFE {
                    return Err(errors.audio_decode_failed("WAVE_FORMAT_EXTENSIBLE is not accepted; use plain PCM (1)"));
                }
                if format != 1 || channels != 1 || rate != SAMPLE_RATE as u32 || bits != 16 {
                    return Err(errors.audio_decode_failed(format!(
                        "WAV must be PCM s16le, 1 channel, 16000 Hz; got format {format}, {channels} channel(s), \
                         {rate} Hz, {bits} bits"
                    )));
                }
                saw_fmt = true;
            }
            b"data" => {
                if !saw_fmt {
                    return Err(errors.audio_decode_failed("malformed WAV: `data` chunk before `fmt `"));
                }
                return Ok(&data[pos..chunk_end]);
            }
            _ => {}
        }
        pos = chunk_end + (size & 1);
    }
}

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

fn window_rms(samples: &[i16], start_ms: u64, end_ms: u64) -> f64 {
    let from = ((start_ms * SAMPLES_PER_MS) as usize).min(samples.len());
    let to = ((end_ms * SAMPLES_PER_MS) as usize).min(samples.len());
    rms(&samples[from..to])
}

/// Utterances `(start_ms, end_ms)`: 20 ms frames over the RMS threshold, gaps < 300 ms merged, < 100 ms dropped.
fn find_utterances(samples: &[i16], duration_ms: u64) -> Vec<(u64, u64)> {
    let voiced: Vec<bool> = samples.chunks(FRAME_SAMPLES).map(|frame| rms(frame) > SPEECH_RMS).collect();
    let mut stretches: Vec<(u64, u64)> = Vec::new();
    for (i, &v) in voiced.iter().enumerate() {
        if !v {
            continue;
        }
        let (start, end) = (i as u64 * FRAME_MS, (i as u64 + 1) * FRAME_MS);
        match stretches.last_mut() {
            Some(last) if start - last.1 < MERGE_GAP_MS => last.1 = end,
            _ => stretches.push((start, end)),
        }
    }
    stretches
        .into_iter()
        .map(|(start, end)| (start, end.min(duration_ms)))
        .filter(|(start, end)| end - start >= MIN_UTTERANCE_MS)
        .collect()
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Scores sorted by probability descending, then name (§3), rounded to 4 decimals.
fn scores(list: &[(&str, f64)]) -> Value {
    let mut list: Vec<(&str, f64)> = list.iter().map(|&(n, p)| (n, round4(p))).collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    Value::Array(
        list.into_iter().map(|(name, probability)| json!({"name": name, "probability": probability})).collect(),
    )
}

/// v0 names (interest, calmness, joy, determination) and v1-only ones (chuckling, feeling upset, neutral);
/// `determination` follows the window's loudness so different windows differ.
fn audio_expressions(window_rms: f64) -> Value {
    let determination = (0.7 + 0.2 * window_rms / 32768.0).min(0.9999);
    scores(&[
        ("interest", 0.8123),
        ("calmness", 0.7712),
        ("chuckling", 0.74),
        ("feeling upset", 0.7301),
        ("neutral", 0.73),
        ("joy", 0.7261),
        ("determination", determination),
    ])
}

// ---------------------------------------------------------------------------------------------------------
// Video (§2.2)
// ---------------------------------------------------------------------------------------------------------

struct VideoConfig {
    threshold: f64,
    min_size: u64,
    return_face_state: bool,
    face_state: Option<String>,
}

fn video_config(errors: &Errors, config: Option<&Map<String, Value>>) -> Result<VideoConfig, Reply> {
    let mut out = VideoConfig {
        threshold: DEFAULT_THRESHOLD,
        min_size: DEFAULT_MIN_SIZE,
        return_face_state: false,
        face_state: None,
    };
    let Some(config) = config else { return Ok(out) };
    deny_unknown(errors, config, &["face", "face_state"])?;
    if let Some(state) = field(config, "face_state") {
        let Some(state) = state.as_str() else {
            return Err(errors.config_invalid(format!("invalid type for `face_state`: {state}, expected a string")));
        };
        out.face_state = Some(state.to_owned());
    }
    if let Some(face) = field(config, "face") {
        let Some(face) = face.as_object() else {
            return Err(errors.config_invalid(format!("invalid type for `face`: {face}, expected an object")));
        };
        deny_unknown(errors, face, &["threshold", "min_size", "return_face_state"])?;
        if let Some(v) = field(face, "threshold") {
            let Some(t) = v.as_f64() else {
                return Err(errors.config_invalid(format!("invalid type for `face.threshold`: {v}, expected a number")));
            };
            if !(0.0..=1.0).contains(&t) {
                return Err(errors.config_invalid(format!("`face.threshold` must be between 0 and 1, got {v}")));
            }
            out.threshold = t;
        }
        if let Some(v) = field(face, "min_size") {
            out.min_size = integer_in(errors, "face.min_size", v, 1, None)?;
        }
        if let Some(v) = field(face, "return_face_state") {
            let Some(b) = v.as_bool() else {
                return Err(errors
                    .config_invalid(format!("invalid type for `face.return_face_state`: {v}, expected a boolean")));
            };
            out.return_face_state = b;
        }
    }
    Ok(out)
}

fn measure_video(shared: &Shared, errors: &Errors, form: Form) -> Result<Reply, Reply> {
    let config = video_config(errors, form.config.as_ref())?;
    if form.files.is_empty() {
        return Err(errors.message_invalid("at least one `file` part (a JPEG image) is required"));
    }
    // Every image is checked before any is measured: first the cheap checks on all, then the headers.
    for (i, (content_type, data)) in form.files.iter().enumerate() {
        if content_type.as_deref().map(essence).as_deref() != Some("image/jpeg") {
            return Err(errors.unsupported(format!(
                "image {i}: only image/jpeg is accepted, got {}",
                content_type.as_deref().unwrap_or("no content type")
            )));
        }
        if !data.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Err(errors.unsupported(format!("image {i} is not a JPEG")));
        }
        if data.len() > MAX_IMAGE_BYTES {
            return Err(errors.error(413, "image_too_large", format!("image {i} is over 2 MB ({} bytes)", data.len())));
        }
    }
    let mut sizes = Vec::new();
    for (i, (_, data)) in form.files.iter().enumerate() {
        let Some((w, h)) = jpeg_dimensions(data) else {
            return Err(errors.error(400, "image_decode_failed", format!("image {i} could not be decoded")));
        };
        if u64::from(w) * u64::from(h) > MAX_IMAGE_PIXELS {
            return Err(errors.error(
                413,
                "image_too_large",
                format!("image {i} is {w}x{h}, over 8,294,400 pixels (the area of 3840x2160)"),
            ));
        }
        sizes.push((w, h));
    }

    let mut tracker =
        config.face_state.as_deref().and_then(|state| FaceTracker::decode(shared, state)).unwrap_or_default();
    let mut measurements = Vec::new();
    for (frame_id, &(w, h)) in sizes.iter().enumerate() {
        let (w_f, h_f) = (f64::from(w), f64::from(h));
        let shorter_side = (w_f / 2.0).min(h_f / 2.0);
        let mut faces = Vec::new();
        if FACE_CONFIDENCE >= config.threshold && shorter_side >= config.min_size as f64 {
            faces.push(json!({
                "face_id": tracker.id_for(w, h),
                "bbox": [w_f / 4.0, h_f / 4.0, 3.0 * w_f / 4.0, 3.0 * h_f / 4.0],
                "confidence": FACE_CONFIDENCE,
                "expressions": scores(&[("joy", 0.8812), ("amusement", 0.6), ("interest", 0.2)]),
                "descriptions": scores(&[("smile", 0.9), ("grin", 0.4)]),
            }));
        }
        measurements.push(json!({"frame_id": frame_id, "faces": faces}));
    }
    let mut body = json!({
        "request_id": errors.request_id,
        "run_id": uuid::Uuid::new_v4().to_string(),
        "received": {"frames": sizes.len()},
        "measurements": measurements,
    });
    if config.return_face_state {
        body["face_state"] = Value::String(tracker.encode(shared));
    }
    Ok(Reply::ok(body))
}

/// `(width, height)` from a JPEG's SOF0/SOF1/SOF2 segment; `None` if the header cannot be read.
fn jpeg_dimensions(data: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    loop {
        if *data.get(i)? != 0xFF {
            return None;
        }
        while *data.get(i)? == 0xFF {
            i += 1;
        }
        let marker = data[i];
        i += 1;
        match marker {
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]));
        if length < 2 || i + length > data.len() {
            return None;
        }
        match marker {
            0xC0..=0xC2 => {
                if length < 8 {
                    return None;
                }
                let height = u32::from(u16::from_be_bytes([data[i + 3], data[i + 4]]));
                let width = u32::from(u16::from_be_bytes([data[i + 5], data[i + 6]]));
                return (width > 0 && height > 0).then_some((width, height));
            }
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            _ => i += length,
        }
    }
}

/// Face ids: "the same face" is a face of the same bbox (same image size) seen before in the request or in
/// the continued `face_state`; up to 32 faces are remembered, oldest forgotten first.
#[derive(Default)]
struct FaceTracker {
    next_id: u64,
    /// `(width, height, face_id)`, least recently seen first.
    faces: Vec<(u32, u32, u64)>,
}

impl FaceTracker {
    fn id_for(&mut self, w: u32, h: u32) -> u64 {
        let id = match self.faces.iter().position(|&(fw, fh, _)| (fw, fh) == (w, h)) {
            Some(i) => self.faces.remove(i).2,
            None => {
                self.next_id += 1;
                self.next_id - 1
            }
        };
        self.faces.push((w, h, id));
        if self.faces.len() > REMEMBERED_FACES {
            self.faces.remove(0);
        }
        id
    }

    fn checksum(shared: &Shared, payload: &str) -> u64 {
        let mut hasher = DefaultHasher::new();
        shared.secret.hash(&mut hasher);
        payload.hash(&mut hasher);
        hasher.finish()
    }

    /// Opaque: base64 of `payload.checksum`, the payload naming the org, the issue time and the tracker.
    fn encode(&self, shared: &Shared) -> String {
        let issued = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let payload =
            json!({"org": shared.org, "issued": issued, "next_id": self.next_id, "faces": self.faces}).to_string();
        let sum = Self::checksum(shared, &payload);
        base64::engine::general_purpose::STANDARD.encode(format!("{payload}.{sum:016x}"))
    }

    /// The tracker in a state this fake issued to this org within 24 h; anything else is silently ignored.
    fn decode(shared: &Shared, state: &str) -> Option<FaceTracker> {
        let raw = base64::engine::general_purpose::STANDARD.decode(state).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (payload, sum) = raw.rsplit_once('.')?;
        if format!("{:016x}", Self::checksum(shared, payload)) != sum {
            return None;
        }
        let value: Value = serde_json::from_str(payload).ok()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        if value["org"] != shared.org.as_str() || now.saturating_sub(value["issued"].as_u64()?) > FACE_STATE_TTL_SECS {
            return None;
        }
        let faces = serde_json::from_value(value["faces"].clone()).ok()?;
        Some(FaceTracker { next_id: value["next_id"].as_u64()?, faces })
    }
}
