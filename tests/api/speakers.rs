//! `identify_speakers` end to end with the real models: a dialogue of two espeak-ng voices comes
//! out as two speakers on `local` (language segments grouped under their ids, the transcript's
//! words and the artifacts carrying them) and on `hume` (prosody windows, measured by the fake
//! v1, grouped under the speaker of their words); off, everything is `unknown`; without the
//! model's files, a per-source error names the install command; a model that does not load on
//! its first use (it loads on the first job that asks for speakers) is that file's error too.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::fake_v1::FakeV1;
use crate::helpers::{linked_model_dir, model_dir, spawn_hume_app, spawn_local_app, TestApp};
use hume_action::models::speakers::eval::{dialogue, Reference};

/// Four turns (about 17 s), so a job stays within the helpers' wait on a busy machine.
const LINES: [&str; 4] = [
    "Hello, thank you for calling. How can I help you today?",
    "Hi. My order was supposed to arrive last week and it still has not come.",
    "I am sorry to hear that. Could you give me the order number, please?",
    "Yes, it is four five seven two one. I have been waiting for ten days now.",
];

/// The dialogue as a WAV, and who spoke when.
fn two_voices() -> (Vec<u8>, Vec<Reference>) {
    let lines: Vec<(&str, &str)> =
        LINES.iter().enumerate().map(|(i, l)| (if i % 2 == 0 { "en-us" } else { "en-us+Annie" }, *l)).collect();
    let (pcm, reference) = dialogue(&lines, 0.6, 175).expect("espeak-ng and ffmpeg");
    (pcm.to_wav(0..pcm.samples.len()), reference)
}

async fn run_v0(app: &TestApp, body: Value) -> (Value, Value) {
    let id = app.start_v0(&body).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    (job, app.predictions(&id).await)
}

fn ids(output: &Value) -> Vec<String> {
    output["grouped_predictions"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_owned()).collect()
}

/// The reference speaker of the line said at `time`, if any.
fn said_by(reference: &[Reference], time: f64) -> Option<usize> {
    reference.iter().find(|r| (r.begin - 0.3..r.end + 0.3).contains(&time)).map(|r| r.speaker)
}

/// Checks every word carries a speaker and that one id stands for one voice: at least 90% of
/// the words carry the id their line's voice mostly got. Returns voice -> id.
fn words_follow_the_voices(file: &Value, reference: &[Reference]) -> BTreeMap<usize, String> {
    let words = file["transcript"]["words"].as_array().unwrap();
    assert!(words.len() > 30, "{words:?}");
    let mut votes: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for w in words {
        let id = w["speaker"].as_str().unwrap_or_else(|| panic!("a word without a speaker: {w}")).to_owned();
        let confidence = w["speaker_confidence"].as_f64().unwrap();
        assert!(confidence > 0.0 && confidence <= 1.0, "{w}");
        let middle = (w["begin"].as_f64().unwrap() + w["end"].as_f64().unwrap()) / 2.0;
        if let Some(voice) = said_by(reference, middle) {
            *votes.entry((voice, id)).or_default() += 1;
        }
    }
    let mut map = BTreeMap::new();
    for voice in [0, 1] {
        let ((_, id), _) = votes.iter().filter(|((v, _), _)| *v == voice).max_by_key(|(_, n)| **n).unwrap();
        map.insert(voice, id.clone());
    }
    assert_ne!(map[&0], map[&1], "two voices, two ids: {votes:?}");
    let agree: usize = votes.iter().filter(|((v, id), _)| &map[v] == id).map(|(_, n)| n).sum();
    let total: usize = votes.values().sum();
    assert!(agree as f64 >= 0.9 * total as f64, "{agree} of {total} words: {votes:?}");
    map
}

fn artifact(zip: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut archive.by_name(name).unwrap(), &mut csv).unwrap();
    csv
}

#[tokio::test]
async fn two_voices_on_local_are_two_speakers_in_groups_words_summary_and_artifacts() {
    let app = spawn_local_app(|_| {}).await;
    let (wav, reference) = two_voices();
    let url = app.host_file("/call.wav", wav, "audio/wav").await;
    let body = json!({"urls": [url], "models": {"language": {"granularity": "utterance", "identify_speakers": true}}});
    let id = app.start_v0(&body).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let predictions = app.predictions(&id).await;
    assert_eq!(predictions[0]["results"]["errors"], json!([]));
    let file = &predictions[0]["results"]["predictions"][0];
    let voices = words_follow_the_voices(file, &reference);
    let language = &file["models"]["language"];
    assert_eq!(ids(language), ["spk_0", "spk_1"], "{language}");
    assert_eq!(voices[&0], "spk_0", "the first voice heard is spk_0");
    for group in language["grouped_predictions"].as_array().unwrap() {
        for p in group["predictions"].as_array().unwrap() {
            let confidence = p["speaker_confidence"].as_f64().unwrap();
            assert!(confidence > 0.5 && confidence <= 1.0, "{p}");
            // Each utterance is in the group of the voice that said it.
            let middle = (p["time"]["begin"].as_f64().unwrap() + p["time"]["end"].as_f64().unwrap()) / 2.0;
            if let Some(voice) = said_by(&reference, middle) {
                assert_eq!(voices[&voice], group["id"], "{p}");
            }
        }
    }

    let summary: Value = app.get(&format!("/v1/jobs/{id}/summary")).await.json().await.unwrap();
    let speakers = summary["files"][0]["models"]["language"]["speakers"].as_array().unwrap();
    let summarised: Vec<&str> = speakers.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(summarised, ["spk_0", "spk_1"], "{summary}");

    let zip = app.get(&format!("/v0/batch/jobs/{id}/artifacts")).await.bytes().await.unwrap();
    let transcript = artifact(&zip, "transcript.csv");
    let header: Vec<&str> = transcript.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|c| *c == "speaker").unwrap_or_else(|| panic!("{header:?}"));
    assert!(header.contains(&"speaker_confidence"), "{header:?}");
    let rows: Vec<Vec<&str>> = transcript.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r[column].starts_with("spk_")), "{transcript}");
    let timeline = artifact(&zip, "timeline.csv");
    let header: Vec<&str> = timeline.lines().next().unwrap().split(',').collect();
    assert!(header.contains(&"speaker"), "{header:?}");
    assert!(timeline.contains("spk_0") && timeline.contains("spk_1"), "{timeline}");
}

#[tokio::test]
async fn identify_speakers_off_leaves_everything_unknown_and_on_the_transcription_turns_it_on() {
    let app = spawn_local_app(|_| {}).await;
    let (wav, _) = two_voices();
    let url = app.host_file("/call.wav", wav, "audio/wav").await;
    let (job, predictions) = run_v0(&app, json!({"urls": [url.clone()], "models": {"language": {}}})).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let file = &predictions[0]["results"]["predictions"][0];
    assert_eq!(ids(&file["models"]["language"]), ["unknown"]);
    let words = file["transcript"]["words"].as_array().unwrap();
    assert!(words.iter().all(|w| w.get("speaker").is_none()), "{words:?}");
    let first = &file["models"]["language"]["grouped_predictions"][0]["predictions"][0];
    assert!(first["speaker_confidence"].is_null(), "{first}");

    let body = json!({"urls": [url], "models": {"language": {"granularity": "sentence"}},
                      "transcription": {"identify_speakers": true}});
    let (_, predictions) = run_v0(&app, body).await;
    let file = &predictions[0]["results"]["predictions"][0];
    assert_eq!(ids(&file["models"]["language"]), ["spk_0", "spk_1"], "{file}");
}

#[tokio::test]
async fn on_hume_prosody_windows_take_the_speaker_of_their_words() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let (wav, reference) = two_voices();
    let url = app.host_file("/call.wav", wav, "audio/wav").await;
    let models = json!({"prosody": {"identify_speakers": true}, "language": {"granularity": "utterance"}});
    let (job, predictions) = run_v0(&app, json!({"urls": [url], "models": models})).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let file = &predictions[0]["results"]["predictions"][0];
    let voices = words_follow_the_voices(file, &reference);
    // Language did not ask: it stays unknown.
    assert_eq!(ids(&file["models"]["language"]), ["unknown"]);
    let prosody = &file["models"]["prosody"];
    assert_eq!(ids(prosody), ["spk_0", "spk_1"], "{prosody}");
    let words = file["transcript"]["words"].as_array().unwrap();
    let mut windows = 0;
    for group in prosody["grouped_predictions"].as_array().unwrap() {
        for w in group["predictions"].as_array().unwrap() {
            let (begin, end) = (w["time"]["begin"].as_f64().unwrap(), w["time"]["end"].as_f64().unwrap());
            let inside: Vec<&str> = words
                .iter()
                .filter(|x| (begin..end).contains(&((x["begin"].as_f64().unwrap() + x["end"].as_f64().unwrap()) / 2.0)))
                .map(|x| x["speaker"].as_str().unwrap())
                .collect();
            if let Some(first) = inside.first() {
                if inside.iter().all(|s| s == first) {
                    assert_eq!(group["id"], *first, "a window takes the speaker of its words: {w}");
                }
            }
            assert!(w["speaker_confidence"].as_f64().is_some_and(|c| c > 0.0 && c <= 1.0), "{w}");
            windows += 1;
        }
    }
    assert!(windows >= 4, "{prosody}");
    assert_eq!(voices[&0], "spk_0");
}

#[tokio::test]
async fn without_the_speaker_model_a_source_error_names_the_install_command() {
    let models = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "campplus" {
            std::os::unix::fs::symlink(entry.path(), models.path().join(entry.file_name())).unwrap();
        }
    }
    let dir = models.path().to_owned();
    let app = spawn_local_app(|c| c.model_dir = Some(dir)).await;
    let (wav, _) = two_voices();
    let url = app.host_file("/call.wav", wav, "audio/wav").await;
    let body = json!({"urls": [url], "models": {"language": {"identify_speakers": true}}});
    let (job, predictions) = run_v0(&app, body).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "the words are still scored: {job}");
    let errors = predictions[0]["results"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.contains("call.wav") && message.contains("scripts/models/speakers.sh"), "{message}");
    let file = &predictions[0]["results"]["predictions"][0];
    assert_eq!(ids(&file["models"]["language"]), ["unknown"]);
}

#[tokio::test]
async fn a_speaker_model_that_does_not_load_on_first_use_is_the_files_error_and_the_words_are_still_scored() {
    let models = linked_model_dir("campplus");
    let dir = models.path().to_owned();
    let app = spawn_local_app(|c| c.model_dir = Some(dir)).await;
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["components"]["speaker_model"], "installed (CAM++, loaded on first use)", "{ready}");
    // Start-up checked the file; it changes before the first job loads it.
    let file = models.path().join("campplus/campplus_cn_en_common.pt");
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, b"not the pinned model").unwrap();
    let (wav, _) = two_voices();
    let url = app.host_file("/call.wav", wav, "audio/wav").await;
    let body = json!({"urls": [url], "models": {"language": {"granularity": "utterance", "identify_speakers": true}}});
    let (job, predictions) = run_v0(&app, body.clone()).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "the words are still scored: {job}");
    let errors = predictions[0]["results"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("call.wav")
            && message.contains("did not load")
            && message.contains("scripts/models/speakers.sh"),
        "{message}"
    );
    assert!(!message.contains(&models.path().display().to_string()), "no server path in a caller's error: {message}");
    assert_eq!(ids(&predictions[0]["results"]["predictions"][0]["models"]["language"]), ["unknown"]);
    // The failure is kept: the next job says the same, without loading again.
    let (_, again) = run_v0(&app, body).await;
    assert_eq!(again[0]["results"]["errors"][0]["message"], message, "{again}");
}
