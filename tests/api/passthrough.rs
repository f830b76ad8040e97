//! Follow-up reads pass through unchanged, with the caller's key.

use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{spawn_batch_app, status_and_json};

#[tokio::test]
async fn details_predictions_and_lists_come_back_byte_for_byte() {
    let app = spawn_batch_app(|_| {}).await;
    let details = r#"{"type":"INFERENCE","job_id":"j1","request":{"files":[],"urls":["https://a.test/x"]},"state":{"status":"QUEUED","created_timestamp_ms":1712587158717}}"#;
    let predictions =
        r#"[{"source":{"type":"url","url":"https://a.test/x"},"results":{"predictions":[],"errors":[]}}]"#;
    for (p, body) in [("/v0/batch/jobs/j1", details), ("/v0/batch/jobs/j1/predictions", predictions)] {
        Mock::given(method("GET"))
            .and(path(p))
            .and(header("x-hume-api-key", "test-key"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .expect(1)
            .mount(&app.upstream)
            .await;
        let response = app.get(p).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), body);
    }
    Mock::given(method("GET"))
        .and(path("/v0/batch/jobs"))
        .and(query_param("status", "COMPLETED"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("[]", "application/json"))
        .expect(1)
        .mount(&app.upstream)
        .await;
    assert_eq!(app.get("/v0/batch/jobs?limit=5&status=COMPLETED").await.text().await.unwrap(), "[]");
}

#[tokio::test]
async fn an_unknown_job_is_a_404_in_our_shape_and_odd_ids_never_reach_upstream() {
    let app = spawn_batch_app(|_| {}).await;
    Mock::given(method("GET"))
        .and(path("/v0/batch/jobs/missing"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "job not found"})))
        .expect(1)
        .mount(&app.upstream)
        .await;
    let (status, body) = status_and_json(app.get("/v0/batch/jobs/missing").await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    assert!(body["error"]["message"].as_str().unwrap().contains("job not found"));
    let (status, _) = status_and_json(app.get("/v0/batch/jobs/..%2F..%2Fadmin").await).await;
    assert_eq!(status, 404);
}
