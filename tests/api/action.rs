//! The action endpoint: builder input forms, errors, API keys, idempotency.

use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{spawn_batch_app, status_and_json};

fn created(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "job_id": id }))
}

#[tokio::test]
async fn every_url_form_reaches_upstream_as_one_clean_list() {
    let app = spawn_batch_app(|_| {}).await;
    let expected = json!({"urls": ["https://a.test/1.mp3", "https://b.test/2.mp4"], "models": {"prosody": {}}});
    Mock::given(method("POST"))
        .and(path("/v0/batch/jobs"))
        .and(header("x-hume-api-key", "test-key"))
        .and(body_json(&expected))
        .respond_with(created("job-1"))
        .expect(6)
        .mount(&app.upstream)
        .await;
    for urls in [
        json!(["https://a.test/1.mp3", "https://b.test/2.mp4"]),
        json!("[\"https://a.test/1.mp3\", \"https://b.test/2.mp4\"]"),
        json!("https://a.test/1.mp3,https://b.test/2.mp4"),
        json!("https://a.test/1.mp3\nhttps://b.test/2.mp4\n"),
        json!([" https://a.test/1.mp3 ", "", "https://a.test/1.mp3", "https://b.test/2.mp4"]),
        json!("https://a.test/1.mp3, https://b.test/2.mp4, https://a.test/1.mp3"),
    ] {
        let (status, body) = status_and_json(app.start(&json!({"urls": urls, "models_prosody": "Yes"})).await).await;
        assert_eq!((status, body), (200, json!({"job_id": "job-1"})), "urls = {urls}");
    }
}

#[tokio::test]
async fn each_toggle_combination_selects_exactly_those_models() {
    let app = spawn_batch_app(|_| {}).await;
    let yes_no = [("Yes", true), ("no", false)];
    for (face, f) in yes_no {
        for (prosody, p) in [("yes", true), (" NO ", false)] {
            for (language, l) in [(json!(true), true), (json!("false"), false)] {
                let mut models = serde_json::Map::new();
                for (name, on) in [("face", f), ("prosody", p), ("language", l)] {
                    if on {
                        // The action's language model runs per utterance (issue 19), v0's others at their defaults.
                        let settings = if name == "language" { json!({"granularity": "utterance"}) } else { json!({}) };
                        models.insert(name.into(), settings);
                    }
                }
                let guard = Mock::given(method("POST"))
                    .and(body_json(json!({"urls": ["https://a.test/x.mp4"], "models": models})))
                    .respond_with(created("j"))
                    .expect(u64::from(f || p || l))
                    .mount_as_scoped(&app.upstream)
                    .await;
                let body = json!({"urls": "https://a.test/x.mp4", "models_face": face, "models_prosody": prosody, "models_language": language});
                let (status, answer) = status_and_json(app.start(&body).await).await;
                if f || p || l {
                    assert_eq!(status, 200, "{body} -> {answer}");
                } else {
                    assert_eq!(status, 422);
                    assert_eq!(answer["error"]["code"], "no_model_selected");
                }
                drop(guard);
            }
        }
    }
}

#[tokio::test]
async fn bad_input_gets_a_field_named_error_in_the_common_shape() {
    let app = spawn_batch_app(|_| {}).await;
    Mock::given(method("POST")).respond_with(created("never")).expect(0).mount(&app.upstream).await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "missing_urls", "urls"),
        (json!({"urls": ""}), "missing_urls", "urls"),
        (json!({"urls": "{{trigger.urls}}"}), "unfilled_template", "urls"),
        (json!({"urls": ["https://a.test/x", "ftp://b.test/y"]}), "invalid_url", "urls[1]"),
        (json!({"urls": "https://a.test/x\nnot-a-url"}), "invalid_url", "urls[1]"),
        (json!({"urls": {"a": 1}}), "invalid_urls", "urls"),
        (json!({"urls": (0..101).map(|i| format!("https://a.test/{i}")).collect::<Vec<_>>()}), "too_many_urls", "urls"),
        (json!({"urls": "https://a.test/x", "models_face": "perhaps"}), "invalid_toggle", "models_face"),
        (json!({"urls": "https://a.test/x", "models_language": "{{x}}"}), "unfilled_template", "models_language"),
        (json!({"urls": "https://a.test/x", "models_prosody": "No"}), "no_model_selected", "models_prosody"),
        (json!({"urls": "https://a.test/x", "callback_url": "not a url"}), "invalid_url", "callback_url"),
        (json!(["https://a.test/x"]), "invalid_body", "body"),
    ];
    for (body, code, field) in cases {
        let (status, answer) = status_and_json(app.start(&body).await).await;
        assert_eq!(status, 422, "{body}");
        let error = &answer["error"];
        assert_eq!((error["code"].as_str(), error["field"].as_str()), (Some(code), Some(field)), "{body}");
        assert_eq!(error["retryable"], false);
        assert!(error["message"].as_str().unwrap().len() > 20, "a message a person can act on: {error}");
    }
}

#[tokio::test]
async fn malformed_wrong_type_and_oversized_bodies_get_the_same_shape() {
    let app = spawn_batch_app(|c| c.max_body_bytes = 1024).await;
    let url = format!("{}/v1/actions/hume-expression-measurement", app.address);
    let send = |body: String, content_type: &'static str| {
        app.client.post(&url).header("content-type", content_type).body(body).send()
    };
    for (response, status, code) in [
        (send("{not json".into(), "application/json").await.unwrap(), 400, "invalid_json"),
        (send("{}".into(), "text/plain").await.unwrap(), 415, "unsupported_media_type"),
        (
            send(format!("{{\"urls\": \"{}\"}}", "x".repeat(4096)), "application/json").await.unwrap(),
            413,
            "body_too_large",
        ),
    ] {
        let (got, body) = status_and_json(response).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{body}");
    }
    let (status, body) = status_and_json(app.get("/nope").await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn the_request_key_overrides_the_server_key_and_no_key_is_a_clear_401() {
    let app = spawn_batch_app(|_| {}).await;
    Mock::given(method("POST"))
        .and(header("x-hume-api-key", "per-request"))
        .respond_with(created("mine"))
        .expect(1)
        .mount(&app.upstream)
        .await;
    let response = app
        .client
        .post(format!("{}/v1/actions/hume-expression-measurement", app.address))
        .header("X-Hume-Api-Key", "per-request")
        .json(&json!({"urls": "https://a.test/x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_json(response).await, (200, json!({"job_id": "mine"})));

    let keyless = spawn_batch_app(|c| c.hume_api_key = None).await;
    let (status, body) = status_and_json(keyless.start(&json!({"urls": "https://a.test/x"})).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("missing_api_key")));
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("X-Hume-Api-Key") && message.contains("HUME_API_KEY"), "{message}");
}

#[tokio::test]
async fn a_server_token_guards_v1_and_v0_but_not_health() {
    let app = spawn_batch_app(|c| c.token = Some("server-token-123".parse().unwrap())).await;
    Mock::given(method("POST")).respond_with(created("t")).mount(&app.upstream).await;
    let (status, body) = status_and_json(app.start(&json!({"urls": "https://a.test/x"})).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(app.get("/v0/batch/jobs/abc").await.status(), 401);
    assert_eq!(app.get("/v1/actions").await.status(), 401);
    assert_eq!(app.get("/healthz").await.status(), 200);
    let wrong = app.client.get(format!("{}/v1/actions", app.address)).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let response = app
        .client
        .post(format!("{}/v1/actions/hume-expression-measurement", app.address))
        .bearer_auth("server-token-123")
        .json(&json!({"urls": "https://a.test/x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn idempotency_key_replays_conflicts_and_concurrency() {
    let app = spawn_batch_app(|_| {}).await;
    Mock::given(method("POST"))
        .respond_with(created("job-once").set_delay(std::time::Duration::from_millis(200)))
        .expect(2) // one for key "run-1", one for key "run-2"
        .mount(&app.upstream)
        .await;
    let call = |key: &'static str, body: Value| {
        app.client
            .post(format!("{}/v1/actions/hume-expression-measurement", app.address))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let body = json!({"urls": "https://a.test/x", "models_face": "Yes"});
    let concurrent = futures::future::join_all((0..6).map(|_| call("run-1", body.clone()))).await;
    for response in concurrent {
        assert_eq!(status_and_json(response.unwrap()).await, (200, json!({"job_id": "job-once"})));
    }
    // Same meaning, other spelling: still the same request.
    let replay = call("run-1", json!({"urls": ["https://a.test/x"], "models_face": true, "models_prosody": "yes"}))
        .await
        .unwrap();
    assert_eq!(status_and_json(replay).await, (200, json!({"job_id": "job-once"})));
    let (status, conflict) =
        status_and_json(call("run-1", json!({"urls": "https://a.test/other"})).await.unwrap()).await;
    assert_eq!((status, conflict["error"]["code"].as_str()), (422, Some("idempotency_key_reused")));
    assert_eq!(call("run-2", json!({"urls": "https://a.test/other"})).await.unwrap().status(), 200);
}
