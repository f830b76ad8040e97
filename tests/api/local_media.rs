//! The `local` backend on media, with the real embedded models the install step fetched: speech
//! transcribed and scored by the language model, faces found and scored, and the honest errors
//! for what no local model measures.

use serde_json::{json, Value};

use crate::helpers::{spawn_local_app, TestApp};
use crate::media_files::{ANGRY, MEDIA, SPEECH};

async fn run_v0(app: &TestApp, body: Value) -> (Value, Value) {
    let id = app.start_v0(&body).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    (job, app.predictions(&id).await)
}

/// Lower-case words without punctuation, "I'm" read as "i am" (a contraction is not an error).
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace("i'm", "i am")
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate of `heard` against `said` (edit distance over words / words said).
fn word_error_rate(said: &str, heard: &str) -> f64 {
    let (a, b) = (words(said), words(heard));
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut previous = row[0];
        row[0] = i;
        for j in 1..=b.len() {
            let substitute = previous + usize::from(a[i - 1] != b[j - 1]);
            previous = row[j];
            row[j] = substitute.min(row[j] + 1).min(row[j - 1] + 1);
        }
    }
    row[b.len()] as f64 / a.len() as f64
}

fn transcript_text(file: &Value) -> String {
    let words = file["transcript"]["words"].as_array().unwrap();
    words.iter().map(|w| w["text"].as_str().unwrap()).collect::<Vec<_>>().join(" ")
}

fn score(prediction: &Value, name: &str) -> f64 {
    prediction["emotions"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap()["score"].as_f64().unwrap()
}

#[tokio::test]
async fn speech_is_transcribed_and_its_language_scored_with_times_and_prosody_says_why_not() {
    let app = spawn_local_app(|_| {}).await;
    let url = app.host_file("/call.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    let models = json!({"language": {"granularity": "sentence"}, "prosody": {}});
    let (job, predictions) = run_v0(&app, json!({"urls": [url], "models": models})).await;
    assert_eq!(crate::helpers::outcome(&job), (Some("COMPLETED"), Some(1), Some(1)), "{job}");
    let file = &predictions[0]["results"]["predictions"][0];
    assert_eq!(file["file_type"], "audio");
    let heard = transcript_text(file);
    let wer = word_error_rate(SPEECH, &heard);
    assert!(wer <= 0.25, "word error rate {wer:.2}: heard {heard:?}");
    let language = &file["models"]["language"];
    assert_eq!(language["metadata"]["detected_language"], "en", "{language}");
    let confidence = language["metadata"]["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence));
    let sentences = language["grouped_predictions"][0]["predictions"].as_array().unwrap();
    assert!(sentences.len() >= 2, "{sentences:?}");
    let times: Vec<(f64, f64)> =
        sentences.iter().map(|s| (s["time"]["begin"].as_f64().unwrap(), s["time"]["end"].as_f64().unwrap())).collect();
    assert!(times.iter().all(|(b, e)| b < e) && times.windows(2).all(|w| w[0].1 <= w[1].0 + 0.01), "{times:?}");
    let error = predictions[0]["results"]["errors"][0]["message"].as_str().unwrap();
    assert!(error.contains("prosody") && error.contains("HUME_ACTION_BACKEND=hume"), "{error}");
}

#[tokio::test]
async fn an_angry_call_ranks_anger_above_joy_and_scores_like_the_same_words_sent_as_text() {
    let app = spawn_local_app(|_| {}).await;
    let url = app.host_file("/angry.mp3", MEDIA.bytes("angry.mp3"), "audio/mpeg").await;
    let models = json!({"language": {"granularity": "sentence"}});
    let (job, predictions) = run_v0(&app, json!({"urls": [url], "models": models.clone()})).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let file = &predictions[0]["results"]["predictions"][0];
    let heard = transcript_text(file);
    assert!(word_error_rate(ANGRY, &heard) <= 0.35, "heard {heard:?}");
    let spoken = file["models"]["language"]["grouped_predictions"][0]["predictions"].as_array().unwrap().clone();
    let anger: f64 = spoken.iter().map(|s| score(s, "Anger") + score(s, "Annoyance")).sum();
    let joy: f64 = spoken.iter().map(|s| score(s, "Joy") + score(s, "Amusement")).sum();
    assert!(anger > joy, "anger {anger:.3} vs joy {joy:.3}");

    // The same words as a text item: the same segments, positions and scores.
    let (_, as_text) = run_v0(&app, json!({"text": [heard], "models": models})).await;
    let written = as_text[0]["results"]["predictions"][0]["models"]["language"]["grouped_predictions"][0]
        ["predictions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(spoken.len(), written.len());
    for (s, w) in spoken.iter().zip(&written) {
        assert_eq!((&s["text"], &s["position"]), (&w["text"], &w["position"]));
        assert_eq!(s["emotions"], w["emotions"], "same model, same segment, same scores");
        assert!(s["time"].is_object() && w["time"].is_null());
    }
}

#[tokio::test]
async fn transcription_null_turns_transcription_off_and_the_artifacts_carry_the_words() {
    let app = spawn_local_app(|_| {}).await;
    let url = app.host_file("/call.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    let off = json!({"urls": [url.clone()], "models": {"language": {}}, "transcription": null});
    let (job, predictions) = run_v0(&app, off).await;
    assert_eq!(job["state"]["status"], "FAILED");
    assert!(predictions[0]["results"]["errors"][0]["message"].as_str().unwrap().contains("transcript"));

    let id = app.start_v0(&json!({"urls": [url], "models": {"language": {}}})).await;
    app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    let zip = app.get(&format!("/v0/batch/jobs/{id}/artifacts")).await.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("transcript.csv").unwrap(), &mut csv).unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(header, "source,file,begin,confidence,end,text");
    assert!(csv.lines().count() > 10, "one row per word: {csv}");
}

fn asset(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/face").join(name)).unwrap()
}

fn faces(file: &Value) -> Vec<Value> {
    let groups = file["models"]["face"]["grouped_predictions"].as_array().unwrap();
    groups.iter().flat_map(|g| g["predictions"].as_array().unwrap().clone()).collect()
}

fn top_emotion(prediction: &Value) -> String {
    let emotions = prediction["emotions"].as_array().unwrap();
    let top = emotions.iter().max_by(|a, b| a["score"].as_f64().partial_cmp(&b["score"].as_f64()).unwrap()).unwrap();
    top["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_face_photo_gets_a_box_around_the_face_and_a_photo_without_one_gets_none() {
    let app = spawn_local_app(|_| {}).await;
    let face = app.host_file("/astronaut.jpg", asset("astronaut.jpg"), "image/jpeg").await;
    let empty = app.host_file("/rocket.jpg", asset("rocket.jpg"), "image/jpeg").await;
    let (job, predictions) = run_v0(&app, json!({"urls": [face, empty], "models": {"face": {}}})).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let found = faces(&predictions[0]["results"]["predictions"][0]);
    assert_eq!(found.len(), 1, "{found:?}");
    let b = &found[0]["box"];
    // The labelled face is at (177, 75) 95x100 in the 512x512 photo.
    let (cx, cy) = (
        b["x"].as_f64().unwrap() + b["w"].as_f64().unwrap() / 2.0,
        b["y"].as_f64().unwrap() + b["h"].as_f64().unwrap() / 2.0,
    );
    assert!((cx - 224.5).abs() < 30.0 && (cy - 125.0).abs() < 40.0, "box {b}");
    assert_eq!(found[0]["emotions"].as_array().unwrap().len(), 48);
    assert_eq!(top_emotion(&found[0]), "Joy", "the astronaut smiles");
    assert_eq!(predictions[1]["results"]["errors"], json!([]));
    assert!(faces(&predictions[1]["results"]["predictions"][0]).is_empty(), "no face, no prediction, no error");
}

#[tokio::test]
async fn a_video_gets_one_tracked_face_per_frame_at_fps_pred() {
    let app = spawn_local_app(|_| {}).await;
    // Two seconds of the photo as a 25 fps video.
    let dir = tempfile::tempdir().unwrap();
    let (photo, clip) = (dir.path().join("face.jpg"), dir.path().join("face.mp4"));
    std::fs::write(&photo, asset("astronaut.jpg")).unwrap();
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-loop", "1", "-i"])
        .arg(&photo)
        .args(["-t", "2", "-r", "25", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(status.success());
    let url = app.host_file("/face.mp4", std::fs::read(&clip).unwrap(), "video/mp4").await;
    let models = json!({"face": {"fps_pred": 2, "identify_faces": true}});
    let (job, predictions) = run_v0(&app, json!({"urls": [url], "models": models})).await;
    assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    let file = &predictions[0]["results"]["predictions"][0];
    let groups = file["models"]["face"]["grouped_predictions"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "one face tracked across frames: {groups:?}");
    assert_eq!(groups[0]["id"], "face_0");
    let times: Vec<f64> = faces(file).iter().map(|f| f["time"].as_f64().unwrap()).collect();
    assert_eq!(times.len(), 4, "2 s at fps_pred 2: {times:?}");
    for (i, t) in times.iter().enumerate() {
        assert!((t - i as f64 * 0.5).abs() < 0.05, "{times:?}");
    }
}

#[tokio::test]
async fn readiness_lists_the_loaded_models_and_ffmpeg() {
    let app = spawn_local_app(|_| {}).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let components = &body["components"];
    assert_eq!(components["language_model"], "loaded", "{body}");
    assert_eq!(components["runtime"], "onnxruntime 1.31.1", "installed by scripts/install-models.sh: {body}");
    assert_eq!(components["face_models"], "installed (CenterFace + mini-Xception, loaded on first use)", "{body}");
    assert_eq!(components["speech_models"], "loaded (whisper-base)", "{body}");
    assert!(components["ffmpeg"].as_str().is_some_and(|v| v.contains("ffmpeg version")), "{body}");
    assert_eq!(components["store"], "sqlite: ok", "{body}");
}

#[tokio::test]
async fn a_text_job_scores_the_same_on_onnxruntime_and_on_the_built_in_runtimes() {
    use hume_action::models::onnx::RuntimeChoice;
    let texts = ["I am furious about the delay. The refund finally came, though, and I'm relieved.", "ok"];
    let models = json!({"language": {"granularity": "sentence"}});
    let mut runs = Vec::new();
    for (choice, name) in
        [(RuntimeChoice::Onnxruntime, "onnxruntime 1.31.1"), (RuntimeChoice::Builtin, "built-in (candle, tract)")]
    {
        let app = spawn_local_app(|config| config.runtime = choice).await;
        let ready: Value = app.get("/readyz").await.json().await.unwrap();
        assert_eq!(ready["components"]["runtime"], name, "{ready}");
        let (job, predictions) = run_v0(&app, json!({"text": texts, "models": models})).await;
        assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
        let scores: Vec<(String, f64)> = predictions
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["results"]["predictions"].as_array().unwrap().clone())
            .flat_map(|file| {
                file["models"]["language"]["grouped_predictions"][0]["predictions"].as_array().unwrap().clone()
            })
            .flat_map(|segment| {
                let text = segment["text"].as_str().unwrap().to_owned();
                let emotions = segment["emotions"].as_array().unwrap().clone();
                emotions.into_iter().map(move |e| (format!("{text}: {}", e["name"]), e["score"].as_f64().unwrap()))
            })
            .collect();
        runs.push(scores);
    }
    assert_eq!(runs[0].len(), 3 * 53, "three sentences, 53 expressions each: {:?}", runs[0]);
    for ((name, a), (other, b)) in runs[0].iter().zip(&runs[1]) {
        assert_eq!(name, other);
        assert!((a - b).abs() <= 1e-3, "{name}: {a} on onnxruntime, {b} built in");
    }
}
