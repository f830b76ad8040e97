//! The budgets every job is held to: one [`Limit`] per dimension of work, each with a default
//! and a setting (`crate::config`), and the [`LimitExceeded`] that names the limit, the value
//! seen and the setting whenever one is crossed.
//!
//! A limit known at intake (body size, text, segments of `text` items, sources) refuses the
//! request: 413 for sizes, 422 for counts. A limit found while the job runs (a downloaded text,
//! an archive's members, a media duration after probing, frames) becomes that source's error,
//! with the same information, and the other sources still complete.

use crate::error_code::ErrorCode;
use std::fmt;

/// One dimension of work with a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// A JSON request body, in bytes.
    BodyBytes,
    /// A multipart request body, in bytes.
    UploadBytes,
    /// One text item or text file, in bytes.
    TextItemBytes,
    /// All text of one job, in bytes.
    JobTextBytes,
    /// Segments the language model scores in one job.
    JobSegments,
    /// Sources of one job, each archive member counted.
    JobSources,
    /// The duration of one audio or video source, in seconds.
    SourceMediaSecs,
    /// The duration of all audio and video of one job, in seconds.
    JobMediaSecs,
    /// Video frames and images measured in one job.
    JobFrames,
}

/// What the answers and the manifest say about a limit.
struct LimitInfo {
    /// The error code (listed in `action-manifest.json`).
    code: ErrorCode,
    /// The setting that raises it.
    setting: &'static str,
    /// What is counted, as a person reads it.
    what: &'static str,
    unit: &'static str,
    /// How to get under it.
    advice: &'static str,
}

const INFO: [LimitInfo; 9] = [
    LimitInfo {
        code: ErrorCode::BodyTooLarge,
        setting: "HUME_ACTION_MAX_BODY_BYTES",
        what: "a JSON request body",
        unit: "bytes",
        advice: "Send fewer or shorter values, or upload text as files (multipart).",
    },
    LimitInfo {
        code: ErrorCode::UploadTooLarge,
        setting: "HUME_ACTION_MAX_UPLOAD_BYTES",
        what: "a multipart upload",
        unit: "bytes",
        advice: "Upload fewer or smaller files, or host them and send their URLs.",
    },
    LimitInfo {
        code: ErrorCode::TextTooLarge,
        setting: "HUME_ACTION_MAX_TEXT_BYTES",
        what: "one text item or text file",
        unit: "bytes",
        advice: "Split the text into several items or jobs.",
    },
    LimitInfo {
        code: ErrorCode::JobTextTooLarge,
        setting: "HUME_ACTION_MAX_JOB_TEXT_BYTES",
        what: "the text of one job",
        unit: "bytes",
        advice: "Split the texts across several jobs.",
    },
    LimitInfo {
        code: ErrorCode::TooManySegments,
        setting: "HUME_ACTION_MAX_JOB_SEGMENTS",
        what: "the language segments of one job",
        unit: "segments",
        advice: "Use a coarser granularity (sentence instead of word) or split the job.",
    },
    LimitInfo {
        code: ErrorCode::TooManySources,
        setting: "HUME_ACTION_MAX_JOB_SOURCES",
        what: "the sources of one job (URLs, text items and files, each archive member counted)",
        unit: "sources",
        advice: "Split the sources across several jobs.",
    },
    LimitInfo {
        code: ErrorCode::MediaTooLong,
        setting: "HUME_ACTION_MAX_SOURCE_MEDIA_SECS",
        what: "one audio or video source",
        unit: "seconds",
        advice: "Cut the recording into shorter parts.",
    },
    LimitInfo {
        code: ErrorCode::JobMediaTooLong,
        setting: "HUME_ACTION_MAX_JOB_MEDIA_SECS",
        what: "the audio and video of one job",
        unit: "seconds",
        advice: "Split the recordings across several jobs.",
    },
    LimitInfo {
        code: ErrorCode::TooManyFrames,
        setting: "HUME_ACTION_MAX_JOB_FRAMES",
        what: "the video frames and images of one job",
        unit: "frames",
        advice: "Lower models.face.fps_pred, send shorter videos, or split the job.",
    },
];

impl Limit {
    /// Every limit.
    pub const ALL: [Limit; 9] = [
        Limit::BodyBytes,
        Limit::UploadBytes,
        Limit::TextItemBytes,
        Limit::JobTextBytes,
        Limit::JobSegments,
        Limit::JobSources,
        Limit::SourceMediaSecs,
        Limit::JobMediaSecs,
        Limit::JobFrames,
    ];

    fn info(self) -> &'static LimitInfo {
        &INFO[self as usize]
    }

    /// The stable error code.
    pub fn code(self) -> ErrorCode {
        self.info().code
    }

    /// The environment variable that sets it.
    pub fn setting(self) -> &'static str {
        self.info().setting
    }

    /// The HTTP status when it is crossed at intake (its code's: 413 for sizes, 422 for counts).
    pub fn status(self) -> u16 {
        self.code().status().as_u16()
    }

    /// The unit it counts in.
    pub fn unit(self) -> &'static str {
        self.info().unit
    }
}

/// A limit crossed: which, its value, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    pub limit: Limit,
    /// The limit's value.
    pub max: u64,
    /// The value seen (the whole job's, for a per-job limit).
    pub seen: u64,
    /// `seen` is a lower bound (a body that was cut off while reading, frames past a cap).
    pub at_least: bool,
    /// The input at fault (`text[2]`, `urls`, `file`, `body`), for an answer at intake.
    pub field: String,
}

impl LimitExceeded {
    /// `limit` crossed at `max`, with `seen` (exactly) in `field`.
    pub fn new(limit: Limit, max: u64, seen: u64, field: impl Into<String>) -> Self {
        Self { limit, max, seen, at_least: false, field: field.into() }
    }

    /// The same, with `seen` a lower bound.
    pub fn at_least(mut self) -> Self {
        self.at_least = true;
        self
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.limit.info();
        let more = if self.at_least { "at least " } else { "" };
        write!(
            f,
            "The limit on {} is {} {unit} ({}) and {more}{} {unit} were seen. {}",
            info.what,
            self.max,
            info.setting,
            self.seen,
            info.advice,
            unit = info.unit,
        )
    }
}

impl std::error::Error for LimitExceeded {}

/// The values of the limits a job runs under (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budgets {
    pub text_item_bytes: u64,
    pub job_text_bytes: u64,
    pub job_segments: u64,
    pub job_sources: u64,
    pub source_media_secs: u64,
    pub job_media_secs: u64,
    pub job_frames: u64,
}

impl Default for Budgets {
    /// The defaults of the settings.
    fn default() -> Self {
        Self {
            text_item_bytes: 256 * 1024,
            job_text_bytes: 2 * 1024 * 1024,
            job_segments: 20_000,
            job_sources: 100,
            source_media_secs: 3_600,
            job_media_secs: 4 * 3_600,
            job_frames: 10_800,
        }
    }
}

impl Budgets {
    /// The value of a per-job or per-source `limit` (the body and upload caps are not kept here).
    pub fn max(&self, limit: Limit) -> Option<u64> {
        match limit {
            Limit::TextItemBytes => Some(self.text_item_bytes),
            Limit::JobTextBytes => Some(self.job_text_bytes),
            Limit::JobSegments => Some(self.job_segments),
            Limit::JobSources => Some(self.job_sources),
            Limit::SourceMediaSecs => Some(self.source_media_secs),
            Limit::JobMediaSecs => Some(self.job_media_secs),
            Limit::JobFrames => Some(self.job_frames),
            Limit::BodyBytes | Limit::UploadBytes => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_has_its_own_code_and_setting_and_a_message_naming_them() {
        let mut codes: Vec<&str> = Limit::ALL.iter().map(|l| l.code().as_str()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Limit::ALL.len());
        for limit in Limit::ALL {
            assert!(limit.setting().starts_with("HUME_ACTION_MAX_"), "{limit:?}");
            let message = LimitExceeded::new(limit, 10, 11, "x").to_string();
            assert!(message.contains("10") && message.contains("11") && message.contains(limit.setting()), "{message}");
        }
        let cut = LimitExceeded::new(Limit::BodyBytes, 10, 11, "body").at_least().to_string();
        assert!(cut.contains("at least 11 bytes"), "{cut}");
    }
}
