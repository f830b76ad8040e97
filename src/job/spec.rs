//! What a job asks, typed once: a [`JobSpec`] is built at the edge (from the action's input and
//! from v0's JSON and multipart bodies), every setting checked there, and stored as v0's request
//! echo, from which the worker reads it back once. Everything below `crate::http` reads its typed
//! fields; the v0 JSON forms (the echo `GET /v0/batch/jobs/{id}` shows, the body a v0 upstream is
//! sent, the idempotency fingerprint) are rendered from it.
//!
//! The caller's request is kept as given ([`InferenceRequest`]: its settings objects as written,
//! already checked) so that the echo stays what the v0 SDK reads, numbers as the caller wrote
//! them; what runs reads [`JobSpec::models`] and [`JobSpec::transcription`], where v0's defaults
//! fill only the fields left out.

use serde::Deserialize;
use serde_json::{json, Value};

use super::models::{check, ModelSettings};
use super::request::{InferenceRequest, TranscriptionSettings};
use super::state::request_echo;
use crate::error::{ErrorCode, FieldError};

/// A job's request, checked and typed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// The caller's request as given (settings objects as written), for the v0 forms.
    request: InferenceRequest,
    /// The selected models and their settings, v0's defaults in the fields left out;
    /// `identify_speakers` on the transcription already applied to the models that read it.
    pub models: ModelSettings,
    /// Whether speech is transcribed, and how.
    pub transcription: Transcription,
    /// The uploaded files, as the echo lists them (their bytes are stored beside the job).
    pub files: Vec<FileEcho>,
}

/// v0's `transcription`: `null` turns it off; absent or an object turns it on.
#[derive(Debug, Clone, PartialEq)]
pub enum Transcription {
    Off,
    On(TranscriptionSettings),
}

impl Transcription {
    /// v0's `transcription` as given: absent (on, detected language), `null` (off) or settings.
    fn of(given: &Option<Option<Value>>) -> Result<Self, FieldError> {
        Ok(match given {
            Some(None) => Self::Off,
            Some(Some(settings)) => Self::On(check::<TranscriptionSettings>(settings, "transcription")?),
            None => Self::On(TranscriptionSettings::default()),
        })
    }

    /// The language forced for transcription, when on and given.
    pub fn language(&self) -> Option<&'static str> {
        match self {
            Self::On(settings) => settings.language.map(|tag| tag.0),
            Self::Off => None,
        }
    }
}

/// An uploaded file as the echo lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct FileEcho {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// The hex MD5 of its bytes.
    pub md5sum: String,
}

impl FileEcho {
    /// How the echo lists this upload.
    pub fn of(file: &super::UploadedFile) -> Self {
        use md5::{Digest, Md5};
        Self {
            filename: file.filename.clone(),
            content_type: file.content_type.clone(),
            md5sum: hex::encode(Md5::digest(&file.bytes)),
        }
    }
}

impl JobSpec {
    /// Parses and checks a v0 request body (`has_files` when files come with it, multipart):
    /// every model and transcription setting with v0's types and ranges, the URLs, the
    /// callback, and that there is something to measure.
    pub fn from_v0(body: Value, has_files: bool) -> Result<Self, FieldError> {
        let mut request: InferenceRequest = serde_json::from_value(body).map_err(|e| {
            FieldError::new(
                ErrorCode::InvalidRequest,
                "body",
                format!("The job request does not match Hume's v0 InferenceBaseRequest: {e}."),
            )
        })?;
        if let Some(models) = &mut request.models {
            models.retain(|_, cfg| !cfg.is_null());
        }
        Self::new(request, has_files)
    }

    /// Checks a request built at the edge and types it.
    pub fn new(request: InferenceRequest, has_files: bool) -> Result<Self, FieldError> {
        let mut models = match &request.models {
            Some(models) => ModelSettings::parse_v0(models)?,
            None => ModelSettings::all(),
        };
        let transcription = Transcription::of(&request.transcription)?;
        for (i, url) in request.urls.iter().enumerate() {
            if !is_http_url(url) {
                return Err(FieldError::new(
                    ErrorCode::InvalidUrl,
                    format!("urls[{i}]"),
                    format!("urls[{i}] must be an http or https URL; got {url:?}."),
                ));
            }
        }
        if request.callback_url.as_deref().is_some_and(|url| !is_http_url(url)) {
            return Err(FieldError::new(
                ErrorCode::InvalidUrl,
                "callback_url",
                "callback_url must be an http or https URL.",
            ));
        }
        if request.urls.is_empty() && request.text.is_empty() && !has_files {
            return Err(FieldError::new(
                ErrorCode::MissingInput,
                "urls",
                "Give at least one of urls, text or an uploaded file.",
            ));
        }
        apply_transcription_speakers(&mut models, &transcription);
        Ok(Self { request, models, transcription, files: Vec::new() })
    }

    /// A job stored as its echo ([`JobSpec::to_stored`]). A job stored before settings were
    /// checked reads too: a setting that does not read takes its default, alone (logged).
    pub fn from_stored(stored: &str) -> Result<Self, serde_json::Error> {
        let echo: Value = serde_json::from_str(stored)?;
        let mut request = InferenceRequest::deserialize(&echo)?;
        let files = Vec::<FileEcho>::deserialize(echo.get("files").unwrap_or(&json!([])))?;
        let mut models = match &mut request.models {
            Some(models) => {
                models.retain(|_, cfg| cfg.is_object());
                ModelSettings::from_v0(&Value::Object(models.clone()))
            }
            None => ModelSettings::all(),
        };
        let transcription = Transcription::of(&request.transcription).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "a stored transcription setting does not read; the defaults are used");
            Transcription::On(TranscriptionSettings::default())
        });
        apply_transcription_speakers(&mut models, &transcription);
        Ok(Self { request, models, transcription, files })
    }

    /// The form the job is stored in: its echo.
    pub fn to_stored(&self) -> String {
        self.echo().to_string()
    }

    /// The request as the job echoes it (`request` in v0's job object): every chosen model (all
    /// six when none was chosen) with v0's defaults under the caller's settings, plus `files`,
    /// `text`, `urls`, `callback_url`, `notify` and, when given, `transcription`.
    pub fn echo(&self) -> Value {
        request_echo(&self.request, &self.files)
    }

    /// The caller's request as given, in v0 JSON: what a v0 upstream is sent.
    pub fn to_v0_request(&self) -> Value {
        serde_json::to_value(&self.request).expect("a request serialises")
    }

    /// The media URLs, in the order given.
    pub fn urls(&self) -> &[String] {
        &self.request.urls
    }

    /// The texts, in the order given.
    pub fn text(&self) -> &[String] {
        &self.request.text
    }

    /// Where the job's end is posted.
    pub fn callback_url(&self) -> Option<&str> {
        self.request.callback_url.as_deref()
    }

    /// How many sources the job has: URLs, texts and uploaded files.
    pub fn source_count(&self) -> usize {
        self.request.urls.len() + self.request.text.len() + self.files.len()
    }
}

/// `identify_speakers` on the transcription applies to every model that reads it (v0).
fn apply_transcription_speakers(models: &mut ModelSettings, transcription: &Transcription) {
    if matches!(transcription, Transcription::On(TranscriptionSettings { identify_speakers: true, .. })) {
        models.identify_speakers.language = true;
        models.identify_speakers.prosody = true;
    }
}

fn is_http_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::models::{Granularity, Model};
    use serde_json::json;

    #[test]
    fn transcription_null_is_kept_apart_from_absent() {
        let off = JobSpec::from_v0(json!({"text": ["hi"], "transcription": null}), false).unwrap();
        assert_eq!(off.to_v0_request(), json!({"text": ["hi"], "transcription": null}));
        let auto = JobSpec::from_v0(json!({"text": ["hi"]}), false).unwrap();
        assert_eq!(auto.to_v0_request(), json!({"text": ["hi"]}));
    }

    fn refused(value: Value) -> FieldError {
        JobSpec::from_v0(value, false).unwrap_err()
    }

    #[test]
    fn model_settings_are_checked_by_parse() {
        let e = refused(json!({"text": ["I am furious."], "models": {"language": {"granularity": "paragraph"}}}));
        assert_eq!((e.code.as_str(), e.field.as_str()), ("invalid_setting", "models.language.granularity"));
        // The caller's settings are kept as given: the echo is rendered from them.
        let given = json!({"text": ["hi"], "models": {"face": {"fps_pred": 3.0, "facs": {}}, "burst": {}}});
        assert_eq!(JobSpec::from_v0(given.clone(), false).unwrap().to_v0_request(), given);
    }

    #[test]
    fn transcription_settings_are_checked_with_v0s_languages_and_range() {
        let transcription = |t: Value| json!({"text": ["hi"], "transcription": t});
        let e = refused(transcription(json!({"language": "xx"})));
        assert_eq!((e.code.as_str(), e.field.as_str()), ("invalid_setting", "transcription.language"));
        assert!(e.message.contains("\"xx\"") && e.message.contains("\"en-GB\"") && e.message.contains("\"es-419\""));
        let e = refused(transcription(json!({"confidence_threshold": 2})));
        assert_eq!(e.field, "transcription.confidence_threshold");
        assert!(e.message.contains("from 0 to 1"), "{}", e.message);
        assert_eq!(
            refused(transcription(json!({"identify_speakers": "yes"}))).field,
            "transcription.identify_speakers"
        );
        let e = refused(transcription(json!({"lang": "en"})));
        assert_eq!(e.field, "transcription.lang");
        assert!(e.message.contains("language, identify_speakers, confidence_threshold"), "{}", e.message);
        let e = refused(transcription(json!("en")));
        assert_eq!(e.field, "transcription");
        assert!(e.message.contains("null to turn transcription off"), "{}", e.message);
        for ok in
            [json!({"language": "en-GB", "identify_speakers": true, "confidence_threshold": 0}), json!({}), json!(null)]
        {
            JobSpec::from_v0(transcription(ok.clone()), false).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        JobSpec::from_v0(transcription(json!({"language": null})), false).unwrap();
    }

    #[test]
    fn the_typed_settings_are_the_callers_with_v0s_defaults_in_what_was_left_out() {
        let spec = JobSpec::from_v0(
            json!({"text": ["hi"], "models": {"language": {"sentiment": {}}, "face": {"fps_pred": 1}},
                   "transcription": {"language": "en-GB", "identify_speakers": true}}),
            false,
        )
        .unwrap();
        let language = spec.models.language.as_ref().unwrap();
        assert_eq!((language.granularity, language.sentiment, language.toxicity), (Granularity::Word, true, false));
        assert_eq!(spec.models.face.as_ref().map(|f| (f.fps_pred, f.min_face_size)), Some((1.0, 60.0)));
        assert!(!spec.models.prosody && !spec.models.burst);
        assert_eq!(spec.transcription.language(), Some("en-GB"));
        // On the transcription, identify_speakers applies to every model that reads it.
        assert!(spec.models.identify_speakers.language && spec.models.identify_speakers.prosody);
        let all = JobSpec::from_v0(json!({"text": ["hi"], "transcription": null}), false).unwrap();
        assert_eq!(all.models.selected(), Model::ALL);
        assert_eq!(all.transcription, Transcription::Off);
    }

    #[test]
    fn a_spec_reads_back_from_its_stored_echo_as_it_was() {
        let mut spec = JobSpec::from_v0(
            json!({"urls": ["https://a.test/a.mp3"], "models": {"prosody": {"identify_speakers": true}, "language": {"granularity": "sentence"}},
                   "transcription": {"language": "fr"}, "callback_url": "https://hooks.test/x", "notify": true}),
            true,
        )
        .unwrap();
        spec.files = vec![FileEcho { filename: Some("a.wav".into()), content_type: None, md5sum: "00".into() }];
        let stored = JobSpec::from_stored(&spec.to_stored()).unwrap();
        assert_eq!(
            (&stored.models, &stored.transcription, &stored.files),
            (&spec.models, &spec.transcription, &spec.files)
        );
        assert_eq!(
            (stored.urls(), stored.callback_url(), stored.source_count()),
            (spec.urls(), spec.callback_url(), 2)
        );
        assert_eq!(stored.echo().to_string(), spec.echo().to_string());
    }

    #[test]
    fn a_job_stored_before_settings_were_checked_still_reads() {
        let old = json!({"urls": ["https://a.test/a.mp3"], "files": [], "notify": false, "callback_url": null,
                         "models": {"language": {"granularity": "paragraph", "sentiment": {}}, "burst": null}});
        let spec = JobSpec::from_stored(&old.to_string()).unwrap();
        let language = spec.models.language.unwrap();
        assert_eq!((language.granularity, language.sentiment), (Granularity::Word, true));
        assert!(!spec.models.burst);
        assert!(JobSpec::from_stored("{\"urls\": 5}").is_err());
    }
}
