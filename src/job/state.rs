//! The v0 job object (`GET /v0/batch/jobs/{id}`) and the request echo with v0's defaults.

use serde_json::{json, Map, Value};

use super::request::{InferenceRequest, MODEL_NAMES};
use super::spec::FileEcho;
use super::status::JobStatus;

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

    /// The v0 `state` object.
    pub fn to_json(&self) -> Value {
        let status = self.status();
        match self {
            Self::Queued { created_ms } => json!({"status": status, "created_timestamp_ms": created_ms}),
            Self::InProgress { created_ms, started_ms } => {
                json!({"status": status, "created_timestamp_ms": created_ms, "started_timestamp_ms": started_ms})
            }
            Self::Completed { created_ms, started_ms, ended_ms, num_predictions, num_errors } => json!({
                "status": status, "created_timestamp_ms": created_ms, "started_timestamp_ms": started_ms,
                "ended_timestamp_ms": ended_ms, "num_predictions": num_predictions, "num_errors": num_errors,
            }),
            Self::Failed { created_ms, started_ms, ended_ms, message } => json!({
                "status": status, "created_timestamp_ms": created_ms, "started_timestamp_ms": started_ms,
                "ended_timestamp_ms": ended_ms, "message": message,
            }),
        }
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

/// The v0 job object.
pub fn job_json(id: &str, request: &Value, state: &JobState) -> Value {
    json!({"type": "INFERENCE", "job_id": id, "request": request, "state": state.to_json()})
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
        assert_eq!(s.to_json().as_object().unwrap().len(), 6);
        assert_eq!(
            JobState::Queued { created_ms: 1 }.to_json(),
            json!({"status": "QUEUED", "created_timestamp_ms": 1})
        );
    }
}
