//! Why a file could not be measured, as a type: every analyzer, the transcriber and the speaker
//! finder return a [`MeasureError`], and the engine renders it once, by `Display`, into the
//! source's v0 `errors` entry (`crate::predictions::SourceError`). Each message names the file
//! and, where there is one, the fix.

use crate::upstream::UpstreamError;

/// Why one model (or the transcriber, or the speaker finder) measured nothing in one file.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The file holds nothing this model reads.
    #[error("{file}{}", .missing.sentence())]
    Nothing { file: String, missing: Missing },
    /// The model ran and failed on this file (a decoding or inference error, or its task died).
    #[error("{file}: {step}: {cause}")]
    Failed { file: String, step: Step, cause: String },
    /// Hume's v1 API refused or failed, after the retries a transient failure gets.
    #[error("{}", describe_upstream(.file, .error))]
    Upstream { file: String, error: UpstreamError },
    /// Speakers were asked for and the speaker model is not installed, or did not load on its
    /// first use (`why` says how to get it).
    #[error("{file}: speakers were not identified: {why}")]
    NoSpeakerModel { file: String, why: String },
    /// The job needs a Hume key (the `hume` backend's runners) and has none.
    #[error(
        "This job has no Hume API key: send X-Hume-Api-Key with the request, or start the server with HUME_API_KEY."
    )]
    NoApiKey,
}

/// What a file lacks for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No image or video frame (face).
    Picture,
    /// No audio track (voice).
    AudioTrack,
    /// An audio track without a voice in it.
    Voice,
    /// A text with no words.
    Words,
    /// Speech with no transcript for the language model to read.
    Transcript,
}

impl Missing {
    fn sentence(self) -> &'static str {
        match self {
            Self::Picture => " has no picture to measure faces in.",
            Self::AudioTrack => " has no audio track to measure.",
            Self::Voice => " is silent: there is no voice to measure.",
            Self::Words => ": the text is empty: there is nothing to measure.",
            Self::Transcript => {
                ": the language model needs what was said, and no transcript was made; send the words as text."
            }
        }
    }
}

/// The step of measuring that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Language,
    FaceDetection,
    FaceExpression,
    Transcription,
    Speakers,
    Burst,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Language => "the language model failed",
            Self::FaceDetection => "the face detector failed",
            Self::FaceExpression => "the face expression model failed",
            Self::Transcription => "transcription failed",
            Self::Speakers => "speakers could not be identified",
            Self::Burst => "the vocal burst model failed",
        })
    }
}

impl MeasureError {
    /// `file` lacks what a model reads.
    pub fn nothing(file: &str, missing: Missing) -> Self {
        Self::Nothing { file: file.to_owned(), missing }
    }

    /// `step` failed on `file` with `cause`.
    pub fn failed(file: &str, step: Step, cause: impl std::fmt::Display) -> Self {
        Self::Failed { file: file.to_owned(), step, cause: cause.to_string() }
    }

    /// Hume's v1 API failed on `file`.
    pub fn upstream(file: &str, error: UpstreamError) -> Self {
        Self::Upstream { file: file.to_owned(), error }
    }
}

/// A v1 failure as one sentence: Hume's code and request id kept, and for 401/403 the likely
/// cause (v1 is in limited release).
fn describe_upstream(file: &str, error: &UpstreamError) -> String {
    match error {
        UpstreamError::Rejected { status: status @ (401 | 403), message, .. } => format!(
            "{file}: Hume v1 refused the API key ({status}: {message}). The key may lack access to Hume's v1 Expression Measurement API, which is in limited release: ask Hume for access, or use HUME_ACTION_BACKEND=local."
        ),
        other => format!("{file}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_is_one_sentence_naming_the_file() {
        assert_eq!(
            MeasureError::nothing("a.jpg", Missing::Picture).to_string(),
            "a.jpg has no picture to measure faces in."
        );
        assert_eq!(
            MeasureError::failed("call.mp3", Step::Transcription, "out of memory").to_string(),
            "call.mp3: transcription failed: out of memory"
        );
        let refused = UpstreamError::Rejected { status: 403, message: "forbidden".into(), attempts: 1 };
        let message = MeasureError::upstream("v.mp4", refused).to_string();
        assert!(message.starts_with("v.mp4: Hume v1 refused the API key (403: forbidden)."), "{message}");
    }
}
