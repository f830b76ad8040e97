//! Bounded by design: every dimension of work has a limit, decided at intake where it can be
//! (413 or 422 naming the limit, the value seen and the setting) and as a per-source error where
//! it is found later; body caps; paged lists; callbacks vetted at intake; jobs that belong to
//! their caller; secrets scrubbed from what upstream says.

use std::io::Write;

use base64::Engine as _;
use clap::CommandFactory;
use hume_action::budget::Limit;
use hume_action::config::Config;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{captured_logs, spawn_batch_app, spawn_local_app, status_and_json, TestApp};
use crate::media_files::MEDIA;

async fn post_v0(app: &TestApp, body: &Value) -> (u16, Value) {
    status_and_json(app.client.post(format!("{}/v0/batch/jobs", app.address)).json(body).send().await.unwrap()).await
}

/// Checks an answer is `status` with `code`, and names the limit's setting, its value and what
/// was seen, in the message and in `error.limit`.
fn assert_over(answer: &(u16, Value), status: u16, code: &str, setting: &str, max: u64, seen: u64) {
    let (got, body) = answer;
    let error = &body["error"];
    assert_eq!((*got, error["code"].as_str()), (status, Some(code)), "{body}");
    let limit = &error["limit"];
    assert_eq!(
        (limit["setting"].as_str(), limit["max"].as_u64(), limit["seen"].as_u64()),
        (Some(setting), Some(max), Some(seen)),
        "{body}"
    );
    let message = error["message"].as_str().unwrap();
    for part in [setting.to_owned(), max.to_string(), seen.to_string()] {
        assert!(message.contains(&part), "{part} not in {message}");
    }
}

#[tokio::test]
async fn limits_known_at_intake_are_413_or_422_naming_the_limit_the_value_and_the_setting() {
    let app = spawn_local_app(|c| {
        c.max_text_bytes = 64;
        c.max_job_text_bytes = 100;
        c.max_job_segments = 5;
        c.max_job_sources = 3;
    })
    .await;
    let face = json!({"face": {}});
    let answer = post_v0(&app, &json!({"text": ["x".repeat(100)], "models": face})).await;
    assert_over(&answer, 413, "text_too_large", "HUME_ACTION_MAX_TEXT_BYTES", 64, 100);
    assert_eq!(answer.1["error"]["field"], "text[0]");
    let answer =
        post_v0(&app, &json!({"text": ["y".repeat(40), "y".repeat(40), "y".repeat(40)], "models": face})).await;
    assert_over(&answer, 413, "job_text_too_large", "HUME_ACTION_MAX_JOB_TEXT_BYTES", 100, 120);
    // Segments are counted at the requested granularity, by the model's own segmentation.
    let words = json!({"text": ["One two three. Four five six."], "models": {"language": {"granularity": "word"}}});
    assert_over(&post_v0(&app, &words).await, 422, "too_many_segments", "HUME_ACTION_MAX_JOB_SEGMENTS", 5, 6);
    let sentences =
        json!({"text": ["One two three. Four five six."], "models": {"language": {"granularity": "sentence"}}});
    assert_eq!(post_v0(&app, &sentences).await.0, 200);
    // Sources: URLs, text items and files together, on the v0 route and the action alike.
    let urls: Vec<String> = (0..3).map(|i| format!("https://a.test/{i}.mp3")).collect();
    let answer = post_v0(&app, &json!({"urls": urls, "text": ["hi"], "models": face})).await;
    assert_over(&answer, 422, "too_many_sources", "HUME_ACTION_MAX_JOB_SOURCES", 3, 4);
    let (urls, more) = (urls.join(","), "https://a.test/3.mp3");
    let answer = status_and_json(app.start(&json!({"urls": format!("{urls},{more}")})).await).await;
    assert_over(&answer, 422, "too_many_sources", "HUME_ACTION_MAX_JOB_SOURCES", 3, 4);
    assert_eq!(answer.1["error"]["field"], "urls");
}

#[tokio::test]
async fn json_bodies_are_capped_on_the_batch_route_and_multipart_by_the_upload_cap() {
    let app = spawn_local_app(|c| {
        c.max_body_bytes = 4 * 1024;
        c.max_upload_bytes = 64 * 1024;
    })
    .await;
    // A JSON body on POST /v0/batch/jobs is held to the JSON cap, not to the route's upload cap.
    let big = json!({"text": ["z".repeat(8 * 1024)], "models": {"face": {}}}).to_string();
    let seen = big.len() as u64;
    let send_json = |body: reqwest::Body| {
        app.client.post(format!("{}/v0/batch/jobs", app.address)).header("content-type", "application/json").body(body)
    };
    let answer = status_and_json(send_json(big.clone().into()).send().await.unwrap()).await;
    assert_over(&answer, 413, "body_too_large", "HUME_ACTION_MAX_BODY_BYTES", 4 * 1024, seen);
    // Sent without a length, it is cut off while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.into_bytes().chunks(1024).map(|c| Ok(c.to_vec())).collect();
    let chunked = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let (status, body) = status_and_json(send_json(chunked).send().await.unwrap()).await;
    let error = &body["error"];
    assert_eq!(
        (status, error["code"].as_str(), error["limit"]["at_least"].as_bool()),
        (413, Some("body_too_large"), Some(true)),
        "{body}"
    );
    // Multipart is held to the upload cap: a part larger than the JSON cap passes...
    let upload = |bytes: Vec<u8>| {
        let file = reqwest::multipart::Part::bytes(bytes).file_name("notes.txt").mime_str("text/plain").unwrap();
        let form = reqwest::multipart::Form::new()
            .text("json", json!({"models": {"face": {}}}).to_string())
            .part("file", file);
        app.client.post(format!("{}/v0/batch/jobs", app.address)).multipart(form).send()
    };
    let fits = "word ".repeat(2 * 1024).into_bytes();
    assert_eq!(status_and_json(upload(fits).await.unwrap()).await.0, 200);
    // ...and one over the upload cap is refused, naming it.
    let (status, body) = status_and_json(upload(vec![b'a'; 100 * 1024]).await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("upload_too_large")), "{body}");
    assert_eq!(body["error"]["limit"]["setting"], "HUME_ACTION_MAX_UPLOAD_BYTES", "{body}");
}

#[tokio::test]
async fn lists_are_capped_paged_and_show_a_bounded_preview_of_each_request() {
    let app = spawn_local_app(|_| {}).await;
    // Four jobs of 800 KB of text each: listed whole, they would be 3.2 MB.
    let text = "Long text. ".repeat(200 * 1024 / 11);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(app.start_v0(&json!({"text": [text, text, text, text], "models": {"face": {}}})).await);
    }
    let response = app.get("/v0/batch/jobs").await;
    assert!(response.headers().get("link").is_none(), "everything fits one page");
    let body = response.text().await.unwrap();
    assert!(body.len() < 32 * 1024, "the list of 4 large jobs is {} bytes", body.len());
    let jobs: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(jobs.len(), 4);
    let shown = jobs[0]["request"]["text"][0].as_str().unwrap();
    assert!(shown.ends_with('…') && shown.chars().count() <= 200, "{shown}");
    assert_eq!(jobs[0]["request"]["text"].as_array().unwrap().len(), 4, "v0's shape is kept");

    // Pages of two, newest first, linked by `Link: <...>; rel="next"`.
    let mut seen = Vec::new();
    let mut next = Some("/v0/batch/jobs?limit=2".to_owned());
    while let Some(path) = next.take() {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200);
        next = response.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            assert!(l.ends_with("; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_owned()
        });
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|j| j["job_id"].as_str().unwrap().to_owned()));
        assert!(seen.len() <= 4, "paging ends");
    }
    let unpaged: Vec<&str> = jobs.iter().map(|j| j["job_id"].as_str().unwrap()).collect();
    assert_eq!(seen, unpaged, "every job once, in the list's order");
    ids.sort();
    seen.sort();
    assert_eq!(seen, ids);
    // A limit over the cap is lowered, not refused (v0 clients may ask for more).
    let (status, all) = status_and_json(app.get("/v0/batch/jobs?limit=5000").await).await;
    assert_eq!((status, all.as_array().map(Vec::len)), (200, Some(4)));
    let (status, body) = status_and_json(app.get("/v0/batch/jobs?page_token=nonsense").await).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("page_token")));
}

#[tokio::test]
async fn a_callback_url_the_download_rules_refuse_is_a_422_naming_the_field_on_both_routes() {
    let app = spawn_local_app(|c| c.allow_private_urls = false).await;
    for callback in
        ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://localhost:8080/hook", "ftp://a.test/x"]
    {
        let action = app.start(&json!({"urls": "https://a.test/x.mp3", "callback_url": callback})).await;
        let v0 = post_v0(&app, &json!({"urls": ["https://a.test/x.mp3"], "callback_url": callback})).await;
        for (status, body) in [status_and_json(action).await, v0] {
            assert_eq!(status, 422, "{callback}: {body}");
            assert_eq!(body["error"]["field"], "callback_url", "{callback}: {body}");
            assert!(
                ["callback_url_refused", "invalid_url"].contains(&body["error"]["code"].as_str().unwrap()),
                "{body}"
            );
        }
    }
    let (_, body) =
        post_v0(&app, &json!({"urls": ["https://a.test/x.mp3"], "callback_url": "http://127.0.0.1:9/hook"})).await;
    assert_eq!(body["error"]["code"], "callback_url_refused");
    assert!(body["error"]["message"].as_str().unwrap().contains("HUME_ACTION_ALLOW_PRIVATE_URLS"), "{body}");
}

#[tokio::test]
async fn a_caller_never_sees_another_callers_job() {
    let app = spawn_local_app(|_| {}).await;
    let (alice, bob) = (Some("alice-key-0123456789"), Some("bob-key-9876543210"));
    let start = |key: &'static str, idempotency: &'static str| {
        let body =
            json!({"text": ["Thank you, this was wonderful."], "models": {"language": {"granularity": "sentence"}}});
        let request = app.client.post(format!("{}/v0/batch/jobs", app.address)).header("X-Hume-Api-Key", key);
        request.header("Idempotency-Key", idempotency).json(&body).send()
    };
    let (status, answer) = status_and_json(start(alice.unwrap(), "run-1").await.unwrap()).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["job_id"].as_str().unwrap().to_owned();
    let job = app.wait_for_job_as(alice, &id, &["COMPLETED"]).await;
    assert_eq!(job["job_id"], id.as_str());
    for path in ["", "/predictions", "/artifacts"] {
        assert_eq!(app.get_as(alice, &format!("/v0/batch/jobs/{id}{path}")).await.status(), 200, "{path}");
        for other in [bob, None] {
            let (status, body) = status_and_json(app.get_as(other, &format!("/v0/batch/jobs/{id}{path}")).await).await;
            assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{other:?} {path}");
        }
    }
    let listed = |key: Option<&'static str>| {
        let app = &app;
        async move { app.get_as(key, "/v0/batch/jobs").await.json::<Vec<Value>>().await.unwrap() }
    };
    assert_eq!(listed(alice).await.len(), 1);
    assert!(listed(bob).await.is_empty() && listed(None).await.is_empty());
    // Idempotency keys are the caller's too: Bob's "run-1" starts Bob's own job.
    let (_, bobs) = status_and_json(start(bob.unwrap(), "run-1").await.unwrap()).await;
    assert_ne!(bobs["job_id"].as_str(), Some(id.as_str()));
    assert_eq!(app.get_as(bob, &format!("/v0/batch/jobs/{}", bobs["job_id"].as_str().unwrap())).await.status(), 200);
}

/// A zip of text files, each named `n.txt`.
fn zip_of_texts(texts: &[&str]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (i, text) in texts.iter().enumerate() {
        zip.start_file(format!("{i}.txt"), zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn assert_completed_with_one_error(job: &Value) {
    let state = &job["state"];
    assert_eq!((state["status"].as_str(), state["num_errors"].as_i64()), (Some("COMPLETED"), Some(1)), "{job}");
}

/// The errors of a job's predictions, as `(file, message)`.
fn errors(predictions: &Value) -> Vec<(String, String)> {
    let all = predictions.as_array().unwrap().iter().flat_map(|s| s["results"]["errors"].as_array().unwrap().clone());
    all.map(|e| (e["file"].as_str().unwrap().to_owned(), e["message"].as_str().unwrap().to_owned())).collect()
}

#[tokio::test]
async fn limits_found_while_a_job_runs_are_per_source_errors_and_the_other_sources_complete() {
    let app = spawn_local_app(|c| {
        c.max_job_sources = 3;
        c.max_source_media_secs = 60;
        c.max_job_frames = 4;
    })
    .await;
    let language = json!({"language": {"granularity": "sentence"}});
    // An archive whose members take the job past its sources: the first members are measured.
    let form = reqwest::multipart::Form::new()
        .text("json", json!({"text": ["I love this."], "models": language}).to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(zip_of_texts(&["Great.", "Fine.", "Awful."])).file_name("notes.zip"),
        );
    let response = app.client.post(format!("{}/v0/batch/jobs", app.address)).multipart(form).send().await.unwrap();
    let (status, answer) = status_and_json(response).await;
    assert_eq!(status, 200, "{answer}");
    let archive_job = answer["job_id"].as_str().unwrap().to_owned();
    // Speech longer than a source may be (14 minutes), found by the probe.
    let speech = app.host_file("/long.mp3", MEDIA.bytes("long.mp3"), "audio/mpeg").await;
    let media_job = app.start_v0(&json!({"urls": [speech], "text": ["Thanks a lot!"], "models": language})).await;
    // More frames than the job may have measured.
    let video = app.host_file("/talk.mp4", MEDIA.bytes("talk.mp4"), "video/mp4").await;
    let frames_job = app.start_v0(&json!({"urls": [video], "models": {"face": {"fps_pred": 3}}})).await;

    let job = app.wait_for_job(&archive_job, &["COMPLETED", "FAILED"]).await;
    assert_completed_with_one_error(&job);
    let predictions = app.predictions(&archive_job).await;
    let files: Vec<&str> = predictions
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["results"]["predictions"].as_array().unwrap())
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["text", "0.txt", "1.txt"], "the text and the members that fit are measured");
    let errors_seen = errors(&predictions);
    let (file, message) = &errors_seen[0];
    assert_eq!(file, "notes.zip");
    for part in ["too_many_sources", "HUME_ACTION_MAX_JOB_SOURCES", "is 3 sources", "4 sources", "2.txt"] {
        assert!(message.contains(part), "{part} not in {message}");
    }

    let job = app.wait_for_job(&media_job, &["COMPLETED", "FAILED"]).await;
    assert_completed_with_one_error(&job);
    let predictions = app.predictions(&media_job).await;
    assert_eq!(predictions[1]["results"]["predictions"][0]["file"], "text");
    let (file, message) = &errors(&predictions)[0];
    assert_eq!(file, "long.mp3");
    for part in ["media_too_long", "HUME_ACTION_MAX_SOURCE_MEDIA_SECS", "is 60 seconds", "seconds were seen"] {
        assert!(message.contains(part), "{part} not in {message}");
    }

    let job = app.wait_for_job(&frames_job, &["COMPLETED", "FAILED"]).await;
    let predictions = app.predictions(&frames_job).await;
    let (file, message) = &errors(&predictions)[0];
    assert_eq!(file, "talk.mp4", "{job}");
    for part in ["too_many_frames", "HUME_ACTION_MAX_JOB_FRAMES", "Only the first 4 frames", "is 4 frames"] {
        assert!(message.contains(part), "{part} not in {message}");
    }
}

#[tokio::test]
async fn a_transformed_key_is_scrubbed_from_an_upstream_message() {
    const KEY: &str = "hk-Caller/Key+Secret=quxwaldofred";
    let app = spawn_batch_app(|_| {}).await;
    let percent = "hk-Caller%2FKey%2BSecret%3Dquxwaldofred";
    let base64 = base64::engine::general_purpose::STANDARD.encode(KEY);
    let transforms = [KEY.to_uppercase(), percent.to_owned(), percent.to_lowercase(), base64, KEY[..10].to_owned()];
    let echoed = transforms.join(" | ");
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"message": format!("bad credentials: {echoed}")})),
        )
        .mount(&app.upstream)
        .await;
    let response = app
        .client
        .post(format!("{}/v0/batch/jobs", app.address))
        .header("X-Hume-Api-Key", KEY)
        .json(&json!({"urls": ["https://a.test/x.mp3"]}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("upstream_rejected")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Hume rejected the request (400): bad credentials: [redacted]"), "{message}");
    let logs = captured_logs();
    for transform in &transforms {
        for window in transform.as_bytes().windows(8).map(|w| std::str::from_utf8(w).unwrap()) {
            assert!(!body.to_string().contains(window), "{window} of {transform} reached the caller: {message}");
            assert!(!logs.contains(window), "{window} of {transform} reached the log");
        }
    }
}

#[test]
fn every_limit_is_in_help_the_configuration_table_and_the_manifest() {
    let help = Config::command().render_long_help().to_string();
    let readme = include_str!("../../docs/operations.md");
    let manifest: Value = serde_json::from_str(include_str!("../../action-manifest.json")).unwrap();
    let codes: Vec<&str> = manifest["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    for limit in Limit::ALL {
        assert!(help.contains(limit.setting()), "{} not in --help", limit.setting());
        assert!(
            readme.contains(&format!("| `{}` |", limit.setting())),
            "{} not in the configuration table (docs/operations.md)",
            limit.setting()
        );
        assert!(codes.contains(&limit.code().as_str()), "{} not in the manifest", limit.code());
    }
}

/// The configuration table of `docs/operations.md` and `--help` name the same variables.
#[test]
fn the_configuration_table_lists_every_setting_of_help_and_nothing_else() {
    let command = Config::command();
    let mut in_help: Vec<String> =
        command.get_arguments().filter_map(|a| a.get_env().map(|env| env.to_string_lossy().into_owned())).collect();
    let table = include_str!("../../docs/operations.md");
    // The first cell of each row, which may name several variables: `A`, `B`.
    let mut in_table: Vec<String> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split_once(" |").map(|(cell, _)| format!("`{cell}")))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>())
        .filter(|name| name.starts_with("HUME_") || name.starts_with("RUST_"))
        .collect();
    in_help.sort();
    in_table.sort();
    in_table.dedup();
    let missing: Vec<_> = in_help.iter().filter(|v| !in_table.contains(v)).collect();
    let unknown: Vec<_> = in_table.iter().filter(|v| !in_help.contains(v)).collect();
    assert!(missing.is_empty(), "settings of --help missing from docs/operations.md: {missing:?}");
    assert!(unknown.is_empty(), "rows of docs/operations.md that --help does not know: {unknown:?}");
}
