//! The v0 `InferenceBaseRequest`, as `POST /v0/batch/jobs` takes it: its fields as the caller
//! wrote them, and v0's transcription settings. `crate::job::spec` checks and types it at the
//! edge (its size against the job budgets is `crate::intake`'s part).

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::models::{probability, OneOf, Settings};

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

/// Deserialises a field that is present, even as `null`, to `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Value>>, D::Error> {
    Option::<Value>::deserialize(d).map(Some)
}
