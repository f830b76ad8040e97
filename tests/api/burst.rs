//! Vocal bursts on the `local` backend with the real YAMNet model (`scripts/install-models.sh
//! --with-burst`) on real acted bursts (Debian's `hedgewars-data`, `scripts/install-system.sh
//! --tests`), speech without bursts, and the honest error of a server without the model or
//! whose model does not load on its first use (it loads on the first burst job).

use serde_json::{json, Value};

use crate::helpers::{linked_model_dir, model_dir, spawn_local_app, summary_when_done, TestApp};
use crate::media_files::MEDIA;

const LAUGH: &str = "/usr/share/games/hedgewars/Data/Sounds/voices/Default/Laugh.ogg";
const LAUGHTER: [&str; 6] = ["Laughter", "Baby laughter", "Giggle", "Snicker", "Belly laugh", "Chuckle, chortle"];

fn laugh() -> Vec<u8> {
    std::fs::read(LAUGH).unwrap_or_else(|e| panic!("{LAUGH}: {e}; install it with scripts/install-system.sh --tests"))
}

async fn run_burst(app: &TestApp, path: &str, bytes: Vec<u8>, content_type: &str) -> (Value, Value) {
    let url = app.host_file(path, bytes, content_type).await;
    let id = app.start_v0(&json!({"urls": [url], "models": {"burst": {}}})).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    (job, app.predictions(&id).await)
}

fn bursts(predictions: &Value) -> Vec<Value> {
    let burst = &predictions[0]["results"]["predictions"][0]["models"]["burst"];
    burst["grouped_predictions"][0]["predictions"].as_array().cloned().unwrap_or_else(|| panic!("{predictions}"))
}

fn top(burst: &Value) -> (String, f64) {
    let descriptions = burst["descriptions"].as_array().unwrap();
    let best = descriptions.iter().max_by(|a, b| a["score"].as_f64().unwrap().total_cmp(&b["score"].as_f64().unwrap()));
    let best = best.unwrap();
    (best["name"].as_str().unwrap().to_owned(), best["score"].as_f64().unwrap())
}

#[tokio::test]
async fn a_laugh_gets_a_laughter_description_and_no_borrowed_emotions() {
    let app = spawn_local_app(|_| {}).await;
    let (job, predictions) = run_burst(&app, "/laugh.ogg", laugh(), "audio/ogg").await;
    assert_eq!(crate::helpers::outcome(&job), (Some("COMPLETED"), Some(1), Some(0)), "{job}");
    let found = bursts(&predictions);
    assert!(!found.is_empty(), "no burst in a laugh: {predictions}");
    let (name, score) = top(&found[0]);
    assert!(LAUGHTER.contains(&name.as_str()), "top description {name} ({score})");
    let (begin, end) = (found[0]["time"]["begin"].as_f64().unwrap(), found[0]["time"]["end"].as_f64().unwrap());
    assert!(begin < end, "{begin}..{end}");
    assert_eq!(found[0]["emotions"], json!([]), "emotions are not filled from sound classes");
    let note = predictions[0]["results"]["predictions"][0]["models"]["burst"]["note"].as_str().unwrap();
    assert!(note.contains("YAMNet") && note.contains("emotions"), "{note}");
    let id = job["job_id"].as_str().unwrap();
    let summary = summary_when_done(&app, id).await;
    assert_eq!(summary["status"], "COMPLETED", "{summary}");
    let marks = &summary["files"][0]["models"]["burst"]["bursts"];
    assert_eq!(marks[0]["top"]["name"], name.as_str(), "{summary}");
    assert_eq!(summary["files"][0]["models"]["burst"]["top_emotions"], json!([]), "{summary}");
}

#[tokio::test]
async fn speech_without_bursts_gets_no_burst() {
    let app = spawn_local_app(|_| {}).await;
    let (job, predictions) = run_burst(&app, "/speech.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    assert_eq!(crate::helpers::outcome(&job), (Some("COMPLETED"), Some(1), Some(0)), "{job}");
    let found = bursts(&predictions);
    assert!(found.is_empty(), "bursts found in plain speech: {found:?}");
}

#[tokio::test]
async fn without_the_burst_files_burst_says_how_to_install_them_and_other_models_still_run() {
    let models = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap().flatten() {
        if entry.file_name() != "burst" {
            std::os::unix::fs::symlink(entry.path(), models.path().join(entry.file_name())).unwrap();
        }
    }
    let dir = models.path().to_owned();
    let app = spawn_local_app(|config| config.model_dir = Some(dir)).await;
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert!(ready["components"]["burst_model"].as_str().is_some_and(|s| s.starts_with("not installed")), "{ready}");
    let url = app.host_file("/laugh.ogg", laugh(), "audio/ogg").await;
    let body = json!({"urls": [url], "models": {"burst": {}, "language": {"granularity": "sentence"}}});
    let id = app.start_v0(&body).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    let predictions = app.predictions(&id).await;
    let errors = predictions[0]["results"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{predictions}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("burst model is not installed") && message.contains("scripts/install-models.sh --with-burst"),
        "{message}"
    );
    assert!(!message.contains(&model_dir().display().to_string()), "no server path in a caller's error: {message}");
    assert!(predictions[0]["results"]["predictions"][0]["models"]["burst"].is_null(), "{predictions}");
    assert!(job["state"]["status"].is_string(), "{job}");
}

#[tokio::test]
async fn the_official_v0_python_sdk_reads_local_bursts_with_empty_emotions() {
    let app = spawn_local_app(|_| {}).await;
    crate::sdk::run_sdk_script("v0_local_burst.py", &app.address, &[("MEDIA_AUDIO_FILE", LAUGH.to_owned())]).await;
}

#[tokio::test]
async fn a_burst_model_that_does_not_load_on_first_use_is_the_files_error_and_other_models_still_run() {
    let models = linked_model_dir("burst");
    let dir = models.path().to_owned();
    let app = spawn_local_app(|config| config.model_dir = Some(dir)).await;
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["components"]["burst_model"], "installed (YAMNet, loaded on first use)", "{ready}");
    // Start-up checked the file; it changes before the first job loads it.
    let file = models.path().join("burst/yamnet.onnx");
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, b"not the pinned model").unwrap();
    let url = app.host_file("/laugh.ogg", laugh(), "audio/ogg").await;
    let body = json!({"urls": [url], "models": {"burst": {}, "language": {"granularity": "sentence"}}});
    let id = app.start_v0(&body).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let predictions = app.predictions(&id).await;
    let errors = predictions[0]["results"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{predictions}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("laugh.ogg: the vocal burst model failed: the model did not load")
            && message.contains("scripts/install-models.sh --with-burst"),
        "{message}"
    );
    assert!(!message.contains(&models.path().display().to_string()), "no server path in a caller's error: {message}");
    assert!(predictions[0]["results"]["predictions"][0]["models"]["burst"].is_null(), "{predictions}");
}
