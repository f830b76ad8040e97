//! The local engine end to end: durable jobs, v0 intake and reads, language predictions,
//! per-source errors, filters, artifacts, callbacks.

use std::io::Read;

use md5::Digest;

use serde_json::{json, Value};
use wiremock::matchers::{header_exists, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{spawn_local_app, status_and_json};

const EXPRESSION_COUNT: usize = 53;

fn text_file(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_owned(), "text/plain; charset=utf-8")
}

/// Serves `response` for GETs of `path` on the test's fake host.
async fn serve(app: &crate::helpers::TestApp, path_: &str, response: ResponseTemplate) {
    Mock::given(method("GET")).and(path(path_)).respond_with(response).mount(&app.upstream).await;
}

fn top(prediction: &Value, n: usize) -> Vec<String> {
    let mut scores: Vec<(String, f64)> = prediction["emotions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["score"].as_f64().unwrap()))
        .collect();
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    scores.into_iter().take(n).map(|(name, _)| name).collect()
}

fn language_predictions(source: &Value) -> Vec<Value> {
    source["results"]["predictions"][0]["models"]["language"]["grouped_predictions"][0]["predictions"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_action_answers_at_once_and_the_job_completes_with_v0_shapes() {
    let app = spawn_local_app(|_| {}).await;
    serve(&app, "/call-notes.txt", text_file("I am really upset with this service.")).await;
    let url = format!("{}/call-notes.txt", app.upstream.uri());
    let (status, answer) =
        status_and_json(app.start(&json!({"urls": url, "models_language": "Yes", "models_prosody": "No"})).await).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["job_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());

    let job = app.wait_for_job(id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(job["type"], "INFERENCE");
    assert_eq!(job["job_id"], id);
    let state = &job["state"];
    assert_eq!(
        (state["status"].as_str(), state["num_predictions"].as_i64(), state["num_errors"].as_i64()),
        (Some("COMPLETED"), Some(1), Some(0)),
        "{job}"
    );
    let (c, s, e) = (
        state["created_timestamp_ms"].as_i64().unwrap(),
        state["started_timestamp_ms"].as_i64().unwrap(),
        state["ended_timestamp_ms"].as_i64().unwrap(),
    );
    assert!(c <= s && s <= e);
    assert_eq!(
        job["request"]["models"],
        json!({"language": {"granularity": "utterance", "identify_speakers": false, "sentiment": null, "toxicity": null}})
    );
    assert_eq!((job["request"]["files"].clone(), job["request"]["urls"].clone()), (json!([]), json!([url])));

    let predictions = app.predictions(id).await;
    assert_eq!(predictions[0]["source"], json!({"type": "url", "url": url}));
    assert_eq!(predictions[0]["results"]["errors"], json!([]));
    let file = &predictions[0]["results"]["predictions"][0];
    assert_eq!((file["file"].as_str(), file["file_type"].as_str()), (Some("call-notes.txt"), Some("text")));
    assert_eq!(file["models"]["language"]["metadata"], Value::Null);
    let segments = language_predictions(&predictions[0]);
    let texts: Vec<&str> = segments.iter().map(|w| w["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["I am really upset with this service."], "the action scores whole sentences (utterances)");
    assert_eq!(segments[0]["position"], json!({"begin": 0, "end": 36}));
    assert_eq!(segments[0]["emotions"].as_array().unwrap().len(), EXPRESSION_COUNT);
}

#[tokio::test]
async fn text_items_get_all_53_expressions_sentiment_toxicity_and_sensible_rankings() {
    let app = spawn_local_app(|_| {}).await;
    let texts = [
        "I'm furious, this is the third time you've lost my package!",
        "Thank you so much, you saved my day!",
        "I'm terrified of what the scan will show.",
        "You are a useless idiot.",
    ];
    let id = app
        .start_v0(&json!({"text": texts, "models": {"language": {"granularity": "sentence", "sentiment": {}, "toxicity": {}}}}))
        .await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(job["state"]["num_predictions"], 4, "{job}");
    let predictions = app.predictions(&id).await;
    let first: Vec<Value> =
        predictions.as_array().unwrap().iter().map(|s| language_predictions(s)[0].clone()).collect();
    for (p, text) in first.iter().zip(texts) {
        assert_eq!(p["text"], text);
        assert_eq!(p["position"], json!({"begin": 0, "end": text.chars().count()}));
        let names: Vec<&str> = p["emotions"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), EXPRESSION_COUNT);
        for name in
            ["Admiration", "Surprise (negative)", "Annoyance", "Disapproval", "Enthusiasm", "Gratitude", "Sarcasm"]
        {
            assert!(names.contains(&name), "{name}");
        }
        assert!(p["emotions"].as_array().unwrap().iter().all(|e| (0.0..=1.0).contains(&e["score"].as_f64().unwrap())));
        assert_eq!(p["sentiment"].as_array().unwrap().len(), 9);
        assert_eq!(p["toxicity"].as_array().unwrap().len(), 6);
    }
    let anger = top(&first[0], 3);
    assert!(anger.iter().any(|n| n == "Anger" || n == "Annoyance"), "{anger:?}");
    assert!(top(&first[1], 3).contains(&"Gratitude".to_owned()), "{:?}", top(&first[1], 3));
    let fear = top(&first[2], 3);
    assert!(fear.iter().any(|n| n == "Fear" || n == "Anxiety"), "{fear:?}");
    let expected_sentiment = |p: &Value| -> f64 {
        p["sentiment"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().parse::<f64>().unwrap() * s["score"].as_f64().unwrap())
            .sum()
    };
    assert!(expected_sentiment(&first[1]) > expected_sentiment(&first[0]));
    let toxic = |p: &Value| {
        p["toxicity"].as_array().unwrap().iter().find(|t| t["name"] == "toxic").unwrap()["score"].as_f64().unwrap()
    };
    assert!(toxic(&first[3]) > toxic(&first[0]), "an insult is more toxic than a complaint");
}

#[tokio::test]
async fn one_bad_url_is_a_source_error_not_a_failed_job_and_nothing_measurable_fails_it() {
    let app = spawn_local_app(|_| {}).await;
    serve(&app, "/good.txt", text_file("What a lovely surprise!")).await;
    serve(&app, "/gone.txt", ResponseTemplate::new(404)).await;
    serve(&app, "/call.wav", ResponseTemplate::new(200).set_body_raw(b"RIFF\0\0\0\0WAVEfmt ".to_vec(), "audio/wav"))
        .await;
    let base = app.upstream.uri();
    let id = app
        .start_v0(
            &json!({"urls": [format!("{base}/good.txt"), format!("{base}/gone.txt")], "models": {"language": {}}}),
        )
        .await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(crate::helpers::outcome(&job), (Some("COMPLETED"), Some(1), Some(1)), "{job}");
    let predictions = app.predictions(&id).await;
    let error = &predictions[1]["results"]["errors"][0];
    assert_eq!(error["file"], "gone.txt");
    assert!(error["message"].as_str().unwrap().contains("404"), "{error}");

    let id = app.start_v0(&json!({"urls": [format!("{base}/gone.txt"), format!("{base}/call.wav")], "models": {"prosody": {}, "face": {}}})).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(job["state"]["status"], "FAILED", "{job}");
    // Prosody on `local` decodes the audio (its words are scored and its voice measured in
    // prosody's place), so the broken file's own error is what the job's message names.
    let message = job["state"]["message"].as_str().unwrap();
    assert!(message.contains("404") && message.contains("call.wav could not be decoded"), "{message}");
    assert!(job["state"]["started_timestamp_ms"].is_i64());
    let predictions = app.predictions(&id).await;
    assert_eq!(predictions[1]["results"]["predictions"], json!([]));
}

#[tokio::test]
async fn multipart_jobs_take_json_as_a_field_or_a_file_and_list_each_upload() {
    let app = spawn_local_app(|_| {}).await;
    let config = json!({"models": {"language": {"granularity": "utterance"}}}).to_string();
    let text = "First sentence here. Second one!";
    let digest = hex::encode(md5::Md5::digest(text.as_bytes()));
    for json_part in [
        reqwest::multipart::Part::text(config.clone()),
        reqwest::multipart::Part::bytes(config.clone().into_bytes())
            .file_name("upload")
            .mime_str("application/octet-stream")
            .unwrap(),
    ] {
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(text.as_bytes().to_vec())
                    .file_name("notes.txt")
                    .mime_str("text/plain")
                    .unwrap(),
            )
            .part("json", json_part);
        let response = app.client.post(format!("{}/v0/batch/jobs", app.address)).multipart(form).send().await.unwrap();
        let (status, answer) = status_and_json(response).await;
        assert_eq!(status, 200, "{answer}");
        let id = answer["job_id"].as_str().unwrap();
        let job = app.wait_for_job(id, &["COMPLETED", "FAILED"]).await;
        assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
        assert_eq!(
            job["request"]["files"],
            json!([{"filename": "notes.txt", "content_type": "text/plain", "md5sum": digest}])
        );
        assert_eq!(job["request"]["models"]["language"]["granularity"], "utterance");
        let predictions = app.predictions(id).await;
        assert_eq!(
            predictions[0]["source"],
            json!({"type": "file", "filename": "notes.txt", "content_type": "text/plain", "md5sum": digest})
        );
        let texts: Vec<String> =
            language_predictions(&predictions[0]).iter().map(|p| p["text"].as_str().unwrap().to_owned()).collect();
        assert_eq!(texts, ["First sentence here.", "Second one!"]);
    }
    let form = reqwest::multipart::Form::new().text("json", config);
    let (status, body) = status_and_json(
        app.client.post(format!("{}/v0/batch/jobs", app.address)).multipart(form).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("missing_file")));
}

#[tokio::test]
async fn v0_requests_are_checked_and_omitted_models_mean_every_model() {
    let app = spawn_local_app(|_| {}).await;
    for (body, code, field) in [
        (json!({}), "missing_input", "urls"),
        (json!({"urls": ["file:///etc/passwd"]}), "invalid_url", "urls[0]"),
        (json!({"text": ["hi"], "models": {"telepathy": {}}}), "invalid_model", "models.telepathy"),
        (json!({"text": "not a list"}), "invalid_request", "body"),
    ] {
        let response = app.client.post(format!("{}/v0/batch/jobs", app.address)).json(&body).send().await.unwrap();
        let (status, answer) = status_and_json(response).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str(), answer["error"]["field"].as_str()),
            (422, Some(code), Some(field)),
            "{body}"
        );
    }
    let id = app.start_v0(&json!({"text": ["So happy today."]})).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(job["request"]["models"].as_object().unwrap().len(), 6);
    assert_eq!(job["state"]["status"], "COMPLETED", "language runs; the others do not apply to text");
    let (status, body) = status_and_json(app.get("/v0/batch/jobs/no-such-job").await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    assert_eq!(app.get("/v0/batch/jobs/no-such-job/predictions").await.status(), 404);
}

#[tokio::test]
async fn model_settings_v0_would_refuse_are_refused_naming_the_field_the_value_and_what_is_accepted() {
    let app = spawn_local_app(|_| {}).await;
    let paragraph = json!({"text": ["I am furious."], "models": {"language": {"granularity": "paragraph"}}});
    let typed_wrong =
        json!({"text": ["I am furious."], "models": {"language": {"granularity": 5, "sentiment": "yes"}}});
    let multipart = |config: &Value| {
        let file = reqwest::multipart::Part::bytes(b"I am furious.".to_vec()).file_name("notes.txt");
        let form = reqwest::multipart::Form::new().text("json", config.to_string()).part("file", file);
        app.client.post(format!("{}/v0/batch/jobs", app.address)).multipart(form)
    };
    for (body, value) in [(&paragraph, "\"paragraph\""), (&typed_wrong, "integer `5`")] {
        let json = app.client.post(format!("{}/v0/batch/jobs", app.address)).json(body);
        for request in [json, multipart(body)] {
            let (status, answer) = status_and_json(request.send().await.unwrap()).await;
            let error = &answer["error"];
            assert_eq!(
                (status, error["code"].as_str(), error["field"].as_str()),
                (422, Some("invalid_setting"), Some("models.language.granularity")),
                "{answer}"
            );
            let message = error["message"].as_str().unwrap();
            for part in [value, "\"word\"", "\"sentence\"", "\"utterance\"", "\"conversational_turn\""] {
                assert!(message.contains(part), "{part} not in {message}");
            }
        }
    }
    let no_sentiment = json!({"text": ["I am furious."], "models": {"language": {"sentiment": "yes"}}});
    let (status, answer) = status_and_json(
        app.client.post(format!("{}/v0/batch/jobs", app.address)).json(&no_sentiment).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, answer["error"]["field"].as_str()), (422, Some("models.language.sentiment")), "{answer}");
    let jobs: Vec<Value> = app.get("/v0/batch/jobs").await.json().await.unwrap();
    assert!(jobs.is_empty(), "no job was started: {jobs:?}");

    // What the action sends, and settings v0 takes, run as given and are echoed as given.
    let id = app
        .start_v0(&json!({"text": ["I am furious. So furious."], "models": {"language": {"granularity": "utterance", "sentiment": {}}}}))
        .await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(
        job["request"]["models"],
        json!({"language": {"granularity": "utterance", "identify_speakers": false, "sentiment": {}, "toxicity": null}})
    );
    let predictions = app.predictions(&id).await;
    let scored = language_predictions(&predictions[0]);
    assert_eq!(scored.len(), 2, "utterance = sentence for text: {scored:?}");
    assert!(scored.iter().all(|p| p["sentiment"].is_array()), "{scored:?}");
}

#[tokio::test]
async fn list_filters_sort_and_limit() {
    let app = spawn_local_app(|_| {}).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let id = app.start_v0(&json!({"text": [format!("Text number {i}.")], "models": {"language": {}}})).await;
        app.wait_for_job(&id, &["COMPLETED"]).await;
        ids.push(id);
    }
    let failed = app.start_v0(&json!({"urls": ["http://127.0.0.1:9/nothing.txt"], "models": {"language": {}}})).await;
    app.wait_for_job(&failed, &["FAILED"]).await;
    let list = |query: &'static str| {
        let app = &app;
        async move {
            let (status, body) = status_and_json(app.get(&format!("/v0/batch/jobs{query}")).await).await;
            assert_eq!(status, 200, "{body}");
            body.as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(list("?status=COMPLETED").await, newest_first);
    assert_eq!(list("?status=COMPLETED&direction=asc").await, ids);
    assert_eq!(list("?status=COMPLETED&limit=2&sort_by=ended&direction=asc").await, ids[..2]);
    assert_eq!(list("?status=FAILED").await, std::slice::from_ref(&failed));
    assert_eq!(list("?status=FAILED&status=COMPLETED").await.len(), 4);
    assert!(list("?status=QUEUED&status=IN_PROGRESS").await.is_empty());
    let created = |id: &str| {
        let app = &app;
        let id = id.to_owned();
        async move {
            app.get(&format!("/v0/batch/jobs/{id}")).await.json::<Value>().await.unwrap()["state"]
                ["created_timestamp_ms"]
                .as_i64()
                .unwrap()
        }
    };
    let t = created(&ids[1]).await;
    let after: Vec<String> = app
        .get(&format!("/v0/batch/jobs?when=created_after&timestamp_ms={t}&direction=asc"))
        .await
        .json::<Vec<Value>>()
        .await
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(after.contains(&ids[2]) && !after.contains(&ids[0]) && !after.contains(&ids[1]), "{after:?}");
    let (status, body) = status_and_json(app.get("/v0/batch/jobs?status=DONE").await).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("status")));
}

#[tokio::test]
async fn artifacts_are_a_zip_with_a_csv_per_model() {
    let app = spawn_local_app(|_| {}).await;
    let id = app.start_v0(&json!({"text": ["Great work, team. I'm proud of you."], "models": {"language": {"granularity": "sentence"}}})).await;
    app.wait_for_job(&id, &["COMPLETED"]).await;
    let response = app.get(&format!("/v0/batch/jobs/{id}/artifacts")).await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut csv = String::new();
    zip.by_name("language.csv").unwrap().read_to_string(&mut csv).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("source,file,id,position.begin,position.end,text,emotion:Admiration"), "{header}");
    assert_eq!(header.matches("emotion:").count(), EXPRESSION_COUNT);
    assert_eq!(csv.lines().count(), 3, "a header and two sentences");
}

#[tokio::test]
async fn callbacks_carry_the_result_and_an_hmac_signature() {
    let app = spawn_local_app(|c| c.callback_secret = Some("callback-secret".parse().unwrap())).await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .and(header_exists("x-hume-action-signature"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&app.upstream)
        .await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(200)).mount(&app.upstream).await;
    let hook = format!("{}/hook", app.upstream.uri());
    let id = app.start_v0(&json!({"text": ["Thanks a lot!"], "models": {"language": {}}, "callback_url": hook})).await;
    app.wait_for_job(&id, &["COMPLETED"]).await;
    let delivered = loop_until_posts(&app, 2).await;
    let last = delivered.last().unwrap();
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!((body["job_id"].as_str(), body["status"].as_str()), (Some(id.as_str()), Some("COMPLETED")));
    assert_eq!(body["predictions"], app.predictions(&id).await);
    let signature = last.headers["x-hume-action-signature"].to_str().unwrap();
    assert_eq!(signature, hume_action::engine::callback::signature("callback-secret", &last.body));
}

async fn loop_until_posts(app: &crate::helpers::TestApp, n: usize) -> Vec<wiremock::Request> {
    for _ in 0..600 {
        let posts: Vec<_> = app
            .upstream
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST")
            .collect();
        if posts.len() >= n {
            return posts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the callback was not retried and delivered");
}

#[tokio::test]
async fn by_default_urls_and_callbacks_on_private_addresses_are_refused() {
    let app = spawn_local_app(|c| c.allow_private_urls = false).await;
    Mock::given(method("GET")).respond_with(text_file("secret admin page")).expect(0).mount(&app.upstream).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&app.upstream).await;
    let base = app.upstream.uri();
    let urls = json!([format!("{base}/admin.txt"), "http://169.254.169.254/latest/meta-data/"]);
    // The callback is refused at intake, naming the field; the URLs when they are fetched.
    let with_callback = json!({"urls": urls, "models": {"language": {}}, "callback_url": format!("{base}/hook")});
    let response = app.client.post(format!("{}/v0/batch/jobs", app.address)).json(&with_callback).send().await.unwrap();
    let (status, body) = status_and_json(response).await;
    assert_eq!((status, body["error"]["field"].as_str()), (422, Some("callback_url")), "{body}");
    let id = app.start_v0(&json!({"urls": urls, "models": {"language": {}}})).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    assert_eq!(job["state"]["status"], "FAILED");
    let message = job["state"]["message"].as_str().unwrap();
    assert!(message.contains("HUME_ACTION_ALLOW_PRIVATE_URLS"), "{message}");
    assert!(app.upstream.received_requests().await.unwrap().is_empty(), "a private address was contacted");
}

#[tokio::test]
async fn a_large_jobs_predictions_are_streamed_in_source_order() {
    let app = spawn_local_app(|_| {}).await;
    let texts: Vec<String> = (0..40).map(|i| format!("Item {i}: I am so pleased with how this turned out.")).collect();
    let id = app.start_v0(&json!({"text": texts, "models": {"language": {"granularity": "sentence"}}})).await;
    app.wait_for_job(&id, &["COMPLETED"]).await;
    let response = app.get(&format!("/v0/batch/jobs/{id}/predictions")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-length").is_none(), "streamed, not built whole: {:?}", response.headers());
    let predictions: Value = response.json().await.unwrap();
    let sources = predictions.as_array().unwrap();
    assert_eq!(sources.len(), 40);
    for (i, source) in sources.iter().enumerate() {
        let text = &source["results"]["predictions"][0]["models"]["language"]["grouped_predictions"][0]["predictions"]
            [0]["text"];
        assert!(text.as_str().unwrap().starts_with(&format!("Item {i}:")), "{i}: {text}");
    }
    let artifacts = app.get(&format!("/v0/batch/jobs/{id}/artifacts")).await;
    assert_eq!(artifacts.status(), 200);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(artifacts.bytes().await.unwrap().to_vec())).unwrap();
    let mut csv = String::new();
    zip.by_name("language.csv").unwrap().read_to_string(&mut csv).unwrap();
    assert_eq!(csv.lines().count(), 1 + 40, "a header and one row per sentence");
}
