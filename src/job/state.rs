//! The v0 job object (`GET /v0/batch/jobs/{id}`): a job's state, the job as the reads show it
//! ([`JobView`]), and the request echo with v0's defaults.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::request::{InferenceRequest, MODEL_NAMES};
use super::spec::FileEcho;
use super::status::JobStatus;
use super::JobId;

/// A job's state, as v0 reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    Queued { created_ms: i64 },
    InProgress { created_ms: i64, started_ms: i64 },
    Completed { created_ms: i64, started_ms: i64, ended_ms: i64, num_predictions: i64, num_errors: i64 },
    Failed { created_ms: i64, started_ms: i64, ended_ms: i64, message: String },
}

impl JobState {
    /// Its status.
    pub fn status(&self) -> JobStatus {
        match self {
            Self::Queued { .. } => JobStatus::Queued,
            Self::InProgress { .. } => JobStatus::InProgress,
            Self::Completed { .. } => JobStatus::Completed,
            Self::Failed { .. } => JobStatus::Failed,
        }
    }

    /// When the job was created and started; `now_ms` stands in for a start not yet made.
    pub fn created_and_started(&self, now_ms: i64) -> (i64, i64) {
        match *self {
            Self::Queued { created_ms } => (created_ms, now_ms.max(created_ms)),
            Self::InProgress { created_ms, started_ms }
            | Self::Completed { created_ms, started_ms, .. }
            | Self::Failed { created_ms, started_ms, .. } => (created_ms, started_ms),
        }
    }
}

/// A job's `state` as v0 writes it: its status and the timestamps it has reached, and at its
/// end the counts (`COMPLETED`) or the reason (`FAILED`). [`JobState`] is (de)serialized
/// through it; fields are in alphabetical order, as v0's JSON has always been written here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = V0JobState)]
pub struct V0State {
    created_timestamp_ms: i64,
    /// Once ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_timestamp_ms: Option<i64>,
    /// `FAILED` only: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// `COMPLETED` only: how many sources had an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_errors: Option<i64>,
    /// `COMPLETED` only: how many predictions were made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_predictions: Option<i64>,
    /// Once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_timestamp_ms: Option<i64>,
    status: JobStatus,
}

impl From<JobState> for V0State {
    fn from(state: JobState) -> Self {
        let status = state.status();
        let mut v0 = Self {
            created_timestamp_ms: 0,
            ended_timestamp_ms: None,
            message: None,
            num_errors: None,
            num_predictions: None,
            started_timestamp_ms: None,
            status,
        };
        match state {
            JobState::Queued { created_ms } => v0.created_timestamp_ms = created_ms,
            JobState::InProgress { created_ms, started_ms } => {
                (v0.created_timestamp_ms, v0.started_timestamp_ms) = (created_ms, Some(started_ms));
            }
            JobState::Completed { created_ms, started_ms, ended_ms, num_predictions, num_errors } => {
                (v0.created_timestamp_ms, v0.started_timestamp_ms, v0.ended_timestamp_ms) =
                    (created_ms, Some(started_ms), Some(ended_ms));
                (v0.num_predictions, v0.num_errors) = (Some(num_predictions), Some(num_errors));
            }
            JobState::Failed { created_ms, started_ms, ended_ms, message } => {
                (v0.created_timestamp_ms, v0.started_timestamp_ms, v0.ended_timestamp_ms) =
                    (created_ms, Some(started_ms), Some(ended_ms));
                v0.message = Some(message);
            }
        }
        v0
    }
}

/// A state read from v0's JSON (an upstream's): a timestamp it leaves out reads as the one
/// before it, a count as 0, as the stores read a row.
impl From<V0State> for JobState {
    fn from(v0: V0State) -> Self {
        let created_ms = v0.created_timestamp_ms;
        let started_ms = v0.started_timestamp_ms.unwrap_or(created_ms);
        let ended_ms = v0.ended_timestamp_ms.unwrap_or(started_ms);
        match v0.status {
            JobStatus::Queued => Self::Queued { created_ms },
            JobStatus::InProgress => Self::InProgress { created_ms, started_ms },
            JobStatus::Completed => Self::Completed {
                created_ms,
                started_ms,
                ended_ms,
                num_predictions: v0.num_predictions.unwrap_or(0),
                num_errors: v0.num_errors.unwrap_or(0),
            },
            JobStatus::Failed => {
                Self::Failed { created_ms, started_ms, ended_ms, message: v0.message.unwrap_or_default() }
            }
        }
    }
}

impl Serialize for JobState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        V0State::from(self.clone()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JobState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        V0State::deserialize(deserializer).map(Self::from)
    }
}

/// What a job is, in v0's `type`: the only kind there is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobKind {
    #[default]
    Inference,
}

/// A job as v0 shows it: what `GET /v0/batch/jobs/{id}` answers, and each item of a list.
/// Fields are in alphabetical order, as v0's JSON has always been written here.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = V0Job)]
pub struct JobView {
    pub job_id: JobId,
    /// The request as given, with every model's settings filled in (in a list, long texts and
    /// URLs are cut short).
    #[schema(value_type = Object)]
    pub request: Value,
    #[schema(value_type = V0State)]
    pub state: JobState,
    /// `INFERENCE`.
    #[serde(rename = "type", default)]
    pub kind: JobKind,
    /// The bytes this view was read from, when it came from an upstream (`hume-batch`): written
    /// back as they came, so a pass-through keeps the upstream's fields and their order.
    #[serde(skip)]
    #[schema(ignore)]
    pub received: Option<bytes::Bytes>,
}

impl JobView {
    /// A job whose request echoes as `request`.
    pub fn new(job_id: JobId, request: Value, state: JobState) -> Self {
        Self { job_id, request, state, kind: JobKind::Inference, received: None }
    }
}

/// v0's defaults for each model's settings, as its job echo shows them.
fn model_defaults(name: &str) -> Value {
    match name {
        "face" => json!({"fps_pred": 3, "prob_threshold": 0.99, "identify_faces": false, "min_face_size": 60,
                          "facs": null, "descriptions": null, "save_faces": false}),
        "prosody" => json!({"granularity": "utterance", "identify_speakers": false, "window": null}),
        "language" => json!({"granularity": "word", "identify_speakers": false, "sentiment": null, "toxicity": null}),
        "ner" => json!({"identify_speakers": false}),
        _ => json!({}),
    }
}

/// The request as the job echoes it: every chosen model (all six when none was chosen) with
/// v0's defaults under the caller's settings, plus `files`, `text`, `urls`, `callback_url`, `notify`.
pub fn request_echo(request: &InferenceRequest, files: &[FileEcho]) -> Value {
    let chosen: Vec<(String, Value)> = match &request.models {
        Some(models) => models.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        None => MODEL_NAMES.iter().map(|n| (n.to_string(), json!({}))).collect(),
    };
    let models: Map<String, Value> = chosen
        .into_iter()
        .map(|(name, given)| {
            let mut settings = model_defaults(&name);
            if let (Some(settings), Some(given)) = (settings.as_object_mut(), given.as_object()) {
                settings.extend(given.clone());
            }
            (name, settings)
        })
        .collect();
    let mut echo = json!({
        "models": models,
        "urls": request.urls,
        "text": request.text,
        "files": files,
        "callback_url": request.callback_url,
        "notify": request.notify.unwrap_or(false),
    });
    if let Some(transcription) = &request.transcription {
        echo["transcription"] = transcription.clone().unwrap_or(Value::Null);
    }
    echo
}

/// Characters of each text item a listed job's request shows.
pub const PREVIEW_TEXT_CHARS: usize = 200;

/// Characters of each URL a listed job's request shows.
pub const PREVIEW_URL_CHARS: usize = 2_000;

/// The request echo as a list shows it: v0's shape, with each text item and URL cut short (an
/// ellipsis marks the cut), so a page of jobs stays small whatever the jobs hold.
pub fn request_preview(request: &Value) -> Value {
    let mut preview = request.clone();
    for (key, max) in [("text", PREVIEW_TEXT_CHARS), ("urls", PREVIEW_URL_CHARS)] {
        if let Some(items) = preview.get_mut(key).and_then(Value::as_array_mut) {
            for item in items.iter_mut() {
                if let Some(cut) = item.as_str().filter(|s| s.chars().count() > max).map(|s| cut_chars(s, max)) {
                    *item = Value::String(cut);
                }
            }
        }
    }
    preview
}

fn cut_chars(s: &str, max: usize) -> String {
    let end = s.char_indices().nth(max.saturating_sub(1)).map_or(s.len(), |(i, _)| i);
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::spec::JobSpec;

    /// The echo of a request with these uploads, as `GET /v0/batch/jobs/{id}` shows it.
    fn echo_of(request: &Value, files: Vec<Value>) -> Value {
        let mut spec = JobSpec::from_v0(request.clone(), !files.is_empty()).unwrap();
        spec.files = serde_json::from_value(Value::Array(files)).unwrap();
        spec.echo()
    }

    /// The echo is what the v0 SDK reads: each request of `tests/golden/echo-requests.json`
    /// (the bodies the SDK and the action send, and every setting) echoes as
    /// `tests/golden/echo.json` recorded it (`HUME_ACTION_UPDATE_GOLDEN=1` records it again).
    #[test]
    fn the_echo_of_each_golden_request_is_unchanged() {
        let cases: Vec<Value> = serde_json::from_str(include_str!("../../tests/golden/echo-requests.json")).unwrap();
        let echoes: Vec<Value> = cases
            .iter()
            .map(|case| {
                let files = case["files"].as_array().cloned().unwrap_or_default();
                json!({"name": case["name"], "echo": echo_of(&case["request"], files)})
            })
            .collect();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/echo.json");
        if std::env::var_os("HUME_ACTION_UPDATE_GOLDEN").is_some() {
            std::fs::write(path, serde_json::to_string_pretty(&echoes).unwrap() + "\n").unwrap();
        }
        let golden: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(golden.len(), echoes.len());
        for (want, got) in golden.iter().zip(&echoes) {
            // Byte for byte: the same text, not only equal values (3 and 3.0 differ here).
            assert_eq!(want.to_string(), got.to_string(), "{}", want["name"]);
        }
    }

    #[test]
    fn echo_fills_defaults_under_the_callers_settings() {
        let echo = echo_of(&json!({"text": ["hi"], "models": {"language": {"granularity": "sentence"}}}), vec![]);
        assert_eq!(
            echo["models"],
            json!({"language": {"granularity": "sentence", "identify_speakers": false, "sentiment": null, "toxicity": null}})
        );
        assert_eq!(echo["files"], json!([]));
        assert_eq!(echo["callback_url"], Value::Null);
        let all = echo_of(&json!({"text": ["hi"]}), vec![]);
        assert_eq!(all["models"].as_object().unwrap().len(), 6);
        assert_eq!(all["models"]["face"]["fps_pred"], 3);
    }

    #[test]
    fn v0s_own_defaults_are_valid_settings() {
        let models: Map<String, Value> = MODEL_NAMES.iter().map(|n| (n.to_string(), model_defaults(n))).collect();
        crate::job::models::ModelSettings::parse_v0(&models).unwrap();
    }

    #[test]
    fn a_preview_cuts_long_texts_and_urls_and_keeps_the_rest() {
        let long = "é".repeat(PREVIEW_TEXT_CHARS + 50);
        let request = json!({"text": [long, "short"], "urls": ["https://a.test/x"], "models": {"language": {}}});
        let preview = request_preview(&request);
        let cut = preview["text"][0].as_str().unwrap();
        assert_eq!(cut.chars().count(), PREVIEW_TEXT_CHARS);
        assert!(cut.ends_with('…'));
        assert_eq!(
            (&preview["text"][1], &preview["urls"], &preview["models"]),
            (&request["text"][1], &request["urls"], &request["models"])
        );
    }

    #[test]
    fn states_carry_exactly_v0s_fields() {
        let s = JobState::Completed { created_ms: 1, started_ms: 2, ended_ms: 3, num_predictions: 4, num_errors: 0 };
        assert_eq!(serde_json::to_value(&s).unwrap().as_object().unwrap().len(), 6);
        assert_eq!(
            serde_json::to_value(JobState::Queued { created_ms: 1 }).unwrap(),
            json!({"status": "QUEUED", "created_timestamp_ms": 1})
        );
        let failed = JobState::Failed { created_ms: 1, started_ms: 2, ended_ms: 3, message: "m".into() };
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 5);
        assert_eq!(serde_json::from_value::<JobState>(json).unwrap(), failed);
    }

    #[test]
    fn a_job_view_is_written_as_v0s_job_object_always_was() {
        let state =
            JobState::Completed { created_ms: 1, started_ms: 2, ended_ms: 3, num_predictions: 4, num_errors: 0 };
        let view = JobView::new("j-1".into(), json!({"text": ["hi"]}), state.clone());
        let written = serde_json::to_string(&view).unwrap();
        assert_eq!(
            written,
            r#"{"job_id":"j-1","request":{"text":["hi"]},"state":{"created_timestamp_ms":1,"ended_timestamp_ms":3,"num_errors":0,"num_predictions":4,"started_timestamp_ms":2,"status":"COMPLETED"},"type":"INFERENCE"}"#
        );
        let back: JobView = serde_json::from_str(&written).unwrap();
        assert_eq!((back.job_id.as_str(), back.state), ("j-1", state));
    }

    #[test]
    fn an_upstream_job_reads_with_fields_it_leaves_out_filled_and_ones_it_adds_ignored() {
        let upstream = json!({"job_id": "u", "user_id": "x", "request": {}, "state": {"status": "IN_PROGRESS", "created_timestamp_ms": 5}});
        let view: JobView = serde_json::from_value(upstream).unwrap();
        assert_eq!(view.state, JobState::InProgress { created_ms: 5, started_ms: 5 });
        assert_eq!(view.kind, JobKind::Inference);
        let unknown = json!({"job_id": "u", "request": {}, "state": {"status": "DONE", "created_timestamp_ms": 5}});
        assert!(serde_json::from_value::<JobView>(unknown).is_err());
    }
}
