//! `GET /v1/jobs/{id}/summary`, the action's `wait_seconds` and the summary callbacks, on the real
//! app: text, audio, video and image jobs on `local`, a `hume` job against the fake v1, a
//! `hume-batch` job against a fake v0.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::fake_v1::FakeV1;
use crate::helpers::{spawn_batch_app, spawn_hume_app, spawn_local_app, status_and_json, summary_when_done, TestApp};
use crate::media_files::MEDIA;
use crate::slow_host::{Answer, SlowHost};

const ESCALATING: &str = "Hi, I'm calling about my order from last week. It was supposed to arrive on Monday. \
    I checked the tracking and it hasn't moved in four days. This is the third time this has happened and I'm getting really frustrated. \
    I am furious that nobody has called me back. I want a refund today, this is completely unacceptable.";
const CALM: &str = "Hi, I'd like to book a table for four on Saturday. Around seven in the evening would be great. \
    We'd prefer a table by the window if possible. Thank you so much, that sounds lovely.";

fn asset(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/face").join(name)).unwrap()
}

#[tokio::test]
async fn a_text_job_answers_with_a_headline_scores_and_an_escalation_a_builder_can_map() {
    let app = spawn_local_app(|_| {}).await;
    let language = json!({"language": {"granularity": "sentence"}});
    let id = app.start_v0(&json!({"text": [ESCALATING, CALM], "models": language})).await;
    let s = summary_when_done(&app, &id).await;
    assert_eq!((s["status"].as_str(), s["num_errors"].as_u64()), (Some("COMPLETED"), Some(0)), "{s}");
    assert_eq!(s["progress"], json!({"sources_total": 2, "sources_done": 2, "stage": "done"}));
    assert_eq!(s["scores"].as_object().unwrap().len(), 53, "every language name");
    assert_eq!(s["top_emotions"].as_array().unwrap().len(), 5);
    let top = s["top_emotions"][0]["score"].as_f64().unwrap();
    assert!(s["top_emotions"].as_array().unwrap().iter().all(|e| e["score"].as_f64().unwrap() <= top));
    assert_eq!(s["scores"][s["top_emotions"][0]["name"].as_str().unwrap()].as_f64(), Some(top));

    let (angry, calm) = (&s["files"][0], &s["files"][1]);
    assert_eq!((angry["file_type"].as_str(), angry["source"]["type"].as_str()), (Some("text"), Some("text")));
    let model = &angry["models"]["language"];
    assert_eq!((model["segments"].as_u64(), model["unit"].as_str()), (Some(6), Some("characters")));
    assert!(model["escalation"]["detected"].as_bool().unwrap(), "{model}");
    assert!(!calm["models"]["language"]["escalation"]["detected"].as_bool().unwrap());
    // The job's verdict is its strongest file's, and the headline tells it with the peak's words.
    assert_eq!(s["escalation"], angry["escalation"]);
    assert_eq!(s["escalation"]["peak"]["file"], "text");
    let peak_text = s["escalation"]["peak"]["text"].as_str().unwrap();
    assert!(ESCALATING.contains(peak_text));
    let headline = s["headline"].as_str().unwrap();
    assert!(headline.contains("rise") && headline.contains(peak_text), "{headline}");
    // Text has no clock: the peak has no time, the timeline counts characters.
    assert_eq!(
        (s["escalation"]["peak"]["time"].clone(), s["escalation"]["peak"]["at"].clone()),
        (Value::Null, Value::Null)
    );
    let timeline = model["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 6, "one window per sentence for a short text");
    assert!(timeline.windows(2).all(|w| w[0]["end"].as_f64() <= w[1]["begin"].as_f64()));
    assert!(model["peaks"].as_array().unwrap().iter().all(|p| ESCALATING.contains(p["text"].as_str().unwrap())));
    assert!(s.get("view_url").is_none(), "no public address configured");
}

#[tokio::test]
async fn an_audio_job_summarises_what_was_said_on_the_clock() {
    let app = spawn_local_app(|_| {}).await;
    let url = app.host_file("/call.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    let id = app.start_v0(&json!({"urls": [url], "models": {"language": {"granularity": "utterance"}}})).await;
    let s = summary_when_done(&app, &id).await;
    let file = &s["files"][0];
    assert_eq!((file["file"].as_str(), file["file_type"].as_str()), (Some("call.mp3"), Some("audio")), "{s}");
    let duration = file["duration_secs"].as_f64().unwrap();
    assert!((4.0..12.0).contains(&duration), "{duration}");
    let transcript = file["transcript"].as_str().unwrap().to_lowercase();
    assert!(transcript.contains("order") && transcript.contains("manager"), "{transcript}");
    let language = &file["models"]["language"];
    assert_eq!(language["unit"], "seconds");
    assert_eq!(language["window_secs"], 1.0, "a short file gets one-second windows");
    let timeline = language["timeline"].as_array().unwrap();
    assert!(!timeline.is_empty());
    for w in timeline {
        assert_eq!(w["end"].as_f64().unwrap() - w["begin"].as_f64().unwrap(), 1.0);
        assert!(w["end"].as_f64().unwrap() <= duration.ceil() + 1.0);
    }
    let words: String = timeline.iter().filter_map(|w| w["text"].as_str()).collect::<Vec<_>>().join(" ");
    assert!(words.to_lowercase().contains("manager"), "the windows carry the words said in them: {words}");
    assert!(s["escalation"]["peak"]["at"].as_str().is_some_and(|at| at.starts_with("0:")));
    // A window asked for is used.
    let (_, wide) = status_and_json(app.get(&format!("/v1/jobs/{id}/summary?window_secs=5")).await).await;
    assert_eq!(wide["files"][0]["models"]["language"]["window_secs"], 5.0);
    // timeline.csv in the artifacts: one row per window, with the words and the top expression.
    let zip = app.get(&format!("/v0/batch/jobs/{id}/artifacts")).await.bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec())).unwrap();
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("timeline.csv").unwrap(), &mut csv).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "source,file,unit,begin,end,text,language_escalation,language_score,language_top"
    );
    assert_eq!(csv.lines().count(), timeline.len() + 1, "{csv}");
}

#[tokio::test]
async fn faces_are_summarised_per_tracked_face_and_boxed_in_an_image_and_too_small_ones_are_explained() {
    let app = spawn_local_app(|_| {}).await;
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
    let video = app.host_file("/face.mp4", std::fs::read(&clip).unwrap(), "video/mp4").await;
    let image = app.host_file("/astronaut.jpg", asset("astronaut.jpg"), "image/jpeg").await;
    let small = app.host_file("/small.jpg", asset("astronaut_small.jpg"), "image/jpeg").await;
    let models = json!({"face": {"fps_pred": 2, "identify_faces": true, "min_face_size": 60}});
    let id = app.start_v0(&json!({"urls": [video, image, small], "models": models})).await;
    let s = summary_when_done(&app, &id).await;
    let (video, image, small) =
        (&s["files"][0]["models"]["face"], &s["files"][1]["models"]["face"], &s["files"][2]["models"]["face"]);
    let faces = video["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "{video}");
    assert_eq!((faces[0]["id"].as_str(), faces[0]["frames"].as_u64()), (Some("face_0"), Some(4)));
    assert_eq!(faces[0]["top_emotions"][0]["name"], "Joy", "the astronaut smiles");
    assert_eq!(faces[0]["timeline"].as_array().unwrap().len(), 4);
    assert_eq!(video["segments"], 4);
    let boxes = image["boxes"].as_array().unwrap();
    assert_eq!(boxes.len(), 1, "{image}");
    assert!(boxes[0]["box"]["w"].as_f64().unwrap() > 60.0);
    assert_eq!(boxes[0]["top"]["name"], "Joy");
    // A face under min_face_size: nothing measured, and the note says why and what to change.
    assert_eq!(small["segments"], 0, "{small}");
    let note = small["note"].as_str().unwrap();
    assert!(note.contains("min_face_size") && note.contains("smaller"), "{note}");
}

#[tokio::test]
async fn a_hume_job_summarises_prosody_from_v1() {
    let v1 = FakeV1::start(&["test-key"]).await;
    let app = spawn_hume_app(&v1.uri(), |_| {}).await;
    let url = app.host_file("/call.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    let id = app.start_v0(&json!({"urls": [url], "models": {"prosody": {}}})).await;
    let s = summary_when_done(&app, &id).await;
    let prosody = &s["files"][0]["models"]["prosody"];
    assert!(prosody["segments"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(prosody["unit"], "seconds");
    assert_eq!(s["scores"].as_object().unwrap().len(), 48, "prosody carries v0's 48 names");
    // The fake scores Interest highest in every window (`tests/api/fake_v1.rs`).
    assert_eq!(s["top_emotions"][0]["name"], "Interest");
    assert!(s["files"][0]["models"].get("language").is_none(), "a model that did not run is absent");
}

#[tokio::test]
async fn a_hume_batch_job_is_summarised_from_the_upstream_predictions_per_speaker() {
    let app = spawn_batch_app(|_| {}).await;
    let job = json!({"type": "INFERENCE", "job_id": "up-1", "request": {"urls": ["https://a.test/call.mp3"]},
        "state": {"status": "COMPLETED", "created_timestamp_ms": 1, "started_timestamp_ms": 2, "ended_timestamp_ms": 3, "num_predictions": 1, "num_errors": 0}});
    let utterance = |speaker: &str, begin: f64, anger: f64| {
        json!({"speaker": speaker, "p": {"text": "words", "position": {"begin": 0, "end": 5}, "time": {"begin": begin, "end": begin + 5.0},
            "confidence": 0.9, "speaker_confidence": 0.8, "sentiment": null, "toxicity": null,
            "emotions": [{"name": "Anger", "score": anger}, {"name": "Calmness", "score": 1.0 - anger}]}})
    };
    let lines = [
        utterance("spk_0", 0.0, 0.05),
        utterance("spk_1", 5.0, 0.1),
        utterance("spk_0", 10.0, 0.1),
        utterance("spk_1", 15.0, 0.9),
        utterance("spk_0", 20.0, 0.1),
        utterance("spk_1", 25.0, 0.95),
    ];
    let group = |id: &str| json!({"id": id, "predictions": lines.iter().filter(|l| l["speaker"] == id).map(|l| l["p"].clone()).collect::<Vec<_>>()});
    let predictions = json!([{"source": {"type": "url", "url": "https://a.test/call.mp3"}, "results": {"errors": [], "predictions": [
        {"file": "call.mp3", "file_type": "audio", "models": {"language": {"metadata": null, "grouped_predictions": [group("spk_0"), group("spk_1")]},
         "ner": {"metadata": null, "grouped_predictions": []}}}]}}]);
    Mock::given(method("GET"))
        .and(path("/v0/batch/jobs/up-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(job))
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET"))
        .and(path("/v0/batch/jobs/up-1/predictions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(predictions))
        .mount(&app.upstream)
        .await;
    let (status, s) = status_and_json(app.get("/v1/jobs/up-1/summary").await).await;
    assert_eq!((status, s["status"].as_str()), (200, Some("COMPLETED")), "{s}");
    let language = &s["files"][0]["models"]["language"];
    let speakers = language["speakers"].as_array().unwrap();
    let ids: Vec<&str> = speakers.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["spk_0", "spk_1"]);
    assert!(speakers[1]["escalation"]["detected"].as_bool().unwrap(), "the second speaker escalates: {language}");
    assert!(!speakers[0]["escalation"]["detected"].as_bool().unwrap(), "the first stays calm");
    assert_eq!(speakers[1]["top_emotions"][0]["name"], "Anger");
    assert_eq!(s["escalation"]["peak"]["at"], "0:25");
}

#[tokio::test]
async fn wait_holds_until_the_job_ends_or_the_time_is_up_and_the_action_waits_too() {
    let host = SlowHost::start(Answer::Held { body: "I am furious. This is outrageous." }).await;
    let app = spawn_local_app(|_| {}).await;
    let url = host.url("/held.txt");
    let id = app.start_v0(&json!({"urls": [&url], "models": {"language": {}}})).await;
    host.wait_for_requests(1).await;
    // Not ended: the answer comes when the wait is up, with what is known.
    let started = Instant::now();
    let (_, s) = status_and_json(app.get(&format!("/v1/jobs/{id}/summary?wait=1")).await).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "held for the wait");
    assert_eq!((s["done"].as_bool(), s["status"].as_str()), (Some(false), Some("IN_PROGRESS")), "{s}");
    assert_eq!(s["progress"], json!({"sources_total": 1, "sources_done": 0, "stage": "downloading"}));
    assert!(s["headline"].as_str().unwrap().starts_with("In progress (downloading)"), "{s}");
    // The action's wait_seconds answers the status when the job has not ended.
    let (status, answer) = status_and_json(
        app.start(&json!({"urls": [&url], "models_language": "Yes", "models_prosody": "No", "wait_seconds": "1"}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer.as_object().unwrap().keys().collect::<Vec<_>>(), ["job_id", "status"], "{answer}");
    assert_eq!(answer["status"], "IN_PROGRESS");
    // A long wait ends as soon as the job does.
    let waiting = {
        let (client, url) = (app.client.clone(), format!("{}/v1/jobs/{id}/summary?wait=25", app.address));
        tokio::spawn(async move { client.get(url).send().await.unwrap().json::<Value>().await.unwrap() })
    };
    host.release();
    let s = tokio::time::timeout(Duration::from_secs(20), waiting).await.expect("released before its wait").unwrap();
    assert_eq!((s["done"].as_bool(), s["status"].as_str()), (Some(true), Some("COMPLETED")), "{s}");
    // And the action's wait answers the summary of a job that ends within it.
    let (_, answer) = status_and_json(
        app.start(&json!({"urls": [host.url("/next.txt")], "models_language": "Yes", "models_prosody": "No", "wait_seconds": 20}))
            .await,
    )
    .await;
    assert_eq!(
        (answer["status"].as_str(), answer["summary"]["status"].as_str()),
        (Some("COMPLETED"), Some("COMPLETED")),
        "{answer}"
    );
    assert_eq!(answer["summary"]["job_id"], answer["job_id"]);
    assert!(answer["summary"]["headline"].as_str().is_some());
}

#[tokio::test]
async fn wait_and_window_are_checked_and_another_callers_job_is_not_found() {
    let app = spawn_local_app(|_| {}).await;
    let id = app.start_v0(&json!({"text": ["Thanks!"], "models": {"language": {}}})).await;
    for (query, field) in [("wait=soon", "wait"), ("wait=-2", "wait"), ("window_secs=0", "window_secs")] {
        let (status, body) = status_and_json(app.get(&format!("/v1/jobs/{id}/summary?{query}")).await).await;
        assert_eq!((status, body["error"]["field"].as_str()), (422, Some(field)), "{query}: {body}");
    }
    let (status, body) =
        status_and_json(app.get_as(Some("another-key"), &format!("/v1/jobs/{id}/summary")).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, body) = status_and_json(
        app.start(&json!({"urls": "https://a.test/x", "callback_body": "Everything", "wait_seconds": 1})).await,
    )
    .await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("callback_body")), "{body}");
    let (status, body) =
        status_and_json(app.start(&json!({"urls": "https://a.test/x", "wait_seconds": "later"})).await).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("wait_seconds")), "{body}");
}

#[tokio::test]
async fn a_source_error_is_listed_with_its_file_beside_what_was_measured() {
    let app = spawn_local_app(|_| {}).await;
    let good = app.host_file("/notes.txt", ESCALATING.as_bytes().to_vec(), "text/plain").await;
    let missing = format!("{}/gone.mp3", app.upstream.uri());
    let id = app.start_v0(&json!({"urls": [good, missing], "models": {"language": {"granularity": "sentence"}}})).await;
    let s = summary_when_done(&app, &id).await;
    assert_eq!((s["status"].as_str(), s["num_errors"].as_u64()), (Some("COMPLETED"), Some(1)), "{s}");
    assert_eq!(s["errors"][0]["file"], "gone.mp3");
    assert_eq!(s["files"].as_array().unwrap().len(), 1, "only the measured file");
    assert!(s["escalation"]["detected"].as_bool().unwrap());
}

/// The callbacks the fake host received, once there are `n`.
async fn callbacks(app: &TestApp, n: usize) -> Vec<Value> {
    for _ in 0..600 {
        let posts: Vec<Value> = app
            .upstream
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST")
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect();
        if posts.len() >= n {
            return posts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} callbacks were not delivered");
}

#[tokio::test]
async fn callbacks_carry_the_summary_by_default_from_the_action_and_fall_back_to_it_when_predictions_are_too_large() {
    let app = spawn_local_app(|c| {
        c.callback_max_bytes = 5_000;
        c.public_url = Some("https://actions.example.com/".parse().unwrap());
    })
    .await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(200)).mount(&app.upstream).await;
    let hook = format!("{}/hook", app.upstream.uri());
    let text = app.host_file("/notes.txt", ESCALATING.as_bytes().to_vec(), "text/plain").await;
    // The action's default: the summary.
    let body = json!({"urls": [&text], "models_language": "Yes", "models_prosody": "No", "callback_url": &hook});
    let (_, started) = status_and_json(app.start(&body).await).await;
    let first = &callbacks(&app, 1).await[0];
    assert_eq!(first.as_object().unwrap().keys().collect::<Vec<_>>(), ["job_id", "status", "summary"], "{first}");
    assert_eq!((first["job_id"].clone(), first["status"].as_str()), (started["job_id"].clone(), Some("COMPLETED")));
    assert!(first["summary"]["escalation"]["detected"].as_bool().unwrap());
    assert_eq!(
        first["summary"]["view_url"],
        format!("https://actions.example.com/?job={}", started["job_id"].as_str().unwrap())
    );
    // Predictions asked for, small: v0's body.
    let small = json!({"urls": [&text], "models_language": "Yes", "models_prosody": "No", "callback_url": &hook, "callback_body": "predictions"});
    let short = json!({"text": ["Fine."], "models": {"language": {"granularity": "conversational_turn"}}, "callback_url": &hook});
    let id = app.start_v0(&short).await;
    let second = callbacks(&app, 2).await.into_iter().find(|c| c["job_id"] == id.as_str()).unwrap();
    assert_eq!(second["predictions"], app.predictions(&id).await, "a small v0 body goes whole");
    // Predictions over HUME_ACTION_CALLBACK_MAX_BYTES: the summary with a link to them instead.
    let (_, started) = status_and_json(app.start(&small).await).await;
    let third = callbacks(&app, 3).await.into_iter().find(|c| c["job_id"] == started["job_id"]).unwrap();
    assert!(third.get("predictions").is_none(), "{third}");
    let url = format!("https://actions.example.com/v0/batch/jobs/{}/predictions", started["job_id"].as_str().unwrap());
    assert_eq!(third["predictions_url"], url);
    assert!(third["predictions_omitted"].as_str().unwrap().contains("HUME_ACTION_CALLBACK_MAX_BYTES"));
    assert_eq!(third["summary"]["status"], "COMPLETED");
}

/// Whether `sample` has `real`'s shape: every key of an object is there with a value of the same
/// JSON type (`null` matches anything), and arrays hold items of the same shape.
fn same_shape(sample: &Value, real: &Value, at: &str) -> Result<(), String> {
    match (sample, real) {
        (Value::Null, _) | (_, Value::Null) => Ok(()),
        (Value::Object(s), Value::Object(r)) => s.iter().try_for_each(|(k, v)| match r.get(k) {
            Some(real) => same_shape(v, real, &format!("{at}.{k}")),
            // Maps by name (scores, models) hold what ran; their values share one shape.
            None if k.chars().next().is_some_and(char::is_uppercase) || at.ends_with("models") => Ok(()),
            None => Err(format!("{at}.{k} is not in the real answer")),
        }),
        (Value::Array(s), Value::Array(r)) => match (s.first(), r.first()) {
            (Some(s), Some(r)) => same_shape(s, r, &format!("{at}[0]")),
            _ => Ok(()),
        },
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(()),
        (s, r) => Err(format!("{at}: the sample has {s}, the route {r}")),
    }
}

/// The value at a manifest mapping path such as `top_emotions[0].name` or `scores.Anger`.
fn at_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |v, part| match part.split_once('[') {
        Some((key, index)) => v.get(key)?.get(index.trim_end_matches(']').parse::<usize>().ok()?),
        None => v.get(part),
    })
}

#[tokio::test]
async fn the_manifest_s_summary_sample_and_mapping_paths_match_what_the_route_returns() {
    let manifest: Value = serde_json::from_str(include_str!("../../action-manifest.json")).unwrap();
    let action = manifest["actions"].as_array().unwrap().iter().find(|a| a["key"] == "get-job-summary").unwrap();
    assert_eq!(action["path"], "/v1/jobs/{id}/summary");
    let app = spawn_local_app(|_| {}).await;
    let url = app.host_file("/call.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    let body = json!({"urls": [url], "models_language": "Yes", "models_prosody": "No", "wait_seconds": 25});
    let (_, started) = status_and_json(app.start(&body).await).await;
    let real = summary_when_done(&app, started["job_id"].as_str().unwrap()).await;
    same_shape(&action["sample_output"], &real, "").unwrap();
    for field in action["output_fields"].as_array().unwrap() {
        let path = field["key"].as_str().unwrap();
        assert!(at_path(&real, path).is_some(), "{path} is not in the route's answer: {real}");
    }
    // The action's language model runs per utterance, as the manifest says.
    let start = &manifest["actions"][0];
    assert_eq!(start["language_granularity"], "utterance");
    let job: Value =
        app.get(&format!("/v0/batch/jobs/{}", started["job_id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(job["request"]["models"]["language"]["granularity"], "utterance");
}

#[tokio::test]
async fn the_summary_callback_reaches_resume_urls_as_the_platforms_hand_them_out() {
    let app = spawn_local_app(|_| {}).await;
    // The shapes of the resume URLs of n8n (Wait node, signed), Pipedream, Activepieces, Tiny
    // Command and Zapier's catch hooks: a path of their own and, for some, a query string.
    let resume_paths = [
        ("/webhook-waiting/4711", Some("signature=abc123")),
        ("/resume/ex_9f2", Some("token=t0k")),
        ("/v1/flow-runs/run1/requests/req1", None),
        ("/wait-for-webhook/step-7", None),
        ("/hooks/catch/123/abc/", None),
    ];
    for (resume, _) in resume_paths {
        Mock::given(method("POST"))
            .and(path(resume))
            .respond_with(ResponseTemplate::new(200))
            .mount(&app.upstream)
            .await;
    }
    let text = app.host_file("/notes.txt", CALM.as_bytes().to_vec(), "text/plain").await;
    for (resume, query) in resume_paths {
        let url = format!("{}{resume}{}", app.upstream.uri(), query.map(|q| format!("?{q}")).unwrap_or_default());
        let body = json!({"urls": [&text], "models_language": "Yes", "models_prosody": "No", "callback_url": url});
        assert_eq!(app.start(&body).await.status(), 200);
    }
    callbacks(&app, resume_paths.len()).await;
    let posts: Vec<_> =
        app.upstream.received_requests().await.unwrap().into_iter().filter(|r| r.method.as_str() == "POST").collect();
    for (resume, query) in resume_paths {
        let arrived: Vec<_> = posts.iter().filter(|r| r.url.path() == resume).collect();
        assert_eq!(arrived.len(), 1, "one callback to {resume}");
        assert_eq!(arrived[0].url.query(), query, "the query string is kept as given");
        assert_eq!(arrived[0].headers["content-type"], "application/json");
        let body: Value = serde_json::from_slice(&arrived[0].body).unwrap();
        assert_eq!(body["summary"]["status"], "COMPLETED", "{body}");
        assert!(arrived[0].body.len() < 1_000_000);
    }
}

#[tokio::test]
async fn on_local_the_prosody_error_says_the_words_are_scored_only_when_they_are() {
    let app = spawn_local_app(|_| {}).await;
    let url = app.host_file("/call.mp3", MEDIA.bytes("speech.mp3"), "audio/mpeg").await;
    let prosody_error = |s: &Value| {
        s["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .find(|m| m.contains("prosody model"))
    };
    // The seed's default action: prosody only. The words are scored by the language model in its
    // place (as what they are), the voice is measured, and the error says both.
    let (_, answer) = status_and_json(app.start(&json!({"urls": [&url], "wait_seconds": 25})).await).await;
    let alone = summary_when_done(&app, answer["job_id"].as_str().unwrap()).await;
    let message = prosody_error(&alone).expect("prosody cannot run on local");
    assert!(message.contains("scored by the language model") && message.contains("not of the voice"), "{message}");
    assert_eq!(alone["status"], "COMPLETED", "{alone}");
    assert!(alone["files"][0]["models"]["language"]["segments"].as_u64().unwrap() > 0);
    // With transcription off, nothing scores the words, and the error does not say otherwise.
    let id = app.start_v0(&json!({"urls": [&url], "models": {"prosody": {}}, "transcription": null})).await;
    let off = summary_when_done(&app, &id).await;
    let message = prosody_error(&off).expect("prosody cannot run on local");
    assert!(!message.contains("language model"), "{message}");
    assert_eq!(off["status"], "FAILED", "{off}");
    // With language as well, the words are scored, and the error says where to find them.
    let body = json!({"urls": [&url], "models_language": "Yes", "wait_seconds": 25});
    let (_, answer) = status_and_json(app.start(&body).await).await;
    let both = summary_when_done(&app, answer["job_id"].as_str().unwrap()).await;
    let message = prosody_error(&both).unwrap();
    assert!(message.contains("scored by the language model"), "{message}");
    assert!(both["files"][0]["models"]["language"]["segments"].as_u64().unwrap() > 0);
}
