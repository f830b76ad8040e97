//! The upstream client's retry rules, seen from the action.

use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{spawn_batch_app, status_and_json};

const BODY: &str = r#"{"urls": "https://a.test/x.mp3"}"#;

/// The fake's answer to `GET /v0/batch/jobs` (the adoption lookup).
fn job_list(jobs: serde_json::Value) -> Mock {
    Mock::given(method("GET")).and(path("/v0/batch/jobs")).respond_with(ResponseTemplate::new(200).set_body_json(jobs))
}

fn body() -> serde_json::Value {
    serde_json::from_str(BODY).unwrap()
}

#[tokio::test]
async fn transient_statuses_are_retried_until_success() {
    for status in [408, 429, 500, 502, 503, 504] {
        let app = spawn_batch_app(|_| {}).await;
        // Two failures, then success. (For 500/502/504 the job list is checked first: empty.)
        job_list(json!([])).mount(&app.upstream).await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status))
            .up_to_n_times(2)
            .expect(2)
            .mount(&app.upstream)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"job_id": "ok"})))
            .expect(1)
            .mount(&app.upstream)
            .await;
        let (got, answer) = status_and_json(app.start(&body()).await).await;
        assert_eq!((got, answer), (200, json!({"job_id": "ok"})), "after two {status}s");
    }
}

#[tokio::test]
async fn gives_up_after_exactly_max_attempts() {
    let app = spawn_batch_app(|c| c.max_attempts = 4).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).expect(4).mount(&app.upstream).await;
    let (status, answer) = status_and_json(app.start(&body()).await).await;
    assert_eq!(status, 502);
    let error = &answer["error"];
    assert_eq!(
        (error["code"].as_str(), error["upstream_status"].as_u64(), error["attempts"].as_u64()),
        (Some("upstream_unavailable"), Some(503), Some(4))
    );
    assert_eq!(error["retryable"], true);

    let reads = spawn_batch_app(|_| {}).await; // default: 5
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(500)).expect(5).mount(&reads.upstream).await;
    let (status, answer) = status_and_json(reads.get("/v0/batch/jobs/abc").await).await;
    assert_eq!((status, answer["error"]["attempts"].as_u64()), (502, Some(5)));
}

#[tokio::test]
async fn permanent_rejections_are_never_retried_and_their_message_reaches_the_caller() {
    for (status, code) in
        [(400, "upstream_rejected"), (401, "upstream_unauthorized"), (404, "not_found"), (422, "upstream_rejected")]
    {
        let app = spawn_batch_app(|_| {}).await;
        let reason = json!({"message": format!("reason for {status}")});
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(&reason))
            .expect(1)
            .mount(&app.upstream)
            .await;
        let (got, answer) = status_and_json(app.start(&body()).await).await;
        let error = &answer["error"];
        assert_eq!((got, error["code"].as_str(), error["attempts"].as_u64()), (status, Some(code), Some(1)));
        assert!(error["message"].as_str().unwrap().contains(&format!("reason for {status}")), "{error}");
        assert_eq!(error["retryable"], false);
    }
}

#[tokio::test]
async fn retry_after_replaces_the_computed_delay() {
    let app = spawn_batch_app(|c| c.retry_base_ms = 1).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&app.upstream)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"job_id": "late"})))
        .mount(&app.upstream)
        .await;
    let started = Instant::now();
    assert_eq!(status_and_json(app.start(&body()).await).await, (200, json!({"job_id": "late"})));
    assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}, Retry-After said 1 s", started.elapsed());
}

#[tokio::test]
async fn an_uncertain_post_is_adopted_not_sent_twice() {
    let app = spawn_batch_app(|c| c.upstream_timeout_secs = 0.3).await;
    // The POST reaches Hume, which creates the job, but the answer never arrives in time.
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"job_id": "created-upstream"}))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&app.upstream)
        .await;
    let listed = json!([
        {"job_id": "someone-else", "type": "INFERENCE", "request": {"urls": ["https://a.test/other.mp3"], "text": [], "callback_url": null, "models": {"prosody": {"granularity": "utterance"}}}, "state": {"status": "QUEUED", "created_timestamp_ms": 1}},
        {"job_id": "created-upstream", "type": "INFERENCE", "request": {"urls": ["https://a.test/x.mp3"], "text": [], "files": [], "callback_url": null, "models": {"prosody": {"granularity": "utterance", "identify_speakers": false, "window": null}}}, "state": {"status": "QUEUED", "created_timestamp_ms": 2}}
    ]);
    Mock::given(method("GET"))
        .and(path("/v0/batch/jobs"))
        .and(query_param("when", "created_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(listed))
        .expect(1)
        .mount(&app.upstream)
        .await;
    assert_eq!(status_and_json(app.start(&body()).await).await, (200, json!({"job_id": "created-upstream"})));
}

#[tokio::test]
async fn an_uncertain_post_with_no_matching_job_is_sent_again() {
    let app = spawn_batch_app(|_| {}).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .expect(1)
        .mount(&app.upstream)
        .await;
    job_list(json!([])).expect(1).mount(&app.upstream).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"job_id": "second"})))
        .expect(1)
        .mount(&app.upstream)
        .await;
    assert_eq!(status_and_json(app.start(&body()).await).await, (200, json!({"job_id": "second"})));
}

#[tokio::test]
async fn an_uncertain_last_attempt_is_checked_before_failing() {
    let app = spawn_batch_app(|c| c.max_attempts = 2).await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(504)).expect(2).mount(&app.upstream).await;
    let adopted = json!([{"job_id": "made-it", "type": "INFERENCE", "request": {"urls": ["https://a.test/x.mp3"], "text": [], "callback_url": null, "models": {"prosody": {}}}, "state": {"status": "QUEUED", "created_timestamp_ms": 5}}]);
    // Before the second attempt the job is not there yet; after it, it is.
    job_list(json!([])).up_to_n_times(1).mount(&app.upstream).await;
    job_list(adopted).mount(&app.upstream).await;
    assert_eq!(status_and_json(app.start(&body()).await).await, (200, json!({"job_id": "made-it"})));
}
