//! `action-manifest.json`: the single source of the action's fields, defaults and help text.
//!
//! The file at the repo root is compiled in and served by `GET /v1/actions`; the defaults the
//! parser applies are read from it, so the description and the behaviour cannot drift apart.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

use super::input::Toggle;

/// The manifest's text, as served.
pub const MANIFEST_JSON: &str = include_str!("../../action-manifest.json");

/// The parsed manifest.
pub static MANIFEST: LazyLock<Manifest> =
    LazyLock::new(|| serde_json::from_str(MANIFEST_JSON).expect("action-manifest.json is valid (checked by tests)"));

/// The parts of the manifest the server itself uses.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub actions: Vec<ManifestAction>,
    pub errors: Vec<ManifestError>,
}

/// One action (start a job, read details, read predictions).
#[derive(Debug, Deserialize)]
pub struct ManifestAction {
    pub key: String,
    pub method: String,
    pub path: String,
    pub fields: Vec<ManifestField>,
    #[serde(default)]
    pub sample_request: Option<Value>,
    #[serde(default)]
    pub sample_output: Option<Value>,
}

/// One input field.
#[derive(Debug, Deserialize)]
pub struct ManifestField {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
    #[serde(default)]
    pub options: Vec<String>,
    /// The default: an option's name, or a number.
    #[serde(default)]
    pub default: Option<Value>,
    pub help: String,
}

/// One error code the server can answer with.
#[derive(Debug, Deserialize)]
pub struct ManifestError {
    pub code: String,
    pub status: u16,
    pub retryable: bool,
}

impl Manifest {
    /// The action that starts a job.
    pub fn start_action(&self) -> &ManifestAction {
        self.actions.iter().find(|a| a.method == "POST").expect("the manifest has a POST action")
    }

    /// The default of a Yes/No field of the start action.
    pub fn default_toggle(&self, field: &str) -> Toggle {
        self.start_action()
            .fields
            .iter()
            .find(|f| f.key == field)
            .and_then(|f| f.default.as_ref()?.as_str())
            .and_then(Toggle::from_option)
            .unwrap_or(Toggle::No)
    }
}
