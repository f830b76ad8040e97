//! Hume v1's answers laid out in v0's prediction shapes: pure functions, no I/O.
//!
//! v0 gave a score for every one of a fixed list of names, capitalised (`Surprise (positive)`);
//! v1 gives only the scores above its cutoffs, lowercase (`surprise (positive)`), from its own
//! vocabularies. So each v0 list ([`EMOTIONS`], [`BURST_DESCRIPTIONS`]) is filled in v0's order
//! from the v1 score of the same name compared case-insensitively, and with 0.0 where v1 reported
//! none (it was below v1's cutoff). v1 scores with no v0 name are not lost: every prediction
//! carries v1's full answer under `hume_v1`.
//!
//! v1 numbers measurements and utterances from 0 in every request; they are kept as v1 gave them.

use std::collections::HashMap;

use crate::predictions::names::{BURST_DESCRIPTIONS, EMOTIONS};
use crate::predictions::{
    BoundingBox, BurstPrediction, FacePrediction, FaceV1, Grouped, ProsodyPrediction, Score, TimeInterval, V1Score,
    VoiceV1,
};
use crate::upstream::v1_types::{AudioFileResponse, VideoFileResponse};

/// One image of a v1 image request, in request order: where it came from in the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameRef {
    /// Frame number in the source (v0's `frame`).
    pub index: u64,
    /// Time of the frame in the source, in seconds (v0's `time`).
    pub time_secs: f64,
    /// Source pixels per pixel of the image as sent (1.0 when not downscaled).
    pub scale: f64,
}

/// Prosody and burst predictions from one v1 audio response, one of each per v1 measurement.
///
/// `offset_secs` is where the request's audio starts in the source, so times land on the
/// source's timeline. `text_for(begin, end)` gives the words spoken in a range, if known (prosody's
/// `text`). Emotions are the 48 [`EMOTIONS`]; burst descriptions the 67 [`BURST_DESCRIPTIONS`],
/// both filled from v1's `expressions`. `confidence` and `speaker_confidence` are null.
pub fn voice_predictions(
    response: &AudioFileResponse,
    offset_secs: f64,
    text_for: impl Fn(f64, f64) -> Option<String>,
) -> (Vec<ProsodyPrediction>, Vec<BurstPrediction>) {
    let mut prosody = Vec::with_capacity(response.measurements.len());
    let mut burst = Vec::with_capacity(response.measurements.len());
    for m in &response.measurements {
        let time = TimeInterval {
            begin: offset_secs + m.audio_start_ms as f64 / 1000.0,
            end: offset_secs + m.audio_end_ms as f64 / 1000.0,
        };
        let v1 = VoiceV1 {
            measurement_id: m.measurement_id,
            utterance_id: m.utterance_id,
            trigger: m.trigger.clone(),
            expressions: m.expressions.clone(),
            voice_attributes: m.voice_attributes.clone(),
        };
        let emotions = lay_out(&EMOTIONS, &m.expressions);
        prosody.push(ProsodyPrediction {
            text: text_for(time.begin, time.end),
            time,
            confidence: None,
            speaker_confidence: None,
            emotions: emotions.clone(),
            hume_v1: Some(v1.clone()),
        });
        burst.push(BurstPrediction {
            time,
            emotions,
            descriptions: lay_out(&BURST_DESCRIPTIONS, &m.expressions),
            hume_v1: Some(v1),
        });
    }
    (prosody, burst)
}

/// Face predictions from one v1 image response, with each face's v1 `face_id` beside it.
///
/// `frames` describes the request's images in order (v1's `frame_id` indexes it). Boxes are
/// scaled back to source pixels (`[x0, y0, x1, y1]` → `{x, y, w, h}`); `prob` is v1's detection
/// confidence; emotions are the 48 [`EMOTIONS`]. With `want_descriptions`, `descriptions` holds
/// v1's facial descriptions under v1's own names (only those above its cutoff: v1's 27 names are
/// not v0's and are not all known); otherwise it is null. `facs` is always null. Faces v1 listed
/// but did not measure (`face_id` null) are skipped. Output is in frame order, then v1's order.
pub fn face_predictions(
    response: &VideoFileResponse,
    frames: &[FrameRef],
    want_descriptions: bool,
) -> Vec<(Option<i64>, FacePrediction)> {
    let mut out = Vec::new();
    for (position, measurement) in response.measurements.iter().enumerate() {
        let by_id = usize::try_from(measurement.frame_id).ok().and_then(|i| frames.get(i));
        let Some(frame) = by_id.or_else(|| frames.get(position)) else { continue };
        for face in measurement.faces.iter().filter(|f| f.face_id.is_some()) {
            let [x0, y0, x1, y1] = face.bbox.map(|v| v * frame.scale);
            let expressions = face.expressions.clone().unwrap_or_default();
            let descriptions = face.descriptions.clone().unwrap_or_default();
            let prediction = FacePrediction {
                frame: frame.index,
                time: frame.time_secs,
                prob: face.confidence,
                bbox: BoundingBox { x: x0, y: y0, w: x1 - x0, h: y1 - y0 },
                emotions: lay_out(&EMOTIONS, &expressions),
                facs: None,
                descriptions: want_descriptions
                    .then(|| descriptions.iter().map(|d| Score::new(d.name.clone(), d.probability)).collect()),
                hume_v1: Some(FaceV1 { face_id: face.face_id, confidence: face.confidence, expressions, descriptions }),
            };
            out.push((face.face_id, prediction));
        }
    }
    out
}

/// Faces grouped as v0 grouped them. Without `identify`, one group `unknown` holding every face
/// in the order given. With it, one group per v1 face id, labelled `face_0`, `face_1`, … in order
/// of first appearance (faces without an id, if any, go in a last group `unknown`). No faces, no
/// groups.
pub fn group_faces(faces: Vec<(Option<i64>, FacePrediction)>, identify: bool) -> Vec<Grouped<FacePrediction>> {
    if faces.is_empty() {
        return Vec::new();
    }
    if !identify {
        return vec![Grouped { id: "unknown".into(), predictions: faces.into_iter().map(|(_, p)| p).collect() }];
    }
    let mut groups: Vec<Grouped<FacePrediction>> = Vec::new();
    let mut slot: HashMap<i64, usize> = HashMap::new();
    let mut unidentified = Vec::new();
    for (id, prediction) in faces {
        let Some(id) = id else {
            unidentified.push(prediction);
            continue;
        };
        let index = *slot.entry(id).or_insert_with(|| {
            groups.push(Grouped { id: format!("face_{}", groups.len()), predictions: Vec::new() });
            groups.len() - 1
        });
        groups[index].predictions.push(prediction);
    }
    if !unidentified.is_empty() {
        groups.push(Grouped { id: "unknown".into(), predictions: unidentified });
    }
    groups
}

/// `names` in order, each scored with the v1 probability of the same name (ignoring case), or 0.0.
fn lay_out(names: &[&str], scores: &[V1Score]) -> Vec<Score> {
    let by_name: HashMap<String, f64> = scores.iter().map(|s| (s.name.to_lowercase(), s.probability)).collect();
    names.iter().map(|name| Score::new(*name, by_name.get(&name.to_lowercase()).copied().unwrap_or(0.0))).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn score_of(scores: &[Score], name: &str) -> f64 {
        scores.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no {name}")).score
    }

    /// An audio response in the shape of the v1 notes §2.1.
    fn audio() -> AudioFileResponse {
        serde_json::from_value(json!({
            "request_id": "req_abc", "run_id": "2f9c0e3e-0000-4000-8000-000000000000",
            "received": {"audio_duration_ms": 7000},
            "utterances": [{"utterance_id": 0, "audio_start_ms": 250, "audio_end_ms": 6900}],
            "measurements": [
                {"measurement_id": 0, "utterance_id": 0, "audio_start_ms": 250, "audio_end_ms": 3250,
                 "trigger": "interval",
                 "expressions": [{"name": "interest", "probability": 0.81}, {"name": "surprise (positive)", "probability": 0.4},
                                 {"name": "chuckling", "probability": 0.74}, {"name": "sigh", "probability": 0.3}],
                 "voice_attributes": [{"name": "clear", "probability": 0.91}, {"name": "calm", "probability": 0.8}]},
                {"measurement_id": 1, "utterance_id": 0, "audio_start_ms": 3250, "audio_end_ms": 6900,
                 "trigger": "speech_ended", "expressions": [], "voice_attributes": []}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn voice_times_are_shifted_by_the_offset_and_ids_kept() {
        let (prosody, burst) = voice_predictions(&audio(), 600.0, |_, _| None);
        assert_eq!((prosody.len(), burst.len()), (2, 2));
        assert_eq!(prosody[0].time, TimeInterval { begin: 600.25, end: 603.25 });
        assert_eq!(burst[1].time, TimeInterval { begin: 603.25, end: 606.9 });
        let v1 = prosody[1].hume_v1.as_ref().unwrap();
        assert_eq!((v1.measurement_id, v1.utterance_id, v1.trigger.as_str()), (1, 0, "speech_ended"));
        assert_eq!((prosody[0].confidence, prosody[0].speaker_confidence), (None, None));
    }

    #[test]
    fn voice_scores_fill_every_v0_name_case_insensitively_and_zero_the_rest() {
        let (prosody, burst) = voice_predictions(&audio(), 0.0, |_, _| None);
        let names: Vec<&str> = prosody[0].emotions.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, EMOTIONS);
        assert_eq!(score_of(&prosody[0].emotions, "Interest"), 0.81);
        assert_eq!(score_of(&prosody[0].emotions, "Surprise (positive)"), 0.4);
        assert_eq!(score_of(&prosody[0].emotions, "Joy"), 0.0);
        assert!(prosody[1].emotions.iter().all(|s| s.score == 0.0));
        assert_eq!(burst[0].emotions, prosody[0].emotions);
        let descriptions: Vec<&str> = burst[0].descriptions.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(descriptions, BURST_DESCRIPTIONS);
        assert_eq!(score_of(&burst[0].descriptions, "Sigh"), 0.3);
        assert_eq!(score_of(&burst[0].descriptions, "Chuckle"), 0.0);
    }

    #[test]
    fn names_v0_lacks_are_kept_in_hume_v1_only() {
        let (prosody, burst) = voice_predictions(&audio(), 0.0, |_, _| None);
        assert!(prosody[0].emotions.iter().all(|s| !s.name.eq_ignore_ascii_case("chuckling")));
        for v1 in [prosody[0].hume_v1.as_ref().unwrap(), burst[0].hume_v1.as_ref().unwrap()] {
            assert_eq!(v1.expressions, audio().measurements[0].expressions);
            assert_eq!(v1.voice_attributes[0], V1Score { name: "clear".into(), probability: 0.91 });
        }
    }

    #[test]
    fn prosody_text_comes_from_the_transcript_lookup_on_source_times() {
        let (prosody, _) = voice_predictions(&audio(), 10.0, |begin, end| Some(format!("{begin}-{end}")));
        assert_eq!(prosody[0].text.as_deref(), Some("10.25-13.25"));
    }

    /// An image response in the shape of the v1 notes §2.2: two images, the first with a
    /// measured and an unmeasured face, the second with the same face and a new one.
    fn video() -> VideoFileResponse {
        serde_json::from_value(json!({
            "request_id": "r", "run_id": "u", "received": {"frames": 2},
            "measurements": [
                {"frame_id": 0, "faces": [
                    {"face_id": 0, "bbox": [10.0, 20.0, 110.0, 150.0], "confidence": 0.99,
                     "expressions": [{"name": "joy", "probability": 0.7}, {"name": "surprise (positive)", "probability": 0.2}],
                     "descriptions": [{"name": "smile", "probability": 0.8}]},
                    {"face_id": null, "bbox": [300.0, 20.0, 340.0, 70.0], "confidence": 0.93,
                     "expressions": null, "descriptions": null}]},
                {"frame_id": 1, "faces": [
                    {"face_id": 1, "bbox": [0.0, 0.0, 80.0, 90.0], "confidence": 0.95,
                     "expressions": [], "descriptions": []},
                    {"face_id": 0, "bbox": [12.0, 20.0, 112.0, 150.0], "confidence": 0.98,
                     "expressions": [{"name": "interest", "probability": 0.3}], "descriptions": []}]}
            ],
            "face_state": "opaque"
        }))
        .unwrap()
    }

    fn frames() -> [FrameRef; 2] {
        [FrameRef { index: 0, time_secs: 0.0, scale: 2.0 }, FrameRef { index: 15, time_secs: 0.5, scale: 2.0 }]
    }

    #[test]
    fn faces_are_scaled_to_source_pixels_and_unmeasured_ones_skipped() {
        let faces = face_predictions(&video(), &frames(), false);
        assert_eq!(faces.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [Some(0), Some(1), Some(0)]);
        let (_, first) = &faces[0];
        assert_eq!(first.bbox, BoundingBox { x: 20.0, y: 40.0, w: 200.0, h: 260.0 });
        assert_eq!((first.frame, first.time, first.prob), (0, 0.0, 0.99));
        assert_eq!((faces[1].1.frame, faces[1].1.time), (15, 0.5));
        assert_eq!(score_of(&first.emotions, "Joy"), 0.7);
        assert_eq!(score_of(&first.emotions, "Surprise (positive)"), 0.2);
        assert_eq!(score_of(&first.emotions, "Anger"), 0.0);
        assert_eq!(first.emotions.len(), 48);
        assert_eq!((&first.facs, &first.descriptions), (&None, &None));
        let v1 = first.hume_v1.as_ref().unwrap();
        assert_eq!((v1.face_id, v1.confidence), (Some(0), 0.99));
        assert_eq!(v1.descriptions, vec![V1Score { name: "smile".into(), probability: 0.8 }]);
    }

    #[test]
    fn face_descriptions_keep_v1_names_when_asked_for() {
        let faces = face_predictions(&video(), &frames(), true);
        assert_eq!(faces[0].1.descriptions, Some(vec![Score::new("smile", 0.8)]));
        assert_eq!(faces[1].1.descriptions, Some(vec![]));
    }

    #[test]
    fn faces_group_as_unknown_or_by_first_appearance() {
        let faces = face_predictions(&video(), &frames(), false);
        let all = group_faces(faces.clone(), false);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, "unknown");
        assert_eq!(all[0].predictions.iter().map(|p| p.frame).collect::<Vec<_>>(), [0, 15, 15]);

        // v1 id 1 appears before v1 id 0's second sighting but after its first.
        let mut reordered = faces;
        reordered.swap(0, 1);
        let groups = group_faces(reordered, true);
        let summary: Vec<(&str, usize)> = groups.iter().map(|g| (g.id.as_str(), g.predictions.len())).collect();
        assert_eq!(summary, [("face_0", 1), ("face_1", 2)]);
        assert_eq!(groups[1].predictions[0].hume_v1.as_ref().unwrap().face_id, Some(0));
        assert!(group_faces(vec![], true).is_empty() && group_faces(vec![], false).is_empty());
    }
}
