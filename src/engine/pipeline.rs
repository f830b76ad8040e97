//! One job of the engine, source by source: fetch (or take the upload or text), tell what the
//! file is, expand an archive into its members, prepare media once (`crate::media`), run each
//! selected model on its runner (`crate::analyzers`), and assemble typed v0 predictions.
//!
//! Every URL of a job is downloaded into a temporary file in a task of its own, up to
//! [`DOWNLOADS_PER_JOB`] at once, so a job's downloads take about one download deadline, not
//! one per URL. Sources are measured as soon as they are ready, [`PARALLEL_SOURCES`] at a time,
//! each read into memory only when its turn comes, and the job holds one of the pool's
//! measuring slots only while it measures: a job waiting on slow URLs leaves the slot to other
//! jobs. The job's deadline ([`Engine::job_deadline`]) covers everything: a source not finished
//! by then becomes an error of its own and the job ends with the rest.
//!
//! One bad source never fails the job: its problem becomes an entry in that source's `errors`
//! (scrubbed of every secret before it is stored). A job fails only when nothing at all could be
//! measured. The job's budgets found while it runs (`super::budget`) are taken source by source.
//!
//! When the voice model (`prosody`) is asked for, each transcribed audio or video file also gets
//! its voice measures (`crate::analyzers::voice`: pitch, loudness, speaking rate per utterance)
//! beside its models' predictions, on every backend. Where prosody cannot run (`local`), the
//! file's words are scored by the language model in its place ([`Engine::spoken_settings`]),
//! under `language`, and prosody's error says so: nothing is labelled prosody that is not.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use md5::{Digest, Md5};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};
use url::Url;

use super::budget::JobBudget;
use crate::analyzers::speakers::{SpeakerFinder, Speakers};
use crate::analyzers::{
    applies, voice, Analyzer, Analyzers, JobContext, MeasureError, Route, Subject, Task, Transcriber, Transcript,
};
use crate::budget::{Budgets, Limit, LimitExceeded};
use crate::config::Secret;
use crate::fetch::{FetchedFile, Fetcher};
use crate::job::models::{Granularity, LanguageSettings, Model, ModelSettings};
use crate::job::now_ms;
use crate::job::spec::Transcription;
use crate::job::state::JobState;
use crate::job::{JobId, UploadedFile};
use crate::media::archive::expand_archive_async;
use crate::media::audio::Pcm;
use crate::media::error::MediaError;
use crate::media::prepare::{Needs, Prepared, Preparer, Probed};
use crate::media::{sniff, MediaKind};
use crate::models::segment::segment_count;
use crate::predictions::{
    InferencePrediction, InferenceResults, ModelsPredictions, Source, SourceError, SourceResult, VoiceMeasure,
};
use crate::sealed::Sealer;
use crate::secrets::Scrubber;
use crate::store::{JobRecord, Store, StoreError};

/// Sources of one job measured at once.
pub const PARALLEL_SOURCES: usize = 4;
/// URLs of one job downloaded at once.
pub const DOWNLOADS_PER_JOB: usize = 16;

/// What runs jobs.
pub struct Engine {
    pub fetcher: Fetcher,
    pub media: Arc<Preparer>,
    pub analyzers: Analyzers,
    /// Turns speech into words for the language model (and the `text` of voice windows).
    pub transcriber: Option<Arc<dyn Transcriber>>,
    /// Finds who spoke when, for `identify_speakers`; `Err` says why it cannot (model files
    /// missing) and becomes the error of each source that asks.
    pub speakers: Result<Arc<dyn SpeakerFinder>, String>,
    pub store: Arc<dyn Store>,
    pub sealer: Arc<Sealer>,
    /// `HUME_ACTION_JOB_DEADLINE_SECS`: how long one run of a job may take.
    pub job_deadline: Duration,
    /// The per-job and per-source budgets found while a job runs.
    pub budgets: Budgets,
    /// Scrubs every stored error of the server's secrets and the job's key.
    pub scrubber: Arc<Scrubber>,
}

/// One input of a job.
enum Input {
    Url(String),
    Text(String),
    File(UploadedFile),
}

/// A source after the download phase: how the predictions name it, the file name its errors
/// carry, and its contents.
struct Fetched {
    /// Its place among the job's inputs.
    index: usize,
    source: Source,
    file: String,
    contents: Contents,
}

enum Contents {
    /// A text item or an upload, already in memory.
    Bytes(MediaKind, Bytes),
    /// A downloaded URL, on disk until its turn to be measured.
    Downloaded(FetchedFile),
    /// Why there is nothing to measure.
    Failed(String),
}

/// One job's run: its settings and context, shared by its sources.
struct Run<'a> {
    engine: &'a Engine,
    /// When this run of the job must end.
    deadline: Instant,
    settings: ModelSettings,
    /// The settings for audio and video files: `settings`, plus the language model on what was
    /// said when the voice model (`prosody`) was asked for but cannot run here (see
    /// [`Engine::spoken_settings`]).
    spoken: ModelSettings,
    context: JobContext,
    /// Off (v0's `"transcription": null`), or on, with the language forced when given.
    transcription: Transcription,
    /// What the job's sources have used of its budgets so far.
    budget: JobBudget,
}

/// A file's outcome: its prediction (when anything was measured) and its errors.
#[derive(Default)]
struct Measured {
    predictions: Vec<InferencePrediction>,
    errors: Vec<SourceError>,
}

impl Measured {
    fn error(file: &str, message: impl Into<String>) -> Self {
        Self { predictions: vec![], errors: vec![SourceError { file: file.to_owned(), message: message.into() }] }
    }

    fn over(file: &str, what: &str, limit: LimitExceeded) -> Self {
        Self { predictions: vec![], errors: vec![over_budget(file, what, &limit)] }
    }

    fn extend(&mut self, other: Measured) {
        self.predictions.extend(other.predictions);
        self.errors.extend(other.errors);
    }
}

/// What the media step gives a file: its decoded media when a model needs it, and the models
/// the budgets kept from it, with the errors that say so.
#[derive(Debug, Default)]
struct MediaStep {
    prepared: Option<Prepared>,
    blocked: Vec<Model>,
    errors: Vec<SourceError>,
}

/// A file's frames held to the job's budget: what to decode, the job's frames left before its
/// decode, and what the budget kept from it.
#[derive(Debug, Default)]
struct Admitted {
    needs: Needs,
    frames_left: u64,
    blocked: Vec<Model>,
    errors: Vec<SourceError>,
}

/// The source's `errors` entry for a file the media step could not read.
fn media_error(file: &str, error: MediaError) -> SourceError {
    SourceError { file: file.to_owned(), message: error.to_string() }
}

/// The source's `errors` entry for what a model could not measure: the one place a
/// [`MeasureError`] becomes v0's `{file, message}`.
fn source_error(file: &str, error: &MeasureError) -> SourceError {
    SourceError { file: file.to_owned(), message: error.to_string() }
}

/// A source's error for a budget found while the job runs: the limit's code, what was left out,
/// and the limit, the value seen and the setting.
fn over_budget(file: &str, what: &str, limit: &LimitExceeded) -> SourceError {
    SourceError { file: file.to_owned(), message: format!("{}: {what} {limit}", limit.limit.code()) }
}

impl Engine {
    /// Runs `job`: each source's result is stored as soon as it is measured, so a job's memory
    /// grows with the sources under way, not with the whole job; returns the end state. The job
    /// is measured holding one of `measuring_slots`; its downloads need none.
    pub async fn run(&self, job: &JobRecord, measuring_slots: &Semaphore) -> Result<JobState, StoreError> {
        let deadline = Instant::now() + self.job_deadline;
        let mut inputs: Vec<Input> = job.spec.urls().iter().cloned().map(Input::Url).collect();
        inputs.extend(job.spec.text().iter().cloned().map(Input::Text));
        inputs.extend(self.store.files(&job.id).await?.into_iter().map(Input::File));
        let api_key =
            job.api_key_sealed.as_deref().and_then(|sealed| match self.sealer.open(sealed, job.id.as_str()) {
                Ok(key) => Some(key),
                Err(e) => {
                    tracing::warn!(error = %e, "the job's API key could not be opened");
                    None
                }
            });
        let (settings, transcription) = (job.spec.models.clone(), job.spec.transcription.clone());
        let run = Run {
            engine: self,
            deadline,
            spoken: self.spoken_settings(&settings, transcription != Transcription::Off),
            settings,
            context: JobContext { api_key },
            transcription,
            budget: JobBudget::new(self.budgets, inputs.len() as u64),
        };
        let tally = run.all(inputs, measuring_slots, &job.id).await?;
        let ended_ms = now_ms();
        let (created_ms, started_ms) = job.state.created_and_started(ended_ms);
        Ok(if tally.predictions > 0 {
            JobState::Completed {
                created_ms,
                started_ms,
                ended_ms,
                num_predictions: tally.predictions,
                num_errors: tally.errors,
            }
        } else {
            JobState::Failed { created_ms, started_ms, ended_ms, message: tally.failure_message() }
        })
    }
}

impl Engine {
    /// The settings of a job's audio and video files. When the voice model (`prosody`) is asked
    /// for on a backend that cannot run it, the words said are scored by the language model at
    /// utterance granularity (the action's), unless the job asked for the language model itself
    /// or turned transcription off: the file then has something true to read (the language
    /// model's scores of the words, under `language`, and the voice measures, under `voice`),
    /// while its errors say that prosody was not measured.
    fn spoken_settings(&self, settings: &ModelSettings, transcribed: bool) -> ModelSettings {
        let mut spoken = settings.clone();
        let stands_in = settings.prosody
            && settings.language.is_none()
            && transcribed
            && self.transcriber.is_some()
            && matches!(self.analyzers.route(Model::Prosody), Route::Unavailable(_))
            && matches!(self.analyzers.route(Model::Language), Route::Run(_));
        if stands_in {
            spoken.language = Some(LanguageSettings { granularity: Granularity::Utterance, ..Default::default() });
            // The words stand in for the voice model, so they are grouped as it was asked to be.
            spoken.identify_speakers.language |= settings.identify_speakers.prosody;
        }
        spoken
    }
}

/// What a job's stored sources add up to.
#[derive(Default)]
struct Tally {
    predictions: i64,
    errors: i64,
    /// The first few errors, for the message of a job where nothing could be measured.
    first_errors: Vec<String>,
}

impl Tally {
    fn count(&mut self, result: &SourceResult) {
        self.predictions += result.results.predictions.len() as i64;
        self.errors += result.results.errors.len() as i64;
        for e in result.results.errors.iter().take(3usize.saturating_sub(self.first_errors.len())) {
            self.first_errors.push(format!("{}: {}", e.file, e.message));
        }
    }

    /// Why nothing could be measured.
    fn failure_message(&self) -> String {
        match self.errors {
            0 => "The job had no sources to measure.".into(),
            n => format!(
                "Nothing could be measured ({n} error{}). {}",
                if n == 1 { "" } else { "s" },
                self.first_errors.join(" | ")
            ),
        }
    }
}

impl Run<'_> {
    /// Every source: downloaded (URLs in tasks of their own, [`DOWNLOADS_PER_JOB`] at once),
    /// then measured as soon as it is ready, [`PARALLEL_SOURCES`] at once, all within the
    /// job's deadline. One of `measuring_slots` is held while anything is being measured, and
    /// only then. Each result is stored at its input's position as soon as it is measured.
    async fn all(&self, inputs: Vec<Input>, measuring_slots: &Semaphore, job_id: &JobId) -> Result<Tally, StoreError> {
        let (mut ready, mut downloads) = (VecDeque::new(), JoinSet::new());
        let download_slots = Arc::new(Semaphore::new(DOWNLOADS_PER_JOB));
        // The summary's progress: a job with URLs downloads first (without any, it is measuring).
        let mut downloading = inputs.iter().any(|input| matches!(input, Input::Url(_)));
        if downloading {
            self.engine.store.set_stage(job_id, "downloading").await?;
        }
        for (index, input) in inputs.into_iter().enumerate() {
            match input {
                Input::Url(url) => {
                    let (fetcher, slots) = (self.engine.fetcher.clone(), download_slots.clone());
                    let (deadline, job_deadline) = (self.deadline, self.engine.job_deadline);
                    downloads.spawn(async move {
                        let _slot = slots.acquire_owned().await;
                        download(&fetcher, index, url, deadline, job_deadline).await
                    });
                }
                Input::Text(text) => ready.push_back(Fetched {
                    index,
                    source: Source::Text {},
                    file: "text".into(),
                    contents: Contents::Bytes(MediaKind::Text, text.into_bytes().into()),
                }),
                Input::File(file) => {
                    let md5sum = hex::encode(Md5::digest(&file.bytes));
                    let name = file.filename.clone().unwrap_or_else(|| "upload".into());
                    let kind = sniff(&file.bytes, file.content_type.as_deref(), Some(&name));
                    ready.push_back(Fetched {
                        index,
                        source: Source::File { filename: file.filename, content_type: file.content_type, md5sum },
                        file: name,
                        contents: Contents::Bytes(kind, file.bytes),
                    });
                }
            }
        }
        let (mut measuring, mut slot, mut tally) = (FuturesUnordered::new(), None, Tally::default());
        loop {
            if !ready.is_empty() && measuring.len() < PARALLEL_SOURCES {
                if slot.is_none() {
                    // Past the deadline there is no slot to wait for: the source ends as unfinished.
                    slot = timeout_at(self.deadline, measuring_slots.acquire()).await.ok().and_then(Result::ok);
                }
                if std::mem::take(&mut downloading) {
                    self.engine.store.set_stage(job_id, "measuring").await?;
                }
                while measuring.len() < PARALLEL_SOURCES {
                    let Some(fetched) = ready.pop_front() else { break };
                    measuring.push(self.measure(fetched));
                }
            }
            if measuring.is_empty() {
                slot = None; // only downloads left: other jobs measure meanwhile
                if downloads.is_empty() {
                    break;
                }
            }
            tokio::select! {
                Some((index, mut result)) = measuring.next(), if !measuring.is_empty() => {
                    let job_key: Vec<&str> = self.context.api_key.iter().map(Secret::expose).collect();
                    for error in &mut result.results.errors {
                        error.message = self.engine.scrubber.scrub_with(&error.message, &job_key);
                    }
                    tally.count(&result);
                    let json = serde_json::to_string(&result).expect("predictions serialise");
                    drop(result);
                    self.engine.store.put_result(job_id, index as i64, &json).await?;
                }
                Some(joined) = downloads.join_next(), if !downloads.is_empty() => match joined {
                    Ok(fetched) => ready.push_back(fetched),
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                },
            }
        }
        drop(slot);
        Ok(tally)
    }

    /// The measuring phase of one source, cut at the job's deadline.
    async fn measure(&self, fetched: Fetched) -> (usize, SourceResult) {
        let Fetched { index, source, file, contents } = fetched;
        let measure = async {
            match contents {
                Contents::Bytes(kind, bytes) => self.contents(&file, kind, bytes).await,
                Contents::Downloaded(download) => match download.read().await {
                    Ok(bytes) => {
                        let kind = sniff(&bytes, download.content_type.as_deref(), Some(download.final_url.path()));
                        drop(download); // the temporary file goes as soon as its bytes are in memory
                        self.contents(&file, kind, bytes).await
                    }
                    Err(e) => Measured::error(&file, format!("could not read the download back: {e}")),
                },
                Contents::Failed(message) => Measured::error(&file, message),
            }
        };
        let Measured { predictions, errors } = match timeout_at(self.deadline, measure).await {
            Ok(measured) => measured,
            Err(_) => Measured::error(&file, unfinished(&file, self.engine.job_deadline)),
        };
        (index, SourceResult { source, results: InferenceResults { predictions, errors } })
    }

    /// A source's contents: an archive's members each as its own file, or the one file.
    async fn contents(&self, file: &str, kind: MediaKind, bytes: Bytes) -> Measured {
        if kind != MediaKind::Archive {
            return self.file(file, kind, bytes).await;
        }
        let limits = self.engine.media.limits().clone();
        let members = match expand_archive_async(file.to_owned(), bytes, limits).await {
            Ok(members) => members,
            Err(MediaError::ArchiveTooManyMembers { max, .. }) => {
                let seen = self.budget.used(Limit::JobSources) + max as u64;
                let limit = LimitExceeded::new(Limit::JobSources, self.budget.budgets().job_sources, seen, file);
                return Measured::over(
                    file,
                    &format!("{file} holds more than {max} files and was not expanded."),
                    limit.at_least(),
                );
            }
            Err(e) => return Measured::error(file, e.to_string()),
        };
        if members.is_empty() {
            return Measured::error(file, format!("{file} holds no files to measure."));
        }
        let mut measured = Measured::default();
        // The archive was counted as one source at intake: that is its first member.
        let (granted, over) = self.budget.take_up_to(Limit::JobSources, members.len() as u64 - 1, file);
        let kept = granted as usize + 1;
        if let Some(limit) = over {
            let skipped: Vec<&str> = members[kept..].iter().map(|m| m.name.as_str()).collect();
            let what = format!(
                "{} of the {} files in {file} were not measured ({}{}).",
                skipped.len(),
                members.len(),
                skipped.iter().take(5).copied().collect::<Vec<_>>().join(", "),
                if skipped.len() > 5 { ", …" } else { "" }
            );
            measured.errors.push(over_budget(file, &what, &limit));
        }
        for member in members.into_iter().take(kept) {
            let kind = sniff(&member.bytes, None, Some(&member.name));
            measured.extend(if kind == MediaKind::Archive {
                Measured::error(
                    &member.name,
                    format!(
                        "{} is an archive inside an archive; nested archives are not expanded: send it on its own.",
                        member.name
                    ),
                )
            } else {
                self.file(&member.name, kind, member.bytes).await
            });
        }
        measured
    }

    /// One file: prepared once, then every selected model that applies, on its runner, within
    /// the job's budgets.
    async fn file(&self, file: &str, kind: MediaKind, bytes: Bytes) -> Measured {
        if kind == MediaKind::Unknown {
            return Measured::error(file, "Could not tell what kind of file this is (text, audio, video or image); check the URL serves the media itself, not a web page.");
        }
        let mut measured = Measured::default();
        let settings = match kind {
            MediaKind::Audio | MediaKind::Video => &self.spoken,
            _ => &self.settings,
        };
        let text = (kind == MediaKind::Text).then(|| String::from_utf8_lossy(&bytes).into_owned());
        if let Some(text) = &text {
            if let Err(limit) = self.take_text(file, text) {
                return Measured::over(file, &format!("{file} was not measured."), limit);
            }
        }
        let media = match kind {
            MediaKind::Text => MediaStep::default(),
            _ => match self.media(file, kind, &bytes, settings).await {
                Ok(step) => step,
                Err(error) => return Measured { predictions: vec![], errors: vec![error] },
            },
        };
        // Models the budgets keep from this file (their errors are in `measured`).
        let MediaStep { prepared, mut blocked, errors } = media;
        measured.errors.extend(errors);
        let kind = prepared.as_ref().map_or(kind, |p| p.kind);
        let pcm = prepared.as_ref().and_then(|p| p.audio.as_ref());
        let mut transcript = match pcm {
            Some(pcm) => self.transcribe(file, pcm, settings).await.unwrap_or_else(|error| {
                measured.errors.push(error);
                None
            }),
            None => None,
        };
        let speakers = match pcm {
            Some(pcm) if self.wants_speakers(settings, kind, transcript.is_some()) => {
                self.speakers(file, pcm).await.map_err(|error| measured.errors.push(error)).ok()
            }
            _ => None,
        };
        if let (Some(speakers), Some(transcript)) = (&speakers, &mut transcript) {
            speakers.label(transcript);
        }
        if let (Some(transcript), Some(granularity)) = (&transcript, self.language_granularity(settings)) {
            let segments = segment_count(&transcript.text_and_spans().0, granularity) as u64;
            if let Err(limit) = self.budget.take(Limit::JobSegments, segments, file) {
                let what = format!("What was said in {file} was not scored by the language model.");
                measured.errors.push(over_budget(file, &what, &limit));
                blocked.push(Model::Language);
            }
        }
        let subject = Subject {
            file,
            text: text.as_deref(),
            media: prepared.as_ref(),
            transcript: transcript.as_ref(),
            speakers: speakers.as_ref(),
        };
        let selected = settings.selected();
        let applicable: Vec<Model> = selected.iter().copied().filter(|m| applies(*m, kind)).collect();
        if applicable.is_empty() {
            let names: Vec<&str> = selected.iter().map(|m| m.name()).collect();
            return Measured::error(
                file,
                format!("None of the selected models ({}) applies to a {} file.", names.join(", "), kind.as_str()),
            );
        }
        let applicable: Vec<Model> = applicable.into_iter().filter(|m| !blocked.contains(m)).collect();
        let mut models = ModelsPredictions::default();
        let (groups, unavailable) = self.groups(&applicable);
        for (analyzer, served) in groups {
            let task = Task { job: &self.context, subject: &subject, models: &served, settings };
            let names: Vec<&'static str> = served.iter().map(|m| m.name()).collect();
            match crate::telemetry::metrics::analysis(&names, analyzer.analyze(&task)).await {
                Ok(output) => models.merge(output),
                Err(error) => measured.errors.push(source_error(file, &error)),
            }
        }
        let audio = prepared.as_ref().and_then(|p| p.audio.as_ref());
        let voice = match (audio, &transcript) {
            (Some(pcm), Some(transcript)) if self.settings.prosody => Some(voice_measures(pcm, transcript).await),
            _ => None,
        };
        for (model, message) in unavailable {
            let message = self.unavailable(model, message, &models, voice.as_deref());
            measured.errors.push(SourceError { file: file.to_owned(), message });
        }
        if !models.is_empty() || voice.as_ref().is_some_and(|v| !v.is_empty()) {
            measured.predictions.push(InferencePrediction {
                file: file.to_owned(),
                file_type: kind.as_str().to_owned(),
                models,
                transcript,
                duration_secs: prepared.as_ref().filter(|p| p.kind != MediaKind::Image).and_then(|p| p.duration_secs),
                voice,
            });
        }
        measured
    }

    /// The error of a model with no runner here (`message`, the route's), saying what the file
    /// got instead: the words scored by the language model, the voice measures. Neither is
    /// labelled with the model's name.
    fn unavailable(
        &self,
        model: Model,
        message: &str,
        models: &ModelsPredictions,
        voice: Option<&[VoiceMeasure]>,
    ) -> String {
        let mut message = message.to_owned();
        if !matches!(model, Model::Prosody | Model::Burst) {
            return message;
        }
        let words_scored =
            models.language.as_ref().is_some_and(|l| l.grouped_predictions.iter().any(|g| !g.predictions.is_empty()));
        if words_scored {
            message.push_str(if self.settings.language.is_some() {
                " What was said is scored by the language model (under `language`)."
            } else {
                " Instead, what was said is scored by the language model (under `language`): scores of the words, not of the voice."
            });
        }
        if voice.is_some_and(|v| !v.is_empty()) {
            message.push_str(" The voice itself is measured (pitch, loudness and speaking rate per utterance, under `voice`): measurements, not emotions.");
        }
        message
    }

    /// The language model's granularity, when it runs on this job's files of these `settings`.
    fn language_granularity<'s>(&self, settings: &'s ModelSettings) -> Option<&'s str> {
        let runs = matches!(self.engine.analyzers.route(Model::Language), Route::Run(_));
        settings.language.as_ref().filter(|_| runs).map(|l| l.granularity.as_str())
    }

    /// Takes a text file's bytes and segments from the job's budgets, all or nothing.
    fn take_text(&self, file: &str, text: &str) -> Result<(), LimitExceeded> {
        let bytes = text.len() as u64;
        self.budget.per_source(Limit::TextItemBytes, bytes, file)?;
        self.budget.take(Limit::JobTextBytes, bytes, file)?;
        let segments = self.language_granularity(&self.settings).map_or(0, |g| segment_count(text, g) as u64);
        self.budget.take(Limit::JobSegments, segments, file).inspect_err(|_| {
            self.budget.give_back(Limit::JobTextBytes, bytes);
        })
    }

    /// The analyzers that serve `models`, each once with the models it serves, and the models
    /// with no runner here, with the route's reason.
    #[allow(clippy::type_complexity)]
    fn groups<'e>(&'e self, models: &[Model]) -> (Vec<(Arc<dyn Analyzer>, Vec<Model>)>, Vec<(Model, &'e str)>) {
        let (mut groups, mut unavailable): (Vec<(Arc<dyn Analyzer>, Vec<Model>)>, _) = (Vec::new(), Vec::new());
        for &model in models {
            match self.engine.analyzers.route(model) {
                Route::Unavailable(message) => unavailable.push((model, message.as_str())),
                Route::Run(analyzer) => match groups.iter_mut().find(|(a, _)| Arc::ptr_eq(a, analyzer)) {
                    Some((_, served)) => served.push(model),
                    None => groups.push((analyzer.clone(), vec![model])),
                },
            }
        }
        (groups, unavailable)
    }

    /// Whether this job's files of these `settings` get transcribed: a model that reads words is
    /// selected, a transcriber exists, and the request did not turn transcription off.
    fn wants_transcript(&self, settings: &ModelSettings) -> bool {
        let reads_words = settings.has(Model::Language) || settings.has(Model::Ner);
        reads_words && self.transcription != Transcription::Off && self.engine.transcriber.is_some()
    }

    /// Whether this file is diarized: a model that runs here and groups by speaker applies to
    /// it (language needs the transcript too).
    fn wants_speakers(&self, settings: &ModelSettings, kind: MediaKind, transcribed: bool) -> bool {
        let runs = |model: Model| {
            settings.has(model) && applies(model, kind) && matches!(self.engine.analyzers.route(model), Route::Run(_))
        };
        let ask = settings.identify_speakers;
        (ask.language && transcribed && runs(Model::Language)) || (ask.prosody && runs(Model::Prosody))
    }

    /// Who spoke when in `pcm`; a failure (or a model not installed) is the file's error, and
    /// its predictions stay under `unknown`.
    async fn speakers(&self, file: &str, pcm: &Pcm) -> Result<Speakers, SourceError> {
        let outcome = match &self.engine.speakers {
            Ok(finder) => finder.speakers(file, pcm).await,
            Err(why) => Err(MeasureError::NoSpeakerModel { file: file.to_owned(), why: why.clone() }),
        };
        outcome.map_err(|error| SourceError {
            file: file.to_owned(),
            message: format!("{error} Its predictions are grouped under `unknown`."),
        })
    }

    /// What was said in `pcm`, when this job wants it (`Ok(None)` when not); a failure is the
    /// file's error.
    async fn transcribe(
        &self,
        file: &str,
        pcm: &Pcm,
        settings: &ModelSettings,
    ) -> Result<Option<Transcript>, SourceError> {
        let Some(transcriber) = self.engine.transcriber.as_ref().filter(|_| self.wants_transcript(settings)) else {
            return Ok(None);
        };
        let transcript = transcriber.transcribe(file, pcm, self.transcription.language()).await;
        transcript.map(Some).map_err(|error| source_error(file, &error))
    }

    /// The media step of one file: what the models that will run on it need, the frames the
    /// job has left, then the probe, then the budget of its length, then the decode, so nothing
    /// over a budget is decoded. A source too long is an `Err`; what the budgets keep from a file
    /// that is measured (some or all of its frames) is in the step's `blocked` and `errors`.
    async fn media(
        &self,
        file: &str,
        kind: MediaKind,
        bytes: &[u8],
        settings: &ModelSettings,
    ) -> Result<MediaStep, SourceError> {
        let Some(wanted) = self.wanted(kind, settings) else { return Ok(MediaStep::default()) };
        let admitted = self.admit_frames(file, wanted);
        let mut step = MediaStep { prepared: None, blocked: admitted.blocked, errors: admitted.errors };
        if !admitted.needs.audio && admitted.needs.frames.is_none() {
            return Ok(step);
        }
        let not_measured = |limit: LimitExceeded| over_budget(file, &format!("{file} was not measured."), &limit);
        let probed = self.engine.media.probe(file, kind, bytes).await.map_err(|e| media_error(file, e))?;
        let (needs, length_taken) = self.admit_length(file, &probed, admitted.needs).map_err(not_measured)?;
        let length = probed.duration_secs.filter(|_| length_taken).map_or(0, |secs| secs.ceil() as u64);
        let mut prepared = match probed.decode(bytes, needs).await {
            Ok(prepared) => prepared,
            // A file that could not be decoded gives its length back to the job.
            Err(e) => {
                self.budget.give_back(Limit::JobMediaSecs, length);
                return Err(match e {
                    MediaError::TooLong { duration_secs, .. } => not_measured(self.too_long(file, duration_secs)),
                    e => media_error(file, e),
                });
            }
        };
        if !length_taken {
            self.take_length(file, &prepared).map_err(not_measured)?;
        }
        if needs.frames.is_some() {
            step.errors.extend(self.take_frames(file, &mut prepared, admitted.frames_left));
            if prepared.frames.is_empty() {
                step.blocked.push(Model::Face);
            }
        }
        step.prepared = Some(prepared);
        Ok(step)
    }

    /// What the models that will run on a file of `kind` need decoded from it; `None` when
    /// nothing (only what a model that applies to the kind will use: ffprobe may still tell an
    /// `.mp4` is audio only).
    fn wanted(&self, kind: MediaKind, settings: &ModelSettings) -> Option<Needs> {
        let runs = |model: Model| settings.has(model) && matches!(self.engine.analyzers.route(model), Route::Run(_));
        let has_sound = matches!(kind, MediaKind::Audio | MediaKind::Video);
        let has_picture = matches!(kind, MediaKind::Image | MediaKind::Video);
        let needs = Needs {
            audio: has_sound && (runs(Model::Prosody) || runs(Model::Burst) || self.wants_transcript(settings)),
            frames: settings.face.as_ref().filter(|_| has_picture && runs(Model::Face)).map(|face| face.fps_pred),
            max_secs: None,
            max_frames: None,
        };
        (needs.audio || needs.frames.is_some()).then_some(needs)
    }

    /// Caps a file's frames at what the job has left; when none is left its pictures are not
    /// decoded, and an error says so.
    fn admit_frames(&self, file: &str, wanted: Needs) -> Admitted {
        let frames_left = self.budget.left(Limit::JobFrames);
        let mut admitted = Admitted { needs: wanted, frames_left, ..Admitted::default() };
        admitted.needs.max_frames = Some(usize::try_from(frames_left).unwrap_or(usize::MAX));
        if admitted.needs.frames.is_some() && frames_left == 0 {
            let seen = self.budget.used(Limit::JobFrames) + 1;
            let limit = LimitExceeded::new(Limit::JobFrames, self.budget.budgets().job_frames, seen, file).at_least();
            admitted.errors.push(over_budget(file, &format!("The pictures of {file} were not measured."), &limit));
            admitted.blocked.push(Model::Face);
            admitted.needs.frames = None;
        }
        admitted
    }

    /// Holds a probed file's length to the budgets before it is decoded: taken when the probe
    /// tells it (`true`), or else capped for the decode to check. The needs to decode with.
    fn admit_length(&self, file: &str, probed: &Probed<'_>, needs: Needs) -> Result<(Needs, bool), LimitExceeded> {
        match probed.duration_secs {
            Some(secs) => {
                self.take_secs(file, secs.ceil() as u64)?;
                Ok((needs, true))
            }
            None => {
                let secs_left = self.budget.left(Limit::JobMediaSecs).min(self.budget.budgets().source_media_secs);
                Ok((Needs { max_secs: Some(secs_left as f64), ..needs }, false))
            }
        }
    }

    /// Takes `secs` of audio or video from the source's and the job's budgets.
    fn take_secs(&self, file: &str, secs: u64) -> Result<(), LimitExceeded> {
        self.budget.per_source(Limit::SourceMediaSecs, secs, file)?;
        self.budget.take(Limit::JobMediaSecs, secs, file)
    }

    /// Takes a decoded file's length from the budgets, when only the decode told it.
    fn take_length(&self, file: &str, prepared: &Prepared) -> Result<(), LimitExceeded> {
        match prepared.duration_secs.filter(|_| prepared.kind != MediaKind::Image) {
            Some(secs) => self.take_secs(file, secs.ceil() as u64),
            None => Ok(()),
        }
    }

    /// The limit a file of `duration_secs` that the decode found too long is over.
    fn too_long(&self, file: &str, duration_secs: f64) -> LimitExceeded {
        let secs = duration_secs.ceil() as u64;
        self.budget.per_source(Limit::SourceMediaSecs, secs, file).err().unwrap_or_else(|| {
            let (max, used) = (self.budget.budgets().job_media_secs, self.budget.used(Limit::JobMediaSecs));
            LimitExceeded::new(Limit::JobMediaSecs, max, used + secs, file)
        })
    }

    /// Takes a prepared file's frames from the job's budget; frames past it (or past the
    /// per-source cap) are dropped, and the error names the limit.
    fn take_frames(&self, file: &str, prepared: &mut Prepared, frames_left: u64) -> Option<SourceError> {
        let count = prepared.frames.len() as u64;
        let (granted, over) = self.budget.take_up_to(Limit::JobFrames, count, file);
        let per_source_cap = self.engine.media.limits().max_frames_per_source as u64;
        let job_cap_hit = prepared.frames_truncated && frames_left < per_source_cap;
        prepared.frames.truncate(granted as usize);
        let what = format!("Only the first {granted} frames of {file} were measured.");
        match over {
            Some(mut limit) => {
                limit.at_least |= prepared.frames_truncated;
                Some(over_budget(file, &what, &limit))
            }
            None if job_cap_hit => {
                let (max, used) = (self.budget.budgets().job_frames, self.budget.used(Limit::JobFrames));
                Some(over_budget(file, &what, &LimitExceeded::new(Limit::JobFrames, max, used + 1, file).at_least()))
            }
            None if prepared.frames_truncated => Some(SourceError {
                file: file.to_owned(),
                message: format!("{file} has more frames than one source may have measured; only the first {granted} were measured. Lower models.face.fps_pred or send a shorter video."),
            }),
            None => None,
        }
    }
}

/// The voice measures of a file's utterances, measured off the async threads (a pitch tracker
/// runs over every 10 ms of speech).
async fn voice_measures(pcm: &Pcm, transcript: &Transcript) -> Vec<VoiceMeasure> {
    if tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(|| voice::measure(pcm, transcript))
    } else {
        let (pcm, transcript) = (pcm.clone(), transcript.clone());
        tokio::task::spawn_blocking(move || voice::measure(&pcm, &transcript)).await.unwrap_or_default()
    }
}

/// The download phase of a URL: into a temporary file, cut at the job's deadline.
async fn download(fetcher: &Fetcher, index: usize, url: String, deadline: Instant, job_deadline: Duration) -> Fetched {
    let file = file_name(&url);
    let contents = match Url::parse(&url) {
        Err(e) => Contents::Failed(format!("not a valid URL: {e}")),
        Ok(parsed) => match timeout_at(deadline, fetcher.get_to_file(&parsed)).await {
            Ok(Ok(fetched)) => Contents::Downloaded(fetched),
            Ok(Err(e)) => Contents::Failed(e.to_string()),
            Err(_) => Contents::Failed(unfinished(&format!("The download of {file}"), job_deadline)),
        },
    };
    Fetched { index, source: Source::Url { url }, file, contents }
}

/// The error of a source (`what`) that the job's deadline cut.
fn unfinished(what: &str, job_deadline: Duration) -> String {
    format!(
        "{what} was not finished within the job deadline of {} s (HUME_ACTION_JOB_DEADLINE_SECS), so the job ended without it; send fewer or smaller sources per job, or faster hosts.",
        job_deadline.as_secs_f64()
    )
}

/// The name a URL's file goes by in its errors and predictions: the last segment of its path.
fn file_name(url: &str) -> String {
    match Url::parse(url) {
        Err(_) => url.to_owned(),
        Ok(parsed) => parsed
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .unwrap_or("index")
            .to_owned(),
    }
}
