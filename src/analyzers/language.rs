//! The language model on text: cut at the requested granularity, scored by the embedded model
//! (`crate::models::language`), in v0's language shape.

use std::sync::Arc;

use super::{Analyzer, JobContext, Subject};
use crate::job::models::{LanguageSettings, Model, ModelSettings};
use crate::models::language::{LanguageModel, EXPRESSIONS, SENTIMENT, TOXICITY};
use crate::models::segment::segment;
use crate::predictions::{LanguagePrediction, ModelOutput, ModelsPredictions, PositionInterval, Score};

/// Segments scored per file at the most; the rest are reported as skipped.
pub const MAX_SEGMENTS: usize = 5_000;

/// The embedded language model as an analyzer.
pub struct LanguageAnalyzer {
    model: Arc<LanguageModel>,
}

impl LanguageAnalyzer {
    /// An analyzer over the loaded model.
    pub fn new(model: Arc<LanguageModel>) -> Self {
        Self { model }
    }

    /// Scores `text` at the settings' granularity; `Err` when there is nothing to score.
    pub async fn score_text(&self, text: &str, settings: &LanguageSettings) -> Result<Vec<LanguagePrediction>, String> {
        let mut segments = segment(text, &settings.granularity);
        if segments.is_empty() {
            return Err("The text is empty: there is nothing to measure.".into());
        }
        segments.truncate(MAX_SEGMENTS);
        let model = self.model.clone();
        let inputs: Vec<String> = segments.iter().map(|s| s.text.clone()).collect();
        let scores =
            tokio::task::spawn_blocking(move || model.score(&inputs.iter().map(String::as_str).collect::<Vec<_>>()))
                .await
                .map_err(|e| format!("The language model stopped unexpectedly: {e}"))?
                .map_err(|e| format!("The language model failed: {e}"))?;
        Ok(segments
            .into_iter()
            .zip(scores)
            .map(|(segment, s)| LanguagePrediction {
                text: segment.text,
                position: PositionInterval { begin: segment.begin as u64, end: segment.end as u64 },
                time: None,
                confidence: None,
                speaker_confidence: None,
                emotions: Score::list(&EXPRESSIONS, &s.emotions),
                sentiment: settings.sentiment.then(|| Score::list(&SENTIMENT, &s.sentiment)),
                toxicity: settings.toxicity.then(|| Score::list(&TOXICITY, &s.toxicity)),
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Analyzer for LanguageAnalyzer {
    fn runner(&self) -> &'static str {
        "local"
    }

    async fn analyze(
        &self,
        _job: &JobContext,
        subject: &Subject<'_>,
        _models: &[Model],
        settings: &ModelSettings,
    ) -> Result<ModelsPredictions, String> {
        let Some(text) = subject.text else {
            return Err(format!(
                "{}: the language model needs a speech transcript, and this server cannot transcribe audio yet; send the words as text.",
                subject.file
            ));
        };
        let language = settings.language.clone().unwrap_or_default();
        let segments = segment(text, &language.granularity).len();
        if segments > MAX_SEGMENTS {
            return Err(format!(
                "{}: {segments} segments at granularity {}; at most {MAX_SEGMENTS} are scored per file. Send shorter texts or a coarser granularity.",
                subject.file, language.granularity
            ));
        }
        let predictions = self.score_text(text, &language).await?;
        Ok(ModelsPredictions { language: Some(ModelOutput::single("unknown", predictions)), ..Default::default() })
    }
}
