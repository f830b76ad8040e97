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
//! measured.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use md5::{Digest, Md5};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{timeout_at, Instant};
use url::Url;

use crate::analyzers::{applies, Analyzer, Analyzers, JobContext, Route, Subject, Task, Transcriber, Transcript};
use crate::config::Secret;
use crate::fetch::{FetchedFile, Fetcher};
use crate::job::models::{Model, ModelSettings};
use crate::job::now_ms;
use crate::job::state::JobState;
use crate::job::UploadedFile;
use crate::media::archive::expand_archive_async;
use crate::media::audio::Pcm;
use crate::media::prepare::{Needs, Prepared, Preparer};
use crate::media::{sniff, MediaKind};
use crate::predictions::{InferencePrediction, InferenceResults, ModelsPredictions, Source, SourceError, SourceResult};
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
    pub store: Arc<dyn Store>,
    pub sealer: Arc<Sealer>,
    /// `HUME_ACTION_JOB_DEADLINE_SECS`: how long one run of a job may take.
    pub job_deadline: Duration,
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
    context: JobContext,
    /// `None`: transcription off (v0's `"transcription": null`); `Some(language)`: on, with the
    /// language forced when given.
    transcription: Option<Option<String>>,
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

    fn extend(&mut self, other: Measured) {
        self.predictions.extend(other.predictions);
        self.errors.extend(other.errors);
    }
}

impl Engine {
    /// Runs `job`: each source's result is stored as soon as it is measured, so a job's memory
    /// grows with the sources under way, not with the whole job; returns the end state. The job
    /// is measured holding one of `measuring_slots`; its downloads need none.
    pub async fn run(&self, job: &JobRecord, measuring_slots: &Semaphore) -> Result<JobState, StoreError> {
        let deadline = Instant::now() + self.job_deadline;
        let strings = |key: &str| -> Vec<String> {
            job.request[key]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let mut inputs: Vec<Input> = strings("urls").into_iter().map(Input::Url).collect();
        inputs.extend(strings("text").into_iter().map(Input::Text));
        inputs.extend(self.store.files(&job.id).await?.into_iter().map(Input::File));
        let api_key = job.api_key_sealed.as_deref().and_then(|sealed| match self.sealer.open(sealed, &job.id) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(error = %e, "the job's API key could not be opened");
                None
            }
        });
        let run = Run {
            engine: self,
            deadline,
            settings: ModelSettings::from_v0(&job.request["models"]),
            context: JobContext { api_key },
            transcription: match job.request.get("transcription") {
                Some(Value::Null) => None,
                other => Some(other.and_then(|t| t["language"].as_str()).map(str::to_owned)),
            },
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
    async fn all(&self, inputs: Vec<Input>, measuring_slots: &Semaphore, job_id: &str) -> Result<Tally, StoreError> {
        let (mut ready, mut downloads) = (VecDeque::new(), JoinSet::new());
        let download_slots = Arc::new(Semaphore::new(DOWNLOADS_PER_JOB));
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
            Err(e) => return Measured::error(file, e.to_string()),
        };
        if members.is_empty() {
            return Measured::error(file, format!("{file} holds no files to measure."));
        }
        let mut measured = Measured::default();
        for member in members {
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

    /// One file: prepared once, then every selected model that applies, on its runner.
    async fn file(&self, file: &str, kind: MediaKind, bytes: Bytes) -> Measured {
        if kind == MediaKind::Unknown {
            return Measured::error(file, "Could not tell what kind of file this is (text, audio, video or image); check the URL serves the media itself, not a web page.");
        }
        let mut measured = Measured::default();
        let prepared = match kind {
            MediaKind::Text => None,
            _ => match self.prepare(file, kind, &bytes).await {
                Ok(prepared) => prepared,
                Err(message) => return Measured::error(file, message),
            },
        };
        let kind = prepared.as_ref().map_or(kind, |p| p.kind);
        if prepared.as_ref().is_some_and(|p| p.frames_truncated) {
            let kept = prepared.as_ref().map_or(0, |p| p.frames.len());
            measured.errors.push(SourceError {
                file: file.to_owned(),
                message: format!("{file} has more frames than one source may have measured; only the first {kept} were measured. Lower models.face.fps_pred or send a shorter video."),
            });
        }
        let text = (kind == MediaKind::Text).then(|| String::from_utf8_lossy(&bytes).into_owned());
        let transcript = match prepared.as_ref().and_then(|p| p.audio.as_ref()) {
            Some(pcm) => self.transcribe(file, pcm, &mut measured.errors).await,
            None => None,
        };
        let subject =
            Subject { file, text: text.as_deref(), media: prepared.as_ref(), transcript: transcript.as_ref() };
        let selected = self.settings.selected();
        let applicable: Vec<Model> = selected.iter().copied().filter(|m| applies(*m, kind)).collect();
        if applicable.is_empty() {
            let names: Vec<&str> = selected.iter().map(|m| m.name()).collect();
            return Measured::error(
                file,
                format!("None of the selected models ({}) applies to a {} file.", names.join(", "), kind.as_str()),
            );
        }
        let mut models = ModelsPredictions::default();
        for (analyzer, served) in self.groups(&applicable, &mut measured.errors, file) {
            let task = Task { job: &self.context, subject: &subject, models: &served, settings: &self.settings };
            match analyzer.analyze(&task).await {
                Ok(output) => models.merge(output),
                Err(message) => measured.errors.push(SourceError { file: file.to_owned(), message }),
            }
        }
        if !models.is_empty() {
            measured.predictions.push(InferencePrediction {
                file: file.to_owned(),
                file_type: kind.as_str().to_owned(),
                models,
                transcript,
            });
        }
        measured
    }

    /// The analyzers that serve `models`, each once with the models it serves; a model with no
    /// runner here becomes an error.
    fn groups(
        &self,
        models: &[Model],
        errors: &mut Vec<SourceError>,
        file: &str,
    ) -> Vec<(Arc<dyn Analyzer>, Vec<Model>)> {
        let mut groups: Vec<(Arc<dyn Analyzer>, Vec<Model>)> = Vec::new();
        for &model in models {
            match self.engine.analyzers.route(model) {
                Route::Unavailable(message) => {
                    errors.push(SourceError { file: file.to_owned(), message: message.clone() })
                }
                Route::Run(analyzer) => match groups.iter_mut().find(|(a, _)| Arc::ptr_eq(a, analyzer)) {
                    Some((_, served)) => served.push(model),
                    None => groups.push((analyzer.clone(), vec![model])),
                },
            }
        }
        groups
    }

    /// Whether this job's files get transcribed: a model that reads words is selected, a
    /// transcriber exists, and the request did not turn transcription off.
    fn wants_transcript(&self) -> bool {
        let reads_words = self.settings.has(Model::Language) || self.settings.has(Model::Ner);
        reads_words && self.transcription.is_some() && self.engine.transcriber.is_some()
    }

    /// What was said in `pcm`, when this job wants it; a failure becomes the file's error.
    async fn transcribe(&self, file: &str, pcm: &Pcm, errors: &mut Vec<SourceError>) -> Option<Transcript> {
        let transcriber = self.engine.transcriber.as_ref().filter(|_| self.wants_transcript())?;
        let language = self.transcription.clone().flatten();
        match transcriber.transcribe(file, pcm, language.as_deref()).await {
            Ok(transcript) => Some(transcript),
            Err(message) => {
                errors.push(SourceError { file: file.to_owned(), message });
                None
            }
        }
    }

    /// Decodes a media file once for every model that will run on it; `None` when none will.
    async fn prepare(&self, file: &str, kind: MediaKind, bytes: &[u8]) -> Result<Option<Prepared>, String> {
        let runs =
            |model: Model| self.settings.has(model) && matches!(self.engine.analyzers.route(model), Route::Run(_));
        // Only what a model that applies to this kind of file will use (ffprobe may still tell
        // an `.mp4` is audio only).
        let has_sound = matches!(kind, MediaKind::Audio | MediaKind::Video);
        let has_picture = matches!(kind, MediaKind::Image | MediaKind::Video);
        let needs = Needs {
            audio: has_sound && (runs(Model::Prosody) || runs(Model::Burst) || self.wants_transcript()),
            frames: self.settings.face.as_ref().filter(|_| has_picture && runs(Model::Face)).map(|face| face.fps_pred),
        };
        if !needs.audio && needs.frames.is_none() {
            return Ok(None);
        }
        self.engine.media.prepare(file, kind, bytes, needs).await.map(Some).map_err(|e| e.to_string())
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
