//! Builder input, parsed at the edge into domain types.
//!
//! Workflow builders fill templates before they call us, so a field arrives in many forms:
//! `urls` as a JSON array, one URL, a string holding a JSON array, or a comma/newline separated
//! list; toggles as `"Yes"`, `"yes"`, `true` or `"false"`. Everything is accepted here and turned
//! into [`ActionInput`]; anything else becomes a [`FieldError`] that names the field and the fix.

use serde_json::{json, Value};
use url::Url;

use super::manifest::MANIFEST;
use crate::error::{ErrorCode, FieldError};

use crate::job::request::InferenceRequest;
use crate::job::spec::JobSpec;
use crate::job::{CallbackBody, JobRequest, MAX_URLS};

/// The language model's granularity on jobs the action starts (v0's own default, on
/// `POST /v0/batch/jobs`, stays `word`).
pub const ACTION_LANGUAGE_GRANULARITY: &str = "utterance";

/// A parsed, validated action call.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionInput {
    pub urls: UrlList,
    pub models: ModelSelection,
    pub callback_url: Option<Url>,
    /// What the callback carries: the summary unless `Predictions` is chosen.
    pub callback_body: CallbackBody,
    /// How long the call may wait for the job to end (`wait_seconds`, as given: the server's cap
    /// lowers it).
    pub wait_seconds: f64,
}

/// 1 to 100 distinct `http(s)` URLs, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlList(Vec<Url>);

/// A Yes/No field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toggle {
    Yes,
    No,
}

/// Which models to run; at least one is selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSelection {
    pub face: bool,
    pub prosody: bool,
    pub language: bool,
}

impl UrlList {
    /// The URLs.
    pub fn as_slice(&self) -> &[Url] {
        &self.0
    }
}

impl ModelSelection {
    /// The v0 `models` object: one config per selected model with v0's defaults, except the
    /// language model's granularity: `utterance` (a sentence of text, an utterance of speech),
    /// since a word scored alone carries no emotion a workflow can act on.
    pub fn to_v0_models(self) -> serde_json::Map<String, Value> {
        [("face", self.face), ("prosody", self.prosody), ("language", self.language)]
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| {
                let settings = match name {
                    "language" => json!({"granularity": ACTION_LANGUAGE_GRANULARITY}),
                    _ => json!({}),
                };
                (name.to_owned(), settings)
            })
            .collect()
    }
}

impl TryFrom<&Value> for ActionInput {
    type Error = FieldError;

    fn try_from(body: &Value) -> Result<Self, FieldError> {
        let body = body.as_object().ok_or_else(|| {
            FieldError::new(
                ErrorCode::InvalidBody,
                "body",
                "The body must be a JSON object such as {\"urls\": [\"https://...\"]}.",
            )
        })?;
        let toggle = |name: &str| -> Result<bool, FieldError> {
            let value = body.get(name).unwrap_or(&Value::Null);
            Ok(Toggle::parse(name, value)?.unwrap_or_else(|| MANIFEST.default_toggle(name)) == Toggle::Yes)
        };
        let urls = UrlList::try_from(body.get("urls").unwrap_or(&Value::Null))?;
        let models = ModelSelection {
            face: toggle("models_face")?,
            prosody: toggle("models_prosody")?,
            language: toggle("models_language")?,
        };
        if !(models.face || models.prosody || models.language) {
            return Err(FieldError::new(
                ErrorCode::NoModelSelected,
                "models_prosody",
                "All three models are set to No. Set at least one of models_face, models_prosody or models_language to Yes.",
            ));
        }
        let callback_url = match body.get("callback_url") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(parse_http_url("callback_url", s.trim())?),
            Some(_) => {
                return Err(FieldError::new(
                    ErrorCode::InvalidUrl,
                    "callback_url",
                    "callback_url must be one http(s) URL as a string.",
                ))
            }
        };
        let callback_body = match text_field(body, "callback_body")?.map(str::to_ascii_lowercase).as_deref() {
            None | Some("summary") => CallbackBody::Summary,
            Some("predictions") => CallbackBody::Predictions,
            Some(other) => {
                return Err(FieldError::new(
                    ErrorCode::InvalidCallbackBody,
                    "callback_body",
                    format!("callback_body must be Summary or Predictions; got {other:?}."),
                ))
            }
        };
        let wait_seconds = match body.get("wait_seconds") {
            Some(Value::Number(n)) => n.as_f64().filter(|s| *s >= 0.0),
            _ => match text_field(body, "wait_seconds")? {
                None => Some(0.0),
                Some(text) => text.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0),
            },
        }
        .ok_or_else(|| {
            FieldError::new(
                ErrorCode::InvalidWait,
                "wait_seconds",
                "wait_seconds must be a number of seconds (0 to answer at once, up to the server's cap, 25 by default).",
            )
        })?;
        Ok(Self { urls, models, callback_url, callback_body, wait_seconds })
    }
}

/// A field given as a string (trimmed; `None` when absent, null or blank); anything else but a
/// number is that field's error.
fn text_field<'a>(body: &'a serde_json::Map<String, Value>, field: &str) -> Result<Option<&'a str>, FieldError> {
    match body.get(field) {
        None | Some(Value::Null) | Some(Value::Number(_)) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            check_template(field, s.trim())?;
            Ok(Some(s.trim()))
        }
        Some(other) => {
            Err(FieldError::new(ErrorCode::InvalidField, field, format!("{field} must be a string; got {other}.")))
        }
    }
}

impl TryFrom<&Value> for UrlList {
    type Error = FieldError;

    fn try_from(value: &Value) -> Result<Self, FieldError> {
        let items: Vec<(String, String)> = match value {
            Value::Null => return Err(missing_urls()),
            Value::Array(items) => items.iter().enumerate().map(|(i, v)| array_item(i, v)).collect::<Result<_, _>>()?,
            Value::String(s) => string_items(s)?,
            _ => {
                return Err(FieldError::new(
                    ErrorCode::InvalidUrls,
                    "urls",
                    "urls must be a list of URLs: a JSON array of strings, or one string with URLs separated by commas or new lines.",
                ))
            }
        };
        let mut urls: Vec<Url> = Vec::new();
        for (field, raw) in items {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let url = parse_http_url(&field, raw)?;
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        match urls.len() {
            0 => Err(missing_urls()),
            n if n > MAX_URLS => Err(FieldError::new(
                ErrorCode::TooManyUrls,
                "urls",
                format!("urls holds {n} distinct URLs; one job takes at most {MAX_URLS}. Split them across runs (a Loop node) or pack them into a .zip archive."),
            )),
            _ => Ok(Self(urls)),
        }
    }
}

impl Toggle {
    /// Parses a Yes/No field; `None` when it is absent or left empty (the default applies).
    pub fn parse(field: &str, value: &Value) -> Result<Option<Self>, FieldError> {
        let text = match value {
            Value::Null => return Ok(None),
            Value::Bool(b) => return Ok(Some(if *b { Self::Yes } else { Self::No })),
            Value::Number(n) if n.as_f64() == Some(1.0) => return Ok(Some(Self::Yes)),
            Value::Number(n) if n.as_f64() == Some(0.0) => return Ok(Some(Self::No)),
            Value::String(s) => s.trim(),
            _ => return Err(invalid_toggle(field, &value.to_string())),
        };
        check_template(field, text)?;
        match text.to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "yes" | "y" | "true" | "1" | "on" => Ok(Some(Self::Yes)),
            "no" | "n" | "false" | "0" | "off" => Ok(Some(Self::No)),
            _ => Err(invalid_toggle(field, text)),
        }
    }

    /// A manifest option string (`"Yes"`/`"No"`).
    pub fn from_option(option: &str) -> Option<Self> {
        Self::parse("option", &Value::String(option.to_owned())).ok().flatten()
    }
}

fn invalid_toggle(field: &str, got: &str) -> FieldError {
    FieldError::new(
        ErrorCode::InvalidToggle,
        field,
        format!("{field} must be Yes or No (true/false also work); got {got}."),
    )
}

fn missing_urls() -> FieldError {
    FieldError::new(
        ErrorCode::MissingUrls,
        "urls",
        "urls is empty. Map at least one audio, video, image or text URL into it.",
    )
}

fn array_item(index: usize, value: &Value) -> Result<(String, String), FieldError> {
    let field = format!("urls[{index}]");
    match value {
        Value::String(s) => Ok((field, s.clone())),
        Value::Object(o) => match o.get("url") {
            Some(Value::String(s)) => Ok((field, s.clone())),
            _ => Err(FieldError::new(
                ErrorCode::InvalidUrl,
                field,
                "Each item of urls must be a URL string (or an object with a \"url\" string).",
            )),
        },
        Value::Null => Ok((field, String::new())),
        other => Err(FieldError::new(
            ErrorCode::InvalidUrl,
            field,
            format!("Each item of urls must be a URL string; got {other}."),
        )),
    }
}

/// One string: a JSON array, or URLs separated by new lines or by commas that start a new URL.
fn string_items(s: &str) -> Result<Vec<(String, String)>, FieldError> {
    let s = s.trim();
    check_template("urls", s)?;
    if s.starts_with('[') {
        let items: Vec<Value> = serde_json::from_str(s).map_err(|e| {
            FieldError::new(
                ErrorCode::InvalidUrls,
                "urls",
                format!("urls looks like a JSON array but is not valid JSON ({e}). Send [\"https://...\", ...]."),
            )
        })?;
        return items.iter().enumerate().map(|(i, v)| array_item(i, v)).collect();
    }
    let mut parts = Vec::new();
    for line in s.split(['\n', '\r']) {
        let mut current = String::new();
        for piece in line.split(',') {
            if !current.is_empty() && !starts_with_scheme(piece.trim_start()) {
                // A comma inside a URL (e.g. an image transform "w_100,h_100"): keep it.
                current.push(',');
                current.push_str(piece);
            } else {
                if !current.is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
                current.push_str(piece);
            }
        }
        parts.push(current);
    }
    Ok(parts.into_iter().filter(|p| !p.trim().is_empty()).enumerate().map(|(i, p)| (format!("urls[{i}]"), p)).collect())
}

fn starts_with_scheme(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

fn check_template(field: &str, text: &str) -> Result<(), FieldError> {
    if text.contains("{{") && text.contains("}}") {
        return Err(FieldError::new(
            ErrorCode::UnfilledTemplate,
            field,
            format!("{field} still holds a template ({text}); map it to a value from an earlier step."),
        ));
    }
    Ok(())
}

fn parse_http_url(field: &str, raw: &str) -> Result<Url, FieldError> {
    check_template(field, raw)?;
    if raw.contains(char::is_whitespace) {
        return Err(FieldError::new(
            ErrorCode::InvalidUrl,
            field,
            format!("{field} contains a space: {raw}. Separate URLs with commas or new lines, and encode spaces inside a URL as %20."),
        ));
    }
    let url = Url::parse(raw).map_err(|e| {
        FieldError::new(
            ErrorCode::InvalidUrl,
            field,
            format!(
                "{field} is not a valid URL ({e}): {raw}. Use a full address such as https://example.com/call.mp3."
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(FieldError::new(
            ErrorCode::InvalidUrl,
            field,
            format!("{field} must be an http or https URL; got {raw}."),
        ));
    }
    Ok(url)
}

impl TryFrom<ActionInput> for JobRequest {
    type Error = FieldError;

    /// The job the action starts: its URLs, its models with v0's defaults (language at the
    /// action's granularity), its callback.
    fn try_from(input: ActionInput) -> Result<Self, FieldError> {
        let request = InferenceRequest {
            urls: input.urls.as_slice().iter().map(|url| url.as_str().to_owned()).collect(),
            models: Some(input.models.to_v0_models()),
            callback_url: input.callback_url.map(String::from),
            ..InferenceRequest::default()
        };
        Ok(Self { callback_body: input.callback_body, ..Self::new(JobSpec::new(request, false)?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn urls(v: Value) -> Result<Vec<String>, FieldError> {
        UrlList::try_from(&v).map(|l| l.as_slice().iter().map(Url::to_string).collect())
    }

    #[test]
    fn url_forms_builders_send() {
        let want = vec!["https://a.test/1.mp3".to_owned(), "https://b.test/2.mp4".to_owned()];
        assert_eq!(urls(json!(["https://a.test/1.mp3", "https://b.test/2.mp4"])).unwrap(), want);
        assert_eq!(urls(json!("[\"https://a.test/1.mp3\",\"https://b.test/2.mp4\"]")).unwrap(), want);
        assert_eq!(urls(json!("https://a.test/1.mp3, https://b.test/2.mp4")).unwrap(), want);
        assert_eq!(urls(json!(" https://a.test/1.mp3\r\n\nhttps://b.test/2.mp4\n")).unwrap(), want);
        assert_eq!(
            urls(json!(["https://a.test/1.mp3", "", "https://a.test/1.mp3", "https://b.test/2.mp4"])).unwrap(),
            want
        );
        assert_eq!(urls(json!([{"url": "https://a.test/1.mp3"}, "https://b.test/2.mp4"])).unwrap(), want);
        assert_eq!(urls(json!("https://a.test/1.mp3")).unwrap(), want[..1]);
    }

    #[test]
    fn commas_inside_a_url_are_kept() {
        let got = urls(json!("https://img.test/w_100,h_50/a.jpg,https://b.test/2.mp4")).unwrap();
        assert_eq!(got, ["https://img.test/w_100,h_50/a.jpg", "https://b.test/2.mp4"]);
    }

    #[test]
    fn url_errors_name_the_item() {
        let e = urls(json!(["https://a.test/x", "ftp://b.test/y"])).unwrap_err();
        assert_eq!((e.code.as_str(), e.field.as_str()), ("invalid_url", "urls[1]"));
        let e = urls(json!("https://a.test/x, not a url")).unwrap_err();
        assert_eq!((e.code.as_str(), e.field.as_str()), ("invalid_url", "urls[0]"));
        assert_eq!(urls(json!("")).unwrap_err().code, "missing_urls");
        assert_eq!(urls(json!([])).unwrap_err().code, "missing_urls");
        assert_eq!(urls(Value::Null).unwrap_err().code, "missing_urls");
        assert_eq!(urls(json!("{{trigger.urls}}")).unwrap_err().code, "unfilled_template");
        assert_eq!(urls(json!("[\"https://a.test\"")).unwrap_err().code, "invalid_urls");
        assert_eq!(urls(json!(42)).unwrap_err().code, "invalid_urls");
        let many: Vec<String> = (0..101).map(|i| format!("https://a.test/{i}")).collect();
        assert_eq!(urls(json!(many)).unwrap_err().code, "too_many_urls");
        let hundred: Vec<String> = (0..100).map(|i| format!("https://a.test/{i}")).collect();
        assert_eq!(urls(json!(hundred)).unwrap().len(), 100);
    }

    #[test]
    fn toggles() {
        for (v, want) in [
            (json!("Yes"), Some(Toggle::Yes)),
            (json!("yes"), Some(Toggle::Yes)),
            (json!(" YES "), Some(Toggle::Yes)),
            (json!(true), Some(Toggle::Yes)),
            (json!("true"), Some(Toggle::Yes)),
            (json!("No"), Some(Toggle::No)),
            (json!("no"), Some(Toggle::No)),
            (json!(false), Some(Toggle::No)),
            (json!("FALSE"), Some(Toggle::No)),
            (json!(""), None),
            (Value::Null, None),
        ] {
            assert_eq!(Toggle::parse("models_face", &v).unwrap(), want, "{v}");
        }
        let e = Toggle::parse("models_face", &json!("maybe")).unwrap_err();
        assert_eq!((e.code.as_str(), e.field.as_str()), ("invalid_toggle", "models_face"));
        assert_eq!(Toggle::parse("models_face", &json!("{{x.y}}")).unwrap_err().code, "unfilled_template");
        assert_eq!(Toggle::parse("models_face", &json!([1])).unwrap_err().code, "invalid_toggle");
    }

    #[test]
    fn defaults_follow_the_first_listed_option_and_all_no_is_refused() {
        let input = ActionInput::try_from(&json!({"urls": "https://a.test/x.mp3"})).unwrap();
        assert_eq!(input.models, ModelSelection { face: false, prosody: true, language: false });
        let e = ActionInput::try_from(&json!({"urls": "https://a.test/x", "models_prosody": "No"})).unwrap_err();
        assert_eq!(e.code, "no_model_selected");
        let input = ActionInput::try_from(&json!({"urls": "https://a.test/x", "models_face": "Yes", "models_prosody": false, "models_language": "yes"})).unwrap();
        assert_eq!(
            Value::Object(input.models.to_v0_models()),
            json!({"face": {}, "language": {"granularity": "utterance"}})
        );
    }

    #[test]
    fn callback_url() {
        let input =
            ActionInput::try_from(&json!({"urls": "https://a.test/x", "callback_url": " https://hook.test/h "}))
                .unwrap();
        assert_eq!(input.callback_url.unwrap().as_str(), "https://hook.test/h");
        let input = ActionInput::try_from(&json!({"urls": "https://a.test/x", "callback_url": ""})).unwrap();
        assert!(input.callback_url.is_none());
        let e = ActionInput::try_from(&json!({"urls": "https://a.test/x", "callback_url": "mailto:x@y"})).unwrap_err();
        assert_eq!((e.code.as_str(), e.field.as_str()), ("invalid_url", "callback_url"));
    }
}
