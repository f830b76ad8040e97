//! The v0 `InferenceBaseRequest`, as `POST /v0/batch/jobs` takes it, checked at the edge (its
//! size against the job budgets is `crate::intake`'s part).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FieldError;

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
                "invalid_request",
                "body",
                format!("The job request does not match Hume's v0 InferenceBaseRequest: {e}."),
            )
        })?;
        if let Some(models) = &mut request.models {
            models.retain(|_, cfg| !cfg.is_null());
            if let Some(unknown) = models.keys().find(|k| !MODEL_NAMES.contains(&k.as_str())) {
                return Err(FieldError::new(
                    "invalid_model",
                    format!("models.{unknown}"),
                    format!("Unknown model {unknown:?}; use one of {}.", MODEL_NAMES.join(", ")),
                ));
            }
            if let Some((name, _)) = models.iter().find(|(_, cfg)| !cfg.is_object()) {
                return Err(FieldError::new(
                    "invalid_model",
                    format!("models.{name}"),
                    format!("models.{name} must be an object of settings, e.g. {{}}."),
                ));
            }
        }
        for (i, url) in request.urls.iter().enumerate() {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(FieldError::new(
                    "invalid_url",
                    format!("urls[{i}]"),
                    format!("urls[{i}] must be an http or https URL; got {url:?}."),
                ));
            }
        }
        if let Some(callback) = &request.callback_url {
            if url::Url::parse(callback).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
                return Err(FieldError::new(
                    "invalid_url",
                    "callback_url",
                    "callback_url must be an http or https URL.",
                ));
            }
        }
        if request.urls.is_empty() && request.text.is_empty() && !has_files {
            return Err(FieldError::new(
                "missing_input",
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
}
