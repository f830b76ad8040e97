//! The language model on text, and on what was said in audio and video: cut at the requested
//! granularity by the same rules, scored by the embedded model (`crate::models::language`), in
//! v0's language shape (with `time` and `confidence` for speech).

use std::sync::Arc;

use super::speakers::{group, speaker_of_words};
use super::{Analyzer, MeasureError, Missing, Step, Task, Transcript};
use crate::job::models::LanguageSettings;
use crate::models::language::{LanguageModel, EXPRESSIONS, SENTIMENT, TOXICITY};
use crate::models::segment::segment;
use crate::predictions::{LanguagePrediction, ModelOutput, ModelsPredictions, PositionInterval, Score};

/// The embedded language model as an analyzer.
pub struct LanguageAnalyzer {
    model: Arc<LanguageModel>,
}

impl LanguageAnalyzer {
    /// An analyzer over the loaded model.
    pub fn new(model: Arc<LanguageModel>) -> Self {
        Self { model }
    }

    /// Scores `text` at the settings' granularity; no segments, no predictions.
    pub async fn score_text(
        &self,
        file: &str,
        text: &str,
        settings: &LanguageSettings,
    ) -> Result<Vec<LanguagePrediction>, MeasureError> {
        // The job's segment budget (HUME_ACTION_MAX_JOB_SEGMENTS) was taken before this runs.
        let model = self.model.clone();
        let (text, granularity) = (text.to_owned(), settings.granularity.as_str());
        // A word is scored as the model read it in its sentence (`LanguageModel::score_words`);
        // a coarser segment by its own embedding.
        let scored = tokio::task::spawn_blocking(move || match granularity {
            "word" => model.score_words(&[&text]).map(|mut texts| texts.pop().unwrap_or_default()),
            _ => {
                let segments = segment(&text, granularity);
                let scores = model.score(&segments.iter().map(|s| s.text.as_str()).collect::<Vec<_>>())?;
                Ok(segments.into_iter().zip(scores).collect())
            }
        })
        .await
        .map_err(|e| MeasureError::failed(file, Step::Language, e))?
        .map_err(|e| MeasureError::failed(file, Step::Language, e))?;
        Ok(scored
            .into_iter()
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

    /// Scores what was said, cut by the same rules as text input, each segment with the time it
    /// was said, the recogniser's confidence in its words, and (with `by_speaker`) the speaker of
    /// its words and `speaker_confidence`.
    async fn score_transcript(
        &self,
        file: &str,
        transcript: &Transcript,
        settings: &LanguageSettings,
        by_speaker: bool,
    ) -> Result<Vec<(Option<String>, LanguagePrediction)>, MeasureError> {
        let (text, spans) = transcript.text_and_spans();
        let predictions = self.score_text(file, &text, settings).await?;
        Ok(predictions
            .into_iter()
            .map(|mut p| {
                let (begin, end) = (p.position.begin as usize, p.position.end as usize);
                if let Some((time, confidence)) = transcript.said(&spans, begin, end) {
                    (p.time, p.confidence) = (Some(time), Some(confidence));
                }
                let speaker = by_speaker.then(|| speaker_of_words(transcript.words_at(&spans, begin, end))).flatten();
                p.speaker_confidence = speaker.as_ref().map(|(_, c)| *c);
                (speaker.map(|(id, _)| id), p)
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Analyzer for LanguageAnalyzer {
    async fn analyze(&self, task: &Task<'_>) -> Result<ModelsPredictions, MeasureError> {
        let Task { subject, settings, .. } = *task;
        let file = subject.file;
        let language = settings.language.clone().unwrap_or_default();
        let output = match (subject.text, subject.transcript) {
            (Some(text), _) => ModelOutput::single("unknown", self.score_text(file, text, &language).await?),
            (None, Some(transcript)) => {
                let by_speaker = settings.identify_speakers.language && subject.speakers.is_some();
                ModelOutput {
                    metadata: Some(transcript.metadata()),
                    grouped_predictions: group(self.score_transcript(file, transcript, &language, by_speaker).await?),
                    note: None,
                }
            }
            (None, None) => return Err(MeasureError::nothing(file, Missing::Transcript)),
        };
        if output.grouped_predictions.iter().all(|g| g.predictions.is_empty()) && subject.text.is_some() {
            return Err(MeasureError::nothing(file, Missing::Words));
        }
        Ok(ModelsPredictions { language: Some(output), ..Default::default() })
    }
}
