//! Bounded by design: paged lists; jobs that belong to their caller; secrets scrubbed from what
//! upstream says.

use base64::Engine as _;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{captured_logs, spawn_batch_app, spawn_local_app, status_and_json};

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
