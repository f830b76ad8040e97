//! The v0 batch prediction shapes, typed: what `GET /v0/batch/jobs/{id}/predictions` returns and
//! what the callback carries.
//!
//! Clients read these with Hume's own v0 SDK (`hume==0.13.13`, `hume.expression_measurement.batch`),
//! so field names, nesting and nulls follow v0 exactly: optional fields are written as explicit
//! `null` (v0 never left them out), `box` keeps its name, every score list is `[{name, score}]`.
//!
//! Face, prosody and burst are measured by Hume's v1 API, which reports fewer and differently named
//! scores (see `crate::analyzers::hume::mapping`). So that nothing Hume measured is thrown away,
//! those predictions also carry v1's full answer under one extra field, `hume_v1`. It is left out
//! entirely when absent. The SDK's pydantic models allow extra fields (`extra="allow"`), so v0
//! clients parse these predictions unchanged and can read `hume_v1` if they know about it.

pub mod artifacts;
pub mod names;

use serde::{Deserialize, Serialize};

/// One named score, `{name, score}`: v0's `EmotionScore`, `DescriptionsScore`, `FacsScore`,
/// `SentimentScore` and `ToxicityScore` all have this shape.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct Score {
    /// The emotion, description, FACS unit, sentiment level or toxicity label.
    pub name: String,
    /// Its score.
    pub score: f64,
}

impl Score {
    /// A score named `name`.
    pub fn new(name: impl Into<String>, score: f64) -> Self {
        Self { name: name.into(), score }
    }

    /// `names[i]` paired with `values[i]`, in that order (a model's output row as v0 scores).
    ///
    /// Each `f32` is widened through its shortest decimal form, so `0.3f32` becomes `0.3` rather
    /// than `0.30000001192092896`. Extra names or values beyond the shorter slice are dropped.
    pub fn list(names: &[&str], values: &[f32]) -> Vec<Score> {
        debug_assert_eq!(names.len(), values.len(), "one value per name");
        names.iter().zip(values).map(|(name, value)| Score::new(*name, widen(*value))).collect()
    }
}

/// `v` as the `f64` with the same shortest decimal representation.
fn widen(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// A time range in seconds from the start of the media.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct TimeInterval {
    /// Start, in seconds.
    pub begin: f64,
    /// End, in seconds.
    pub end: f64,
}

/// A text segment's position in characters, zero-based: `begin` inclusive, `end` exclusive.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionInterval {
    /// First character, inclusive.
    pub begin: u64,
    /// Last character, exclusive.
    pub end: u64,
}

/// A face's box in pixels of the source media, origin top-left.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, utoipa::ToSchema)]
pub struct BoundingBox {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// One score exactly as Hume v1 gave it: `{name, probability}`, name lowercase.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct V1Score {
    /// v1's name, e.g. `surprise (positive)`.
    pub name: String,
    /// v1's probability, 0..1, rounded to 4 places by Hume.
    pub probability: f64,
}

/// What Hume v1 said about one face (the `hume_v1` field of a [`FacePrediction`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FaceV1 {
    /// v1's face id in this source (follows the face across frames; not a person's identity).
    pub face_id: Option<i64>,
    /// Detection confidence (also the prediction's `prob`).
    pub confidence: f64,
    /// Every expression v1 reported, as it reported them (only those above its cutoff).
    pub expressions: Vec<V1Score>,
    /// Every facial description v1 reported, as it reported them.
    pub descriptions: Vec<V1Score>,
}

/// What Hume v1 said about one stretch of voice (the `hume_v1` field of a [`ProsodyPrediction`]
/// or [`BurstPrediction`]).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct VoiceV1 {
    /// v1's measurement id. v1 numbers from 0 in every request, so ids repeat within a source
    /// that took several requests.
    pub measurement_id: i64,
    /// v1's utterance id (numbered from 0 per request, like `measurement_id`).
    pub utterance_id: i64,
    /// Why v1 measured here: `interval` or `speech_ended`.
    pub trigger: String,
    /// Every expression v1 reported (v1's own vocabulary of 415 names), above its cutoffs.
    pub expressions: Vec<V1Score>,
    /// Every voice attribute v1 reported (190 names), above its cutoff.
    pub voice_attributes: Vec<V1Score>,
}

/// v0's face prediction: one face in one frame.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FacePrediction {
    /// Frame number in the source.
    pub frame: u64,
    /// Time of the frame, in seconds (a point, not an interval).
    pub time: f64,
    /// Probability that this is a face (detection confidence).
    pub prob: f64,
    /// Where the face is, in source pixels; written as `box`.
    #[serde(rename = "box")]
    pub bbox: BoundingBox,
    /// The 48 emotions, in v0's order.
    pub emotions: Vec<Score>,
    /// FACS 2.0 scores; `null` when not computed.
    pub facs: Option<Vec<Score>>,
    /// Facial descriptions; `null` unless requested.
    pub descriptions: Option<Vec<Score>>,
    /// Hume v1's full answer for this face; left out when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hume_v1: Option<FaceV1>,
}

/// v0's prosody prediction: the tune of the voice over a time range.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ProsodyPrediction {
    /// The words spoken in the range, when known; `null` otherwise.
    pub text: Option<String>,
    /// The range measured.
    pub time: TimeInterval,
    /// Transcription confidence; `null` without a transcript.
    pub confidence: Option<f64>,
    /// Speaker assignment confidence; `null` without a transcript.
    pub speaker_confidence: Option<f64>,
    /// The 48 emotions, in v0's order.
    pub emotions: Vec<Score>,
    /// Hume v1's full measurement; left out when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hume_v1: Option<VoiceV1>,
}

/// v0's vocal burst prediction.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct BurstPrediction {
    /// The range measured.
    pub time: TimeInterval,
    /// The 48 emotions, in v0's order.
    pub emotions: Vec<Score>,
    /// The 67 burst types ([`names::BURST_DESCRIPTIONS`]), in v0's order.
    pub descriptions: Vec<Score>,
    /// Hume v1's full measurement; left out when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hume_v1: Option<VoiceV1>,
}

/// v0's language prediction: one text segment.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LanguagePrediction {
    /// The segment.
    pub text: String,
    /// Where it is in the text, in characters.
    pub position: PositionInterval,
    /// When it was spoken (transcripts only); `null` for text.
    pub time: Option<TimeInterval>,
    /// Transcription confidence; `null` for text.
    pub confidence: Option<f64>,
    /// Speaker assignment confidence; `null` for text.
    pub speaker_confidence: Option<f64>,
    /// The 53 language emotions, in v0's order.
    pub emotions: Vec<Score>,
    /// Sentiment levels "1".."9" as a distribution; `null` unless requested.
    pub sentiment: Option<Vec<Score>>,
    /// Toxicity labels; `null` unless requested.
    pub toxicity: Option<Vec<Score>>,
}

/// Predictions about one individual (`face_0`, ...) or everyone (`unknown`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Grouped<P> {
    /// `unknown`, or the individual's label.
    pub id: String,
    /// The predictions, in time order.
    pub predictions: Vec<P>,
}

/// Transcription metadata of prosody and language (`null` for face and burst).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TranscriptionMetadata {
    /// The transcription model's confidence, 0..1.
    pub confidence: f64,
    /// The language detected, as a BCP-47 tag; `null` when not detected.
    pub detected_language: Option<String>,
}

/// One model's output for one file: `{metadata, grouped_predictions}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ModelOutput<P> {
    /// Transcription metadata; `null` when there was no transcription.
    pub metadata: Option<TranscriptionMetadata>,
    /// The predictions, grouped by individual.
    pub grouped_predictions: Vec<Grouped<P>>,
    /// What the model left out and why, in words (faces under `min_face_size`, say): an extra
    /// field, like `file_type`, that v0 clients ignore. Left out when there is nothing to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl<P> ModelOutput<P> {
    /// No metadata and a single group `id` holding `predictions` (usually `"unknown"`).
    pub fn single(id: impl Into<String>, predictions: Vec<P>) -> Self {
        Self { metadata: None, grouped_predictions: vec![Grouped { id: id.into(), predictions }], note: None }
    }
}

/// The output of every model that ran on one file; models that did not run are left out.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct ModelsPredictions {
    /// Faces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face: Option<ModelOutput<FacePrediction>>,
    /// Vocal bursts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<ModelOutput<BurstPrediction>>,
    /// Speech prosody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prosody: Option<ModelOutput<ProsodyPrediction>>,
    /// Language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<ModelOutput<LanguagePrediction>>,
}

impl ModelsPredictions {
    /// Adds `other`'s models. A model present in both keeps this one's metadata (or takes
    /// `other`'s if this has none) and gets `other`'s groups appended.
    pub fn merge(&mut self, other: ModelsPredictions) {
        merge_output(&mut self.face, other.face);
        merge_output(&mut self.burst, other.burst);
        merge_output(&mut self.prosody, other.prosody);
        merge_output(&mut self.language, other.language);
    }

    /// Whether no model produced output.
    pub fn is_empty(&self) -> bool {
        self.face.is_none() && self.burst.is_none() && self.prosody.is_none() && self.language.is_none()
    }
}

fn merge_output<P>(into: &mut Option<ModelOutput<P>>, other: Option<ModelOutput<P>>) {
    match (into.as_mut(), other) {
        (_, None) => {}
        (None, other) => *into = other,
        (Some(mine), Some(other)) => {
            if mine.metadata.is_none() {
                mine.metadata = other.metadata;
            }
            mine.grouped_predictions.extend(other.grouped_predictions);
        }
    }
}

/// Every model's output for one file of a source (a source that is an archive has several).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct InferencePrediction {
    /// The file's path within the source (or the source's own name).
    pub file: String,
    /// What the file was taken to be, e.g. `video`, `audio`, `text` (v0 sent this too, outside its spec).
    pub file_type: String,
    /// The models' outputs, each in v0's shape (`face`, `burst`, `prosody`, `language`; from
    /// Hume itself also `ner`, `facemesh`): `{metadata, grouped_predictions: [{id,
    /// predictions}]}`. Face, prosody and burst predictions may carry Hume v1's full answer in
    /// `hume_v1`.
    #[schema(value_type = Object)]
    pub models: ModelsPredictions,
    /// What was said in the file, when it was transcribed (an extra field, like `file_type`, that
    /// v0 clients ignore; downstream steps read the words and their times here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Transcript>,
    /// The media's length in seconds, for audio and video (an extra field, like `transcript`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
    /// Measurements of the voice, one per utterance (an extra field, like `transcript`, that v0
    /// clients ignore): pitch, loudness and speaking rate, not emotions. Present when the voice
    /// model (`prosody`) was asked for and the speech was transcribed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<Vec<VoiceMeasure>>,
}

/// What one utterance of one speaker sounded like, measured from the signal (see
/// `crate::analyzers::voice`): not an emotion, and not Hume's prosody. A value that could not
/// be measured (too short, no voiced frames) is `null`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct VoiceMeasure {
    /// When the utterance was said, from its first word's start to its last word's end.
    #[schema(value_type = Object)]
    pub time: TimeInterval,
    /// Who said it: a speaker id, or `unknown` when speakers are not identified.
    pub speaker: String,
    /// The words said.
    pub text: Option<String>,
    /// How many words were said.
    pub words: u32,
    /// The median fundamental frequency (F0) of its voiced frames, in Hz.
    pub pitch_hz: Option<f64>,
    /// How widely the pitch moved: the 10th to the 90th percentile of F0, in semitones.
    pub pitch_range_semitones: Option<f64>,
    /// Its EBU R128 integrated (gated) loudness, in LUFS.
    pub loudness_lufs: Option<f64>,
    /// Its loudest moment: the highest EBU R128 momentary (400 ms) loudness, in LUFS.
    pub loudness_peak_lufs: Option<f64>,
    /// Words per minute: the words over the time from the first word's start to the last's end.
    pub words_per_minute: Option<f64>,
    /// Whether it falls in the speaker's first minute, the baseline the changes compare with.
    pub in_baseline: bool,
    /// `pitch_hz` against the speaker's first-minute median pitch, in semitones.
    pub pitch_change_semitones: Option<f64>,
    /// `loudness_lufs` against the speaker's first-minute loudness, in dB (LU).
    pub loudness_change_db: Option<f64>,
    /// `words_per_minute` over the speaker's first-minute rate (1.2: 20% faster).
    pub rate_change_ratio: Option<f64>,
}

/// One transcribed word, with its time in seconds on the source's timeline.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct Word {
    pub text: String,
    pub begin: f64,
    pub end: f64,
    /// The recogniser's confidence in 0..1.
    pub confidence: f64,
    /// Who said it (`spk_0`, `spk_1`, ...), when speakers were identified; left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// How sure the speaker model is of that speaker, 0..1; left out with `speaker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_confidence: Option<f64>,
}

/// Who said `words`: the speaker of most of their time, and a confidence that is the share of
/// the time that speaker said times that speaker's mean confidence on them. `None` when no word
/// has a speaker.
pub fn speaker_of_words<'a>(words: impl IntoIterator<Item = &'a Word>) -> Option<(String, f64)> {
    let mut time: Vec<(&str, f64, f64)> = Vec::new();
    let mut total = 0.0;
    for w in words {
        let secs = (w.end - w.begin).max(0.01);
        total += secs;
        if let Some(speaker) = w.speaker.as_deref() {
            let confidence = w.speaker_confidence.unwrap_or(0.0);
            match time.iter_mut().find(|(s, _, _)| *s == speaker) {
                Some(entry) => {
                    entry.1 += secs;
                    entry.2 += secs * confidence;
                }
                None => time.push((speaker, secs, secs * confidence)),
            }
        }
    }
    let (speaker, secs, weighted) = time.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    Some((speaker.to_owned(), (secs / total) * (weighted / secs)))
}

/// What was said in a file: its words in order, the language, and an overall confidence.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, utoipa::ToSchema)]
pub struct Transcript {
    /// The language spoken (BCP-47, e.g. `en`), detected or as requested.
    pub language: String,
    /// Overall confidence in 0..1 (v0's `TranscriptionMetadata.confidence`).
    pub confidence: f64,
    pub words: Vec<Word>,
}

/// A failure measuring one file: v0's `Error`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct SourceError {
    /// The file's path within the source.
    pub file: String,
    /// What went wrong, as a sentence.
    pub message: String,
}

/// Everything measured for one source, and everything that failed.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct InferenceResults {
    /// One entry per file measured.
    pub predictions: Vec<InferencePrediction>,
    /// One entry per failure.
    pub errors: Vec<SourceError>,
}

/// Where a source came from, tagged by `type`: `url`, `file` or `text`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Source {
    /// Fetched from a URL.
    Url {
        /// The URL as given.
        url: String,
    },
    /// Uploaded in the request.
    File {
        /// The upload's file name; `null` if none was given.
        filename: Option<String>,
        /// The upload's content type; `null` if none was given.
        content_type: Option<String>,
        /// MD5 of the upload, lowercase hex.
        md5sum: String,
    },
    /// One of the request's `text` strings.
    Text {},
}

/// One source's result: v0's `InferenceSourcePredictResult`. The predictions endpoint returns a
/// list of these, one per source, in request order.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct SourceResult {
    /// The source.
    pub source: Source,
    /// What was measured.
    pub results: InferenceResults,
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(value: &T) -> Value {
        let json = serde_json::to_value(value).unwrap();
        let back: T = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, value);
        json
    }

    fn face(hume_v1: Option<FaceV1>) -> FacePrediction {
        FacePrediction {
            frame: 3,
            time: 0.1,
            prob: 0.97,
            bbox: BoundingBox { x: 1.0, y: 2.0, w: 3.0, h: 4.0 },
            emotions: vec![Score::new("Joy", 0.5)],
            facs: None,
            descriptions: None,
            hume_v1,
        }
    }

    #[test]
    fn face_uses_box_and_writes_nulls_but_leaves_out_absent_hume_v1() {
        let json = round_trip(&face(None));
        assert_eq!(
            json,
            json!({"frame": 3, "time": 0.1, "prob": 0.97, "box": {"x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0},
                   "emotions": [{"name": "Joy", "score": 0.5}], "facs": null, "descriptions": null})
        );
    }

    #[test]
    fn face_with_hume_v1_round_trips() {
        let v1 = FaceV1 {
            face_id: Some(0),
            confidence: 0.97,
            expressions: vec![V1Score { name: "joy".into(), probability: 0.5 }],
            descriptions: vec![V1Score { name: "smile".into(), probability: 0.8 }],
        };
        let json = round_trip(&face(Some(v1)));
        assert_eq!(json["hume_v1"]["face_id"], 0);
        assert_eq!(json["hume_v1"]["descriptions"][0], json!({"name": "smile", "probability": 0.8}));
    }

    #[test]
    fn prosody_and_burst_write_v0_fields() {
        let time = TimeInterval { begin: 600.5, end: 603.5 };
        let prosody = ProsodyPrediction {
            text: None,
            time,
            confidence: None,
            speaker_confidence: None,
            emotions: vec![],
            hume_v1: None,
        };
        assert_eq!(
            round_trip(&prosody),
            json!({"text": null, "time": {"begin": 600.5, "end": 603.5}, "confidence": null,
                   "speaker_confidence": null, "emotions": []})
        );
        let burst = BurstPrediction {
            time,
            emotions: vec![],
            descriptions: vec![Score::new("Sigh", 0.25)],
            hume_v1: Some(VoiceV1 {
                measurement_id: 1,
                utterance_id: 0,
                trigger: "speech_ended".into(),
                expressions: vec![],
                voice_attributes: vec![V1Score { name: "calm".into(), probability: 0.9 }],
            }),
        };
        let json = round_trip(&burst);
        assert_eq!(json["descriptions"], json!([{"name": "Sigh", "score": 0.25}]));
        assert_eq!(json["hume_v1"]["trigger"], "speech_ended");
    }

    #[test]
    fn language_writes_every_optional_field_as_null() {
        let prediction = LanguagePrediction {
            text: "so, great".into(),
            position: PositionInterval { begin: 0, end: 9 },
            time: None,
            confidence: None,
            speaker_confidence: None,
            emotions: Score::list(&["Anger", "Joy"], &[0.3, 0.5]),
            sentiment: None,
            toxicity: Some(Score::list(&["toxic"], &[0.1])),
        };
        assert_eq!(
            round_trip(&prediction),
            json!({"text": "so, great", "position": {"begin": 0, "end": 9}, "time": null, "confidence": null,
                   "speaker_confidence": null, "emotions": [{"name": "Anger", "score": 0.3}, {"name": "Joy", "score": 0.5}],
                   "sentiment": null, "toxicity": [{"name": "toxic", "score": 0.1}]})
        );
    }

    #[test]
    fn sources_are_tagged_by_type() {
        assert_eq!(
            round_trip(&Source::Url { url: "https://x/a.mp4".into() }),
            json!({"type": "url", "url": "https://x/a.mp4"})
        );
        assert_eq!(round_trip(&Source::Text {}), json!({"type": "text"}));
        let file = Source::File { filename: None, content_type: Some("video/mp4".into()), md5sum: "ab".into() };
        assert_eq!(
            round_trip(&file),
            json!({"type": "file", "filename": null, "content_type": "video/mp4", "md5sum": "ab"})
        );
        let missing: Source = serde_json::from_value(json!({"type": "file", "md5sum": "ab"})).unwrap();
        assert_eq!(missing, Source::File { filename: None, content_type: None, md5sum: "ab".into() });
    }

    #[test]
    fn a_source_result_nests_as_v0_did_and_skips_models_that_did_not_run() {
        let result = SourceResult {
            source: Source::Text {},
            results: InferenceResults {
                predictions: vec![InferencePrediction {
                    file: "text".into(),
                    file_type: "text".into(),
                    models: ModelsPredictions {
                        face: Some(ModelOutput::single("unknown", vec![face(None)])),
                        ..Default::default()
                    },
                    transcript: None,
                    duration_secs: None,
                    voice: None,
                }],
                errors: vec![SourceError { file: "text".into(), message: "no".into() }],
            },
        };
        let json = round_trip(&result);
        let models = &json["results"]["predictions"][0]["models"];
        assert_eq!(models.as_object().unwrap().keys().collect::<Vec<_>>(), ["face"]);
        assert_eq!(models["face"]["metadata"], Value::Null);
        assert_eq!(models["face"]["grouped_predictions"][0]["id"], "unknown");
        assert_eq!(json["results"]["errors"], json!([{"file": "text", "message": "no"}]));
        assert_eq!(json["results"]["predictions"][0]["file_type"], "text");
    }

    #[test]
    fn merge_adds_models_and_appends_groups_of_the_same_model() {
        let mut models = ModelsPredictions::default();
        assert!(models.is_empty());
        models.merge(ModelsPredictions {
            face: Some(ModelOutput::single("face_0", vec![face(None)])),
            ..Default::default()
        });
        models.merge(ModelsPredictions {
            face: Some(ModelOutput::single("face_1", vec![face(None)])),
            ..Default::default()
        });
        models.merge(ModelsPredictions { prosody: Some(ModelOutput::single("unknown", vec![])), ..Default::default() });
        assert!(!models.is_empty());
        let ids: Vec<_> = models.face.unwrap().grouped_predictions.into_iter().map(|g| g.id).collect();
        assert_eq!(ids, ["face_0", "face_1"]);
        assert!(models.prosody.is_some() && models.burst.is_none());
    }

    #[test]
    fn score_list_pairs_names_with_short_decimals() {
        let scores = Score::list(&["a", "b"], &[0.3, 1.0]);
        assert_eq!(scores, vec![Score::new("a", 0.3), Score::new("b", 1.0)]);
    }
}
