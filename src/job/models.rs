//! Which models a job runs, with their v0 settings typed as Hume's v0 reference types them
//! (`Face`, `Prosody`, `Language`, `Ner`, `Unconfigurable`, `Granularity`, `Window`): checked
//! strictly at the edge ([`ModelSettings::parse_v0`]), so that a setting v0 would refuse is an
//! answer naming the field and not a job run with defaults, and parsed once from the stored
//! request echo (whose defaults are already filled in), so the engine never reads
//! `serde_json::Value`.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Unexpected, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{ErrorCode, FieldError};

/// A v0 model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Model {
    Face,
    Burst,
    Prosody,
    Language,
    Ner,
    Facemesh,
}

impl Model {
    /// Every model, in v0's order.
    pub const ALL: [Model; 6] =
        [Model::Face, Model::Burst, Model::Prosody, Model::Language, Model::Ner, Model::Facemesh];

    /// The model of a v0 name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The v0 name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Face => "face",
            Self::Burst => "burst",
            Self::Prosody => "prosody",
            Self::Language => "language",
            Self::Ner => "ner",
            Self::Facemesh => "facemesh",
        }
    }
}

/// A model's settings object as v0 types it: its fields, the only names it accepts, and v0's
/// defaults for the fields left out.
pub trait Settings: DeserializeOwned + Default {
    /// Every field v0 knows for this model.
    const FIELDS: &'static [&'static str];
}

/// v0's `models.face` (Hume's `Face`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaceSettings {
    /// Frames per second to measure; `0` measures every frame.
    #[serde(deserialize_with = "non_negative")]
    pub fps_pred: f64,
    /// v0's detector threshold, 0 to 1; v1's detector has its own scale, so the v1 runner keeps
    /// its default.
    #[serde(deserialize_with = "probability")]
    pub prob_threshold: f64,
    /// Group predictions by face across frames.
    pub identify_faces: bool,
    /// Smallest face to measure, in source pixels (v0: a `uint64`).
    #[serde(deserialize_with = "whole_pixels")]
    pub min_face_size: f64,
    /// `{}` asks for descriptions, `null` does not.
    #[serde(deserialize_with = "switch")]
    pub descriptions: bool,
    /// `{}` asks for FACS action units, `null` does not.
    #[serde(deserialize_with = "switch")]
    pub facs: bool,
    /// v0's request to save face crops in the artifacts; accepted and kept in the echo.
    pub save_faces: bool,
}

impl Default for FaceSettings {
    fn default() -> Self {
        Self {
            fps_pred: 3.0,
            prob_threshold: 0.99,
            identify_faces: false,
            min_face_size: 60.0,
            descriptions: false,
            facs: false,
            save_faces: false,
        }
    }
}

impl Settings for FaceSettings {
    const FIELDS: &'static [&'static str] =
        &["fps_pred", "prob_threshold", "identify_faces", "min_face_size", "facs", "descriptions", "save_faces"];
}

/// v0's `Granularity`: how finely text (given or transcribed) is cut into scored segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    #[default]
    Word,
    Sentence,
    Utterance,
    ConversationalTurn,
}

impl Granularity {
    /// Every granularity, in the order of [`Granularity::NAMES`].
    const ALL: [Self; 4] = [Self::Word, Self::Sentence, Self::Utterance, Self::ConversationalTurn];

    /// The v0 names.
    const NAMES: &'static [&'static str] = &["word", "sentence", "utterance", "conversational_turn"];

    /// The v0 name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl<'de> Deserialize<'de> for Granularity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(OneOf(Self::NAMES)).map(|i| Self::ALL[i])
    }
}

/// v0's `models.language` (Hume's `Language`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanguageSettings {
    pub granularity: Granularity,
    #[serde(deserialize_with = "switch")]
    pub sentiment: bool,
    #[serde(deserialize_with = "switch")]
    pub toxicity: bool,
    pub identify_speakers: bool,
}

impl Default for LanguageSettings {
    fn default() -> Self {
        Self { granularity: Granularity::Word, sentiment: false, toxicity: false, identify_speakers: false }
    }
}

impl Settings for LanguageSettings {
    const FIELDS: &'static [&'static str] = &["granularity", "identify_speakers", "sentiment", "toxicity"];
}

/// v0's `models.prosody` (Hume's `Prosody`); checked at the edge and kept in the echo.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProsodySettings {
    pub granularity: Granularity,
    pub identify_speakers: bool,
    /// A sliding window instead of segments; `null` (v0's default) for none.
    pub window: Option<Window>,
}

impl Default for ProsodySettings {
    fn default() -> Self {
        Self { granularity: Granularity::Utterance, identify_speakers: false, window: None }
    }
}

impl Settings for ProsodySettings {
    const FIELDS: &'static [&'static str] = &["granularity", "identify_speakers", "window"];
}

/// v0's `Window`, in seconds (each at least 0.5).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Window {
    #[serde(deserialize_with = "window_seconds")]
    pub length: f64,
    #[serde(deserialize_with = "window_seconds")]
    pub step: f64,
}

impl Default for Window {
    fn default() -> Self {
        Self { length: 4.0, step: 1.0 }
    }
}

/// v0's `models.ner` (Hume's `Ner`); checked at the edge and kept in the echo.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NerSettings {
    pub identify_speakers: bool,
}

impl Settings for NerSettings {
    const FIELDS: &'static [&'static str] = &["identify_speakers"];
}

/// v0's `Unconfigurable` (`models.burst`, `models.facemesh`, and `facs`, `descriptions`,
/// `sentiment`, `toxicity` when on): `{}`, which takes no settings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Unconfigurable;

impl<'de> Deserialize<'de> for Unconfigurable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(Unconfigurable)
    }
}

impl<'de> Visitor<'de> for Unconfigurable {
    type Value = Unconfigurable;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`{}` (to turn it on) or null (to leave it off)")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        match map.next_key::<String>()? {
            Some(key) => Err(de::Error::unknown_field(&key, &[])),
            None => Ok(Unconfigurable),
        }
    }
}

impl Settings for Unconfigurable {
    const FIELDS: &'static [&'static str] = &[];
}

/// The models a job runs and their settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSettings {
    pub face: Option<FaceSettings>,
    pub burst: bool,
    pub prosody: bool,
    pub language: Option<LanguageSettings>,
    pub ner: bool,
    pub facemesh: bool,
    /// Which models group their segments by speaker.
    pub identify_speakers: IdentifySpeakers,
}

/// Which models group their predictions under speaker ids (v0's `identify_speakers` on
/// `models.language` and `models.prosody`, or on `transcription`, which turns it on for both).
/// Off, every segment is `unknown`, as on v0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentifySpeakers {
    pub language: bool,
    pub prosody: bool,
}

impl IdentifySpeakers {
    /// Whether any model wants speakers (so the file is diarized).
    pub fn any(self) -> bool {
        self.language || self.prosody
    }
}

impl ModelSettings {
    /// The settings a caller gave in a v0 `models` object (`null` models already left out),
    /// read with v0's types and ranges: an unknown model, a model not mapped to an object, a wrong
    /// type, an unknown value or an unknown field is an error naming `models.<model>[.<field>]`;
    /// v0's defaults fill only the fields left out.
    pub fn parse_v0(models: &Map<String, Value>) -> Result<Self, FieldError> {
        let mut parsed = Self::default();
        for (name, settings) in models {
            let at = format!("models.{name}");
            let model = Model::from_name(name).ok_or_else(|| {
                let names: Vec<&str> = Model::ALL.iter().map(|m| m.name()).collect();
                FieldError::new(
                    ErrorCode::InvalidModel,
                    &at,
                    format!("Unknown model {name:?}; use one of {}.", names.join(", ")),
                )
            })?;
            if !settings.is_object() {
                return Err(FieldError::new(
                    ErrorCode::InvalidModel,
                    &at,
                    format!("{at} must be an object of settings, e.g. {{}}."),
                ));
            }
            match model {
                Model::Face => parsed.face = Some(check::<FaceSettings>(settings, &at)?),
                Model::Prosody => {
                    parsed.identify_speakers.prosody = check::<ProsodySettings>(settings, &at)?.identify_speakers;
                    parsed.prosody = true;
                }
                Model::Language => {
                    let language = check::<LanguageSettings>(settings, &at)?;
                    parsed.identify_speakers.language = language.identify_speakers;
                    parsed.language = Some(language);
                }
                Model::Ner => parsed.ner = check::<NerSettings>(settings, &at).map(|_| true)?,
                Model::Burst => parsed.burst = check::<Unconfigurable>(settings, &at).map(|_| true)?,
                Model::Facemesh => parsed.facemesh = check::<Unconfigurable>(settings, &at).map(|_| true)?,
            }
        }
        Ok(parsed)
    }

    /// Every model with v0's defaults: a request without `models`.
    pub fn all() -> Self {
        Self {
            face: Some(FaceSettings::default()),
            burst: true,
            prosody: true,
            language: Some(LanguageSettings::default()),
            ner: true,
            facemesh: true,
            identify_speakers: IdentifySpeakers::default(),
        }
    }

    /// The settings in a stored v0 `models` echo (an absent or `null` model is not selected).
    /// The echo holds v0's defaults and settings checked at the edge; a field of a job stored
    /// before settings were checked that does not read falls back to its default, alone.
    pub fn from_v0(models: &Value) -> Self {
        let selected = |name: &str| models.get(name).filter(|v| v.is_object());
        Self {
            face: selected("face").map(|v| from_echo("face", v)),
            burst: selected("burst").is_some(),
            prosody: selected("prosody").is_some(),
            language: selected("language").map(|v| from_echo("language", v)),
            ner: selected("ner").is_some(),
            facemesh: selected("facemesh").is_some(),
            identify_speakers: IdentifySpeakers {
                language: selected("language")
                    .is_some_and(|v| from_echo::<LanguageSettings>("language", v).identify_speakers),
                prosody: selected("prosody")
                    .is_some_and(|v| from_echo::<ProsodySettings>("prosody", v).identify_speakers),
            },
        }
    }

    /// Whether `model` is selected.
    pub fn has(&self, model: Model) -> bool {
        match model {
            Model::Face => self.face.is_some(),
            Model::Burst => self.burst,
            Model::Prosody => self.prosody,
            Model::Language => self.language.is_some(),
            Model::Ner => self.ner,
            Model::Facemesh => self.facemesh,
        }
    }

    /// The selected models, in v0's order.
    pub fn selected(&self) -> Vec<Model> {
        Model::ALL.into_iter().filter(|m| self.has(*m)).collect()
    }
}

/// Settings given at `at` (`models.language`, `transcription`), read strictly: an unknown field,
/// a wrong type or a value out of range is an `invalid_setting` naming the field, the value and
/// what is accepted.
pub fn check<T: Settings>(settings: &Value, at: &str) -> Result<T, FieldError> {
    if let Some(unknown) = settings.as_object().and_then(|o| o.keys().find(|k| !T::FIELDS.contains(&k.as_str()))) {
        let accepted = match T::FIELDS {
            [] => "it takes no settings: send {}".to_owned(),
            fields => format!("its settings are {}", fields.join(", ")),
        };
        let message = format!("{at}.{unknown} is not a setting of {at}; {accepted}.");
        return Err(FieldError::new(ErrorCode::InvalidSetting, format!("{at}.{unknown}"), message));
    }
    serde_path_to_error::deserialize(settings).map_err(|e| {
        let pointer: String = e.path().iter().map(|segment| format!("/{segment}")).collect();
        let field = if pointer.is_empty() { at.to_owned() } else { format!("{at}.{}", e.path()) };
        let mut message = format!("{field} is not accepted: {}.", e.inner());
        if settings.pointer(&pointer).is_some_and(Value::is_null) {
            message.push_str(" Leave the field out for v0's default.");
        }
        FieldError::new(ErrorCode::InvalidSetting, field, message)
    })
}

/// A model's settings from a stored echo; a field that does not read (stored before settings
/// were checked) is dropped, so that it alone takes its default.
fn from_echo<T: Settings>(model: &str, settings: &Value) -> T {
    let mut known: Map<String, Value> = settings
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| T::FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    loop {
        let value = Value::Object(known.clone());
        match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(parsed) => return parsed,
            Err(e) => {
                let field = e.path().iter().next().map(ToString::to_string).unwrap_or_default();
                tracing::warn!(model, field, error = %e.inner(), "a stored setting does not read; its default is used");
                if known.remove(&field).is_none() {
                    return T::default();
                }
            }
        }
    }
}

/// A string that must be one of `names`; a visitor for `deserialize_str` whose value is the
/// name's index, and whose errors list the names.
pub struct OneOf(pub &'static [&'static str]);

impl Visitor<'_> for OneOf {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(|name| format!("{name:?}")).collect();
        write!(f, "one of {}", names.join(", "))
    }

    fn visit_str<E: de::Error>(self, given: &str) -> Result<usize, E> {
        self.0.iter().position(|name| *name == given).ok_or_else(|| E::invalid_value(Unexpected::Str(given), &self))
    }
}

/// `{}` turns an option on, `null` leaves it off; anything else is refused.
fn switch<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<Unconfigurable>::deserialize(d)?.is_some())
}

/// A number within `range`, described as `accepted` when it is not.
fn number_in<'de, D: Deserializer<'de>>(
    d: D,
    range: std::ops::RangeInclusive<f64>,
    accepted: &str,
) -> Result<f64, D::Error> {
    let given = serde_json::Number::deserialize(d)?.as_f64().unwrap_or(f64::NAN);
    if range.contains(&given) {
        Ok(given)
    } else {
        Err(de::Error::invalid_value(Unexpected::Float(given), &accepted))
    }
}

/// v0's thresholds: 0 to 1.
pub fn probability<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    number_in(d, 0.0..=1.0, "a number from 0 to 1")
}

fn non_negative<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    number_in(d, 0.0..=f64::MAX, "a number of 0 or more")
}

fn window_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    number_in(d, 0.5..=f64::MAX, "a number of seconds of 0.5 or more")
}

/// v0's `uint64` pixel sizes (`60.0` is taken as the whole number it is).
fn whole_pixels<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let given = serde_json::Number::deserialize(d)?;
    let whole = given.as_u64().map(|pixels| pixels as f64).or(given.as_f64().filter(|v| *v >= 0.0 && v.fract() == 0.0));
    match whole {
        Some(pixels) => Ok(pixels),
        None => {
            Err(de::Error::invalid_value(Unexpected::Other(&given.to_string()), &"a whole number of pixels, 0 or more"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_come_from_the_echo_with_v0_defaults() {
        let echo = json!({
            "face": {"fps_pred": 0, "prob_threshold": 0.99, "identify_faces": true, "min_face_size": 60,
                     "facs": null, "descriptions": {}, "save_faces": false},
            "prosody": {"granularity": "utterance"},
            "language": {"granularity": "sentence", "sentiment": {}, "toxicity": null},
            "ner": null
        });
        let s = ModelSettings::from_v0(&echo);
        let face = s.face.clone().unwrap();
        assert_eq!((face.fps_pred, face.identify_faces, face.descriptions, face.facs), (0.0, true, true, false));
        let language = s.language.clone().unwrap();
        assert_eq!((language.granularity.as_str(), language.sentiment, language.toxicity), ("sentence", true, false));
        assert_eq!(s.selected(), [Model::Face, Model::Prosody, Model::Language]);
        assert_eq!(s.identify_speakers, IdentifySpeakers::default());
        let on = json!({"prosody": {"identify_speakers": true}, "language": {"identify_speakers": false}});
        let on = ModelSettings::from_v0(&on).identify_speakers;
        assert_eq!((on.prosody, on.language, on.any()), (true, false, true));
    }

    /// The `invalid_setting` error for `models`, as `(field, message)`.
    fn refused(models: Value) -> (String, String) {
        let e = ModelSettings::parse_v0(models.as_object().unwrap()).unwrap_err();
        assert_eq!(e.code, "invalid_setting");
        (e.field, e.message)
    }

    fn accepted(models: Value) {
        ModelSettings::parse_v0(models.as_object().unwrap()).unwrap_or_else(|e| panic!("{models}: {e}"));
    }

    #[test]
    fn an_unknown_granularity_names_the_field_the_value_and_the_granularities() {
        let (field, message) = refused(json!({"language": {"granularity": "paragraph"}}));
        assert_eq!(field, "models.language.granularity");
        for part in ["\"paragraph\"", "\"word\"", "\"sentence\"", "\"utterance\"", "\"conversational_turn\""] {
            assert!(message.contains(part), "{part} not in {message}");
        }
        let (field, message) = refused(json!({"prosody": {"granularity": "passage"}}));
        assert_eq!((field.as_str(), message.contains("conversational_turn")), ("models.prosody.granularity", true));
    }

    #[test]
    fn a_setting_of_the_wrong_type_names_the_field_the_value_and_the_type() {
        let (field, message) = refused(json!({"language": {"granularity": 5, "sentiment": "yes"}}));
        assert_eq!(field, "models.language.granularity");
        assert!(message.contains("integer `5`") && message.contains("\"utterance\""), "{message}");
        let (field, message) = refused(json!({"language": {"sentiment": "yes"}}));
        assert_eq!(field, "models.language.sentiment");
        assert!(message.contains("\"yes\"") && message.contains("`{}`") && message.contains("null"), "{message}");
        let (field, message) = refused(json!({"face": {"identify_faces": "true"}}));
        assert_eq!(field, "models.face.identify_faces");
        assert!(message.contains("\"true\"") && message.contains("boolean"), "{message}");
        let (field, message) = refused(json!({"ner": {"identify_speakers": 1}}));
        assert_eq!(field, "models.ner.identify_speakers");
        assert!(message.contains("boolean"), "{message}");
        assert_eq!(refused(json!({"language": {"identify_speakers": "no"}})).0, "models.language.identify_speakers");
        assert_eq!(refused(json!({"prosody": {"identify_speakers": {}}})).0, "models.prosody.identify_speakers");
        assert_eq!(refused(json!({"face": {"save_faces": "yes"}})).0, "models.face.save_faces");
        assert_eq!(refused(json!({"face": {"facs": true}})).0, "models.face.facs");
        assert_eq!(refused(json!({"face": {"descriptions": []}})).0, "models.face.descriptions");
        assert_eq!(refused(json!({"language": {"toxicity": 1}})).0, "models.language.toxicity");
        assert_eq!(refused(json!({"prosody": {"window": 4}})).0, "models.prosody.window");
    }

    #[test]
    fn null_is_no_value_for_a_number_or_a_flag() {
        let (field, message) = refused(json!({"face": {"fps_pred": null}}));
        assert_eq!(field, "models.face.fps_pred");
        assert!(message.contains("null") && message.contains("Leave the field out"), "{message}");
        assert_eq!(refused(json!({"face": {"identify_faces": null}})).0, "models.face.identify_faces");
        assert_eq!(refused(json!({"language": {"granularity": null}})).0, "models.language.granularity");
    }

    #[test]
    fn numbers_are_held_to_v0s_ranges() {
        let out_of_range = [
            (json!({"face": {"prob_threshold": 1.5}}), "models.face.prob_threshold", "from 0 to 1"),
            (json!({"face": {"prob_threshold": -0.1}}), "models.face.prob_threshold", "from 0 to 1"),
            (json!({"face": {"fps_pred": -1}}), "models.face.fps_pred", "0 or more"),
            (json!({"face": {"min_face_size": 60.5}}), "models.face.min_face_size", "whole number"),
            (json!({"face": {"min_face_size": -1}}), "models.face.min_face_size", "whole number"),
            (json!({"face": {"min_face_size": "60"}}), "models.face.min_face_size", "\"60\""),
            (json!({"prosody": {"window": {"length": 0.2}}}), "models.prosody.window.length", "0.5 or more"),
            (json!({"prosody": {"window": {"step": 0}}}), "models.prosody.window.step", "0.5 or more"),
        ];
        for (models, want, hint) in out_of_range {
            let (field, message) = refused(models.clone());
            assert_eq!(field, want, "{models}");
            assert!(message.contains(hint), "{hint} not in {message}");
        }
        accepted(json!({"face": {"fps_pred": 0, "prob_threshold": 0, "min_face_size": 0}}));
        accepted(json!({"face": {"fps_pred": 2.5, "prob_threshold": 1, "min_face_size": 120}}));
        accepted(json!({"face": {"min_face_size": 60.0}}));
        accepted(json!({"prosody": {"window": {"length": 0.5, "step": 0.5}}}));
        accepted(json!({"prosody": {"window": {}}}));
    }

    #[test]
    fn an_unknown_field_is_named_with_the_fields_there_are() {
        let (field, message) = refused(json!({"language": {"granularity": "word", "sentimental": {}}}));
        assert_eq!(field, "models.language.sentimental");
        assert!(message.contains("granularity, identify_speakers, sentiment, toxicity"), "{message}");
        let (field, message) = refused(json!({"burst": {"granularity": "word"}}));
        assert_eq!(field, "models.burst.granularity");
        assert!(message.contains("no settings"), "{message}");
        assert_eq!(refused(json!({"facemesh": {"x": 1}})).0, "models.facemesh.x");
        assert_eq!(refused(json!({"ner": {"granularity": "word"}})).0, "models.ner.granularity");
        assert_eq!(refused(json!({"face": {"fps": 3}})).0, "models.face.fps");
        assert_eq!(refused(json!({"prosody": {"windows": null}})).0, "models.prosody.windows");
        // Inside a nested object too.
        let (field, message) = refused(json!({"prosody": {"window": {"size": 2}}}));
        assert_eq!(field, "models.prosody.window.size");
        assert!(message.contains("`size`") && message.contains("`length`"), "{message}");
        let (field, message) = refused(json!({"face": {"facs": {"au": 1}}}));
        assert_eq!(field, "models.face.facs");
        assert!(message.contains("`au`"), "{message}");
    }

    #[test]
    fn every_setting_v0_has_is_accepted() {
        accepted(json!({
            "face": {"fps_pred": 1, "prob_threshold": 0.5, "identify_faces": true, "min_face_size": 30,
                     "facs": {}, "descriptions": null, "save_faces": true},
            "prosody": {"granularity": "conversational_turn", "identify_speakers": true, "window": {"length": 4, "step": 1}},
            "language": {"granularity": "sentence", "identify_speakers": true, "sentiment": {}, "toxicity": null},
            "ner": {"identify_speakers": true},
            "burst": {},
            "facemesh": {}
        }));
        // What the action sends.
        accepted(json!({"language": {"granularity": "utterance"}}));
        accepted(json!({"face": {}, "prosody": {}, "language": {}}));
    }

    #[test]
    fn a_stored_setting_that_does_not_read_falls_back_alone() {
        // Jobs stored before settings were checked at the edge may hold such values.
        let echo = json!({"language": {"granularity": "paragraph", "identify_speakers": false, "sentiment": {},
                                       "toxicity": null, "extra": 1}});
        let language = ModelSettings::from_v0(&echo).language.unwrap();
        assert_eq!((language.granularity, language.sentiment, language.toxicity), (Granularity::Word, true, false));
        let echo = json!({"face": {"fps_pred": "fast", "min_face_size": 90, "identify_faces": true}});
        let face = ModelSettings::from_v0(&echo).face.unwrap();
        assert_eq!((face.fps_pred, face.min_face_size, face.identify_faces), (3.0, 90.0, true));
    }
}
