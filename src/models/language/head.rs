//! The trained linear heads, stored in `assets/language/head.json`.

use super::{LanguageModelError, TextScores, EMBEDDING_DIM, EXPRESSIONS, MODEL_SHA256, SENTIMENT, TOXICITY};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `labels.len()` affine functions of the embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearHead {
    pub labels: Vec<String>,
    /// One row of [`EMBEDDING_DIM`] weights per label.
    pub weights: Vec<Vec<f32>>,
    pub biases: Vec<f32>,
}

impl LinearHead {
    /// `weights · x + bias` for each label.
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        self.weights
            .iter()
            .zip(&self.biases)
            .map(|(w, b)| b + w.iter().zip(x).map(|(w, x)| w * x).sum::<f32>())
            .collect()
    }

    fn check(&self, head: &str, labels: &[&str]) -> Result<(), LanguageModelError> {
        let fits = self.labels.iter().eq(labels)
            && self.weights.len() == labels.len()
            && self.biases.len() == labels.len()
            && self.weights.iter().all(|w| w.len() == EMBEDDING_DIM);
        if fits {
            Ok(())
        } else {
            Err(LanguageModelError::InvalidHead(format!(
                "head `{head}` must have the labels {labels:?} and {EMBEDDING_DIM} weights per label"
            )))
        }
    }
}

/// Contents of `head.json`: the heads, what they were trained on, and how well they did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeadFile {
    /// sha256 of the `model.safetensors` whose embeddings the heads were trained on.
    pub model_sha256: String,
    /// sha256 of each training data file, by file name.
    pub datasets: BTreeMap<String, String>,
    pub emotions: LinearHead,
    pub sentiment: LinearHead,
    pub toxicity: LinearHead,
    /// Held-out metrics, as reported in `EVALUATION.md`.
    pub evaluation: serde_json::Value,
    /// Training settings.
    pub training: serde_json::Value,
}

impl HeadFile {
    /// Parses and checks heads: labels, shapes, and the model they were trained on.
    pub fn parse(json: &str) -> Result<Self, LanguageModelError> {
        let heads: Self = serde_json::from_str(json).map_err(|e| LanguageModelError::InvalidHead(e.to_string()))?;
        if heads.model_sha256 != MODEL_SHA256 {
            return Err(LanguageModelError::HeadModelMismatch { found: heads.model_sha256 });
        }
        heads.emotions.check("emotions", &EXPRESSIONS)?;
        heads.sentiment.check("sentiment", &SENTIMENT)?;
        heads.toxicity.check("toxicity", &TOXICITY)?;
        Ok(heads)
    }

    /// Scores of one embedding.
    pub fn score(&self, x: &[f32]) -> TextScores {
        TextScores {
            emotions: self.emotions.logits(x).into_iter().map(sigmoid).collect(),
            sentiment: softmax(&self.sentiment.logits(x)),
            toxicity: self.toxicity.logits(x).into_iter().map(sigmoid).collect(),
        }
    }
}

pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

pub fn softmax(z: &[f32]) -> Vec<f32> {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = z.iter().map(|z| (z - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}
