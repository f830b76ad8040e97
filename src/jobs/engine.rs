//! Running one job of the local engine: fetch each source, tell what it is, run each selected
//! model that applies, and assemble v0's predictions.
//!
//! One bad source never fails the job: its problem becomes an entry in that source's `errors`.
//! A job fails only when nothing at all could be measured.

use std::sync::Arc;

use futures::StreamExt;
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};
use url::Url;

use super::now_ms;
use super::store::{JobRecord, Store, StoreError};
use super::v0::JobState;
use crate::backend::UploadedFile;
use crate::fetch::Fetcher;
use crate::media::{sniff, MediaKind};
use crate::models::language::{LanguageModel, EXPRESSIONS, SENTIMENT, TOXICITY};
use crate::models::segment::segment;

/// Sources of one job fetched at once.
const PARALLEL_SOURCES: usize = 4;
/// Segments scored per source at the most; the rest are reported as skipped.
pub const MAX_SEGMENTS: usize = 5_000;

/// What runs jobs.
pub struct Engine {
    pub fetcher: Fetcher,
    pub language: Arc<LanguageModel>,
    pub store: Arc<dyn Store>,
}

/// One input of a job.
enum Source {
    Url(String),
    Text(String),
    File(UploadedFile),
}

/// A source's content, ready to measure.
struct Loaded {
    file: String,
    kind: MediaKind,
    bytes: bytes::Bytes,
}

impl Engine {
    /// Runs `job` and returns its end state and predictions.
    pub async fn run(&self, job: &JobRecord) -> Result<(JobState, Value), StoreError> {
        let request = &job.request;
        let strings = |key: &str| -> Vec<String> {
            request[key]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let mut sources: Vec<Source> = strings("urls").into_iter().map(Source::Url).collect();
        sources.extend(strings("text").into_iter().map(Source::Text));
        sources.extend(self.store.files(&job.id).await?.into_iter().map(Source::File));
        let models = request["models"].as_object().cloned().unwrap_or_default();
        let results: Vec<Value> =
            futures::stream::iter(sources).map(|s| self.measure(s, &models)).buffered(PARALLEL_SOURCES).collect().await;

        let count =
            |key: &str| results.iter().map(|r| r["results"][key].as_array().map_or(0, Vec::len) as i64).sum::<i64>();
        let (num_predictions, num_errors) = (count("predictions"), count("errors"));
        let ended_ms = now_ms();
        let (created_ms, started_ms) = job.state.created_and_started(ended_ms);
        let state = if num_predictions > 0 {
            JobState::Completed { created_ms, started_ms, ended_ms, num_predictions, num_errors }
        } else {
            JobState::Failed { created_ms, started_ms, ended_ms, message: failure_message(&results) }
        };
        Ok((state, Value::Array(results)))
    }

    async fn measure(&self, source: Source, models: &Map<String, Value>) -> Value {
        let (source_json, loaded) = match source {
            Source::Url(url) => (json!({"type": "url", "url": url}), self.download(&url).await),
            Source::Text(text) => (
                json!({"type": "text"}),
                Ok(Loaded { file: "text".into(), kind: MediaKind::Text, bytes: text.into_bytes().into() }),
            ),
            Source::File(file) => {
                let md5sum = hex::encode(Md5::digest(&file.bytes));
                let name = file.filename.clone().unwrap_or_else(|| "upload".into());
                let kind = sniff(&file.bytes, file.content_type.as_deref(), Some(&name));
                let source = json!({"type": "file", "filename": file.filename, "content_type": file.content_type, "md5sum": md5sum});
                (source, Ok(Loaded { file: name, kind, bytes: file.bytes }))
            }
        };
        let (predictions, errors) = match loaded {
            Ok(loaded) => self.run_models(&loaded, models).await,
            Err((file, message)) => (vec![], vec![json!({"file": file, "message": message})]),
        };
        json!({"source": source_json, "results": {"predictions": predictions, "errors": errors}})
    }

    async fn download(&self, url: &str) -> Result<Loaded, (String, String)> {
        let parsed = Url::parse(url).map_err(|e| (url.to_owned(), format!("not a valid URL: {e}")))?;
        let file = parsed
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .unwrap_or("index")
            .to_owned();
        let fetched = self.fetcher.get(&parsed).await.map_err(|e| (file.clone(), e.to_string()))?;
        let kind = sniff(&fetched.bytes, fetched.content_type.as_deref(), Some(fetched.final_url.path()));
        Ok(Loaded { file, kind, bytes: fetched.bytes })
    }

    /// Runs every selected model that applies to the file; returns (predictions, errors).
    async fn run_models(&self, loaded: &Loaded, models: &Map<String, Value>) -> (Vec<Value>, Vec<Value>) {
        let error = |message: String| json!({"file": loaded.file, "message": message});
        match loaded.kind {
            MediaKind::Archive => {
                return (vec![], vec![error("Archives (.zip, .tar.gz, ...) are not supported by the local backend yet; send the files' URLs one by one.".into())])
            }
            MediaKind::Unknown => {
                return (vec![], vec![error("Could not tell what kind of file this is (text, audio, video or image); check the URL serves the media itself, not a web page.".into())])
            }
            _ => {}
        }
        let mut outputs = Map::new();
        let mut errors = Vec::new();
        for (name, settings) in models {
            match (name.as_str(), loaded.kind) {
                ("language", MediaKind::Text) => match self.language_predictions(&loaded.bytes, settings).await {
                    Ok((output, skipped)) => {
                        outputs.insert(name.clone(), output);
                        errors.extend(skipped.map(&error));
                    }
                    Err(message) => errors.push(error(message)),
                },
                ("language" | "ner", MediaKind::Audio | MediaKind::Video) => errors.push(error(format!(
                    "The {name} model needs a speech transcript, and the local backend cannot transcribe audio yet; use text input for the language model."
                ))),
                ("ner", MediaKind::Text) => errors.push(error(
                    "The ner model is not available on the local backend yet; no open replacement is bundled.".into(),
                )),
                ("face" | "facemesh", MediaKind::Image | MediaKind::Video) | ("prosody" | "burst", MediaKind::Audio | MediaKind::Video) => {
                    errors.push(error(format!(
                        "The {name} model is not available on the local backend yet; a v0-compatible batch service runs it (start the server with HUME_ACTION_BACKEND=hume-batch and HUME_BATCH_BASE_URL), and Hume's v1 API will (HUME_ACTION_BACKEND=hume, not built yet)."
                    )))
                }
                _ => {} // the model does not apply to this kind of file, as on Hume
            }
        }
        if outputs.is_empty() && errors.is_empty() {
            let chosen: Vec<&str> = models.keys().map(String::as_str).collect();
            errors.push(error(format!(
                "None of the selected models ({}) applies to a {} file.",
                chosen.join(", "),
                loaded.kind.as_str()
            )));
        }
        let predictions = if outputs.is_empty() {
            vec![]
        } else {
            vec![json!({"file": loaded.file, "file_type": loaded.kind.as_str(), "models": outputs})]
        };
        (predictions, errors)
    }

    /// The v0 language output for a text, and a note when segments were skipped.
    async fn language_predictions(&self, bytes: &[u8], settings: &Value) -> Result<(Value, Option<String>), String> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let granularity = settings["granularity"].as_str().unwrap_or("word").to_owned();
        let mut segments = segment(&text, &granularity);
        if segments.is_empty() {
            return Err("The text is empty: there is nothing to measure.".into());
        }
        let skipped = (segments.len() > MAX_SEGMENTS).then(|| {
            format!("Only the first {MAX_SEGMENTS} of {} segments were scored; send shorter texts or a coarser granularity.", segments.len())
        });
        segments.truncate(MAX_SEGMENTS);
        let model = self.language.clone();
        let inputs: Vec<String> = segments.iter().map(|s| s.text.clone()).collect();
        let scores =
            tokio::task::spawn_blocking(move || model.score(&inputs.iter().map(String::as_str).collect::<Vec<_>>()))
                .await
                .map_err(|e| format!("The language model stopped unexpectedly: {e}"))?
                .map_err(|e| format!("The language model failed: {e}"))?;
        let named = |names: &[&str], values: &[f32]| -> Value {
            names.iter().zip(values).map(|(n, s)| json!({"name": n, "score": s})).collect()
        };
        let wants = |key: &str| settings.get(key).is_some_and(Value::is_object);
        let predictions: Vec<Value> = segments
            .iter()
            .zip(&scores)
            .map(|(segment, s)| {
                json!({
                    "text": segment.text,
                    "position": {"begin": segment.begin, "end": segment.end},
                    "time": null,
                    "confidence": null,
                    "speaker_confidence": null,
                    "emotions": named(&EXPRESSIONS, &s.emotions),
                    "sentiment": if wants("sentiment") { named(&SENTIMENT, &s.sentiment) } else { Value::Null },
                    "toxicity": if wants("toxicity") { named(&TOXICITY, &s.toxicity) } else { Value::Null },
                })
            })
            .collect();
        Ok((json!({"metadata": null, "grouped_predictions": [{"id": "unknown", "predictions": predictions}]}), skipped))
    }
}

/// Why nothing could be measured, from the sources' errors.
fn failure_message(results: &[Value]) -> String {
    let errors: Vec<String> = results
        .iter()
        .flat_map(|r| r["results"]["errors"].as_array().cloned().unwrap_or_default())
        .map(|e| format!("{}: {}", e["file"].as_str().unwrap_or("?"), e["message"].as_str().unwrap_or("?")))
        .collect();
    match errors.len() {
        0 => "The job had no sources to measure.".into(),
        n => format!(
            "Nothing could be measured ({n} error{}). {}",
            if n == 1 { "" } else { "s" },
            errors.into_iter().take(3).collect::<Vec<_>>().join(" | ")
        ),
    }
}
