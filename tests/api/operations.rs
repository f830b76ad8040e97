//! Health, request ids, secrets kept out of logs, graceful shutdown.

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{captured_logs, spawn_batch_app, status_and_json, wait_for_upstream_requests};

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let app = spawn_batch_app(|_| {}).await;
    assert_eq!(status_and_json(app.get("/healthz").await).await, (200, json!({"status": "ok"})));
    assert_eq!(app.get("/readyz").await.status(), 200);
    let response = app.get("/v1/actions").await;
    assert!(!response.headers()["x-request-id"].is_empty());
    let given = app.client.get(format!("{}/nope", app.address)).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(given.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn api_keys_and_tokens_never_reach_logs_or_errors() {
    let key = "sk-very-secret-hume-key-4711";
    let token = "server-token-very-secret-0815";
    let app = spawn_batch_app(|c| {
        c.hume_api_key = Some(key.parse().unwrap());
        c.token = Some(token.parse().unwrap());
    })
    .await;
    // Upstream echoes the key it was sent in its error, as some gateways do.
    Mock::given(method("POST"))
        .respond_with(|r: &wiremock::Request| {
            let sent = r.headers["x-hume-api-key"].to_str().unwrap();
            ResponseTemplate::new(401).set_body_json(json!({"message": format!("Invalid ApiKey {sent}")}))
        })
        .mount(&app.upstream)
        .await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).mount(&app.upstream).await;
    let url = format!("{}/v1/actions/hume-expression-measurement", app.address);
    let mut bodies = Vec::new();
    for request in [
        app.client.post(&url).bearer_auth(token).json(&json!({"urls": "https://a.test/x"})),
        app.client
            .post(&url)
            .bearer_auth(token)
            .header("X-Hume-Api-Key", "sk-header-secret-99")
            .json(&json!({"urls": "https://a.test/x"})),
        app.client.post(&url).bearer_auth("wrong-token").json(&json!({"urls": "https://a.test/x"})),
        app.client.get(format!("{}/v0/batch/jobs/j", app.address)).bearer_auth(token),
    ] {
        bodies.push(request.send().await.unwrap().text().await.unwrap());
    }
    let logs = captured_logs();
    assert!(logs.contains("upstream attempt failed"), "the log was captured");
    for secret in [key, token, "sk-header-secret-99"] {
        assert!(!logs.contains(secret), "{secret} leaked into the log");
        assert!(bodies.iter().all(|b| !b.contains(secret)), "{secret} leaked into an answer: {bodies:?}");
    }
    assert!(bodies[0].contains("[redacted]") && bodies[1].contains("[redacted]"));
    assert!(!format!("{:?}", hume_action::config::Config::defaults()).contains("sk-"));
}

#[tokio::test]
async fn shutdown_lets_in_flight_calls_finish() {
    let mut app = spawn_batch_app(|_| {}).await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"job_id": "finished"}))
                .set_delay(Duration::from_millis(500)),
        )
        .mount(&app.upstream)
        .await;
    let request = app
        .client
        .post(format!("{}/v1/actions/hume-expression-measurement", app.address))
        .json(&json!({"urls": "https://a.test/x"}));
    let in_flight = tokio::spawn(request.send());
    wait_for_upstream_requests(&app, 1).await;
    app.stop().await;
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(status_and_json(response).await, (200, json!({"job_id": "finished"})));
}

#[tokio::test]
async fn the_hume_backend_without_ffmpeg_stops_start_up_saying_how_to_install_it() {
    let upstream = wiremock::MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(hume_action::config::BackendKind::Hume, &upstream, dir.path());
    config.model_dir = Some(crate::helpers::model_dir());
    config.ffmpeg = dir.path().join("no-ffmpeg-here");
    let error = hume_action::startup::Application::build(config).await.err().expect("refused");
    let message = error.to_string();
    assert!(message.contains("ffmpeg") && message.contains("apt-get install ffmpeg"), "{message}");
}

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_is_refused() {
    let first = crate::helpers::spawn_local_app(|_| {}).await;
    let mut config =
        crate::helpers::test_config(hume_action::config::BackendKind::Local, &first.upstream, first.data_dir.path());
    config.model_dir = Some(crate::helpers::model_dir());
    let error = hume_action::startup::Application::build(config).await.err().expect("refused");
    assert!(error.to_string().contains("another hume-action is running"), "{error}");
}

#[tokio::test]
async fn a_job_id_that_is_not_utf8_answers_in_the_error_shape() {
    let app = crate::helpers::spawn_local_app(|_| {}).await;
    let (status, body) = status_and_json(app.get("/v0/batch/jobs/%FF%FE/predictions").await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_job_id", "{body}");
}
