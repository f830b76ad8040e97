//! Answers built from stored predictions: what `GET /v1/jobs/{id}/summary` returns and a summary
//! callback carries, so a workflow routes on `escalation.detected` or maps `scores.Anger`
//! instead of walking `results.predictions[].models.<model>.grouped_predictions[]`.
//!
//! A [`Builder`] takes a job's sources one at a time (the caller reads them from the store one by
//! one), keeps each file's small summary and the job's running sums, and drops the predictions:
//! a summary's memory grows with the number of files, never with their predictions. It runs no
//! model and knows no HTTP.
//!
//! Nothing is invented: a model that did not run is absent (not zero); a model that ran and found
//! nothing has `segments: 0` and a `note` saying so and, where the runner said, why.

pub mod aggregate;
pub mod escalation;
pub mod headline;
pub mod segments;
pub mod voice;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use url::Url;

use aggregate::{by_name, means, peaks, round, round_secs, top, window_for, windows, Means, Peak, MAX_WINDOWS};
use escalation::{judge, Escalation, EscalationSettings};
use segments::{named_groups, of_file, ModelSegments, Segment, Unit};

use crate::config::Config;
use crate::job::models::Model;
use crate::job::state::JobState;
use crate::job::status::JobStatus;
use crate::predictions::{
    speaker_of_words, BoundingBox, InferencePrediction, ModelsPredictions, Score, Source, SourceError, SourceResult,
};
use crate::store::{JobRecord, Store, StoreError};

/// How many expressions a `top_emotions` list names.
pub const TOP: usize = 5;
/// Characters of words a timeline window quotes at the most.
const WINDOW_TEXT_CHARS: usize = 300;
/// Face boxes listed per image at the most.
const MAX_BOXES: usize = 100;
/// Vocal bursts listed per file at the most.
const MAX_BURSTS: usize = 100;

/// What the summary needs beyond the predictions.
#[derive(Debug, Clone, Default)]
pub struct SummarySettings {
    pub escalation: EscalationSettings,
    /// The timeline's window in seconds; `None` chooses one from each file's length.
    pub window_secs: Option<f64>,
}

/// How far a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Queued,
    Downloading,
    Measuring,
    Storing,
    Done,
}

impl Stage {
    /// The stage as stored (`downloading`, `measuring`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Downloading => "downloading",
            Self::Measuring => "measuring",
            Self::Storing => "storing",
            Self::Done => "done",
        }
    }

    /// The stage of a job in `state`, whose worker last recorded `recorded` (none: it has no
    /// download to wait for), with `done` of `total` sources stored.
    pub fn of(state: &JobState, recorded: Option<&str>, done: u64, total: u64) -> Self {
        match state {
            JobState::Queued { .. } => Self::Queued,
            JobState::Completed { .. } | JobState::Failed { .. } => Self::Done,
            JobState::InProgress { .. } if total > 0 && done >= total => Self::Storing,
            JobState::InProgress { .. } if recorded == Some("downloading") => Self::Downloading,
            JobState::InProgress { .. } => Self::Measuring,
        }
    }
}

/// How far a job is: its sources, those stored, and its stage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub sources_total: u64,
    pub sources_done: u64,
    pub stage: Stage,
}

/// The answer of `GET /v1/jobs/{id}/summary`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub job_id: String,
    /// `QUEUED`, `IN_PROGRESS`, `COMPLETED` or `FAILED`.
    pub status: JobStatus,
    /// Whether the job has ended (`COMPLETED` or `FAILED`).
    pub done: bool,
    /// Why a `FAILED` job failed.
    pub message: Option<String>,
    pub progress: Progress,
    pub num_errors: usize,
    /// Every source's errors, each naming its file.
    pub errors: Vec<SourceError>,
    /// One sentence a workflow can paste into a message.
    pub headline: String,
    /// The job's five highest expressions, each segment weighted by its duration (characters for text).
    pub top_emotions: Vec<Score>,
    /// Every expression's mean over every model that carries it: `scores.Anger`.
    pub scores: BTreeMap<String, f64>,
    /// The job's strongest file's verdict; `null` when nothing was measured.
    pub escalation: Option<Escalation>,
    /// One entry per measured file (archive members included), in request order.
    pub files: Vec<FileSummary>,
    /// The job's page on this server, when its public address is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_url: Option<String>,
    /// What was left out of a summary sent as a callback, to keep it small.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compacted: Option<String>,
}

/// One measured file.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileSummary {
    /// The file's name (an archive member's path inside the archive).
    pub file: String,
    /// Where it came from (`{"type": "url", "url"}`, `{"type": "file", ...}` or `{"type": "text"}`).
    pub source: Source,
    /// `text`, `audio`, `video` or `image`.
    pub file_type: String,
    /// The media's length; `null` for text and images.
    pub duration_secs: Option<f64>,
    /// What was said, when speech was transcribed.
    pub transcript: Option<String>,
    /// This file's strongest model's verdict (with the voice's evidence, when measured).
    pub escalation: Option<Escalation>,
    /// The voice measures over the file's timeline, when the voice was measured (pitch,
    /// loudness, speaking rate: measurements, not emotions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<voice::VoiceSummary>,
    /// Each model that ran on the file.
    #[schema(value_type = Object)]
    pub models: BTreeMap<&'static str, ModelSummary>,
}

/// One model's answer for one file.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ModelSummary {
    /// How many segments (sentences, windows, faces in frames) it scored.
    pub segments: usize,
    /// What `begin`/`end` count: `seconds`, or `characters` for text.
    pub unit: Unit,
    pub top_emotions: Vec<Score>,
    pub scores: BTreeMap<String, f64>,
    /// Where each of the top expressions peaked.
    pub peaks: Vec<Peak>,
    pub timeline: Vec<Window>,
    /// The timeline's window in seconds (text: runs of segments, `null`).
    pub window_secs: Option<f64>,
    pub escalation: Option<Escalation>,
    /// Per speaker, when the segments carry speaker ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speakers: Option<Vec<SpeakerSummary>>,
    /// Per tracked face (face, with `identify_faces`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faces: Option<Vec<FaceTrack>>,
    /// Each face's box in an image, for drawing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boxes: Option<Vec<FaceBox>>,
    /// The vocal bursts found (burst), each with its best-scoring description (on `local`,
    /// YAMNet's AudioSet class, e.g. "Laughter"; on `hume`, Hume's burst type).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bursts: Option<Vec<BurstMark>>,
    /// Why the model found nothing, or what it left out.
    pub note: Option<String>,
}

/// One timeline window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Window {
    pub begin: f64,
    pub end: f64,
    /// The words said in it, when known.
    pub text: Option<String>,
    /// Its highest expression.
    pub top: Option<Score>,
    /// The negative family's share of its scores (see `summary::escalation`).
    pub escalation_score: f64,
}

/// One speaker's aggregates.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SpeakerSummary {
    pub id: String,
    pub top_emotions: Vec<Score>,
    pub escalation: Option<Escalation>,
}

/// One tracked face's aggregates.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FaceTrack {
    pub id: String,
    pub top_emotions: Vec<Score>,
    /// Sampled frames it was seen in.
    pub frames: usize,
    /// Its highest expression per sampled frame, for a row over time.
    pub timeline: Vec<FacePoint>,
}

/// A tracked face's top expression in one sampled frame.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FacePoint {
    pub time: f64,
    pub top: Option<Score>,
}

/// One face in an image.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FaceBox {
    pub id: String,
    #[serde(rename = "box")]
    pub bbox: BoundingBox,
    pub top: Option<Score>,
}

/// One vocal burst: when, and its best-scoring description.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BurstMark {
    pub begin: f64,
    pub end: f64,
    pub top: Option<Score>,
}

/// What is known of the job besides its stored sources.
pub struct JobFacts<'a> {
    pub id: &'a str,
    pub state: &'a JobState,
    pub sources_total: u64,
    /// The stage the worker last recorded, if any.
    pub recorded_stage: Option<&'a str>,
    pub view_url: Option<String>,
}

/// The server's summary settings, from its configuration.
#[derive(Debug, Clone)]
pub struct SummaryOptions {
    pub escalation: EscalationSettings,
    /// `HUME_ACTION_SUMMARY_WINDOW_SECS`; `None` chooses per file.
    pub window_secs: Option<f64>,
    /// `HUME_ACTION_SUMMARY_MAX_WAIT_SECS`.
    pub max_wait: Duration,
    /// `HUME_ACTION_PUBLIC_URL`.
    pub public_url: Option<Url>,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        Self::from_config(&Config::defaults())
    }
}

impl SummaryOptions {
    pub fn from_config(config: &Config) -> Self {
        Self {
            escalation: EscalationSettings {
                emotions: config
                    .escalation_emotions
                    .iter()
                    .map(|e| e.trim().to_owned())
                    .filter(|e| !e.is_empty())
                    .collect(),
                min_rise: config.escalation_min_rise,
                min_end: config.escalation_min_end,
                max_start: config.escalation_max_start,
            },
            window_secs: (config.summary_window_secs > 0.0).then_some(config.summary_window_secs),
            max_wait: Duration::from_secs(config.summary_max_wait_secs),
            public_url: config.public_url.clone(),
        }
    }

    /// The settings of one summary: `window_secs` as asked, else the server's.
    pub fn settings(&self, window_secs: Option<f64>) -> SummarySettings {
        SummarySettings { escalation: self.escalation.clone(), window_secs: window_secs.or(self.window_secs) }
    }

    /// `path` on this server: absolute when its public address is known.
    pub fn link(&self, path: &str) -> String {
        match &self.public_url {
            Some(base) => format!("{}{path}", base.as_str().trim_end_matches('/')),
            None => path.to_owned(),
        }
    }

    /// The job's page, when the public address is known.
    pub fn view_url(&self, job_id: &str) -> Option<String> {
        self.public_url.as_ref().map(|_| self.link(&format!("/?job={job_id}")))
    }
}

/// The summary of a job the engine stores, reading its sources one at a time.
pub async fn of_stored_job(
    store: &dyn Store,
    job: &JobRecord,
    settings: &SummarySettings,
    view_url: Option<String>,
) -> Result<Summary, StoreError> {
    let sources_total = job.spec.source_count() as u64;
    let mut builder = Builder::new(settings);
    for position in 0..sources_total as i64 {
        let Some(body) = store.result(&job.id, position).await? else { continue };
        match serde_json::from_str::<SourceResult>(&body) {
            Ok(result) => builder.add(&result),
            Err(e) => builder
                .add_unreadable(format!("source {position}"), format!("its stored result could not be read ({e})")),
        }
    }
    Ok(builder.finish(JobFacts {
        id: job.id.as_str(),
        state: &job.state,
        sources_total,
        recorded_stage: job.stage.as_deref(),
        view_url,
    }))
}

/// A summary in the making: add sources in request order, then [`Builder::finish`].
pub struct Builder<'s> {
    settings: &'s SummarySettings,
    files: Vec<FileSummary>,
    errors: Vec<SourceError>,
    sources_done: u64,
    /// Each file-model's means, weighted by its segment count.
    job_means: Means,
}

impl<'s> Builder<'s> {
    pub fn new(settings: &'s SummarySettings) -> Self {
        Self { settings, files: Vec::new(), errors: Vec::new(), sources_done: 0, job_means: Means::default() }
    }

    /// Adds one stored source's result.
    pub fn add(&mut self, result: &SourceResult) {
        self.sources_done += 1;
        self.errors.extend(result.results.errors.iter().cloned());
        for prediction in &result.results.predictions {
            let file = self.file(&result.source, prediction);
            self.files.push(file);
        }
    }

    /// Adds a source that could not be read back (a corrupt row, an upstream shape we do not know).
    pub fn add_unreadable(&mut self, file: String, message: String) {
        self.sources_done += 1;
        self.errors.push(SourceError { file, message });
    }

    fn file(&mut self, source: &Source, prediction: &InferencePrediction) -> FileSummary {
        let mut models = BTreeMap::new();
        let mut best: Option<Escalation> = None;
        for model_segments in of_file(prediction) {
            let summary = self.model(&prediction.file, prediction, &model_segments);
            if let Some(e) = &summary.escalation {
                if best.as_ref().is_none_or(|b| e.stronger_than(b)) {
                    best = Some(e.clone());
                }
            }
            if summary.segments > 0 {
                let m = means(&model_segments.segments);
                self.job_means.add_means(&m, summary.segments as f64);
            }
            models.insert(model_segments.model.name(), summary);
        }
        let length = prediction
            .duration_secs
            .unwrap_or_else(|| prediction.voice.iter().flatten().map(|v| v.time.end).fold(0.0, f64::max));
        let window =
            self.settings.window_secs.map_or_else(|| window_for(length), |w| w.max(length / MAX_WINDOWS as f64));
        let voice = prediction.voice.as_deref().map(|rows| voice::summarise(rows, window));
        if let (Some(best), Some(voice)) = (best.as_mut(), &voice) {
            best.voice = voice.start_vs_end.clone();
        }
        let transcript = prediction
            .transcript
            .as_ref()
            .map(|t| t.words.iter().map(|w| w.text.trim()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "));
        FileSummary {
            file: prediction.file.clone(),
            source: source.clone(),
            file_type: prediction.file_type.clone(),
            duration_secs: prediction.duration_secs.map(round_secs),
            transcript,
            escalation: best,
            voice,
            models,
        }
    }

    fn model(&self, file: &str, prediction: &InferencePrediction, ms: &ModelSegments<'_>) -> ModelSummary {
        let segments = &ms.segments;
        let all = means(segments).scores();
        let top_emotions = top(&all, TOP);
        let length = prediction.duration_secs.unwrap_or_else(|| segments.iter().map(|s| s.end).fold(0.0, f64::max));
        // A window asked for is kept, unless it would cut the file into more than MAX_WINDOWS.
        let window =
            self.settings.window_secs.map_or_else(|| window_for(length), |w| w.max(length / MAX_WINDOWS as f64));
        let escalation = &self.settings.escalation;
        let words = prediction.transcript.as_ref().map(|t| &t.words);
        let timeline = windows(segments, ms.unit, window)
            .into_iter()
            .map(|(begin, end, members)| {
                let mut m = Means::default();
                let (mut score, mut weight) = (0.0, 0.0);
                for (s, w) in &members {
                    m.add(s.scores, *w);
                    score += escalation.score(s) * w;
                    weight += w;
                }
                let text = match (words, ms.unit) {
                    (Some(words), Unit::Seconds) => join_cut(
                        words
                            .iter()
                            .filter(|w| (begin..end).contains(&((w.begin + w.end) / 2.0)))
                            .map(|w| w.text.trim()),
                    ),
                    _ => join_cut(members.iter().filter_map(|(s, _)| s.text)),
                };
                Window {
                    begin: round_secs(begin),
                    end: round_secs(end),
                    text,
                    top: top(&m.scores(), 1).into_iter().next(),
                    escalation_score: round(score / weight.max(f64::MIN_POSITIVE)),
                }
            })
            .collect();
        let groups = named_groups(segments);
        let in_group = |id: &str| -> Vec<Segment<'_>> { segments.iter().filter(|s| s.group == id).cloned().collect() };
        let speaker = |id: &&str| {
            let own = in_group(id);
            SpeakerSummary {
                id: (*id).to_owned(),
                top_emotions: top(&means(&own).scores(), TOP),
                escalation: judge(escalation, ms.model, ms.unit, file, &own),
            }
        };
        let (speakers, faces) = match (ms.model, groups.is_empty()) {
            (_, true) => (None, None),
            (Model::Face, false) => (None, Some(groups.iter().map(|id| face_track(id, &in_group(id))).collect())),
            (_, false) => (Some(groups.iter().map(speaker).collect()), None),
        };
        let boxes =
            (ms.model == Model::Face && prediction.file_type == "image").then(|| face_boxes(&prediction.models));
        ModelSummary {
            segments: segments.len(),
            unit: ms.unit,
            peaks: peaks(segments, &top_emotions, ms.unit),
            scores: by_name(&all),
            top_emotions,
            timeline,
            window_secs: (ms.unit == Unit::Seconds).then_some(window),
            escalation: judge(escalation, ms.model, ms.unit, file, segments),
            speakers,
            faces,
            boxes,
            bursts: (ms.model == Model::Burst).then(|| burst_marks(&prediction.models)),
            note: note(ms.model, segments.is_empty(), &prediction.models),
        }
    }

    /// The summary of the job as far as its sources were added.
    pub fn finish(self, job: JobFacts<'_>) -> Summary {
        let job_scores = self.job_means.scores();
        let escalation = self
            .files
            .iter()
            .filter_map(|f| f.escalation.as_ref())
            .fold(None::<&Escalation>, |best, e| match best {
                Some(b) if !e.stronger_than(b) => Some(b),
                _ => Some(e),
            })
            .cloned();
        let done = matches!(job.state, JobState::Completed { .. } | JobState::Failed { .. });
        let progress = Progress {
            sources_total: job.sources_total,
            sources_done: self.sources_done,
            stage: Stage::of(job.state, job.recorded_stage, self.sources_done, job.sources_total),
        };
        let message = match job.state {
            JobState::Failed { message, .. } => Some(message.clone()),
            _ => None,
        };
        let top_emotions = top(&job_scores, TOP);
        let headline = headline::headline(job.state, &progress, escalation.as_ref(), &top_emotions, &self.errors);
        Summary {
            job_id: job.id.to_owned(),
            status: job.state.status(),
            done,
            message,
            progress,
            num_errors: self.errors.len(),
            errors: self.errors,
            headline,
            top_emotions,
            scores: by_name(&job_scores),
            escalation,
            files: self.files,
            view_url: job.view_url,
            compacted: None,
        }
    }
}

/// The rows one stored source adds to the artifacts' `timeline.csv`: one per file per window
/// (the summary's timeline, the same windows for every model of a file), with its words and each
/// model's top expression, score and escalation score.
pub fn timeline_rows(
    source: &serde_json::Value,
    settings: &SummarySettings,
) -> crate::predictions::artifacts::TimelineRows {
    let Ok(result) = serde_json::from_value::<SourceResult>(source.clone()) else { return Vec::new() };
    let mut builder = Builder::new(settings);
    builder.add(&result);
    let mut rows = Vec::new();
    for file in builder.files {
        let transcript =
            result.results.predictions.iter().find(|p| p.file == file.file).and_then(|p| p.transcript.as_ref());
        let mut windows: BTreeMap<(u64, u64), BTreeMap<String, String>> = BTreeMap::new();
        for (model, summary) in &file.models {
            let unit = match summary.unit {
                Unit::Seconds => "seconds",
                Unit::Characters => "characters",
            };
            for w in &summary.timeline {
                let cells = windows.entry((w.begin.to_bits(), w.end.to_bits())).or_insert_with(|| {
                    BTreeMap::from([
                        ("2:unit".to_owned(), unit.to_owned()),
                        ("3:begin".to_owned(), w.begin.to_string()),
                        ("4:end".to_owned(), w.end.to_string()),
                    ])
                });
                if let Some(text) = &w.text {
                    cells.entry("5:text".to_owned()).or_insert_with(|| text.clone());
                }
                let speaker = transcript.filter(|_| summary.unit == Unit::Seconds).and_then(|t| {
                    speaker_of_words(t.words.iter().filter(|x| (w.begin..w.end).contains(&((x.begin + x.end) / 2.0))))
                });
                if let Some((speaker, _)) = speaker {
                    cells.entry("6:speaker".to_owned()).or_insert(speaker);
                }
                if let Some(top) = &w.top {
                    cells.insert(format!("{model}_top"), top.name.clone());
                    cells.insert(format!("{model}_score"), top.score.to_string());
                }
                cells.insert(format!("{model}_escalation"), w.escalation_score.to_string());
            }
        }
        let mut ordered: Vec<BTreeMap<String, String>> = windows.into_values().collect();
        ordered.sort_by(|a, b| {
            let begin = |c: &BTreeMap<String, String>| c["3:begin"].parse::<f64>().unwrap_or(0.0);
            begin(a).total_cmp(&begin(b))
        });
        rows.extend(ordered.into_iter().map(|cells| (file.file.clone(), cells)));
    }
    rows
}

/// The most a summary sent as a callback weighs, in bytes.
pub const MAX_CALLBACK_SUMMARY_BYTES: usize = 1_000_000;

impl Summary {
    /// This summary within `max_bytes` of JSON: first without the timelines and face boxes, then
    /// without the files' per-model detail, then with fewer files; `compacted` says what went and
    /// where to read it whole.
    pub fn within(mut self, max_bytes: usize) -> Summary {
        let size = |s: &Summary| serde_json::to_vec(s).map_or(usize::MAX, |v| v.len());
        if size(&self) <= max_bytes {
            return self;
        }
        let whole = format!("GET /v1/jobs/{}/summary has it whole", self.job_id);
        for model in self.files.iter_mut().flat_map(|f| f.models.values_mut()) {
            model.timeline.clear();
            model.boxes = None;
            model.bursts = None;
        }
        for voice in self.files.iter_mut().filter_map(|f| f.voice.as_mut()) {
            voice.timeline.clear();
        }
        for model in self.files.iter_mut().flat_map(|f| f.models.values_mut()) {
            for face in model.faces.iter_mut().flatten() {
                face.timeline.clear();
            }
        }
        self.compacted = Some(format!("The timelines were left out to keep this under {max_bytes} bytes; {whole}."));
        if size(&self) <= max_bytes {
            return self;
        }
        for file in &mut self.files {
            file.models.clear();
            file.transcript = None;
            file.voice = None;
        }
        self.compacted = Some(format!(
            "Each file's per-model detail and transcript were left out to keep this under {max_bytes} bytes; {whole}."
        ));
        while size(&self) > max_bytes && !self.files.is_empty() {
            let keep = self.files.len() / 2;
            self.files.truncate(keep);
            self.errors.truncate(keep);
            self.compacted = Some(format!(
                "Only the first {keep} files (and errors) are listed, to keep this under {max_bytes} bytes; {whole}."
            ));
        }
        self
    }
}

/// Words joined by spaces, cut at [`WINDOW_TEXT_CHARS`]; `None` when there are none.
fn join_cut<'a>(words: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut text = String::new();
    for word in words.filter(|w| !w.is_empty()) {
        if text.chars().count() + word.chars().count() > WINDOW_TEXT_CHARS {
            text.push('…');
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
    }
    (!text.is_empty()).then_some(text)
}

fn face_track(id: &str, segments: &[Segment<'_>]) -> FaceTrack {
    FaceTrack {
        id: id.to_owned(),
        top_emotions: top(&means(segments).scores(), TOP),
        frames: segments.len(),
        timeline: segments
            .iter()
            .map(|s| FacePoint { time: round_secs(s.begin), top: top(s.scores, 1).into_iter().next() })
            .collect(),
    }
}

fn face_boxes(models: &ModelsPredictions) -> Vec<FaceBox> {
    let groups = models.face.iter().flat_map(|f| &f.grouped_predictions);
    groups
        .flat_map(|g| g.predictions.iter().map(move |p| (g, p)))
        .take(MAX_BOXES)
        .map(|(g, p)| FaceBox { id: g.id.clone(), bbox: p.bbox, top: top(&p.emotions, 1).into_iter().next() })
        .collect()
}

fn burst_marks(models: &ModelsPredictions) -> Vec<BurstMark> {
    let groups = models.burst.iter().flat_map(|b| &b.grouped_predictions);
    let mut marks: Vec<BurstMark> = groups
        .flat_map(|g| &g.predictions)
        .take(MAX_BURSTS)
        .map(|p| BurstMark {
            begin: round_secs(p.time.begin),
            end: round_secs(p.time.end),
            top: top(&p.descriptions, 1).into_iter().next(),
        })
        .collect();
    marks.sort_by(|a, b| a.begin.total_cmp(&b.begin));
    marks
}

/// What the runner said it left out; or, when the model found nothing, that it found nothing.
fn note(model: Model, empty: bool, models: &ModelsPredictions) -> Option<String> {
    let said = match model {
        Model::Face => models.face.as_ref().and_then(|o| o.note.clone()),
        Model::Burst => models.burst.as_ref().and_then(|o| o.note.clone()),
        Model::Prosody => models.prosody.as_ref().and_then(|o| o.note.clone()),
        Model::Language => models.language.as_ref().and_then(|o| o.note.clone()),
        _ => None,
    };
    let nothing = empty.then_some(match model {
        Model::Face => "No face was measured in this file.",
        Model::Burst => "No vocal burst was found in this file.",
        Model::Prosody => "No speech was found to measure in this file.",
        _ => "Nothing in this file was scored.",
    });
    match (nothing, said) {
        (Some(nothing), Some(said)) => Some(format!("{nothing} {said}")),
        (None, said) => said,
        (Some(nothing), None) => Some(nothing.to_owned()),
    }
}
