//! Which models a job runs, with their v0 settings typed: parsed once from the stored request
//! echo (whose defaults are already filled in), so the engine never reads `serde_json::Value`.

use serde::Deserialize;
use serde_json::Value;

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

/// v0's `models.face`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct FaceSettings {
    /// Frames per second to measure; `0` measures every frame.
    pub fps_pred: f64,
    /// v0's detector threshold; v1's detector has its own scale, so the v1 runner keeps its default.
    pub prob_threshold: f64,
    /// Group predictions by face across frames.
    pub identify_faces: bool,
    /// Smallest face to measure, in source pixels.
    pub min_face_size: f64,
    /// `{}` asks for descriptions, `null` does not.
    #[serde(deserialize_with = "present_object")]
    pub descriptions: bool,
    /// `{}` asks for FACS action units, `null` does not.
    #[serde(deserialize_with = "present_object")]
    pub facs: bool,
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
        }
    }
}

/// v0's `models.language`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct LanguageSettings {
    /// `word`, `sentence`, `utterance` or `conversational_turn`.
    pub granularity: String,
    #[serde(deserialize_with = "present_object")]
    pub sentiment: bool,
    #[serde(deserialize_with = "present_object")]
    pub toxicity: bool,
}

impl Default for LanguageSettings {
    fn default() -> Self {
        Self { granularity: "word".into(), sentiment: false, toxicity: false }
    }
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
}

impl ModelSettings {
    /// The settings in a v0 `models` object (an absent or `null` model is not selected).
    pub fn from_v0(models: &Value) -> Self {
        let selected = |name: &str| models.get(name).filter(|v| v.is_object());
        Self {
            face: selected("face").map(parse),
            burst: selected("burst").is_some(),
            prosody: selected("prosody").is_some(),
            language: selected("language").map(parse),
            ner: selected("ner").is_some(),
            facemesh: selected("facemesh").is_some(),
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

/// Settings from a model's JSON object; the defaults when they do not parse.
fn parse<T: serde::de::DeserializeOwned + Default>(value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

/// `true` for an object (`{}` turns an option on), `false` for `null` or anything else.
fn present_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Value::deserialize(d)?.is_object())
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
    }
}
