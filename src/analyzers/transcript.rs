//! What was said in a file ([`Transcript`], a prediction shape kept with the file's
//! predictions), who makes it ([`Transcriber`]), and the two ways other models use it (language scores the text; prosody and burst windows
//! carry the words said in them).

use crate::media::audio::Pcm;
use crate::predictions::{TimeInterval, TranscriptionMetadata};
pub use crate::predictions::{Transcript, Word};

/// Turns speech into a [`Transcript`]; one per server, shared by every model that uses words.
#[async_trait::async_trait]
pub trait Transcriber: Send + Sync {
    /// Transcribes 16 kHz mono PCM; `language` forces the language (v0's
    /// `transcription.language`), else it is detected. `Err` is one sentence for the source's
    /// errors.
    async fn transcribe(
        &self,
        file: &str,
        pcm: &Pcm,
        language: Option<&str>,
    ) -> Result<Transcript, super::MeasureError>;
}

impl Transcript {
    /// The words joined by single spaces, with each word's character span in that text (Unicode
    /// scalar values, end exclusive), so text segmentation and positions work as for text input.
    pub fn text_and_spans(&self) -> (String, Vec<(usize, usize)>) {
        let mut text = String::new();
        let mut spans = Vec::with_capacity(self.words.len());
        let mut at = 0;
        for word in &self.words {
            if !text.is_empty() {
                text.push(' ');
                at += 1;
            }
            let len = word.text.chars().count();
            text.push_str(&word.text);
            spans.push((at, at + len));
            at += len;
        }
        (text, spans)
    }

    /// The words in the characters `begin..end` of [`Self::text_and_spans`]'s text.
    pub fn words_at<'a>(
        &'a self,
        spans: &'a [(usize, usize)],
        begin: usize,
        end: usize,
    ) -> impl Iterator<Item = &'a Word> {
        self.words.iter().zip(spans).filter(move |(_, (b, e))| *b < end && *e > begin).map(|(w, _)| w)
    }

    /// The words said between `begin` and `end` seconds (a word counts when its middle falls
    /// inside).
    pub fn words_between(&self, begin: f64, end: f64) -> impl Iterator<Item = &Word> {
        self.words.iter().filter(move |w| (begin..end).contains(&((w.begin + w.end) / 2.0)))
    }

    /// When the characters `begin..end` of [`Self::text_and_spans`]'s text were said, and the
    /// recogniser's mean confidence in those words.
    pub fn said(&self, spans: &[(usize, usize)], begin: usize, end: usize) -> Option<(TimeInterval, f64)> {
        let said: Vec<&Word> = self.words_at(spans, begin, end).collect();
        let (first, last) = (said.first()?, said.last()?);
        let confidence = said.iter().map(|w| w.confidence).sum::<f64>() / said.len() as f64;
        Some((TimeInterval { begin: first.begin, end: last.end }, confidence))
    }

    /// v0's transcription metadata of this transcript.
    pub fn metadata(&self) -> TranscriptionMetadata {
        TranscriptionMetadata { confidence: self.confidence, detected_language: Some(self.language.clone()) }
    }

    /// The words said between `begin` and `end` seconds (a word counts when its middle falls
    /// inside), or `None` when none was.
    pub fn text_between(&self, begin: f64, end: f64) -> Option<String> {
        let words: Vec<&str> = self.words_between(begin, end).map(|w| w.text.as_str()).collect();
        (!words.is_empty()).then(|| words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, begin: f64, end: f64) -> Word {
        Word { text: text.into(), begin, end, confidence: 0.9, speaker: None, speaker_confidence: None }
    }

    #[test]
    fn positions_and_times_follow_the_words() {
        let t = Transcript {
            words: vec![word("I", 0.5, 0.6), word("am", 0.6, 0.8), word("upset.", 0.9, 1.4), word("Now.", 3.0, 3.3)],
            language: "en".into(),
            confidence: 0.9,
        };
        let (text, spans) = t.text_and_spans();
        assert_eq!(text, "I am upset. Now.");
        assert_eq!(spans[2], (5, 11));
        assert_eq!(t.said(&spans, 0, 11), Some((TimeInterval { begin: 0.5, end: 1.4 }, 0.9)));
        assert_eq!(t.said(&spans, 12, 16).map(|s| s.0), Some(TimeInterval { begin: 3.0, end: 3.3 }));
        assert_eq!(t.text_between(0.0, 1.0).as_deref(), Some("I am"));
        assert_eq!(t.text_between(1.5, 2.5), None);
    }
}
