//! Faces on Hume v1 (`POST /v1/expression/video/file`): a video's frames in as few requests as
//! the 25 MB limit allows, face ids continued across requests with `face_state`.

use std::sync::Arc;

use super::mapping::{face_predictions, group_faces, FrameRef};
use crate::analyzers::{Analyzer, MeasureError, Missing, Task};
use crate::media::prepare::Frame;
use crate::predictions::{ModelOutput, ModelsPredictions};
use crate::upstream::v1::{HumeV1Client, MAX_REQUEST_BYTES, MULTIPART_OVERHEAD_BYTES, PART_OVERHEAD_BYTES};
use crate::upstream::v1_types::{FaceConfig, VideoConfig};

/// The v1 face runner.
pub struct HumeFace {
    client: Arc<HumeV1Client>,
}

impl HumeFace {
    /// A runner over the v1 client.
    pub fn new(client: Arc<HumeV1Client>) -> Self {
        Self { client }
    }
}

/// Frames split into requests that each stay under v1's 25 MB body limit.
pub fn batches(frames: &[Frame]) -> Vec<&[Frame]> {
    let budget = MAX_REQUEST_BYTES - MULTIPART_OVERHEAD_BYTES;
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, frame) in frames.iter().enumerate() {
        let cost = frame.jpeg.len() + PART_OVERHEAD_BYTES;
        if i > start && size + cost > budget {
            out.push(&frames[start..i]);
            (start, size) = (i, 0);
        }
        size += cost;
    }
    if start < frames.len() {
        out.push(&frames[start..]);
    }
    out
}

#[async_trait::async_trait]
impl Analyzer for HumeFace {
    async fn analyze(&self, task: &Task<'_>) -> Result<ModelsPredictions, MeasureError> {
        let Task { job, subject, settings, .. } = *task;
        let file = subject.file;
        let face = settings.face.clone().unwrap_or_default();
        let frames = subject.media.map(|m| m.frames.as_slice()).unwrap_or_default();
        if frames.is_empty() {
            return Err(MeasureError::nothing(file, Missing::Picture));
        }
        let api_key = job.require_api_key()?;
        let mut faces = Vec::new();
        let mut face_state = None;
        for batch in batches(frames) {
            // v0's min_face_size is in source pixels; v1's min_size in the pixels it is sent.
            let min_size = (face.min_face_size / batch[0].scale).round().max(1.0) as u32;
            let config = VideoConfig {
                face: FaceConfig { threshold: None, min_size: Some(min_size), return_face_state: Some(true) },
                face_state: face_state.take(),
            };
            let images: Vec<_> = batch.iter().map(|f| f.jpeg.clone()).collect();
            let response = self
                .client
                .measure_images(api_key, &images, &config)
                .await
                .map_err(|e| MeasureError::upstream(file, e))?;
            let refs: Vec<FrameRef> =
                batch.iter().map(|f| FrameRef { index: f.index, time_secs: f.time_secs, scale: f.scale }).collect();
            faces.extend(face_predictions(&response, &refs, face.descriptions));
            face_state = response.face_state.clone();
        }
        let grouped = group_faces(faces, face.identify_faces);
        Ok(ModelsPredictions {
            face: Some(ModelOutput { metadata: None, grouped_predictions: grouped, note: None }),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(index: u64, bytes: usize) -> Frame {
        let jpeg = bytes::Bytes::from(vec![0u8; bytes]);
        Frame { index, time_secs: index as f64 / 3.0, jpeg, width: 640, height: 480, scale: 1.0 }
    }

    #[test]
    fn frames_fill_requests_up_to_the_25_mb_limit_in_order() {
        let frames: Vec<Frame> = (0..30).map(|i| frame(i, 1_990_000)).collect();
        let sizes: Vec<usize> = batches(&frames).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [12, 12, 6], "12 images of just under 2 MB fit in 25 MB");
        let flat: Vec<u64> = batches(&frames).iter().flat_map(|b| b.iter().map(|f| f.index)).collect();
        assert_eq!(flat, (0..30).collect::<Vec<_>>(), "every frame once, in order");
        let small: Vec<Frame> = (0..600).map(|i| frame(i, 40_000)).collect();
        assert_eq!(batches(&small).len(), 1, "a minute of small frames is one request");
        assert!(batches(&[]).is_empty());
    }
}
