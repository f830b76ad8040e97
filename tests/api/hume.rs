//! The `hume` backend end to end: real ffmpeg on media the tests make, Hume v1 played by the
//! strict fake in `fake_v1.rs`, the same durable engine and v0 reads as `local`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::fake_v1::{Endpoint, FakeV1};
use crate::helpers::{spawn_hume_app, status_and_json, TestApp};
use crate::media_files::MEDIA;

const EMOTIONS: usize = 48;
const BURST_TYPES: usize = 67;

/// Starts a v0 job and waits for its end; returns the job and its predictions.
async fn run_v0(app: &TestApp, body: Value) -> (Value, Value) {
    let id = app.start_v0(&body).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    let predictions = app.predictions(&id).await;
    (job, predictions)
}

fn model<'a>(source: &'a Value, file: usize, model: &str) -> &'a Value {
    &source["results"]["predictions"][file]["models"][model]
}

fn first_group(output: &Value) -> Vec<Value> {
    output["grouped_predictions"][0]["predictions"].as_array().cloned().unwrap_or_default()
}

fn score(prediction: &Value, list: &str, name: &str) -> f64 {
    prediction[list].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["score"].as_f64().unwrap()
}

#[tokio::test]
async fn the_seeds_default_action_on_an_audio_url_completes_with_prosody() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let url = app.host_file("/calls/speech.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    // The seed's sample request, with its toggles left to their defaults (prosody Yes).
    let body = json!({"urls": url, "models_face": "", "models_prosody": "", "models_language": ""});
    let (status, answer) = status_and_json(app.start(&body).await).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["job_id"].as_str().unwrap();
    let job = app.wait_for_job(id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let predictions = app.predictions(id).await;
    let file = &predictions[0]["results"]["predictions"][0];
    assert_eq!((file["file"].as_str(), file["file_type"].as_str()), (Some("speech.mp3"), Some("audio")));
    let windows = first_group(model(&predictions[0], 0, "prosody"));
    assert!(!windows.is_empty(), "{predictions}");
    for w in &windows {
        assert_eq!(w["emotions"].as_array().unwrap().len(), EMOTIONS);
        assert!(w["time"]["begin"].as_f64().unwrap() < w["time"]["end"].as_f64().unwrap());
        // v1's "interest" (0.8123) lands on v0's "Interest"; a name v1 did not report is 0.
        assert_eq!(score(w, "emotions", "Interest"), 0.8123);
        assert_eq!(score(w, "emotions", "Boredom"), 0.0);
        // Nothing measured is dropped: v1-only names stay in `hume_v1`.
        let v1_names: Vec<&str> =
            w["hume_v1"]["expressions"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert!(v1_names.contains(&"feeling upset") && v1_names.contains(&"chuckling"), "{v1_names:?}");
        assert!(!w["hume_v1"]["voice_attributes"].as_array().unwrap().is_empty());
    }
    // One v1 request, a WAV of the whole clip, with the caller's key.
    let sent = v1.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].endpoint, sent[0].status, sent[0].api_key.as_deref()),
        (Endpoint::Audio, 200, Some("test-key"))
    );
    let seconds = sent[0].audio_duration_ms.unwrap() as f64 / 1000.0;
    assert!((seconds - windows.last().unwrap()["time"]["end"].as_f64().unwrap()).abs() < 1.5, "{seconds}");
}

#[tokio::test]
async fn a_video_gets_faces_per_frame_and_prosody_and_burst_from_one_audio_request() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let url = app.host_file("/talk.mp4", MEDIA.bytes("talk.mp4"), "video/mp4").await;
    let models = json!({"face": {"identify_faces": true, "descriptions": {}}, "prosody": {}, "burst": {}});
    let (job, predictions) = run_v0(&app, json!({"urls": [url], "models": models})).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let source = &predictions[0];
    assert_eq!(source["results"]["errors"], json!([]));
    assert_eq!(source["results"]["predictions"][0]["file_type"], "video");
    let face = model(source, 0, "face");
    assert_eq!(face["grouped_predictions"].as_array().unwrap().len(), 1, "one face tracked across the video");
    assert_eq!(face["grouped_predictions"][0]["id"], "face_0");
    let faces = first_group(face);
    let times: Vec<f64> = faces.iter().map(|f| f["time"].as_f64().unwrap()).collect();
    let frames: Vec<u64> = faces.iter().map(|f| f["frame"].as_u64().unwrap()).collect();
    assert!(times.len() >= 9, "3 fps over the clip: {times:?}");
    for (i, (t, frame)) in times.iter().zip(&frames).enumerate() {
        assert!((t - i as f64 / 3.0).abs() < 0.05, "frame times at fps_pred 3: {times:?}");
        assert!((*frame as f64 - t * 25.0).abs() <= 1.0, "frame numbers in the source's 25 fps: {frames:?}");
    }
    let first = &faces[0];
    // The fake finds the face in the centre half of the 640x480 frame, in source pixels.
    assert_eq!(first["box"], json!({"x": 160.0, "y": 120.0, "w": 320.0, "h": 240.0}));
    assert_eq!(first["prob"], 0.97);
    assert_eq!(first["emotions"].as_array().unwrap().len(), EMOTIONS);
    assert_eq!(score(first, "emotions", "Joy"), 0.8812);
    assert_eq!(score(first, "descriptions", "smile"), 0.9);
    let prosody = first_group(model(source, 0, "prosody"));
    let burst = first_group(model(source, 0, "burst"));
    assert!(!prosody.is_empty() && prosody.len() == burst.len());
    assert_eq!(burst[0]["descriptions"].as_array().unwrap().len(), BURST_TYPES);
    assert_eq!(burst[0]["time"], prosody[0]["time"]);
    let sent = v1.requests();
    let audio = sent.iter().filter(|r| r.endpoint == Endpoint::Audio).count();
    let video: usize = sent.iter().filter(|r| r.endpoint == Endpoint::Video).map(|r| r.files).sum();
    assert_eq!(audio, 1, "prosody and burst share one measurement");
    assert_eq!(video, faces.len(), "every frame sent once");
}

#[tokio::test]
async fn an_image_and_an_archive_of_audio_and_image_are_measured_member_by_member() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let image = app.host_file("/photo.png", MEDIA.bytes("photo.png"), "image/png").await;
    let bundle = app.host_file("/bundle.zip", MEDIA.bytes("bundle.zip"), "application/zip").await;
    let (job, predictions) =
        run_v0(&app, json!({"urls": [image, bundle], "models": {"face": {}, "prosody": {}}})).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let photo = &predictions[0]["results"]["predictions"][0];
    assert_eq!((photo["file"].as_str(), photo["file_type"].as_str()), (Some("photo.png"), Some("image")));
    let face = &first_group(&photo["models"]["face"])[0];
    assert_eq!(face["box"], json!({"x": 200.0, "y": 150.0, "w": 400.0, "h": 300.0}));
    assert_eq!((face["frame"].as_u64(), face["time"].as_f64()), (Some(0), Some(0.0)));
    let members = predictions[1]["results"]["predictions"].as_array().unwrap();
    let files: Vec<(&str, &str)> =
        members.iter().map(|m| (m["file"].as_str().unwrap(), m["file_type"].as_str().unwrap())).collect();
    assert_eq!(files, [("calls/speech.mp3", "audio"), ("photos/photo.jpg", "image")]);
    assert!(!first_group(&members[0]["models"]["prosody"]).is_empty());
    assert!(!first_group(&members[1]["models"]["face"]).is_empty());
    assert_eq!(job["state"]["num_predictions"], 3);
}

#[tokio::test]
async fn audio_longer_than_one_request_is_chunked_with_times_on_the_sources_timeline() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let url = app.host_file("/long.mp3", MEDIA.bytes("long.mp3"), "audio/mpeg").await;
    let (job, predictions) = run_v0(&app, json!({"urls": [url], "models": {"prosody": {}}})).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let sent = v1.requests();
    assert_eq!(sent.len(), 2, "14 minutes need two 25 MB requests");
    assert!(sent.iter().all(|r| r.body_bytes <= 25_000_000 && r.status == 200));
    let total_ms: u64 = sent.iter().map(|r| r.audio_duration_ms.unwrap()).sum();
    assert!((total_ms as f64 / 1000.0 - 840.0).abs() < 1.0, "every sample sent once: {total_ms} ms");
    let first_chunk_secs = sent[0].audio_duration_ms.unwrap() as f64 / 1000.0;
    let windows = first_group(model(&predictions[0], 0, "prosody"));
    let begins: Vec<f64> = windows.iter().map(|w| w["time"]["begin"].as_f64().unwrap()).collect();
    assert!(begins.windows(2).all(|p| p[0] <= p[1]), "times only grow");
    assert!(begins.iter().any(|b| *b > first_chunk_secs), "the second chunk's windows are shifted onto the timeline");
    let last_end = windows.last().unwrap()["time"]["end"].as_f64().unwrap();
    assert!(last_end > 830.0 && last_end <= 840.5, "{last_end}");
    // The cut fell in a pause: no window spans it.
    assert!(windows.iter().all(|w| {
        let (b, e) = (w["time"]["begin"].as_f64().unwrap(), w["time"]["end"].as_f64().unwrap());
        !(b < first_chunk_secs && e > first_chunk_secs)
    }));
}

#[tokio::test]
async fn a_401_from_v1_fails_the_source_with_hume_s_words_and_the_likely_cause() {
    let v1 = FakeV1::start(&["another-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let url = app.host_file("/speech.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    let (job, predictions) = run_v0(&app, json!({"urls": [url], "models": {"prosody": {}}})).await;
    assert_eq!(job["state"]["status"], "FAILED");
    let message = predictions[0]["results"]["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("401") && message.contains("limited release") && message.contains("request_id"),
        "{message}"
    );
    assert!(!message.contains("test-key"));
    assert_eq!(v1.requests().len(), 1, "a rejected key is never retried");
}

#[tokio::test]
async fn a_503_with_retry_after_is_retried_and_the_job_completes() {
    let v1 = FakeV1::start(&["test-key"]).await;
    v1.fail_next(1, 503, Some(1));
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let url = app.host_file("/photo.jpg", MEDIA.bytes("photo.jpg"), "image/jpeg").await;
    let (job, _) = run_v0(&app, json!({"urls": [url], "models": {"face": {}}})).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let sent = v1.requests();
    assert_eq!(sent.iter().map(|r| r.status).collect::<Vec<_>>(), [503, 200]);
    assert!(sent[1].at - sent[0].at >= Duration::from_millis(950), "Retry-After: 1 was honoured");
}

#[tokio::test]
async fn the_v1_limiter_counts_every_v1_request_in_a_sliding_window() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |c| {
        c.v1_rate_limit_requests = 2;
        c.v1_rate_limit_window_secs = 1.0;
        c.workers = Some(4);
    })
    .await;
    let url = app.host_file("/photo.jpg", MEDIA.bytes("photo.jpg"), "image/jpeg").await;
    let urls: Vec<String> = (0..6).map(|i| format!("{url}?copy={i}")).collect();
    let (job, _) = run_v0(&app, json!({"urls": urls, "models": {"face": {}}})).await;
    assert_eq!(job["state"]["num_predictions"], 6, "{job}");
    assert_eq!(v1.requests().len(), 6);
    assert!(v1.max_in_window(Duration::from_secs(1)) <= 2, "at most 2 v1 requests in any 1 s");
}

#[tokio::test]
async fn a_corrupt_file_beside_a_good_one_gives_one_error_and_one_prediction() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let good = app.host_file("/good.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    let bad = app.host_file("/bad.mp3", MEDIA.bytes("corrupt.mp3"), "audio/mpeg").await;
    let (job, predictions) = run_v0(&app, json!({"urls": [good, bad], "models": {"prosody": {}}})).await;
    assert_eq!(crate::helpers::outcome(&job), (Some("COMPLETED"), Some(1), Some(1)), "{job}");
    let error = &predictions[1]["results"]["errors"][0];
    assert_eq!(error["file"], "bad.mp3");
    assert!(error["message"].as_str().unwrap().contains("bad.mp3"), "{error}");
}

#[tokio::test]
async fn broken_silent_and_empty_media_become_per_source_errors_that_name_the_file() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let mut urls = Vec::new();
    for (name, kind) in [("truncated.mp4", "video/mp4"), ("silence.wav", "audio/wav"), ("empty.mp3", "audio/mpeg")] {
        urls.push(app.host_file(&format!("/{name}"), MEDIA.bytes(name), kind).await);
    }
    let (job, predictions) = run_v0(&app, json!({"urls": urls, "models": {"prosody": {}}})).await;
    assert_eq!(job["state"]["status"], "FAILED");
    for (source, name) in predictions.as_array().unwrap().iter().zip(["truncated.mp4", "silence.wav", "empty.mp3"]) {
        let error = &source["results"]["errors"][0];
        assert!(error["message"].as_str().unwrap().contains(name), "{error}");
    }
    assert!(v1.requests().is_empty(), "nothing undecodable reaches Hume");
}

#[tokio::test]
async fn the_callers_key_runs_the_job_after_a_restart_sealed_at_rest_and_dropped_at_the_end() {
    const KEY: &str = "callers-own-key-0123456789";
    let v1 = FakeV1::start(&[KEY]).await;
    v1.set_latency(Duration::from_secs(2));
    let mut app = spawn_hume_app(&v1.uri(), |c| c.hume_api_key = None).await;
    let url = app.host_file("/speech.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    let response = app
        .client
        .post(format!("{}/v0/batch/jobs", app.address))
        .header("X-Hume-Api-Key", KEY)
        .json(&json!({"urls": [url], "models": {"prosody": {}}}))
        .send()
        .await
        .unwrap();
    let (_, answer) = status_and_json(response).await;
    let id = answer["job_id"].as_str().unwrap().to_owned();
    let on_disk = |dir: &std::path::Path| {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            all.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
        }
        all
    };
    let needle = b"callers-own-key";
    assert!(!on_disk(app.data_dir.path()).windows(needle.len()).any(|w| w == needle), "never on disk in clear");

    // Stop while the job is at Hume; the next server on the same data directory finishes it
    // with the caller's key (the server itself has none).
    for _ in 0..500 {
        if !v1.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(v1.requests().len(), 1, "the job reached Hume before the stop");
    app.stop().await;
    v1.set_latency(Duration::ZERO);
    let TestApp { upstream, data_dir, .. } = app;
    let mut config = crate::helpers::test_config(hume_action::config::BackendKind::Hume, &upstream, data_dir.path());
    config.hume_api_key = None;
    config.hume_api_base_url = v1.uri().parse().unwrap();
    config.model_dir = Some(crate::helpers::model_dir());
    config.allow_private_urls = true;
    let app = crate::helpers::spawn_with(config, upstream, data_dir).await;
    let job = app.wait_for_job_as(Some(KEY), &id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    assert!(!job.to_string().contains(KEY));
    let sent = v1.requests();
    assert!(sent.len() >= 2 && sent.iter().all(|r| r.api_key.as_deref() == Some(KEY)));
    let store = hume_action::store::SqliteStore::open(app.data_dir.path()).await.unwrap();
    let record = hume_action::store::Store::get(&store, &id.as_str().into()).await.unwrap().unwrap();
    assert_eq!(record.api_key_sealed, None, "the sealed key is deleted when the job ends");
    assert!(!crate::helpers::captured_logs().contains(KEY));
}

#[tokio::test]
async fn a_hume_job_without_any_key_is_refused_at_intake() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |c| c.hume_api_key = None).await;
    let response = app.start(&json!({"urls": "https://example.com/a.mp3"})).await;
    let (status, body) = status_and_json(response).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("missing_api_key")), "{body}");
}
