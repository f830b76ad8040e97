//! The v0 `InferenceBaseRequest`, as `POST /v0/batch/jobs` takes it, checked at the edge (its
//! size against the job budgets is `crate::intake`'s part): every model and transcription
//! setting with v0's types and ranges, so that what v0 refused is refused here too, by name.

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::models::{check, probability, ModelSettings, OneOf, Settings};
use crate::error::{ErrorCode, FieldError};

/// Model names v0 knows.
pub const MODEL_NAMES: [&str; 6] = ["face", "burst", "prosody", "language", "ner", "facemesh"];

/// A v0 job request (v0's `InferenceBaseRequest`). Unknown fields are ignored, as v0 did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InferenceRequest {
    /// Model name (`face`, `burst`, `prosody`, `language`, `ner`, `facemesh`) to its settings
    /// object (`{}` for the defaults); absent means every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = models_schema)]
    pub models: Option<serde_json::Map<String, Value>>,
    /// Absent: automatic; `null`: transcription off (v0 tells the two apart); an object such as
    /// `{"language": "en"}` forces the language.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub transcription: Option<Option<Value>>,
    /// http(s) URLs of the media to measure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(inline, value_type = Vec<HttpUrl>)]
    pub urls: Vec<String>,
    /// Texts to measure with the language model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<String>,
    /// An http(s) URL to POST `{job_id, status, predictions}` to when the job ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^https?://\S+$")]
    pub callback_url: Option<String>,
    /// v0's e-mail notice flag: accepted and kept with the request; no e-mail is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<bool>,
}

/// v0's `transcription` (Hume's `Transcription`), checked at the edge; the request keeps the
/// caller's object, which the engine reads for `language`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "an object of transcription settings such as {\"language\": \"en\"}, or null to turn transcription off"
)]
pub struct TranscriptionSettings {
    /// The language spoken, as one of v0's BCP-47 tags; absent or `null`: detected.
    pub language: Option<LanguageTag>,
    pub identify_speakers: bool,
    /// v0's transcript confidence threshold, 0 to 1.
    #[serde(deserialize_with = "probability")]
    pub confidence_threshold: f64,
}

impl Default for TranscriptionSettings {
    fn default() -> Self {
        Self { language: None, identify_speakers: false, confidence_threshold: 0.5 }
    }
}

impl Settings for TranscriptionSettings {
    const FIELDS: &'static [&'static str] = &["language", "identify_speakers", "confidence_threshold"];
}

/// A language v0's transcription takes (Hume's `Bcp47Tag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LanguageTag(pub &'static str);

impl LanguageTag {
    /// Every tag v0 lists.
    pub const ALL: &'static [&'static str] = &[
        "zh", "da", "nl", "en", "en-AU", "en-IN", "en-NZ", "en-GB", "fr", "fr-CA", "de", "hi", "hi-Latn", "id", "it",
        "ja", "ko", "no", "pl", "pt", "pt-BR", "pt-PT", "ru", "es", "es-419", "sv", "ta", "tr", "uk",
    ];
}

impl<'de> Deserialize<'de> for LanguageTag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(OneOf(Self::ALL)).map(|i| Self(Self::ALL[i]))
    }
}

/// An http(s) URL, as the schema of a v0 request states it.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, pattern = r"^https?://\S+$")]
pub struct HttpUrl(#[allow(dead_code)] String);

/// `models`: an object whose keys are model names and whose values are settings objects (or
/// `null`, which leaves that model out).
fn models_schema() -> impl Into<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>> {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    let settings = || {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Object))
            .item(ObjectBuilder::new().schema_type(Type::Null))
    };
    let mut models = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
    for name in MODEL_NAMES {
        models = models.property(name, settings());
    }
    OneOfBuilder::new().item(models).item(ObjectBuilder::new().schema_type(Type::Null))
}

impl InferenceRequest {
    /// Parses and checks a v0 request body; `has_files` when files come with it (multipart).
    pub fn parse(value: Value, has_files: bool) -> Result<Self, FieldError> {
        let mut request: Self = serde_json::from_value(value).map_err(|e| {
            FieldError::new(
                ErrorCode::InvalidRequest,
                "body",
                format!("The job request does not match Hume's v0 InferenceBaseRequest: {e}."),
            )
        })?;
        if let Some(models) = &mut request.models {
            models.retain(|_, cfg| !cfg.is_null());
            if let Some(unknown) = models.keys().find(|k| !MODEL_NAMES.contains(&k.as_str())) {
                return Err(FieldError::new(
                    ErrorCode::InvalidModel,
                    format!("models.{unknown}"),
                    format!("Unknown model {unknown:?}; use one of {}.", MODEL_NAMES.join(", ")),
                ));
            }
            if let Some((name, _)) = models.iter().find(|(_, cfg)| !cfg.is_object()) {
                return Err(FieldError::new(
                    ErrorCode::InvalidModel,
                    format!("models.{name}"),
                    format!("models.{name} must be an object of settings, e.g. {{}}."),
                ));
            }
            ModelSettings::check_v0(models)?;
        }
        if let Some(Some(transcription)) = &request.transcription {
            check::<TranscriptionSettings>(transcription, "transcription")?;
        }
        for (i, url) in request.urls.iter().enumerate() {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(FieldError::new(
                    ErrorCode::InvalidUrl,
                    format!("urls[{i}]"),
                    format!("urls[{i}] must be an http or https URL; got {url:?}."),
                ));
            }
        }
        if let Some(callback) = &request.callback_url {
            if url::Url::parse(callback).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
                return Err(FieldError::new(
                    ErrorCode::InvalidUrl,
                    "callback_url",
                    "callback_url must be an http or https URL.",
                ));
            }
        }
        if request.urls.is_empty() && request.text.is_empty() && !has_files {
            return Err(FieldError::new(
                ErrorCode::MissingInput,
                "urls",
                "Give at least one of urls, text or an uploaded file.",
            ));
        }
        Ok(request)
    }

    /// The request as v0 JSON (only the fields given).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("request serialises")
    }
}

/// Deserialises a field that is present, even as `null`, to `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Value>>, D::Error> {
    Option::<Value>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transcription_null_is_kept_apart_from_absent() {
        let off = InferenceRequest::parse(json!({"text": ["hi"], "transcription": null}), false).unwrap();
        assert_eq!(off.to_value(), json!({"text": ["hi"], "transcription": null}));
        let auto = InferenceRequest::parse(json!({"text": ["hi"]}), false).unwrap();
        assert_eq!(auto.to_value(), json!({"text": ["hi"]}));
    }

    fn refused(value: Value) -> FieldError {
        InferenceRequest::parse(value, false).unwrap_err()
    }

    #[test]
    fn model_settings_are_checked_by_parse() {
        let e = refused(json!({"text": ["I am furious."], "models": {"language": {"granularity": "paragraph"}}}));
        assert_eq!((e.code.as_str(), e.field.as_str()), ("invalid_setting", "models.language.granularity"));
        // The caller's settings are kept as given: the echo is rendered from them.
        let given = json!({"text": ["hi"], "models": {"face": {"fps_pred": 3.0, "facs": {}}, "burst": {}}});
        assert_eq!(InferenceRequest::parse(given.clone(), false).unwrap().to_value(), given);
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
            InferenceRequest::parse(transcription(ok.clone()), false).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        InferenceRequest::parse(transcription(json!({"language": null})), false).unwrap();
    }
}
