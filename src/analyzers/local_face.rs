//! Faces measured locally (runner `local`): CenterFace finds them, fer's mini-Xception scores
//! seven basic expressions, and the scores are laid out on v0's 48 names, so a user without a Hume
//! account still gets v0 face predictions.
//!
//! What the numbers are, honestly:
//! - `prob` is CenterFace's score (its heatmap peak), not v0's detector probability. v0's
//!   `prob_threshold` (default 0.99, tuned to v0's detector) is mapped proportionally onto
//!   CenterFace's scale by [`detector_threshold`], so v0's default lands on CenterFace's own
//!   default of 0.5 and a lower v0 threshold keeps fainter faces.
//! - Only 7 of the 48 names can be non-zero ([`EXPRESSION_TO_EMOTIONS`]); they are the
//!   classifier's softmax probabilities, so they sum to 1 over the seven classes (plus the
//!   surprise probability counted twice, see the table), while v0's scores were independent
//!   intensities. Every other name is 0.0: not measured, not "absent".
//! - `descriptions` and `facs` are `null` (no local model measures them), even when asked for.
//! - With `identify_faces`, faces are tracked across the sampled frames by box overlap (greedy,
//!   IoU ≥ [`TRACK_IOU`] with a face seen within the last [`TRACK_MAX_GAP`] sampled frames), not
//!   recognised: a face that leaves and comes back, or jumps between frames, gets a new id.

use std::path::PathBuf;
use std::sync::Arc;

use image::{ImageFormat, RgbImage};

use crate::analyzers::hume::mapping::group_faces;
use crate::analyzers::lazy::LazyModel;
use crate::analyzers::{Analyzer, MeasureError, Missing, Step, Task};
use crate::job::models::FaceSettings;
use crate::media::prepare::Frame;
use crate::models::face::{Detection, FaceModels};
use crate::models::onnx::Runtime;
use crate::predictions::names::EMOTIONS;
use crate::predictions::{BoundingBox, FacePrediction, ModelOutput, ModelsPredictions, Score};

/// How each of the classifier's 7 classes ([`crate::models::face::EXPRESSIONS`], same order) lands on v0's names; a
/// class's probability is given to every name listed. The classifier cannot tell pleasant from
/// unpleasant surprise, so `surprise` scores both "Surprise (positive)" and "Surprise (negative)"
/// with its full probability (halving it would make a clearly surprised face never rank surprise
/// first). `neutral` becomes "Calmness", v0's nearest name. Names not listed are always 0.0.
pub const EXPRESSION_TO_EMOTIONS: [(&str, &[&str]); 7] = [
    ("angry", &["Anger"]),
    ("disgust", &["Disgust"]),
    ("fear", &["Fear"]),
    ("happy", &["Joy"]),
    ("sad", &["Sadness"]),
    ("surprise", &["Surprise (positive)", "Surprise (negative)"]),
    ("neutral", &["Calmness"]),
];

/// v0's default `prob_threshold`, which [`detector_threshold`] maps onto CenterFace's default.
pub const V0_DEFAULT_PROB_THRESHOLD: f64 = 0.99;
/// CenterFace's own default threshold (`crate::models::face::detector::DEFAULT_THRESHOLD`).
const DETECTOR_DEFAULT: f64 = 0.5;
/// The lowest detector threshold used, whatever is asked: below it every cell is a "face".
pub const MIN_DETECTOR_THRESHOLD: f32 = 0.05;
/// Least box overlap for a face to continue a track.
pub const TRACK_IOU: f32 = 0.3;
/// Sampled frames a track may go unseen and still be continued.
pub const TRACK_MAX_GAP: usize = 3;

/// v0's `prob_threshold` on CenterFace's scale: proportional, with v0's default 0.99 at
/// CenterFace's default 0.5 (so 0.5 → 0.25, 1.0 → 0.505), never below [`MIN_DETECTOR_THRESHOLD`].
pub fn detector_threshold(prob_threshold: f64) -> f32 {
    let mapped = prob_threshold.clamp(0.0, 1.0) * DETECTOR_DEFAULT / V0_DEFAULT_PROB_THRESHOLD;
    (mapped as f32).max(MIN_DETECTOR_THRESHOLD)
}

/// The 48 v0 emotions, in v0's order, from the classifier's 7 probabilities.
pub fn emotions(probabilities: &[f32; 7]) -> Vec<Score> {
    let values: Vec<f32> = EMOTIONS
        .iter()
        .map(|name| {
            EXPRESSION_TO_EMOTIONS
                .iter()
                .zip(probabilities)
                .filter(|((_, names), _)| names.contains(name))
                .map(|(_, p)| *p)
                .sum()
        })
        .collect();
    Score::list(&EMOTIONS, &values)
}

/// What a caller reads when the face models did not load on first use (the server's log has
/// the cause, which may name server paths).
pub const DID_NOT_LOAD: &str = "the face models did not load on this server (its log says why); reinstall them with scripts/install-models.sh and restart the server";

/// The local face runner: the face models, loaded on their first use and shared by every worker
/// (see [`super::lazy`]; the `action`'s default leaves face off, so many servers never need them).
pub struct LocalFace {
    models: LazyModel<FaceModels>,
}

impl LocalFace {
    /// A runner over loaded models.
    pub fn new(models: Arc<FaceModels>) -> Self {
        Self { models: LazyModel::loaded("face", models) }
    }

    /// A runner over the models in `dir` (the `face` folder of the model directory), loaded by
    /// the first file measured for faces; its files should have passed [`FaceModels::check`].
    pub fn on_first_use(dir: PathBuf, runtime: Runtime) -> Self {
        Self { models: LazyModel::new("face", move || FaceModels::load_on(&dir, runtime)) }
    }
}

#[async_trait::async_trait]
impl Analyzer for LocalFace {
    async fn analyze(&self, task: &Task<'_>) -> Result<ModelsPredictions, MeasureError> {
        let Task { subject, settings, .. } = *task;
        let file = subject.file.to_owned();
        let face = settings.face.clone().unwrap_or_default();
        let frames = subject.media.map(|m| m.frames.clone()).unwrap_or_default();
        if frames.is_empty() {
            return Err(MeasureError::nothing(&file, Missing::Picture));
        }
        let models = self
            .models
            .get()
            .await
            .map_err(|_| MeasureError::failed(subject.file, Step::FaceDetection, DID_NOT_LOAD))?;
        let identify = face.identify_faces;
        let min_face_size = face.min_face_size;
        let found = tokio::task::spawn_blocking(move || measure(&models, &file, &frames, &face))
            .await
            .map_err(|e| MeasureError::failed(subject.file, Step::FaceDetection, e))??;
        let note = found.too_small_note(min_face_size);
        let faces = found.faces.into_iter().map(|(track, p)| (Some(track as i64), p)).collect();
        Ok(ModelsPredictions {
            face: Some(ModelOutput { metadata: None, grouped_predictions: group_faces(faces, identify), note }),
            ..Default::default()
        })
    }
}

/// The faces measured in a file's frames, and those left out as smaller than `min_face_size`.
#[derive(Debug, Default)]
pub struct FoundFaces {
    /// Every face measured, in frame order (best detection first within a frame), each with its
    /// track number (numbered from 0 in order of first appearance).
    pub faces: Vec<(usize, FacePrediction)>,
    /// Detections left out because their box was under `min_face_size` source pixels.
    pub too_small: usize,
    /// The largest of those, in source pixels (its box's shorter side).
    pub largest_too_small: f64,
}

impl FoundFaces {
    /// A sentence on the faces left out as too small, when there were any.
    pub fn too_small_note(&self, min_face_size: f64) -> Option<String> {
        (self.too_small > 0).then(|| {
            let (n, largest) = (self.too_small, self.largest_too_small.floor());
            let faces = if n == 1 { "1 face was".to_owned() } else { format!("{n} faces were") };
            format!(
                "{faces} smaller than min_face_size ({min_face_size} px; the largest {largest} px) and not measured; set models.face.min_face_size to {largest} or lower to keep them."
            )
        })
    }
}

/// Every face in every frame at least `min_face_size` source pixels across, tracked across frames.
pub fn measure(
    models: &FaceModels,
    file: &str,
    frames: &[Frame],
    settings: &FaceSettings,
) -> Result<FoundFaces, MeasureError> {
    let threshold = detector_threshold(settings.prob_threshold);
    let mut tracker = Tracker::default();
    let mut found = FoundFaces::default();
    for (position, frame) in frames.iter().enumerate() {
        let image = decode(&frame.jpeg).map_err(|e| {
            MeasureError::failed(file, Step::FaceDetection, format!("frame {} could not be decoded: {e}", frame.index))
        })?;
        let (faces, too_small): (Vec<Detection>, Vec<Detection>) = models
            .detect_with(&image, threshold)
            .map_err(|e| MeasureError::failed(file, Step::FaceDetection, e))?
            .into_iter()
            .partition(|d| f64::from(d.w.min(d.h)) * frame.scale >= settings.min_face_size);
        for d in &too_small {
            found.too_small += 1;
            found.largest_too_small = found.largest_too_small.max(f64::from(d.w.min(d.h)) * frame.scale);
        }
        let out = &mut found.faces;
        let in_source: Vec<Detection> = faces.iter().map(|d| to_source(d, frame.scale)).collect();
        let tracks = tracker.assign(position, &in_source);
        for ((face, source), track) in faces.iter().zip(&in_source).zip(tracks) {
            let probabilities =
                models.expressions(&image, face).map_err(|e| MeasureError::failed(file, Step::FaceExpression, e))?;
            out.push((
                track,
                FacePrediction {
                    frame: frame.index,
                    time: frame.time_secs,
                    prob: widen(source.prob),
                    bbox: BoundingBox {
                        x: round2(source.x),
                        y: round2(source.y),
                        w: round2(source.w),
                        h: round2(source.h),
                    },
                    emotions: emotions(&probabilities),
                    facs: None,
                    descriptions: None,
                    hume_v1: None,
                },
            ));
        }
    }
    Ok(found)
}

/// A prepared frame's JPEG as RGB pixels.
pub fn decode(jpeg: &[u8]) -> Result<RgbImage, image::ImageError> {
    Ok(image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg)?.to_rgb8())
}

/// `d` in source pixels (a frame's pixels times its `scale`).
fn to_source(d: &Detection, scale: f64) -> Detection {
    let s = scale as f32;
    Detection { x: d.x * s, y: d.y * s, w: d.w * s, h: d.h * s, prob: d.prob }
}

/// `v` to 2 decimals (hundredths of a pixel are plenty).
fn round2(v: f32) -> f64 {
    (f64::from(v) * 100.0).round() / 100.0
}

/// `v` as the `f64` with the same shortest decimal form (`0.93`, not `0.9300000071525574`).
fn widen(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// Faces followed across sampled frames by box overlap.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Per track: its last box and the position of the frame it was last seen in.
    tracks: Vec<(Detection, usize)>,
}

impl Tracker {
    /// The track of each face in the frame at `position` (frames in order): greedily, the pair
    /// of a live track and a face with the highest IoU (≥ [`TRACK_IOU`]) is matched first; a face
    /// left unmatched starts a new track.
    pub fn assign(&mut self, position: usize, faces: &[Detection]) -> Vec<usize> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, (last, seen)) in self.tracks.iter().enumerate() {
            if position.saturating_sub(*seen) > TRACK_MAX_GAP {
                continue;
            }
            for (f, face) in faces.iter().enumerate() {
                let iou = last.iou(face);
                if iou >= TRACK_IOU {
                    pairs.push((iou, t, f));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut assigned: Vec<Option<usize>> = vec![None; faces.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, t, f) in pairs {
            if assigned[f].is_none() && !taken[t] {
                assigned[f] = Some(t);
                taken[t] = true;
            }
        }
        assigned
            .into_iter()
            .zip(faces)
            .map(|(track, face)| match track {
                Some(t) => {
                    self.tracks[t] = (*face, position);
                    t
                }
                None => {
                    self.tracks.push((*face, position));
                    self.tracks.len() - 1
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use bytes::Bytes;

    use super::*;
    use crate::analyzers::{JobContext, Subject};
    use crate::job::models::{Model, ModelSettings};
    use crate::media::prepare::Prepared;
    use crate::media::MediaKind;
    use crate::models::face::EXPRESSIONS;

    fn models() -> Arc<FaceModels> {
        static MODELS: OnceLock<Arc<FaceModels>> = OnceLock::new();
        MODELS
            .get_or_init(|| {
                let dir = crate::models::face::test_model_dir();
                Arc::new(FaceModels::load(&dir).unwrap_or_else(|e| panic!("{e} (run scripts/models/face.sh)")))
            })
            .clone()
    }

    fn asset(name: &str) -> PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/face").join(name)
    }

    fn frame(index: u64, jpeg: Vec<u8>, scale: f64) -> Frame {
        let image = decode(&jpeg).unwrap();
        Frame {
            index,
            time_secs: index as f64 / 30.0,
            width: image.width(),
            height: image.height(),
            jpeg: Bytes::from(jpeg),
            scale,
        }
    }

    fn jpeg(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(image).unwrap();
        out
    }

    async fn analyze(frames: Vec<Frame>, settings: FaceSettings) -> ModelsPredictions {
        let media = Prepared {
            kind: if frames.len() > 1 { MediaKind::Video } else { MediaKind::Image },
            duration_secs: None,
            width: Some(frames[0].width),
            height: Some(frames[0].height),
            audio: None,
            frames,
            frames_truncated: false,
        };
        let subject = Subject { file: "test.jpg", text: None, media: Some(&media), transcript: None, speakers: None };
        let settings = ModelSettings { face: Some(settings), ..Default::default() };
        let job = JobContext::default();
        let task = Task { job: &job, subject: &subject, models: &[Model::Face], settings: &settings };
        LocalFace::new(models()).analyze(&task).await.unwrap()
    }

    fn top(prediction: &FacePrediction) -> &str {
        let best = prediction.emotions.iter().max_by(|a, b| a.score.total_cmp(&b.score)).unwrap();
        &best.name
    }

    #[test]
    fn the_table_covers_every_class_with_v0_names() {
        for ((class, names), expected) in EXPRESSION_TO_EMOTIONS.iter().zip(EXPRESSIONS) {
            assert_eq!(*class, expected);
            assert!(names.iter().all(|n| EMOTIONS.contains(n)), "{names:?}");
        }
        let scores = emotions(&[0.05, 0.05, 0.05, 0.5, 0.05, 0.2, 0.1]);
        assert_eq!(scores.len(), 48);
        let of = |name: &str| scores.iter().find(|s| s.name == name).unwrap().score;
        assert_eq!(
            (of("Joy"), of("Surprise (positive)"), of("Surprise (negative)"), of("Calmness")),
            (0.5, 0.2, 0.2, 0.1)
        );
        assert_eq!(of("Admiration"), 0.0);
    }

    #[test]
    fn v0_thresholds_map_onto_centerface() {
        assert!((detector_threshold(0.99) - 0.5).abs() < 1e-6);
        assert!((detector_threshold(0.5) - 0.2525).abs() < 1e-3);
        assert_eq!(detector_threshold(0.0), MIN_DETECTOR_THRESHOLD);
        assert_eq!(detector_threshold(f64::NAN), MIN_DETECTOR_THRESHOLD);
    }

    #[test]
    fn tracks_follow_overlapping_boxes_and_start_new_ones() {
        let d = |x: f32| Detection { x, y: 0.0, w: 100.0, h: 100.0, prob: 0.9 };
        let mut tracker = Tracker::default();
        assert_eq!(tracker.assign(0, &[d(0.0), d(300.0)]), [0, 1]);
        assert_eq!(tracker.assign(1, &[d(310.0), d(20.0)]), [1, 0]);
        assert_eq!(tracker.assign(2, &[d(150.0)]), [2]);
        // Track 1 was last seen at frame 1: too long ago at frame 5.
        assert_eq!(tracker.assign(5, &[d(320.0)]), [3]);
    }

    #[tokio::test]
    async fn a_face_image_gives_a_box_around_the_face_and_joy_on_top() {
        let jpeg = std::fs::read(asset("astronaut.jpg")).unwrap();
        let out = analyze(vec![frame(0, jpeg, 2.0)], FaceSettings::default()).await;
        let groups = out.face.unwrap().grouped_predictions;
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].id, "unknown");
        let faces = &groups[0].predictions;
        assert_eq!(faces.len(), 1, "{faces:?}");
        let face = &faces[0];
        // Labelled face (x 177, y 75, 95x100 in the 512 px image), in source pixels (scale 2).
        let label = Detection { x: 354.0, y: 150.0, w: 190.0, h: 200.0, prob: 1.0 };
        let found = Detection {
            x: face.bbox.x as f32,
            y: face.bbox.y as f32,
            w: face.bbox.w as f32,
            h: face.bbox.h as f32,
            prob: 1.0,
        };
        assert!(label.iou(&found) > 0.6, "{:?}", face.bbox);
        assert!(face.prob >= 0.5 && face.prob <= 1.0);
        assert_eq!(top(face), "Joy", "{:?}", face.emotions);
        assert_eq!((face.frame, &face.facs, &face.descriptions, &face.hume_v1), (0, &None, &None, &None));
    }

    #[tokio::test]
    async fn an_image_with_no_face_gives_no_predictions() {
        let jpeg = std::fs::read(asset("coffee.jpg")).unwrap();
        let out = analyze(vec![frame(0, jpeg, 1.0)], FaceSettings::default()).await;
        assert_eq!(out.face.unwrap().grouped_predictions, vec![]);
    }

    #[tokio::test]
    async fn min_face_size_is_in_source_pixels() {
        // The face is about 38x40 px in this 640x480 frame.
        let jpeg = std::fs::read(asset("astronaut_small.jpg")).unwrap();
        let settings = FaceSettings { min_face_size: 60.0, ..Default::default() };
        let small = analyze(vec![frame(0, jpeg.clone(), 1.0)], settings.clone()).await;
        assert!(small.face.unwrap().grouped_predictions.is_empty());
        let large = analyze(vec![frame(0, jpeg, 2.0)], settings).await;
        assert_eq!(large.face.unwrap().grouped_predictions[0].predictions.len(), 1);
    }

    #[tokio::test]
    async fn a_face_moving_slightly_across_frames_keeps_one_id() {
        let astronaut = decode(&std::fs::read(asset("astronaut.jpg")).unwrap()).unwrap();
        let frames: Vec<Frame> = (0..4u32)
            .map(|i| {
                let mut canvas = RgbImage::from_pixel(640, 512, image::Rgb([90, 90, 90]));
                image::imageops::replace(&mut canvas, &astronaut, i64::from(i * 12), 0);
                frame(u64::from(i) * 10, jpeg(&canvas), 1.0)
            })
            .collect();
        let settings = FaceSettings { identify_faces: true, ..Default::default() };
        let groups = analyze(frames, settings).await.face.unwrap().grouped_predictions;
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0].id, "face_0");
        let frames: Vec<u64> = groups[0].predictions.iter().map(|p| p.frame).collect();
        assert_eq!(frames, [0, 10, 20, 30]);
        assert!((groups[0].predictions[3].bbox.x - groups[0].predictions[0].bbox.x - 36.0).abs() < 8.0);
    }
}
