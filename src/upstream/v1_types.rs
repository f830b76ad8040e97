//! The bodies of Hume's v1 upload endpoints (`POST /v1/expression/audio/file` and
//! `POST /v1/expression/video/file`), typed as the v1 notes (§2.1, §2.2, §5.1) describe them.
//!
//! Responses are read tolerantly: Hume adds fields over time (its own SDK models allow extras),
//! so unknown fields are ignored rather than refused. Request configs are the opposite: v1 rejects
//! unknown config fields (`config_invalid`), so only the fields below exist, and a field left as
//! `None` is not written at all (never as `null`), leaving v1 to apply its default.

use serde::{Deserialize, Serialize};

pub use crate::predictions::V1Score;

/// What `POST /v1/expression/audio/file` answers: every utterance found and every measurement.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct AudioFileResponse {
    /// Hume's id for the request (quote it to support).
    pub request_id: String,
    /// The run's id, for `/v1/expression/run/{run_id}`.
    pub run_id: String,
    /// What the server took from the request.
    pub received: AudioReceived,
    /// Every continuous stretch of speech, in order.
    pub utterances: Vec<Utterance>,
    /// Every measurement, in order.
    pub measurements: Vec<AudioMeasurement>,
}

/// How much audio v1 received.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct AudioReceived {
    /// Length of the audio, in ms.
    pub audio_duration_ms: i64,
}

/// One continuous stretch of speech.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct Utterance {
    /// Numbered from 0 within the request.
    pub utterance_id: i64,
    /// Start, in ms from the start of the request's audio.
    pub audio_start_ms: i64,
    /// End, in ms from the start of the request's audio.
    pub audio_end_ms: i64,
}

/// One measurement of a window of at most 10 s of an utterance.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct AudioMeasurement {
    /// Numbered from 0 within the request.
    pub measurement_id: i64,
    /// The utterance measured.
    pub utterance_id: i64,
    /// Window start, in ms from the start of the request's audio.
    pub audio_start_ms: i64,
    /// Window end, in ms from the start of the request's audio.
    pub audio_end_ms: i64,
    /// `interval` or `speech_ended`.
    pub trigger: String,
    /// Expressions above their cutoffs, most probable first (v1's 415-name vocabulary).
    pub expressions: Vec<V1Score>,
    /// Voice attributes above their cutoff, most probable first (190 names).
    pub voice_attributes: Vec<V1Score>,
}

/// What `POST /v1/expression/video/file` answers: the faces in each image.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct VideoFileResponse {
    /// Hume's id for the request.
    pub request_id: String,
    /// The run's id.
    pub run_id: String,
    /// What the server took from the request.
    pub received: VideoReceived,
    /// One per image, in the order of the file parts.
    pub measurements: Vec<FrameMeasurement>,
    /// Opaque state continuing face ids in the next request; only when asked for.
    #[serde(default)]
    pub face_state: Option<String>,
}

/// How many images v1 received.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct VideoReceived {
    /// Images measured.
    pub frames: i64,
}

/// The faces found in one image.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct FrameMeasurement {
    /// The image's position in the request, from 0.
    pub frame_id: i64,
    /// Measured faces first (largest first), then listed-only faces (`face_id` null).
    pub faces: Vec<V1Face>,
}

/// One face v1 detected.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct V1Face {
    /// Follows the face across the request's images (and across requests given `face_state`);
    /// `null` for a face listed but not measured.
    pub face_id: Option<i64>,
    /// `[x0, y0, x1, y1]` in pixels of the image as sent, origin top-left.
    pub bbox: [f64; 4],
    /// Detection confidence.
    pub confidence: f64,
    /// Expressions with probability above 0.1; `null` when not measured.
    pub expressions: Option<Vec<V1Score>>,
    /// Facial descriptions with probability above 0.1; `null` when not measured.
    pub descriptions: Option<Vec<V1Score>>,
}

/// A v1 error body: `{type: "error", code, message, request_id}`, or for a 401 just
/// `{message, request_id?}`. Branch on `code`, never on `message`.
#[derive(Deserialize, Debug, Clone, PartialEq, Default)]
pub struct ErrorBody {
    /// `"error"` (absent on a 401).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The machine-readable reason, e.g. `config_invalid` (absent on a 401).
    pub code: Option<String>,
    /// A human-readable sentence; its wording may change.
    pub message: Option<String>,
    /// Hume's id for the request.
    pub request_id: Option<String>,
}

/// The `config` part of an audio upload. `Default` is an empty object: v1's defaults.
#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct AudioConfig {
    /// Measure every this many ms of speech (3000–10000; v1's default 3000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measurement_timer_ms: Option<u32>,
}

/// The `config` part of an image upload. `Default` is `{"face": {}}`: v1's defaults.
#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct VideoConfig {
    /// Face detection settings.
    pub face: FaceConfig,
    /// The `face_state` of an earlier response, to continue its face ids (valid 24 h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_state: Option<String>,
}

/// Face detection settings of an image upload.
#[derive(Serialize, Debug, Clone, PartialEq, Default)]
pub struct FaceConfig {
    /// Minimum detection confidence, 0–1 (v1's default 0.9; not v0's `prob_threshold` scale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Minimum shorter side of a face's box, in pixels of the image as sent (v1's default 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_size: Option<u32>,
    /// Ask for `face_state` in the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_face_state: Option<bool>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn audio_response_parses_and_ignores_unknown_fields() {
        let response: AudioFileResponse = serde_json::from_value(json!({
            "request_id": "req_1", "run_id": "0b7c", "received": {"audio_duration_ms": 6500, "new": 1},
            "utterances": [{"utterance_id": 0, "audio_start_ms": 200, "audio_end_ms": 6400}],
            "measurements": [{"measurement_id": 0, "utterance_id": 0, "audio_start_ms": 200, "audio_end_ms": 3200,
                "trigger": "interval", "expressions": [{"name": "interest", "probability": 0.81}],
                "voice_attributes": [{"name": "clear", "probability": 0.9}], "someday": true}],
            "future_field": {"x": 1}
        }))
        .unwrap();
        assert_eq!(response.received.audio_duration_ms, 6500);
        assert_eq!(response.utterances[0].audio_end_ms, 6400);
        let m = &response.measurements[0];
        assert_eq!((m.measurement_id, m.trigger.as_str()), (0, "interval"));
        assert_eq!(m.expressions, vec![V1Score { name: "interest".into(), probability: 0.81 }]);
    }

    #[test]
    fn video_response_parses_unmeasured_faces_and_optional_face_state() {
        let response: VideoFileResponse = serde_json::from_value(json!({
            "request_id": "r", "run_id": "u", "received": {"frames": 1},
            "measurements": [{"frame_id": 0, "faces": [
                {"face_id": 0, "bbox": [10.0, 20.5, 110.0, 140.0], "confidence": 0.99,
                 "expressions": [{"name": "joy", "probability": 0.7}], "descriptions": []},
                {"face_id": null, "bbox": [1, 2, 3, 4], "confidence": 0.95, "expressions": null, "descriptions": null}]}]
        }))
        .unwrap();
        assert_eq!(response.face_state, None);
        let faces = &response.measurements[0].faces;
        assert_eq!(faces[0].bbox, [10.0, 20.5, 110.0, 140.0]);
        assert_eq!((faces[1].face_id, faces[1].expressions.as_ref()), (None, None));
        let with_state: VideoFileResponse = serde_json::from_value(json!({
            "request_id": "r", "run_id": "u", "received": {"frames": 0}, "measurements": [], "face_state": "opaque"
        }))
        .unwrap();
        assert_eq!(with_state.face_state.as_deref(), Some("opaque"));
    }

    #[test]
    fn error_bodies_parse_with_and_without_a_code() {
        let normal: ErrorBody = serde_json::from_value(json!({
            "type": "error", "code": "config_invalid", "message": "unknown field", "request_id": "r"
        }))
        .unwrap();
        assert_eq!((normal.kind.as_deref(), normal.code.as_deref()), (Some("error"), Some("config_invalid")));
        let unauthorized: ErrorBody = serde_json::from_value(json!({"message": "Invalid API key"})).unwrap();
        assert_eq!(unauthorized, ErrorBody { message: Some("Invalid API key".into()), ..Default::default() });
    }

    #[test]
    fn configs_leave_unset_fields_out() {
        assert_eq!(serde_json::to_value(AudioConfig::default()).unwrap(), json!({}));
        assert_eq!(
            serde_json::to_value(AudioConfig { measurement_timer_ms: Some(5000) }).unwrap(),
            json!({"measurement_timer_ms": 5000})
        );
        assert_eq!(serde_json::to_value(VideoConfig::default()).unwrap(), json!({"face": {}}));
        let config = VideoConfig {
            face: FaceConfig { threshold: None, min_size: Some(40), return_face_state: Some(true) },
            face_state: Some("s".into()),
        };
        assert_eq!(
            serde_json::to_value(config).unwrap(),
            json!({"face": {"min_size": 40, "return_face_state": true}, "face_state": "s"})
        );
    }
}
